//! Splits a byte stream into IMAP messages before any grammar runs: a message is a line, or a
//! line announcing a literal, the literal's bytes, and so on until a line without announcement.
//! Input is scanned once, so feeding one byte at a time costs no more than feeding it all.

use std::fmt;

use super::grammar::literal_announcement;
use crate::line::without_line_ending;
use crate::Limits;

/// What the framer found next in the buffered input.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Frame {
    /// The current message is not complete yet.
    Incomplete,
    /// A complete message, literals and final line ending included.
    Message(Vec<u8>),
    /// A synchronising literal within the limits was announced: the server must send a
    /// continuation request before the client sends its bytes.
    LiteralAccepted,
    /// A synchronising literal over the limits was announced. The message so far (returned, for
    /// its tag) is dropped; the client will not send the literal and waits for a reply.
    LiteralRefused(Vec<u8>),
    /// A line went over the limits: the stream cannot be framed any further.
    TooLong,
    /// A non-synchronising literal went over the limits; its bytes are already on the way, so
    /// the stream cannot be framed any further either.
    LiteralTooLong,
}

/// Input buffer and scan position of the message being framed.
pub(super) struct Framer {
    buf: Vec<u8>,
    /// Start of the current message.
    start: usize,
    /// Start of the current line within the message.
    line_start: usize,
    /// Everything before this has been scanned already.
    scan: usize,
    /// Bytes of an accepted literal not yet scanned.
    literal_left: usize,
    max_line: usize,
    max_literal: usize,
    max_message: usize,
}

impl Framer {
    /// A whole message may hold one line's worth of text plus two literals: enough for LOGIN
    /// with both arguments as literals of the largest size, and no unbounded chains of literals.
    pub(super) fn new(limits: Limits) -> Self {
        Framer {
            buf: Vec::new(),
            start: 0,
            line_start: 0,
            scan: 0,
            literal_left: 0,
            max_line: limits.max_line,
            max_literal: limits.max_literal,
            max_message: limits
                .max_line
                .saturating_add(limits.max_literal.saturating_mul(2)),
        }
    }

    pub(super) fn feed(&mut self, input: &[u8]) {
        // Compact only when whole messages were consumed, so byte-wise feeding stays linear.
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scan -= self.start;
            self.line_start -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(input);
    }

    /// The next message, where lines ending in `{n}` / `{n+}` announce literals.
    pub(super) fn next_message(&mut self) -> Frame {
        loop {
            if self.literal_left > 0 {
                let available = (self.buf.len() - self.scan).min(self.literal_left);
                self.scan += available;
                self.literal_left -= available;
                if self.literal_left > 0 {
                    return Frame::Incomplete;
                }
                self.line_start = self.scan;
            }
            let end = match self.scan_line() {
                Ok(Some(end)) => end,
                Ok(None) => return Frame::Incomplete,
                Err(TooLong) => return Frame::TooLong,
            };
            let line = without_line_ending(&self.buf[self.line_start..end]);
            let Some((length, sync)) = literal_announcement(line) else {
                return Frame::Message(self.take_message(end));
            };
            let fits = length <= self.max_literal
                && (end - self.start).saturating_add(length) <= self.max_message;
            if !fits {
                return match sync {
                    true => Frame::LiteralRefused(self.take_message(end)),
                    false => Frame::LiteralTooLong,
                };
            }
            self.literal_left = length;
            self.line_start = end;
            if sync {
                return Frame::LiteralAccepted;
            }
        }
    }

    /// The next line, with no literal handling: the SASL response after a `+`, which comes from
    /// the same stream as the commands around it.
    pub(super) fn next_line(&mut self) -> Result<Option<Vec<u8>>, TooLong> {
        Ok(self.scan_line()?.map(|end| self.take_message(end)))
    }

    /// Everything buffered past the consumed messages, for whoever reads the stream next.
    pub(super) fn take_rest(&mut self) -> Vec<u8> {
        let rest = self.buf.split_off(self.start);
        self.discard_rest();
        rest
    }

    /// Drops everything buffered past the consumed messages.
    pub(super) fn discard_rest(&mut self) {
        self.buf.clear();
        self.start = 0;
        self.line_start = 0;
        self.scan = 0;
        self.literal_left = 0;
    }

