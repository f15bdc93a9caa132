//! The analysis fed built frames: TLS answers, STARTTLS, logins, chunked delivery, and frames
//! it must skip. The captures of real sessions are in the e2e test `capture_import`.

use std::time::{Duration, UNIX_EPOCH};

use etherparse::PacketBuilder;

use super::*;

const TLS10_HELLO: &[u8] = include_bytes!("../../../wire/src/testdata/openssl_tls10_hello.bin");
const TLS13_HELLO: &[u8] = include_bytes!("../../../wire/src/testdata/openssl_tls13_hello.bin");
const ALERT: &[u8] = include_bytes!("../../../wire/src/testdata/openssl_reply_alert.bin");
const TLS13_REPLY: &[u8] = include_bytes!("../../../wire/src/testdata/openssl_reply_tls13.bin");

const CLIENT: [u8; 4] = [192, 0, 2, 10];
const SERVER: [u8; 4] = [198, 51, 100, 5];

/// A conversation on one connection, turned into Ethernet frames with real sequence numbers.
struct Conversation {
    client_port: u16,
    server_port: u16,
    client_seq: u32,
    server_seq: u32,
    frames: Vec<Vec<u8>>,
}

impl Conversation {
    fn new(client_port: u16, server_port: u16) -> Conversation {
        let mut c = Conversation {
            client_port,
            server_port,
            client_seq: 1000,
            server_seq: 5000,
            frames: Vec::new(),
        };
        c.frame(true, &[], true);
        c.client_seq += 1;
        c.frame(false, &[], true);
        c.server_seq += 1;
        c
    }

    fn frame(&mut self, from_client: bool, payload: &[u8], syn: bool) {
        let (src, dst, sp, dp, seq) = if from_client {
            (
                CLIENT,
                SERVER,
                self.client_port,
                self.server_port,
                self.client_seq,
            )
        } else {
            (
                SERVER,
                CLIENT,
                self.server_port,
                self.client_port,
                self.server_seq,
            )
        };
        let mut tcp = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4(src, dst, 64)
            .tcp(sp, dp, seq, 65535);
        if syn {
            tcp = tcp.syn();
        }
        if !(syn && from_client) {
            tcp = tcp.ack(1);
        }
        let mut frame = Vec::new();
        tcp.write(&mut frame, payload).expect("build a frame");
        self.frames.push(frame);
    }

    /// `bytes` sent in segments of `chunk` bytes.
    fn send(&mut self, from_client: bool, bytes: &[u8], chunk: usize) {
        for piece in bytes.chunks(chunk) {
            self.frame(from_client, piece, false);
            if from_client {
                self.client_seq += piece.len() as u32;
            } else {
                self.server_seq += piece.len() as u32;
            }
        }
    }
}

fn analyze(frames: &[Vec<u8>], config: AnalysisConfig) -> (Vec<SessionRecord>, CaptureStats) {
    let mut analyzer = Analyzer::new(config);
    for (i, frame) in frames.iter().enumerate() {
        analyzer.packet(&Packet {
            timestamp: UNIX_EPOCH + Duration::from_secs(1_700_000_000 + i as u64),
            link_type: 1,
            data: frame,
            offset: 0,
        });
    }
    analyzer.finish();
    (analyzer.take_records(), analyzer.stats().clone())
}

fn config() -> AnalysisConfig {
    AnalysisConfig::new(Source::Capture, "capture")
}

#[test]
fn an_alert_after_the_hello_is_a_refused_legacy_client_in_any_chunking() {
    for chunk in [1, 2, 3, 7, 4096] {
        let mut c = Conversation::new(40000, 993);
        c.send(true, TLS10_HELLO, chunk);
        c.send(false, ALERT, chunk);
        let (records, stats) = analyze(&c.frames, config());
        assert_eq!(records.len(), 1, "chunks of {chunk}");
        let r = &records[0];
        assert_eq!(r.outcome, Outcome::ClientTlsFailed, "chunks of {chunk}");
        assert_eq!(r.offered_max_tls, Some(wire::TlsVersion::Tls10));
        assert_eq!(r.tls_version, None);
        assert!(r.detail.as_deref().unwrap().contains("alert"), "{r:?}");
        assert_eq!(r.protocol, "imap");
        assert_eq!(r.upstream, "198.51.100.5:993");
        assert_eq!((stats.handshakes, stats.refused_handshakes), (1, 1));
    }
}

