//! The plaintext part of an IMAP, POP3 or SMTP connection as seen from outside: whether the
//! server agreed to STARTTLS (the tagged `OK`, `+OK` after `STLS`, `220` after `STARTTLS`, as
//! Zeek follows them), and the login name of a login sent in the clear with whether the
//! server accepted it. Passwords are never kept: SASL responses are decoded into memory that is
//! wiped, and only the authentication identity is copied out.

use base64::Engine;
use zeroize::Zeroizing;

/// Longest login name kept, in bytes.
pub const MAX_LOGIN_BYTES: usize = 255;

/// A mail protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailProtocol {
    /// IMAP4rev1/rev2.
    Imap,
    /// POP3.
    Pop3,
    /// SMTP (submission or relay).
    Smtp,
}

impl MailProtocol {
    /// `imap`, `pop3` or `smtp`, as the store's records name protocols.
    pub fn as_str(self) -> &'static str {
        match self {
            MailProtocol::Imap => "imap",
            MailProtocol::Pop3 => "pop3",
            MailProtocol::Smtp => "smtp",
        }
    }

    /// The protocol whose greeting starts `line`, the server's first line.
    pub fn from_greeting(line: &[u8]) -> Option<MailProtocol> {
        if starts_with_ignore_case(line, b"* OK") || starts_with_ignore_case(line, b"* PREAUTH") {
            Some(MailProtocol::Imap)
        } else if line.starts_with(b"+OK") {
            Some(MailProtocol::Pop3)
        } else if line.starts_with(b"220") {
            Some(MailProtocol::Smtp)
        } else {
            None
        }
    }
}

impl std::str::FromStr for MailProtocol {
    type Err = String;

    fn from_str(s: &str) -> Result<MailProtocol, String> {
        match s {
            "imap" => Ok(MailProtocol::Imap),
            "pop3" => Ok(MailProtocol::Pop3),
            "smtp" => Ok(MailProtocol::Smtp),
            other => Err(format!(
                "unknown protocol {other:?}: use imap, pop3 or smtp"
            )),
        }
    }
}

/// What a server line meant for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerTurn {
    /// Nothing that changes the connection's state.
    Nothing,
    /// The server agreed to STARTTLS: TLS follows in both directions.
    StartTls,
    /// The server answered a plaintext login: accepted or not.
    LoginAnswered {
        /// Whether it accepted.
        accepted: bool,
    },
}

/// The SASL response a client line is expected to carry next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SaslExpect {
    /// PLAIN: `authzid NUL authcid NUL password`, base64.
    Plain,
    /// LOGIN: the user name, base64.
    LoginUser,
    /// LOGIN: the password, which is skipped.
    LoginPassword,
}

/// The state of one plaintext dialogue.
#[derive(Debug)]
pub struct Dialogue {
    protocol: MailProtocol,
    /// IMAP: the tag of STARTTLS; POP3 and SMTP: `Some("")` once asked.
    starttls: Option<String>,
    /// The tag (IMAP) or `""` of a login command awaiting the server's answer.
    login_pending: Option<String>,
    sasl: Option<SaslExpect>,
    login: Option<String>,
}

impl Dialogue {
    /// A dialogue in `protocol` from its start.
    pub fn new(protocol: MailProtocol) -> Dialogue {
        Dialogue {
            protocol,
            starttls: None,
            login_pending: None,
            sasl: None,
            login: None,
        }
    }

    /// Whether the client asked for STARTTLS and the server has not answered: what the
    /// client sends next is its ClientHello if the server agrees.
    pub fn awaiting_starttls(&self) -> bool {
        self.starttls.is_some()
    }

    /// The login name sent in the clear, if any.
    pub fn login(&self) -> Option<&str> {
        self.login.as_deref()
    }

    /// Takes one line the client sent (without its line end).
    pub fn client_line(&mut self, line: &[u8]) {
        if let Some(expect) = self.sasl.take() {
            self.sasl_response(expect, line);
            return;
        }
        let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
        match self.protocol {
            MailProtocol::Imap => {
                let (Some(tag), Some(command)) = (words.next(), words.next()) else {
                    return;
                };
                let tag = String::from_utf8_lossy(&tag[..tag.len().min(64)]).into_owned();
                if command.eq_ignore_ascii_case(b"STARTTLS") {
                    self.starttls = Some(tag);
                } else if command.eq_ignore_ascii_case(b"LOGIN") {
                    let rest = rest_after(line, 2);
                    if let Some(name) = imap_astring(rest) {
                        self.set_login(&name);
                    }
                    self.login_pending = Some(tag);
                } else if command.eq_ignore_ascii_case(b"AUTHENTICATE") {
                    self.sasl_command(words.next(), words.next());
                    self.login_pending = Some(tag);
                }
            }
            MailProtocol::Pop3 => {
                let Some(command) = words.next() else { return };
                if command.eq_ignore_ascii_case(b"STLS") {
                    self.starttls = Some(String::new());
                } else if command.eq_ignore_ascii_case(b"USER") {
                    self.set_login(rest_after(line, 1));
                } else if command.eq_ignore_ascii_case(b"PASS") {
                    self.login_pending = Some(String::new());
                } else if command.eq_ignore_ascii_case(b"AUTH") {
                    self.sasl_command(words.next(), words.next());
                    self.login_pending = Some(String::new());
                }
            }
            MailProtocol::Smtp => {
                let Some(command) = words.next() else { return };
                if command.eq_ignore_ascii_case(b"STARTTLS") {
                    self.starttls = Some(String::new());
                } else if command.eq_ignore_ascii_case(b"AUTH") {
                    self.sasl_command(words.next(), words.next());
                    self.login_pending = Some(String::new());
                }
            }
        }
    }

