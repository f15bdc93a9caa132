//! `mailtls import pcap FILE...`: every mail TLS handshake and plaintext login in packet
//! captures, as session records of source `capture`. Exit 0 when every file was read, 1 when
//! a file was unreadable or corrupt (what came before the fault is kept), 2 on usage or store
//! errors.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use capture::{AnalysisConfig, Analyzer, CaptureReader};
use clap::Args;
use store::Source;

use super::{ImportProgress, SummaryArgs};
use crate::command::discovery::{DiscoveryTarget, RecordWriter};
use crate::command::terminal::shown;

/// Frames read between progress bar updates.
const PROGRESS_EVERY: u64 = 4096;

/// Options of `mailtls import pcap`.
#[derive(Debug, Args)]
pub struct PcapArgs {
    /// pcap or pcapng files, read in order as one capture (a rotated capture's connections
    /// continue across files).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    target: DiscoveryTarget,
    #[command(flatten)]
    summary: SummaryArgs,
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
    let (mut store, _) = args.target.open()?;
    let mut analysis = AnalysisConfig::new(Source::Capture, "capture");
    analysis
        .implicit_tls_ports
        .extend(args.target.tls_ports.iter().copied());
    let mut analyzer = Analyzer::new(analysis);

    let total: u64 = args
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let progress = ImportProgress::new(Some(total));

    let mut writer = RecordWriter::for_files(&mut store);
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
            Err(ReadFault::Store(e)) => return Err(e),
        }
    }
    analyzer.finish();
    writer.add(analyzer.take_records(), true)?;
    drop(progress);
    writer.print_summary(analyzer.stats(), bytes_before, args.summary.json)?;
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
    progress: &ImportProgress,
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
