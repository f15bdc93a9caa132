//! The upstream-facing IMAP login: greeting, capabilities, STARTTLS, then AUTHENTICATE PLAIN
//! or LOGIN with the credentials the gateway chose.

use std::collections::VecDeque;

use super::response::{self, Response, Status};
use crate::line::{LineBuffer, LineTooLong};
use crate::sasl::encode_plain;
use crate::{Credentials, Secret, UpstreamAuth, UpstreamDialogue, UpstreamStep};

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
        /// challenge); it is answered with an empty response, once.
        may_answer_empty: bool,
    },
    Done,
    Failed(String),
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
            // An OAuth 2.0 variant adds its arm here: AUTHENTICATE XOAUTH2 with SASL-IR.
        }
    }

    /// AUTHENTICATE PLAIN where offered (with SASL-IR if possible), else LOGIN with
    /// synchronising literals, which carry every byte of any password.
    fn password_login(&mut self, credentials: &Credentials) -> UpstreamStep {
        let plain = self.has("AUTH=PLAIN");
        if !plain && self.has("LOGINDISABLED") {
            return self.fail("the upstream offers neither AUTH=PLAIN nor LOGIN (LOGINDISABLED)");
        }
        let tag = self.next_tag();
        let (command, continuations, may_answer_empty) = if plain && self.has("SASL-IR") {
            let command = format!("{tag} AUTHENTICATE PLAIN {}\r\n", encode_plain(credentials));
            (command.into_bytes(), vec![], true)
        } else if plain {
            let response = format!("{}\r\n", encode_plain(credentials));
            let command = format!("{tag} AUTHENTICATE PLAIN\r\n").into_bytes();
            (command, vec![Secret::new(response)], true)
        } else {
            let user = credentials.user().as_bytes();
            let password = credentials.password().expose();
            let command = format!("{tag} LOGIN {{{}}}\r\n", user.len()).into_bytes();
            let user_part = [user, format!(" {{{}}}\r\n", password.len()).as_bytes()].concat();
            let password_part = [password, b"\r\n"].concat();
            let parts = vec![Secret::new(user_part), Secret::new(password_part)];
            (command, parts, false)
        };
        self.phase = Phase::Authenticate {
            tag,
            continuations: continuations.into(),
            may_answer_empty,
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
            Response::Continue => Some(self.on_continue()),
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

    fn on_continue(&mut self) -> UpstreamStep {
        let Phase::Authenticate {
            continuations,
            may_answer_empty,
            ..
        } = &mut self.phase
        else {
            return self.fail("the upstream sent an unexpected continuation request");
        };
        if let Some(part) = continuations.pop_front() {
            return UpstreamStep::Write(part.expose().to_vec());
        }
        if std::mem::take(may_answer_empty) {
            return UpstreamStep::Write(b"\r\n".to_vec());
        }
        self.fail("the upstream kept asking for more authentication data")
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
            Phase::Authenticate { tag: ours, .. } if ours == tag => match status {
                Status::Ok => UpstreamStep::Authenticated {
                    text,
                    leftover: self.lines.take_rest(),
                },
                _ => UpstreamStep::Rejected { text },
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

    fn tls_started(&mut self) {
        if let Phase::Handshake = self.phase {
            self.tls_up = true;
            self.capabilities = None;
            self.phase = Phase::Decide;
        }
    }
}

#[cfg(test)]
mod tests;
