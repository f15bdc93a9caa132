//! The one row written per gateway session.

use std::mem::size_of;
use std::net::IpAddr;
use std::time::SystemTime;

use wire::TlsVersion;

use crate::{OfferedHello, Outcome, Source};

/// Longest server name (SNI) a record keeps, in bytes, marker included: a DNS name has at
/// most 253, but a ClientHello may carry up to 64 KiB.
pub const MAX_SNI_BYTES: usize = 255;

/// What ends a server name cut to [`MAX_SNI_BYTES`]. ASCII, and it cannot occur in a DNS
/// name, so a cut name is never taken for one the client really sent.
pub const CUT_MARKER: &str = "[cut]";

/// Everything the gateway learned about one client session, written once when the session ends.
///
/// Holds no secret: `login` is the user name only, never a password or token.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// What saw the session: the gateway, or a discovery source such as a capture.
    pub source: Source,
    /// When the TCP connection was accepted. Stored to millisecond precision.
    pub started_at: SystemTime,
    /// When the session ended. Stored to millisecond precision.
    pub ended_at: SystemTime,
    /// Name of the listener that accepted the connection.
    pub listener: String,
    /// Mail protocol of the listener: `"imap"`, `"pop3"` or `"smtp"`.
    pub protocol: String,
    /// The client's address (after any PROXY protocol header).
    pub client_addr: IpAddr,
    /// The client's source port.
    pub client_port: u16,
    /// TLS version negotiated with the client; `None` if no handshake completed.
    pub tls_version: Option<TlsVersion>,
    /// Cipher suite negotiated with the client.
    pub tls_cipher: Option<String>,
    /// Highest version offered in the client's ClientHello.
    pub offered_max_tls: Option<TlsVersion>,
    /// Server name the client asked for in its ClientHello, at most [`MAX_SNI_BYTES`]; set it
    /// with [`SessionRecord::set_sni`].
    pub sni: Option<String>,
    /// JA4 fingerprint of the client's ClientHello.
    pub ja4: Option<String>,
    /// The lists and JA3 of the client's ClientHello; empty when none was read.
    pub offered: OfferedHello,
    /// IMAP ID fields in the order the client sent them (a field may repeat or have no value).
    pub client_id: Vec<(String, Option<String>)>,
    /// User name the client logged in as; never a password.
    pub login: Option<String>,
    /// The upstream server the session was bridged to (as configured, e.g. `"imap.example.com:993"`).
    pub upstream: String,
    /// TLS version negotiated with the upstream server.
    pub upstream_tls_version: Option<TlsVersion>,
    /// How the session ended.
    pub outcome: Outcome,
    /// Human-readable reason for a non-ok outcome.
    pub detail: Option<String>,
    /// Bytes received from the client over the whole session.
    pub bytes_from_client: u64,
    /// Bytes sent to the client over the whole session.
    pub bytes_to_client: u64,
    /// SMTP: the envelope sender (MAIL FROM address, empty for `<>`) of the session's first
    /// transaction, so the inventory can tell which device sends as whom; at most 254 bytes as
    /// sent (bytes that are not UTF-8 shown as U+FFFD).
    pub envelope_sender: Option<String>,
    /// SMTP: the messages the upstream accepted in the session, counted from the replies to
    /// the ends of transactions (a `2xx` to the `.` after DATA or to `BDAT ... LAST`), not from
    /// MAIL commands or recipients; `None` for sessions that never logged in and for other
    /// protocols. A session whose bytes stopped reading as SMTP keeps the count up to there.
    pub messages_submitted: Option<u32>,
    /// The TLS floor policy's decision on the session's last login attempt; `None` when the
    /// session ended before one.
    pub policy: Option<PolicyDecision>,
}

/// What a TLS floor policy decided for a login, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDecision {
    /// `allow`, `warn` or `refuse`.
    pub verdict: String,
    /// The id of the rule that decided, e.g. `sunset/window`, `sunset/floor`, `exception:3`.
    pub rule: String,
    /// The exception that let the client through, if one did.
    pub exception: Option<u32>,
}

impl SessionRecord {
    /// Records the server name from the client's ClientHello; a name longer than
    /// [`MAX_SNI_BYTES`] is kept as its first bytes followed by [`CUT_MARKER`], 255 bytes in
    /// all, so that a hostile hello cannot make records large.
    pub fn set_sni(&mut self, sni: Option<String>) {
        self.sni = sni.map(|name| cut_to(name, MAX_SNI_BYTES));
    }

    /// An estimate of the memory the record holds, in bytes: the struct and its text. Used to
    /// bound what waits in memory while the store fails.
    pub fn estimated_bytes(&self) -> usize {
        let texts = [
            Some(&self.listener),
            Some(&self.protocol),
            self.tls_cipher.as_ref(),
            self.sni.as_ref(),
            self.ja4.as_ref(),
            self.login.as_ref(),
            Some(&self.upstream),
            self.detail.as_ref(),
            self.envelope_sender.as_ref(),
        ];
        let client_id: usize = self
            .client_id
            .iter()
            .map(|(name, value)| {
                size_of::<(String, Option<String>)>()
                    + name.len()
                    + value.as_ref().map_or(0, String::len)
            })
            .sum();
        size_of::<SessionRecord>()
            + texts.into_iter().flatten().map(String::len).sum::<usize>()
            + client_id
            + self.offered.estimated_bytes()
    }
}

/// `text` if it fits in `max` bytes; otherwise its longest prefix that ends on a character
/// boundary and leaves room for [`CUT_MARKER`], then the marker.
pub fn cut_to(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max.saturating_sub(CUT_MARKER.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(CUT_MARKER);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::sample_record;

    #[test]
    fn a_server_name_over_255_bytes_is_cut_to_255_with_the_marker() {
        let mut record = sample_record(1);
        let exact = "a".repeat(MAX_SNI_BYTES);
        record.set_sni(Some(exact.clone()));
        assert_eq!(record.sni.as_deref(), Some(exact.as_str()));

        record.set_sni(Some("b".repeat(64 * 1024)));
        let cut = record.sni.clone().unwrap();
        assert_eq!(cut.len(), MAX_SNI_BYTES);
        assert_eq!(cut, "b".repeat(250) + "[cut]");

        record.set_sni(Some("b".repeat(MAX_SNI_BYTES + 1)));
        assert_eq!(record.sni.as_deref().map(str::len), Some(MAX_SNI_BYTES));

        record.set_sni(None);
        assert_eq!(record.sni, None);
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        // 249 bytes of ASCII, then two-byte characters: the cut falls inside the first one.
        let name = "x".repeat(249) + &"é".repeat(10);
        let cut = cut_to(name, MAX_SNI_BYTES);
        assert_eq!(cut, "x".repeat(249) + "[cut]");
    }

    #[test]
    fn the_size_estimate_grows_with_the_text_held() {
        let small = sample_record(1);
        let mut big = sample_record(1);
        big.client_id = vec![("n".repeat(30), Some("v".repeat(1024))); 30];
        let added = big.client_id.len() * (30 + 1024);
        assert!(small.estimated_bytes() >= size_of::<SessionRecord>() + "imaps-legacy".len());
        assert!(big.estimated_bytes() >= small.estimated_bytes() + added - 200);
    }
}
