//! Sans-I/O pre-authentication dialogues for the mail protocols mailtls bridges: IMAP, POP3
//! and SMTP submission.
//!
//! Each protocol has two machines:
//! - a client-facing one ([`ClientDialogue`]) that speaks to the legacy client from the greeting
//!   until the client has handed over its credentials and the upstream has accepted them;
//! - an upstream-facing one ([`UpstreamDialogue`]) that logs in to the real server with whatever
//!   [`UpstreamAuth`] the gateway chose (the client's own password today, OAuth 2.0 later).
//!
//! Neither touches a socket or a clock: bytes go in with `feed`, and `next` says what to do.
//! After login the gateway stops parsing and copies bytes both ways.
//!
//! [`starttls`] is the scanner's machine: the plaintext opening of an IMAP, POP3 or SMTP
//! connection up to STARTTLS, reading what the server advertises and never sending credentials.

pub mod credentials;
pub mod imap;
mod line;
mod login_end;
pub mod pop3;
pub mod sasl;
pub mod smtp;
pub mod starttls;
#[cfg(test)]
mod testing;

pub use credentials::{
    is_control_or_format, BearerMechanism, BearerToken, BearerTokenError, Credentials,
    CredentialsRefused, Secret, MAX_USER_BYTES,
};

/// Limits the client-facing machines enforce before login, so a hostile client cannot make the
/// gateway buffer without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest command line accepted before login, in bytes, CRLF included.
    pub max_line: usize,
    /// Largest IMAP literal accepted in a pre-login command.
    pub max_literal: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 8 * 1024,
            max_literal: 8 * 1024,
        }
    }
}

/// How the listener's TLS stands when the client-facing machine starts; it decides which
/// capabilities are advertised and whether a login is allowed yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientTls {
    /// TLS is already up (implicit TLS listener).
    Active,
    /// Plaintext now, STARTTLS/STLS offered; login refused until TLS is up.
    StartTlsRequired,
    /// Plaintext listener with no TLS at all; login allowed in the clear (a LAN-only choice).
    None,
}

/// Settings of one client-facing dialogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogueOptions {
    pub tls: ClientTls,
    pub limits: Limits,
    /// Text of the greeting after the status, e.g. "mailtls ready".
    pub greeting: String,
}

/// Why a client-facing dialogue ended without a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The client said LOGOUT/QUIT; the goodbye has already been emitted.
    ClientQuit,
    /// The client broke the protocol beyond repair (line or literal over the limit, bytes that
    /// cannot be framed); a BYE/-ERR with the reason has already been emitted.
    ProtocolError(String),
}

/// What the gateway must do next for the client-facing dialogue.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientStep {
    /// Feed more bytes from the client.
    NeedInput,
    /// Write these bytes to the client, then call `next` again.
    Write(Vec<u8>),
    /// The positive reply to STARTTLS/STLS was emitted by a previous `Write`: run the TLS
    /// handshake now, then call `tls_started`. Bytes the client pipelined after the command
    /// have been discarded (they were sent in the clear and could be an injection).
    StartTls,
    /// The client presented credentials. Decide (policy), log in upstream, then call
    /// `login_accepted` or `login_rejected`.
    Login(Credentials),
    /// SMTP, on a listener that relays for devices that cannot authenticate: a client that
    /// has not authenticated began a mail transaction with `MAIL FROM:<sender>` (`sender` as
    /// sent, empty for `<>`). Decide whether this client may send as `sender` without
    /// authenticating, log in upstream as the relay account, then call `login_accepted` (the
    /// MAIL command goes upstream, whose reply is the client's) or `login_rejected`.
    Relay { sender: String },
    /// The client identified itself (IMAP ID); the machine has answered on its own.
    /// Field names and values as the client sent them; `None` for NIL.
    ClientId(Vec<(String, Option<String>)>),
    /// The dialogue is over without a login; close after writing what was emitted.
    Close(Ending),
}

