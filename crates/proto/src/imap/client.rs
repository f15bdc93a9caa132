//! The client-facing IMAP machine: greeting, capabilities, STARTTLS, ID, and the credentials of
//! LOGIN or AUTHENTICATE PLAIN / LOGIN.

use std::collections::VecDeque;

use super::command::{self, Command, CommandKind};
use super::framer::{Frame, Framer, TooLong};
use crate::line::{single_line, without_line_ending};
use crate::sasl::{SaslExchange, SaslStep};
use crate::{
    ClientDialogue, ClientStep, ClientTls, Credentials, CredentialsRefused, DialogueOptions,
    Ending, LoginAccepted,
};

/// The IMAP pre-auth dialogue with one client.
///
/// After `Close` was returned, every later `next` returns the same `Close` again. After
/// [`farewell`](ClientDialogue::farewell), and while a `Login` or `StartTls` awaits the
/// gateway's answer, `next` returns `NeedInput`. Input fed while the machine waits for
/// `tls_started`, or after it has closed, is dropped: bytes that arrive in the clear around a
/// TLS handshake may be an injection.
#[derive(Debug)]
pub struct ClientSession {
    options: DialogueOptions,
    tls_up: bool,
    framer: Framer,
    state: State,
    /// Steps decided together with an earlier one (a reply, then what follows it).
    queued: VecDeque<ClientStep>,
}

#[derive(Debug)]
enum State {
    /// The greeting has not been emitted yet.
    Greeting,
    /// Reading commands.
    Commands,
    /// A `+` challenge was sent for AUTHENTICATE; the next line is the client's response.
    SaslResponse {
        tag: String,
        exchange: SaslExchange,
    },
    /// `StartTls` was returned; waiting for `tls_started`.
    Handshake,
    /// `Login` was returned; waiting for `login_accepted` or `login_rejected`.
    Verdict {
        tag: String,
    },
    Closed(Ending),
    /// `farewell` was called.
    SaidFarewell,
}

impl ClientSession {
    /// A session that greets the client on the first `next`.
    pub fn new(options: DialogueOptions) -> Self {
        let framer = Framer::new(options.limits);
        ClientSession {
            options,
            tls_up: false,
            framer,
            state: State::Greeting,
            queued: VecDeque::new(),
        }
    }

    /// True while the listener demands STARTTLS and TLS is not up yet.
    fn privacy_required(&self) -> bool {
        self.options.tls == ClientTls::StartTlsRequired && !self.tls_up
    }

