//! Arbitrary bytes from both sides of an SMTP session after login, in arbitrary order, into
//! the count of accepted messages. It must never panic; the count never goes down; and it must
//! not depend on how each side's bytes were cut into reads.
//!
//! Input layout: segments, each a header byte (bit 7: from the upstream, else from the client;
//! bits 0-6: length) and its bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::smtp::AcceptedMessages;

fuzz_target!(|data: &[u8]| {
    let whole = count(data, usize::MAX);
    assert_eq!(count(data, 1), whole, "the chunking changed the count");
});

fn count(data: &[u8], piece: usize) -> u32 {
    let mut messages = AcceptedMessages::default();
    let mut rest = data;
    let mut last = 0;
    while let Some((&header, tail)) = rest.split_first() {
        let (segment, tail) = tail.split_at(usize::from(header & 0x7f).min(tail.len()));
        rest = tail;
        for bytes in segment.chunks(piece.min(segment.len().max(1))) {
            match header & 0x80 {
                0 => messages.from_client(bytes),
                _ => messages.from_upstream(bytes),
            }
            assert!(messages.accepted() >= last);
            last = messages.accepted();
        }
    }
    last
}
