//! Arbitrary bytes as a capture file for `mailtls import pcap`: `capture::CaptureReader`
//! streaming the blocks into `capture::Analyzer` (link layers, IP, TCP reassembly, the mail
//! dialogues, ClientHello and server reply). Nothing may panic; an error names a byte offset
//! inside the file; every record's login and server name stay within their bounds, and no
//! more connections are followed than the table holds.
//!
//! Input layout: one byte choosing a prefix (0: none, the bytes are the whole file; 1: a pcap
//! header for Ethernet; 2: for raw IP; 3: for Linux cooked v2; 4: a pcapng section with one
//! Ethernet interface), then the rest of the file.

#![no_main]

use capture::{AnalysisConfig, Analyzer, CaptureError, CaptureReader, MAX_LOGIN_BYTES};
use libfuzzer_sys::fuzz_target;
use store::{Source, MAX_SNI_BYTES};

fuzz_target!(|data: &[u8]| {
    let [choice, ref rest @ ..] = *data else {
        return;
    };
    let mut file = match choice % 5 {
        1 => pcap_header(1),
        2 => pcap_header(101),
        3 => pcap_header(276),
        4 => pcapng_header(),
        _ => Vec::new(),
    };
    file.extend_from_slice(rest);
    let mut config = AnalysisConfig::new(Source::Capture, "fuzz");
    config.max_flows = 64;
    config.max_held_bytes = 4096;
    config.implicit_tls_ports.push((0, capture::MailProtocol::Imap));
    let mut analyzer = Analyzer::new(config);
    let result = CaptureReader::new(&file[..]).and_then(|mut reader| {
        reader.read_packets(|packet| {
            analyzer.packet(packet);
            assert!(analyzer.open_flows() <= 64);
            true
        })
    });
    match result {
        Ok(()) | Err(CaptureError::NotACapture) => {}
        Err(CaptureError::Truncated { offset })
        | Err(CaptureError::Corrupt { offset, .. })
        | Err(CaptureError::Read { offset }) => assert!(offset <= file.len() as u64),
    }
    analyzer.finish();
    for record in analyzer.take_records() {
        assert!(record.login.as_ref().is_none_or(|l| l.len() <= MAX_LOGIN_BYTES));
        assert!(record.sni.as_ref().is_none_or(|s| s.len() <= MAX_SNI_BYTES));
    }
});

/// A little-endian microsecond pcap header of `link_type`.
fn pcap_header(link_type: u32) -> Vec<u8> {
    let mut header = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    header.extend_from_slice(&65535u32.to_le_bytes());
    header.extend_from_slice(&link_type.to_le_bytes());
    header
}

/// A pcapng section header block and one Ethernet interface description block.
fn pcapng_header() -> Vec<u8> {
    let mut header = Vec::new();
    header.extend_from_slice(&0x0A0D_0D0Au32.to_le_bytes());
    header.extend_from_slice(&28u32.to_le_bytes());
    header.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
    header.extend_from_slice(&[1, 0, 0, 0]);
    header.extend_from_slice(&u64::MAX.to_le_bytes());
    header.extend_from_slice(&28u32.to_le_bytes());
    header.extend_from_slice(&1u32.to_le_bytes());
    header.extend_from_slice(&20u32.to_le_bytes());
    header.extend_from_slice(&[1, 0, 0, 0]);
    header.extend_from_slice(&65535u32.to_le_bytes());
    header.extend_from_slice(&20u32.to_le_bytes());
    header
}
