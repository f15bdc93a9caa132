//! `mailtls import pcap FILE...`: every mail TLS handshake and plaintext login in packet
//! captures, as session records of source `capture`. Exit 0 when every file was read, 1 when
//! a file was unreadable or corrupt (what came before the fault is kept), 2 on usage or store
//! errors.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use capture::{AnalysisConfig, Analyzer, CaptureReader, MailProtocol};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use store::{ClientIdentity, SessionRecord, SessionStore, Source, SqliteStore, Verdict};

use crate::command::terminal::shown;
use crate::config;

/// Records written per store transaction.
const BATCH: usize = 1000;
/// Frames read between progress bar updates.
const PROGRESS_EVERY: u64 = 4096;

/// Options of `mailtls import pcap`.
#[derive(Debug, Args)]
pub struct PcapArgs {
    /// pcap or pcapng files, read in order as one capture (a rotated capture's connections
    /// continue across files).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The session store (SQLite file) to write; created when missing.
    #[arg(long, value_name = "PATH", conflicts_with = "config")]
    store: Option<PathBuf>,
    /// Write to the store of this gateway config.
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Another port where clients start with TLS, as PORT=PROTOCOL (imap, pop3, smtp);
    /// 993=imap, 995=pop3 and 465=smtp are always known. Repeat for more.
    #[arg(long = "tls-port", value_name = "PORT=PROTOCOL", value_parser = parse_tls_port)]
    tls_ports: Vec<(u16, MailProtocol)>,
}

fn parse_tls_port(text: &str) -> Result<(u16, MailProtocol), String> {
    let (port, protocol) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: write PORT=PROTOCOL, e.g. 10993=imap"))?;
    let port = port
        .parse()
        .map_err(|_| format!("{port:?} is not a port number"))?;
    Ok((port, protocol.parse()?))
}

