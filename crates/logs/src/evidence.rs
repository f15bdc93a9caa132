//! What every reader produces: session records for the inventory, each with a digest of the
//! text it came from, so the store can tell evidence already imported from new evidence.

use std::net::IpAddr;
use std::time::SystemTime;

use store::{EvidenceDigest, OfferedHello, Outcome, SessionRecord, Source};
use wire::TlsVersion;

/// One session record read from a log line or an export row, with its digest.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// Identifies the lines or row the record came from; the same input read again gives the
    /// same digest (see [`Digester`]).
    pub digest: EvidenceDigest,
    /// The session as the inventory stores it.
    pub record: SessionRecord,
}

/// What a reader made of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// A line of the kind the reader follows (a login, a handshake, a session's step).
    Used,
    /// A well-formed line about something else (another daemon, a mailbox's own process).
    Other,
    /// A line the reader could not read: no timestamp it knows, or a login line without the
    /// fields it needs. Counted and reported, never fatal.
    NotUnderstood,
}

/// A reader of one log format, fed line by line (sans I/O: the caller reads the file).
pub trait LogReader {
    /// Reads one line, without its line ending; records it completes go to `out`.
    fn read_line(&mut self, line: &[u8], out: &mut Vec<Evidence>) -> LineKind;
}

/// Longest login or detail a record keeps from a log, in bytes: the text is the client's
/// (a failed login's user name) and must not make records large.
pub const MAX_TEXT_BYTES: usize = 256;

/// A record of a session a log or export saw, with what such sources never know left empty:
/// no port, no hello, no bytes, no policy.
pub(crate) fn sighting(
    source: Source,
    at: SystemTime,
    listener: &str,
    protocol: &str,
    client_addr: IpAddr,
) -> SessionRecord {
    SessionRecord {
        source,
        started_at: at,
        ended_at: at,
        listener: listener.to_string(),
        protocol: protocol.to_string(),
        client_addr,
        client_port: 0,
        tls_version: None,
        tls_cipher: None,
        offered_max_tls: None,
        sni: None,
        ja4: None,
        offered: OfferedHello::default(),
        client_id: Vec::new(),
        login: None,
        upstream: String::new(),
        upstream_tls_version: None,
        outcome: Outcome::Ok,
        detail: None,
        bytes_from_client: 0,
        bytes_to_client: 0,
        envelope_sender: None,
        messages_submitted: None,
        policy: None,
    }
}

/// What a negotiated version says of the client's hello: a log shows the version agreed, not
/// the versions offered. Servers built on OpenSSL (Dovecot, Postfix, Exchange Online) agree on
/// the highest version both sides speak, and all of them speak TLS 1.2, so a session agreed
/// below TLS 1.2 means the client offered nothing newer. At TLS 1.2 or newer the client may
/// have offered more: unknown.
pub(crate) fn offered_at_most(negotiated: TlsVersion) -> Option<TlsVersion> {
    (negotiated < TlsVersion::Tls12).then_some(negotiated)
}

/// What a handshake refused for its version says of the client's hello: it offered nothing
/// the server accepts, so at most the version just below the server's floor.
pub(crate) fn offered_below(floor: TlsVersion) -> Option<TlsVersion> {
    TlsVersion::ALL.into_iter().filter(|v| *v < floor).max()
}

/// `TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits) ...` (as Dovecot's `%k`
/// and Postfix's `TLS connection established` write it): the version and the cipher.
pub(crate) fn negotiated_tls(text: &str) -> Option<(TlsVersion, String)> {
    let (version, rest) = text.split_once(" with cipher ")?;
    let version = match version {
        "SSLv3" => TlsVersion::Ssl3,
        "TLSv1" => TlsVersion::Tls10,
        "TLSv1.1" => TlsVersion::Tls11,
        "TLSv1.2" => TlsVersion::Tls12,
        "TLSv1.3" => TlsVersion::Tls13,
        _ => return None,
    };
    let cipher = rest.split(' ').next().filter(|c| !c.is_empty())?;
    Some((version, bounded(cipher)))
}

/// Why OpenSSL refused a handshake, from its error string
/// (`error:0A000102:SSL routines::unsupported protocol[:file:line:]`, or OpenSSL 1.1's
/// `error:1417102B:SSL routines:tls_process_client_hello:version too low:...`): the reason.
pub(crate) fn openssl_reason(text: &str) -> Option<&str> {
    let start = text.find("error:")?;
    let reason = text[start..].split(':').nth(4)?.trim();
    (!reason.is_empty()).then_some(reason)
}

/// Whether an OpenSSL reason says the client's versions were all below the server's floor.
pub(crate) fn is_version_refusal(reason: &str) -> bool {
    [
        "unsupported protocol",
        "version too low",
        "unsupported version",
    ]
    .iter()
    .any(|known| reason.eq_ignore_ascii_case(known))
}

/// `text` with control characters replaced, cut to [`MAX_TEXT_BYTES`] on a character
/// boundary.
pub(crate) fn bounded(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_TEXT_BYTES));
    for c in text.chars() {
        let c = if c.is_control() { '\u{fffd}' } else { c };
        if out.len() + c.len_utf8() > MAX_TEXT_BYTES {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiated_versions_and_ciphers_are_read() {
        assert_eq!(
            negotiated_tls("TLSv1 with cipher ECDHE-RSA-AES256-SHA (256/256 bits)"),
            Some((TlsVersion::Tls10, "ECDHE-RSA-AES256-SHA".into()))
        );
        assert_eq!(
            negotiated_tls(
                "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519"
            ),
            Some((TlsVersion::Tls13, "TLS_AES_256_GCM_SHA384".into()))
        );
        assert_eq!(negotiated_tls("TLSv2 with cipher X"), None);
        assert_eq!(negotiated_tls("TLSv1.2 with cipher "), None);
    }

    #[test]
    fn openssl_reasons_are_read_from_both_generations() {
        assert_eq!(
            openssl_reason(
                "SSL_accept() failed: error:0A000102:SSL routines::unsupported protocol"
            ),
            Some("unsupported protocol")
        );
        assert_eq!(
            openssl_reason("error:1417102B:SSL routines:tls_process_client_hello:version too low:../ssl/statem/statem_srvr.c:1664:"),
            Some("version too low")
        );
        assert_eq!(openssl_reason("error:0A000102"), None);
    }

    #[test]
    fn inference_from_versions() {
        assert_eq!(offered_at_most(TlsVersion::Tls10), Some(TlsVersion::Tls10));
        assert_eq!(offered_at_most(TlsVersion::Tls12), None);
        assert_eq!(offered_below(TlsVersion::Tls12), Some(TlsVersion::Tls11));
        assert_eq!(offered_below(TlsVersion::Ssl3), None);
    }

    #[test]
    fn client_text_is_bounded_and_has_no_controls() {
        assert_eq!(bounded("a\u{1b}[2Jb"), "a\u{fffd}[2Jb");
        let long = "é".repeat(300);
        assert!(bounded(&long).len() <= MAX_TEXT_BYTES);
        assert_eq!(
            bounded(&"\u{1}".repeat(300)).len(),
            255,
            "85 replacements of 3 bytes"
        );
    }
}
