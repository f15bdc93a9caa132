//! Retention: a background thread that deletes sessions older than the configured time, with
//! the other rows that grow with traffic (counts of refused connections, digests of imported
//! evidence), in small transactions, while the inventory's rollups keep counting the sessions.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime};

use crate::Store;

/// How often old sessions are looked for: each run finds a day's worth at most, once the
/// first run has caught up.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3_600);

/// A table whose rows grow with traffic and go once older than the retention time; the
/// inventory's rollups are kept whatever their age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetainedTable {
    /// One row per session, by when it started.
    Sessions,
    /// Counts of connections refused before their dialogue, by minute.
    RefusedConnections,
    /// Digests of imported log lines and export rows, by when they were imported.
    ImportedEvidence,
}

impl RetainedTable {
    /// Every retained table, in the order they are pruned.
    pub const ALL: [RetainedTable; 3] = [
        RetainedTable::Sessions,
        RetainedTable::RefusedConnections,
        RetainedTable::ImportedEvidence,
    ];
}

/// How many rows one pruning deleted, by table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Sessions (their clients stay counted in the inventory).
    pub sessions: u64,
    /// Per-minute counts of refused connections.
    pub refusal_counts: u64,
    /// Digests of imported evidence: importing that evidence again would add it anew.
    pub evidence_digests: u64,
}

impl Pruned {
    /// Rows deleted from every table.
    pub fn total(&self) -> u64 {
        self.sessions + self.refusal_counts + self.evidence_digests
    }

    pub(crate) fn count_mut(&mut self, table: RetainedTable) -> &mut u64 {
        match table {
            RetainedTable::Sessions => &mut self.sessions,
            RetainedTable::RefusedConnections => &mut self.refusal_counts,
            RetainedTable::ImportedEvidence => &mut self.evidence_digests,
        }
    }
}

/// The pruning thread; [`stop`](SessionPruner::stop) ends it.
#[derive(Debug)]
pub struct SessionPruner {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl SessionPruner {
    /// Starts pruning `store` (its own connection, apart from the writer's) of sessions older
    /// than `keep`: now, then every hour. Failures are logged and retried at the next run.
    ///
    /// # Panics
    /// If the operating system cannot start a thread.
    pub fn spawn(store: Store, keep: Duration) -> SessionPruner {
        SessionPruner::spawn_every(store, keep, PRUNE_INTERVAL)
    }

    fn spawn_every(mut store: Store, keep: Duration, every: Duration) -> SessionPruner {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("session-pruner".into())
            .spawn(move || loop {
                match store.prune(keep, SystemTime::now()) {
                    Ok(pruned) if pruned.total() == 0 => {}
                    Ok(pruned) => tracing::info!(
                        sessions = pruned.sessions,
                        refusal_counts = pruned.refusal_counts,
                        evidence_digests = pruned.evidence_digests,
                        keep_days = keep.as_secs() / 86_400,
                        "deleted rows older than [store] keep_sessions; the inventory keeps counting their sessions"
                    ),
                    Err(error) => tracing::warn!(
                        %error,
                        "cannot prune old sessions; trying again in an hour"
                    ),
                }
                if !matches!(stopped.recv_timeout(every), Err(RecvTimeoutError::Timeout)) {
                    return;
                }
            })
            .expect("cannot start the session pruner thread");
        SessionPruner { stop, thread }
    }

    /// Ends the thread once the batch in progress is done.
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::fixture::{sample_record, TempDir};
    use crate::{SessionStore, SqliteStore};

    #[test]
    fn the_pruner_deletes_old_sessions_and_keeps_their_client_counted() {
        let dir = TempDir::new("pruner");
        let mut store = SqliteStore::open(&dir.db_path()).unwrap();
        let mut old = sample_record(1);
        old.started_at = SystemTime::now() - Duration::from_secs(401 * 86_400);
        let mut recent = sample_record(2);
        recent.started_at = SystemTime::now() - Duration::from_secs(60);
        store.insert_batch(&[old, recent.clone()]).unwrap();

        let pruner = SessionPruner::spawn_every(
            Store::Sqlite(SqliteStore::open(&dir.db_path()).unwrap()),
            Duration::from_secs(400 * 86_400),
            Duration::from_millis(50),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.count().unwrap() != 1 {
            assert!(Instant::now() < deadline, "the old session was not pruned");
            thread::sleep(Duration::from_millis(20));
        }
        pruner.stop();
        let kept: Vec<u16> = store
            .sessions()
            .unwrap()
            .iter()
            .map(|s| s.client_port)
            .collect();
        assert_eq!(kept, [recent.client_port]);
        let clients = store.clients().unwrap();
        assert_eq!(clients.len(), 1);
        assert_eq!(
            clients[0].sessions, 2,
            "the rollup still counts the pruned session"
        );
    }
}