/// The client-facing pre-auth machine of one protocol.
pub trait ClientDialogue {
    /// Bytes just read from the client.
    fn feed(&mut self, input: &[u8]);
    /// The next thing to do; call until `NeedInput`, `Login`, `StartTls` or `Close`.
    fn next(&mut self) -> ClientStep;
    /// The TLS handshake that followed `StartTls` has completed.
    fn tls_started(&mut self);
    /// The upstream accepted the login. `upstream_text` is the human text (and response code)
    /// of the upstream's success reply. Returns the bytes to write to the client, followed by
    /// any client bytes already read past the login command, which belong to the upstream.
    /// `warning` is a policy's message the client must see with its login (a TLS version
    /// about to be refused): IMAP an untagged `OK [ALERT]` before the tagged OK, POP3 and
    /// SMTP the text of the success reply.
    fn login_accepted(self, upstream_text: &str, warning: Option<&str>) -> LoginAccepted;
    /// The upstream or the policy refused the login; the machine emits a failure reply (with
    /// `reason` as human text) and goes on, so the client may try again or quit.
    fn login_rejected(&mut self, reason: &str);
    /// A TLS floor policy refused the login; the machine emits the refusal in the protocol's
    /// own words, with `message` (one line of plain text) for the user, and goes on like
    /// [`login_rejected`](ClientDialogue::login_rejected): IMAP `NO [ALERT] message` (RFC 3501
    /// requires clients to show it), POP3 `-ERR [SYS/PERM] message` (RFC 3206: do not retry
    /// as is), SMTP `530 5.7.0 message` (the code Exchange Online and RFC 4954 use for a
    /// policy that demands a stronger channel).
    fn policy_refused(&mut self, message: &str);
    /// The gateway has to end the dialogue (pre-auth timeout, upstream unreachable, shutdown):
    /// returns the untagged BYE / -ERR line carrying `reason`, to write before closing.
    fn farewell(&mut self, reason: &str) -> Vec<u8>;
}

/// The hand-over from the client-facing dialogue to the byte splice.
#[derive(Debug, PartialEq, Eq)]
pub struct LoginAccepted {
    /// The success reply for the client (e.g. `a1 OK [CAPABILITY ...] Logged in\r\n`).
    pub to_client: Vec<u8>,
    /// Client bytes read after the login command (pipelined); forward them upstream as they are.
    pub to_upstream: Vec<u8>,
}

/// How the gateway authenticates to the upstream server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamAuth {
    /// Log in with the client's own user name and password.
    Password(Credentials),
    /// Log in to a mailbox with an OAuth 2.0 access token (XOAUTH2 or OAUTHBEARER).
    Bearer(BearerToken),
}

/// What the gateway must do next for the upstream-facing dialogue.
#[derive(PartialEq, Eq)]
pub enum UpstreamStep {
    /// Feed more bytes from the upstream.
    NeedInput,
    /// Write these bytes to the upstream, then call `next` again.
    Write(Vec<u8>),
    /// The upstream agreed to STARTTLS/STLS: run the TLS handshake (verified), then call
    /// `tls_started`.
    StartTls,
    /// Logged in. `text` is the human part of the upstream's success reply (for IMAP including
    /// any `[CAPABILITY ...]` code); `leftover` is upstream bytes read past that reply, which
    /// belong to the client.
    Authenticated { text: String, leftover: Vec<u8> },
    /// The upstream refused the password of an [`UpstreamAuth::Password`] login; `text` is its
    /// reason, for the client's NO/-ERR.
    Rejected { text: String },
    /// The upstream refused the access token of an [`UpstreamAuth::Bearer`] login. `text` is
    /// the reason in its NO/-ERR; `oauth_error` is the failure challenge it sent before that,
    /// decoded: the JSON status of RFC 7628 section 3.2.2, such as
    /// `{"status":"invalid_token","schemes":"bearer","scope":"mail"}`, on one line and at most
    /// [`sasl::MAX_FAILURE_CHALLENGE`] bytes of base64 long; `None` when it sent none (or an
    /// empty one). Neither holds the token.
    TokenRefused {
        text: String,
        oauth_error: Option<String>,
    },
    /// The upstream did not behave as a server of this protocol should (bad greeting, no
    /// STARTTLS when required, a reply that cannot be parsed); `reason` says what.
    Failed { reason: String },
}

/// Writes show only their length: they carry the password or token (SASL response, LOGIN
/// literal, PASS line), and a step is easily logged with `?step`.
impl std::fmt::Debug for UpstreamStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamStep::NeedInput => f.write_str("NeedInput"),
            UpstreamStep::Write(bytes) => write!(f, "Write(<{} bytes>)", bytes.len()),
            UpstreamStep::StartTls => f.write_str("StartTls"),
            UpstreamStep::Authenticated { text, leftover } => f
                .debug_struct("Authenticated")
                .field("text", text)
                .field("leftover", leftover)
                .finish(),
            UpstreamStep::Rejected { text } => {
                f.debug_struct("Rejected").field("text", text).finish()
            }
            UpstreamStep::TokenRefused { text, oauth_error } => f
                .debug_struct("TokenRefused")
                .field("text", text)
                .field("oauth_error", oauth_error)
                .finish(),
            UpstreamStep::Failed { reason } => {
                f.debug_struct("Failed").field("reason", reason).finish()
            }
        }
    }
}

/// The upstream-facing login machine of one protocol.
pub trait UpstreamDialogue {
    /// Bytes just read from the upstream.
    fn feed(&mut self, input: &[u8]);
    /// The next thing to do.
    fn next(&mut self) -> UpstreamStep;
    /// The TLS handshake that followed `StartTls` has completed.
    fn tls_started(&mut self);
}