/// Runs `mailtls import pcap`.
pub fn run(args: PcapArgs) -> ExitCode {
    match run_inner(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mailtls import pcap: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run_inner(args: PcapArgs) -> Result<ExitCode> {
    let mut store = match (&args.store, &args.config) {
        (Some(path), None) => SqliteStore::open(path)
            .with_context(|| format!("opening the store {}", path.display()))?,
        (None, Some(file)) => {
            let config = config::load(file).map_err(|problems| {
                let listed: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                anyhow::anyhow!("{}: {}", file.display(), listed.join("; "))
            })?;
            SqliteStore::open_with_access(&config.store_path, config.store_access())
                .with_context(|| format!("opening the store {}", config.store_path.display()))?
        }
        _ => bail!("give the store with --store PATH or --config FILE"),
    };
    let mut analysis = AnalysisConfig::new(Source::Capture, "capture");
    analysis
        .implicit_tls_ports
        .extend(args.tls_ports.iter().copied());
    let mut analyzer = Analyzer::new(analysis);

    let total: u64 = args
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {msg}",
            )
            .expect("the template is valid"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };

    let started = Instant::now();
    let mut writer = RecordWriter::new(&mut store);
    let mut faults = 0;
    let mut bytes_before = 0;
    for file in &args.files {
        let read = read_capture(file, &mut analyzer, &mut writer, &progress, bytes_before);
        match read {
            Ok(bytes) => bytes_before += bytes,
            Err(ReadFault::Capture(e)) => {
                faults += 1;
                progress.suspend(|| eprintln!("mailtls import pcap: {}: {e:#}", file.display()));
                bytes_before += std::fs::metadata(file).map_or(0, |m| m.len());
            }
            Err(ReadFault::Store(e)) => {
                return Err(e.context(format!(
                    "{} records were stored before the store failed",
                    writer.stored
                )))
            }
        }
    }
    analyzer.finish();
    writer
        .add(analyzer.take_records(), true)
        .map_err(|e| e.context(format!("{} records were stored before", writer.stored)))?;
    progress.finish_and_clear();

    let seconds = started.elapsed().as_secs_f64().max(1e-6);
    let identities = std::mem::take(&mut writer.identities);
    let stored = writer.stored;
    let verdicts = verdicts_of(&store, &identities)?;
    let stats = analyzer.stats();
    println!(
        "{} packets, {} connections ({} joined mid-stream), {} handshakes ({} refused), {} plaintext logins",
        stats.packets,
        stats.flows,
        stats.mid_stream_flows,
        stats.handshakes,
        stats.refused_handshakes,
        stats.plaintext_logins
    );
    println!("{stored} records stored, {} clients", identities.len());
    for (verdict, count) in &verdicts {
        println!("  {verdict}: {count}");
    }
    if stats.tls_on_other_ports > 0 {
        println!(
            "{} TLS connections on ports not known to carry mail (add --tls-port PORT=PROTOCOL)",
            stats.tls_on_other_ports
        );
    }
    let skipped = stats.not_tcp + stats.unknown_link_type + stats.malformed + stats.fragments;
    if skipped > 0 {
        println!(
            "{skipped} frames skipped: {} not TCP, {} unknown link type, {} malformed, {} IP fragments",
            stats.not_tcp, stats.unknown_link_type, stats.malformed, stats.fragments
        );
    }
    if stats.dropped_segments > 0 || stats.flows_not_followed > 0 {
        println!(
            "{} segments dropped beyond the per-connection bound, {} connections not followed (table full)",
            stats.dropped_segments, stats.flows_not_followed
        );
    }
    println!(
        "{:.1} MB/s ({} bytes in {:.2} s)",
        bytes_before as f64 / seconds / 1e6,
        bytes_before,
        seconds
    );
    Ok(if faults > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Why reading one file stopped.
enum ReadFault {
    /// The file: its records so far are kept; the next file is read.
    Capture(anyhow::Error),
    /// The store: the import stops.
    Store(anyhow::Error),
}

/// Feeds one file to the analyzer, writing records as they complete; returns the bytes read.
fn read_capture(
    path: &Path,
    analyzer: &mut Analyzer,
    writer: &mut RecordWriter<'_>,
    progress: &ProgressBar,
    bytes_before: u64,
) -> Result<u64, ReadFault> {
    let file = File::open(path)
        .with_context(|| format!("cannot open {}", shown(&path.display().to_string())))
        .map_err(ReadFault::Capture)?;
    let mut reader = CaptureReader::new(file).map_err(|e| ReadFault::Capture(e.into()))?;
    let mut frames = 0u64;
    let mut store_error = None;
    let result = reader.read_packets(|packet| {
        analyzer.packet(packet);
        frames += 1;
        if frames.is_multiple_of(PROGRESS_EVERY) {
            progress.set_position(bytes_before + packet.offset);
        }
        match writer.add(analyzer.take_records(), false) {
            Ok(()) => true,
            Err(e) => {
                store_error = Some(e);
                false
            }
        }
    });
    if let Some(e) = store_error {
        return Err(ReadFault::Store(e));
    }
    let offset = reader.offset();
    progress.set_position(bytes_before + offset);
    result.map_err(|e| ReadFault::Capture(e.into()))?;
    Ok(offset)
}

/// Writes records in batches and remembers the clients they belong to.
struct RecordWriter<'s> {
    store: &'s mut SqliteStore,
    pending: Vec<SessionRecord>,
    stored: u64,
    identities: std::collections::BTreeSet<ClientIdentity>,
}

impl<'s> RecordWriter<'s> {
    fn new(store: &'s mut SqliteStore) -> RecordWriter<'s> {
        RecordWriter {
            store,
            pending: Vec::new(),
            stored: 0,
            identities: Default::default(),
        }
    }

    /// Queues `records`; writes when a batch is full or `flush`.
    fn add(&mut self, records: Vec<SessionRecord>, flush: bool) -> Result<()> {
        for record in &records {
            self.identities.insert(ClientIdentity::of(record));
        }
        self.pending.extend(records);
        if self.pending.len() >= BATCH || (flush && !self.pending.is_empty()) {
            self.store
                .insert_batch(&self.pending)
                .context("writing to the session store")?;
            self.stored += self.pending.len() as u64;
            self.pending.clear();
        }
        Ok(())
    }
}

/// How many of `identities` have each verdict in the store's inventory.
fn verdicts_of(
    store: &SqliteStore,
    identities: &std::collections::BTreeSet<ClientIdentity>,
) -> Result<BTreeMap<Verdict, usize>> {
    let mut counts = BTreeMap::new();
    for client in store.clients().context("reading the inventory")? {
        if identities.contains(&client.identity) {
            *counts.entry(client.verdict).or_insert(0) += 1;
        }
    }
    Ok(counts)
}
