//! What a server's answer to a probe means for the probed version, without I/O.
//!
//! Rules from what scanners learned (research/probing.md): a fatal alert or a close means
//! refused; a ServerHello at a lower version is a downgrade, i.e. refused; a suite that was
//! never offered is a broken server, not a success; a timeout is never a refusal.

use wire::{
    parse_server_reply, Alert, Certificates, ReplyError, ServerHello, ServerReply, TlsVersion,
};

use proto::starttls::quote;

/// The meaning of one probe's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
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
pub(crate) fn judge(
    requested: TlsVersion,
    offered: &[u16],
    reply: &[u8],
    want_chain: bool,
) -> Option<Answer> {
    match read(requested, offered, reply, want_chain) {
        Reading::Done(answer) => Some(answer),
        Reading::More { .. } => None,
    }
}

/// The answer when the server closed the connection after sending `reply`.
pub(crate) fn judge_end(requested: TlsVersion, offered: &[u16], reply: &[u8]) -> Answer {
    if reply.is_empty() {
        return Answer::Rejected {
            reason: "the server closed the connection without answering".into(),
            try_other_suites: false,
            silent: true,
        };
    }
    match read(requested, offered, reply, false) {
        Reading::Done(answer) => answer,
        // Only warnings and then a close: a close is a refusal, and like a bare close it
        // says nothing about suites.
        Reading::More {
            after_warning: Some(alert),
        } => Answer::Rejected {
            reason: format!("{alert}, then the server closed the connection"),
            try_other_suites: false,
            silent: false,
        },
        Reading::More {
            after_warning: None,
        } => Answer::Unknown {
            reason: "the server closed the connection in the middle of its reply".into(),
        },
    }
}

/// What the bytes so far say.
enum Reading {
    Done(Answer),
    /// Not enough bytes. `after_warning` is the last warning alert when the bytes are whole
    /// warning alerts and nothing else: a close now is a refusal, not a cut-off reply.
    More {
        after_warning: Option<Alert>,
    },
}

fn read(requested: TlsVersion, offered: &[u16], reply: &[u8], want_chain: bool) -> Reading {
    let mut rest = reply;
    let mut warning = None;
    loop {
        return Reading::Done(match parse_server_reply(rest) {
            Err(ReplyError::Incomplete) => {
                return Reading::More {
                    after_warning: warning.filter(|_| rest.is_empty()),
                }
            }
            Err(ReplyError::NotTls) => Answer::Unknown {
                reason: format!("the server answered without TLS: \"{}\"", first_line(rest)),
            },
            Err(e @ (ReplyError::Malformed(_) | ReplyError::TooLarge)) => Answer::Unknown {
                reason: e.to_string(),
            },
            Ok(ServerReply::Alert(alert))
                if !alert.is_fatal() && alert.description != CLOSE_NOTIFY =>
            {
                // A warning (e.g. unrecognized_name) before the ServerHello: read on after it.
                rest = &rest[alert_len(rest)..];
                warning = Some(alert);
                continue;
            }
            Ok(ServerReply::Alert(alert)) => Answer::Rejected {
                reason: alert.to_string(),
                try_other_suites: NO_SHARED_SUITE_ALERTS.contains(&alert.description),
                silent: false,
            },
            Ok(ServerReply::Hello(hello)) => {
                if want_chain && hello.certificates == Certificates::Pending {
                    return Reading::More {
                        after_warning: None,
                    };
                }
                judge_hello(requested, offered, hello)
            }
        });
    }
}

/// How many bytes the alert at the start of `reply` takes, as the wire parser frames it
/// (record header, whole alerts, however the parser joins records), so that the judge
/// never reads record headers itself. `reply` must parse as an alert. A prefix shorter
/// than the alert is incomplete and any longer one gives the same alert, so the shortest
/// prefix read as an alert is found by bisection: a few parses, not one per byte.
fn alert_len(reply: &[u8]) -> usize {
    // parse(reply[..low]) is no alert yet; parse(reply[..high]) is one.
    let (mut low, mut high) = (0, reply.len());
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if matches!(
            parse_server_reply(&reply[..middle]),
            Ok(ServerReply::Alert(_))
        ) {
            high = middle;
        } else {
            low = middle;
        }
    }
    high
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