    /// Takes one line the server sent (without its line end).
    pub fn server_line(&mut self, line: &[u8]) -> ServerTurn {
        match self.protocol {
            MailProtocol::Imap => {
                let mut words = line.split(|&b| b == b' ');
                let (Some(tag), Some(status)) = (words.next(), words.next()) else {
                    return ServerTurn::Nothing;
                };
                let ok = status.eq_ignore_ascii_case(b"OK");
                let tag = String::from_utf8_lossy(tag);
                if self.starttls.as_deref() == Some(tag.as_ref()) {
                    self.starttls = None;
                    if ok {
                        return ServerTurn::StartTls;
                    }
                } else if self.login_pending.as_deref() == Some(tag.as_ref()) {
                    self.login_pending = None;
                    self.sasl = None;
                    return self.answered(ok);
                }
                ServerTurn::Nothing
            }
            MailProtocol::Pop3 => {
                let ok = line.starts_with(b"+OK");
                if !ok && !line.starts_with(b"-ERR") {
                    return ServerTurn::Nothing;
                }
                if self.starttls.take().is_some() {
                    if ok {
                        return ServerTurn::StartTls;
                    }
                } else if self.login_pending.is_some() && self.sasl.is_none() {
                    self.login_pending = None;
                    return self.answered(ok);
                }
                ServerTurn::Nothing
            }
            MailProtocol::Smtp => {
                // Continuation lines (`250-...`) and SASL challenges (`334`) decide nothing.
                if line.len() < 3 || line.get(3) == Some(&b'-') || line.starts_with(b"334") {
                    return ServerTurn::Nothing;
                }
                if self.starttls.take().is_some() {
                    if line.starts_with(b"220") {
                        return ServerTurn::StartTls;
                    }
                } else if self.login_pending.is_some() && self.sasl.is_none() {
                    self.login_pending = None;
                    return self.answered(line.starts_with(b"235"));
                }
                ServerTurn::Nothing
            }
        }
    }

    /// A login answer counts only when a name was seen.
    fn answered(&self, accepted: bool) -> ServerTurn {
        if self.login.is_some() {
            ServerTurn::LoginAnswered { accepted }
        } else {
            ServerTurn::Nothing
        }
    }

    /// `AUTH`/`AUTHENTICATE` with its mechanism and optional initial response.
    fn sasl_command(&mut self, mechanism: Option<&[u8]>, initial: Option<&[u8]>) {
        let Some(mechanism) = mechanism else { return };
        let expect = if mechanism.eq_ignore_ascii_case(b"PLAIN") {
            SaslExpect::Plain
        } else if mechanism.eq_ignore_ascii_case(b"LOGIN") {
            SaslExpect::LoginUser
        } else {
            return;
        };
        match initial {
            // `=` is an empty initial response (RFC 4954).
            Some(response) if response != b"=" => self.sasl_response(expect, response),
            _ => self.sasl = Some(expect),
        }
    }

    fn sasl_response(&mut self, expect: SaslExpect, response: &[u8]) {
        if response == b"*" {
            return; // the client cancelled
        }
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(response.trim_ascii())
                .unwrap_or_default(),
        );
        match expect {
            SaslExpect::Plain => {
                if let Some(authcid) = decoded.split(|&b| b == 0).nth(1) {
                    self.set_login(authcid);
                }
            }
            SaslExpect::LoginUser => {
                self.set_login(&decoded);
                self.sasl = Some(SaslExpect::LoginPassword);
            }
            SaslExpect::LoginPassword => {}
        }
    }

    fn set_login(&mut self, name: &[u8]) {
        let name = name.trim_ascii();
        if name.is_empty() {
            return;
        }
        let mut text =
            String::from_utf8_lossy(&name[..name.len().min(MAX_LOGIN_BYTES)]).into_owned();
        while text.len() > MAX_LOGIN_BYTES {
            text.pop();
        }
        self.login = Some(text);
    }
}

/// `line` after its first `words` space-separated words.
fn rest_after(line: &[u8], words: usize) -> &[u8] {
    let mut rest = line;
    for _ in 0..words {
        rest = rest.trim_ascii_start();
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        rest = &rest[end..];
    }
    rest.trim_ascii_start()
}

