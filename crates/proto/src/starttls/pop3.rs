//! POP3: `+OK` greeting, `CAPA` (a list ending in `.`), `STLS`.

use super::lines::Lines;
use super::{has, quote, refusal, Action, DialogueError, Findings, PlaintextAuth};

#[derive(Debug, Default)]
pub(super) struct Pop3 {
    state: State,
    capabilities: Vec<String>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Greeting,
    CapaStatus,
    CapaList,
    Stls,
}

impl Pop3 {
    pub(super) fn phase(&self) -> &'static str {
        match self.state {
            State::Greeting => "the greeting",
            State::CapaStatus | State::CapaList => "CAPA",
            State::Stls => "STLS",
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
            match self.state {
                State::Greeting => {
                    findings.greeting = Some(quote(&line));
                    if line.starts_with("-ERR") {
                        return Err(refusal(&line));
                    }
                    if !line.starts_with("+OK") {
                        return Err(unexpected("the greeting", &line));
                    }
                    lines.new_reply();
                    self.state = State::CapaStatus;
                    return Ok(Action::Send(b"CAPA\r\n".to_vec()));
                }
                State::CapaStatus => {
                    if line.starts_with("+OK") {
                        self.state = State::CapaList;
                    } else if line.starts_with("-ERR") {
                        // A pre-RFC 2449 server: nothing is known of its capabilities.
                        return Ok(self.send_stls(lines));
                    } else {
                        return Err(unexpected("CAPA", &line));
                    }
                }
                State::CapaList => {
                    if line == "." {
                        record(findings, std::mem::take(&mut self.capabilities));
                        return Ok(self.send_stls(lines));
                    }
                    // RFC 1939 3: a line starting with "." is byte-stuffed.
                    let item = line.strip_prefix('.').unwrap_or(&line);
                    self.capabilities.push(item.to_string());
                }
                State::Stls => {
                    if line.starts_with("+OK") {
                        return Ok(Action::StartTls {
                            leftover: lines.take_rest(),
                        });
                    }
                    if line.starts_with("-ERR") {
                        return Err(DialogueError::StartTlsRefused(quote(&line)));
                    }
                    return Err(unexpected("STLS", &line));
                }
            }
        }
    }

    fn send_stls(&mut self, lines: &mut Lines) -> Action {
        lines.new_reply();
        self.state = State::Stls;
        Action::Send(b"STLS\r\n".to_vec())
    }
}

fn unexpected(during: &'static str, line: &str) -> DialogueError {
    DialogueError::Unexpected {
        during,
        reply: quote(line),
    }
}

/// CAPA lines are a keyword and arguments, e.g. "SASL PLAIN LOGIN".
fn record(findings: &mut Findings, capabilities: Vec<String>) {
    let keywords: Vec<String> = capabilities
        .iter()
        .filter_map(|c| c.split_ascii_whitespace().next().map(str::to_string))
        .collect();
    findings.starttls_advertised = Some(has(&keywords, "STLS"));
    let plain_sasl: Vec<&str> = capabilities
        .iter()
        .filter(|c| {
            c.split_ascii_whitespace()
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case("SASL"))
        })
        .flat_map(|c| c.split_ascii_whitespace().skip(1))
        .filter(|m| m.eq_ignore_ascii_case("PLAIN") || m.eq_ignore_ascii_case("LOGIN"))
        .collect();
    // RFC 2449 6.8: USER in CAPA means USER/PASS is allowed now, i.e. before STLS.
    findings.plaintext_auth = Some(if has(&keywords, "USER") {
        PlaintextAuth {
            offered: true,
            evidence: "CAPA lists USER before STLS".into(),
        }
    } else if !plain_sasl.is_empty() {
        PlaintextAuth {
            offered: true,
            evidence: format!("CAPA lists SASL {} before STLS", plain_sasl.join(" ")),
        }
    } else {
        PlaintextAuth {
            offered: false,
            evidence: "CAPA lists neither USER nor SASL PLAIN/LOGIN before STLS".into(),
        }
    });
    findings.capabilities = Some(capabilities);
}
