//! The upstream-facing IMAP login: greeting, capabilities, STARTTLS, then AUTHENTICATE PLAIN
//! or LOGIN with a password, or AUTHENTICATE XOAUTH2 / OAUTHBEARER with an access token.

use std::collections::VecDeque;

use super::response::{self, Response, Status};
use crate::line::{LineBuffer, LineTooLong, ReplySize};
use crate::sasl::{self, decode_failure_challenge, encode_bearer, encode_plain};
use crate::{BearerToken, Credentials, Secret, UpstreamAuth, UpstreamDialogue, UpstreamStep};

/// Longest upstream line accepted before login. Servers put long capability lists and
/// referrals in these lines; anything longer is not a pre-login reply.
const MAX_LINE: usize = 64 * 1024;

/// Logs in to one upstream IMAP server.
///
/// After `Authenticated` or `Rejected`, every later `next` returns `Failed` (the dialogue is
/// over); after `Failed`, the same `Failed` again.
#[derive(Debug)]
pub struct UpstreamLogin {
    auth: UpstreamAuth,
    starttls: bool,
    tls_up: bool,
    lines: LineBuffer,
    /// The size of the reply to the command last sent, capped.
    reply: ReplySize,
    /// What the server advertised; `None` until known (and again after STARTTLS, when the
    /// plaintext list must be forgotten).
    capabilities: Option<Vec<String>>,
    tags_sent: u32,
    phase: Phase,
}

#[derive(Debug)]
enum Phase {
    Greeting,
    /// Capabilities are known (or must be asked for): pick the next command.
    Decide,
    Capability {
        tag: String,
        collected: Vec<String>,
    },
    StartTls {
        tag: String,
    },
    Handshake,
    Authenticate {
        tag: String,
        /// What to send for each continuation request, in order.
        continuations: VecDeque<Secret>,
        /// A SASL exchange may get one challenge too many (a server reporting an error as a
        /// challenge, as bearer mechanisms do); it is answered with this response, once.
        /// `None` for LOGIN, whose continuations are literals, not SASL.
        failure_answer: Option<&'static str>,
        /// A bearer login: a refusal is the token's, with the failure challenge if one came.
        bearer: Option<BearerRefusal>,
    },
    Done,
    Failed(String),
}

/// What a bearer login knows of a refusal before the tagged NO arrives.
#[derive(Debug, Default)]
struct BearerRefusal {
    /// The decoded failure challenge, once the upstream sent one.
    oauth_error: Option<String>,
}

impl UpstreamLogin {
    /// A login that reads the greeting first; with `starttls`, TLS is negotiated before any
    /// credentials are sent.
    pub fn new(auth: UpstreamAuth, starttls: bool) -> Self {
        UpstreamLogin {
            auth,
            starttls,
            tls_up: false,
            lines: LineBuffer::new(MAX_LINE),
            reply: ReplySize::default(),
            capabilities: None,
            tags_sent: 0,
            phase: Phase::Greeting,
        }
    }

    fn next_tag(&mut self) -> String {
        self.tags_sent += 1;
        format!("m{}", self.tags_sent)
    }

    fn has(&self, capability: &str) -> bool {
        self.capabilities
            .iter()
            .flatten()
            .any(|name| name == capability)
    }

    fn fail(&mut self, reason: impl Into<String>) -> UpstreamStep {
        let reason = reason.into();
        self.phase = Phase::Failed(reason.clone());
        UpstreamStep::Failed { reason }
    }

    fn decide(&mut self) -> UpstreamStep {
        if self.capabilities.is_none() {
            let tag = self.next_tag();
            let command = format!("{tag} CAPABILITY\r\n").into_bytes();
            self.phase = Phase::Capability {
                tag,
                collected: Vec::new(),
            };
            return UpstreamStep::Write(command);
        }
        if self.starttls && !self.tls_up {
            if !self.has("STARTTLS") {
                return self.fail("the upstream does not offer STARTTLS");
            }
            let tag = self.next_tag();
            let command = format!("{tag} STARTTLS\r\n").into_bytes();
            self.phase = Phase::StartTls { tag };
            return UpstreamStep::Write(command);
        }
        match self.auth.clone() {
            UpstreamAuth::Password(credentials) => self.password_login(&credentials),
            UpstreamAuth::Bearer(token) => self.bearer_login(&token),
        }
    }