#[test]
fn imap_starttls_in_any_chunking_gives_the_negotiated_version() {
    for chunk in [1, 2, 3, 7, 4096] {
        let mut c = Conversation::new(40001, 143);
        c.send(
            false,
            b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n",
            chunk,
        );
        c.send(true, b"a1 STARTTLS\r\n", chunk);
        c.send(false, b"a1 OK Begin TLS negotiation now\r\n", chunk);
        c.send(true, TLS13_HELLO, chunk);
        c.send(false, TLS13_REPLY, chunk);
        let (records, _) = analyze(&c.frames, config());
        assert_eq!(records.len(), 1, "chunks of {chunk}");
        assert_eq!(records[0].tls_version, Some(wire::TlsVersion::Tls13));
        assert_eq!(records[0].outcome, Outcome::Ok);
        assert_eq!(records[0].protocol, "imap");
    }
}

#[test]
fn a_refused_starttls_leaves_the_dialogue_in_plaintext_and_its_login_is_recorded() {
    let mut c = Conversation::new(40002, 110);
    c.send(false, b"+OK ready\r\n", 100);
    c.send(true, b"STLS\r\n", 100);
    c.send(false, b"-ERR not now\r\n", 100);
    c.send(true, b"USER dave\r\n", 3);
    c.send(false, b"+OK\r\n", 100);
    c.send(true, b"PASS hunter2\r\n", 3);
    c.send(false, b"+OK logged in\r\n", 100);
    let (records, stats) = analyze(&c.frames, config());
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].login.as_deref(), Some("dave"));
    assert_eq!(
        (records[0].outcome, records[0].tls_version),
        (Outcome::Ok, None)
    );
    assert_eq!(stats.plaintext_logins, 1);
    assert!(!format!("{records:?}").contains("hunter2"));
}

#[test]
fn tls_on_ports_not_known_for_mail_is_counted_not_recorded() {
    let mut c = Conversation::new(40003, 443);
    c.send(true, TLS13_HELLO, 4096);
    c.send(false, TLS13_REPLY, 4096);
    let (records, stats) = analyze(&c.frames, config());
    assert!(records.is_empty());
    assert_eq!(stats.tls_on_other_ports, 1);
    let mut known = config();
    known.implicit_tls_ports.push((443, MailProtocol::Imap));
    assert_eq!(analyze(&c.frames, known).0.len(), 1);
}

#[test]
fn a_hello_without_answer_is_recorded_when_the_connection_goes_idle() {
    let mut c = Conversation::new(40004, 995);
    c.send(true, TLS10_HELLO, 4096);
    let mut frames = c.frames.clone();
    // Another connection's packet, much later, sweeps the idle one.
    let mut later = Conversation::new(40005, 25);
    later.send(false, b"220 mx ESMTP\r\n", 100);
    frames.extend(later.frames);
    let mut analyzer = Analyzer::new(config());
    for (i, frame) in frames.iter().enumerate() {
        let at = if i < c.frames.len() {
            i as u64
        } else {
            1000 + i as u64
        };
        analyzer.packet(&Packet {
            timestamp: UNIX_EPOCH + Duration::from_secs(at),
            link_type: 1,
            data: frame,
            offset: 0,
        });
    }
    let records = analyzer.take_records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, Outcome::Timeout);
    assert_eq!(analyzer.stats().expired_flows, 1);
}

