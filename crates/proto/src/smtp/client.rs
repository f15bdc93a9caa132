//! The client-facing SMTP machine: greeting, EHLO/HELO, STARTTLS and AUTH PLAIN / LOGIN, with
//! every mail transaction command refused until the upstream has accepted the login.

use std::mem;

use super::command::{self, Command};
use super::envelope::mail_from;
use super::extensions::SmtpExtensions;
use super::reply::{multiline_reply, reply_line};
use crate::line::{without_line_ending, LineBuffer};
use crate::sasl::{SaslExchange, SaslStep, CLIENT_MECHANISMS};
use crate::{
    ClientDialogue, ClientStep, ClientTls, Credentials, CredentialsRefused, DialogueOptions,
    Ending, LoginAccepted,
};

/// Serves a legacy SMTP submission client until it has authenticated: answers `EHLO`, `HELO`,
/// `STARTTLS`, `RSET`, `NOOP`, `HELP` and `QUIT` itself, emits [`ClientStep::Login`] on a
/// complete `AUTH PLAIN` or `AUTH LOGIN`, and refuses every other command with a 5xx reply,
/// so nothing reaches the upstream unauthenticated. Bytes the client pipelines after its AUTH
/// stay buffered for the upstream.
///
/// In relay mode ([`ClientSession::relaying`]) a `MAIL FROM` before AUTH is handed to the
/// gateway as [`ClientStep::Relay`] instead of being refused; AUTH works as before.
#[derive(Debug)]
pub struct ClientSession {
    options: DialogueOptions,
    extensions: SmtpExtensions,
    /// Whether a MAIL command before AUTH is passed to the gateway to decide.
    relay: bool,
    input: LineBuffer,
    tls_up: bool,
    /// Whether the client said EHLO or HELO since the start or since TLS (RFC 3207 section
    /// 4.2: after STARTTLS the client must say it again).
    greeted: bool,
    /// One reply, handed out by the next `next()`.
    reply: Vec<u8>,
    state: State,
}

#[derive(Debug)]
enum State {
    Greeting,
    Commands,
    /// A `334` challenge was sent for `AUTH`; the next line is the client's response.
    SaslResponse(SaslExchange),
    /// A refused `BDAT`'s chunk: this many bytes of it still to discard.
    SkipChunk(u64),
    /// The `220` to STARTTLS goes out first; then the gateway is told to start TLS.
    StartTlsNext,
    AwaitingTls,
    AwaitingVerdict,
    /// Relay mode: the gateway decides on this MAIL command line (ending included), which
    /// goes upstream if it lets the client send.
    AwaitingRelayVerdict(Vec<u8>),
    Ended(Ending),
}

impl ClientSession {
    /// A dialogue that greets with `220 <options.greeting> ESMTP` and advertises `extensions`
    /// in its EHLO reply: those the upstream honours (see [`SmtpExtensions`]).
    pub fn new(options: DialogueOptions, extensions: SmtpExtensions) -> Self {
        ClientSession {
            input: LineBuffer::new(options.limits.max_line),
            tls_up: options.tls == ClientTls::Active,
            options,
            extensions,
            relay: false,
            greeted: false,
            reply: Vec::new(),
            state: State::Greeting,
        }
    }

    /// The same dialogue on a listener that relays for devices that cannot authenticate: a
    /// `MAIL FROM` before AUTH (after EHLO or HELO, and after TLS on a STARTTLS listener) is
    /// handed to the gateway as [`ClientStep::Relay`], which decides whether this client may
    /// send as that sender.
    pub fn relaying(mut self) -> Self {
        self.relay = true;
        self
    }

    /// Plaintext on a listener that demands STARTTLS: STARTTLS is offered and AUTH is neither
    /// offered nor accepted, so no device sends its password in the clear by mistake.
    fn needs_starttls(&self) -> bool {
        self.options.tls == ClientTls::StartTlsRequired && !self.tls_up
    }

