//! The upstream-facing POP3 machine: greeting, optional STLS, CAPA, then AUTH PLAIN or
//! USER/PASS with a password, or AUTH XOAUTH2 / OAUTHBEARER with an access token.

use super::status::{classify, excerpt, text, Reply};
use crate::line::{without_line_ending, LineBuffer, ReplySize};
use crate::login_end::LoginEnd;
use crate::sasl::{self, decode_failure_challenge, encode_bearer, encode_plain};
use crate::{BearerMechanism, Credentials, Secret, UpstreamAuth, UpstreamDialogue, UpstreamStep};

/// Longest upstream line accepted, ending included; real replies are far shorter.
const MAX_LINE: usize = 64 * 1024;

/// RFC 5034 section 4: an AUTH command with its initial response must fit in 255 octets,
/// or the response goes on a line of its own after the server's `+ `. Access tokens (a JWT
/// from Entra ID runs to a few kilobytes) therefore always take the second form.
const MAX_AUTH_LINE: usize = 255;

/// Logs in to a POP3 server: waits for the `+OK` greeting, upgrades with `STLS` when asked,
/// reads `CAPA`, then for a password uses `AUTH PLAIN` when the server lists `SASL PLAIN`,
/// else `USER`/`PASS`; for a token, `AUTH` with its mechanism, which the server must list.
#[derive(Debug)]
pub struct UpstreamLogin {
    auth: UpstreamAuth,
    starttls: bool,
    input: LineBuffer,
    /// The size of the reply to the command last sent, capped.
    reply: ReplySize,
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
        /// The mechanisms of the `SASL` lines so far, upper-cased.
        sasl: Vec<String>,
    },
    /// `AUTH` went out without its response; the server's `+ ` is due.
    SaslGoAhead {
        mechanism: SaslMechanism,
        response: Secret,
    },
    /// The SASL response went out; `+OK`, `-ERR` or, from a bearer mechanism, a failure
    /// challenge is due.
    SaslReply {
        mechanism: SaslMechanism,
    },
    /// A bearer mechanism's failure challenge was answered; the `-ERR` that ends the exchange
    /// is due.
    FailureAnswered {
        oauth_error: Option<String>,
    },
    UserReply {
        pass_line: Secret,
    },
    PassReply,
    Done(LoginEnd),
}

/// The SASL mechanism of an `AUTH` exchange.
#[derive(Debug, Clone, Copy)]
enum SaslMechanism {
    Plain,
    Bearer(BearerMechanism),
}

impl SaslMechanism {
    fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Bearer(bearer) => bearer.name(),
        }
    }

    /// How a `-ERR` with no failure challenge before it ends this exchange.
    fn refusal(self, why: &[u8]) -> LoginEnd {
        match self {
            SaslMechanism::Plain => LoginEnd::Rejected(text(why)),
            SaslMechanism::Bearer(_) => LoginEnd::TokenRefused {
                text: text(why),
                oauth_error: None,
            },
        }
    }
}

impl UpstreamLogin {
    /// A login with `auth`; `starttls` asks for `STLS` right after the greeting, before any
    /// credential or capability crosses the wire.
    pub fn new(auth: UpstreamAuth, starttls: bool) -> Self {
        UpstreamLogin {
            auth,
            starttls,
            input: LineBuffer::new(MAX_LINE),
            reply: ReplySize::default(),
            state: State::Greeting,
        }
    }

    fn finish(&mut self, outcome: LoginEnd) -> UpstreamStep {
        self.state = State::Done(outcome);
        self.next()
    }

    fn fail(&mut self, reason: String) -> UpstreamStep {
        self.finish(LoginEnd::Failed(reason))
    }

    fn unexpected(&mut self, after: &str, line: &[u8]) -> UpstreamStep {
        self.fail(format!("unexpected reply to {after}: {}", excerpt(line)))
    }

