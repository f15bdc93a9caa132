//! The TLS record layer in the clear: record headers, and handshake messages reassembled
//! from records split anywhere.
//!
//! The caller keeps every byte read so far and parses from the start each time; the
//! messages of interest (hellos, a certificate chain) are small and read once, so this is
//! simpler than a stateful deframer and never needs to be told about a short read.

/// Bytes in a record header: content type, version, length.
pub(crate) const HEADER_LEN: usize = 5;
/// Bytes in a handshake message header: type and 24-bit length.
pub(crate) const HANDSHAKE_HEADER_LEN: usize = 4;
/// Largest record body: 2^14 bytes of plaintext plus the 2048 that RFC 5246 lets a
/// protected record grow, so encrypted records after a ServerHello still frame.
const MAX_RECORD_BODY: usize = (1 << 14) + 2048;

/// Record content type for ChangeCipherSpec.
pub(crate) const CHANGE_CIPHER_SPEC: u8 = 20;
/// Record content type for alerts.
pub(crate) const ALERT: u8 = 21;
/// Record content type for handshake messages.
pub(crate) const HANDSHAKE: u8 = 22;
/// Record content type for application data (and TLS 1.3's encrypted handshake).
pub(crate) const APPLICATION_DATA: u8 = 23;

/// One message taken off the record layer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Message {
    /// A whole handshake message, reassembled if it spanned records.
    Handshake { kind: u8, body: Vec<u8> },
    /// The first alert of an alert record.
    Alert { level: u8, description: u8 },
    /// A ChangeCipherSpec record; its contents do not matter to a hello reader.
    ChangeCipherSpec,
    /// An application-data record (encrypted: never looked into).
    ApplicationData,
}

/// Why the record layer could not go on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DeframeError {
    /// A header or length that no TLS peer sends.
    Malformed(String),
    /// A handshake message longer than the caller's limit.
    TooLarge,
}

/// Splits a byte stream into records and records into messages.
pub(crate) struct Deframer<'a> {
    input: &'a [u8],
    /// Handshake bytes from records read so far that do not yet form a whole message.
    pending: Vec<u8>,
    max_message: usize,
}

impl<'a> Deframer<'a> {
    /// Reads `input` from its first record; handshake messages longer than `max_message`
    /// bytes are refused as soon as their header is seen.
    pub(crate) fn new(input: &'a [u8], max_message: usize) -> Self {
        Deframer {
            input,
            pending: Vec::new(),
            max_message,
        }
    }

    /// The next whole message, or `None` when the input ends before one is complete.
    pub(crate) fn next_message(&mut self) -> Result<Option<Message>, DeframeError> {
        loop {
            if let Some(message) = self.take_handshake()? {
                return Ok(Some(message));
            }
            let Some((content_type, body)) = self.next_record()? else {
                self.check_partial_handshake()?;
                return Ok(None);
            };
            if content_type == HANDSHAKE {
                self.pending.extend_from_slice(body);
                continue;
            }
            if !self.pending.is_empty() {
                // RFC 5246 6.2.1 and RFC 8446 5.1: other records may not interleave with
                // the fragments of one handshake message.
                return Err(DeframeError::Malformed(format!(
                    "a record of type {content_type} interrupts a handshake message"
                )));
            }
            return match content_type {
                ALERT => alert(body),
                CHANGE_CIPHER_SPEC => Ok(Some(Message::ChangeCipherSpec)),
                _ => Ok(Some(Message::ApplicationData)),
            };
        }
    }

    fn take_handshake(&mut self) -> Result<Option<Message>, DeframeError> {
        if self.pending.len() < HANDSHAKE_HEADER_LEN {
            return Ok(None);
        }
        let len = u24(self.pending[1], self.pending[2], self.pending[3]);
        if len > self.max_message {
            return Err(DeframeError::TooLarge);
        }
        let end = HANDSHAKE_HEADER_LEN + len;
        if self.pending.len() < end {
            return Ok(None);
        }
        let kind = self.pending[0];
        let body = self.pending[HANDSHAKE_HEADER_LEN..end].to_vec();
        self.pending.drain(..end);
        Ok(Some(Message::Handshake { kind, body }))
    }

    /// Refuses an oversized handshake message as soon as its header is in, even inside a
    /// record that is not whole yet, so no caller buffers a message it will refuse.
    fn check_partial_handshake(&self) -> Result<(), DeframeError> {
        let partial = match self.input {
            [HANDSHAKE, _, _, _, _, body @ ..] => body,
            _ => &[],
        };
        let header: Vec<u8> = self
            .pending
            .iter()
            .chain(partial)
            .take(HANDSHAKE_HEADER_LEN)
            .copied()
            .collect();
        match header[..] {
            [_, a, b, c] if u24(a, b, c) > self.max_message => Err(DeframeError::TooLarge),
            _ => Ok(()),
        }
    }

