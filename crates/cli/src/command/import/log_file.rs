//! Reading log files line by line into a [`LogReader`]: plain or gzip files, standard input,
//! and `--follow` to keep reading a live log as it grows (and across rotation).

use std::cell::Cell;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use clap::Args;
use flate2::read::MultiGzDecoder;
use logs::{LineKind, LogClock, LogReader};
use store::{EvidenceDigest, SessionRecord, Store};
use time::UtcOffset;
use wire::TlsVersion;

use super::{parse_duration, shown_name, ImportProgress, ImportSummary, SummaryArgs};
use crate::command::store::StoreChoice;

/// Longest line read, in bytes: a file without line breaks must not be read into memory
/// whole. A longer line is skipped and counted as not understood.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Records stored per transaction.
const BATCH_RECORDS: usize = 2_000;

/// How often a followed log is looked at again once everything in it was read.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Options of `mailtls import dovecot` and `mailtls import postfix`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log files, plain or gzip-compressed; `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    store: StoreChoice,
    /// Keep reading the last file as it grows, and after it is rotated, until interrupted
    /// (Ctrl-C) or --for has passed.
    #[arg(long)]
    follow: bool,
    /// With --follow: stop after this long, e.g. 30s, 5m, 2h.
    #[arg(long = "for", value_name = "DURATION", requires = "follow", value_parser = parse_duration)]
    follow_for: Option<Duration>,
    /// The year of the first line, for stamps without one (syslog's `Dec  3 05:43:30`).
    /// Default: the latest year that does not put that line after today.
    #[arg(long)]
    year: Option<i32>,
    /// The UTC offset of stamps without a zone, e.g. +01:00 (the server's local time).
    #[arg(long, value_name = "OFFSET", default_value = "+00:00", allow_hyphen_values = true, value_parser = parse_offset)]
    utc_offset: UtcOffset,
    /// The server's lowest TLS version (Dovecot's ssl_min_protocol, Postfix's
    /// smtpd_tls_mandatory_protocols): a client refused for its version offered less.
    #[arg(long, value_name = "VERSION", default_value = "1.2")]
    server_floor: TlsVersion,
    #[command(flatten)]
    summary: SummaryArgs,
}

impl LogArgs {
    /// The clock for these logs' stamps.
    pub fn clock(&self) -> LogClock {
        match self.year {
            Some(year) => LogClock::new(year, self.utc_offset),
            None => LogClock::ending_by(SystemTime::now(), self.utc_offset),
        }
    }

    /// The server's TLS floor.
    pub fn server_floor(&self) -> TlsVersion {
        self.server_floor
    }

    /// Whether the summary is wanted as JSON.
    pub fn json(&self) -> bool {
        self.summary.json
    }
}

fn parse_offset(text: &str) -> Result<UtcOffset, String> {
    let format = time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]");
    UtcOffset::parse(text, &format)
        .map_err(|_| format!("{text:?} is not a UTC offset such as +01:00 or -05:00"))
}

/// Reads every file of `args` into `reader`, storing its records as they come; returns the
/// tally and the store for the summary.
pub fn import(args: &LogArgs, reader: &mut dyn LogReader) -> Result<(ImportSummary, Store)> {
    // Before the store is opened, so that once the store exists Ctrl-C ends the import
    // with its summary rather than killing it.
    let stop = if args.follow {
        Some(stop_on_interrupt()?)
    } else {
        None
    };
    let (mut store, _) = args.store.open_to_add()?;
    let mut summary = ImportSummary::new("lines");
    let deadline = args.follow_for.map(|d| Instant::now() + d);
    let mut session = ReadSession {
        reader,
        store: &mut store,
        summary: &mut summary,
        batch: Vec::new(),
        out: Vec::new(),
    };
    for (i, path) in args.files.iter().enumerate() {
        let follow = (args.follow && i + 1 == args.files.len()).then(|| Follow {
            stop: stop.clone().unwrap_or_default(),
            deadline,
        });
        session
            .read_file(path, follow)
            .with_context(|| format!("reading {}", shown_name(path)))?;
    }
    Ok((summary, store))
}

/// When a followed log is done with.
struct Follow {
    stop: Arc<AtomicBool>,
    deadline: Option<Instant>,
}

