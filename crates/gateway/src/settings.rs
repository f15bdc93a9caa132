//! The gateway's validated settings: what the TOML config becomes once every value has been
//! checked. The `cli` crate reads and validates the file; this crate only consumes the result.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use wire::TlsVersion;

/// The mail protocol a listener speaks and an upstream serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Imap,
    Pop3,
    /// Message submission (RFC 6409): ports 587 (STARTTLS) and 465 (implicit TLS).
    Smtp,
}

impl Protocol {
    /// The lower-case label used in the config and the session records.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::Smtp => "smtp",
        }
    }

    /// The response code that tells a client a refusal is temporary and worth a later retry:
    /// `[UNAVAILABLE]` (RFC 5530) in IMAP, `[SYS/TEMP]` (RFC 3206) in POP3, `4.7.0` in SMTP.
    pub fn try_later_code(self) -> &'static str {
        match self {
            Protocol::Imap => "[UNAVAILABLE]",
            Protocol::Pop3 => "[SYS/TEMP]",
            // The SMTP farewell is `421 4.3.0`; an enhanced code in front of its text gives way.
            Protocol::Smtp => "4.7.0",
        }
    }

    /// The response code that tells a client its mailbox has as many sessions as it may:
    /// `[LIMIT]` (RFC 5530) in IMAP, `[IN-USE]` (RFC 2449) in POP3, `4.3.2` in SMTP.
    pub fn mailbox_busy_code(self) -> &'static str {
        match self {
            Protocol::Imap => "[LIMIT]",
            Protocol::Pop3 => "[IN-USE]",
            // Exchange Online's own code for too many connections per mailbox.
            Protocol::Smtp => "4.3.2",
        }
    }
}

/// How a listener offers TLS to its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientTlsMode {
    /// TLS from the first byte (ports 993/995).
    Implicit,
    /// Plaintext greeting, then STARTTLS/STLS; no login before TLS.
    StartTls,
    /// No TLS at all: for devices on a trusted segment that cannot do TLS.
    None,
}

/// How the gateway reaches an upstream over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamTlsMode {
    Implicit,
    StartTls,
}

/// The SASL mechanism that carries an OAuth 2.0 access token to the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthMechanism {
    /// Google's and Microsoft's `XOAUTH2` (`user=...^Aauth=Bearer ...^A^A`).
    XOAuth2,
    /// RFC 7628 `OAUTHBEARER` (`n,a=...,^Ahost=...^Aport=...^Aauth=Bearer ...^A^A`).
    OAuthBearer,
}

/// How the gateway logs in to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamLogin {
    /// The client's own login and password, passed on.
    Passthrough,
    /// The client's login is checked against a local `[[account]]`; the upstream login is the
    /// account's mailbox with an access token from its `[[oauth]]` app.
    OAuth(OAuthMechanism),
}

/// One upstream mail server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSettings {
    pub name: String,
    /// `host:port`, resolved at each connection so DNS changes are followed.
    pub address: String,
    pub protocol: Protocol,
    pub tls: UpstreamTlsMode,
    /// Extra trust anchors added to the system roots.
    pub ca_file: Option<PathBuf>,
    /// The name the certificate must carry; defaults to the host part of `address`.
    pub server_name: String,
    /// Pass-through or OAuth 2.0 login.
    pub login: UpstreamLogin,
}

/// One listening socket facing legacy clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSettings {
    pub name: String,
    pub protocol: Protocol,
    pub bind: SocketAddr,
    pub tls: ClientTlsMode,
    /// The oldest TLS version this listener accepts; below TLS 1.2 switches on the legacy
    /// suites and OpenSSL security level 0 for this listener only.
    pub min_tls: TlsVersion,
    /// PEM chain and key; required unless `tls` is `None`.
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Name of the upstream this listener bridges to.
    pub upstream: String,
    /// Text of the greeting sent to clients.
    pub greeting: String,
    /// `Some` when clients arrive through load balancers that put a PROXY protocol header
    /// before their bytes; `None` for clients that connect directly.
    pub proxy_protocol: Option<ProxyProtocol>,
    /// SMTP: `Some` on a listener that also accepts mail without authentication from listed
    /// networks and senders (devices that cannot authenticate), sent upstream as one account.
    pub relay: Option<RelaySettings>,
}

