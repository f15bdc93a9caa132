//! Splits a server's plaintext replies into lines, with limits on length and count.

use super::{DialogueError, MAX_LINE, MAX_REPLY_LINES};

/// Bytes received and not yet consumed as lines.
#[derive(Debug, Default)]
pub(super) struct Lines {
    buf: Vec<u8>,
    /// Where the bytes not yet consumed start.
    start: usize,
    /// How many bytes from `start` were already searched for a line end without finding
    /// one: a line that arrives in many small reads is searched once, not once per read.
    scanned: usize,
    in_reply: usize,
    seen_any: bool,
}

impl Lines {
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        // Lines already handed out are dropped before more bytes come in, so the buffer
        // holds only what is not consumed yet, not the whole session.
        self.buf.drain(..self.start);
        self.start = 0;
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
        let Some(found) = pending[self.scanned..].iter().position(|&b| b == b'\n') else {
            self.scanned = pending.len();
            return if pending.len() > MAX_LINE {
                Err(DialogueError::LineTooLong)
            } else {
                Ok(None)
            };
        };
        let end = self.scanned + found;
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
        self.scanned = 0;
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
        self.scanned = 0;
        rest
    }
}

/// A server's line as shown to the user: control characters escaped, at most 200 characters.
pub fn quote(line: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumed_lines_are_dropped_and_a_slow_line_is_searched_once() {
        let mut lines = Lines::default();
        for _ in 0..100 {
            lines.feed(b"* CAPABILITY IMAP4rev1\r\n");
            assert_eq!(lines.line(), Ok(Some("* CAPABILITY IMAP4rev1".into())));
        }
        lines.feed(b"a");
        assert_eq!(lines.buf, b"a", "consumed lines are gone");
        for _ in 0..10 {
            lines.feed(b"b");
            assert_eq!(lines.line(), Ok(None));
            assert_eq!(lines.scanned, lines.buf.len(), "searched up to the end");
        }
        lines.feed(b"\r\nrest");
        assert_eq!(lines.line(), Ok(Some("abbbbbbbbbb".into())));
        assert_eq!(lines.line(), Ok(None));
        assert_eq!(lines.take_rest(), b"rest");
    }

    #[test]
    fn the_line_cap_holds_across_reads() {
        let mut lines = Lines::default();
        let mut fed = 0;
        let result = loop {
            lines.feed(&[b'x'; 100]);
            fed += 100;
            match lines.line() {
                Ok(None) => continue,
                other => break other,
            }
        };
        assert_eq!(result, Err(DialogueError::LineTooLong));
        assert!(fed > MAX_LINE && fed <= MAX_LINE + 100);
        // A line end just past the cap is still too long.
        let mut lines = Lines::default();
        lines.feed(&[b'x'; MAX_LINE]);
        assert_eq!(lines.line(), Ok(None));
        lines.feed(b"x\n");
        assert_eq!(lines.line(), Err(DialogueError::LineTooLong));
    }
}
