//! The upstream-facing SMTP machine: greeting, EHLO, STARTTLS and EHLO again, then AUTH PLAIN
//! (or LOGIN where PLAIN is not offered, as on Exchange Online) with the credentials the
//! gateway chose.

use std::collections::VecDeque;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::extensions::SmtpExtensions;
use super::reply::{Reply, ReplyReader};
use crate::line::{without_line_ending, LineBuffer};
use crate::login_end::LoginEnd;
use crate::sasl::{
    decode_failure_challenge, encode_bearer, encode_plain, failure_challenge_answer,
    ChallengeTooLong, MAX_FAILURE_CHALLENGE,
};
use crate::{
    BearerMechanism, BearerToken, Credentials, Secret, UpstreamAuth, UpstreamDialogue, UpstreamStep,
};

/// Longest upstream line accepted, ending included. RFC 5321 allows 512 bytes per reply line;
/// anything far beyond that is not a submission server talking.
const MAX_LINE: usize = 8 * 1024;

/// RFC 4954 section 4: an AUTH command with its initial response should fit the normal
/// 512-octet command line, or the response goes on a line of its own after an empty `334 `.
const MAX_AUTH_LINE: usize = 512;

/// The name the gateway gives in EHLO unless told another.
const DEFAULT_EHLO_NAME: &str = "localhost";

/// Logs in to a submission server: waits for the `220` greeting, says EHLO, upgrades with
/// STARTTLS when asked and says EHLO again (RFC 3207), learns the server's
/// [`SmtpExtensions`], then authenticates.
#[derive(Debug)]
pub struct UpstreamLogin {
    auth: UpstreamAuth,
    /// False until TLS is up when STARTTLS is due; the first EHLO then asks for it.
    tls_up: bool,
    ehlo: Vec<u8>,
    input: LineBuffer,
    replies: ReplyReader,
    /// What the last EHLO reply after TLS (or without STARTTLS) advertised.
    extensions: Option<SmtpExtensions>,
    state: State,
}

#[derive(Debug)]
enum State {
    Greeting,
    Ehlo,
    StartTlsReply,
    AwaitingTls,
    /// TLS is up; EHLO goes out again next.
    SendEhlo,
    /// AUTH went out; `continuations` are the responses still to send, one per `334`.
    /// `bearer` is set for a token login, whose refusal may come as one more `334` carrying
    /// the server's JSON status (the failure challenge).
    Auth {
        continuations: VecDeque<Secret>,
        bearer: Option<BearerMechanism>,
    },
    /// The failure challenge of a token login was answered; the refusal comes next.
    FailureAnswered {
        oauth_error: Option<String>,
    },
    Done(LoginEnd),
}

impl UpstreamLogin {
    /// A login with `auth`; `starttls` asks for STARTTLS right after the first EHLO, before
    /// any credential crosses the wire (port 587); without it TLS is already up (port 465).
    pub fn new(auth: UpstreamAuth, starttls: bool) -> Self {
        UpstreamLogin {
            auth,
            tls_up: !starttls,
            ehlo: ehlo_command(DEFAULT_EHLO_NAME),
            input: LineBuffer::new(MAX_LINE),
            replies: ReplyReader::default(),
            extensions: None,
            state: State::Greeting,
        }
    }

    /// Says `name` (the gateway's host name) in EHLO instead of `localhost`.
    pub fn with_ehlo_name(mut self, name: &str) -> Self {
        self.ehlo = ehlo_command(name);
        self
    }

    /// The extensions the server advertised in its EHLO reply once TLS was up, for the
    /// client-facing machine to advertise (see [`super::ClientSession::new`]); `None` until
    /// that reply has been read.
    pub fn extensions(&self) -> Option<SmtpExtensions> {
        self.extensions
    }

    fn finish(&mut self, outcome: LoginEnd) -> UpstreamStep {
        self.state = State::Done(outcome);
        self.next()
    }

    fn fail(&mut self, reason: String) -> UpstreamStep {
        self.finish(LoginEnd::Failed(reason))
    }

