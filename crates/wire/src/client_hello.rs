//! The ClientHello a TLS client sends first, read from the start of the TCP stream.

use crate::extension::{
    decode_alpn, decode_client_versions, decode_server_name, decode_u16_list, decode_u8_list,
};
use crate::reader::Reader;
use crate::record::{DeframeError, Deframer, Message, HANDSHAKE, HANDSHAKE_HEADER_LEN, HEADER_LEN};
use crate::{Extension, TlsVersion};

/// The most stream bytes one ClientHello may take; a peek buffer of this size always
/// ends in a hello or an error other than [`HelloError::Incomplete`].
pub const MAX_CLIENT_HELLO_BYTES: usize = 64 * 1024;

/// Handshake message type of a ClientHello.
pub(crate) const CLIENT_HELLO: u8 = 1;

/// Why the start of a stream is not (yet) a ClientHello.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    /// The bytes so far are a valid beginning: read more and call again.
    #[error("the ClientHello is not complete yet")]
    Incomplete,
    /// The stream is not TLS at all, e.g. a plaintext IMAP command or an HTTP request.
    #[error("the client did not start a TLS handshake (plaintext protocol on a TLS port?)")]
    NotTls,
    /// TLS framing, but a length lies or a field is impossible; the reason says which.
    #[error("malformed ClientHello: {0}")]
    Malformed(String),
    /// The hello would exceed [`MAX_CLIENT_HELLO_BYTES`].
    #[error("the ClientHello is larger than {MAX_CLIENT_HELLO_BYTES} bytes")]
    TooLarge,
}

/// A parsed ClientHello. Lists keep the client's wire order, GREASE values included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// The version in the first record header; 0x0002 when the hello came in an
    /// SSLv2-format record, which has no version field (see [`ClientHello::is_sslv2_format`]).
    pub record_version: u16,
    /// The hello's own version field (0x0303 for TLS 1.3 clients, which use supported_versions).
    pub legacy_version: u16,
    /// The client random; an SSLv2-format challenge is right-aligned and zero-padded.
    pub random: [u8; 32],
    /// The legacy session id, at most 32 bytes.
    pub session_id: Vec<u8>,
    /// Offered cipher suites.
    pub cipher_suites: Vec<u16>,
    /// Offered compression methods (0 is null).
    pub compression: Vec<u8>,
    /// Extensions as sent; empty for hellos without an extensions block.
    pub extensions: Vec<Extension>,
}

/// Parses the ClientHello at the start of `buf`, the first bytes a client sent on a TCP
/// stream. The hello may span several records, and `buf` may end anywhere: a valid prefix
/// gives [`HelloError::Incomplete`]. Bytes after the hello are ignored.
///
/// SSLv2-compatible hellos (RFC 5246 appendix E.2, still sent by some very old clients to
/// offer SSLv3 or TLS 1.0) are parsed too: only cipher suites that have a TLS code are kept,
/// and the hello has no extensions.
///
/// Known extensions (server_name, supported_groups, ec_point_formats, signature_algorithms,
/// ALPN, supported_versions) are checked for consistent lengths; others are kept unread.
pub fn parse_client_hello(buf: &[u8]) -> Result<ClientHello, HelloError> {
    match buf.first() {
        None => return Err(HelloError::Incomplete),
        Some(first) if first & 0x80 != 0 => return crate::sslv2_hello::parse(buf),
        Some(&HANDSHAKE) => {}
        Some(_) => return Err(HelloError::NotTls),
    }
    // Record versions 3.0 to 3.4 are plausible; each byte is judged as soon as it arrives.
    if buf.get(1).is_some_and(|&major| major != 3) || buf.get(2).is_some_and(|&minor| minor > 4) {
        return Err(HelloError::NotTls);
    }
    if let Some(&kind) = buf.get(HEADER_LEN) {
        if kind != CLIENT_HELLO {
            return Err(HelloError::Malformed(format!(
                "the first handshake message has type {kind}, not ClientHello (1)"
            )));
        }
    }
    let max_body = MAX_CLIENT_HELLO_BYTES - HEADER_LEN - HANDSHAKE_HEADER_LEN;
    match Deframer::new(buf, max_body).next_message() {
        Ok(Some(Message::Handshake {
            kind: CLIENT_HELLO,
            body,
        })) => {
            let record_version = u16::from_be_bytes([buf[1], buf[2]]);
            decode_body(&body, record_version).map_err(HelloError::Malformed)
        }
        Ok(Some(_)) => Err(HelloError::Malformed(
            "the stream does not start with a ClientHello".to_string(),
        )),
        // Many tiny records can carry a small hello in a large stream: cap the stream too.
        Ok(None) if buf.len() >= MAX_CLIENT_HELLO_BYTES => Err(HelloError::TooLarge),
        Ok(None) => Err(HelloError::Incomplete),
        Err(DeframeError::TooLarge) => Err(HelloError::TooLarge),
        Err(DeframeError::Malformed(reason)) => Err(HelloError::Malformed(reason)),
    }
}