impl Follow {
    fn done(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// Sets the returned flag on Ctrl-C (SIGINT), so a followed log ends with its summary.
fn stop_on_interrupt() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal handler")?;
    // The handler is installed before this returns, so an early Ctrl-C is not lost.
    let signal = runtime
        .block_on(async {
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        })
        .context("installing the Ctrl-C handler")?;
    std::thread::spawn(move || {
        let mut signal = signal;
        runtime.block_on(signal.recv());
        flag.store(true, Ordering::Relaxed);
    });
    Ok(stop)
}

struct ReadSession<'a> {
    reader: &'a mut dyn LogReader,
    store: &'a mut Store,
    summary: &'a mut ImportSummary,
    batch: Vec<(EvidenceDigest, SessionRecord)>,
    out: Vec<logs::Evidence>,
}

impl ReadSession<'_> {
    fn read_file(&mut self, path: &Path, follow: Option<Follow>) -> Result<()> {
        let mut input = LogInput::open(path)?;
        if follow.is_some() && (input.gzip || input.identity.is_none()) {
            bail!("--follow reads a plain file, not standard input or a gzip file");
        }
        let progress = ImportProgress::new(input.size);
        progress.set_message(shown_name(path));
        let mut line = Vec::new();
        let mut counted = 0;
        // Bytes read of a rotated file when it was last found at its end: it is read on until
        // a poll brings nothing new, since its daemon writes on to it until it reopens its log.
        let mut rotated_at: Option<u64> = None;
        loop {
            match next_line(&mut *input.lines, &mut line, follow.is_none())? {
                NextLine::Whole => {
                    self.read_line(&line);
                    line.clear();
                    if self.batch.len() >= BATCH_RECORDS {
                        self.flush()?;
                        progress.set_position(input.read.get());
                    }
                }
                NextLine::TooLong => self.summary.count_not_understood(1),
                NextLine::End => {
                    self.flush()?;
                    progress.set_position(input.read.get());
                    let Some(follow) = &follow else { break };
                    if follow.done() {
                        break;
                    }
                    let read = input.read.get();
                    let reopen = match rotated_at {
                        // The rotated file has had a whole poll without a new byte: its last
                        // line is whole, and the file now at the path is read from its start.
                        Some(at) if at == read => {
                            if !line.is_empty() {
                                self.read_line(&line);
                                line.clear();
                                self.flush()?;
                            }
                            true
                        }
                        Some(_) => {
                            rotated_at = Some(read);
                            false
                        }
                        None => match input.change(path) {
                            FileChange::None => false,
                            FileChange::Rotated => {
                                rotated_at = Some(read);
                                false
                            }
                            // Truncated in place (copytruncate): what it held is gone; read it
                            // again from its start.
                            FileChange::Truncated => {
                                line.clear();
                                true
                            }
                        },
                    };
                    if reopen {
                        self.summary.add_bytes(input.read.get() - counted);
                        counted = 0;
                        rotated_at = None;
                        input = LogInput::open(path)?;
                    } else {
                        std::thread::sleep(FOLLOW_POLL);
                    }
                }
            }
        }
        self.summary.add_bytes(input.read.get() - counted);
        Ok(())
    }

    /// Reads one whole line (with its line break, if any) into the batch.
    fn read_line(&mut self, line: &[u8]) {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let kind = self.reader.read_line(text, &mut self.out);
        self.summary.count_read(kind != LineKind::NotUnderstood);
        self.batch
            .extend(self.out.drain(..).map(|e| (e.digest, e.record)));
    }

    fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.summary.store_batch(self.store, &mut self.batch)
    }
}

enum NextLine {
    /// `line` holds a whole line (with its `\n`, if it had one).
    Whole,
    /// The line was longer than [`MAX_LINE_BYTES`]; it was skipped to its end and `line`
    /// emptied.
    TooLong,
    /// Nothing more to read now; an unfinished line stays in `line` when the end is not final.
    End,
}