    /// `AUTHENTICATE mechanism response`, or without SASL-IR the command alone and the
    /// response after the server's go-ahead.
    fn authenticate(
        &mut self,
        mechanism: &str,
        response: String,
        failure_answer: &'static str,
        bearer: Option<BearerRefusal>,
    ) -> UpstreamStep {
        let tag = self.next_tag();
        let (command, continuations) = if self.has("SASL-IR") {
            let command = format!("{tag} AUTHENTICATE {mechanism} {response}\r\n");
            (command, vec![])
        } else {
            let command = format!("{tag} AUTHENTICATE {mechanism}\r\n");
            (command, vec![Secret::new(format!("{response}\r\n"))])
        };
        self.phase = Phase::Authenticate {
            tag,
            continuations: continuations.into(),
            failure_answer: Some(failure_answer),
            bearer,
        };
        UpstreamStep::Write(command.into_bytes())
    }

    /// AUTHENTICATE with the token's mechanism, which the server must advertise: a server
    /// that does not know it could only refuse, and that would read as a refused token.
    fn bearer_login(&mut self, token: &BearerToken) -> UpstreamStep {
        let mechanism = token.mechanism();
        if !self.has(&format!("AUTH={}", mechanism.name())) {
            return self.fail(format!(
                "the upstream does not offer AUTH={}",
                mechanism.name()
            ));
        }
        self.authenticate(
            mechanism.name(),
            encode_bearer(token),
            sasl::failure_challenge_answer(mechanism),
            Some(BearerRefusal::default()),
        )
    }

    /// AUTHENTICATE PLAIN where offered (with SASL-IR if possible), else LOGIN with
    /// synchronising literals, which carry every byte of any password.
    fn password_login(&mut self, credentials: &Credentials) -> UpstreamStep {
        let plain = self.has("AUTH=PLAIN");
        if !plain && self.has("LOGINDISABLED") {
            return self.fail("the upstream offers neither AUTH=PLAIN nor LOGIN (LOGINDISABLED)");
        }
        if plain {
            return self.authenticate("PLAIN", encode_plain(credentials), "", None);
        }
        let tag = self.next_tag();
        let user = credentials.user().as_bytes();
        let password = credentials.password().expose();
        let command = format!("{tag} LOGIN {{{}}}\r\n", user.len()).into_bytes();
        let user_part = [user, format!(" {{{}}}\r\n", password.len()).as_bytes()].concat();
        let password_part = [password, b"\r\n"].concat();
        self.phase = Phase::Authenticate {
            tag,
            continuations: [Secret::new(user_part), Secret::new(password_part)].into(),
            failure_answer: None,
            bearer: None,
        };
        UpstreamStep::Write(command)
    }

    fn on_line(&mut self, line: &[u8]) -> Option<UpstreamStep> {
        let Some(response) = response::parse(line) else {
            return Some(self.fail("the upstream sent a line that is not an IMAP response"));
        };
        if let Phase::Greeting = self.phase {
            return Some(self.on_greeting(response));
        }
        match response {
            Response::Status {
                tag: None,
                status: Status::Bye,
                text,
                ..
            } => Some(self.fail(format!("the upstream closed the session: {text}"))),
            Response::Capability(names) => {
                // Only a reply to our CAPABILITY counts; anything else may be stale.
                if let Phase::Capability { collected, .. } = &mut self.phase {
                    collected.extend(names);
                }
                None
            }
            Response::Status { tag: None, .. } | Response::OtherData => None,
            Response::Continue(challenge) => Some(self.on_continue(&challenge)),
            Response::Status {
                tag: Some(tag),
                status,
                text,
                capabilities,
            } => Some(self.on_tagged(&tag, status, text, capabilities)),
        }
    }

    fn on_greeting(&mut self, response: Response) -> UpstreamStep {
        match response {
            Response::Status {
                tag: None,
                status: Status::Ok,
                capabilities,
                ..
            } => {
                self.capabilities = capabilities;
                self.decide()
            }
            Response::Status {
                tag: None,
                status: Status::PreAuth,
                ..
            } => self.fail("the upstream greeted with PREAUTH, so it would not check the login"),
            Response::Status {
                tag: None,
                status: Status::Bye,
                text,
                ..
            } => self.fail(format!("the upstream refused the connection: {text}")),
            _ => self.fail("the upstream's greeting is not an IMAP greeting"),
        }
    }

