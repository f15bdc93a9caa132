//! The gateway's hot-path handle: hands records to one writer thread and never waits for SQLite.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::refusal::minute_of;
use crate::{
    RefusalReason, RefusalSummary, RefusedConnection, SessionRecord, SessionStore, StoreError,
};

/// Attempts at shutdown before the records still unwritten are handed back to the caller.
const WRITE_ATTEMPTS: u32 = 3;
/// Pause after the first failed write; doubled after each further failure up to
/// [`MAX_RETRY_PAUSE`]. Lock waits are already absorbed by SQLite's busy timeout, so failures
/// here are I/O trouble: a full or read-only disk, which can last.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);
/// Upper bound on records per transaction, so a backlog is written in bounded steps.
const MAX_BATCH: usize = 1_000;
/// What may wait in memory while the store fails: hours of a busy gateway. Records of the
/// usual size (under 1 KiB) meet the count first; the byte bound (by
/// [`SessionRecord::estimated_bytes`]) holds when clients fill their fields to the limits
/// (32 KiB of IMAP ID alone).
const BACKLOG: Backlog = Backlog {
    records: 100_000,
    bytes: 100 * 1024 * 1024,
};

/// Bounds on the records waiting in memory for a failing store.
#[derive(Debug, Clone, Copy)]
struct Backlog {
    records: usize,
    bytes: usize,
}

/// Gauge: session records handed to the writer and not yet stored. Near 0 while the store
/// keeps up; it grows while writes fail (up to 100,000, after which records go to the log).
pub const QUEUED_RECORDS_METRIC: &str = "mailtls_store_queued_records";
/// Counter: write transactions of session records that failed (each is retried later).
pub const WRITE_FAILURES_METRIC: &str = "mailtls_store_write_failures_total";

/// Gives the recorder's metrics their help text. Call once after installing a metrics
/// recorder (the `metrics` crate drops descriptions given before).
pub fn describe_metrics() {
    metrics::describe_gauge!(
        QUEUED_RECORDS_METRIC,
        "Session records waiting to be written to the store"
    );
    metrics::describe_counter!(
        WRITE_FAILURES_METRIC,
        "Failed writes of session records to the store (the records stay queued and are retried)"
    );
}
/// Most refusal counts (distinct minute, listener, address and reason) held while the store
/// fails; a count is a few dozen bytes.
const MAX_REFUSAL_COUNTS: usize = 100_000;

