//! The gateway's hot-path handle: hands records to one writer thread and never waits for SQLite.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::Duration;

use crate::{SessionRecord, SessionStore};

/// Attempts at shutdown before the records still unwritten are handed back to the caller.
const WRITE_ATTEMPTS: u32 = 3;
/// Pause after the first failed write; doubled after each further failure up to
/// [`MAX_RETRY_PAUSE`]. Lock waits are already absorbed by SQLite's busy timeout, so failures
/// here are I/O trouble: a full or read-only disk, which can last.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);
/// Upper bound on records per transaction, so a backlog is written in bounded steps and a flush
/// waits behind at most one of them.
const MAX_BATCH: usize = 1_000;

enum Message {
    // Boxed so the channel's slots stay small next to the control messages.
    Record(Box<SessionRecord>),
    Control(Control),
}

enum Control {
    /// Acknowledged once a write of everything queued before it has been attempted.
    Flush(Sender<()>),
    /// Write everything queued before it, close the store, then end the thread, answering with
    /// the records that could not be written.
    Shutdown(Sender<Vec<SessionRecord>>),
}

/// A cheap, cloneable handle that queues session records for a background writer thread.
///
/// The queue is unbounded on purpose: a record is about a kilobyte and arrives once per session,
/// so even a long stall of the disk costs little memory, whereas a dropped record is a legacy
/// client missing from the inventory. [`record`](SessionRecorder::record) therefore never blocks
/// and never drops while the writer runs.
///
/// The writer drains whatever is queued and writes it in transactions of at most 1,000 records.
/// A failed write keeps its records queued and is retried, with pauses growing from 100 ms to
/// 5 s, for as long as the gateway runs: a full disk delays records, it does not lose them.
/// The writer ends when [`shutdown`](SessionRecorder::shutdown) is called, which hands back what
/// could still not be written, or when every handle is dropped; call `shutdown` before the
/// process exits, since a detached thread is killed with it.
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

    /// Blocks until a write of every record queued before this call has been attempted: they
    /// are written unless the store is failing, in which case they stay queued for the retries.
    /// Meant for tests and orderly shutdown, not for the hot path.
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

    /// Writes everything queued so far (a failing store gets a few last attempts), closes the
    /// store and stops the writer thread. Returns the records that could not be written, which
    /// are also logged in full at error level so that an operator can recover them. Records
    /// sent afterwards through other clones of this handle are logged as lost.
    #[must_use = "the records handed back were not stored"]
    pub fn shutdown(self) -> Vec<SessionRecord> {
        let (done, wait) = mpsc::channel();
        if self
            .queue
            .send(Message::Control(Control::Shutdown(done)))
            .is_err()
        {
            return Vec::new();
        }
        // An error means the writer panicked: nothing more can be learnt.
        wait.recv().unwrap_or_default()
    }
}

/// What woke the writer.
enum Wake {
    Message(Message),
    /// The pause after a failed write is over.
    Retry,
    /// Every handle is gone.
    Closed,
}

/// The writer thread's loop.
fn write_until_shutdown(mut store: Box<dyn SessionStore>, inbox: Receiver<Message>) {
    let mut pending = Vec::new();
    let mut failures = 0;
    loop {
        let mut control = match wait(&inbox, !pending.is_empty(), failures) {
            Wake::Message(Message::Record(record)) => {
                pending.push(*record);
                None
            }
            Wake::Message(Message::Control(control)) => Some(control),
            Wake::Retry => None,
            Wake::Closed => {
                let lost = write_before_exit(store.as_mut(), &mut pending);
                log_unstored(&lost);
                return;
            }
        };
        // A control message ends the drain so that it is answered only after what preceded it.
        while control.is_none() {
            match inbox.try_recv() {
                Ok(Message::Record(record)) => pending.push(*record),
                Ok(Message::Control(next)) => control = Some(next),
                Err(_) => break,
            }
        }
        if let Some(Control::Shutdown(done)) = control {
            let lost = write_before_exit(store.as_mut(), &mut pending);
            drop(store);
            log_unstored(&lost);
            let _ = done.send(lost);
            return;
        }
        failures = match write_pending(store.as_mut(), &mut pending, failures) {
            Ok(()) => 0,
            Err(()) => failures + 1,
        };
        if let Some(Control::Flush(done)) = control {
            let _ = done.send(());
        }
    }
}

/// Waits for the next message; while records wait after `failures` failed writes, no longer
/// than the pause before the next attempt.
fn wait(inbox: &Receiver<Message>, records_waiting: bool, failures: u32) -> Wake {
    if !records_waiting {
        return inbox.recv().map_or(Wake::Closed, Wake::Message);
    }
    match inbox.recv_timeout(retry_pause(failures)) {
        Ok(message) => Wake::Message(message),
        Err(RecvTimeoutError::Timeout) => Wake::Retry,
        Err(RecvTimeoutError::Disconnected) => Wake::Closed,
    }
}

