//! SMTP: the 220 banner (perhaps multi-line), `EHLO`, `STARTTLS`; replies are `ddd-text`
//! lines ending with a `ddd text` line.

use super::lines::Lines;
use super::{has, quote, refusal, Action, DialogueError, Findings, PlaintextAuth};
use crate::smtp::{Reply, ReplyError, ReplyReader};

#[derive(Debug)]
pub(super) struct Smtp {
    state: State,
    ehlo: Vec<u8>,
    replies: ReplyReader,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Banner,
    Ehlo,
    StartTls,
}

impl Smtp {
    /// `client_name` is stripped of anything but letters, digits, '.', '-', '[', ']' and ':'
    /// so that it cannot end the command early.
    pub(super) fn new(client_name: &str) -> Smtp {
        Smtp {
            state: State::Banner,
            ehlo: crate::smtp::ehlo_command(client_name),
            replies: ReplyReader::default(),
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
            let during = self.phase();
            let unexpected = |reply: String| DialogueError::Unexpected { during, reply };
            match self.replies.line(line.as_bytes()) {
                Ok(None) => {}
                Ok(Some(reply)) => {
                    lines.new_reply();
                    return Ok(Some(reply));
                }
                Err(ReplyError::NotAReply(_)) => return Err(unexpected(quote(&line))),
                Err(ReplyError::CodeChanged(_)) => {
                    return Err(unexpected(format!(
                        "reply code changed within one reply: {}",
                        quote(&line)
                    )))
                }
                Err(ReplyError::TooManyLines | ReplyError::TooManyBytes) => {
                    return Err(DialogueError::TooManyLines)
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
