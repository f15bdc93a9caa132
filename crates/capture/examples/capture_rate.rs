//! Reads captures through the whole analysis as `mailtls import pcap` does, without writing a
//! store, and prints frames, handshakes, MB/s and the process's peak RSS: the figures of
//! `bench/capture.sh`.
//!
//! `cargo run --release -p capture --example capture_rate -- FILE [--tls-port PORT]...`

use std::time::Instant;

use capture::{AnalysisConfig, Analyzer, CaptureReader, MailProtocol};
use store::Source;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("a capture file");
    let mut config = AnalysisConfig::new(Source::Capture, "bench");
    while let Some(arg) = args.next() {
        if arg == "--tls-port" {
            let port = args.next().and_then(|p| p.parse().ok()).expect("a port");
            config.implicit_tls_ports.push((port, MailProtocol::Imap));
        }
    }
    let started = Instant::now();
    let file = std::fs::File::open(&path).expect("open the capture");
    let mut reader = CaptureReader::new(file).expect("a capture");
    let mut analyzer = Analyzer::new(config);
    let mut records = 0usize;
    reader
        .read_packets(|packet| {
            analyzer.packet(packet);
            records += analyzer.take_records().len();
            true
        })
        .expect("read the capture");
    analyzer.finish();
    records += analyzer.take_records().len();
    let seconds = started.elapsed().as_secs_f64();
    let bytes = reader.offset();
    let stats = analyzer.stats();
    let peak_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    println!(
        "bytes={bytes} seconds={seconds:.3} mb_per_s={:.1} packets={} handshakes={} records={records} flows={} peak_rss_kib={peak_kib}",
        bytes as f64 / seconds / 1e6,
        stats.packets,
        stats.handshakes,
        stats.flows
    );
}
