//! `capture::StreamReassembler` fed segments of one byte stream in any order, overlapping,
//! repeated, across the sequence number wrap. It may only deliver the stream's bytes in order
//! (a prefix of the stream, never a byte twice), hold no more than its bound, and, when it
//! never dropped a segment, deliver every byte the segments cover from the start.
//!
//! Input layout: 4 bytes initial sequence number, 2 bytes held-bytes bound, 2 bytes stream
//! length N, N bytes of stream, then segments of 3 bytes each: start (2 bytes, modulo N) and
//! length (1 byte).

#![no_main]

use capture::StreamReassembler;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [a, b, c, d, l1, l2, n1, n2, ref rest @ ..] = *data else {
        return;
    };
    let isn = u32::from_be_bytes([a, b, c, d]);
    let limit = usize::from(u16::from_be_bytes([l1, l2]));
    let length = usize::from(u16::from_be_bytes([n1, n2])).min(rest.len());
    let (stream, segments) = rest.split_at(length);
    if stream.is_empty() {
        return;
    }
    let mut reassembler = StreamReassembler::new(limit);
    let mut delivered = Vec::new();
    reassembler.segment(isn, true, &[], &mut |bytes| delivered.extend_from_slice(bytes));
    let mut covered = vec![false; stream.len()];
    for segment in segments.chunks_exact(3) {
        let start = usize::from(u16::from_be_bytes([segment[0], segment[1]])) % stream.len();
        let end = (start + usize::from(segment[2])).min(stream.len());
        covered[start..end].iter_mut().for_each(|c| *c = true);
        let sequence = isn.wrapping_add(1).wrapping_add(start as u32);
        reassembler.segment(sequence, false, &stream[start..end], &mut |bytes| {
            delivered.extend_from_slice(bytes)
        });
        assert!(reassembler.held_bytes() <= limit);
        assert_eq!(&stream[..delivered.len()], &delivered[..], "not the stream, in order");
    }
    if !reassembler.broken() {
        let contiguous = covered.iter().take_while(|&&c| c).count();
        assert_eq!(delivered.len(), contiguous, "covered bytes not delivered");
    }
});