enum Message {
    // Boxed so the channel's slots stay small next to the control messages.
    Record(Box<SessionRecord>),
    Refused(RefusedConnection),
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
/// The channel is unbounded on purpose: a record is about a kilobyte and arrives once per
/// session, whereas a dropped record is a legacy client missing from the inventory.
/// [`record`](SessionRecorder::record) therefore never blocks.
///
/// The writer drains whatever is queued and writes it in transactions of at most 1,000 records.
/// A failed write keeps its records queued and is retried, with pauses growing from 100 ms to
/// 5 s however many records arrive meanwhile, for as long as the gateway runs: a full disk
/// delays records, it does not lose them. Past 100,000 waiting records or 100 MiB of them,
/// further ones go to the log in full instead of memory.
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
        SessionRecorder::spawn_with_backlog(store, BACKLOG)
    }

    fn spawn_with_backlog(store: Box<dyn SessionStore>, backlog: Backlog) -> SessionRecorder {
        let (queue, inbox) = mpsc::channel();
        thread::Builder::new()
            .name("session-writer".into())
            .spawn(move || write_until_shutdown(store, backlog, inbox))
            .expect("cannot start the session writer thread");
        SessionRecorder { queue }
    }

    /// Queues `record` for writing; returns at once.
    ///
    /// After [`shutdown`](SessionRecorder::shutdown) the record cannot be stored; it is logged in
    /// full (records hold no secrets) instead.
    pub fn record(&self, record: SessionRecord) {
        if let Err(mpsc::SendError(Message::Record(lost))) =
            self.queue.send(Message::Record(Box::new(record)))
        {
            tracing::error!(record = ?lost, "session record not stored: the session writer has already shut down");
        }
    }

    /// Counts a connection refused before its dialogue. The writer adds it to the count of its
    /// minute, listener, client address and reason, so a flood of refusals writes a row per
    /// address and minute, not one per connection. Returns at once.
    pub fn refused(&self, connection: RefusedConnection) {
        if let Err(mpsc::SendError(Message::Refused(lost))) =
            self.queue.send(Message::Refused(connection))
        {
            tracing::error!(refused = ?lost, "refused connection not counted: the session writer has already shut down");
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
    /// sent afterwards through other clones of this handle are logged the same way.
    ///
    /// # Errors
    /// [`WriterGone`] when the writer thread had already ended (it panicked): whatever it still
    /// held is lost, and the caller must not report every session as recorded.
    pub fn shutdown(self) -> Result<Vec<SessionRecord>, WriterGone> {
        let (done, wait) = mpsc::channel();
        self.queue
            .send(Message::Control(Control::Shutdown(done)))
            .map_err(|_| WriterGone)?;
        wait.recv().map_err(|_| WriterGone)
    }
}

/// The session writer thread ended before it was asked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the session writer ended unexpectedly; records it still held are lost")]
pub struct WriterGone;

/// The writer thread's state: the store, the records not yet written, and when to try again
/// after a failed write.
struct Writer {
    store: Box<dyn SessionStore>,
    pending: Vec<SessionRecord>,
    /// The sum of `pending`'s [`SessionRecord::estimated_bytes`].
    pending_bytes: usize,
    backlog: Backlog,
    refusals: RefusalCounts,
    failures: u32,
    /// Set after a failed write: no attempt before then, however many records arrive.
    retry_at: Option<Instant>,
}

/// The writer thread's loop.
fn write_until_shutdown(store: Box<dyn SessionStore>, backlog: Backlog, inbox: Receiver<Message>) {
    let mut writer = Writer {
        store,
        pending: Vec::new(),
        pending_bytes: 0,
        backlog,
        refusals: RefusalCounts::default(),
        failures: 0,
        retry_at: None,
    };
    let queued = metrics::gauge!(QUEUED_RECORDS_METRIC);
    // Shown at 0 from the start, so an alert on its rate has a series before the first failure.
    metrics::counter!(WRITE_FAILURES_METRIC).increment(0);
    loop {
        queued.set(writer.pending.len() as f64);
        let first = match writer.retry_at {
            None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => inbox.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        let mut control = match first {
            Ok(Message::Record(record)) => {
                writer.queue(*record);
                None
            }
            Ok(Message::Refused(connection)) => {
                writer.refusals.count(connection);
                None
            }
            Ok(Message::Control(control)) => Some(control),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                log_unstored(&writer.finish());
                return;
            }
        };
        // A control message ends the drain so that it is answered only after what preceded it.
        while control.is_none() {
            match inbox.try_recv() {
                Ok(Message::Record(record)) => writer.queue(*record),
                Ok(Message::Refused(connection)) => writer.refusals.count(connection),
                Ok(Message::Control(next)) => control = Some(next),
                Err(_) => break,
            }
        }
        match control {
            Some(Control::Shutdown(done)) => {
                let mut lost = writer.finish();
                // Records other handles sent after the shutdown cannot be stored any more.
                while let Ok(message) = inbox.try_recv() {
                    match message {
                        Message::Record(record) => lost.push(*record),
                        Message::Refused(connection) => tracing::error!(
                            refused = ?connection,
                            "refused connection not counted: the session writer is stopping"
                        ),
                        Message::Control(Control::Flush(flushed)) => drop(flushed.send(())),
                        Message::Control(Control::Shutdown(_)) => {}
                    }
                }
                log_unstored(&lost);
                let _ = done.send(lost);
                return;
            }
            Some(Control::Flush(done)) => {
                writer.attempt();
                let _ = done.send(());
            }
            None if writer.retry_at.is_none_or(|at| Instant::now() >= at) => writer.attempt(),
            None => {}
        }
    }
}

impl Writer {
    /// Queues a record, unless the queue would hold more than its backlog allows: a store that
    /// has failed that long gets the rest in the log, in full, rather than in memory without
    /// bound.
    fn queue(&mut self, record: SessionRecord) {
        let bytes = record.estimated_bytes();
        if self.pending.len() < self.backlog.records
            && self.pending_bytes + bytes <= self.backlog.bytes
        {
            self.pending.push(record);
            self.pending_bytes += bytes;
        } else {
            tracing::error!(
                ?record,
                "session record not stored: the store has been failing and the queue is full"
            );
        }
    }

    /// One attempt at writing everything queued.
    fn attempt(&mut self) {
        if self.pending.is_empty() && self.refusals.is_empty() {
            return;
        }
        let written = write_pending(self.store.as_mut(), &mut self.pending, &mut self.refusals);
        self.count_pending_bytes();
        match written {
            Ok(()) => {
                if self.failures > 0 {
                    tracing::info!(
                        failed_attempts = self.failures,
                        "session records written after the store recovered"
                    );
                }
                self.failures = 0;
                self.retry_at = None;
            }
            Err(error) => {
                self.failures += 1;
                metrics::counter!(WRITE_FAILURES_METRIC).increment(1);
                let pause = retry_pause(self.failures);
                tracing::warn!(
                    %error,
                    queued = self.pending.len(),
                    retry_in_ms = pause.as_millis() as u64,
                    "cannot write session records; they stay queued and the write is retried"
                );
                self.retry_at = Some(Instant::now() + pause);
            }
        }
    }

    /// Recounts `pending_bytes` after a write took records off the front of `pending`; the
    /// queue is empty unless the store fails, and then this runs once per retry pause.
    fn count_pending_bytes(&mut self) {
        self.pending_bytes = self
            .pending
            .iter()
            .map(SessionRecord::estimated_bytes)
            .sum();
    }

    /// Last attempts before the writer ends, then closes the store; returns what is still
    /// unwritten.
    fn finish(mut self) -> Vec<SessionRecord> {
        for attempt in 1..=WRITE_ATTEMPTS {
            if attempt > 1 {
                thread::sleep(retry_pause(attempt - 1));
            }
            match write_pending(self.store.as_mut(), &mut self.pending, &mut self.refusals) {
                Ok(()) => return Vec::new(),
                Err(error) => {
                    metrics::counter!(WRITE_FAILURES_METRIC).increment(1);
                    tracing::warn!(
                    %error,
                    attempt,
                    queued = self.pending.len(),
                    "cannot write session records before stopping"
                    );
                }
            }
        }
        for summary in self.refusals.summaries() {
            tracing::error!(?summary, "refused connections not counted in the store");
        }
        std::mem::take(&mut self.pending)
    }
}

/// Refused connections counted per minute, listener, client address and reason until written.
#[derive(Default)]
struct RefusalCounts {
    counts: HashMap<(SystemTime, String, IpAddr, RefusalReason), u64>,
}

impl RefusalCounts {
    /// Adds one refusal; past [`MAX_REFUSAL_COUNTS`] distinct counts (a store failing through a
    /// flood from many addresses) a new one goes to the log instead of memory.
    fn count(&mut self, connection: RefusedConnection) {
        let key = (
            minute_of(connection.at),
            connection.listener,
            connection.client_addr,
            connection.reason,
        );
        let full = self.counts.len() >= MAX_REFUSAL_COUNTS;
        match self.counts.get_mut(&key) {
            Some(count) => *count += 1,
            None if full => tracing::error!(
                listener = %key.1,
                client = %key.2,
                reason = %key.3,
                "refused connection not counted: the store has been failing and too many counts wait"
            ),
            None => {
                self.counts.insert(key, 1);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    fn summaries(&self) -> Vec<RefusalSummary> {
        self.counts
            .iter()
            .map(
                |((minute, listener, client_addr, reason), count)| RefusalSummary {
                    minute: *minute,
                    listener: listener.clone(),
                    client_addr: *client_addr,
                    reason: *reason,
                    count: *count,
                },
            )
            .collect()
    }
}

/// The pause after `failures` failed writes in a row: 100 ms, doubled each time, at most 5 s.
fn retry_pause(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (RETRY_PAUSE * 2u32.pow(doublings)).min(MAX_RETRY_PAUSE)
}

/// Writes `pending` in transactions of at most [`MAX_BATCH`], removing what was written, then
/// the refusal counts in one more. A failed transaction is rolled back, so a retry never
/// stores a record twice nor adds a count twice; a PostgreSQL commit whose answer was lost is
/// looked up by the store before it reports a failure (the refusal counts are not).
fn write_pending(
    store: &mut dyn SessionStore,
    pending: &mut Vec<SessionRecord>,
    refusals: &mut RefusalCounts,
) -> Result<(), StoreError> {
    let mut written = 0;
    let mut result = Ok(());
    for batch in pending.chunks(MAX_BATCH) {
        if let Err(error) = store.insert_batch(batch) {
            result = Err(error);
            break;
        }
        written += batch.len();
    }
    if written > 0 {
        tracing::debug!(records = written, "session records written");
    }
    pending.drain(..written);
    result?;
    if !refusals.is_empty() {
        store.add_refusals(&refusals.summaries())?;
        refusals.counts.clear();
    }
    Ok(())
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

        fn add_refusals(&mut self, _summaries: &[RefusalSummary]) -> Result<(), StoreError> {
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
        assert_eq!(recorder.shutdown(), Ok(Vec::new()));

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
        assert_eq!(recorder.shutdown(), Ok(Vec::new()));
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

        // Retries come after pauses of 100, 200 and 400 ms, without any new message.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while store.stored().len() < 2 {
            assert!(std::time::Instant::now() < deadline, "never retried");
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(recorder.shutdown(), Ok(Vec::new()));
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
            Ok(vec![sample_record(1), sample_record(2)])
        );
        assert!(store.stored().is_empty());
        assert!(
            store.attempts() >= 2 + WRITE_ATTEMPTS,
            "{}",
            store.attempts()
        );
    }

    /// Records arriving while the store fails wait for the pause to end: a busy gateway does not
    /// retry once per session.
    #[test]
    fn records_arriving_during_the_pause_do_not_bring_the_retry_forward() {
        let store = FlakyStore::new(u32::MAX);
        let recorder = SessionRecorder::spawn(Box::new(store.clone()));
        for n in 0..50 {
            recorder.record(sample_record(n));
            thread::sleep(Duration::from_millis(10));
        }
        // About 500 ms: the first attempt, then at most one after each of 100, 200 (and, on a
        // slow machine, part of 400) ms of pause; 50 attempts if every record triggered one.
        let attempts = store.attempts();
        assert!((1..=5).contains(&attempts), "{attempts} attempts");
        assert_eq!(recorder.shutdown().map(|lost| lost.len()), Ok(50));
    }

    /// A failing store holds at most the backlog's bytes in memory: records with fields at
    /// their limits meet the byte bound long before the count, and the rest go to the log.
    #[test]
    fn a_failing_store_holds_at_most_the_backlog_bytes() {
        let big = |n: u16| {
            let mut record = sample_record(n);
            record.client_id = vec![("n".repeat(30), Some("v".repeat(1024))); 30];
            record
        };
        let size = big(0).estimated_bytes();
        let backlog = Backlog {
            records: 1_000,
            bytes: 10 * size + size / 2,
        };
        let store = FlakyStore::new(u32::MAX);
        let recorder = SessionRecorder::spawn_with_backlog(Box::new(store.clone()), backlog);
        for n in 0..25 {
            recorder.record(big(n));
        }
        recorder.flush();
        // Small records still fit beside the big ones until the bytes run out.
        recorder.record(sample_record(100));
        let lost = recorder.shutdown().expect("the writer ran");
        let ports: Vec<u16> = lost.iter().map(|r| r.client_port).collect();
        assert_eq!(ports, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 100]);
        assert!(
            lost.iter()
                .map(SessionRecord::estimated_bytes)
                .sum::<usize>()
                <= backlog.bytes
        );
    }

    /// Once the store recovers, the bytes written no longer count against the backlog.
    #[test]
    fn written_records_free_their_share_of_the_backlog() {
        let backlog = Backlog {
            records: 1_000,
            bytes: 3 * sample_record(0).estimated_bytes(),
        };
        let store = FlakyStore::new(0);
        let recorder = SessionRecorder::spawn_with_backlog(Box::new(store.clone()), backlog);
        for n in 0..20 {
            recorder.record(sample_record(n));
            recorder.flush();
        }
        assert_eq!(recorder.shutdown(), Ok(Vec::new()));
        assert_eq!(store.stored().len(), 20);
    }

    /// Ten thousand refused connections of one address within a minute become one row with
    /// their count, beside a second address's own row.
    #[test]
    fn a_flood_of_refusals_is_stored_as_one_count_per_address_and_minute() {
        let dir = TempDir::new("recorder-refusals");
        let recorder = SessionRecorder::spawn(Box::new(SqliteStore::open(&dir.db_path()).unwrap()));
        let minute = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_040);
        let refused = |addr: &str, second: u64| RefusedConnection {
            at: minute + Duration::from_millis(second * 5),
            listener: "imaps".into(),
            client_addr: addr.parse().unwrap(),
            reason: RefusalReason::ClientLimit,
        };
        for n in 0..10_000 {
            recorder.refused(refused("192.0.2.7", n));
            if n % 2_500 == 0 {
                recorder.flush();
            }
        }
        recorder.refused(refused("192.0.2.8", 0));
        assert_eq!(recorder.shutdown(), Ok(Vec::new()));

        let counts: Vec<(String, u64)> = SqliteStore::open(&dir.db_path())
            .unwrap()
            .refusals()
            .unwrap()
            .into_iter()
            .map(|s| {
                assert_eq!(s.minute, minute);
                (s.client_addr.to_string(), s.count)
            })
            .collect();
        assert_eq!(
            counts,
            [
                ("192.0.2.7".to_string(), 10_000),
                ("192.0.2.8".to_string(), 1)
            ]
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
        assert_eq!(recorder.shutdown(), Ok(Vec::new()));

        other.record(sample_record(1));
        other.flush();
        assert_eq!(other.shutdown(), Err(WriterGone));
        assert!(store.stored().is_empty());
    }
}
