//! A capped line framer for POP3 commands and replies: bytes go in, whole lines come out.

use std::fmt;

/// A line did not end within the cap; its bytes are still buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LineTooLong;

/// Buffers input and hands out lines ended by CRLF or a bare LF (sloppy clients send those).
pub(super) struct LineBuffer {
    buf: Vec<u8>,
    /// Longest line accepted, line ending included.
    max_line: usize,
    /// How far `buf` is known to hold no LF, so one-byte feeds do not rescan the whole line.
    scanned: usize,
}

impl LineBuffer {
    /// A buffer accepting lines of at most `max_line` bytes, line ending included.
    pub(super) fn new(max_line: usize) -> Self {
        LineBuffer {
            buf: Vec::new(),
            max_line,
            scanned: 0,
        }
    }

    pub(super) fn feed(&mut self, input: &[u8]) {
        self.buf.extend_from_slice(input);
    }

    /// The next whole line without its ending, `None` until one is buffered, or `LineTooLong`
    /// as soon as the buffered bytes prove the line exceeds the cap. The verdict depends only
    /// on the bytes, never on how they were chunked.
    pub(super) fn next_line(&mut self) -> Result<Option<Vec<u8>>, LineTooLong> {
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
        let mut line: Vec<u8> = self.buf.drain(..=end).collect();
        self.scanned = 0;
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(Some(line))
    }

    /// Everything buffered and not yet handed out as a line, leaving the buffer empty.
    pub(super) fn take_rest(&mut self) -> Vec<u8> {
        self.scanned = 0;
        std::mem::take(&mut self.buf)
    }

    /// Drops everything buffered.
    pub(super) fn clear(&mut self) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(max_line: usize, input: &[u8], chunk: usize) -> Vec<Result<Vec<u8>, LineTooLong>> {
        let mut framer = LineBuffer::new(max_line);
        let mut seen = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            framer.feed(piece);
            loop {
                match framer.next_line() {
                    Ok(Some(line)) => seen.push(Ok(line)),
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
        assert_eq!(lines(0, b"\n", 1), vec![Err(LineTooLong)]);
        assert_eq!(lines(1, b"\n\n", 1), vec![Ok(vec![]), Ok(vec![])]);
        assert_eq!(lines(1, b"\r\n", 1), vec![Err(LineTooLong)]);
    }

    #[test]
    fn take_rest_returns_the_unframed_tail() {
        let mut framer = LineBuffer::new(64);
        framer.feed(b"PASS x\r\nSTAT\r\nLI");
        assert_eq!(framer.next_line(), Ok(Some(b"PASS x".to_vec())));
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