    /// IMAP4rev1 first, then what this gateway serves itself; upstream capabilities reach the
    /// client only after login.
    fn capabilities(&self) -> &'static str {
        match self.privacy_required() {
            true => "IMAP4rev1 SASL-IR LITERAL+ ID STARTTLS LOGINDISABLED",
            false => "IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN AUTH=LOGIN",
        }
    }

    fn greeting(&self) -> Vec<u8> {
        let text = one_line(&self.options.greeting, "IMAP4rev1 gateway ready");
        format!("* OK [CAPABILITY {}] {text}\r\n", self.capabilities()).into_bytes()
    }

    fn close(&mut self, reason: &str) -> ClientStep {
        let ending = Ending::ProtocolError(reason.to_owned());
        self.queued.push_back(ClientStep::Close(ending.clone()));
        self.state = State::Closed(ending);
        ClientStep::Write(format!("* BYE {reason}\r\n").into_bytes())
    }

    fn on_message(&mut self, message: &[u8]) -> ClientStep {
        let Command { tag, kind } = match command::parse(message) {
            Ok(command) => command,
            Err(rejection) => return reply(rejection.tag.as_deref(), "BAD", rejection.reason),
        };
        let reply_tag = Some(tag.as_str());
        match kind {
            CommandKind::Capability => {
                let caps = format!("* CAPABILITY {}\r\n", self.capabilities()).into_bytes();
                ClientStep::Write(
                    [caps, reply_bytes(reply_tag, "OK", "CAPABILITY completed")].concat(),
                )
            }
            CommandKind::Noop => reply(reply_tag, "OK", "NOOP completed"),
            CommandKind::Logout => {
                self.state = State::Closed(Ending::ClientQuit);
                self.queued.push_back(ClientStep::Close(Ending::ClientQuit));
                let bye = b"* BYE Logging out\r\n".to_vec();
                ClientStep::Write([bye, reply_bytes(reply_tag, "OK", "LOGOUT completed")].concat())
            }
            CommandKind::StartTls if self.privacy_required() => {
                // Whatever the client pipelined after STARTTLS came in the clear: drop it.
                self.framer.discard_rest();
                self.state = State::Handshake;
                self.queued.push_back(ClientStep::StartTls);
                reply(reply_tag, "OK", "Begin TLS negotiation now")
            }
            CommandKind::StartTls if self.options.tls == ClientTls::None => {
                reply(reply_tag, "BAD", "STARTTLS is not offered on this port")
            }
            CommandKind::StartTls => reply(reply_tag, "BAD", "TLS is already active"),
            CommandKind::Id(pairs) => {
                self.queued.push_back(ClientStep::ClientId(pairs));
                let id = b"* ID NIL\r\n".to_vec();
                ClientStep::Write([id, reply_bytes(reply_tag, "OK", "ID completed")].concat())
            }
            CommandKind::Login { .. } | CommandKind::Authenticate { .. }
                if self.privacy_required() =>
            {
                reply(reply_tag, "NO", "[PRIVACYREQUIRED] Run STARTTLS first")
            }
            CommandKind::Login { user, password } => {
                self.login(&tag, Credentials::new(user, password))
            }
            CommandKind::Authenticate {
                mechanism,
                initial_response,
            } => match (SaslExchange::start(&mechanism), initial_response) {
                (None, _) => reply(
                    reply_tag,
                    "NO",
                    "[CANNOT] Unsupported mechanism; use PLAIN or LOGIN",
                ),
                (Some(exchange), Some(response)) => {
                    self.sasl_response(&tag, exchange, response.expose())
                }
                (Some(exchange), None) => self.challenge(tag, exchange),
            },
            CommandKind::Other => reply(
                reply_tag,
                "BAD",
                "Unknown command or not valid before login; log in first",
            ),
        }
    }

    /// Hands credentials to the gateway, or refuses them with `NO [CANNOT]` (RFC 5530: the
    /// login can never succeed) when the gateway's rules on credentials do.
    fn login(
        &mut self,
        tag: &str,
        credentials: Result<Credentials, CredentialsRefused>,
    ) -> ClientStep {
        match credentials {
            Ok(credentials) => {
                self.state = State::Verdict {
                    tag: tag.to_owned(),
                };
                ClientStep::Login(credentials)
            }
            Err(why) => {
                self.state = State::Commands;
                reply(Some(tag), "NO", &format!("[CANNOT] Login refused: {why}"))
            }
        }
    }

    /// Sends a `+` challenge and waits for the client's response to it.
    fn challenge(&mut self, tag: String, exchange: SaslExchange) -> ClientStep {
        let challenge = format!("+ {}\r\n", exchange.challenge()).into_bytes();
        self.state = State::SaslResponse { tag, exchange };
        ClientStep::Write(challenge)
    }

    /// A SASL response, as initial response or as the line after a `+` challenge.
    fn sasl_response(&mut self, tag: &str, exchange: SaslExchange, response: &[u8]) -> ClientStep {
        self.state = State::Commands;
        if response == b"*" {
            return reply(Some(tag), "BAD", "AUTHENTICATE cancelled");
        }
        let mechanism = exchange.mechanism();
        match exchange.respond(response) {
            SaslStep::Challenge(next) => self.challenge(tag.to_owned(), next),
            SaslStep::Done(credentials) => self.login(tag, Ok(credentials)),
            SaslStep::Refused(why) => self.login(tag, Err(why)),
            SaslStep::Failed(error) => {
                let text = format!("Invalid SASL {mechanism} response: {error}");
                reply(Some(tag), "BAD", &text)
            }
        }
    }
}

impl ClientDialogue for ClientSession {
    fn feed(&mut self, input: &[u8]) {
        match self.state {
            State::Handshake | State::Closed(_) | State::SaidFarewell => {}
            _ => self.framer.feed(input),
        }
    }