    /// The next record's content type and body. Header bytes are checked as soon as they
    /// arrive, so garbage is refused without waiting for five bytes.
    fn next_record(&mut self) -> Result<Option<(u8, &'a [u8])>, DeframeError> {
        let input = self.input;
        if let Some(&content_type) = input.first() {
            if !(CHANGE_CIPHER_SPEC..=APPLICATION_DATA).contains(&content_type) {
                return Err(DeframeError::Malformed(format!(
                    "record content type {content_type} is not one TLS uses"
                )));
            }
        }
        if let Some(&major) = input.get(1) {
            if major != 3 {
                return Err(DeframeError::Malformed(format!(
                    "record version {major:#04x}xx is not SSLv3 or TLS"
                )));
            }
        }
        if input.len() < HEADER_LEN {
            return Ok(None);
        }
        let content_type = input[0];
        let len = usize::from(u16::from_be_bytes([input[3], input[4]]));
        if len > MAX_RECORD_BODY {
            return Err(DeframeError::Malformed(format!(
                "record of {len} bytes exceeds the {MAX_RECORD_BODY}-byte limit"
            )));
        }
        if len == 0 && content_type != APPLICATION_DATA {
            // RFC 5246 6.2.1: only application data may come in empty records.
            return Err(DeframeError::Malformed(format!(
                "empty record of type {content_type}"
            )));
        }
        let Some(body) = input.get(HEADER_LEN..HEADER_LEN + len) else {
            return Ok(None);
        };
        self.input = &input[HEADER_LEN + len..];
        Ok(Some((content_type, body)))
    }
}

fn u24(a: u8, b: u8, c: u8) -> usize {
    usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c)
}

/// An alert record holds whole two-byte alerts; report the first.
fn alert(body: &[u8]) -> Result<Option<Message>, DeframeError> {
    match body {
        [level, description, rest @ ..] if rest.len().is_multiple_of(2) => {
            Ok(Some(Message::Alert {
                level: *level,
                description: *description,
            }))
        }
        _ => Err(DeframeError::Malformed(format!(
            "alert record of {} bytes is not whole alerts",
            body.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(input: &[u8]) -> Result<Vec<Message>, DeframeError> {
        let mut deframer = Deframer::new(input, 1 << 16);
        let mut out = Vec::new();
        while let Some(message) = deframer.next_message()? {
            out.push(message);
        }
        Ok(out)
    }

    #[test]
    fn reassembles_a_message_split_across_records() {
        let input = [
            &[22, 3, 3, 0, 3, 2, 0, 0][..],
            &[22, 3, 3, 0, 3, 3, 0xaa, 0xbb][..],
            &[22, 3, 3, 0, 1, 0xcc][..],
        ]
        .concat();
        assert_eq!(
            messages(&input),
            Ok(vec![Message::Handshake {
                kind: 2,
                body: vec![0xaa, 0xbb, 0xcc],
            }])
        );
    }

    #[test]
    fn several_messages_in_one_record_then_an_alert() {
        let input = [
            &[22, 3, 3, 0, 9, 2, 0, 0, 1, 0xaa, 14, 0, 0, 0][..],
            &[21, 3, 3, 0, 2, 2, 40][..],
        ]
        .concat();
        assert_eq!(
            messages(&input),
            Ok(vec![
                Message::Handshake {
                    kind: 2,
                    body: vec![0xaa]
                },
                Message::Handshake {
                    kind: 14,
                    body: vec![]
                },
                Message::Alert {
                    level: 2,
                    description: 40
                },
            ])
        );
    }

    #[test]
    fn a_partial_record_is_not_an_error() {
        let input = [22, 3, 3, 0, 5, 2, 0, 0, 1, 0xaa];
        for end in 0..input.len() {
            assert_eq!(messages(&input[..end]), Ok(vec![]), "prefix of {end}");
        }
    }

    #[test]
    fn refuses_interleaved_records_and_bad_headers() {
        let interleaved = [&[22, 3, 3, 0, 2, 2, 0][..], &[21, 3, 3, 0, 2, 2, 40][..]].concat();
        assert!(matches!(
            messages(&interleaved),
            Err(DeframeError::Malformed(_))
        ));
        assert!(matches!(messages(&[24]), Err(DeframeError::Malformed(_))));
        assert!(matches!(
            messages(&[22, 2]),
            Err(DeframeError::Malformed(_))
        ));
        assert!(matches!(
            messages(&[22, 3, 3, 0x48, 0x01]),
            Err(DeframeError::Malformed(_))
        ));
        assert!(matches!(
            messages(&[22, 3, 3, 0, 0]),
            Err(DeframeError::Malformed(_))
        ));
        assert!(matches!(
            messages(&[21, 3, 3, 0, 3, 2, 40, 0]),
            Err(DeframeError::Malformed(_))
        ));
    }

    #[test]
    fn refuses_an_oversized_message_from_its_header() {
        let mut deframer = Deframer::new(&[22, 3, 1, 0, 4, 1, 0x01, 0x00, 0x01], 0x10000);
        assert_eq!(deframer.next_message(), Err(DeframeError::TooLarge));
        // Also when the header sits in a record that has not fully arrived.
        let mut deframer = Deframer::new(&[22, 3, 1, 0x40, 0, 1, 0x01, 0x00, 0x01], 0x10000);
        assert_eq!(deframer.next_message(), Err(DeframeError::TooLarge));
        // And when it spans a whole record and a partial one.
        let split = [22, 3, 1, 0, 2, 1, 0x01, 22, 3, 1, 0x40, 0, 0x00, 0x01];
        let mut deframer = Deframer::new(&split, 0x10000);
        assert_eq!(deframer.next_message(), Err(DeframeError::TooLarge));
        let mut deframer = Deframer::new(&split[..split.len() - 1], 0x10000);
        assert_eq!(deframer.next_message(), Ok(None));
    }
}
