//! The number of messages the upstream accepted in a session, read from both directions of
//! the bytes the gateway copies after the login, for the session record.
//!
//! Each SMTP command gets exactly one reply, in order, pipelined or not (RFC 5321 section 4.2,
//! RFC 2920); a message ends with the line `.` after DATA's `354`, or with `BDAT n LAST`'s
//! chunk (RFC 3030), and the upstream accepts it with a `2xx` reply to that end. So the client's
//! command lines are read to know what each reply answers, message bodies and chunks are
//! skipped (a body is only searched for its ending line, never kept), and the replies are
//! matched to the commands in order.

use std::collections::VecDeque;

use crate::line::{without_line_ending, LineBuffer};

/// Longest command or reply line followed; RFC 5321 allows 512 bytes, extensions add some.
const MAX_LINE: usize = 4096;

/// Most commands awaiting their replies at once (a pipelining client sends a few dozen).
const MAX_AWAITED: usize = 1024;

/// Most client bytes held while DATA's reply is awaited: a client that does not wait for the
/// `354` (RFC 2920 section 3.1 says it must) is not followed further.
const MAX_HELD: usize = 64 * 1024;

/// Counts the messages the upstream accepted in one SMTP session: transactions whose end
/// (the `.` after DATA, or `BDAT n LAST`) the upstream answered with `2xx`. Fed the client's
/// bytes on their way upstream and the upstream's on their way to the client; it never keeps
/// a message's content. Should the session stop looking like SMTP (a line over 4 KiB, a reply
/// that is not one, over 1024 commands unanswered), it stops counting and [`accepted`]
/// says how many were accepted until then.
///
/// [`accepted`]: AcceptedMessages::accepted
pub struct AcceptedMessages {
    client: ClientPart,
    commands: LineBuffer,
    /// Client bytes that came while DATA's reply was awaited.
    held: Vec<u8>,
    replies: LineBuffer,
    awaited: VecDeque<Awaited>,
    accepted: u32,
    lost: bool,
}

/// What the client's bytes are at the moment.
#[derive(Debug, Clone, Copy)]
enum ClientPart {
    Commands,
    /// DATA was sent: what follows is a message if the upstream says `354`, commands if not.
    DataReply,
    /// A message after `354`, until its `.` line; where its current line stands.
    Body(BodyLine),
    /// A BDAT chunk, this many bytes of it still to come.
    Chunk(u64),
}

/// Where a message body's current line stands, as far as its end is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyLine {
    Start,
    /// The line so far is `.`.
    Dot,
    /// The line so far is `.` CR.
    DotCr,
    /// Any other line, until its LF.
    Other,
}

/// What one awaited reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaited {
    Data,
    /// The `.` line that ends a message, or `BDAT n LAST` with its chunk.
    MessageEnd,
    Other,
}

/// Shows the count only: held bytes may be part of a message.
impl std::fmt::Debug for AcceptedMessages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcceptedMessages")
            .field("accepted", &self.accepted)
            .field("lost", &self.lost)
            .finish_non_exhaustive()
    }
}

impl Default for AcceptedMessages {
    fn default() -> Self {
        AcceptedMessages {
            client: ClientPart::Commands,
            commands: LineBuffer::new(MAX_LINE),
            held: Vec::new(),
            replies: LineBuffer::new(MAX_LINE),
            awaited: VecDeque::new(),
            accepted: 0,
            lost: false,
        }
    }
}

impl AcceptedMessages {
    /// Messages the upstream accepted so far.
    pub fn accepted(&self) -> u32 {
        self.accepted
    }

    /// Bytes the client sent upstream.
    pub fn from_client(&mut self, input: &[u8]) {
        let mut owned: Vec<u8>;
        let mut bytes = input;
        while !bytes.is_empty() && !self.lost {
            bytes = match &mut self.client {
                ClientPart::Body(line) => match body_end(line, bytes) {
                    Some(end) => {
                        self.client = ClientPart::Commands;
                        self.await_reply(Awaited::MessageEnd);
                        &bytes[end..]
                    }
                    None => &[],
                },
                ClientPart::Chunk(left) => {
                    let skipped = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    // `skipped` is at most `left`.
                    *left -= skipped as u64;
                    if *left == 0 {
                        self.client = ClientPart::Commands;
                    }
                    &bytes[skipped..]
                }
                ClientPart::DataReply => {
                    self.held.extend_from_slice(bytes);
                    if self.held.len() > MAX_HELD {
                        self.stop();
                    }
                    &[]
                }
                ClientPart::Commands => {
                    self.commands.feed(bytes);
                    if !self.read_commands() {
                        return;
                    }
                    // A command changed what the bytes after it are: go on with them.
                    owned = self.commands.take_rest();
                    &owned
                }
            };
        }
    }