    /// Sends the first login command. Each kind of `UpstreamAuth` picks its mechanism here
    /// from the `SASL` mechanisms the server listed: passwords prefer PLAIN, a token needs
    /// its own mechanism (a server that does not know it could only refuse, and that would
    /// read as a refused token).
    fn start_login(&mut self, sasl: &[String]) -> UpstreamStep {
        let offers = |mechanism: &str| sasl.iter().any(|offered| offered == mechanism);
        let first = match &self.auth {
            UpstreamAuth::Password(credentials) if offers("PLAIN") => Ok(auth_plain(credentials)),
            UpstreamAuth::Password(credentials) => user_pass(credentials),
            UpstreamAuth::Bearer(token) if offers(token.mechanism().name()) => Ok(auth(
                SaslMechanism::Bearer(token.mechanism()),
                encode_bearer(token),
            )),
            UpstreamAuth::Bearer(token) => {
                let why = format!(
                    "the server does not offer SASL {}",
                    token.mechanism().name()
                );
                return self.fail(why);
            }
        };
        match first {
            Ok((state, command)) => {
                self.state = state;
                UpstreamStep::Write(command)
            }
            Err(why) => self.finish(LoginEnd::Rejected(why.into())),
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
                self.state = State::CapaList { sasl: Vec::new() };
                return None;
            }
            // A server without CAPA (RFC 1939 only) still knows USER/PASS.
            (State::CapaStatus, Reply::Err(_)) => self.start_login(&[]),
            (State::CapaStatus, _) => self.unexpected("CAPA", line),
            (State::CapaList { sasl }, _) if line == b"." => self.start_login(&sasl),
            (State::CapaList { mut sasl }, _) => {
                sasl.extend(sasl_mechanisms(line));
                self.state = State::CapaList { sasl };
                return None;
            }
            (
                State::SaslGoAhead {
                    mechanism,
                    response,
                },
                Reply::Continue(_),
            ) => {
                self.state = State::SaslReply { mechanism };
                UpstreamStep::Write(response.expose().to_vec())
            }
            (
                State::SaslGoAhead { mechanism, .. } | State::SaslReply { mechanism },
                Reply::Err(why),
            ) => self.finish(mechanism.refusal(why)),
            (
                State::SaslReply {
                    mechanism: SaslMechanism::Bearer(bearer),
                },
                Reply::Continue(challenge),
            ) => match decode_failure_challenge(challenge) {
                Ok(oauth_error) => {
                    self.state = State::FailureAnswered { oauth_error };
                    let answer = sasl::failure_challenge_answer(bearer);
                    UpstreamStep::Write(format!("{answer}\r\n").into_bytes())
                }
                Err(_) => self.fail(format!(
                    "the server sent a SASL challenge over {} bytes",
                    sasl::MAX_FAILURE_CHALLENGE
                )),
            },
            (State::FailureAnswered { oauth_error }, Reply::Err(why)) => {
                self.finish(LoginEnd::TokenRefused {
                    text: text(why),
                    oauth_error,
                })
            }
            // A +OK after a failure challenge contradicts it, but the server says the login
            // holds, and a session that works is what the client came for.
            (
                State::SaslReply { .. } | State::FailureAnswered { .. } | State::PassReply,
                Reply::Ok(success),
            ) => {
                let leftover = self.input.take_rest();
                self.finish(LoginEnd::Authenticated {
                    text: text(success),
                    leftover,
                })
            }
            (State::SaslGoAhead { mechanism, .. } | State::SaslReply { mechanism }, _) => {
                self.unexpected(&format!("AUTH {}", mechanism.name()), line)
            }
            (State::FailureAnswered { .. }, _) => {
                self.unexpected("the answer to a SASL failure challenge", line)
            }
            (State::UserReply { pass_line }, Reply::Ok(_)) => {
                self.state = State::PassReply;
                UpstreamStep::Write(pass_line.expose().to_vec())
            }
            (State::UserReply { .. } | State::PassReply, Reply::Err(why)) => {
                self.finish(LoginEnd::Rejected(text(why)))
            }
            (State::UserReply { .. }, _) => self.unexpected("USER", line),
            (State::PassReply, _) => self.unexpected("PASS", line),
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
    auth(SaslMechanism::Plain, encode_plain(credentials))
}

/// The `AUTH` command with its base64 `response` and the state awaiting its answer: the
/// response on the command line when the line fits in [`MAX_AUTH_LINE`], else on its own
/// line after the server's `+ `.
fn auth(mechanism: SaslMechanism, response: String) -> (State, Vec<u8>) {
    let name = mechanism.name();
    let command = format!("AUTH {name} {response}\r\n");
    if command.len() <= MAX_AUTH_LINE {
        return (State::SaslReply { mechanism }, command.into_bytes());
    }
    let response = Secret::new(format!("{response}\r\n"));
    let command = format!("AUTH {name}\r\n").into_bytes();
    (
        State::SaslGoAhead {
            mechanism,
            response,
        },
        command,
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

/// The mechanisms of a CAPA line `SASL mechanism...` (RFC 2449 section 6.3), upper-cased;
/// none for any other line.
fn sasl_mechanisms(line: &[u8]) -> Vec<String> {
    let mut words = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    if !words
        .next()
        .is_some_and(|keyword| keyword.eq_ignore_ascii_case(b"SASL"))
    {
        return Vec::new();
    }
    words
        .map(|mechanism| String::from_utf8_lossy(mechanism).to_ascii_uppercase())
        .collect()
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
        let step = self.step();
        if let UpstreamStep::Write(_) = step {
            self.reply.restart();
        }
        step
    }

    fn tls_started(&mut self) {
        if matches!(self.state, State::AwaitingTls) {
            self.state = State::SendCapa;
        }
    }
}

impl UpstreamLogin {
    /// The next step; [`next`](UpstreamDialogue::next) also starts counting a new reply after
    /// every write.
    fn step(&mut self) -> UpstreamStep {
        loop {
            match &mut self.state {
                State::AwaitingTls => return UpstreamStep::NeedInput,
                // RFC 2595 section 4: capabilities learned before TLS are void, so CAPA is
                // asked only now.
                State::SendCapa => {
                    self.state = State::CapaStatus;
                    return UpstreamStep::Write(b"CAPA\r\n".to_vec());
                }
                State::Done(end) => return end.step(),
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
            if let Err(too_large) = self.reply.count(line.len()) {
                return self.fail(format!("the server sent {too_large}"));
            }
            if let Some(step) = self.handle_line(without_line_ending(&line)) {
                return step;
            }
        }
    }
}

#[cfg(test)]
mod tests;
