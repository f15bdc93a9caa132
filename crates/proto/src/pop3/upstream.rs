//! The upstream-facing POP3 machine: greeting, optional STLS, CAPA, then AUTH PLAIN or
//! USER/PASS.

use super::status::{classify, excerpt, text, Reply};
use crate::line::{without_line_ending, LineBuffer};
use crate::sasl::encode_plain;
use crate::{Credentials, Secret, UpstreamAuth, UpstreamDialogue, UpstreamStep};

/// Longest upstream line accepted, ending included; real replies are far shorter.
const MAX_LINE: usize = 64 * 1024;

/// RFC 5034 section 4: an AUTH command with its initial response must fit in 255 octets,
/// or the response goes on a line of its own after the server's `+ `.
const MAX_AUTH_LINE: usize = 255;

/// Logs in to a POP3 server: waits for the `+OK` greeting, upgrades with `STLS` when asked,
/// reads `CAPA` and uses `AUTH PLAIN` when the server lists `SASL PLAIN`, else `USER`/`PASS`.
#[derive(Debug)]
pub struct UpstreamLogin {
    auth: UpstreamAuth,
    starttls: bool,
    input: LineBuffer,
    state: State,
}

#[derive(Debug)]
enum State {
    Greeting,
    StlsReply,
    AwaitingTls,
    /// TLS is up; CAPA goes out next.
    SendCapa,
    CapaStatus,
    CapaList {
        sasl_plain: bool,
    },
    /// `AUTH PLAIN` went out without its response; the server's `+ ` is due.
    PlainChallenge {
        response: Secret,
    },
    PlainReply,
    UserReply {
        pass_line: Secret,
    },
    PassReply,
    Done(Outcome),
}

/// The end of the dialogue, repeated by every later `next`.
#[derive(Debug)]
enum Outcome {
    Authenticated { text: String, leftover: Vec<u8> },
    Rejected(String),
    Failed(String),
}

impl UpstreamLogin {
    /// A login with `auth`; `starttls` asks for `STLS` right after the greeting, before any
    /// credential or capability crosses the wire.
    pub fn new(auth: UpstreamAuth, starttls: bool) -> Self {
        UpstreamLogin {
            auth,
            starttls,
            input: LineBuffer::new(MAX_LINE),
            state: State::Greeting,
        }
    }

    fn finish(&mut self, outcome: Outcome) -> UpstreamStep {
        self.state = State::Done(outcome);
        self.next()
    }

    fn fail(&mut self, reason: String) -> UpstreamStep {
        self.finish(Outcome::Failed(reason))
    }

    fn unexpected(&mut self, after: &str, line: &[u8]) -> UpstreamStep {
        self.fail(format!("unexpected reply to {after}: {}", excerpt(line)))
    }

    /// Sends the first login command. Each kind of `UpstreamAuth` picks its mechanism here;
    /// XOAUTH2 will need `SASL XOAUTH2` in the capabilities, the way passwords prefer PLAIN.
    fn start_login(&mut self, sasl_plain: bool) -> UpstreamStep {
        let first = match &self.auth {
            UpstreamAuth::Password(credentials) if sasl_plain => Ok(auth_plain(credentials)),
            UpstreamAuth::Password(credentials) => user_pass(credentials),
        };
        match first {
            Ok((state, command)) => {
                self.state = state;
                UpstreamStep::Write(command)
            }
            Err(why) => self.finish(Outcome::Rejected(why.into())),
        }
    }

    /// Moves the machine on by one upstream line; `None` when it needs the next line.
    fn handle_line(&mut self, line: &[u8]) -> Option<UpstreamStep> {
        let reply = classify(line);
        let state = std::mem::replace(&mut self.state, State::Greeting);
        let step = match (state, reply) {
            (State::Greeting, Reply::Ok(_)) if self.starttls => {
                self.state = State::StlsReply;
                UpstreamStep::Write(b"STLS\r\n".to_vec())
            }
            (State::Greeting, Reply::Ok(_)) => {
                self.state = State::CapaStatus;
                UpstreamStep::Write(b"CAPA\r\n".to_vec())
            }
            (State::Greeting, Reply::Err(why)) => self.fail(format!(
                "the server refused the connection: {}",
                excerpt(why)
            )),
            (State::Greeting, _) => {
                self.fail(format!("the greeting is not POP3: {}", excerpt(line)))
            }
            (State::StlsReply, Reply::Ok(_)) => {
                // Anything after the +OK came in the clear and could be an injection.
                self.input.discard_rest();
                self.state = State::AwaitingTls;
                UpstreamStep::StartTls
            }
            (State::StlsReply, Reply::Err(why)) => {
                self.fail(format!("the server refused STLS: {}", excerpt(why)))
            }
            (State::StlsReply, _) => self.unexpected("STLS", line),
            (State::CapaStatus, Reply::Ok(_)) => {
                self.state = State::CapaList { sasl_plain: false };
                return None;
            }
            // A server without CAPA (RFC 1939 only) still knows USER/PASS.
            (State::CapaStatus, Reply::Err(_)) => self.start_login(false),
            (State::CapaStatus, _) => self.unexpected("CAPA", line),
            (State::CapaList { sasl_plain }, _) if line == b"." => self.start_login(sasl_plain),
            (State::CapaList { sasl_plain }, _) => {
                self.state = State::CapaList {
                    sasl_plain: sasl_plain || offers_sasl_plain(line),
                };
                return None;
            }
            (State::PlainChallenge { response }, Reply::Continue) => {
                self.state = State::PlainReply;
                UpstreamStep::Write(response.expose().to_vec())
            }
            (State::PlainChallenge { .. }, Reply::Err(why)) => {
                self.finish(Outcome::Rejected(text(why)))
            }
            (State::PlainChallenge { .. }, _) => self.unexpected("AUTH PLAIN", line),
            (State::UserReply { pass_line }, Reply::Ok(_)) => {
                self.state = State::PassReply;
                UpstreamStep::Write(pass_line.expose().to_vec())
            }
            (State::UserReply { .. } | State::PassReply | State::PlainReply, Reply::Err(why)) => {
                self.finish(Outcome::Rejected(text(why)))
            }
            (State::UserReply { .. }, _) => self.unexpected("USER", line),
            (State::PassReply | State::PlainReply, Reply::Ok(success)) => {
                let leftover = self.input.take_rest();
                self.finish(Outcome::Authenticated {
                    text: text(success),
                    leftover,
                })
            }
            (State::PassReply, _) => self.unexpected("PASS", line),
            (State::PlainReply, _) => self.unexpected("AUTH PLAIN", line),
            (state @ (State::AwaitingTls | State::SendCapa | State::Done(_)), _) => {
                // next() never reads a line in these states.
                self.state = state;
                return None;
            }
        };
        Some(step)
    }
}

