//! SMTP replies (RFC 5321 section 4.2): writing the gateway's own to the client, and reading
//! the upstream's, which may span several `ddd-text` lines ended by a `ddd text` line.

use crate::line::single_line;

/// Most lines accepted in one upstream reply; an EHLO reply has a dozen.
const MAX_REPLY_LINES: usize = 100;

/// Most text accepted in one upstream reply, in bytes; an EHLO reply has a few hundred.
const MAX_REPLY_BYTES: usize = 16 * 1024;

/// Longest stretch of upstream text quoted in a failure reason.
const EXCERPT_CHARS: usize = 200;

/// A one-line reply: `code`, then `text` with control characters made spaces, so a reason
/// relayed from elsewhere can never end the line early or forge a second reply.
pub(super) fn reply_line(code: u16, text: &str) -> Vec<u8> {
    format!("{code} {}\r\n", single_line(text)).into_bytes()
}

/// A reply of several lines, all with `code`: `ddd-` on each but the last, `ddd ` on that.
pub(super) fn multiline_reply(code: u16, lines: &[String]) -> Vec<u8> {
    let mut reply = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let separator = if i + 1 == lines.len() { ' ' } else { '-' };
        reply.extend_from_slice(format!("{code}{separator}{}\r\n", single_line(line)).as_bytes());
    }
    reply
}

/// One complete upstream reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) code: u16,
    /// The text of each line, after the code and separator.
    pub(crate) lines: Vec<String>,
}

impl Reply {
    /// The reply's text on one line, for reasons and the client's reply.
    pub(super) fn text(&self) -> String {
        single_line(&self.lines.join(" "))
    }

    /// A short quote of the reply with its code, for failure reasons.
    pub(super) fn excerpt(&self) -> String {
        format!("{} {}", self.code, self.text())
            .chars()
            .take(EXCERPT_CHARS)
            .collect()
    }
}

/// Why upstream lines do not make a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReplyError {
    /// The line does not start with a three-digit code followed by `-`, space or its end.
    #[error("the server sent a line that is not an SMTP reply: {0}")]
    NotAReply(String),
    /// A continuation line carries another code than the first line.
    #[error("the reply code changed within one reply: {0}")]
    CodeChanged(String),
    #[error("the server sent more than {MAX_REPLY_LINES} lines in one reply")]
    TooManyLines,
    #[error("the server sent more than {MAX_REPLY_BYTES} bytes in one reply")]
    TooManyBytes,
}

/// Gathers upstream lines into replies.
#[derive(Debug, Default)]
pub(crate) struct ReplyReader {
    code: Option<u16>,
    lines: Vec<String>,
    /// Bytes of text in `lines`.
    bytes: usize,
}

impl ReplyReader {
    /// Takes one line (without its ending); returns the reply once its last line came.
    pub(crate) fn line(&mut self, line: &[u8]) -> Result<Option<Reply>, ReplyError> {
        let quote = || {
            single_line(&String::from_utf8_lossy(line))
                .chars()
                .take(EXCERPT_CHARS)
                .collect::<String>()
        };
        let code = match line.get(..3) {
            Some(digits) if digits.iter().all(u8::is_ascii_digit) => digits
                .iter()
                .fold(0u16, |code, digit| code * 10 + u16::from(digit - b'0')),
            _ => return Err(ReplyError::NotAReply(quote())),
        };
        let last = match line.get(3) {
            None | Some(b' ') => true,
            Some(b'-') => false,
            Some(_) => return Err(ReplyError::NotAReply(quote())),
        };
        if *self.code.get_or_insert(code) != code {
            return Err(ReplyError::CodeChanged(quote()));
        }
        if self.lines.len() == MAX_REPLY_LINES {
            return Err(ReplyError::TooManyLines);
        }
        let text = line.get(4..).unwrap_or_default();
        self.bytes += text.len();
        if self.bytes > MAX_REPLY_BYTES {
            return Err(ReplyError::TooManyBytes);
        }
        self.lines.push(String::from_utf8_lossy(text).into_owned());
        if !last {
            return Ok(None);
        }
        self.code = None;
        self.bytes = 0;
        Ok(Some(Reply {
            code,
            lines: std::mem::take(&mut self.lines),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(lines: &[&[u8]]) -> Vec<Result<Option<Reply>, ReplyError>> {
        let mut reader = ReplyReader::default();
        lines.iter().map(|line| reader.line(line)).collect()
    }

    fn reply(code: u16, lines: &[&str]) -> Reply {
        Reply {
            code,
            lines: lines.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn gathers_multiline_replies() {
        assert_eq!(
            read(&[b"250-mx.example", b"250-PIPELINING", b"250 SIZE 10", b"220"]),
            vec![
                Ok(None),
                Ok(None),
                Ok(Some(reply(250, &["mx.example", "PIPELINING", "SIZE 10"]))),
                Ok(Some(reply(220, &[""]))),
            ]
        );
    }

    #[test]
    fn refuses_what_is_not_a_reply() {
        assert_eq!(
            read(&[b"25"]),
            vec![Err(ReplyError::NotAReply("25".into()))]
        );
        assert_eq!(
            read(&[b"250x"]),
            vec![Err(ReplyError::NotAReply("250x".into()))]
        );
        assert_eq!(
            read(&[b"* OK IMAP"]),
            vec![Err(ReplyError::NotAReply("* OK IMAP".into()))]
        );
        assert_eq!(
            read(&[b"250-a", b"251 b"]),
            vec![Ok(None), Err(ReplyError::CodeChanged("251 b".into()))]
        );
        let many: Vec<&[u8]> = vec![b"250-x"; MAX_REPLY_LINES + 1];
        assert_eq!(read(&many).last(), Some(&Err(ReplyError::TooManyLines)));
        let long = [&b"250-"[..], &[b'x'; 1000]].concat();
        let big: Vec<&[u8]> = vec![&long; MAX_REPLY_BYTES / 1000 + 1];
        assert_eq!(read(&big).last(), Some(&Err(ReplyError::TooManyBytes)));
        // The count starts again with each reply.
        let just_under = [&b"250 "[..], &[b'x'; MAX_REPLY_BYTES]].concat();
        assert!(matches!(
            read(&[&just_under, &just_under])[..],
            [Ok(Some(_)), Ok(Some(_))]
        ));
    }

    #[test]
    fn writes_one_and_several_lines() {
        assert_eq!(reply_line(250, "2.0.0 Ok"), b"250 2.0.0 Ok\r\n");
        assert_eq!(reply_line(535, "no\r\n250 fake"), b"535 no  250 fake\r\n");
        let lines = ["mx".to_string(), "PIPELINING".to_string()];
        assert_eq!(
            multiline_reply(250, &lines),
            b"250-mx\r\n250 PIPELINING\r\n"
        );
    }
}
