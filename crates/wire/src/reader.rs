//! A bounds-checked cursor over TLS's big-endian, length-prefixed fields.
//!
//! Every read names the field it wants, so a lying length becomes a reason a person can act
//! on ("cipher_suites runs past the end") rather than a panic or a bare "malformed".

/// Reads fields from the front of a byte slice; never reads past its end.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Takes the next `n` bytes, or explains which field was cut short.
    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if n > self.buf.len() {
            return Err(format!(
                "{what} needs {n} bytes but only {} remain",
                self.buf.len()
            ));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &str) -> Result<u16, String> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u24(&mut self, what: &str) -> Result<usize, String> {
        let b = self.take(3, what)?;
        Ok(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }

    /// A field with a one-byte length prefix.
    pub(crate) fn vec8(&mut self, what: &str) -> Result<&'a [u8], String> {
        let n = self.u8(what)?;
        self.take(usize::from(n), what)
    }

    /// A field with a two-byte length prefix.
    pub(crate) fn vec16(&mut self, what: &str) -> Result<&'a [u8], String> {
        let n = self.u16(what)?;
        self.take(usize::from(n), what)
    }

    /// A field with a three-byte length prefix.
    pub(crate) fn vec24(&mut self, what: &str) -> Result<&'a [u8], String> {
        let n = self.u24(what)?;
        self.take(n, what)
    }

    /// A field holding a list of 16-bit values: odd lengths are malformed.
    pub(crate) fn u16_list(mut self, what: &str) -> Result<Vec<u16>, String> {
        if !self.buf.len().is_multiple_of(2) {
            return Err(format!("{what} has an odd length of {}", self.buf.len()));
        }
        let mut out = Vec::with_capacity(self.buf.len() / 2);
        while !self.is_empty() {
            out.push(self.u16(what)?);
        }
        Ok(out)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Fails unless every byte was read: trailing bytes mean an enclosing length lied.
    pub(crate) fn finish(&self, what: &str) -> Result<(), String> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(format!("{} unexpected bytes after {what}", self.buf.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_fields() {
        let mut r = Reader::new(&[1, 0x02, 0x03, 0, 0, 1, 0xcc, 2, 0xaa, 0xbb]);
        assert_eq!(r.u8("a"), Ok(1));
        assert_eq!(r.u16("b"), Ok(0x0203));
        assert_eq!(r.vec24("c"), Ok(&[0xcc][..]));
        assert_eq!(r.vec8("d"), Ok(&[0xaa, 0xbb][..]));
        assert!(r.is_empty());
        assert_eq!(r.finish("e"), Ok(()));
    }

    #[test]
    fn names_the_short_field() {
        let mut r = Reader::new(&[0x00, 0x05, 1, 2]);
        let err = r.vec16("cipher_suites").unwrap_err();
        assert!(err.starts_with("cipher_suites needs 5 bytes"), "{err}");
        assert!(Reader::new(&[1, 2, 3]).u16_list("groups").is_err());
        assert!(Reader::new(&[1]).finish("hello").is_err());
    }
}
