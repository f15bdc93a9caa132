//! TCP stream reassembly for one direction of a connection.
//!
//! Written for this job rather than taken from a crate: the registry's candidates
//! (`protolens`, `parse-tcp`) are young, little used or MPL-licensed, and none lets the caller
//! bound the bytes held per flow or stop reassembling once the handshake has been read, which is
//! what keeps a capture of bulk mail traffic cheap. Only the first few kilobytes of each
//! direction matter here.

use std::collections::BTreeMap;

/// Farthest ahead of the next expected byte a segment may start and still be kept: beyond
/// this it belongs to another connection reusing the ports, or is garbage.
const MAX_AHEAD: u32 = 1 << 20;

/// What became of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentFate {
    /// Some or all of it was new and in order: delivered (with any held segments it freed).
    Delivered,
    /// It starts beyond a gap: held until the gap fills.
    Held,
    /// Every byte was delivered before: a retransmission.
    Duplicate,
    /// Holding it would exceed the direction's bound, or it lies implausibly far ahead:
    /// dropped, and the stream is broken from here on.
    Dropped,
}

/// Most segments held at once, whatever their size: tiny segments cost more than their bytes.
const MAX_HELD_SEGMENTS: usize = 1024;

/// One direction of a TCP connection: delivers its bytes in order, once each, whatever order
/// the segments arrive in, holding at most `limit` bytes of out-of-order segments.
#[derive(Debug)]
pub struct StreamReassembler {
    /// Sequence number of the next byte to deliver; `None` before the first segment.
    next: Option<u32>,
    /// Bytes delivered so far: the stream offset of `next`.
    delivered: u64,
    /// Segments beyond a gap, by stream offset.
    held: BTreeMap<u64, Vec<u8>>,
    held_bytes: usize,
    limit: usize,
    /// Whether the first segment seen was not a SYN.
    mid_stream: bool,
    /// Set once a segment had to be dropped: nothing after the gap can be trusted in order.
    broken: bool,
}

impl StreamReassembler {
    /// A direction holding at most `limit` bytes out of order.
    pub fn new(limit: usize) -> StreamReassembler {
        StreamReassembler {
            next: None,
            delivered: 0,
            held: BTreeMap::new(),
            held_bytes: 0,
            limit,
            mid_stream: false,
            broken: false,
        }
    }

    /// Whether the stream was joined after its SYN.
    pub fn mid_stream(&self) -> bool {
        self.mid_stream
    }

    /// Whether a segment had to be dropped, leaving a gap that will never fill.
    pub fn broken(&self) -> bool {
        self.broken
    }

    /// Bytes held out of order.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Takes one segment: `sequence` is its TCP sequence number, `syn` its SYN flag. Bytes
    /// now in order are passed to `deliver`, in order.
    pub fn segment(
        &mut self,
        sequence: u32,
        syn: bool,
        payload: &[u8],
        deliver: &mut impl FnMut(&[u8]),
    ) -> SegmentFate {
        // A SYN occupies one sequence number before the first data byte.
        let data_start = if syn {
            sequence.wrapping_add(1)
        } else {
            sequence
        };
        let next = match self.next {
            Some(next) => next,
            None => {
                self.mid_stream = !syn;
                self.next = Some(data_start);
                data_start
            }
        };
        if self.broken {
            return SegmentFate::Dropped;
        }
        if payload.is_empty() {
            return SegmentFate::Duplicate;
        }
        let ahead = data_start.wrapping_sub(next);
        if ahead == 0 || ahead > u32::MAX / 2 {
            // Starts at or before the next byte (wrapping): deliver what is new.
            let already = next.wrapping_sub(data_start) as usize;
            if already >= payload.len() {
                return SegmentFate::Duplicate;
            }
            self.deliver(&payload[already..], deliver);
            self.release_held(deliver);
            return SegmentFate::Delivered;
        }
        if ahead > MAX_AHEAD
            || self.held_bytes + payload.len() > self.limit
            || self.held.len() >= MAX_HELD_SEGMENTS
        {
            self.stop();
            return SegmentFate::Dropped;
        }
        let offset = self.delivered + u64::from(ahead);
        match self.held.get(&offset) {
            Some(bytes) if bytes.len() >= payload.len() => SegmentFate::Duplicate,
            _ => {
                if let Some(replaced) = self.held.insert(offset, payload.to_vec()) {
                    self.held_bytes -= replaced.len();
                }
                self.held_bytes += payload.len();
                SegmentFate::Held
            }
        }
    }

    /// Stops holding anything: the caller needs no more bytes of this direction.
    pub fn stop(&mut self) {
        self.held = BTreeMap::new();
        self.held_bytes = 0;
        self.broken = true;
    }

    fn deliver(&mut self, fresh: &[u8], deliver: &mut impl FnMut(&[u8])) {
        deliver(fresh);
        self.delivered += fresh.len() as u64;
        self.next = self.next.map(|n| n.wrapping_add(fresh.len() as u32));
    }