    /// Bytes the upstream sent to the client.
    pub fn from_upstream(&mut self, input: &[u8]) {
        if self.lost {
            return;
        }
        self.replies.feed(input);
        loop {
            match self.replies.next_line() {
                Ok(Some(line)) => self.reply_line(without_line_ending(&line)),
                Ok(None) => return,
                Err(_) => return self.stop(),
            }
            if self.lost {
                return;
            }
        }
    }

    /// Reads whole command lines; true when one of them (DATA, BDAT) changed what the bytes
    /// after it are.
    fn read_commands(&mut self) -> bool {
        loop {
            let line = match self.commands.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => return false,
                Err(_) => {
                    self.stop();
                    return false;
                }
            };
            let line = without_line_ending(&line);
            let mut words = line
                .split(|&b| b == b' ' || b == b'\t')
                .filter(|w| !w.is_empty());
            let keyword = words.next().unwrap_or_default();
            if keyword.eq_ignore_ascii_case(b"DATA") {
                self.await_reply(Awaited::Data);
                self.client = ClientPart::DataReply;
                return true;
            }
            if keyword.eq_ignore_ascii_case(b"BDAT") {
                let size = words
                    .next()
                    .and_then(|size| std::str::from_utf8(size).ok()?.parse::<u64>().ok());
                let last = words
                    .next()
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"LAST"));
                if let Some(size) = size {
                    self.await_reply(if last {
                        Awaited::MessageEnd
                    } else {
                        Awaited::Other
                    });
                    self.client = ClientPart::Chunk(size);
                    return true;
                }
            }
            self.await_reply(Awaited::Other);
        }
    }

    fn await_reply(&mut self, awaited: Awaited) {
        self.awaited.push_back(awaited);
        if self.awaited.len() > MAX_AWAITED {
            self.stop();
        }
    }

    /// One reply line: `ddd-text` goes on, `ddd text` (or `ddd`) ends a reply.
    fn reply_line(&mut self, line: &[u8]) {
        let code = match line.get(..3) {
            Some(code) if code.iter().all(u8::is_ascii_digit) => code,
            _ => return self.stop(),
        };
        match line.get(3) {
            None | Some(b' ') => {}
            Some(b'-') => return,
            Some(_) => return self.stop(),
        }
        // A reply nothing awaits (a 421 before the upstream hangs up) answers nothing.
        let Some(awaited) = self.awaited.pop_front() else {
            return;
        };
        match awaited {
            Awaited::MessageEnd if code[0] == b'2' => self.accepted += 1,
            Awaited::Data => {
                self.client = if code == b"354" {
                    ClientPart::Body(BodyLine::Start)
                } else {
                    ClientPart::Commands
                };
                let held = std::mem::take(&mut self.held);
                self.from_client(&held);
            }
            Awaited::MessageEnd | Awaited::Other => {}
        }
    }

    /// The session no longer reads as SMTP: count no further, and keep nothing.
    fn stop(&mut self) {
        self.lost = true;
        self.commands.discard_rest();
        self.replies.discard_rest();
        self.held = Vec::new();
        self.awaited = VecDeque::new();
    }
}