/// Reads up to the next line break into `line`, at most [`MAX_LINE_BYTES`]. At the end of the
/// input, a last line without a line break is whole only if `final_end` (a followed log may
/// still be writing it).
fn next_line(input: &mut dyn BufRead, line: &mut Vec<u8>, final_end: bool) -> Result<NextLine> {
    let mut skipping = line.len() > MAX_LINE_BYTES;
    loop {
        let available = input.fill_buf().context("reading")?;
        if available.is_empty() {
            return Ok(if skipping {
                line.clear();
                NextLine::TooLong
            } else if final_end && !line.is_empty() {
                NextLine::Whole
            } else {
                NextLine::End
            });
        }
        let (chunk, complete) = match memchr_newline(available) {
            Some(at) => (&available[..=at], true),
            None => (available, false),
        };
        let used = chunk.len();
        if !skipping {
            line.extend_from_slice(chunk);
            if line.len() > MAX_LINE_BYTES {
                skipping = true;
                // Keep a marker length so a line finished on a later call is still skipped.
                line.truncate(MAX_LINE_BYTES + 1);
            }
        }
        input.consume(used);
        if complete {
            return Ok(if skipping {
                line.clear();
                NextLine::TooLong
            } else {
                NextLine::Whole
            });
        }
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// An opened log: its lines, how many bytes of the file were read so far (compressed bytes for
/// gzip), its size when known, and what identifies the file (for following it).
struct LogInput {
    lines: Box<dyn BufRead>,
    read: Rc<Cell<u64>>,
    size: Option<u64>,
    gzip: bool,
    /// Device and inode of a plain file.
    identity: Option<(u64, u64)>,
}

impl LogInput {
    fn open(path: &Path) -> Result<LogInput> {
        let read = Rc::new(Cell::new(0));
        let (raw, size, identity): (Box<dyn Read>, _, _) = if path == Path::new("-") {
            (Box::new(std::io::stdin()), None, None)
        } else {
            let file = File::open(path).context("opening the file")?;
            let meta = file.metadata().context("reading the file's size")?;
            if !meta.is_file() {
                bail!("not a regular file");
            }
            (
                Box::new(file),
                Some(meta.len()),
                Some((meta.dev(), meta.ino())),
            )
        };
        let mut counted = BufReader::with_capacity(
            256 * 1024,
            CountingReader {
                inner: raw,
                read: read.clone(),
            },
        );
        let gzip = counted
            .fill_buf()
            .context("reading")?
            .starts_with(&[0x1f, 0x8b]);
        let lines: Box<dyn BufRead> = if gzip {
            Box::new(BufReader::with_capacity(
                256 * 1024,
                MultiGzDecoder::new(counted),
            ))
        } else {
            Box::new(counted)
        };
        Ok(LogInput {
            lines,
            read,
            size,
            gzip,
            identity: identity.filter(|_| !gzip),
        })
    }

    /// Whether the file at `path` is still the one being read, another one (the log was
    /// rotated), or shorter than what was read of it (truncated in place).
    fn change(&self, path: &Path) -> FileChange {
        let Ok(meta) = std::fs::metadata(path) else {
            // Rotated away and not yet created again: keep reading the old one.
            return FileChange::None;
        };
        if Some((meta.dev(), meta.ino())) != self.identity {
            FileChange::Rotated
        } else if meta.len() < self.read.get() {
            FileChange::Truncated
        } else {
            FileChange::None
        }
    }
}

/// What became of a followed log's file since it was opened.
enum FileChange {
    None,
    Rotated,
    Truncated,
}

/// Counts the bytes read through it.
pub(super) struct CountingReader {
    pub(super) inner: Box<dyn Read>,
    pub(super) read: Rc<Cell<u64>>,
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(input: &[u8], final_end: bool) -> Vec<String> {
        let mut reader = std::io::BufReader::with_capacity(7, input);
        let mut line = Vec::new();
        let mut seen = Vec::new();
        loop {
            match next_line(&mut reader, &mut line, final_end).unwrap() {
                NextLine::Whole => {
                    seen.push(String::from_utf8_lossy(&line).into_owned());
                    line.clear();
                }
                NextLine::TooLong => seen.push("(too long)".into()),
                NextLine::End => return seen,
            }
        }
    }

    #[test]
    fn lines_are_split_across_buffer_refills_and_overlong_ones_skipped() {
        let mut input = b"first line\nsecond\n".to_vec();
        input.extend(vec![b'x'; MAX_LINE_BYTES + 10]);
        input.extend(b"\nlast");
        assert_eq!(
            lines_of(&input, true),
            ["first line\n", "second\n", "(too long)", "last"]
        );
        // A followed log's unfinished last line waits for the rest.
        assert_eq!(lines_of(b"a\nb", false), ["a\n"]);
    }

    #[test]
    fn offsets() {
        assert_eq!(
            parse_offset("+01:00").unwrap(),
            UtcOffset::from_hms(1, 0, 0).unwrap()
        );
        assert_eq!(
            parse_offset("-05:30").unwrap(),
            UtcOffset::from_hms(-5, -30, 0).unwrap()
        );
        assert!(parse_offset("CET").is_err());
    }
}
