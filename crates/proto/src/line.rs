//! Lines, for both protocols: a capped framer that turns input into whole lines (POP3 on both
//! sides, IMAP on the upstream side, where no literal can come before login), the rule for
//! their endings, and the rule that keeps text relayed from elsewhere within one reply line.

use std::fmt;

/// A line did not end within the cap; its bytes are still buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineTooLong;

/// Buffers input and hands out lines ended by CRLF or a bare LF (sloppy clients send those).
pub(crate) struct LineBuffer {
    buf: Vec<u8>,
    /// Longest line accepted, line ending included.
    max_line: usize,
    /// How far `buf` is known to hold no LF, so one-byte feeds do not rescan the whole line.
    scanned: usize,
}

impl LineBuffer {
    /// A buffer accepting lines of at most `max_line` bytes, line ending included.
    pub(crate) fn new(max_line: usize) -> Self {
        LineBuffer {
            buf: Vec::new(),
            max_line,
            scanned: 0,
        }
    }

    /// Bytes just read from the peer.
    pub(crate) fn feed(&mut self, input: &[u8]) {
        self.buf.extend_from_slice(input);
    }

    /// The next whole line with its ending, `None` until one is buffered, or `LineTooLong` as
    /// soon as the buffered bytes prove the line exceeds the cap. The verdict depends only on
    /// the bytes, never on how they were chunked.
    pub(crate) fn next_line(&mut self) -> Result<Option<Vec<u8>>, LineTooLong> {
        let window = self.buf.len().min(self.max_line);
        let found = self.buf[self.scanned.min(window)..window]
            .iter()
            .position(|&b| b == b'\n');
        let Some(offset) = found else {
            self.scanned = window;
            if !self.buf.is_empty() && self.buf.len() >= self.max_line {
                return Err(LineTooLong);
            }
            return Ok(None);
        };
        let end = self.scanned.min(window) + offset;
        let line = self.buf.drain(..=end).collect();
        self.scanned = 0;
        Ok(Some(line))
    }

    /// Everything buffered and not yet handed out as a line, leaving the buffer empty.
    pub(crate) fn take_rest(&mut self) -> Vec<u8> {
        self.scanned = 0;
        std::mem::take(&mut self.buf)
    }

    /// Drops everything buffered.
    pub(crate) fn discard_rest(&mut self) {
        self.buf.clear();
        self.scanned = 0;
    }
}

/// Shows only the amount buffered: the bytes may hold a pipelined password.
impl fmt::Debug for LineBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineBuffer")
            .field("buffered", &self.buf.len())
            .field("max_line", &self.max_line)
            .finish()
    }
}

/// Most lines one upstream reply before login may hold (a capability list, untagged chatter
/// before a tagged reply): the scanner's cap.
pub(crate) const MAX_REPLY_LINES: usize = crate::starttls::MAX_REPLY_LINES;
/// Most bytes one upstream reply before login may hold. A real capability list is a few
/// hundred bytes; the cap bounds what the capabilities collected from one reply can take.
pub(crate) const MAX_REPLY_BYTES: usize = 64 * 1024;

/// One upstream reply was over [`MAX_REPLY_LINES`] or [`MAX_REPLY_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplyTooLarge {
    Lines,
    Bytes,
}

impl fmt::Display for ReplyTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyTooLarge::Lines => write!(f, "more than {MAX_REPLY_LINES} lines in one reply"),
            ReplyTooLarge::Bytes => write!(f, "more than {MAX_REPLY_BYTES} bytes in one reply"),
        }
    }
}

/// Counts the lines and bytes of the upstream's reply to the command last sent, so that a
/// server cannot keep the login machine collecting (capabilities, chatter) without end.
#[derive(Debug, Default)]
pub(crate) struct ReplySize {
    lines: usize,
    bytes: usize,
}

impl ReplySize {
    /// Counts one more line of `len` bytes, ending included.
    pub(crate) fn count(&mut self, len: usize) -> Result<(), ReplyTooLarge> {
        self.lines += 1;
        self.bytes = self.bytes.saturating_add(len);
        if self.lines > MAX_REPLY_LINES {
            Err(ReplyTooLarge::Lines)
        } else if self.bytes > MAX_REPLY_BYTES {
            Err(ReplyTooLarge::Bytes)
        } else {
            Ok(())
        }
    }

