//! Packets out of a pcap or pcapng file, read a buffer at a time (pcap-parser): a capture of
//! any size is never held in memory.

use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{create_reader, Linktype, PcapBlockOwned, PcapError};

/// Bytes read from the file at a time.
const READ_BUFFER_BYTES: usize = 256 * 1024;
/// The largest block accepted: snap lengths are 256 KiB at most in practice, so a bigger block
/// is corruption, and refusing it bounds memory.
const MAX_BLOCK_BYTES: usize = 16 * 1024 * 1024;

/// One captured frame.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// When it was captured, from the capture's own timestamp.
    pub timestamp: SystemTime,
    /// The link type of its interface (tcpdump's LINKTYPE_ numbers).
    pub link_type: u32,
    /// The bytes captured, starting with the link-layer header.
    pub data: &'a [u8],
    /// Byte offset in the file of the block that carried it.
    pub offset: u64,
}

/// Why a capture file cannot be read (further). Packets before the error were delivered.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// Neither a pcap nor a pcapng header.
    #[error("not a pcap or pcapng file (byte offset 0)")]
    NotACapture,
    /// The file ends inside a block.
    #[error("the capture is truncated: it ends inside a block at byte offset {offset}")]
    Truncated {
        /// Where the incomplete block starts.
        offset: u64,
    },
    /// A block's framing is impossible.
    #[error("corrupt capture at byte offset {offset}: {reason}")]
    Corrupt {
        /// Where the bad block starts.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// Reading the file failed.
    #[error("cannot read the capture at byte offset {offset}")]
    Read {
        /// How far reading had come.
        offset: u64,
    },
}

/// How one pcapng interface's timestamps and frames are read.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: u32,
    /// Timestamp units per second.
    units_per_second: u64,
    /// Seconds added to every timestamp.
    offset_seconds: i64,
}

/// A streaming reader of pcap and pcapng captures.
pub struct CaptureReader<'r> {
    blocks: Box<dyn PcapReaderIterator + Send + 'r>,
    /// Byte offset in the file of the next block.
    offset: u64,
    /// Legacy pcap: the link type and whether timestamps count nanoseconds.
    legacy: Option<(u32, bool)>,
    /// pcapng: the current section's interfaces, in order of their description blocks.
    interfaces: Vec<Interface>,
    /// Simple packet blocks carry no time; they get the last one seen.
    last_timestamp: SystemTime,
}

/// What one step of reading found, with no borrow of the reader left.
enum Step {
    Consumed(usize),
    Eof,
    Refill,
    Grow,
    Corrupt(String),
}

/// A pcapng block whose total length is below the 12 bytes of its own frame (type and both
/// length fields). pcap-parser 0.17 subtracts 12 from some block types' length unchecked (a
/// Process Information Block's, for one), which panics in builds with overflow checks, so
/// such a block is refused before it is parsed. Either byte order is checked: a length that
/// is short in the other order would be a block over 16 MiB, refused anyway.
fn impossible_block_length(data: &[u8]) -> Option<String> {
    let field: [u8; 4] = data.get(4..8)?.try_into().ok()?;
    let shortest = u32::from_le_bytes(field).min(u32::from_be_bytes(field));
    (shortest < 12).then(|| format!("a block {shortest} bytes long, shorter than its frame"))
}

impl<'r> CaptureReader<'r> {
    /// Starts reading `source`, which must begin with a pcap or pcapng header.
    pub fn new<R: Read + Send + 'r>(source: R) -> Result<CaptureReader<'r>, CaptureError> {
        let blocks = create_reader(READ_BUFFER_BYTES, source).map_err(|e| match e {
            PcapError::ReadError => CaptureError::Read { offset: 0 },
            PcapError::Incomplete(_) | PcapError::Eof | PcapError::UnexpectedEof => {
                CaptureError::Truncated { offset: 0 }
            }
            _ => CaptureError::NotACapture,
        })?;
        Ok(CaptureReader {
            blocks,
            offset: 0,
            legacy: None,
            interfaces: Vec::new(),
            last_timestamp: UNIX_EPOCH,
        })
    }

