//! What a server's answer to a probe means for the probed version, without I/O.
//!
//! Rules from what scanners learned (research/probing.md): a fatal alert or a close means
//! refused; a ServerHello at a lower version is a downgrade, i.e. refused; a suite that was
//! never offered is a broken server, not a success; a timeout is never a refusal.

use wire::{parse_server_reply, Certificates, ReplyError, ServerHello, ServerReply, TlsVersion};

use crate::starttls::quote;

/// The meaning of one probe's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The server chose the probed version and an offered suite.
    Accepted {
        /// The suite it chose.
        suite: u16,
        /// Its certificate chain (DER, leaf first), when sent in the clear and wanted.
        chain: Option<Vec<Vec<u8>>>,
    },
    /// The server refused the hello.
    Rejected {
        /// How, e.g. "fatal alert protocol_version (70)".
        reason: String,
        /// The refusal may mean "no shared suite" rather than "no such version": a hello
        /// with other suites could still succeed.
        try_other_suites: bool,
        /// The server said nothing in TLS (it closed or reset the connection): if it does
        /// so for every version, it may not speak TLS at all.
        silent: bool,
    },
    /// Nothing can be concluded; the reason says why.
    Unknown {
        /// Why, e.g. "malformed reply: ...".
        reason: String,
    },
}

/// Alert descriptions that servers also send when they share no suite with the hello:
/// handshake_failure, illegal_parameter, insufficient_security. A bare close means the
/// version is refused (research/probing.md), so it does not cost further hellos.
const NO_SHARED_SUITE_ALERTS: [u8; 3] = [40, 47, 71];
const CLOSE_NOTIFY: u8 = 0;

/// The answer in the bytes `reply` read so far after a hello offering `requested` with
/// `offered` suites, or `None` until more bytes arrive. With `want_chain`, a ServerHello
/// below TLS 1.3 is judged once its Certificate message is there too.
pub fn judge(
    requested: TlsVersion,
    offered: &[u16],
    reply: &[u8],
    want_chain: bool,
) -> Option<Answer> {
    let mut rest = reply;
    loop {
        return Some(match parse_server_reply(rest) {
            Err(ReplyError::Incomplete) => return None,
            Err(ReplyError::NotTls) => Answer::Unknown {
                reason: format!("the server answered without TLS: \"{}\"", first_line(rest)),
            },
            Err(e @ (ReplyError::Malformed(_) | ReplyError::TooLarge)) => Answer::Unknown {
                reason: e.to_string(),
            },
            Ok(ServerReply::Alert(alert))
                if !alert.is_fatal() && alert.description != CLOSE_NOTIFY =>
            {
                // A warning (e.g. unrecognized_name) before the ServerHello: skip its record.
                let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
                // The parser read the whole record, so this holds; if not, wait for more.
                rest = rest.get(5 + len..)?;
                continue;
            }
            Ok(ServerReply::Alert(alert)) => Answer::Rejected {
                reason: alert.to_string(),
                try_other_suites: NO_SHARED_SUITE_ALERTS.contains(&alert.description),
                silent: false,
            },
            Ok(ServerReply::Hello(hello)) => {
                if want_chain && hello.certificates == Certificates::Pending {
                    return None;
                }
                judge_hello(requested, offered, hello)
            }
        });
    }
}

/// The answer when the server closed the connection after sending `reply`.
pub fn judge_end(requested: TlsVersion, offered: &[u16], reply: &[u8]) -> Answer {
    if reply.is_empty() {
        return Answer::Rejected {
            reason: "the server closed the connection without answering".into(),
            try_other_suites: false,
            silent: true,
        };
    }
    judge(requested, offered, reply, false).unwrap_or_else(|| Answer::Unknown {
        reason: "the server closed the connection in the middle of its reply".into(),
    })
}

fn judge_hello(requested: TlsVersion, offered: &[u16], hello: ServerHello) -> Answer {
    let Some(version) = hello.version() else {
        return Answer::Unknown {
            reason: format!(
                "the server chose version 0x{:04x}, which is no TLS version",
                hello.selected_version()
            ),
        };
    };
    if version < requested {
        return Answer::Rejected {
            reason: format!("the server answered with {version} instead"),
            try_other_suites: false,
            silent: false,
        };
    }
    if version > requested {
        return Answer::Unknown {
            reason: format!("the server answered {version} to a hello offering only {requested}"),
        };
    }
    if !offered.contains(&hello.cipher_suite) {
        return Answer::Unknown {
            reason: format!(
                "the server chose suite 0x{:04x}, which the hello did not offer (broken server)",
                hello.cipher_suite
            ),
        };
    }
    Answer::Accepted {
        suite: hello.cipher_suite,
        chain: match hello.certificates {
            Certificates::Chain(chain) => Some(chain),
            _ => None,
        },
    }
}

/// The start of a non-TLS reply, as the server's words.
fn first_line(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(bytes.len());
    quote(&String::from_utf8_lossy(&bytes[..end]))
}

#[cfg(test)]
mod tests;
