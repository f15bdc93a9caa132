//! A server's answer to a probe hello: its ServerHello (and, below TLS 1.3, the certificate
//! chain that follows in the clear), or the alert it refused with.

use crate::reader::Reader;
use crate::record::{DeframeError, Deframer, Message};
use crate::{Alert, Extension, TlsVersion};

/// The most reply bytes read for one probe; a buffer this size always ends in an answer
/// other than [`ReplyError::Incomplete`] or [`Certificates::Pending`].
pub const MAX_SERVER_REPLY_BYTES: usize = 256 * 1024;
/// Longest handshake message accepted: room for a long certificate chain.
const MAX_MESSAGE: usize = MAX_SERVER_REPLY_BYTES / 2;

const SERVER_HELLO: u8 = 2;
const CERTIFICATE: u8 = 11;
/// The random of a HelloRetryRequest: SHA-256 of "HelloRetryRequest" (RFC 8446 4.1.3).
const HELLO_RETRY_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];
/// The last 8 bytes of the random of a TLS 1.3-capable server negotiating TLS 1.2 ("DOWNGRD\x01")
/// or below ("DOWNGRD\x00"), RFC 8446 4.1.3.
const DOWNGRADE_PREFIX: &[u8; 7] = b"DOWNGRD";

/// Why the bytes so far are not (yet) a server's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// A valid beginning: read more and call again.
    #[error("the server's reply is not complete yet")]
    Incomplete,
    /// The server answered with something other than TLS, e.g. a plaintext error line;
    /// show the caller's bytes to the user.
    #[error("the server did not answer with TLS")]
    NotTls,
    /// TLS framing, but a length lies or a message is out of place; the reason says which.
    #[error("malformed server reply: {0}")]
    Malformed(String),
    /// The reply would exceed [`MAX_SERVER_REPLY_BYTES`], or a handshake message (in
    /// practice a certificate chain) announces more than half of it.
    #[error("the server's reply is larger than {MAX_SERVER_REPLY_BYTES} bytes")]
    TooLarge,
}

/// What the server answered first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerReply {
    /// It chose parameters (or, for TLS 1.3, asked for another key share).
    Hello(ServerHello),
    /// It refused before any ServerHello.
    Alert(Alert),
}

/// A parsed ServerHello (or HelloRetryRequest, which shares its format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello {
    /// The version in the header of the record that carried the ServerHello.
    pub record_version: u16,
    /// The hello's version field; TLS 1.3 servers put 0x0303 here and the real choice in
    /// supported_versions (see [`ServerHello::selected_version`]).
    pub legacy_version: u16,
    /// The server random.
    pub random: [u8; 32],
    /// The session id the server chose or echoed.
    pub session_id: Vec<u8>,
    /// The chosen cipher suite.
    pub cipher_suite: u16,
    /// The chosen compression method (0 is null).
    pub compression: u8,
    /// Extensions as sent.
    pub extensions: Vec<Extension>,
    /// The certificate chain, as far as it can be read.
    pub certificates: Certificates,
}

/// The server's certificate chain as seen after its ServerHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Certificates {
    /// TLS 1.3 encrypts the Certificate message, and a HelloRetryRequest has none.
    NotInClear,
    /// The bytes end before the message after the ServerHello: read more if the chain is
    /// wanted; a version probe can stop here.
    Pending,
    /// The message after the ServerHello is not a Certificate (anonymous or PSK suites).
    Absent,
    /// The DER certificates as sent, the server's own first.
    Chain(Vec<Vec<u8>>),
}

/// Reads the reply that starts `buf`, the bytes a server sent after a ClientHello, up to
/// its ServerHello or alert; below TLS 1.3 also the Certificate message that follows.
/// Records may be split anywhere and handshake messages may span records: a valid prefix
/// gives [`ReplyError::Incomplete`].
pub fn parse_server_reply(buf: &[u8]) -> Result<ServerReply, ReplyError> {
    // Content types 20 to 23 then major version 3; each byte judged as soon as it arrives.
    match buf.first() {
        None => return Err(ReplyError::Incomplete),
        Some(20..=23) => {}
        Some(_) => return Err(ReplyError::NotTls),
    }
    if buf.get(1).is_some_and(|&major| major != 3) {
        return Err(ReplyError::NotTls);
    }
    let mut deframer = Deframer::new(buf, MAX_MESSAGE);
    let mut hello = match deframer.next_message() {
        Ok(Some(Message::Alert { level, description })) => {
            return Ok(ServerReply::Alert(Alert { level, description }))
        }
        Ok(Some(Message::Handshake {
            kind: SERVER_HELLO,
            body,
        })) => {
            let record_version = u16::from_be_bytes([buf[1], buf[2]]);
            decode_server_hello(&body, record_version).map_err(ReplyError::Malformed)?
        }
        Ok(Some(Message::Handshake { kind, .. })) => {
            return Err(ReplyError::Malformed(format!(
                "the first handshake message has type {kind}, not ServerHello (2)"
            )))
        }
        Ok(Some(_)) => {
            return Err(ReplyError::Malformed(
                "a ChangeCipherSpec or application data record came before the ServerHello"
                    .to_string(),
            ))
        }
        Ok(None) => return Err(incomplete(buf)),
        Err(e) => return Err(record_error(e)),
    };
    // RFC 8446 4.2.1: only a TLS 1.3 ServerHello carries supported_versions.
    hello.certificates = if hello.is_hello_retry_request()
        || hello.extension(Extension::SUPPORTED_VERSIONS).is_some()
    {
        Certificates::NotInClear
    } else {
        match deframer.next_message() {
            Ok(Some(Message::Handshake {
                kind: CERTIFICATE,
                body,
            })) => Certificates::Chain(decode_certificates(&body).map_err(ReplyError::Malformed)?),
            Ok(Some(_)) => Certificates::Absent,
            Ok(None) => match incomplete(buf) {
                ReplyError::Incomplete => Certificates::Pending,
                too_large => return Err(too_large),
            },
            Err(e) => return Err(record_error(e)),
        }
    };
    Ok(ServerReply::Hello(hello))
}