/// The first IMAP astring of `text`: an atom or a quoted string (literals, `{5}`, are sent
/// on their own line and not followed here).
fn imap_astring(text: &[u8]) -> Option<Vec<u8>> {
    if let Some(quoted) = text.strip_prefix(b"\"") {
        let mut out = Vec::new();
        let mut escaped = false;
        for &b in quoted {
            match (escaped, b) {
                (false, b'\\') => escaped = true,
                (false, b'"') => return Some(out),
                _ => {
                    out.push(b);
                    escaped = false;
                }
            }
        }
        None
    } else {
        let end = text.iter().position(|&b| b == b' ').unwrap_or(text.len());
        let atom = &text[..end];
        (!atom.is_empty() && !atom.starts_with(b"{")).then(|| atom.to_vec())
    }
}

fn starts_with_ignore_case(line: &[u8], prefix: &[u8]) -> bool {
    line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(protocol: MailProtocol, turns: &[(bool, &str)]) -> (Dialogue, Vec<ServerTurn>) {
        let mut dialogue = Dialogue::new(protocol);
        let mut answers = Vec::new();
        for (from_client, line) in turns {
            if *from_client {
                dialogue.client_line(line.as_bytes());
            } else {
                answers.push(dialogue.server_line(line.as_bytes()));
            }
        }
        (dialogue, answers)
    }

    #[test]
    fn imap_starttls_follows_the_tagged_ok() {
        let (_, answers) = run(
            MailProtocol::Imap,
            &[
                (false, "* OK ready"),
                (true, "a1 CAPABILITY"),
                (false, "a1 OK done"),
                (true, "a2 STARTTLS"),
                (false, "a2 OK Begin TLS"),
            ],
        );
        assert_eq!(answers.last(), Some(&ServerTurn::StartTls));
        let (_, refused) = run(
            MailProtocol::Imap,
            &[(true, "a2 STARTTLS"), (false, "a2 BAD no")],
        );
        assert_eq!(refused, [ServerTurn::Nothing]);
    }

    #[test]
    fn imap_login_keeps_the_name_and_never_the_password() {
        let (dialogue, answers) = run(
            MailProtocol::Imap,
            &[
                (true, "a1 LOGIN \"al ice\" secret"),
                (false, "a1 OK logged in"),
            ],
        );
        assert_eq!(dialogue.login(), Some("al ice"));
        assert_eq!(answers, [ServerTurn::LoginAnswered { accepted: true }]);
        assert!(!format!("{dialogue:?}").contains("secret"));
    }

    #[test]
    fn sasl_plain_and_login_give_the_authentication_identity() {
        // "\0bob\0hunter2"
        let (plain, answers) = run(
            MailProtocol::Smtp,
            &[
                (true, "AUTH PLAIN AGJvYgBodW50ZXIy"),
                (false, "535 5.7.8 no"),
            ],
        );
        assert_eq!(plain.login(), Some("bob"));
        assert_eq!(answers, [ServerTurn::LoginAnswered { accepted: false }]);
        let (login, answers) = run(
            MailProtocol::Smtp,
            &[
                (true, "AUTH LOGIN"),
                (false, "334 VXNlcm5hbWU6"),
                (true, "Ym9i"),
                (false, "334 UGFzc3dvcmQ6"),
                (true, "aHVudGVyMg=="),
                (false, "235 2.7.0 ok"),
            ],
        );
        assert_eq!(login.login(), Some("bob"));
        assert_eq!(
            answers.last(),
            Some(&ServerTurn::LoginAnswered { accepted: true })
        );
    }

    #[test]
    fn pop3_user_and_stls() {
        let (dialogue, answers) = run(
            MailProtocol::Pop3,
            &[
                (true, "USER carol"),
                (false, "+OK"),
                (true, "PASS pw"),
                (false, "-ERR wrong"),
                (true, "STLS"),
                (false, "+OK begin"),
            ],
        );
        assert_eq!(dialogue.login(), Some("carol"));
        assert_eq!(
            answers,
            [
                ServerTurn::Nothing,
                ServerTurn::LoginAnswered { accepted: false },
                ServerTurn::StartTls
            ]
        );
    }

    #[test]
    fn smtp_starttls_waits_for_the_final_220() {
        let (_, answers) = run(
            MailProtocol::Smtp,
            &[
                (true, "EHLO x"),
                (false, "250-mail"),
                (false, "250 STARTTLS"),
                (true, "STARTTLS"),
                (false, "220 2.0.0 go ahead"),
            ],
        );
        assert_eq!(answers.last(), Some(&ServerTurn::StartTls));
    }

    #[test]
    fn greetings_name_the_protocol() {
        assert_eq!(
            MailProtocol::from_greeting(b"* OK [CAPABILITY IMAP4rev1] hi"),
            Some(MailProtocol::Imap)
        );
        assert_eq!(
            MailProtocol::from_greeting(b"+OK Dovecot ready."),
            Some(MailProtocol::Pop3)
        );
        assert_eq!(
            MailProtocol::from_greeting(b"220 mx ESMTP"),
            Some(MailProtocol::Smtp)
        );
        assert_eq!(MailProtocol::from_greeting(b"SSH-2.0-OpenSSH"), None);
    }
}
