//! POP3 status lines (RFC 1939 section 3): writing the gateway's own, reading the upstream's.

use crate::line::single_line;

/// Longest stretch of upstream text quoted in a failure reason.
const EXCERPT_CHARS: usize = 200;

/// A CRLF-ended `+OK text` or `-ERR text` line. Control characters in `text` become spaces, so
/// a reason relayed from elsewhere can never end the line early or inject a second one.
pub(super) fn status_line(ok: bool, text: &str) -> Vec<u8> {
    let mut line = Vec::with_capacity(text.len() + 7);
    line.extend_from_slice(if ok { b"+OK" } else { b"-ERR" });
    if !text.is_empty() {
        line.push(b' ');
        line.extend_from_slice(single_line(text).as_bytes());
    }
    line.extend_from_slice(b"\r\n");
    line
}

/// One upstream reply line, by its status indicator.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Reply<'a> {
    /// `+OK`, with the text after it.
    Ok(&'a [u8]),
    /// `-ERR`, with the text after it.
    Err(&'a [u8]),
    /// `+ `: a SASL challenge (RFC 5034), with its base64 text (empty for a go-ahead).
    Continue(&'a [u8]),
    /// Anything else: not a status line.
    Other,
}

/// Classifies an upstream line (without its ending). Indicators are matched without regard to
/// case, as some servers are lax, but must stand alone or be followed by a space.
pub(super) fn classify(line: &[u8]) -> Reply<'_> {
    if let Some(text) = after_indicator(line, b"+OK") {
        Reply::Ok(text)
    } else if let Some(text) = after_indicator(line, b"-ERR") {
        Reply::Err(text)
    } else if let Some(challenge) = after_indicator(line, b"+") {
        Reply::Continue(challenge)
    } else {
        Reply::Other
    }
}

fn after_indicator<'a>(line: &'a [u8], indicator: &[u8]) -> Option<&'a [u8]> {
    let head = line.get(..indicator.len())?;
    if !head.eq_ignore_ascii_case(indicator) {
        return None;
    }
    match &line[indicator.len()..] {
        [] => Some(&[]),
        [b' ', text @ ..] => Some(text),
        _ => None,
    }
}

/// Upstream text as a string; invalid UTF-8 is replaced rather than refused, since it only
/// travels on as human-readable text.
pub(super) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A short, printable quote of an upstream line for a failure reason.
pub(super) fn excerpt(bytes: &[u8]) -> String {
    single_line(&String::from_utf8_lossy(bytes))
        .chars()
        .take(EXCERPT_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_status_lines_with_and_without_text() {
        assert_eq!(status_line(true, "ready"), b"+OK ready\r\n");
        assert_eq!(status_line(true, ""), b"+OK\r\n");
        assert_eq!(status_line(false, "no"), b"-ERR no\r\n");
    }

    #[test]
    fn a_relayed_reason_cannot_inject_a_line() {
        assert_eq!(status_line(false, "a\r\n+OK b"), b"-ERR a  +OK b\r\n");
    }

    #[test]
    fn classifies_upstream_lines() {
        assert_eq!(
            classify(b"+OK Dovecot ready."),
            Reply::Ok(b"Dovecot ready.")
        );
        assert_eq!(classify(b"+OK"), Reply::Ok(b""));
        assert_eq!(classify(b"+ok fine"), Reply::Ok(b"fine"));
        assert_eq!(classify(b"-ERR [AUTH] no"), Reply::Err(b"[AUTH] no"));
        assert_eq!(classify(b"-ERR"), Reply::Err(b""));
        assert_eq!(classify(b"+ "), Reply::Continue(b""));
        assert_eq!(classify(b"+"), Reply::Continue(b""));
        assert_eq!(classify(b"+ eyJ9"), Reply::Continue(b"eyJ9"));
        assert_eq!(classify(b"+OKAY"), Reply::Other);
        assert_eq!(classify(b"-ERROR"), Reply::Other);
        assert_eq!(classify(b"* OK imap"), Reply::Other);
        assert_eq!(classify(b""), Reply::Other);
    }

    #[test]
    fn excerpts_are_short_and_printable() {
        assert_eq!(excerpt(b"a\tb\xffc"), "a b\u{fffd}c");
        assert_eq!(excerpt(&[b'x'; 1000]).len(), EXCERPT_CHARS);
    }
}
