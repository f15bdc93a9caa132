//! SMTP: the 220 banner (perhaps multi-line), `EHLO`, `STARTTLS`; replies are `ddd-text`
//! lines ending with a `ddd text` line.

use super::lines::Lines;
use super::{has, quote, refusal, Action, DialogueError, Findings, PlaintextAuth};

#[derive(Debug)]
pub(super) struct Smtp {
    state: State,
    ehlo: Vec<u8>,
    reply: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Banner,
    Ehlo,
    StartTls,
}

/// A complete reply: its code and the text of each line.
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Smtp {
    /// `client_name` is stripped of anything but letters, digits, '.', '-', '[', ']' and ':'
    /// so that it cannot end the command early.
    pub(super) fn new(client_name: &str) -> Smtp {
        Smtp {
            state: State::Banner,
            ehlo: crate::smtp::ehlo_command(client_name),
            reply: Vec::new(),
        }
    }

    pub(super) fn phase(&self) -> &'static str {
        match self.state {
            State::Banner => "the banner",
            State::Ehlo => "EHLO",
            State::StartTls => "STARTTLS",
        }
    }

    pub(super) fn next(
        &mut self,
        lines: &mut Lines,
        findings: &mut Findings,
    ) -> Result<Action, DialogueError> {
        let Some(reply) = self.reply(lines)? else {
            return Ok(Action::Read);
        };
        let last = quote(reply.lines.last().map(String::as_str).unwrap_or(""));
        let words = format!("{} {last}", reply.code);
        if reply.code == 421 {
            return Err(DialogueError::RateLimited(words));
        }
        match self.state {
            State::Banner => {
                findings.greeting = Some(words.clone());
                if reply.code != 220 {
                    return Err(refusal(&words));
                }
                self.state = State::Ehlo;
                Ok(Action::Send(self.ehlo.clone()))
            }
            State::Ehlo => {
                if reply.code != 250 {
                    return Err(DialogueError::Refused(format!("EHLO: {words}")));
                }
                // The first line greets; each further line is one extension.
                record(findings, reply.lines.into_iter().skip(1).collect());
                self.state = State::StartTls;
                Ok(Action::Send(b"STARTTLS\r\n".to_vec()))
            }
            State::StartTls => {
                if reply.code == 220 {
                    Ok(Action::StartTls {
                        leftover: lines.take_rest(),
                    })
                } else {
                    Err(DialogueError::StartTlsRefused(words))
                }
            }
        }
    }

    /// The next complete reply, gathering continuation lines across reads.
    fn reply(&mut self, lines: &mut Lines) -> Result<Option<Reply>, DialogueError> {
        while let Some(line) = lines.line()? {
            let bytes = line.as_bytes();
            let code = bytes
                .get(..3)
                .filter(|d| d.iter().all(u8::is_ascii_digit))
                .and_then(|d| std::str::from_utf8(d).ok()?.parse::<u16>().ok());
            let (Some(code), separator) = (code, bytes.get(3)) else {
                return Err(DialogueError::Unexpected {
                    during: self.phase(),
                    reply: quote(&line),
                });
            };
            if let Some(first) = self.reply.first() {
                if !first.starts_with(&line[..3]) {
                    return Err(DialogueError::Unexpected {
                        during: self.phase(),
                        reply: format!("reply code changed within one reply: {}", quote(&line)),
                    });
                }
            }
            let text = line.get(4..).unwrap_or("").to_string();
            self.reply.push(format!("{}{}", &line[..3], text));
            match separator {
                Some(b'-') => continue,
                None | Some(b' ') => {
                    lines.new_reply();
                    let lines = std::mem::take(&mut self.reply)
                        .into_iter()
                        .map(|l| l[3..].to_string())
                        .collect();
                    return Ok(Some(Reply { code, lines }));
                }
                Some(_) => {
                    return Err(DialogueError::Unexpected {
                        during: self.phase(),
                        reply: quote(&line),
                    })
                }
            }
        }
        Ok(None)
    }
}

/// EHLO keywords: STARTTLS, and AUTH with its mechanisms ("AUTH PLAIN LOGIN", or the old
/// "AUTH=PLAIN LOGIN" form).
fn record(findings: &mut Findings, extensions: Vec<String>) {
    let keywords: Vec<String> = extensions
        .iter()
        .filter_map(|e| e.split_ascii_whitespace().next().map(str::to_string))
        .collect();
    findings.starttls_advertised = Some(has(&keywords, "STARTTLS"));
    let mechanisms: Vec<String> = extensions
        .iter()
        .filter_map(|e| {
            let upper = e.to_ascii_uppercase();
            let rest = upper
                .strip_prefix("AUTH ")
                .or_else(|| upper.strip_prefix("AUTH="))?;
            Some(
                rest.split_ascii_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>(),
            )
        })
        .flatten()
        .fold(Vec::new(), |mut all, m| {
            if !all.contains(&m) {
                all.push(m);
            }
            all
        });
    findings.plaintext_auth = Some(if mechanisms.is_empty() {
        PlaintextAuth {
            offered: false,
            evidence: "EHLO offers no AUTH before STARTTLS".into(),
        }
    } else {
        PlaintextAuth {
            offered: true,
            evidence: format!("EHLO offers AUTH {} before STARTTLS", mechanisms.join(" ")),
        }
    });
    findings.capabilities = Some(extensions);
}
