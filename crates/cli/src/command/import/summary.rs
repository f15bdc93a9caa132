//! What every import reports: a progress bar while it runs on a terminal, and a summary at
//! the end (what was read, records stored, clients found by verdict, what was not
//! understood, throughput).

use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use store::{ClientIdentity, EvidenceDigest, SessionRecord, SessionStore, Store, Verdict};

/// The running tally of one import, stored batch by batch.
#[derive(Debug)]
pub struct ImportSummary {
    /// What is counted as read: `lines`, `rows`, `packets`.
    unit: &'static str,
    started: Instant,
    read: u64,
    bytes: u64,
    not_understood: u64,
    records: u64,
    new_records: u64,
    older_than_kept: u64,
    /// Source-specific counts worth telling, e.g. connections cut off at the end of a log.
    notes: BTreeMap<String, u64>,
    /// The clients of the records stored, by identity, up to [`MAX_TALLIED_CLIENTS`].
    clients: HashSet<ClientIdentity>,
    /// Whether records of further clients came after the tally was full.
    untallied_clients: bool,
}

/// Clients an import or the sensor tallies by verdict for its summary, at most: about 200
/// bytes each.
const MAX_TALLIED_CLIENTS: usize = 100_000;

/// The summary as printed.
#[derive(Debug, Serialize)]
struct SummaryView<'a> {
    unit: &'a str,
    read: u64,
    bytes: u64,
    seconds: f64,
    records: u64,
    new_records: u64,
    already_imported: u64,
    /// Records older than what the store's retention keeps, not stored.
    older_than_kept: u64,
    not_understood: u64,
    /// Clients the records belong to, by their verdict in the inventory after the import.
    clients: BTreeMap<&'static str, u64>,
    notes: &'a BTreeMap<String, u64>,
}

impl ImportSummary {
    /// An empty tally counting `unit` (`lines`, `rows`, `packets`), started now.
    pub fn new(unit: &'static str) -> ImportSummary {
        ImportSummary {
            unit,
            started: Instant::now(),
            read: 0,
            bytes: 0,
            not_understood: 0,
            records: 0,
            new_records: 0,
            older_than_kept: 0,
            notes: BTreeMap::new(),
            clients: HashSet::new(),
            untallied_clients: false,
        }
    }

    /// Counts one unit read, understood or not.
    pub fn count_read(&mut self, understood: bool) {
        self.read += 1;
        self.not_understood += u64::from(!understood);
    }

    /// Counts `n` units read that were not understood.
    pub fn count_not_understood(&mut self, n: u64) {
        self.read += n;
        self.not_understood += n;
    }

    /// Counts `n` units read and understood.
    pub fn count_understood(&mut self, n: u64) {
        self.read += n;
    }

    /// Adds input bytes read.
    pub fn add_bytes(&mut self, n: u64) {
        self.bytes += n;
    }

    /// Adds `n` to a source-specific count named `what`.
    pub fn note(&mut self, what: &str, n: u64) {
        *self.notes.entry(what.to_string()).or_default() += n;
    }

    /// Stores the records of `batch` not imported before (see
    /// [`Store::insert_imported`]) and empties it.
    pub fn store_batch(
        &mut self,
        store: &mut Store,
        batch: &mut Vec<(EvidenceDigest, SessionRecord)>,
    ) -> Result<()> {
        let imported = store
            .insert_imported(batch, SystemTime::now())
            .with_context(|| self.store_error())?;
        self.new_records += imported.stored.len() as u64;
        self.older_than_kept += imported.older_than_kept as u64;
        self.count_records(batch.iter().map(|(_, record)| record));
        batch.clear();
        Ok(())
    }

    /// Stores `records`, which no digest tells apart (a live capture's), and empties it.
    pub fn store_records(
        &mut self,
        store: &mut Store,
        records: &mut Vec<SessionRecord>,
    ) -> Result<()> {
        store
            .insert_batch(records)
            .with_context(|| self.store_error())?;
        self.new_records += records.len() as u64;
        self.count_records(records.iter());
        records.clear();
        Ok(())
    }

