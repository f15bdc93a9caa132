//! What the discovery commands (`mailtls import pcap`, `mailtls sensor`) share: where records
//! go (`--store PATH|URL` or `--config`, as every command names a store), writing them in
//! batches, and the summary of what was found.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use anyhow::{Context, Result};
use capture::{CaptureStats, MailProtocol};
use clap::Args;
use store::{ClientIdentity, SessionRecord, SessionStore, Store, Verdict};

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

/// Writes records in batches and remembers the clients they belong to.
pub struct RecordWriter<'s> {
    store: &'s mut Store,
    pending: Vec<SessionRecord>,
    /// Records committed so far.
    pub stored: u64,
    identities: BTreeSet<ClientIdentity>,
}

impl<'s> RecordWriter<'s> {
    /// A writer into `store`.
    pub fn new(store: &'s mut Store) -> RecordWriter<'s> {
        RecordWriter {
            store,
            pending: Vec::new(),
            stored: 0,
            identities: BTreeSet::new(),
        }
    }

    /// Queues `records`; writes when a batch is full, or when `flush` and any wait.
    pub fn add(&mut self, records: Vec<SessionRecord>, flush: bool) -> Result<()> {
        for record in &records {
            self.identities.insert(ClientIdentity::of(record));
        }
        self.pending.extend(records);
        if self.pending.len() >= BATCH || (flush && !self.pending.is_empty()) {
            self.store.insert_batch(&self.pending).with_context(|| {
                format!(
                    "writing to the session store ({} records were stored before)",
                    self.stored
                )
            })?;
            self.stored += self.pending.len() as u64;
            self.pending.clear();
        }
        Ok(())
    }

    /// Prints what was found: counts from `stats`, the clients by verdict, and the rate at
    /// which `bytes` were read in `seconds`.
    pub fn print_summary(&mut self, stats: &CaptureStats, bytes: u64, seconds: f64) -> Result<()> {
        let mut verdicts: BTreeMap<Verdict, usize> = BTreeMap::new();
        for client in self.store.clients().context("reading the inventory")? {
            if self.identities.contains(&client.identity) {
                *verdicts.entry(client.verdict).or_insert(0) += 1;
            }
        }
        println!(
            "{} packets, {} connections ({} joined mid-stream), {} handshakes ({} refused), {} plaintext logins",
            stats.packets,
            stats.flows,
            stats.mid_stream_flows,
            stats.handshakes,
            stats.refused_handshakes,
            stats.plaintext_logins
        );
        println!(
            "{} records stored, {} clients",
            self.stored,
            self.identities.len()
        );
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
        if stats.dropped_segments + stats.flows_not_followed + stats.flows_over_budget > 0 {
            println!(
                "{} segments dropped beyond the per-connection bound, {} connections not followed (table full), {} given up (memory bound)",
                stats.dropped_segments, stats.flows_not_followed, stats.flows_over_budget
            );
        }
        let seconds = seconds.max(1e-6);
        println!(
            "{:.1} MB/s ({bytes} bytes in {seconds:.2} s)",
            bytes as f64 / seconds / 1e6
        );
        Ok(())
    }
}