fn retry_pause(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (RETRY_PAUSE * 2u32.pow(doublings)).min(MAX_RETRY_PAUSE)
}

/// Writes `pending` in transactions of at most [`MAX_BATCH`], removing what was written. A
/// failed transaction is rolled back, so a retry never stores a record twice.
fn write_pending(
    store: &mut dyn SessionStore,
    pending: &mut Vec<SessionRecord>,
    failures: u32,
) -> Result<(), ()> {
    let mut written = 0;
    let mut result = Ok(());
    for batch in pending.chunks(MAX_BATCH) {
        if let Err(error) = store.insert_batch(batch) {
            tracing::warn!(
                %error,
                queued = pending.len() - written,
                retry_in_ms = retry_pause(failures + 1).as_millis() as u64,
                "cannot write session records; they stay queued and the write is retried"
            );
            result = Err(());
            break;
        }
        written += batch.len();
    }
    if written > 0 {
        tracing::debug!(records = written, "session records written");
        if failures > 0 {
            tracing::info!(
                records = written,
                failed_attempts = failures,
                "session records written after the store recovered"
            );
        }
    }
    pending.drain(..written);
    result
}

/// Last attempts before the writer ends; returns what is still unwritten.
fn write_before_exit(
    store: &mut dyn SessionStore,
    pending: &mut Vec<SessionRecord>,
) -> Vec<SessionRecord> {
    for attempt in 1..=WRITE_ATTEMPTS {
        if write_pending(store, pending, attempt - 1).is_ok() {
            return Vec::new();
        }
        if attempt < WRITE_ATTEMPTS {
            thread::sleep(retry_pause(attempt));
        }
    }
    std::mem::take(pending)
}

/// Puts records that could not be stored into the log, in full (records hold no secrets), so
/// an operator can recover them.
fn log_unstored(records: &[SessionRecord]) {
    for record in records {
        tracing::error!(?record, "session record not stored");
    }
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
        assert!(recorder.shutdown().is_empty());

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
        assert!(recorder.shutdown().is_empty());
        assert_eq!(reader.count().unwrap(), 4);
    }

    #[test]
    fn failed_writes_are_retried_until_stored_once() {
        let store = FlakyStore::new(4);
        let recorder = SessionRecorder::spawn(Box::new(store.clone()));
        recorder.record(sample_record(7));
        recorder.flush();
        assert!(store.stored().is_empty(), "the first write fails");
        recorder.record(sample_record(8));

        // Retries come after 100, 200 and 400 ms pauses without any new message.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while store.stored().len() < 2 {
            assert!(std::time::Instant::now() < deadline, "never retried");
            thread::sleep(Duration::from_millis(20));
        }
        assert!(recorder.shutdown().is_empty());
        assert!(store.attempts() >= 5, "{}", store.attempts());
        assert_eq!(store.stored(), vec![sample_record(7), sample_record(8)]);
    }

    #[test]
    fn records_a_failing_store_never_took_are_handed_back_at_shutdown() {
        let store = FlakyStore::new(u32::MAX);
        let recorder = SessionRecorder::spawn(Box::new(store.clone()));
        recorder.record(sample_record(1));
        recorder.flush();
        recorder.record(sample_record(2));
        recorder.flush();

        assert_eq!(
            recorder.shutdown(),
            vec![sample_record(1), sample_record(2)]
        );
        assert!(store.stored().is_empty());
        assert!(
            store.attempts() >= 2 + WRITE_ATTEMPTS,
            "{}",
            store.attempts()
        );
    }

    #[test]
    fn retry_pauses_grow_to_a_ceiling() {
        assert_eq!(retry_pause(1), RETRY_PAUSE);
        assert_eq!(retry_pause(2), RETRY_PAUSE * 2);
        assert_eq!(retry_pause(6), Duration::from_millis(3_200));
        assert_eq!(retry_pause(7), MAX_RETRY_PAUSE);
        assert_eq!(retry_pause(u32::MAX), MAX_RETRY_PAUSE);
    }

    #[test]
    fn records_after_shutdown_are_refused_without_panicking() {
        let store = FlakyStore::new(0);
        let recorder = SessionRecorder::spawn(Box::new(store.clone()));
        let other = recorder.clone();
        assert!(recorder.shutdown().is_empty());

        other.record(sample_record(1));
        other.flush();
        assert!(other.shutdown().is_empty());
        assert!(store.stored().is_empty());
    }
}
