//! The one row written per gateway session.

use std::net::IpAddr;
use std::time::SystemTime;

use wire::TlsVersion;

use crate::Outcome;

/// Everything the gateway learned about one client session, written once when the session ends.
///
/// Holds no secret: `login` is the user name only, never a password or token.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// When the TCP connection was accepted. Stored to millisecond precision.
    pub started_at: SystemTime,
    /// When the session ended. Stored to millisecond precision.
    pub ended_at: SystemTime,
    /// Name of the listener that accepted the connection.
    pub listener: String,
    /// Mail protocol of the listener: `"imap"` or `"pop3"`.
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
    /// Server name the client asked for in its ClientHello.
    pub sni: Option<String>,
    /// JA4 fingerprint of the client's ClientHello.
    pub ja4: Option<String>,
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
}