    /// Delivers held segments that the gap's filling has put in order.
    fn release_held(&mut self, deliver: &mut impl FnMut(&[u8])) {
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() > self.delivered {
                return;
            }
            let (offset, bytes) = entry.remove_entry();
            self.held_bytes -= bytes.len();
            let already = (self.delivered - offset) as usize;
            if already < bytes.len() {
                self.deliver(&bytes[already..], deliver);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `segments` (sequence, bytes) after a SYN at `isn`; returns what was delivered.
    fn reassemble(
        isn: u32,
        segments: &[(u32, &[u8])],
        limit: usize,
    ) -> (Vec<u8>, StreamReassembler) {
        let mut stream = StreamReassembler::new(limit);
        let mut out = Vec::new();
        stream.segment(isn, true, &[], &mut |b| out.extend_from_slice(b));
        for (offset, bytes) in segments {
            stream.segment(
                isn.wrapping_add(1).wrapping_add(*offset),
                false,
                bytes,
                &mut |b| out.extend_from_slice(b),
            );
        }
        (out, stream)
    }

    const TEXT: &[u8] = b"a1 STARTTLS\r\nthe rest of a longer stream of bytes";

    /// The stream cut into segments of `size` bytes, as (offset, bytes).
    fn chunks(size: usize) -> Vec<(u32, &'static [u8])> {
        TEXT.chunks(size)
            .enumerate()
            .map(|(i, c)| ((i * size) as u32, c))
            .collect()
    }

    #[test]
    fn in_order_chunks_of_every_size_arrive_whole() {
        for size in [1, 2, 3, 7, TEXT.len()] {
            let (out, stream) = reassemble(1000, &chunks(size), 4096);
            assert_eq!(out, TEXT, "chunks of {size}");
            assert!(!stream.mid_stream());
        }
    }

    #[test]
    fn reversed_chunks_are_put_back_in_order() {
        for size in [1, 2, 3, 7] {
            let mut segments = chunks(size);
            segments.reverse();
            let (out, stream) = reassemble(7, &segments, 4096);
            assert_eq!(out, TEXT, "chunks of {size}");
            assert_eq!(stream.held_bytes(), 0);
        }
    }

    #[test]
    fn retransmissions_and_overlaps_deliver_each_byte_once() {
        for size in [1, 2, 3, 7] {
            let mut segments = Vec::new();
            for (offset, bytes) in chunks(size) {
                segments.push((offset, bytes));
                segments.push((offset, bytes));
            }
            // A segment overlapping two others, sent late.
            segments.push((1, &TEXT[1..10]));
            let (out, _) = reassemble(5, &segments, 4096);
            assert_eq!(out, TEXT, "chunks of {size}");
        }
    }

    #[test]
    fn sequence_numbers_wrap() {
        for size in [1, 3, 7] {
            let mut segments = chunks(size);
            segments.swap(0, 1);
            let (out, _) = reassemble(u32::MAX - 3, &segments, 4096);
            assert_eq!(out, TEXT, "chunks of {size}");
        }
    }

    #[test]
    fn held_bytes_stay_within_the_bound() {
        // The first segment never arrives; later ones pile up until the bound.
        let segments: Vec<(u32, &[u8])> = (1..100).map(|i| (i * 10, &TEXT[..10])).collect();
        let mut stream = StreamReassembler::new(64);
        stream.segment(0, true, &[], &mut |_| {});
        let mut fates = Vec::new();
        for (offset, bytes) in segments {
            fates.push(stream.segment(1 + offset, false, bytes, &mut |_| {}));
            assert!(stream.held_bytes() <= 64);
        }
        assert!(fates.contains(&SegmentFate::Dropped));
        assert!(stream.broken());
    }

    #[test]
    fn a_stream_joined_late_starts_at_its_first_segment() {
        let mut stream = StreamReassembler::new(4096);
        let mut out = Vec::new();
        stream.segment(5000, false, b"tail of", &mut |b| out.extend_from_slice(b));
        stream.segment(5007, false, b" a stream", &mut |b| out.extend_from_slice(b));
        assert_eq!(out, b"tail of a stream");
        assert!(stream.mid_stream());
    }
}

#[cfg(test)]
mod random_segments {
    use super::*;

    /// The property the `tcp_reassembly` fuzz target checks, over pseudo-random segmentings
    /// (xorshift, fixed seed): only the stream's bytes, in order, once; held bytes within the
    /// bound; everything covered delivered unless a segment was dropped.
    #[test]
    fn any_segmenting_delivers_a_prefix_of_the_stream() {
        let mut random = crate::pseudo_random::XorShift(0x2545_f491_4f6c_dd1d);
        let mut next = move || random.next();
        let stream: Vec<u8> = (0..600u32).map(|i| (i * 7 % 251) as u8).collect();
        for round in 0..2000 {
            let isn = next() as u32;
            let limit = (next() % 800) as usize;
            let mut reassembler = StreamReassembler::new(limit);
            let mut delivered = Vec::new();
            reassembler.segment(isn, true, &[], &mut |b| delivered.extend_from_slice(b));
            let mut covered = vec![false; stream.len()];
            for _ in 0..(next() % 60) {
                let start = (next() % stream.len() as u64) as usize;
                let end = (start + (next() % 120) as usize).min(stream.len());
                covered[start..end].iter_mut().for_each(|c| *c = true);
                let sequence = isn.wrapping_add(1).wrapping_add(start as u32);
                reassembler.segment(sequence, false, &stream[start..end], &mut |b| {
                    delivered.extend_from_slice(b)
                });
                assert!(reassembler.held_bytes() <= limit, "round {round}");
                assert_eq!(&stream[..delivered.len()], &delivered[..], "round {round}");
            }
            if !reassembler.broken() {
                let contiguous = covered.iter().take_while(|&&c| c).count();
                assert_eq!(delivered.len(), contiguous, "round {round}");
            }
        }
    }
}
