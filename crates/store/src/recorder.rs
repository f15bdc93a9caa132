//! The gateway's hot-path handle: hands records to one writer thread and never waits for SQLite.

use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::Duration;

use crate::{SessionRecord, SessionStore};

/// Attempts per batch before its records are given up; a failed attempt is rolled back, so a
/// retry never stores a record twice.
const WRITE_ATTEMPTS: u32 = 3;
/// Pause before the second attempt; doubled for the third. Lock waits are already absorbed by
/// SQLite's busy timeout, so this only covers brief I/O trouble.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Upper bound on records per transaction, so a backlog is written in bounded steps and a flush
/// waits behind at most one of them.
const MAX_BATCH: usize = 1_000;

enum Message {
    // Boxed so the channel's slots stay small next to the control messages.
    Record(Box<SessionRecord>),
    Control(Control),
}

enum Control {
    /// Acknowledged once everything queued before it is written.
    Flush(Sender<()>),
    /// Write everything queued before it, close the store, then end the thread. The sender is
    /// dropped rather than used: its disconnection is the acknowledgement.
    Shutdown(Sender<()>),
}

/// A cheap, cloneable handle that queues session records for a background writer thread.
///
/// The queue is unbounded on purpose: a record is about a kilobyte and arrives once per session,
/// so even a long stall of the disk costs little memory, whereas a dropped record is a legacy
/// client missing from the inventory. [`record`](SessionRecorder::record) therefore never blocks
/// and never drops while the writer runs.
///
/// The writer drains whatever is queued and writes it as one transaction (at most 1,000 records),
/// retrying a failed batch a few times before logging it as lost. It ends when
/// [`shutdown`](SessionRecorder::shutdown) is called or every handle is dropped; call `shutdown`
/// before the process exits, since a detached thread is killed with it.
#[derive(Debug, Clone)]
pub struct SessionRecorder {
    queue: Sender<Message>,
}

impl SessionRecorder {
    /// Starts the writer thread, which owns `store` from now on.
    ///
    /// # Panics
    /// If the operating system cannot start a thread.
    pub fn spawn(store: Box<dyn SessionStore>) -> SessionRecorder {
        let (queue, inbox) = mpsc::channel();
        thread::Builder::new()
            .name("session-writer".into())
            .spawn(move || write_until_shutdown(store, inbox))
            .expect("cannot start the session writer thread");
        SessionRecorder { queue }
    }

    /// Queues `record` for writing; returns at once.
    ///
    /// After [`shutdown`](SessionRecorder::shutdown) the record cannot be stored; it is logged as
    /// lost (without the user name) instead.
    pub fn record(&self, record: SessionRecord) {
        if let Err(mpsc::SendError(Message::Record(lost))) =
            self.queue.send(Message::Record(Box::new(record)))
        {
            tracing::warn!(
                listener = %lost.listener,
                client_addr = %lost.client_addr,
                outcome = %lost.outcome,
                "session record dropped: the session writer has already shut down"
            );
        }
    }

    /// Blocks until every record queued before this call has been written (or given up after
    /// retries). Meant for tests and orderly shutdown, not for the hot path.
    pub fn flush(&self) {
        let (done, wait) = mpsc::channel();
        if self
            .queue
            .send(Message::Control(Control::Flush(done)))
            .is_ok()
        {
            // An error here means the writer ended, which also means nothing is pending.
            let _ = wait.recv();
        }
    }

    /// Writes everything queued so far, closes the store and stops the writer thread, then
    /// returns. Records sent afterwards through other clones of this handle are logged as lost.
    pub fn shutdown(self) {
        let (done, wait) = mpsc::channel::<()>();
        if self
            .queue
            .send(Message::Control(Control::Shutdown(done)))
            .is_ok()
        {
            // Returns when the writer drops `done`: after the store is closed, or if it panicked.
            let _ = wait.recv();
        }
    }
}

/// The writer thread's loop.
fn write_until_shutdown(mut store: Box<dyn SessionStore>, inbox: Receiver<Message>) {
    let mut batch = Vec::new();
    // Ends by itself once every handle is dropped and the queue is empty.
    while let Ok(first) = inbox.recv() {
        let mut control = match first {
            Message::Record(record) => {
                batch.push(*record);
                None
            }
            Message::Control(control) => Some(control),
        };
        // A control message ends the batch so that it is acknowledged only after what preceded it.
        while control.is_none() && batch.len() < MAX_BATCH {
            match inbox.try_recv() {
                Ok(Message::Record(record)) => batch.push(*record),
                Ok(Message::Control(next)) => control = Some(next),
                Err(_) => break,
            }
        }
        write_batch(store.as_mut(), &mut batch);
        match control {
            Some(Control::Flush(done)) => {
                let _ = done.send(());
            }
            Some(Control::Shutdown(done)) => {
                drop(store);
                drop(done);
                return;
            }
            None => {}
        }
    }
}