    /// Finds the end (just past LF) of the current line, enforcing the line and message limits.
    fn scan_line(&mut self) -> Result<Option<usize>, TooLong> {
        let found = self.buf[self.scan..].iter().position(|&b| b == b'\n');
        let end = match found {
            Some(offset) => self.scan + offset + 1,
            None => self.buf.len(),
        };
        self.scan = end;
        let line = end - self.line_start;
        let message = end - self.start;
        // An unterminated line that already fills the limit cannot end within it.
        let line_over = match found {
            Some(_) => line > self.max_line,
            None => line >= self.max_line,
        };
        if line_over || message > self.max_message {
            return Err(TooLong);
        }
        Ok(found.map(|_| end))
    }

    fn take_message(&mut self, end: usize) -> Vec<u8> {
        let message = self.buf[self.start..end].to_vec();
        self.start = end;
        self.line_start = end;
        self.scan = end;
        message
    }
}

/// A line or message over the limits.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct TooLong;

/// Shows sizes only: the buffer may hold a password.
impl fmt::Debug for Framer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Framer")
            .field("buffered", &(self.buf.len() - self.start))
            .field("literal_left", &self.literal_left)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framer(max_line: usize, max_literal: usize) -> Framer {
        Framer::new(Limits {
            max_line,
            max_literal,
        })
    }

    fn message(bytes: &[u8]) -> Frame {
        Frame::Message(bytes.to_vec())
    }

    #[test]
    fn frames_lines_and_literals() {
        let mut f = framer(100, 100);
        f.feed(b"a NOOP\r\nb LOGIN {3}\r\nx\ny {2+}\r\npw\r\nc");
        assert_eq!(f.next_message(), message(b"a NOOP\r\n"));
        assert_eq!(f.next_message(), Frame::LiteralAccepted);
        assert_eq!(
            f.next_message(),
            message(b"b LOGIN {3}\r\nx\ny {2+}\r\npw\r\n")
        );
        assert_eq!(f.next_message(), Frame::Incomplete);
        assert_eq!(f.take_rest(), b"c");
    }

    #[test]
    fn literal_bytes_are_not_scanned_for_line_ends() {
        let mut f = framer(100, 100);
        f.feed(b"a LOGIN {4+}\r\n\r\n{1}\r\n");
        assert_eq!(f.next_message(), message(b"a LOGIN {4+}\r\n\r\n{1}\r\n"));
    }

    #[test]
    fn enforces_the_line_limit_with_crlf_included() {
        let mut f = framer(8, 100);
        f.feed(b"a NOOP\r\n");
        assert_eq!(f.next_message(), message(b"a NOOP\r\n"));
        f.feed(b"ab NOOP\r\n");
        assert_eq!(f.next_message(), Frame::TooLong);
        let mut f = framer(8, 100);
        f.feed(b"ab NOOP\r");
        assert_eq!(f.next_message(), Frame::TooLong);
        let mut f = framer(8, 100);
        f.feed(b"a NOOP\r");
        assert_eq!(f.next_message(), Frame::Incomplete);
    }

    #[test]
    fn refuses_or_rejects_big_literals() {
        let mut f = framer(100, 4);
        f.feed(b"a LOGIN {5}\r\nb NOOP\r\n");
        assert_eq!(
            f.next_message(),
            Frame::LiteralRefused(b"a LOGIN {5}\r\n".to_vec())
        );
        assert_eq!(f.next_message(), message(b"b NOOP\r\n"));
        let mut f = framer(100, 4);
        f.feed(b"a LOGIN {5+}\r\n");
        assert_eq!(f.next_message(), Frame::LiteralTooLong);
    }

    #[test]
    fn caps_chains_of_literals() {
        // The third line alone takes the message over 20 + 2 * 4 bytes.
        let mut f = framer(20, 4);
        f.feed(b"a X {4+}\r\nabcd {4+}\r\nabcd {4+}\r\n");
        assert_eq!(f.next_message(), Frame::TooLong);
        // Here the second literal's announced length does it.
        let mut f = framer(16, 8);
        f.feed(b"a X {8+}\r\nabcdefgh {8+}\r\n");
        assert_eq!(f.next_message(), Frame::LiteralTooLong);
    }

    #[test]
    fn lines_ignore_announcements() {
        let mut f = framer(100, 100);
        f.feed(b"+ send {3}\r\nabc\r\n");
        assert_eq!(f.next_line(), Ok(Some(b"+ send {3}\r\n".to_vec())));
        assert_eq!(f.next_line(), Ok(Some(b"abc\r\n".to_vec())));
        assert_eq!(f.next_line(), Ok(None));
    }

    #[test]
    fn debug_output_hides_the_buffer() {
        let mut f = framer(100, 100);
        f.feed(b"a LOGIN alice hunter2");
        assert!(!format!("{f:?}").contains("hunter2"));
    }
}
