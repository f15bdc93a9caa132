//! IMAP: `* OK` greeting (perhaps with `[CAPABILITY ...]`), `a1 CAPABILITY`, `a2 STARTTLS`.

use super::lines::Lines;
use super::{has, quote, refusal, Action, DialogueError, Findings, PlaintextAuth};

#[derive(Debug, Default)]
pub(super) struct Imap {
    state: State,
    capabilities: Vec<String>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Greeting,
    Capability,
    StartTls,
}

impl Imap {
    pub(super) fn phase(&self) -> &'static str {
        match self.state {
            State::Greeting => "the greeting",
            State::Capability => "CAPABILITY",
            State::StartTls => "STARTTLS",
        }
    }

    pub(super) fn next(
        &mut self,
        lines: &mut Lines,
        findings: &mut Findings,
    ) -> Result<Action, DialogueError> {
        loop {
            let Some(line) = lines.line()? else {
                return Ok(Action::Read);
            };
            let upper = line.to_ascii_uppercase();
            if upper.starts_with("* BYE") {
                return Err(refusal(&line));
            }
            match self.state {
                State::Greeting => {
                    findings.greeting = Some(quote(&line));
                    if !upper.starts_with("* OK") {
                        return Err(DialogueError::Unexpected {
                            during: "the greeting",
                            reply: quote(&line),
                        });
                    }
                    lines.new_reply();
                    // A greeting that lists capabilities saves a round trip (RFC 3501 7.1).
                    if let Some(list) = greeting_capabilities(&line) {
                        record(findings, list);
                        self.state = State::StartTls;
                        return Ok(Action::Send(b"a2 STARTTLS\r\n".to_vec()));
                    }
                    self.state = State::Capability;
                    return Ok(Action::Send(b"a1 CAPABILITY\r\n".to_vec()));
                }
                State::Capability => {
                    if let Some(list) = strip_prefix_ci(&line, "* CAPABILITY ") {
                        self.capabilities
                            .extend(list.split_ascii_whitespace().map(str::to_string));
                    } else if upper.starts_with("A1 ") {
                        if upper.starts_with("A1 OK") {
                            record(findings, std::mem::take(&mut self.capabilities));
                        }
                        lines.new_reply();
                        self.state = State::StartTls;
                        return Ok(Action::Send(b"a2 STARTTLS\r\n".to_vec()));
                    }
                }
                State::StartTls => {
                    if upper.starts_with("A2 OK") {
                        return Ok(Action::StartTls {
                            leftover: lines.take_rest(),
                        });
                    }
                    if upper.starts_with("A2 ") {
                        return Err(DialogueError::StartTlsRefused(quote(&line)));
                    }
                }
            }
        }
    }
}

/// The capability list of `* OK [CAPABILITY ...] text`.
fn greeting_capabilities(line: &str) -> Option<Vec<String>> {
    let start = line.find('[')?;
    let code = strip_prefix_ci(&line[start + 1..], "CAPABILITY ")?;
    let list = &code[..code.find(']')?];
    Some(list.split_ascii_whitespace().map(str::to_string).collect())
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn record(findings: &mut Findings, capabilities: Vec<String>) {
    findings.starttls_advertised = Some(has(&capabilities, "STARTTLS"));
    // RFC 3501 6.2.3: LOGINDISABLED is how a server says LOGIN is refused before TLS.
    findings.plaintext_auth = Some(if has(&capabilities, "LOGINDISABLED") {
        PlaintextAuth {
            offered: false,
            evidence: "CAPABILITY lists LOGINDISABLED before STARTTLS".into(),
        }
    } else {
        PlaintextAuth {
            offered: true,
            evidence: "CAPABILITY lacks LOGINDISABLED before STARTTLS: LOGIN works in plaintext"
                .into(),
        }
    });
    findings.capabilities = Some(capabilities);
}