    /// Byte offset of the next block: how far into the file reading has come.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Calls `on_packet` for every frame until the end of the capture, or until an error,
    /// which names the byte offset of the block at fault. `on_packet` returns `false` to stop
    /// early.
    pub fn read_packets(
        &mut self,
        mut on_packet: impl FnMut(&Packet<'_>) -> bool,
    ) -> Result<(), CaptureError> {
        let mut wanted = READ_BUFFER_BYTES;
        loop {
            if self.legacy.is_none() {
                if let Some(reason) = impossible_block_length(self.blocks.data()) {
                    return Err(CaptureError::Corrupt {
                        offset: self.offset,
                        reason,
                    });
                }
            }
            let step = match self.blocks.next() {
                Ok((length, block)) => {
                    let packet = match block {
                        PcapBlockOwned::LegacyHeader(header) => {
                            self.legacy =
                                Some((link_type(header.network), header.is_nanosecond_precision()));
                            None
                        }
                        PcapBlockOwned::Legacy(frame) => {
                            let (link, nanos) = self.legacy.unwrap_or((0, false));
                            let fraction = if nanos {
                                u64::from(frame.ts_usec)
                            } else {
                                u64::from(frame.ts_usec) * 1000
                            };
                            let timestamp = UNIX_EPOCH
                                + Duration::from_secs(frame.ts_sec.into())
                                + Duration::from_nanos(fraction);
                            let captured = frame.data.len().min(frame.caplen as usize);
                            Some((timestamp, link, &frame.data[..captured]))
                        }
                        PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                            self.interfaces.clear();
                            None
                        }
                        PcapBlockOwned::NG(Block::InterfaceDescription(description)) => {
                            self.interfaces.push(Interface {
                                link_type: link_type(description.linktype),
                                // An impossible resolution falls back to the default,
                                // microseconds.
                                units_per_second: description
                                    .ts_resolution()
                                    .filter(|&units| units > 0)
                                    .unwrap_or(1_000_000),
                                offset_seconds: description.ts_offset(),
                            });
                            None
                        }
                        PcapBlockOwned::NG(Block::EnhancedPacket(packet)) => {
                            let interface = self.interfaces.get(packet.if_id as usize).copied();
                            let Some(interface) = interface else {
                                let reason = format!(
                                    "packet of interface {} which has no description block",
                                    packet.if_id
                                );
                                return Err(CaptureError::Corrupt {
                                    offset: self.offset,
                                    reason,
                                });
                            };
                            let units =
                                (u64::from(packet.ts_high) << 32) | u64::from(packet.ts_low);
                            let timestamp = pcapng_time(units, interface);
                            let captured = packet.data.len().min(packet.caplen as usize);
                            Some((timestamp, interface.link_type, &packet.data[..captured]))
                        }
                        PcapBlockOwned::NG(Block::SimplePacket(packet)) => {
                            let link = self.interfaces.first().map_or(0, |i| i.link_type);
                            let captured = packet.data.len().min(packet.origlen as usize);
                            Some((self.last_timestamp, link, &packet.data[..captured]))
                        }
                        PcapBlockOwned::NG(_) => None,
                    };
                    let mut go_on = true;
                    if let Some((timestamp, link_type, data)) = packet {
                        self.last_timestamp = timestamp;
                        go_on = on_packet(&Packet {
                            timestamp,
                            link_type,
                            data,
                            offset: self.offset,
                        });
                    }
                    if !go_on {
                        self.blocks.consume(length);
                        self.offset += length as u64;
                        return Ok(());
                    }
                    Step::Consumed(length)
                }
                Err(PcapError::Eof) => Step::Eof,
                Err(PcapError::Incomplete(_)) => Step::Refill,
                Err(PcapError::BufferTooSmall) => Step::Grow,
                Err(PcapError::UnexpectedEof) => Step::Refill,
                Err(PcapError::ReadError) => {
                    return Err(CaptureError::Read {
                        offset: self.offset,
                    })
                }
                Err(e) => Step::Corrupt(describe(&e)),
            };
            match step {
                Step::Consumed(length) => {
                    self.blocks.consume(length);
                    self.offset += length as u64;
                }
                Step::Eof => return Ok(()),
                Step::Refill => {
                    if self.blocks.reader_exhausted() {
                        if self.blocks.data().is_empty() {
                            return Ok(());
                        }
                        return Err(CaptureError::Truncated {
                            offset: self.offset,
                        });
                    }
                    self.blocks.refill().map_err(|_| CaptureError::Read {
                        offset: self.offset,
                    })?;
                }
                Step::Grow => {
                    wanted *= 2;
                    if wanted > MAX_BLOCK_BYTES || !self.blocks.grow(wanted) {
                        return Err(CaptureError::Corrupt {
                            offset: self.offset,
                            reason: format!("a block larger than {MAX_BLOCK_BYTES} bytes"),
                        });
                    }
                    self.blocks.refill().map_err(|_| CaptureError::Read {
                        offset: self.offset,
                    })?;
                }
                Step::Corrupt(reason) => {
                    return Err(CaptureError::Corrupt {
                        offset: self.offset,
                        reason,
                    })
                }
            }
        }
    }
}