/// Decodes a ClientHello handshake body (after the four-byte handshake header).
fn decode_body(body: &[u8], record_version: u16) -> Result<ClientHello, String> {
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
    let cipher_suites = Reader::new(r.vec16("cipher_suites")?).u16_list("cipher_suites")?;
    let compression = r.vec8("legacy_compression_methods")?.to_vec();
    // TLS 1.0 clients may end the hello here: the extensions block is optional.
    let extensions = if r.is_empty() {
        Vec::new()
    } else {
        let block = r.vec16("extensions")?;
        r.finish("extensions")?;
        decode_extensions(block)?
    };
    Ok(ClientHello {
        record_version,
        legacy_version,
        random,
        session_id: session_id.to_vec(),
        cipher_suites,
        compression,
        extensions,
    })
}

fn decode_extensions(block: &[u8]) -> Result<Vec<Extension>, String> {
    let mut r = Reader::new(block);
    let mut extensions = Vec::new();
    while !r.is_empty() {
        let kind = r.u16("extension type")?;
        let data = r.vec16("extension body")?;
        check_extension(kind, data)?;
        extensions.push(Extension {
            kind,
            data: data.to_vec(),
        });
    }
    Ok(extensions)
}

/// Fails when a known extension's inner lengths lie, so the accessors of a parsed hello
/// never meet an inconsistent body.
fn check_extension(kind: u16, data: &[u8]) -> Result<(), String> {
    match kind {
        Extension::SERVER_NAME => decode_server_name(data).map(drop),
        Extension::SUPPORTED_GROUPS => decode_u16_list(data, "supported_groups").map(drop),
        Extension::EC_POINT_FORMATS => decode_u8_list(data, "ec_point_formats").map(drop),
        Extension::SIGNATURE_ALGORITHMS => decode_u16_list(data, "signature_algorithms").map(drop),
        Extension::ALPN => decode_alpn(data).map(drop),
        Extension::SUPPORTED_VERSIONS => decode_client_versions(data).map(drop),
        _ => Ok(()),
    }
}

impl ClientHello {
    /// The first extension of type `kind`.
    pub fn extension(&self, kind: u16) -> Option<&Extension> {
        self.extensions.iter().find(|e| e.kind == kind)
    }

    /// The SNI host name, when the client sent one made of printable ASCII (RFC 6066 asks
    /// for A-labels); `None` otherwise, so a policy never sees a mangled name.
    pub fn server_name(&self) -> Option<String> {
        let data = &self.extension(Extension::SERVER_NAME)?.data;
        let name = decode_server_name(data).ok()??;
        let printable = !name.is_empty() && name.iter().all(|b| b.is_ascii_graphic());
        printable.then(|| String::from_utf8_lossy(name).into_owned())
    }

    /// The supported_versions list as sent (GREASE included); empty when absent.
    pub fn supported_versions(&self) -> Vec<u16> {
        self.extension(Extension::SUPPORTED_VERSIONS)
            .and_then(|e| decode_client_versions(&e.data).ok())
            .unwrap_or_default()
    }

    /// The newest version a server could negotiate with this hello: the highest known entry
    /// of supported_versions, else the hello version. A hello version above TLS 1.2 without
    /// supported_versions counts as TLS 1.2, as RFC 8446 4.2.1 tells servers to treat it.
    pub fn highest_offered(&self) -> Option<TlsVersion> {
        let listed = self
            .supported_versions()
            .into_iter()
            .filter_map(TlsVersion::from_wire)
            .max();
        listed.or_else(|| match self.legacy_version {
            v if v >> 8 == 3 && v > 0x0303 => Some(TlsVersion::Tls12),
            v => TlsVersion::from_wire(v),
        })
    }

    /// ALPN protocol names in the client's order; empty when absent.
    pub fn alpn(&self) -> Vec<Vec<u8>> {
        self.extension(Extension::ALPN)
            .and_then(|e| decode_alpn(&e.data).ok())
            .map(|names| names.into_iter().map(<[u8]>::to_vec).collect())
            .unwrap_or_default()
    }

    /// signature_algorithms in the client's order; empty when absent.
    pub fn signature_algorithms(&self) -> Vec<u16> {
        self.u16_list(Extension::SIGNATURE_ALGORITHMS)
    }

    /// supported_groups (named curves and FFDHE groups) in the client's order; empty when absent.
    pub fn supported_groups(&self) -> Vec<u16> {
        self.u16_list(Extension::SUPPORTED_GROUPS)
    }

    /// ec_point_formats as sent; empty when absent.
    pub fn ec_point_formats(&self) -> Vec<u8> {
        self.extension(Extension::EC_POINT_FORMATS)
            .and_then(|e| decode_u8_list(&e.data, "ec_point_formats").ok())
            .unwrap_or_default()
    }

    /// Whether the hello came in the SSLv2-compatible record format.
    pub fn is_sslv2_format(&self) -> bool {
        self.record_version == crate::sslv2_hello::SSLV2_VERSION
    }

    fn u16_list(&self, kind: u16) -> Vec<u16> {
        self.extension(kind)
            .and_then(|e| decode_u16_list(&e.data, "list").ok())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
