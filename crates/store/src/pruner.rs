//! Retention: a background thread that deletes sessions older than the configured time, in
//! small transactions, while the inventory's rollups keep counting them.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime};

use crate::Store;

/// How often old sessions are looked for: each run finds a day's worth at most, once the
/// first run has caught up.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3_600);

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
                    Ok(0) => {}
                    Ok(pruned) => tracing::info!(
                        pruned,
                        keep_days = keep.as_secs() / 86_400,
                        "deleted sessions older than [store] keep_sessions; the inventory keeps counting them"
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