/// A link type as a number; negative values (impossible in a valid file) become 0xffff_ffff,
/// which no decoder knows.
fn link_type(link: Linktype) -> u32 {
    u32::try_from(link.0).unwrap_or(u32::MAX)
}

/// A pcapng timestamp, computed without overflow whatever the file says.
fn pcapng_time(units: u64, interface: Interface) -> SystemTime {
    let seconds = units / interface.units_per_second;
    let fraction = units % interface.units_per_second;
    let nanos =
        (u128::from(fraction) * 1_000_000_000 / u128::from(interface.units_per_second)) as u64;
    let base = UNIX_EPOCH + Duration::from_nanos(nanos);
    let shifted = i64::try_from(seconds)
        .ok()
        .and_then(|s| s.checked_add(interface.offset_seconds))
        .unwrap_or(0);
    match u64::try_from(shifted) {
        Ok(s) => base.checked_add(Duration::from_secs(s)).unwrap_or(base),
        Err(_) => base,
    }
}

/// The parser's complaint without the bytes it carries.
fn describe(error: &PcapError<&[u8]>) -> String {
    match error {
        PcapError::HeaderNotRecognized => "block header not recognised".to_string(),
        PcapError::NomError(_, kind) => format!("malformed block ({kind:?})"),
        PcapError::OwnedNomError(_, kind) => format!("malformed block ({kind:?})"),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap_header(link_type: u32) -> Vec<u8> {
        let mut header = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        header.extend_from_slice(&65535u32.to_le_bytes());
        header.extend_from_slice(&link_type.to_le_bytes());
        header
    }

    fn record(seconds: u32, data: &[u8]) -> Vec<u8> {
        let mut out = seconds.to_le_bytes().to_vec();
        out.extend_from_slice(&250_000u32.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    /// Each frame's time, link type, bytes and offset.
    type Frames = Vec<(SystemTime, u32, Vec<u8>, u64)>;

    fn packets(file: &[u8]) -> (Frames, Result<(), CaptureError>) {
        let mut seen = Vec::new();
        let result = CaptureReader::new(file).and_then(|mut reader| {
            reader.read_packets(|p| {
                seen.push((p.timestamp, p.link_type, p.data.to_vec(), p.offset));
                true
            })
        });
        (seen, result)
    }

    #[test]
    fn frames_come_with_their_time_link_type_and_offset() {
        let mut file = pcap_header(113);
        file.extend(record(7, b"first"));
        file.extend(record(8, b"second"));
        let (seen, result) = packets(&file);
        result.unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0, UNIX_EPOCH + Duration::from_millis(7250));
        assert_eq!(
            (seen[0].1, &seen[0].2[..], seen[0].3),
            (113, &b"first"[..], 24)
        );
        assert_eq!(seen[1].3, 24 + 16 + 5);
    }

    #[test]
    fn a_pcapng_block_shorter_than_its_frame_is_refused_with_its_offset() {
        // A section header (28 bytes, little-endian, no options), then a Process
        // Information Block (0x80000001) claiming to be 8 bytes long.
        let mut file = 0x0A0D_0D0Au32.to_le_bytes().to_vec();
        file.extend_from_slice(&28u32.to_le_bytes());
        file.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        file.extend_from_slice(&1u16.to_le_bytes());
        file.extend_from_slice(&0u16.to_le_bytes());
        file.extend_from_slice(&(-1i64).to_le_bytes());
        file.extend_from_slice(&28u32.to_le_bytes());
        file.extend_from_slice(&0x8000_0001u32.to_le_bytes());
        file.extend_from_slice(&8u32.to_le_bytes());
        file.extend_from_slice(&[0; 16]);
        let (seen, result) = packets(&file);
        assert!(seen.is_empty());
        match result {
            Err(CaptureError::Corrupt { offset, reason }) => {
                assert_eq!(offset, 28);
                assert!(reason.contains("8 bytes long"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn random_bytes_are_not_a_capture() {
        let noise: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        assert!(matches!(packets(&noise).1, Err(CaptureError::NotACapture)));
        assert!(packets(&[]).1.is_err());
    }

    #[test]
    fn a_file_cut_inside_a_record_names_the_offset_and_keeps_what_came_before() {
        let mut file = pcap_header(1);
        file.extend(record(1, b"whole"));
        let cut_at = file.len() as u64;
        file.extend(&record(2, b"cut short")[..20]);
        let (seen, result) = packets(&file);
        assert_eq!(seen.len(), 1);
        match result {
            Err(e @ CaptureError::Truncated { offset }) => {
                assert_eq!(offset, cut_at);
                assert!(e.to_string().contains(&format!("byte offset {cut_at}")));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_record_claiming_gigabytes_is_refused_without_allocating_them() {
        let mut file = pcap_header(1);
        let mut huge = record(1, b"x");
        huge[8..12].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
        file.extend(huge);
        file.extend(vec![0; 1 << 20]);
        let (seen, result) = packets(&file);
        assert!(seen.is_empty());
        assert!(result.is_err(), "{result:?}");
    }

    #[test]
    fn random_blocks_after_a_valid_header_end_in_an_offset_or_the_end() {
        let mut random = crate::pseudo_random::XorShift(0x853c_49e6_748f_ea9b);
        let mut next = move || random.next();
        // A pcapng section header and one Ethernet interface.
        let mut pcapng = Vec::new();
        for word in [
            0x0A0D_0D0Au32,
            28,
            0x1A2B_3C4D,
            1,
            u32::MAX,
            u32::MAX,
            28,
            1,
            20,
            1,
            65535,
            20,
        ] {
            pcapng.extend_from_slice(&word.to_le_bytes());
        }
        for round in 0..500 {
            let mut file = if round % 2 == 0 {
                pcap_header(1)
            } else {
                pcapng.clone()
            };
            let header = file.len();
            file.extend((0..(next() % 3000)).map(|_| next() as u8));
            // Plausible lengths now and then, so records parse and their bodies get read.
            if file.len() > header + 12 && round % 4 < 2 {
                let length = (next() % 200) as u32;
                file[header + 8..header + 12].copy_from_slice(&length.to_le_bytes());
            }
            match packets(&file).1 {
                Ok(()) | Err(CaptureError::NotACapture) => {}
                Err(CaptureError::Truncated { offset })
                | Err(CaptureError::Corrupt { offset, .. })
                | Err(CaptureError::Read { offset }) => {
                    assert!(offset <= file.len() as u64, "round {round}")
                }
            }
        }
    }
}