    fn count_records<'r>(&mut self, records: impl Iterator<Item = &'r SessionRecord>) {
        for record in records {
            self.records += 1;
            // Bounded: a sensor runs for months and sees new addresses all the while.
            let identity = ClientIdentity::of(record);
            if self.clients.len() < MAX_TALLIED_CLIENTS || self.clients.contains(&identity) {
                self.clients.insert(identity);
            } else {
                self.untallied_clients = true;
            }
        }
    }

    fn store_error(&self) -> String {
        format!(
            "writing to the session store ({} records were stored before)",
            self.new_records
        )
    }

    /// Prints the summary to standard output, as text or JSON; the clients' verdicts are
    /// read from `store`'s inventory.
    pub fn print(&self, store: &mut Store, json: bool) -> Result<()> {
        let mut clients: BTreeMap<&'static str, u64> =
            Verdict::ALL.iter().map(|v| (v.as_str(), 0)).collect();
        for client in store.clients().context("reading the inventory")? {
            if self.clients.contains(&client.identity) {
                *clients.entry(client.verdict.as_str()).or_default() += 1;
            }
        }
        let mut notes = self.notes.clone();
        if self.untallied_clients {
            notes.insert(
                "clients tallied by verdict at most (more were seen; `mailtls clients` lists all)"
                    .to_string(),
                MAX_TALLIED_CLIENTS as u64,
            );
        }
        let seconds = self.started.elapsed().as_secs_f64();
        let view = SummaryView {
            unit: self.unit,
            read: self.read,
            bytes: self.bytes,
            seconds,
            records: self.records,
            new_records: self.new_records,
            already_imported: self.records - self.new_records - self.older_than_kept,
            older_than_kept: self.older_than_kept,
            not_understood: self.not_understood,
            clients,
            notes: &notes,
        };
        if json {
            println!("{}", serde_json::to_string_pretty(&view)?);
        } else {
            print!("{}", text(&view));
        }
        Ok(())
    }
}

fn text(view: &SummaryView<'_>) -> String {
    let per_second = |n: f64| n / view.seconds.max(1e-6);
    let mut out = format!(
        "{} {} read ({:.1} MB) in {:.1} s: {:.1} MB/s, {:.0} {}/s\n",
        view.read,
        view.unit,
        view.bytes as f64 / 1e6,
        view.seconds,
        per_second(view.bytes as f64) / 1e6,
        per_second(view.read as f64),
        view.unit
    );
    out += &format!(
        "{} records: {} new, {} already imported",
        view.records, view.new_records, view.already_imported
    );
    if view.older_than_kept > 0 {
        out += &format!(
            ", {} older than the store keeps (not stored)",
            view.older_than_kept
        );
    }
    out += "\n";
    let verdicts: Vec<String> = Verdict::ALL
        .iter()
        .map(|v| format!("{} {}", view.clients[v.as_str()], v.as_str()))
        .collect();
    out += &format!("clients: {}\n", verdicts.join(", "));
    out += &format!("{} {} not understood\n", view.not_understood, view.unit);
    for (what, n) in view.notes {
        out += &format!("{n} {what}\n");
    }
    out
}

/// A bar of bytes read on a terminal, for long imports; hidden when standard error is not a
/// terminal (a pipe or a test).
pub struct ImportProgress {
    bar: ProgressBar,
}

impl ImportProgress {
    /// A bar for `total` bytes (a spinner when the size is unknown, e.g. standard input).
    pub fn new(total: Option<u64>) -> ImportProgress {
        if !std::io::stderr().is_terminal() {
            return ImportProgress {
                bar: ProgressBar::hidden(),
            };
        }
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        let template = if total.is_some() {
            "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta} {wide_msg}"
        } else {
            "{spinner} {bytes} {bytes_per_sec} {wide_msg}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        ImportProgress { bar }
    }

    /// Moves the bar to `bytes` read.
    pub fn set_position(&self, bytes: u64) {
        self.bar.set_position(bytes);
    }

    /// Runs `show` (which writes to standard error) with the bar out of its way.
    pub fn suspend<R>(&self, show: impl FnOnce() -> R) -> R {
        self.bar.suspend(show)
    }

    /// Shows `message` beside the bar, e.g. the file being read.
    pub fn set_message(&self, message: String) {
        self.bar.set_message(message);
    }
}

impl Drop for ImportProgress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_summary_names_every_count() {
        let mut notes = BTreeMap::new();
        notes.insert("connections cut off at the end".to_string(), 2);
        let view = SummaryView {
            unit: "lines",
            read: 1000,
            bytes: 2_000_000,
            seconds: 2.0,
            records: 30,
            new_records: 10,
            already_imported: 20,
            older_than_kept: 0,
            not_understood: 4,
            clients: Verdict::ALL.iter().map(|v| (v.as_str(), 1)).collect(),
            notes: &notes,
        };
        assert_eq!(
            text(&view),
            "1000 lines read (2.0 MB) in 2.0 s: 1.0 MB/s, 500 lines/s
30 records: 10 new, 20 already imported
clients: 1 breaks, 1 at_risk, 1 no_tls, 1 unknown, 1 ok
4 lines not understood
2 connections cut off at the end
"
        );
    }
}
