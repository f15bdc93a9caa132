//! The client-facing POP3 machine: greeting, CAPA, STLS, USER/PASS and AUTH PLAIN / LOGIN.

use std::mem;

use super::command::{self, Command};
use super::status::status_line;
use crate::line::{without_line_ending, LineBuffer};
use crate::sasl::{SaslExchange, SaslStep, CLIENT_MECHANISMS};
use crate::{
    ClientDialogue, ClientStep, ClientTls, Credentials, CredentialsRefused, DialogueOptions,
    Ending, LoginAccepted,
};

/// Serves a legacy POP3 client until it hands over credentials: answers `CAPA`, `STLS`, `USER`
/// (locally), `AUTH` and `QUIT` itself and emits [`ClientStep::Login`] on `PASS` or a complete
/// `AUTH PLAIN` or `AUTH LOGIN`. Bytes the client pipelines after the login stay buffered for
/// the upstream.
#[derive(Debug)]
pub struct ClientSession {
    options: DialogueOptions,
    input: LineBuffer,
    tls_up: bool,
    /// The name from the last `USER`, waiting for its `PASS`.
    user: Option<String>,
    /// One reply, handed out by the next `next()`.
    reply: Vec<u8>,
    state: State,
}

#[derive(Debug)]
enum State {
    Greeting,
    Commands,
    /// A `+` challenge was sent for `AUTH`; the next line is the client's response.
    SaslResponse(SaslExchange),
    /// The `+OK` to STLS goes out first; then the gateway is told to start TLS.
    StartTlsNext,
    AwaitingTls,
    AwaitingVerdict,
    Ended(Ending),
}

impl ClientSession {
    /// A dialogue that starts by greeting the client with `+OK <options.greeting>`.
    pub fn new(options: DialogueOptions) -> Self {
        ClientSession {
            input: LineBuffer::new(options.limits.max_line),
            tls_up: options.tls == ClientTls::Active,
            options,
            user: None,
            reply: Vec::new(),
            state: State::Greeting,
        }
    }

    /// Plaintext on a listener that demands STLS: STLS is offered and every login refused.
    fn needs_stls(&self) -> bool {
        self.options.tls == ClientTls::StartTlsRequired && !self.tls_up
    }

    fn ok(&mut self, text: &str) {
        self.reply = status_line(true, text);
    }

    fn err(&mut self, text: &str) {
        self.reply = status_line(false, text);
    }

    /// Acts on one line; returns credentials when the line completed a login.
    fn handle_line(&mut self, line: &[u8]) -> Option<Credentials> {
        // The line after a challenge is a response, whatever it looks like.
        let state = mem::replace(&mut self.state, State::Commands);
        if let State::SaslResponse(exchange) = state {
            return self.sasl_response(exchange, line);
        }
        self.state = state;
        let command = command::parse(line);
        let is_login = matches!(
            command,
            Command::User(_) | Command::Pass(_) | Command::AuthList | Command::Auth { .. }
        );
        if is_login && self.needs_stls() {
            self.err("[AUTH] plaintext login is disabled: send STLS first");
            return None;
        }
        match command {
            Command::Capa => self.reply = self.capabilities(),
            Command::Stls if self.needs_stls() => {
                self.ok("begin TLS negotiation");
                // Whatever followed STLS in the clear could be an injection (RFC 2595 s. 4).
                self.input.discard_rest();
                self.state = State::StartTlsNext;
            }
            Command::Stls if self.tls_up => self.err("TLS is already active"),
            Command::Stls => self.err("STLS is not offered on this port"),
            Command::Quit => {
                self.ok("mailtls signing off");
                self.state = State::Ended(Ending::ClientQuit);
            }
            Command::User(name) => {
                self.user = Some(name);
                self.ok("send PASS");
            }
            Command::Pass(password) => match self.user.take() {
                Some(user) => return self.hand_over(Credentials::new(user, password)),
                None => self.err("send USER first"),
            },
            Command::AuthList => {
                self.reply =
                    format!("+OK\r\n{}\r\n.\r\n", CLIENT_MECHANISMS.join("\r\n")).into_bytes();
            }
            Command::Auth {
                mechanism,
                initial_response,
            } => match (SaslExchange::start(&mechanism), initial_response) {
                (None, _) => self.err("only the PLAIN and LOGIN mechanisms are offered"),
                (Some(exchange), Some(initial)) => {
                    return self.sasl_response(exchange, initial.expose())
                }
                (Some(exchange), None) => self.challenge(exchange),
            },
            Command::AfterLogin => self.err("not allowed before login"),
            Command::Apop => {
                self.err("APOP is not offered: use USER and PASS, or AUTH PLAIN or LOGIN")
            }
            Command::Unknown => self.err("unknown command"),
            Command::Malformed(why) => self.err(why),
        }
        None
    }

