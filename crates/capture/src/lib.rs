//! Mail clients found in packet captures: the TLS handshakes and plaintext logins of IMAP,
//! POP3 and SMTP connections, for the inventory, without a gateway in the path.
//!
//! [`CaptureReader`] streams frames out of a pcap or pcapng file; [`Analyzer`] decodes the link
//! layer (Ethernet, 802.1Q VLAN, Linux cooked v1/v2, raw IP, BSD loopback), IPv4 or IPv6 and
//! TCP, reassembles each direction of every connection ([`StreamReassembler`]), follows the
//! plaintext dialogue up to STARTTLS, and makes a [`store::SessionRecord`] of every ClientHello
//! with the server's answer (ServerHello, alert or silence) and of every login sent in the
//! clear. Nothing here reads a socket or a clock: time is the packets' timestamps, so the live
//! sensor feeds the same [`Analyzer`] with frames from libpcap.
//!
//! ```
//! use capture::{AnalysisConfig, Analyzer, CaptureReader};
//! use store::Source;
//!
//! // A pcap header (microseconds, Ethernet) and no packets.
//! let mut file = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
//! file.extend_from_slice(&[0; 8]);
//! file.extend_from_slice(&65535u32.to_le_bytes());
//! file.extend_from_slice(&1u32.to_le_bytes());
//! let mut reader = CaptureReader::new(&file[..]).unwrap();
//! let mut analyzer = Analyzer::new(AnalysisConfig::new(Source::Capture, "capture"));
//! reader.read_packets(|packet| { analyzer.packet(packet); true }).unwrap();
//! analyzer.finish();
//! assert!(analyzer.take_records().is_empty());
//! ```

mod analysis;
mod dialogue;
mod link;
#[cfg(test)]
mod pseudo_random;
mod reader;
mod reassembly;

pub use analysis::{AnalysisConfig, Analyzer, CaptureStats};
pub use dialogue::{MailProtocol, MAX_LOGIN_BYTES};
pub use link::{tcp_segment, NotTcp, Segment};
pub use reader::{CaptureError, CaptureReader, Packet};
pub use reassembly::{SegmentFate, StreamReassembler};