    fn next(&mut self) -> ClientStep {
        if let Some(step) = self.queued.pop_front() {
            return step;
        }
        match &self.state {
            State::Greeting => {
                self.state = State::Commands;
                ClientStep::Write(self.greeting())
            }
            State::Commands => match self.framer.next_message() {
                Frame::Incomplete => ClientStep::NeedInput,
                Frame::Message(message) => self.on_message(&message),
                Frame::LiteralAccepted => {
                    ClientStep::Write(b"+ Ready for literal data\r\n".to_vec())
                }
                Frame::LiteralRefused(head) => {
                    let text = format!(
                        "Literal too large (the limit is {} bytes)",
                        self.options.limits.max_literal
                    );
                    reply(command::tag_of(&head).as_deref(), "BAD", &text)
                }
                Frame::TooLong => self.close("Command line too long"),
                Frame::LiteralTooLong => self.close("Literal too large"),
            },
            State::SaslResponse { .. } => match self.framer.next_line() {
                Ok(None) => ClientStep::NeedInput,
                Ok(Some(line)) => {
                    let State::SaslResponse { tag, exchange } =
                        std::mem::replace(&mut self.state, State::Commands)
                    else {
                        unreachable!("matched just above")
                    };
                    self.sasl_response(&tag, exchange, without_line_ending(&line))
                }
                Err(TooLong) => self.close("Command line too long"),
            },
            State::Closed(ending) => ClientStep::Close(ending.clone()),
            State::Handshake | State::Verdict { .. } | State::SaidFarewell => ClientStep::NeedInput,
        }
    }

    fn tls_started(&mut self) {
        if let State::Handshake = self.state {
            self.tls_up = true;
            self.state = State::Commands;
        }
    }

    /// Without a pending `Login` there is no tag to answer, and the reply is untagged.
    fn login_accepted(mut self, upstream_text: &str, warning: Option<&str>) -> LoginAccepted {
        let tag = match &self.state {
            State::Verdict { tag } => Some(tag.as_str()),
            _ => None,
        };
        let text = one_line(upstream_text, "Logged in");
        // RFC 3501 7.1: a client must show an ALERT's text to its user.
        let mut to_client = warning.map_or_else(Vec::new, |message| {
            reply_bytes(None, "OK", &format!("[ALERT] {}", one_line(message, "")))
        });
        to_client.extend(reply_bytes(tag, "OK", &text));
        LoginAccepted {
            to_client,
            to_upstream: self.framer.take_rest(),
        }
    }

    /// A `reason` that already starts with a response code (such as the upstream's own
    /// `[AUTHENTICATIONFAILED] ...`) is passed on as it is; otherwise
    /// `[AUTHENTICATIONFAILED]` is put in front.
    fn login_rejected(&mut self, reason: &str) {
        let State::Verdict { tag } = &self.state else {
            return;
        };
        let reason = one_line(reason, "Authentication failed");
        let text = match reason.starts_with('[') {
            true => reason,
            false => format!("[AUTHENTICATIONFAILED] {reason}"),
        };
        let step = reply(Some(tag), "NO", &text);
        self.queued.push_back(step);
        self.state = State::Commands;
    }

    fn policy_refused(&mut self, message: &str) {
        self.login_rejected(&format!("[ALERT] {message}"));
    }

    fn farewell(&mut self, reason: &str) -> Vec<u8> {
        self.queued.clear();
        self.state = State::SaidFarewell;
        format!("* BYE {}\r\n", one_line(reason, "Closing")).into_bytes()
    }
}

fn reply_bytes(tag: Option<&str>, status: &str, text: &str) -> Vec<u8> {
    format!("{} {status} {text}\r\n", tag.unwrap_or("*")).into_bytes()
}

fn reply(tag: Option<&str>, status: &str, text: &str) -> ClientStep {
    ClientStep::Write(reply_bytes(tag, status, text))
}

/// Text that came from outside (configuration, upstream, gateway) made safe for one reply line,
/// trimmed, with `fallback` standing in when nothing is left: IMAP replies need some text.
fn one_line(text: &str, fallback: &str) -> String {
    match single_line(text).trim() {
        "" => fallback.to_owned(),
        trimmed => trimmed.to_owned(),
    }
}

#[cfg(test)]
mod tests;