    fn on_continue(&mut self, challenge: &[u8]) -> UpstreamStep {
        let Phase::Authenticate {
            continuations,
            failure_answer,
            bearer,
            ..
        } = &mut self.phase
        else {
            return self.fail("the upstream sent an unexpected continuation request");
        };
        if let Some(part) = continuations.pop_front() {
            return UpstreamStep::Write(part.expose().to_vec());
        }
        let Some(answer) = failure_answer.take() else {
            return self.fail("the upstream kept asking for more authentication data");
        };
        if let Some(refusal) = bearer {
            match decode_failure_challenge(challenge) {
                Ok(status) => refusal.oauth_error = status,
                Err(_) => {
                    return self.fail(format!(
                        "the upstream sent a SASL challenge over {} bytes",
                        sasl::MAX_FAILURE_CHALLENGE
                    ))
                }
            }
        }
        UpstreamStep::Write(format!("{answer}\r\n").into_bytes())
    }

    fn on_tagged(
        &mut self,
        tag: &str,
        status: Status,
        text: String,
        capabilities: Option<Vec<String>>,
    ) -> UpstreamStep {
        let phase = std::mem::replace(&mut self.phase, Phase::Done);
        match phase {
            Phase::Capability {
                tag: ours,
                mut collected,
            } if ours == tag => {
                if status != Status::Ok {
                    return self.fail(format!("the upstream refused CAPABILITY: {text}"));
                }
                collected.extend(capabilities.into_iter().flatten());
                self.capabilities = Some(collected);
                self.decide()
            }
            Phase::StartTls { tag: ours } if ours == tag => {
                if status != Status::Ok {
                    return self.fail(format!("the upstream refused STARTTLS: {text}"));
                }
                // Bytes after the STARTTLS reply came in the clear and could be an injection.
                self.lines.discard_rest();
                self.phase = Phase::Handshake;
                UpstreamStep::StartTls
            }
            Phase::Authenticate {
                tag: ours, bearer, ..
            } if ours == tag => match (status, bearer) {
                (Status::Ok, _) => UpstreamStep::Authenticated {
                    text,
                    leftover: self.lines.take_rest(),
                },
                (_, Some(refusal)) => UpstreamStep::TokenRefused {
                    text,
                    oauth_error: refusal.oauth_error,
                },
                (_, None) => UpstreamStep::Rejected { text },
            },
            _ => self.fail("the upstream replied with a tag that was not sent"),
        }
    }
}

impl UpstreamDialogue for UpstreamLogin {
    fn feed(&mut self, input: &[u8]) {
        match self.phase {
            Phase::Handshake | Phase::Done | Phase::Failed(_) => {}
            _ => self.lines.feed(input),
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
        if let Phase::Handshake = self.phase {
            self.tls_up = true;
            self.capabilities = None;
            self.phase = Phase::Decide;
        }
    }
}

impl UpstreamLogin {
    /// The next step; [`next`](UpstreamDialogue::next) also starts counting a new reply after
    /// every write.
    fn step(&mut self) -> UpstreamStep {
        match &self.phase {
            Phase::Failed(reason) => {
                return UpstreamStep::Failed {
                    reason: reason.clone(),
                }
            }
            Phase::Done => {
                return UpstreamStep::Failed {
                    reason: "the login dialogue is already over".into(),
                }
            }
            Phase::Handshake => return UpstreamStep::NeedInput,
            Phase::Decide => return self.decide(),
            _ => {}
        }
        // Before login a server sends status, CAPABILITY and continuation responses, none of
        // which carries a literal, so plain lines suffice.
        loop {
            match self.lines.next_line() {
                Ok(None) => return UpstreamStep::NeedInput,
                Ok(Some(line)) => {
                    if let Err(too_large) = self.reply.count(line.len()) {
                        return self.fail(format!("the upstream sent {too_large}"));
                    }
                    if let Some(step) = self.on_line(&line) {
                        return step;
                    }
                }
                Err(LineTooLong) => {
                    return self.fail(format!("the upstream sent a line over {MAX_LINE} bytes"))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