    /// Passes credentials on to the gateway, or refuses them with `-ERR [AUTH]` (RFC 3206)
    /// when the gateway's rules on credentials do.
    fn hand_over(
        &mut self,
        credentials: Result<Credentials, CredentialsRefused>,
    ) -> Option<Credentials> {
        match credentials {
            Ok(credentials) => Some(credentials),
            Err(why) => {
                self.err(&format!("[AUTH] login refused: {why}"));
                None
            }
        }
    }

    /// Sends a `+` challenge and waits for the client's response to it.
    fn challenge(&mut self, exchange: SaslExchange) {
        self.reply = format!("+ {}\r\n", exchange.challenge()).into_bytes();
        self.state = State::SaslResponse(exchange);
    }

    /// Takes a SASL response; returns the credentials once the exchange is complete. A
    /// malformed response is refused and never forwarded.
    fn sasl_response(&mut self, exchange: SaslExchange, base64: &[u8]) -> Option<Credentials> {
        if base64 == b"*" {
            self.err("authentication cancelled");
            return None;
        }
        let mechanism = exchange.mechanism();
        match exchange.respond(base64) {
            SaslStep::Challenge(next) => self.challenge(next),
            SaslStep::Done(credentials) => return self.hand_over(Ok(credentials)),
            SaslStep::Refused(why) => return self.hand_over(Err(why)),
            SaslStep::Failed(why) => self.err(&format!("malformed {mechanism} response: {why}")),
        }
        None
    }

    /// The CAPA reply: what the gateway serves, never the upstream's list. PIPELINING is left
    /// out because the gateway answers one command at a time before login.
    fn capabilities(&self) -> Vec<u8> {
        let mut reply =
            b"+OK capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
                .to_vec();
        if self.needs_stls() {
            reply.extend_from_slice(b"STLS\r\n");
        } else {
            reply.extend_from_slice(b"USER\r\n");
            reply.extend_from_slice(format!("SASL {}\r\n", CLIENT_MECHANISMS.join(" ")).as_bytes());
        }
        reply.extend_from_slice(b".\r\n");
        reply
    }
}

impl ClientDialogue for ClientSession {
    /// Input is dropped while a TLS handshake is due (it would be cleartext injected before
    /// TLS) and after the dialogue ended.
    fn feed(&mut self, input: &[u8]) {
        match self.state {
            State::StartTlsNext | State::AwaitingTls | State::Ended(_) => {}
            _ => self.input.feed(input),
        }
    }

    fn next(&mut self) -> ClientStep {
        loop {
            if !self.reply.is_empty() {
                return ClientStep::Write(mem::take(&mut self.reply));
            }
            match &self.state {
                State::Greeting => {
                    self.state = State::Commands;
                    let greeting = self.options.greeting.clone();
                    self.ok(&greeting);
                }
                State::StartTlsNext => {
                    self.state = State::AwaitingTls;
                    return ClientStep::StartTls;
                }
                State::AwaitingTls | State::AwaitingVerdict => return ClientStep::NeedInput,
                State::Ended(ending) => return ClientStep::Close(ending.clone()),
                State::Commands | State::SaslResponse(_) => match self.input.next_line() {
                    Ok(None) => return ClientStep::NeedInput,
                    Ok(Some(line)) => {
                        if let Some(credentials) = self.handle_line(without_line_ending(&line)) {
                            self.state = State::AwaitingVerdict;
                            return ClientStep::Login(credentials);
                        }
                    }
                    Err(_) => {
                        self.err("line too long");
                        self.state = State::Ended(Ending::ProtocolError("line too long".into()));
                    }
                },
            }
        }
    }

    /// RFC 2595: after TLS both sides start over, so a `USER` sent before is forgotten.
    fn tls_started(&mut self) {
        if matches!(self.state, State::StartTlsNext | State::AwaitingTls) {
            self.tls_up = true;
            self.user = None;
            self.state = State::Commands;
        }
    }

    fn login_accepted(mut self, upstream_text: &str, warning: Option<&str>) -> LoginAccepted {
        let text = match warning {
            Some(message) => format!("{message} ({upstream_text})"),
            None => upstream_text.to_string(),
        };
        LoginAccepted {
            to_client: status_line(true, &text),
            to_upstream: self.input.take_rest(),
        }
    }

    /// Replies `-ERR [AUTH] reason`, or `-ERR reason` when the reason already carries a
    /// response code (e.g. the upstream's `[SYS/TEMP]`, which tells the client to retry).
    fn login_rejected(&mut self, reason: &str) {
        if !matches!(self.state, State::AwaitingVerdict) {
            return;
        }
        self.user = None;
        self.state = State::Commands;
        if reason.starts_with('[') {
            self.err(reason);
        } else if reason.is_empty() {
            self.err("[AUTH] authentication failed");
        } else {
            self.err(&format!("[AUTH] {reason}"));
        }
    }

    fn policy_refused(&mut self, message: &str) {
        self.login_rejected(&format!("[SYS/PERM] {message}"));
    }

    fn farewell(&mut self, reason: &str) -> Vec<u8> {
        status_line(false, reason)
    }
}

#[cfg(test)]
mod tests;