    fn say(&mut self, code: u16, text: &str) {
        self.reply = reply_line(code, text);
    }

    /// Acts on one line (`line` with its ending); returns the step for the gateway when the
    /// line completed a login or, in relay mode, began a transaction.
    fn handle_line(&mut self, line: &[u8]) -> Option<ClientStep> {
        let whole = line;
        let line = without_line_ending(whole);
        // The line after a challenge is a response, whatever it looks like.
        let state = mem::replace(&mut self.state, State::Commands);
        if let State::SaslResponse(exchange) = state {
            return self.sasl_response(exchange, line).map(ClientStep::Login);
        }
        self.state = state;
        match command::parse(line) {
            Command::Ehlo => {
                self.greeted = true;
                self.reply = self.ehlo_reply();
            }
            Command::Helo => {
                // HELO clients are shown no extensions, yet may still AUTH, as with Postfix.
                self.greeted = true;
                let greeting = self.options.greeting.clone();
                self.say(250, &greeting);
            }
            Command::StartTls if self.needs_starttls() => {
                self.say(220, "2.0.0 Ready to start TLS");
                // Whatever followed STARTTLS in the clear could be an injection (RFC 3207
                // section 4.2, CVE-2011-0411).
                self.input.discard_rest();
                self.state = State::StartTlsNext;
            }
            Command::StartTls if self.tls_up => self.say(503, "5.5.1 TLS is already active"),
            Command::StartTls => self.say(502, "5.5.1 STARTTLS is not offered here"),
            Command::Auth { .. } if self.needs_starttls() => {
                self.say(530, "5.7.0 Must issue a STARTTLS command first")
            }
            Command::Auth { .. } if !self.greeted => self.say(503, "5.5.1 Send EHLO first"),
            Command::Auth {
                mechanism,
                initial_response,
            } => match (SaslExchange::start(&mechanism), initial_response) {
                (None, _) => self.say(504, "5.5.4 Unrecognized authentication type"),
                (Some(exchange), Some(initial)) => {
                    return self
                        .sasl_response(exchange, initial.expose())
                        .map(ClientStep::Login)
                }
                (Some(exchange), None) => self.challenge(exchange),
            },
            // Nothing to reset before authentication: no transaction can have started.
            Command::Rset | Command::Noop => self.say(250, "2.0.0 Ok"),
            Command::Help => self.say(
                214,
                "2.0.0 Authenticate with AUTH PLAIN or AUTH LOGIN, then submit mail",
            ),
            Command::Quit => {
                self.say(221, "2.0.0 Bye");
                self.state = State::Ended(Ending::ClientQuit);
            }
            Command::Mail if self.relay => return self.relay_mail(whole),
            Command::Mail | Command::NeedsAuth => self.say(530, "5.7.0 Authentication required"),
            Command::NeedsTransaction => {
                self.say(503, "5.5.1 Bad sequence of commands: authenticate first")
            }
            Command::Bdat(size) => {
                self.say(503, "5.5.1 Bad sequence of commands: authenticate first");
                self.state = State::SkipChunk(size);
            }
            Command::Unknown => self.say(500, "5.5.2 Command not recognized"),
            Command::Malformed(why) => self.say(501, &format!("5.5.4 {why}")),
        }
        None
    }

    /// The EHLO reply: the gateway's name, the upstream's extensions, then STARTTLS or AUTH as
    /// the listener's TLS stands. AUTH is listed twice, the second time in the `AUTH=` form
    /// that clients older than RFC 2554 look for.
    fn ehlo_reply(&self) -> Vec<u8> {
        let mut lines = vec![self.options.greeting.clone()];
        lines.extend(self.extensions.ehlo_lines());
        if self.needs_starttls() {
            lines.push("STARTTLS".into());
        } else {
            let mechanisms = CLIENT_MECHANISMS.join(" ");
            lines.push(format!("AUTH {mechanisms}"));
            lines.push(format!("AUTH={mechanisms}"));
        }
        multiline_reply(250, &lines)
    }