    /// A command went out: what comes next is a new reply.
    pub(crate) fn restart(&mut self) {
        *self = ReplySize::default();
    }
}

/// The line without its ending. Bare LF is accepted as well as CRLF, because some old clients
/// and scripts send it and nothing is lost by tolerating it. Only one CR goes with the LF: any
/// other stray CR is part of the line, for the parser to judge.
pub(crate) fn without_line_ending(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `text` with every control character turned into a space: text relayed from elsewhere
/// (configuration, the upstream, the gateway) then fits in one reply line, as a CR or LF in it
/// could otherwise end the line early and forge a further reply.
pub(crate) fn single_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines, without their endings, that `input` fed in pieces of `chunk` bytes gives.
    fn lines(max_line: usize, input: &[u8], chunk: usize) -> Vec<Result<Vec<u8>, LineTooLong>> {
        let mut framer = LineBuffer::new(max_line);
        let mut seen = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            framer.feed(piece);
            loop {
                match framer.next_line() {
                    Ok(Some(line)) => seen.push(Ok(without_line_ending(&line).to_vec())),
                    Ok(None) => break,
                    Err(e) => {
                        seen.push(Err(e));
                        return seen;
                    }
                }
            }
        }
        seen
    }

    #[test]
    fn splits_crlf_and_bare_lf_lines() {
        let input = b"CAPA\r\nUSER a\nPASS b c\r\npartial";
        for chunk in [1, 2, 3, input.len()] {
            assert_eq!(
                lines(64, input, chunk),
                vec![
                    Ok(b"CAPA".to_vec()),
                    Ok(b"USER a".to_vec()),
                    Ok(b"PASS b c".to_vec())
                ]
            );
        }
    }

    #[test]
    fn keeps_a_stray_cr_inside_a_line() {
        assert_eq!(lines(64, b"a\rb\r\r\n", 1), vec![Ok(b"a\rb\r".to_vec())]);
    }

    #[test]
    fn the_cap_counts_the_line_ending() {
        for chunk in [1, 5, 64] {
            assert_eq!(lines(6, b"1234\r\n", chunk), vec![Ok(b"1234".to_vec())]);
            assert_eq!(lines(6, b"12345\r\n", chunk), vec![Err(LineTooLong)]);
            assert_eq!(lines(6, b"12345\n", chunk), vec![Ok(b"12345".to_vec())]);
        }
    }

    #[test]
    fn reports_an_overlong_line_before_its_end_arrives() {
        assert_eq!(lines(4, b"abcd", 1), vec![Err(LineTooLong)]);
        assert_eq!(lines(4, b"abc", 1), vec![]);
    }

    #[test]
    fn caps_of_zero_and_one() {
        assert_eq!(lines(0, b"", 1), vec![]);
        // Nothing buffered is no line at all, not one over the cap.
        assert_eq!(LineBuffer::new(0).next_line(), Ok(None));
        assert_eq!(lines(0, b"\n", 1), vec![Err(LineTooLong)]);
        assert_eq!(lines(1, b"\n\n", 1), vec![Ok(vec![]), Ok(vec![])]);
        assert_eq!(lines(1, b"\r\n", 1), vec![Err(LineTooLong)]);
    }

    #[test]
    fn take_rest_returns_the_unframed_tail() {
        let mut framer = LineBuffer::new(64);
        framer.feed(b"PASS x\r\nSTAT\r\nLI");
        assert_eq!(framer.next_line(), Ok(Some(b"PASS x\r\n".to_vec())));
        assert_eq!(framer.take_rest(), b"STAT\r\nLI");
        assert_eq!(framer.next_line(), Ok(None));
    }

    #[test]
    fn debug_output_hides_the_buffered_bytes() {
        let mut framer = LineBuffer::new(64);
        framer.feed(b"PASS hunter2\r\n");
        assert!(!format!("{framer:?}").contains("hunter2"));
    }
}