/// The `AUTH PLAIN` command and the state awaiting its answer. `Credentials` never hold a
/// NUL, which would split a PLAIN message's fields.
fn auth_plain(credentials: &Credentials) -> (State, Vec<u8>) {
    let response = encode_plain(credentials);
    let command = format!("AUTH PLAIN {response}\r\n");
    if command.len() <= MAX_AUTH_LINE {
        return (State::PlainReply, command.into_bytes());
    }
    let response = Secret::new(format!("{response}\r\n"));
    (
        State::PlainChallenge { response },
        b"AUTH PLAIN\r\n".to_vec(),
    )
}

/// The `USER` command and the state holding its `PASS`, or why these credentials cannot be
/// sent that way.
fn user_pass(credentials: &Credentials) -> Result<(State, Vec<u8>), &'static str> {
    // A line break would end the command early and send the rest as a second command. The
    // user name cannot hold one (nor a NUL: `Credentials` refuse control characters), and
    // neither can hold a NUL; a password can hold a line break (IMAP literals carry one).
    let password = credentials.password().expose();
    if password.iter().any(|b| matches!(b, b'\r' | b'\n')) {
        return Err("the password holds a line break, which POP3 USER/PASS cannot carry");
    }
    let pass_line = Secret::new([b"PASS ", password, b"\r\n"].concat());
    let command = format!("USER {}\r\n", credentials.user()).into_bytes();
    Ok((State::UserReply { pass_line }, command))
}

/// Whether a CAPA line is `SASL` listing `PLAIN` among its mechanisms (RFC 2449 section 6.3).
fn offers_sasl_plain(line: &[u8]) -> bool {
    let mut words = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    words
        .next()
        .is_some_and(|keyword| keyword.eq_ignore_ascii_case(b"SASL"))
        && words.any(|mechanism| mechanism.eq_ignore_ascii_case(b"PLAIN"))
}

impl UpstreamDialogue for UpstreamLogin {
    /// Input is dropped while TLS is due (cleartext that could be an injection) and after the
    /// dialogue ended.
    fn feed(&mut self, input: &[u8]) {
        match self.state {
            State::AwaitingTls | State::Done(_) => {}
            _ => self.input.feed(input),
        }
    }

    fn next(&mut self) -> UpstreamStep {
        loop {
            match &mut self.state {
                State::AwaitingTls => return UpstreamStep::NeedInput,
                // RFC 2595 section 4: capabilities learned before TLS are void, so CAPA is
                // asked only now.
                State::SendCapa => {
                    self.state = State::CapaStatus;
                    return UpstreamStep::Write(b"CAPA\r\n".to_vec());
                }
                State::Done(Outcome::Authenticated { text, leftover }) => {
                    // The leftover is handed over once; a repeated call must not duplicate it.
                    return UpstreamStep::Authenticated {
                        text: text.clone(),
                        leftover: std::mem::take(leftover),
                    };
                }
                State::Done(Outcome::Rejected(text)) => {
                    return UpstreamStep::Rejected { text: text.clone() }
                }
                State::Done(Outcome::Failed(reason)) => {
                    return UpstreamStep::Failed {
                        reason: reason.clone(),
                    }
                }
                _ => {}
            }
            let line = match self.input.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => return UpstreamStep::NeedInput,
                Err(_) => {
                    return self.fail(format!(
                        "the server sent a line longer than {MAX_LINE} bytes"
                    ))
                }
            };
            if let Some(step) = self.handle_line(without_line_ending(&line)) {
                return step;
            }
        }
    }

    fn tls_started(&mut self) {
        if matches!(self.state, State::AwaitingTls) {
            self.state = State::SendCapa;
        }
    }
}

#[cfg(test)]
mod tests;