    /// Relay mode: a MAIL command before AUTH, whose sender the gateway judges. Before TLS on
    /// a STARTTLS listener it is refused as AUTH is, so the listener's promise of TLS holds.
    fn relay_mail(&mut self, line: &[u8]) -> Option<ClientStep> {
        if self.needs_starttls() {
            self.say(530, "5.7.0 Must issue a STARTTLS command first");
            return None;
        }
        if !self.greeted {
            self.say(503, "5.5.1 Send EHLO first");
            return None;
        }
        match mail_from(without_line_ending(line)) {
            Some(Some(sender)) => {
                self.state = State::AwaitingRelayVerdict(line.to_vec());
                Some(ClientStep::Relay { sender })
            }
            _ => {
                self.say(501, "5.5.4 Syntax: MAIL FROM:<address>");
                None
            }
        }
    }

    /// Passes credentials on to the gateway, or refuses them with `535 5.7.8` when the
    /// gateway's rules on credentials (the same for every protocol) do.
    fn hand_over(
        &mut self,
        credentials: Result<Credentials, CredentialsRefused>,
    ) -> Option<Credentials> {
        match credentials {
            Ok(credentials) => Some(credentials),
            Err(why) => {
                self.say(
                    535,
                    &format!("5.7.8 Authentication credentials invalid: {why}"),
                );
                None
            }
        }
    }

    /// Sends a `334` challenge and waits for the client's response to it.
    fn challenge(&mut self, exchange: SaslExchange) {
        self.reply = format!("334 {}\r\n", exchange.challenge()).into_bytes();
        self.state = State::SaslResponse(exchange);
    }

    /// Takes a SASL response; returns the credentials once the exchange is complete. A
    /// malformed response is refused and never forwarded.
    fn sasl_response(&mut self, exchange: SaslExchange, base64: &[u8]) -> Option<Credentials> {
        if base64 == b"*" {
            self.say(501, "5.7.0 Authentication cancelled");
            return None;
        }
        let mechanism = exchange.mechanism();
        match exchange.respond(base64) {
            SaslStep::Challenge(next) => self.challenge(next),
            SaslStep::Done(credentials) => return self.hand_over(Ok(credentials)),
            SaslStep::Refused(why) => return self.hand_over(Err(why)),
            SaslStep::Failed(why) => {
                self.say(501, &format!("5.5.2 Malformed {mechanism} response: {why}"))
            }
        }
        None
    }

