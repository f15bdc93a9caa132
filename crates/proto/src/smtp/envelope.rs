//! The envelope sender of a session's first mail transaction, read from the bytes the client
//! sends upstream after its login, for the session record.

use crate::line::{without_line_ending, LineBuffer};

/// RFC 5321 section 4.5.3.1.3: a reverse-path is at most 256 octets, brackets included; a
/// MAIL line holds parameters too, so the line cap is the command line's 512 plus room for
/// SMTPUTF8 addresses and long parameter lists.
const MAX_LINE: usize = 2048;

/// How many command lines may come before the first MAIL FROM (EHLO again, RSET, NOOP...)
/// before the watch gives up, so a session that never sends mail costs nothing later.
const MAX_LINES: usize = 8;

/// Longest sender kept, in bytes (RFC 5321's path limit without the brackets).
const MAX_SENDER: usize = 254;

/// Watches the client's command lines after login until the first `MAIL FROM:<path>`, then
/// names its sender. It keeps at most one line; it stops (and never looks again) after
/// [`MAX_LINES`] lines, a line over its cap, or the first MAIL command, so only the start of
/// the client-to-upstream stream is ever read, never a message.
#[derive(Debug)]
pub struct FirstSender {
    input: LineBuffer,
    lines: usize,
    done: bool,
}

/// What the watch concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderWatch {
    /// More input is needed.
    Watching,
    /// The first MAIL command named this sender: the address between the angle brackets
    /// (empty for the null sender `<>`), at most 254 bytes as sent, non-UTF-8 bytes replaced.
    Found(String),
    /// The client sent no readable MAIL command in time; nothing more is read.
    GaveUp,
}

impl Default for FirstSender {
    fn default() -> Self {
        FirstSender {
            input: LineBuffer::new(MAX_LINE),
            lines: 0,
            done: false,
        }
    }
}

impl FirstSender {
    /// Bytes the client sent upstream; returns what is known once they are read.
    pub fn feed(&mut self, input: &[u8]) -> SenderWatch {
        if self.done {
            return SenderWatch::GaveUp;
        }
        self.input.feed(input);
        loop {
            let line = match self.input.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => return SenderWatch::Watching,
                Err(_) => return self.give_up(),
            };
            if let Some(found) = mail_from(without_line_ending(&line)) {
                self.give_up();
                return found.map_or(SenderWatch::GaveUp, SenderWatch::Found);
            }
            self.lines += 1;
            if self.lines >= MAX_LINES {
                return self.give_up();
            }
        }
    }

    fn give_up(&mut self) -> SenderWatch {
        self.done = true;
        self.input.discard_rest();
        SenderWatch::GaveUp
    }
}

/// `Some` for a MAIL command: `Some(Some(sender))` when its path reads, `Some(None)` when it
/// does not (the upstream will refuse it; the watch ends all the same). Also the relay mode's
/// reading of a MAIL command before authentication, so both read a sender alike.
pub(super) fn mail_from(line: &[u8]) -> Option<Option<String>> {
    let head = line.get(..10)?;
    if !head.eq_ignore_ascii_case(b"MAIL FROM:") {
        return line
            .get(..5)
            .filter(|h| h.eq_ignore_ascii_case(b"MAIL "))
            .map(|_| None);
    }
    // Postfix accepts a space after the colon; RFC 5321 does not, but clients send it.
    let rest = line[10..].trim_ascii_start();
    let Some(path) = rest.strip_prefix(b"<") else {
        return Some(None);
    };
    let Some(end) = path.iter().position(|&b| b == b'>') else {
        return Some(None);
    };
    let sender = &path[..end];
    if sender.len() > MAX_SENDER {
        return Some(None);
    }
    Some(Some(String::from_utf8_lossy(sender).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::in_every_chunking;

    fn watch(input: &[u8], chunk: usize) -> SenderWatch {
        let mut sender = FirstSender::default();
        let mut last = SenderWatch::Watching;
        for piece in input.chunks(chunk.min(input.len().max(1))) {
            last = sender.feed(piece);
            if last != SenderWatch::Watching {
                break;
            }
        }
        last
    }

    #[test]
    fn finds_the_first_sender_after_other_commands() {
        let input = b"EHLO printer\r\nRSET\r\nmail from: <scanner@example.org> SIZE=100 BODY=8BITMIME\r\nRCPT TO:<a@b>\r\nMAIL FROM:<second@x>\r\n";
        let found = in_every_chunking(|chunk| watch(input, chunk));
        assert_eq!(found, SenderWatch::Found("scanner@example.org".into()));
    }

    #[test]
    fn the_null_sender_and_utf8() {
        let found = in_every_chunking(|chunk| watch(b"MAIL FROM:<>\r\n", chunk));
        assert_eq!(found, SenderWatch::Found(String::new()));
        let found = in_every_chunking(|chunk| {
            watch(
                "MAIL FROM:<jürgen@bücher.example> SMTPUTF8\r\n".as_bytes(),
                chunk,
            )
        });
        assert_eq!(found, SenderWatch::Found("jürgen@bücher.example".into()));
    }

    #[test]
    fn gives_up_on_malformed_long_or_late_mail() {
        for input in [
            b"MAIL FROM:scanner@example.org\r\n".to_vec(),
            b"MAIL TO:<x@y>\r\n".to_vec(),
            format!("MAIL FROM:<{}@x>\r\n", "a".repeat(300)).into_bytes(),
            [b"X".repeat(MAX_LINE), b"\r\nMAIL FROM:<a@b>\r\n".to_vec()].concat(),
            [
                b"NOOP\r\n".repeat(MAX_LINES),
                b"MAIL FROM:<a@b>\r\n".to_vec(),
            ]
            .concat(),
        ] {
            let verdict = in_every_chunking(|chunk| watch(&input, chunk));
            assert_eq!(
                verdict,
                SenderWatch::GaveUp,
                "{:?}",
                &input[..40.min(input.len())]
            );
        }
    }

    #[test]
    fn reads_nothing_once_done() {
        let mut sender = FirstSender::default();
        assert_eq!(
            sender.feed(b"MAIL FROM:<a@b>\r\n"),
            SenderWatch::Found("a@b".into())
        );
        assert_eq!(sender.feed(b"MAIL FROM:<c@d>\r\n"), SenderWatch::GaveUp);
        assert_eq!(sender.feed(b"MAIL FROM:<"), SenderWatch::GaveUp);
        assert_eq!(sender.feed(b"EHLO x"), SenderWatch::GaveUp);
    }
}