/// Who may submit mail without authenticating on an SMTP listener, and whom the gateway logs
/// in upstream as for them. Anyone else gets `550 5.7.1`, so the listener is never an open
/// relay; and the upstream still judges each recipient for that account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySettings {
    /// The client networks (after any PROXY protocol header); never one holding every address.
    pub networks: Vec<IpNet>,
    /// The envelope senders they may use: whole addresses, no wildcards.
    pub senders: Vec<String>,
    pub login: RelayLogin,
}

/// How the gateway logs in upstream for relayed mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayLogin {
    /// On a pass-through upstream: this user name and password (read from a root-only file).
    Password(proto::Credentials),
    /// On an upstream with `auth = "oauth"`: the mailbox of the `[[account]]` with this login,
    /// with an access token from its app (its password is not needed).
    Account(String),
}

impl RelaySettings {
    /// Whether a client at `address` may send without authenticating. An IPv4 client of a
    /// dual-stack socket is judged by its IPv4 address.
    pub fn admits_client(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.networks.iter().any(|net| net.contains(&address))
    }

    /// Whether `sender` (a MAIL FROM address as sent) is listed. The comparison ignores ASCII
    /// case in the whole address: RFC 5321 lets a server treat local parts as case-sensitive,
    /// but Exchange Online and Postfix with virtual mailboxes do not, and the upstream still
    /// decides whether the account may send as the address it names. Non-ASCII letters must
    /// match exactly (their case folding is not defined for SMTPUTF8 addresses).
    pub fn admits_sender(&self, sender: &str) -> bool {
        self.senders
            .iter()
            .any(|listed| listed.eq_ignore_ascii_case(sender))
    }

    /// The user name the relayed sessions log in upstream with, for their records.
    pub fn login_name(&self) -> &str {
        match &self.login {
            RelayLogin::Password(credentials) => credentials.user(),
            RelayLogin::Account(login) => login,
        }
    }
}

/// A listener behind load balancers that speak the PROXY protocol (v1 or v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyProtocol {
    /// The networks of the load balancers: only they may connect, and each must send a header.
    pub trusted: Vec<IpNet>,
}

impl ProxyProtocol {
    /// Whether `sender` may connect and name a client. An IPv4 peer on an IPv6 socket
    /// (`::ffff:10.0.0.5`) is judged by its IPv4 address, as the config writes it.
    pub fn trusts(&self, sender: IpAddr) -> bool {
        let sender = sender.to_canonical();
        self.trusted.iter().any(|net| net.contains(&sender))
    }
}

/// Time limits that keep a stuck peer from holding a session forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From accept until the upstream has accepted the login.
    pub pre_auth: Duration,
    /// For the client's TLS handshake, including reading its ClientHello.
    pub client_handshake: Duration,
    /// For connecting to the upstream, its TLS handshake and its login dialogue.
    pub upstream: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            pre_auth: Duration::from_secs(60),
            client_handshake: Duration::from_secs(15),
            upstream: Duration::from_secs(20),
        }
    }
}

/// Limits per client address, so one host on the LAN cannot lock the others out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimitSettings {
    /// Most connections not yet logged in, across all listeners; further ones are closed at
    /// once and counted.
    pub max_unauthenticated: usize,
    /// Most connections not yet logged in from one client address; at most half of
    /// `max_unauthenticated`, so one address can never take them all.
    pub max_unauthenticated_per_client: u32,
    /// Failed logins from one client address within `failed_login_window` (counted from the
    /// first) after which the gateway refuses its logins itself until the window closes.
    pub failed_logins_per_client: u32,
    pub failed_login_window: Duration,
}

impl Default for ClientLimitSettings {
    fn default() -> Self {
        ClientLimitSettings {
            max_unauthenticated: 1_000,
            max_unauthenticated_per_client: 32,
            failed_logins_per_client: 10,
            failed_login_window: Duration::from_secs(600),
        }
    }
}

/// Everything the gateway needs to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySettings {
    pub listeners: Vec<ListenerSettings>,
    pub upstreams: Vec<UpstreamSettings>,
    pub timeouts: Timeouts,
    /// Most logged-in sessions at once across all listeners; a login beyond is refused as
    /// temporary. Connections not yet logged in have their own budget in `client_limits`.
    pub max_sessions: usize,
    pub client_limits: ClientLimitSettings,
}