    /// Moves the machine on by one complete reply.
    fn handle_reply(&mut self, reply: Reply) -> UpstreamStep {
        if reply.code == 421 {
            return self.fail(format!(
                "the server is closing the session: {}",
                reply.excerpt()
            ));
        }
        let state = std::mem::replace(&mut self.state, State::Greeting);
        match (state, reply.code) {
            (State::Greeting, 220) => {
                self.state = State::Ehlo;
                UpstreamStep::Write(self.ehlo.clone())
            }
            (State::Greeting, _) => self.fail(format!(
                "the server refused the session: {}",
                reply.excerpt()
            )),
            (State::Ehlo, 250) => {
                // The first line greets; each further line is one extension.
                let keywords = &reply.lines[1..];
                if !self.tls_up {
                    if !keywords.iter().any(|k| k.eq_ignore_ascii_case("STARTTLS")) {
                        return self.fail("the server does not offer STARTTLS".into());
                    }
                    self.state = State::StartTlsReply;
                    return UpstreamStep::Write(b"STARTTLS\r\n".to_vec());
                }
                self.extensions = Some(SmtpExtensions::from_ehlo_lines(
                    keywords.iter().map(String::as_str),
                ));
                self.start_login(&auth_mechanisms(keywords))
            }
            (State::Ehlo, _) => self.fail(format!("the server refused EHLO: {}", reply.excerpt())),
            (State::StartTlsReply, 220) => {
                // Anything after the 220 came in the clear and could be an injection.
                self.input.discard_rest();
                self.state = State::AwaitingTls;
                UpstreamStep::StartTls
            }
            (State::StartTlsReply, _) => {
                self.fail(format!("the server refused STARTTLS: {}", reply.excerpt()))
            }
            (State::Auth { .. }, 235) => {
                let leftover = self.input.take_rest();
                self.finish(LoginEnd::Authenticated {
                    text: reply.text(),
                    leftover,
                })
            }
            (
                State::Auth {
                    mut continuations,
                    bearer,
                },
                334,
            ) => match (continuations.pop_front(), bearer) {
                (Some(response), _) => {
                    self.state = State::Auth {
                        continuations,
                        bearer,
                    };
                    UpstreamStep::Write(response.expose().to_vec())
                }
                (None, Some(mechanism)) => match decode_failure_challenge(reply.text().as_bytes()) {
                    Ok(oauth_error) => {
                        self.state = State::FailureAnswered { oauth_error };
                        let answer = failure_challenge_answer(mechanism);
                        UpstreamStep::Write(format!("{answer}\r\n").into_bytes())
                    }
                    Err(ChallengeTooLong) => self.fail(format!(
                        "the server's failure challenge is longer than {MAX_FAILURE_CHALLENGE} bytes"
                    )),
                },
                (None, None) => self.fail(format!(
                    "the server asked for more than the mechanism sends: {}",
                    reply.excerpt()
                )),
            },
            // The server's verdict on this account: 535 5.7.8 (Postfix, Dovecot), Exchange
            // Online's 535 5.7.3 / 5.7.139 and 550 5.7.30 (basic authentication disabled), 554
            // after too many attempts. Other replies (500-504 syntax or mechanism, 530 and 538
            // TLS required, 534 mechanism too weak, 4xx) are the gateway's misconfiguration or
            // the server's trouble, not the user's password.
            (State::Auth { bearer: None, .. }, 535 | 550 | 554) => {
                self.finish(LoginEnd::Rejected(reply.text()))
            }
            // A token login refused: Exchange Online answers 535 5.7.3 at once.
            (State::Auth { bearer: Some(_), .. }, 535 | 550 | 554) => {
                self.finish(LoginEnd::TokenRefused {
                    text: reply.text(),
                    oauth_error: None,
                })
            }
            (State::FailureAnswered { oauth_error }, 535 | 550 | 554) => {
                self.finish(LoginEnd::TokenRefused {
                    text: reply.text(),
                    oauth_error,
                })
            }
            (State::FailureAnswered { .. }, 235) => {
                // The server says the login holds after all; a working session is the goal.
                let leftover = self.input.take_rest();
                self.finish(LoginEnd::Authenticated {
                    text: reply.text(),
                    leftover,
                })
            }
            (State::FailureAnswered { .. }, _) => self.fail(format!(
                "the server did not end the refused token login: {}",
                reply.excerpt()
            )),
            (State::Auth { .. }, _) => self.fail(format!(
                "the server did not accept AUTH: {}",
                reply.excerpt()
            )),
            (state @ (State::AwaitingTls | State::SendEhlo | State::Done(_)), _) => {
                // next() never reads a reply in these states.
                self.state = state;
                UpstreamStep::NeedInput
            }
        }
    }

