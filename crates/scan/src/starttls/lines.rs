//! Splits a server's plaintext replies into lines, with limits on length and count.

use super::{DialogueError, MAX_LINE, MAX_REPLY_LINES};

/// Bytes received and not yet consumed as lines.
#[derive(Debug, Default)]
pub(super) struct Lines {
    buf: Vec<u8>,
    start: usize,
    in_reply: usize,
    seen_any: bool,
}

impl Lines {
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line without its CRLF (a bare LF also ends one), or `None` until
    /// more bytes arrive.
    pub(super) fn line(&mut self) -> Result<Option<String>, DialogueError> {
        let pending = &self.buf[self.start..];
        if !self.seen_any {
            match pending.first() {
                None => return Ok(None),
                // A TLS handshake or alert record: the server expected a ClientHello.
                Some(0x15 | 0x16) => return Err(DialogueError::NotPlaintext),
                Some(_) => self.seen_any = true,
            }
        }
        let Some(end) = pending.iter().position(|&b| b == b'\n') else {
            return if pending.len() > MAX_LINE {
                Err(DialogueError::LineTooLong)
            } else {
                Ok(None)
            };
        };
        if end > MAX_LINE {
            return Err(DialogueError::LineTooLong);
        }
        self.in_reply += 1;
        if self.in_reply > MAX_REPLY_LINES {
            return Err(DialogueError::TooManyLines);
        }
        let raw = &pending[..end];
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = String::from_utf8_lossy(raw).into_owned();
        self.start += end + 1;
        Ok(Some(line))
    }

    /// Starts counting lines of a new reply.
    pub(super) fn new_reply(&mut self) {
        self.in_reply = 0;
    }

    /// Everything not yet consumed.
    pub(super) fn take_rest(&mut self) -> Vec<u8> {
        let rest = self.buf[self.start..].to_vec();
        self.buf.clear();
        self.start = 0;
        rest
    }
}

/// A server's line as shown to the user: control characters escaped, at most 200 characters.
pub(crate) fn quote(line: &str) -> String {
    let mut out: String = line
        .chars()
        .take(200)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if line.chars().count() > 200 {
        out.push('…');
    }
    out
}