#[test]
fn frames_that_are_not_tcp_are_counted() {
    let mut analyzer = Analyzer::new(config());
    for (link_type, data) in [
        (9999, &[0u8; 40][..]),
        (1, &[0u8; 10][..]),
        (101, &[0x45, 0, 0][..]),
        (0, &[0xff, 0, 0, 0][..]),
    ] {
        analyzer.packet(&Packet {
            timestamp: UNIX_EPOCH,
            link_type,
            data,
            offset: 0,
        });
    }
    let stats = analyzer.stats();
    assert_eq!(stats.packets, 4);
    assert_eq!(stats.unknown_link_type, 1);
    assert_eq!(stats.malformed + stats.not_tcp, 3);
    assert_eq!(analyzer.open_flows(), 0);
}

#[test]
fn the_connection_table_is_bounded() {
    let mut frames = Vec::new();
    for port in 0..50 {
        frames.extend(Conversation::new(20000 + port, 993).frames);
    }
    let mut small = config();
    small.max_flows = 10;
    let (_, stats) = analyze(&frames, small);
    assert_eq!(stats.flows, 10);
    assert_eq!(stats.flows_not_followed, 40);
}

#[test]
fn ports_reused_without_a_captured_close_start_a_new_connection() {
    let mut first = Conversation::new(40006, 993);
    first.send(true, TLS10_HELLO, 4096);
    first.send(false, ALERT, 4096);
    let mut second = Conversation::new(40006, 993);
    second.client_seq = 900_000;
    second.frames.clear();
    second.frame(true, &[], true);
    second.client_seq += 1;
    second.frame(false, &[], true);
    second.server_seq += 1;
    second.send(true, TLS13_HELLO, 4096);
    second.send(false, TLS13_REPLY, 4096);
    let mut frames = first.frames.clone();
    frames.extend(second.frames);
    let (records, stats) = analyze(&frames, config());
    assert_eq!(stats.flows, 2);
    let versions: Vec<_> = records.iter().map(|r| r.tls_version).collect();
    assert_eq!(versions, [None, Some(wire::TlsVersion::Tls13)]);
}

#[test]
fn connections_holding_too_much_together_are_given_up() {
    let mut frames = Vec::new();
    for port in 0..20 {
        let mut c = Conversation::new(30000 + port, 993);
        // Half a hello each: held while waiting for the rest.
        c.send(true, &TLS10_HELLO[..TLS10_HELLO.len() / 2], 4096);
        frames.extend(c.frames);
    }
    let mut small = config();
    small.max_buffered_bytes = 1024;
    let (_, stats) = analyze(&frames, small);
    assert!(stats.flows_over_budget > 0, "{stats:?}");
}

#[test]
fn pseudo_random_captures_end_in_an_error_or_records_never_a_panic() {
    // What the `capture_file` fuzz target does, over fixed pseudo-random inputs behind each
    // kind of header, and over a real conversation with bytes flipped.
    let mut random = crate::pseudo_random::XorShift(0x9e37_79b9_7f4a_7c15);
    let mut next = move || random.next();
    let mut c = Conversation::new(40010, 143);
    c.send(false, b"* OK ready\r\n", 5);
    c.send(true, b"a STARTTLS\r\n", 5);
    c.send(false, b"a OK go\r\n", 5);
    c.send(true, TLS13_HELLO, 50);
    c.send(false, TLS13_REPLY, 50);
    for round in 0..300 {
        let mut frames = c.frames.clone();
        for _ in 0..(next() % 20) {
            let frame = (next() % frames.len() as u64) as usize;
            let byte = (next() % frames[frame].len() as u64) as usize;
            frames[frame][byte] ^= 1 << (next() % 8);
        }
        if round % 3 == 0 {
            let cut = (next() % frames.len() as u64) as usize;
            frames.truncate(cut);
        }
        let (records, _) = analyze(&frames, config());
        assert!(records.len() <= 2, "round {round}");
        let noise: Vec<Vec<u8>> = (0..20)
            .map(|_| (0..(next() % 200)).map(|_| next() as u8).collect())
            .collect();
        analyze(&noise, config());
    }
}