/// `Incomplete`, unless the buffer already holds as much as a reply may take.
fn incomplete(buf: &[u8]) -> ReplyError {
    if buf.len() >= MAX_SERVER_REPLY_BYTES {
        ReplyError::TooLarge
    } else {
        ReplyError::Incomplete
    }
}

fn record_error(error: DeframeError) -> ReplyError {
    match error {
        DeframeError::Malformed(reason) => ReplyError::Malformed(reason),
        DeframeError::TooLarge => ReplyError::TooLarge,
    }
}

fn decode_server_hello(body: &[u8], record_version: u16) -> Result<ServerHello, String> {
    let mut r = Reader::new(body);
    let legacy_version = r.u16("legacy_version")?;
    let mut random = [0; 32];
    random.copy_from_slice(r.take(32, "random")?);
    let session_id = r.vec8("legacy_session_id")?;
    if session_id.len() > 32 {
        return Err(format!(
            "legacy_session_id of {} bytes exceeds 32",
            session_id.len()
        ));
    }
    let cipher_suite = r.u16("cipher_suite")?;
    let compression = r.u8("legacy_compression_method")?;
    let mut extensions = Vec::new();
    // Servers of the SSLv3 and TLS 1.0 era may end the hello here.
    if !r.is_empty() {
        let mut block = Reader::new(r.vec16("extensions")?);
        r.finish("extensions")?;
        while !block.is_empty() {
            let kind = block.u16("extension type")?;
            let data = block.vec16("extension body")?;
            // The selected version decides what the reply means: it must be exactly one.
            if kind == Extension::SUPPORTED_VERSIONS && data.len() != 2 {
                return Err(format!(
                    "supported_versions of {} bytes in a ServerHello holds not one version",
                    data.len()
                ));
            }
            extensions.push(Extension {
                kind,
                data: data.to_vec(),
            });
        }
    }
    Ok(ServerHello {
        record_version,
        legacy_version,
        random,
        session_id: session_id.to_vec(),
        cipher_suite,
        compression,
        extensions,
        certificates: Certificates::Pending,
    })
}

/// The DER certificates of a TLS 1.0-1.2 Certificate message body.
fn decode_certificates(body: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut outer = Reader::new(body);
    let mut list = Reader::new(outer.vec24("certificate_list")?);
    outer.finish("certificate_list")?;
    let mut chain = Vec::new();
    while !list.is_empty() {
        chain.push(list.vec24("certificate")?.to_vec());
    }
    Ok(chain)
}

impl ServerHello {
    /// The first extension of type `kind`.
    pub fn extension(&self, kind: u16) -> Option<&Extension> {
        self.extensions.iter().find(|e| e.kind == kind)
    }

    /// The version the server chose: supported_versions when present (TLS 1.3), else the
    /// hello version.
    pub fn selected_version(&self) -> u16 {
        match self.extension(Extension::SUPPORTED_VERSIONS) {
            Some(Extension { data, .. }) if data.len() == 2 => {
                u16::from_be_bytes([data[0], data[1]])
            }
            _ => self.legacy_version,
        }
    }

    /// [`ServerHello::selected_version`] as a known version; `None` for drafts and junk.
    pub fn version(&self) -> Option<TlsVersion> {
        TlsVersion::from_wire(self.selected_version())
    }

    /// Whether this is a TLS 1.3 HelloRetryRequest: the server accepts TLS 1.3 but wants a
    /// key share for another group.
    pub fn is_hello_retry_request(&self) -> bool {
        self.random == HELLO_RETRY_RANDOM
    }

    /// Whether the random carries RFC 8446's downgrade sentinel: a server that speaks
    /// TLS 1.3 chose an older version, so the client must have asked for one.
    pub fn signals_downgrade(&self) -> bool {
        self.random[24..31] == *DOWNGRADE_PREFIX && self.random[31] <= 1
    }
}

#[cfg(test)]
mod tests;