/// Writes and empties `batch`, retrying a failure; a batch that fails every attempt is logged
/// and discarded so one bad write cannot wedge the queue.
fn write_batch(store: &mut dyn SessionStore, batch: &mut Vec<SessionRecord>) {
    if batch.is_empty() {
        return;
    }
    for attempt in 1..=WRITE_ATTEMPTS {
        match store.insert_batch(batch) {
            Ok(()) => {
                tracing::debug!(records = batch.len(), "session records written");
                break;
            }
            Err(error) if attempt < WRITE_ATTEMPTS => {
                tracing::warn!(%error, attempt, records = batch.len(), "cannot write session records; retrying");
                thread::sleep(RETRY_PAUSE * attempt);
            }
            Err(error) => {
                tracing::error!(
                    %error,
                    attempts = WRITE_ATTEMPTS,
                    records = batch.len(),
                    "session records lost: every write attempt failed"
                );
            }
        }
    }
    batch.clear();
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::fixture::{sample_record, TempDir};
    use crate::{SqliteStore, StoreError};

    /// A store that fails its first `failures` batches, then keeps what it is given. Clones share
    /// their counters, so a test keeps one clone to inspect what the writer did with the other.
    #[derive(Clone)]
    struct FlakyStore {
        failures: u32,
        attempts: Arc<Mutex<u32>>,
        stored: Arc<Mutex<Vec<SessionRecord>>>,
    }

    impl FlakyStore {
        fn new(failures: u32) -> FlakyStore {
            FlakyStore {
                failures,
                attempts: Arc::default(),
                stored: Arc::default(),
            }
        }

        fn attempts(&self) -> u32 {
            *self.attempts.lock().unwrap()
        }

        fn stored(&self) -> Vec<SessionRecord> {
            self.stored.lock().unwrap().clone()
        }
    }

    impl SessionStore for FlakyStore {
        fn insert_batch(&mut self, records: &[SessionRecord]) -> Result<(), StoreError> {
            let mut attempts = self.attempts.lock().unwrap();
            *attempts += 1;
            if *attempts <= self.failures {
                return Err(StoreError::Write {
                    path: PathBuf::from("flaky.db"),
                    source: rusqlite::Error::InvalidQuery,
                });
            }
            self.stored.lock().unwrap().extend_from_slice(records);
            Ok(())
        }
    }

    #[test]
    fn ten_thousand_records_from_several_threads_are_all_written() {
        const THREADS: u16 = 8;
        const PER_THREAD: u16 = 1_250;
        let dir = TempDir::new("recorder-load");
        let recorder = SessionRecorder::spawn(Box::new(SqliteStore::open(&dir.db_path()).unwrap()));

        thread::scope(|scope| {
            for t in 0..THREADS {
                let recorder = recorder.clone();
                scope.spawn(move || {
                    for i in 0..PER_THREAD {
                        recorder.record(sample_record(t * PER_THREAD + i));
                    }
                });
            }
        });
        recorder.shutdown();

        let store = SqliteStore::open(&dir.db_path()).unwrap();
        assert_eq!(store.count().unwrap(), 10_000);
        let mut ports: Vec<u16> = store
            .sessions()
            .unwrap()
            .iter()
            .map(|r| r.client_port)
            .collect();
        ports.sort_unstable();
        assert_eq!(ports, (0..THREADS * PER_THREAD).collect::<Vec<_>>());
    }

    #[test]
    fn flush_makes_queued_records_visible_to_readers() {
        let dir = TempDir::new("recorder-flush");
        let recorder = SessionRecorder::spawn(Box::new(SqliteStore::open(&dir.db_path()).unwrap()));
        let reader = SqliteStore::open(&dir.db_path()).unwrap();

        for n in 0..3 {
            recorder.record(sample_record(n));
        }
        recorder.flush();
        assert_eq!(
            reader.sessions().unwrap(),
            vec![sample_record(0), sample_record(1), sample_record(2)]
        );

        recorder.record(sample_record(3));
        recorder.shutdown();
        assert_eq!(reader.count().unwrap(), 4);
    }

    #[test]
    fn a_failed_batch_is_retried_and_stored_once() {
        let store = FlakyStore::new(WRITE_ATTEMPTS - 1);
        let recorder = SessionRecorder::spawn(Box::new(store.clone()));
        recorder.record(sample_record(7));
        recorder.shutdown();

        assert_eq!(store.attempts(), WRITE_ATTEMPTS);
        assert_eq!(store.stored(), vec![sample_record(7)]);
    }

    #[test]
    fn a_batch_that_always_fails_is_dropped_without_wedging_the_writer() {
        let store = FlakyStore::new(WRITE_ATTEMPTS);
        let recorder = SessionRecorder::spawn(Box::new(store.clone()));
        recorder.record(sample_record(1));
        recorder.flush();
        recorder.record(sample_record(2));
        recorder.shutdown();

        assert_eq!(store.attempts(), WRITE_ATTEMPTS + 1);
        assert_eq!(store.stored(), vec![sample_record(2)]);
    }

    #[test]
    fn records_after_shutdown_are_refused_without_panicking() {
        let store = FlakyStore::new(0);
        let recorder = SessionRecorder::spawn(Box::new(store.clone()));
        let other = recorder.clone();
        recorder.shutdown();

        other.record(sample_record(1));
        other.flush();
        other.shutdown();
        assert!(store.stored().is_empty());
    }
}