    /// Drops what is buffered of a refused BDAT chunk; true once all of it is gone.
    fn skip_chunk(&mut self, remaining: u64) -> bool {
        let buffered = self.input.take_rest();
        let skipped = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(buffered.len());
        self.input.feed(&buffered[skipped..]);
        // `skipped` is at most `remaining`, so this cannot underflow.
        let left = remaining - skipped as u64;
        self.state = if left == 0 {
            State::Commands
        } else {
            State::SkipChunk(left)
        };
        left == 0
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
                    let greeting = format!("{} ESMTP", self.options.greeting);
                    self.say(220, &greeting);
                }
                State::StartTlsNext => {
                    self.state = State::AwaitingTls;
                    return ClientStep::StartTls;
                }
                State::AwaitingTls | State::AwaitingVerdict | State::AwaitingRelayVerdict(_) => {
                    return ClientStep::NeedInput
                }
                State::Ended(ending) => return ClientStep::Close(ending.clone()),
                &State::SkipChunk(remaining) => {
                    if !self.skip_chunk(remaining) {
                        return ClientStep::NeedInput;
                    }
                }
                State::Commands | State::SaslResponse(_) => match self.input.next_line() {
                    Ok(None) => return ClientStep::NeedInput,
                    Ok(Some(line)) => {
                        if let Some(step) = self.handle_line(&line) {
                            if matches!(step, ClientStep::Login(_)) {
                                self.state = State::AwaitingVerdict;
                            }
                            return step;
                        }
                    }
                    Err(_) => {
                        self.say(500, "5.5.6 Line too long");
                        self.state = State::Ended(Ending::ProtocolError("line too long".into()));
                    }
                },
            }
        }
    }

    /// RFC 3207 section 4.2: after TLS the client starts over with EHLO.
    fn tls_started(&mut self) {
        if matches!(self.state, State::StartTlsNext | State::AwaitingTls) {
            self.tls_up = true;
            self.greeted = false;
            self.state = State::Commands;
        }
    }

    /// The client is told `235 2.7.0` whatever words the upstream used: its success reply is
    /// always that (RFC 4954 section 6).
    ///
    /// A relayed client is told nothing by the gateway: its MAIL command goes upstream first,
    /// and the upstream's reply to it is the client's. It sees no `warning` (no reply of the
    /// gateway's could carry one); the session record keeps the policy's decision.
    fn login_accepted(mut self, _upstream_text: &str, warning: Option<&str>) -> LoginAccepted {
        if let State::AwaitingRelayVerdict(mail) = mem::replace(&mut self.state, State::Commands) {
            return LoginAccepted {
                to_client: Vec::new(),
                to_upstream: [mail, self.input.take_rest()].concat(),
            };
        }
        let text = match warning {
            Some(message) => format!("2.7.0 Authentication successful; {message}"),
            None => "2.7.0 Authentication successful".to_string(),
        };
        LoginAccepted {
            to_client: reply_line(235, &text),
            to_upstream: self.input.take_rest(),
        }
    }

    /// Replies `535 5.7.8 reason`; an enhanced status code the reason already starts with (the
    /// upstream's own) is replaced, so the reply carries one code of the right class.
    ///
    /// A relayed MAIL command is refused with `550 5.7.1 reason`, or, when `reason` starts
    /// with a temporary enhanced code (`4.x.x`: the relay account cannot log in right now),
    /// with `451` and that code, so the device tries again later. Nothing went upstream.
    fn login_rejected(&mut self, reason: &str) {
        match mem::replace(&mut self.state, State::Commands) {
            State::AwaitingVerdict => {}
            State::AwaitingRelayVerdict(_) => {
                let text = without_enhanced_code(reason);
                let text = if text.is_empty() {
                    "Relay access denied"
                } else {
                    text
                };
                match reason.split_once(' ') {
                    Some((code, _)) if code.starts_with("4.") && text != reason => {
                        self.say(451, &format!("{code} {text}"))
                    }
                    _ => self.say(550, &format!("5.7.1 {text}")),
                }
                return;
            }
            other => {
                self.state = other;
                return;
            }
        }
        let reason = without_enhanced_code(reason);
        let reason = if reason.is_empty() {
            "Authentication credentials invalid"
        } else {
            reason
        };
        self.say(535, &format!("5.7.8 {reason}"));
    }

    /// Not `535`: the credentials were not judged. An enhanced code the message starts with
    /// gives way to `5.7.0`, so the reply carries one code.
    fn policy_refused(&mut self, message: &str) {
        let message = without_enhanced_code(message);
        match mem::replace(&mut self.state, State::Commands) {
            State::AwaitingVerdict => self.say(530, &format!("5.7.0 {message}")),
            // A relayed device asked with MAIL, whose refusal is 550 (RFC 5321 4.2.2).
            State::AwaitingRelayVerdict(_) => self.say(550, &format!("5.7.1 {message}")),
            other => self.state = other,
        }
    }

    fn farewell(&mut self, reason: &str) -> Vec<u8> {
        reply_line(421, &format!("4.3.0 {}", without_enhanced_code(reason)))
    }
}

/// `text` without a leading enhanced status code (`d.ddd.ddd`, RFC 3463) and the space after.
fn without_enhanced_code(text: &str) -> &str {
    let (first, rest) = text.split_once(' ').unwrap_or((text, ""));
    let parts: Vec<&str> = first.split('.').collect();
    let is_code = parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    if is_code {
        rest
    } else {
        text
    }
}

#[cfg(test)]
mod tests;