    /// Sends the AUTH command. Each kind of `UpstreamAuth` picks its mechanism here among the
    /// server's: passwords prefer PLAIN and fall back to LOGIN; a token needs its own
    /// mechanism (a server that does not know it could only refuse, which would read as a
    /// refused token).
    fn start_login(&mut self, mechanisms: &[String]) -> UpstreamStep {
        let offers = |name: &str| mechanisms.iter().any(|m| m.eq_ignore_ascii_case(name));
        let first = match &self.auth {
            UpstreamAuth::Password(credentials) if offers("PLAIN") => auth_plain(credentials),
            UpstreamAuth::Password(credentials) if offers("LOGIN") => auth_login(credentials),
            UpstreamAuth::Bearer(token) if offers(token.mechanism().name()) => auth_bearer(token),
            UpstreamAuth::Bearer(token) => {
                let name = token.mechanism().name();
                return self.fail(format!("the server does not offer AUTH {name}"));
            }
            UpstreamAuth::Password(_) => {
                return self.fail(format!(
                    "the server offers neither AUTH PLAIN nor AUTH LOGIN (it offers: {})",
                    if mechanisms.is_empty() {
                        "no AUTH".to_string()
                    } else {
                        mechanisms.join(" ")
                    }
                ))
            }
        };
        let (command, continuations, bearer) = first;
        self.state = State::Auth {
            continuations,
            bearer,
        };
        UpstreamStep::Write(command)
    }
}

/// `EHLO name`, with `name` stripped of anything but letters, digits and `.-[]:`, so that it
/// cannot end the command early; `localhost` if nothing is left.
pub(crate) fn ehlo_command(name: &str) -> Vec<u8> {
    let name: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || ".-[]:".contains(*c))
        .collect();
    let name = if name.is_empty() { "localhost" } else { &name };
    format!("EHLO {name}\r\n").into_bytes()
}

/// The mechanisms of every `AUTH` line, in the `AUTH PLAIN LOGIN` and the old
/// `AUTH=PLAIN LOGIN` form alike.
fn auth_mechanisms(keywords: &[String]) -> Vec<String> {
    let mut mechanisms: Vec<String> = Vec::new();
    for line in keywords {
        let Some(rest) = line
            .get(..5)
            .filter(|head| head.eq_ignore_ascii_case("AUTH ") || head.eq_ignore_ascii_case("AUTH="))
            .map(|_| &line[5..])
        else {
            continue;
        };
        for mechanism in rest.split_ascii_whitespace() {
            let mechanism = mechanism.to_ascii_uppercase();
            if !mechanisms.contains(&mechanism) {
                mechanisms.push(mechanism);
            }
        }
    }
    mechanisms
}

/// An AUTH command, the responses to send after each `334`, and the token mechanism if any.
type AuthStart = (Vec<u8>, VecDeque<Secret>, Option<BearerMechanism>);

/// `AUTH PLAIN` with its initial response, or without it and the response to follow when the
/// line would be too long. `Credentials` never hold a NUL, which would split PLAIN's fields.
fn auth_plain(credentials: &Credentials) -> AuthStart {
    with_initial_response("PLAIN", encode_plain(credentials), None)
}

/// `AUTH XOAUTH2` or `AUTH OAUTHBEARER` with the token, as PLAIN sends its response.
fn auth_bearer(token: &BearerToken) -> AuthStart {
    let mechanism = token.mechanism();
    with_initial_response(mechanism.name(), encode_bearer(token), Some(mechanism))
}

/// `AUTH NAME response` when the line fits in [`MAX_AUTH_LINE`], else `AUTH NAME` with the
/// response to follow the server's empty `334` (tokens of 1.5-3 KB never fit).
fn with_initial_response(
    name: &str,
    response: String,
    bearer: Option<BearerMechanism>,
) -> AuthStart {
    let command = format!("AUTH {name} {response}\r\n");
    if command.len() <= MAX_AUTH_LINE {
        return (command.into_bytes(), VecDeque::new(), bearer);
    }
    let response = Secret::new(format!("{response}\r\n"));
    let command = format!("AUTH {name}\r\n").into_bytes();
    (command, VecDeque::from([response]), bearer)
}

/// `AUTH LOGIN`, then the user name and the password, each in base64 after its `334`.
fn auth_login(credentials: &Credentials) -> AuthStart {
    let user = format!("{}\r\n", STANDARD.encode(credentials.user().as_bytes()));
    let password = format!("{}\r\n", STANDARD.encode(credentials.password().expose()));
    (
        b"AUTH LOGIN\r\n".to_vec(),
        VecDeque::from([Secret::new(user), Secret::new(password)]),
        None,
    )
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
                // RFC 3207 section 4.2: what was learned before TLS is void; ask again.
                State::SendEhlo => {
                    self.state = State::Ehlo;
                    return UpstreamStep::Write(self.ehlo.clone());
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
            match self.replies.line(without_line_ending(&line)) {
                Ok(None) => {}
                Ok(Some(reply)) => return self.handle_reply(reply),
                Err(why) => return self.fail(why.to_string()),
            }
        }
    }

    fn tls_started(&mut self) {
        if matches!(self.state, State::AwaitingTls) {
            self.tls_up = true;
            self.replies = ReplyReader::default();
            self.state = State::SendEhlo;
        }
    }
}

#[cfg(test)]
mod tests;
