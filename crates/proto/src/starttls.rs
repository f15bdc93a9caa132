//! The plaintext part of a STARTTLS connection as the scanner holds it, without I/O: greeting,
//! capabilities, the STARTTLS command and its answer, for IMAP, POP3 and SMTP.
//!
//! The caller owns the socket: it asks [`Dialogue::step`] what to do, writes what it is told
//! to send, feeds what it reads to [`Dialogue::receive`], and starts TLS on
//! [`Action::StartTls`]. One command is sent at a time, each after the whole reply to the one
//! before (never pipelined: some servers drop early talkers). Credentials are never sent;
//! whether the server would take them before TLS is read from what it advertises.

mod imap;
mod lines;
mod pop3;
mod smtp;

use std::fmt;

use serde::Serialize;

pub use lines::quote;
use lines::Lines;

/// The mail protocol spoken before (STARTTLS) or inside (implicit) TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// IMAP4rev1.
    Imap,
    /// POP3.
    Pop3,
    /// SMTP (submission or relay).
    Smtp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::Smtp => "smtp",
        })
    }
}

/// Longest line accepted from a server, in bytes.
pub const MAX_LINE: usize = 8192;
/// Most lines accepted in one reply (a capability list, a multi-line banner).
pub const MAX_REPLY_LINES: usize = 1000;

/// What the caller does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes to the server, then call [`Dialogue::step`] again.
    Send(Vec<u8>),
    /// Read from the server, pass the bytes to [`Dialogue::receive`], call `step` again.
    Read,
    /// The server accepted STARTTLS: send the ClientHello. `leftover` holds bytes the
    /// server sent after its go-ahead line; they belong to the TLS stream.
    StartTls {
        /// Bytes after the go-ahead line.
        leftover: Vec<u8>,
    },
}

/// Why a STARTTLS dialogue could not reach TLS; the server's own words where it gave some.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogueError {
    /// TLS bytes where a plaintext greeting belongs: the port speaks implicit TLS.
    #[error("the server sent TLS where a plaintext greeting was expected (an implicit-TLS port?)")]
    NotPlaintext,
    /// A line without an end within [`MAX_LINE`] bytes.
    #[error("the server sent a line longer than {MAX_LINE} bytes")]
    LineTooLong,
    /// More than [`MAX_REPLY_LINES`] lines in one reply.
    #[error("the server sent more than {MAX_REPLY_LINES} lines in one reply")]
    TooManyLines,
    /// The server turned the connection away.
    #[error("the server refused the session: {0}")]
    Refused(String),
    /// The server said it limits connections (SMTP 421, "too many connections").
    #[error("the server is limiting connections: {0} (try --slow)")]
    RateLimited(String),
    /// The server answered STARTTLS with an error.
    #[error("the server refused STARTTLS: {0}")]
    StartTlsRefused(String),
    /// A reply that fits no rule of the protocol.
    #[error("unexpected reply to {during}: {reply}")]
    Unexpected {
        /// The step the reply answered.
        during: &'static str,
        /// The server's words.
        reply: String,
    },
}

/// What the plaintext part showed, reported for every STARTTLS target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Findings {
    /// The server's greeting line (the last line of a multi-line SMTP banner).
    pub greeting: Option<String>,
    /// Capabilities advertised before TLS; `None` when the server would not list them.
    pub capabilities: Option<Vec<String>>,
    /// Whether STARTTLS (POP3: STLS) was among them.
    pub starttls_advertised: Option<bool>,
    /// Whether a client could authenticate before TLS.
    pub plaintext_auth: Option<PlaintextAuth>,
}

/// Whether the server lets a client send credentials before TLS, and what shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlaintextAuth {
    /// True when a login before TLS is offered.
    pub offered: bool,
    /// What the server advertised, e.g. "CAPABILITY lacks LOGINDISABLED".
    pub evidence: String,
}

/// One STARTTLS dialogue from greeting to the server's go-ahead.
#[derive(Debug)]
pub struct Dialogue {
    machine: Machine,
    lines: Lines,
    findings: Findings,
    // Once failed, the same error forever: the caller may ask again after reporting.
    failed: Option<DialogueError>,
    started_tls: bool,
}

#[derive(Debug)]
enum Machine {
    Imap(imap::Imap),
    Pop3(pop3::Pop3),
    Smtp(smtp::Smtp),
}

impl Dialogue {
    /// A dialogue for `protocol`; SMTP introduces itself with `EHLO client_name`.
    pub fn new(protocol: Protocol, client_name: &str) -> Dialogue {
        let machine = match protocol {
            Protocol::Imap => Machine::Imap(imap::Imap::default()),
            Protocol::Pop3 => Machine::Pop3(pop3::Pop3::default()),
            Protocol::Smtp => Machine::Smtp(smtp::Smtp::new(client_name)),
        };
        Dialogue {
            machine,
            lines: Lines::default(),
            findings: Findings::default(),
            failed: None,
            started_tls: false,
        }
    }

    /// Bytes read from the server.
    pub fn receive(&mut self, bytes: &[u8]) {
        self.lines.feed(bytes);
    }

    /// The next thing to do.
    pub fn step(&mut self) -> Result<Action, DialogueError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = match &mut self.machine {
            Machine::Imap(m) => m.next(&mut self.lines, &mut self.findings),
            Machine::Pop3(m) => m.next(&mut self.lines, &mut self.findings),
            Machine::Smtp(m) => m.next(&mut self.lines, &mut self.findings),
        };
        match &result {
            Err(e) => self.failed = Some(e.clone()),
            Ok(Action::StartTls { .. }) => self.started_tls = true,
            Ok(_) => {}
        }
        result
    }

    /// What the dialogue has seen so far.
    pub fn findings(&self) -> &Findings {
        &self.findings
    }

    /// The step now waiting for the server, for "closed during ..." messages.
    pub fn phase(&self) -> &'static str {
        match &self.machine {
            Machine::Imap(m) => m.phase(),
            Machine::Pop3(m) => m.phase(),
            Machine::Smtp(m) => m.phase(),
        }
    }

    /// The command that ends the session politely; `None` once TLS was agreed, when the
    /// plaintext session is over.
    pub fn goodbye(&self) -> Option<&'static [u8]> {
        if self.started_tls {
            return None;
        }
        Some(match &self.machine {
            Machine::Imap(_) => b"a9 LOGOUT\r\n",
            Machine::Pop3(_) | Machine::Smtp(_) => b"QUIT\r\n",
        })
    }
}

/// A refusal, told apart as rate limiting when the server's words say so.
fn refusal(line: &str) -> DialogueError {
    let lower = line.to_ascii_lowercase();
    let limited = [
        "too many",
        "maximum number of connections",
        "rate limit",
        "try again later",
    ]
    .iter()
    .any(|w| lower.contains(w));
    if limited {
        DialogueError::RateLimited(quote(line))
    } else {
        DialogueError::Refused(quote(line))
    }
}

/// Whether `word` is among `capabilities`, ignoring case.
fn has(capabilities: &[String], word: &str) -> bool {
    capabilities.iter().any(|c| c.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests;
