//! What the discovery commands (`mailtls import pcap`, `mailtls sensor`) share: where records
//! go (`--store PATH|URL` or `--config`, as every command names a store), writing them in
//! batches, and the summary of what was found.

use std::net::SocketAddr;
use std::time::UNIX_EPOCH;

use anyhow::Result;
use capture::{CaptureStats, MailProtocol};
use clap::Args;
use store::{EvidenceDigest, EvidenceDigester, SessionRecord, Store};

use crate::command::import::ImportSummary;
use crate::command::store::StoreChoice;
use crate::config;

/// Records written per store transaction.
const BATCH: usize = 1000;

/// Where the records go, and the ports that carry implicit TLS.
#[derive(Debug, Args)]
pub struct DiscoveryTarget {
    /// The store to write (a SQLite file is created when missing); with `--config`, metrics
    /// are also served when the config has `[metrics]`.
    #[command(flatten)]
    store: StoreChoice,
    /// Another port where clients start with TLS, as PORT=PROTOCOL (imap, pop3, smtp);
    /// 993=imap, 995=pop3 and 465=smtp are always known. Repeat for more.
    #[arg(long = "tls-port", value_name = "PORT=PROTOCOL", value_parser = parse_tls_port)]
    pub tls_ports: Vec<(u16, MailProtocol)>,
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

impl DiscoveryTarget {
    /// Opens the store, and says where metrics are to be served (only a config says).
    pub fn open(&self) -> Result<(Store, Option<SocketAddr>)> {
        let (store, _) = self.store.open_to_add()?;
        let metrics = match self.store.config_file() {
            Some(file) => config::load_or_explain(file)?.metrics_bind,
            None => None,
        };
        Ok((store, metrics))
    }
}

/// Writes a capture's records in batches, tallied for the summary every import prints.
pub struct RecordWriter<'s> {
    store: &'s mut Store,
    pending: Vec<SessionRecord>,
    /// For capture files: each record's digest, so importing a file again adds nothing. A
    /// live sensor never sees a packet twice and stores its records as they are.
    digests: Option<EvidenceDigester>,
    summary: ImportSummary,
}

impl<'s> RecordWriter<'s> {
    /// A writer of records read from capture files, each stored once however often the
    /// files are imported.
    pub fn for_files(store: &'s mut Store) -> RecordWriter<'s> {
        RecordWriter::new(store, Some(EvidenceDigester::new("capture")))
    }

    /// A writer of the records of a live capture.
    pub fn for_live_capture(store: &'s mut Store) -> RecordWriter<'s> {
        RecordWriter::new(store, None)
    }

    fn new(store: &'s mut Store, digests: Option<EvidenceDigester>) -> RecordWriter<'s> {
        RecordWriter {
            store,
            pending: Vec::new(),
            digests,
            summary: ImportSummary::new("packets"),
        }
    }

    /// Queues `records`; writes when a batch is full, or when `flush` and any wait.
    pub fn add(&mut self, records: Vec<SessionRecord>, flush: bool) -> Result<()> {
        self.pending.extend(records);
        let write = self.pending.len() >= BATCH || (flush && !self.pending.is_empty());
        if !write {
            return Ok(());
        }
        match &mut self.digests {
            Some(digests) => {
                let mut batch: Vec<_> = self
                    .pending
                    .drain(..)
                    .map(|record| (capture_digest(digests, &record), record))
                    .collect();
                self.summary.store_batch(self.store, &mut batch)
            }
            None => self.summary.store_records(self.store, &mut self.pending),
        }
    }

    /// Adds `n` to a count named `what` in the summary.
    pub fn note(&mut self, what: &str, n: u64) {
        self.summary.note(what, n);
    }

    /// Prints the summary (as text or JSON): what `stats` counted, the records stored and
    /// their clients by verdict, and the rate at which `bytes` were read.
    pub fn print_summary(&mut self, stats: &CaptureStats, bytes: u64, json: bool) -> Result<()> {
        let not_understood = stats.unknown_link_type + stats.malformed;
        self.summary
            .count_understood(stats.packets - not_understood);
        self.summary.count_not_understood(not_understood);
        self.summary.add_bytes(bytes);
        for (what, n, always) in [
            ("connections", stats.flows, true),
            (
                "connections joined mid-stream",
                stats.mid_stream_flows,
                true,
            ),
            ("handshakes", stats.handshakes, true),
            ("handshakes refused", stats.refused_handshakes, true),
            ("plaintext logins", stats.plaintext_logins, true),
            ("frames not TCP", stats.not_tcp, false),
            ("IP fragments skipped", stats.fragments, false),
            (
                "TLS connections on ports not known to carry mail (add --tls-port PORT=PROTOCOL)",
                stats.tls_on_other_ports,
                false,
            ),
            (
                "segments dropped beyond the per-connection bound",
                stats.dropped_segments,
                false,
            ),
            (
                "connections not followed (table full)",
                stats.flows_not_followed,
                false,
            ),
            (
                "connections given up (memory bound)",
                stats.flows_over_budget,
                false,
            ),
        ] {
            if always || n > 0 {
                self.summary.note(what, n);
            }
        }
        self.summary.print(self.store, json)
    }
}

/// The digest of a capture's record: a connection is one client address and port talking to
/// one server at one moment, so the same connection read again (the same file, or a copy
/// captured elsewhere on its path) has the same digest.
fn capture_digest(digests: &mut EvidenceDigester, record: &SessionRecord) -> EvidenceDigest {
    let started = record
        .started_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros());
    digests.digest(
        record.started_at,
        [
            record.client_addr.to_string().as_str(),
            record.client_port.to_string().as_str(),
            record.upstream.as_str(),
            started.to_string().as_str(),
            record.protocol.as_str(),
        ],
    )
}
