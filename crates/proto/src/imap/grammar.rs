//! The pieces of the RFC 3501 grammar both pre-auth machines need: character classes, literal
//! announcements, and a reader over one framed message.

use crate::line::without_line_ending;

/// `ATOM-CHAR`: any CHAR except atom-specials (`(){ %*"\]`, controls, space).
pub(super) fn is_atom_char(byte: u8) -> bool {
    matches!(byte, 0x21..=0x7e)
        && !matches!(byte, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// `ASTRING-CHAR`: an atom character or `]`.
pub(super) fn is_astring_char(byte: u8) -> bool {
    is_atom_char(byte) || byte == b']'
}

/// A tag character: any `ASTRING-CHAR` except `+`.
pub(super) fn is_tag_char(byte: u8) -> bool {
    is_astring_char(byte) && byte != b'+'
}

/// A literal announced at the end of a line (`{n}` or `{n+}`, line ending already removed):
/// its length (saturated, so an absurd length simply exceeds every limit) and whether it is
/// synchronising.
pub(super) fn literal_announcement(line: &[u8]) -> Option<(usize, bool)> {
    let body = line.strip_suffix(b"}")?;
    let (body, sync) = match body.strip_suffix(b"+") {
        Some(body) => (body, false),
        None => (body, true),
    };
    let open = body.iter().rposition(|b| !b.is_ascii_digit())?;
    let digits = &body[open + 1..];
    if body[open] != b'{' || digits.is_empty() {
        return None;
    }
    Some((number(digits), sync))
}

/// Decimal digits as a number, saturating instead of overflowing.
fn number(digits: &[u8]) -> usize {
    digits.iter().fold(0usize, |n, d| {
        n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
    })
}

/// Reads one framed message (literals included) front to back. Every method either consumes
/// what it recognises and returns `Some`, or returns `None`; a `None` means the message does not
/// have the expected shape and is answered with BAD.
pub(super) struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(input: &'a [u8]) -> Self {
        Reader { input, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn next_byte(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    /// Consumes `byte` if it comes next.
    pub(super) fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    pub(super) fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    pub(super) fn sp(&mut self) -> Option<()> {
        self.expect(b' ')
    }

    /// One or more bytes matching `accept`.
    pub(super) fn take_while1(&mut self, accept: impl Fn(u8) -> bool) -> Option<&'a [u8]> {
        let start = self.pos;
        while self.peek().is_some_and(&accept) {
            self.pos += 1;
        }
        (self.pos > start).then(|| &self.input[start..self.pos])
    }

    pub(super) fn tag(&mut self) -> Option<&'a str> {
        let tag = self.take_while1(is_tag_char)?;
        std::str::from_utf8(tag).ok()
    }

    pub(super) fn atom(&mut self) -> Option<&'a [u8]> {
        self.take_while1(is_atom_char)
    }

    /// `astring = 1*ASTRING-CHAR / string`
    pub(super) fn astring(&mut self) -> Option<Vec<u8>> {
        match self.peek()? {
            b'"' | b'{' => self.string(),
            _ => self.take_while1(is_astring_char).map(<[u8]>::to_vec),
        }
    }

    /// `string = quoted / literal`
    pub(super) fn string(&mut self) -> Option<Vec<u8>> {
        match self.peek()? {
            b'"' => self.quoted(),
            b'{' => self.literal(),
            _ => None,
        }
    }

    /// `nstring = string / NIL`
    pub(super) fn nstring(&mut self) -> Option<Option<Vec<u8>>> {
        if self.keyword(b"NIL") {
            return Some(None);
        }
        self.string().map(Some)
    }

    /// Consumes `word` (case-insensitively) when it is a whole atom here.
    pub(super) fn keyword(&mut self, word: &[u8]) -> bool {
        let end = self.pos + word.len();
        let matches = self
            .input
            .get(self.pos..end)
            .is_some_and(|found| found.eq_ignore_ascii_case(word))
            && !self.input.get(end).copied().is_some_and(is_atom_char);
        if matches {
            self.pos = end;
        }
        matches
    }

    /// A quoted string with `\"` and `\\` escapes. Bytes above 0x7f pass as they are (UTF-8
    /// passwords from clients that ignore the 7-bit rule); CR, LF and NUL never do.
    fn quoted(&mut self) -> Option<Vec<u8>> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.next_byte()? {
                b'"' => return Some(out),
                b'\\' => match self.next_byte()? {
                    escaped @ (b'"' | b'\\') => out.push(escaped),
                    _ => return None,
                },
                b'\r' | b'\n' | 0 => return None,
                byte => out.push(byte),
            }
        }
    }

    /// `{n}` or `{n+}`, a line ending, then n bytes, none of them NUL.
    fn literal(&mut self) -> Option<Vec<u8>> {
        self.expect(b'{')?;
        let length = number(self.take_while1(|b| b.is_ascii_digit())?);
        self.eat(b'+');
        self.expect(b'}')?;
        self.line_ending()?;
        let end = self.pos.checked_add(length)?;
        let data = self.input.get(self.pos..end)?;
        if data.contains(&0) {
            return None;
        }
        self.pos = end;
        Some(data.to_vec())
    }

    fn line_ending(&mut self) -> Option<()> {
        self.eat(b'\r');
        self.expect(b'\n')
    }

    /// The line ending that closes the message, and nothing after it.
    pub(super) fn finish(&mut self) -> Option<()> {
        self.line_ending()?;
        (self.pos == self.input.len()).then_some(())
    }

    /// Everything up to the line ending (which stays unread).
    pub(super) fn rest_of_line(&mut self) -> &'a [u8] {
        let rest = without_line_ending(&self.input[self.pos..]);
        self.pos += rest.len();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_literal_announcements() {
        assert_eq!(literal_announcement(b"a LOGIN {5}"), Some((5, true)));
        assert_eq!(literal_announcement(b"a LOGIN {12+}"), Some((12, false)));
        assert_eq!(literal_announcement(b"{0}"), Some((0, true)));
        assert_eq!(
            literal_announcement(b"a LOGIN {99999999999999999999999}"),
            Some((usize::MAX, true))
        );
        assert_eq!(literal_announcement(b"a LOGIN {}"), None);
        assert_eq!(literal_announcement(b"a LOGIN {+}"), None);
        assert_eq!(literal_announcement(b"a LOGIN {5a}"), None);
        assert_eq!(literal_announcement(b"a LOGIN 5}"), None);
        assert_eq!(literal_announcement(b"}"), None);
    }

    #[test]
    fn reads_every_astring_form() {
        let mut reader = Reader::new(b"atom \"q \\\"x\\\\\" {3}\r\nl y{2+}\nzz\r\n");
        assert_eq!(reader.astring().as_deref(), Some(&b"atom"[..]));
        reader.sp();
        assert_eq!(reader.astring().as_deref(), Some(&b"q \"x\\"[..]));
        reader.sp();
        assert_eq!(reader.astring().as_deref(), Some(&b"l y"[..]));
        assert_eq!(reader.astring().as_deref(), Some(&b"zz"[..]));
        assert_eq!(reader.finish(), Some(()));
    }

    #[test]
    fn refuses_bad_strings() {
        for input in [
            &b"\"unterminated"[..],
            b"\"bad \\n escape\"",
            b"\"nul \0\"",
            b"{5}\r\nab",
            b"{3}\r\na\0b",
            b"{3}x\r\nabc",
            b"{99999999999999999999999}\r\n",
        ] {
            assert_eq!(Reader::new(input).astring(), None, "{input:?}");
        }
    }

    #[test]
    fn nil_is_a_whole_word() {
        assert_eq!(Reader::new(b"nil)").nstring(), Some(None));
        assert_eq!(Reader::new(b"NILS").nstring(), None);
    }
}