/// Finds the end of a message in `bytes`: the offset just past its `.` line (CRLF, or a bare LF
/// as lenient servers take it), or `None` when the message goes on. Most bytes are skipped by
/// a search for the next LF.
fn body_end(line: &mut BodyLine, bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        *line = match (*line, byte) {
            (BodyLine::Other, _) => match memchr::memchr(b'\n', &bytes[at..]) {
                Some(lf) => {
                    at += lf + 1;
                    *line = BodyLine::Start;
                    continue;
                }
                None => return None,
            },
            (BodyLine::Dot | BodyLine::DotCr, b'\n') => {
                *line = BodyLine::Start;
                return Some(at + 1);
            }
            (BodyLine::Start, b'.') => BodyLine::Dot,
            (BodyLine::Start, b'\n') => BodyLine::Start,
            (BodyLine::Dot, b'\r') => BodyLine::DotCr,
            _ => BodyLine::Other,
        };
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::in_every_chunking;

    /// Feeds a session's exchanges in order, each side's bytes in pieces of `chunk`: `client`
    /// then `upstream` for each pair, as they cross the gateway.
    fn count(exchanges: &[(&[u8], &[u8])], chunk: usize) -> u32 {
        let mut messages = AcceptedMessages::default();
        for (client, upstream) in exchanges {
            for piece in client.chunks(chunk.min(client.len().max(1))) {
                messages.from_client(piece);
            }
            for piece in upstream.chunks(chunk.min(upstream.len().max(1))) {
                messages.from_upstream(piece);
            }
        }
        messages.accepted()
    }

    fn message(sender: &str, body: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        vec![
            (
                format!("MAIL FROM:<{sender}>\r\nRCPT TO:<a@b>\r\nDATA\r\n").into_bytes(),
                b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n".to_vec(),
            ),
            (
                format!("{body}\r\n.\r\n").into_bytes(),
                b"250 2.0.0 Ok: queued as 4F\r\n".to_vec(),
            ),
        ]
    }

    fn counted(exchanges: &[(Vec<u8>, Vec<u8>)]) -> u32 {
        let exchanges: Vec<(&[u8], &[u8])> = exchanges
            .iter()
            .map(|(c, u)| (c.as_slice(), u.as_slice()))
            .collect();
        in_every_chunking(|chunk| count(&exchanges, chunk))
    }

    #[test]
    fn counts_messages_accepted_after_data() {
        let mut session = message("a@b", "Subject: one\r\n\r\nbody");
        session.extend(message(
            "a@b",
            "Subject: two\r\n\r\n..dot-stuffed\r\nMAIL FROM:<x@y>\r\nDATA",
        ));
        session.extend(message("a@b", ""));
        session.push((b"QUIT\r\n".to_vec(), b"221 2.0.0 Bye\r\n".to_vec()));
        assert_eq!(counted(&session), 3);
    }

    #[test]
    fn a_refused_message_or_data_counts_nothing() {
        let session = vec![
            // DATA refused: what follows is commands, not a message.
            (
                b"MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nDATA\r\n".to_vec(),
                b"250 Ok\r\n550 5.1.1 no such user\r\n554 5.5.1 No valid recipients\r\n".to_vec(),
            ),
            (b"RSET\r\n".to_vec(), b"250 Ok\r\n".to_vec()),
            // A message the upstream refuses at its end.
            (
                b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n".to_vec(),
                b"250 Ok\r\n250 Ok\r\n354 go\r\n".to_vec(),
            ),
            (
                b"spam\r\n.\r\n".to_vec(),
                b"554 5.7.1 rejected\r\n".to_vec(),
            ),
        ];
        assert_eq!(counted(&session), 0);
    }

    #[test]
    fn counts_bdat_last_and_skips_chunks() {
        let chunk = b"DATA\r\n.\r\nMAIL FROM:<x@y>\r\n";
        let session = vec![(
            [
                b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n".as_slice(),
                format!("BDAT {}\r\n", chunk.len()).as_bytes(),
                chunk,
                b"BDAT 5 LAST\r\n.\r\n\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 0 LAST\r\n",
            ]
            .concat(),
            b"250 Ok\r\n250 Ok\r\n250 2.0.0 chunk\r\n250 2.0.0 queued\r\n250 Ok\r\n250 Ok\r\n250-2.0.0 Ok\r\n250 2.0.0 queued\r\n"
                .to_vec(),
        )];
        assert_eq!(counted(&session), 2);
    }

    #[test]
    fn multiline_and_unawaited_replies() {
        let mut session = vec![(
            b"EHLO printer\r\n".to_vec(),
            b"250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n".to_vec(),
        )];
        session.extend(message("a@b", "x"));
        session.push((Vec::new(), b"421 4.4.2 Timeout\r\n".to_vec()));
        assert_eq!(counted(&session), 1);
    }

    #[test]
    fn stops_counting_when_the_session_is_not_smtp() {
        let mut session = message("a@b", "x");
        session.push((b"NOOP\r\n".to_vec(), b"hello\r\n".to_vec()));
        session.extend(message("a@b", "y"));
        assert_eq!(counted(&session), 1);
        let mut session = message("a@b", "x");
        session.push(([b'X'; MAX_LINE].to_vec(), Vec::new()));
        session.extend(message("a@b", "y"));
        assert_eq!(counted(&session), 1);
    }

    #[test]
    fn body_end_is_found_across_pieces() {
        for body in [
            &b".\r\n"[..],
            b"a\r\n.\r\n",
            b"a\n.\n",
            b".x\r\n..\r\n.\r\n",
        ] {
            for split in 0..=body.len() {
                let mut line = BodyLine::Start;
                let (a, b) = body.split_at(split);
                let end =
                    body_end(&mut line, a).or_else(|| body_end(&mut line, b).map(|e| e + a.len()));
                assert_eq!(end, Some(body.len()), "{body:?} split at {split}");
            }
        }
        let mut line = BodyLine::Start;
        assert_eq!(body_end(&mut line, b"a.\r\n. \r\n.a\r\n"), None);
    }
}
