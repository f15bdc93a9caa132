//! The default session store: one SQLite file.

use std::fs::{OpenOptions, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use rusqlite::{params, CachedStatement, Connection, OptionalExtension};

use crate::activity::{self, DayRange, SessionCounts};
use crate::annotation::AnnotationIndex;
use crate::inventory::{self, KnownValue, KnownValues, Rollup, SqliteRollup};
use crate::refusal::{refusal_from_row, SELECT_REFUSALS};
use crate::session_row::{
    record_from_row, SessionColumns, INSERT_COLUMNS, INSERT_COLUMN_COUNT, SELECT_COLUMNS,
};
use crate::{
    schema, timestamp, Annotation, AnnotationSubject, ClientSummary, EvidenceDigest,
    RefusalSummary, RetainedTable, SessionRecord, SessionStore, StoreError,
};

/// How long a writer waits for another process's lock (e.g. `mailtls import` running beside the
/// gateway) before giving up with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// `INSERT INTO sessions (...) VALUES (?1, ..., ?30)`.
static INSERT: LazyLock<String> = LazyLock::new(|| {
    let placeholders: Vec<String> = (1..=INSERT_COLUMN_COUNT).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO sessions ({INSERT_COLUMNS}) VALUES ({})",
        placeholders.join(", ")
    )
});

static SELECT_ALL: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {SELECT_COLUMNS} FROM sessions ORDER BY id"));

/// Who owns the store's files and who besides the owner may read them. The files hold client
/// addresses and login names, so nobody else may.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreAccess {
    /// The `(uid, gid)` given to the files, e.g. the user a gateway started as root drops to;
    /// `None` leaves them to whoever runs.
    pub owner: Option<(u32, u32)>,
    /// Whether the owning group may read the files: mode 0640 rather than 0600.
    pub group_readable: bool,
}

impl StoreAccess {
    /// The mode a new database file gets; SQLite gives its `-wal` and `-shm` files the same
    /// mode and, when it runs as root, the same owner.
    pub fn mode(self) -> u32 {
        if self.group_readable {
            0o640
        } else {
            0o600
        }
    }
}

/// The files SQLite keeps beside the database in WAL mode.
const SIDECAR_SUFFIXES: [&str; 2] = ["-wal", "-shm"];
const ADD_REFUSALS: &str = "INSERT INTO refused_connections
        (minute, listener, client_addr, reason, count) VALUES (?1, ?2, ?3, ?4, ?5)
    ON CONFLICT (minute, listener, client_addr, reason) DO UPDATE SET count = count + excluded.count";

/// Session records in a SQLite database file.
///
/// The file uses WAL journaling, so readers such as `mailtls clients` never block the gateway's
/// writes. Times are stored as RFC 3339 UTC text with milliseconds (`2026-07-19T08:15:02.123Z`),
/// so records read back are truncated to the millisecond.
#[derive(Debug)]
pub struct SqliteStore {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
    known_values: KnownValues,
}

impl SqliteStore {
    /// Opens the store at `path`, creating the file (mode 0600) and its tables if missing and
    /// upgrading an older schema.
    ///
    /// The directory must already exist.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with_access(path, StoreAccess::default())
    }

    /// [`SqliteStore::open`], with a new file created with `access`'s mode and, when it names
    /// an owner, the database and its `-wal`/`-shm` files given to that owner whether new or
    /// not (a store made by an earlier run as root follows the gateway to its user). The mode
    /// of an existing file is the operator's and is left alone; one readable by every local
    /// user is warned about.
    pub fn open_with_access(path: &Path, access: StoreAccess) -> Result<SqliteStore, StoreError> {
        let access_error = |file: &Path, source| StoreError::Access {
            path: file.to_owned(),
            source,
        };
        // Opened as root before the gateway drops privileges: a link the unprivileged user
        // left in its own folder must not make root write or chown whatever it points to.
        for file in std::iter::once(path.to_path_buf()).chain(sidecars(path)) {
            refuse_unless_regular(&file).map_err(|e| access_error(&file, e))?;
        }
        prepare_file(path, access).map_err(|e| access_error(path, e))?;
        let store = SqliteStore::open_prepared(path)?;
        if let Some((uid, gid)) = access.owner {
            for sidecar in sidecars(path) {
                match give_to(&sidecar, (uid, gid)) {
                    Err(e) if e.kind() != ErrorKind::NotFound => {
                        return Err(access_error(&sidecar, e))
                    }
                    _ => {}
                }
            }
        }
        Ok(store)
    }

    fn open_prepared(path: &Path) -> Result<SqliteStore, StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        let journal: String = conn
            .pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))
            .map_err(open_error)?;
        if !journal.eq_ignore_ascii_case("wal") {
            // Some network filesystems cannot do WAL; the store still works, only with readers
            // and the writer blocking each other.
            tracing::warn!(path = %path.display(), journal, "session store could not switch to WAL journaling");
        }
        // NORMAL is durable against process crashes under WAL; a power cut may lose the last
        // batches, which is an acceptable price for not syncing on every session.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_error)?;
        schema::migrate(&mut conn, path)?;
        Ok(SqliteStore {
            conn,
            path: path.to_owned(),
            known_values: KnownValues::default(),
        })
    }

    /// Every stored session, oldest insert first.
    pub fn sessions(&self) -> Result<Vec<SessionRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&SELECT_ALL)
            .map_err(|e| self.read_error(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.read_error(e))?;
        let mut records = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.read_error(e))? {
            records.push(record_from_row(&self.path, row)?);
        }
        Ok(records)
    }

    /// Every client of the inventory with its annotation, read from the rollups (never from
    /// the sessions), in id order.
    pub fn clients(&self) -> Result<Vec<ClientSummary>, StoreError> {
        let invalid = |reason: String| StoreError::InvalidRow {
            path: self.path.clone(),
            row_id: 0,
            column: "clients",
            reason,
        };
        let mut clients = inventory::read_clients(&self.conn).map_err(|e| match e {
            inventory::InventoryRowError::Sql(e) => self.read_error(e),
            inventory::InventoryRowError::Invalid(reason) => invalid(reason),
        })?;
        let annotations = self.annotations()?;
        let index = AnnotationIndex::new(&annotations);
        for client in &mut clients {
            client.annotation = index.annotation_for(client);
        }
        Ok(clients)
    }

    /// Sessions per UTC day within `range`, summed over every client, oldest day first.
    /// Reads the `daily_sessions` rollup only (one row a day).
    pub fn daily_sessions(
        &self,
        range: DayRange,
    ) -> Result<Vec<(time::Date, SessionCounts)>, StoreError> {
        activity::daily(&self.conn, range).map_err(|e| match e {
            activity::ActivityRowError::Sql(e) => self.read_error(e),
            day @ activity::ActivityRowError::Day(_) => StoreError::InvalidRow {
                path: self.path.clone(),
                row_id: 0,
                column: "day",
                reason: day.to_string(),
            },
        })
    }

    /// Sessions per client id within `range`; clients without sessions in it are absent.
    /// Reads the `client_days` rollup only.
    pub fn client_sessions(
        &self,
        range: DayRange,
    ) -> Result<std::collections::HashMap<i64, SessionCounts>, StoreError> {
        activity::per_client(&self.conn, range).map_err(|e| self.read_error(e))
    }

    /// Every annotation, oldest first.
    pub fn annotations(&self) -> Result<Vec<(AnnotationSubject, Annotation)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT subject_kind, subject, owner, device, note FROM client_annotations
                 ORDER BY updated_at, subject_kind, subject",
            )
            .map_err(|e| self.read_error(e))?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    Annotation {
                        owner: row.get(2)?,
                        device: row.get(3)?,
                        note: row.get(4)?,
                    },
                ))
            })
            .map_err(|e| self.read_error(e))?;
        let mut annotations = Vec::new();
        for row in rows {
            let (kind, key, annotation) = row.map_err(|e| self.read_error(e))?;
            // A subject this version cannot read is skipped rather than failing the listing.
            if let Some(subject) = AnnotationSubject::from_stored(&kind, &key) {
                annotations.push((subject, annotation));
            }
        }
        Ok(annotations)
    }

    /// Sets the owner, device and note of `subject`; fields given as `None` keep their value,
    /// fields given blank are cleared. A client id must exist; a field longer than 1024 bytes
    /// is refused.
    pub fn annotate(
        &mut self,
        subject: &AnnotationSubject,
        annotation: &Annotation,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        crate::annotation::check_lengths(annotation)?;
        if let AnnotationSubject::Client(id) = subject {
            let exists =
                inventory::client_exists(&self.conn, *id).map_err(|e| self.read_error(e))?;
            if !exists {
                return Err(StoreError::AnnotationRefused(format!(
                    "no client c{id} in the inventory (see `mailtls clients`)"
                )));
            }
        }
        let [(set_owner, owner), (set_device, device), (set_note, note)] =
            crate::annotation::field_writes(annotation);
        self.conn
            .execute(
                "INSERT INTO client_annotations (subject_kind, subject, owner, device, note, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (subject_kind, subject) DO UPDATE SET
                     owner = CASE WHEN ?7 THEN excluded.owner ELSE owner END,
                     device = CASE WHEN ?8 THEN excluded.device ELSE device END,
                     note = CASE WHEN ?9 THEN excluded.note ELSE note END,
                     updated_at = excluded.updated_at",
                params![
                    subject.kind(),
                    subject.key(),
                    owner,
                    device,
                    note,
                    timestamp::format(now),
                    set_owner,
                    set_device,
                    set_note,
                ],
            )
            .map(drop)
            .map_err(|source| StoreError::Write {
                path: self.path.clone(),
                source,
            })
    }

    /// Number of stored sessions.
    pub fn count(&self) -> Result<u64, StoreError> {
        let count: i64 = self
            .conn
            .query_row("SELECT count(*) FROM sessions", [], |row| row.get(0))
            .map_err(|e| self.read_error(e))?;
        // count(*) is never negative.
        Ok(count.unsigned_abs())
    }

    /// Deletes at most `limit` rows of `table` older than `cutoff`, oldest first, in one
    /// statement; returns how many went. The rollups keep pruned sessions counted.
    pub fn prune(
        &mut self,
        table: RetainedTable,
        cutoff: SystemTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        // refused_connections has no rowid (WITHOUT ROWID): its rows are named by their key.
        let sql = match table {
            RetainedTable::Sessions => {
                "DELETE FROM sessions WHERE id IN (
                     SELECT id FROM sessions WHERE started_at < ?1
                     ORDER BY started_at LIMIT ?2)"
            }
            RetainedTable::RefusedConnections => {
                "DELETE FROM refused_connections
                 WHERE (minute, listener, client_addr, reason) IN (
                     SELECT minute, listener, client_addr, reason FROM refused_connections
                     WHERE minute < ?1 ORDER BY minute LIMIT ?2)"
            }
            RetainedTable::ImportedEvidence => {
                "DELETE FROM imported_evidence WHERE digest IN (
                     SELECT digest FROM imported_evidence WHERE imported_at < ?1
                     ORDER BY imported_at LIMIT ?2)"
            }
        };
        self.conn
            .execute(sql, params![timestamp::format(cutoff), limit])
            .map(|n| n as u64)
            .map_err(|source| StoreError::Write {
                path: self.path.clone(),
                source,
            })
    }

    /// The connection, for tests that look at tables directly.
    #[cfg(test)]
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Every stored count of refused connections, by minute, listener, address and reason.
    pub fn refusals(&self) -> Result<Vec<RefusalSummary>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(SELECT_REFUSALS)
            .map_err(|e| self.read_error(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.read_error(e))?;
        let mut summaries = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.read_error(e))? {
            summaries.push(refusal_from_row(row).map_err(|(column, reason)| {
                StoreError::InvalidRow {
                    path: self.path.clone(),
                    // The table has no row ids; its key is the minute, listener, address and
                    // reason.
                    row_id: 0,
                    column,
                    reason,
                }
            })?);
        }
        Ok(summaries)
    }

    /// The start of what retention keeps: the latest cutoff a pruning used, if any.
    pub fn pruned_before(&self) -> Result<Option<SystemTime>, StoreError> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT pruned_before FROM retention WHERE id = 1",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.read_error(e))?;
        Ok(text.and_then(|t| timestamp::parse(&t).ok()))
    }

    /// Raises the start of what retention keeps to `cutoff` (never lowers it).
    pub fn raise_pruned_before(&mut self, cutoff: SystemTime) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO retention (id, pruned_before) VALUES (1, ?1)
                 ON CONFLICT (id) DO UPDATE SET pruned_before = max(pruned_before, excluded.pruned_before)",
                params![timestamp::format(cutoff)],
            )
            .map(drop)
            .map_err(|source| StoreError::Write {
                path: self.path.clone(),
                source,
            })
    }

    /// Stores the records of `batch` whose digest was never imported before, and remembers
    /// their digests, in one transaction: all of it is stored, or none. Returns the records
    /// stored; the others were imported earlier (by this file or a copy of it).
    pub fn insert_imported<'b>(
        &mut self,
        batch: &[&'b (EvidenceDigest, SessionRecord)],
        now: SystemTime,
    ) -> Result<Vec<&'b SessionRecord>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let imported_at = timestamp::format(now);
        let path = &self.path;
        let write_error = |source| StoreError::Write {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(write_error)?;
        let mut new = Vec::new();
        let mut rollup = Rollup::default();
        {
            let mut remember = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO imported_evidence (digest, source, imported_at)
                     VALUES (?1, ?2, ?3)",
                )
                .map_err(write_error)?;
            let mut insert = tx.prepare_cached(&INSERT).map_err(write_error)?;
            for &(digest, record) in batch {
                let added = remember
                    .execute(params![&digest[..], record.source.as_str(), imported_at])
                    .map_err(write_error)?;
                if added == 1 {
                    insert
                        .execute(&SessionColumns::of(record).sqlite_params()[..])
                        .map_err(write_error)?;
                    rollup.add(record);
                    new.push(record);
                }
            }
        }
        let checked = rollup
            .write(
                &mut SqliteRollup::prepare(&tx).map_err(write_error)?,
                &self.known_values,
            )
            .map_err(write_error)?;
        tx.commit().map_err(write_error)?;
        self.known_values.extend(checked);
        Ok(new)
    }

    pub(crate) fn read_error(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Read {
            path: self.path.clone(),
            source,
        }
    }
}

/// Creates the database file with `access`'s mode before SQLite opens it (SQLite would create
/// it 0644, readable by every local user), and gives it to `access`'s owner.
fn prepare_file(path: &Path, access: StoreAccess) -> std::io::Result<()> {
    let mode = access.mode();
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
    {
        // Exactly this mode, whatever the umask took away.
        Ok(file) => file.set_permissions(Permissions::from_mode(mode))?,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let found = std::fs::symlink_metadata(path)?.mode() & 0o777;
            if found & 0o007 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{found:o}"),
                    "the session store is readable by every local user; chmod {:o} it",
                    mode
                );
            }
        }
        Err(e) => return Err(e),
    }
    match access.owner {
        Some(owner) => give_to(path, owner),
        None => Ok(()),
    }
}

/// Gives `path` to `(uid, gid)` unless it already belongs to them: a process that is not root
/// (e.g. under systemd's system call filter, which forbids chown) then has nothing to change.
/// Never follows a link (`lchown`); `open_with_access` refuses links before this runs.
fn give_to(path: &Path, (uid, gid): (u32, u32)) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if (meta.uid(), meta.gid()) == (uid, gid) {
        return Ok(());
    }
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
}

/// The database's `-wal` and `-shm` files.
fn sidecars(path: &Path) -> impl Iterator<Item = PathBuf> + '_ {
    SIDECAR_SUFFIXES.iter().map(move |suffix| {
        let mut sidecar = path.as_os_str().to_owned();
        sidecar.push(suffix);
        PathBuf::from(sidecar)
    })
}

/// Ok when `path` is missing or a regular file; an error for a symbolic link or anything else.
fn refuse_unless_regular(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_file() => Ok(()),
        Ok(_) => Err(std::io::Error::new(
            ErrorKind::InvalidInput,
            "is not a regular file (a symbolic link?); the store will not open it: remove it",
        )),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl SessionStore for SqliteStore {
    /// Writes the whole batch in one transaction: all records are stored, or none.
    fn insert_batch(&mut self, records: &[SessionRecord]) -> Result<(), StoreError> {
        let mut rollup = Rollup::default();
        records.iter().for_each(|rec| rollup.add(rec));
        // Taken out for the transaction's closures, which borrow the store; put back after.
        let known = std::mem::take(&mut self.known_values);
        let written = self.execute_each(
            &INSERT,
            records,
            |insert, rec| insert.execute(&SessionColumns::of(rec).sqlite_params()[..]),
            |tx| rollup.write(&mut SqliteRollup::prepare(tx)?, &known),
        );
        self.known_values = known;
        let checked: Option<Vec<KnownValue>> = written?;
        self.known_values.extend(checked.unwrap_or_default());
        Ok(())
    }

    fn add_refusals(&mut self, summaries: &[RefusalSummary]) -> Result<(), StoreError> {
        self.execute_each(
            ADD_REFUSALS,
            summaries,
            |add, summary| {
                add.execute(params![
                    timestamp::format(summary.minute),
                    summary.listener,
                    summary.client_addr.to_string(),
                    summary.reason.as_str(),
                    i64::try_from(summary.count).unwrap_or(i64::MAX),
                ])
            },
            |_| Ok(()),
        )
        .map(drop)
    }
}

impl SqliteStore {
    /// Runs `statement` once per item, bound by `execute`, then `then`, in one transaction:
    /// all or none. `None` when there were no items (and nothing ran).
    fn execute_each<T, R>(
        &mut self,
        statement: &str,
        items: &[T],
        execute: impl Fn(&mut CachedStatement<'_>, &T) -> rusqlite::Result<usize>,
        then: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<R>,
    ) -> Result<Option<R>, StoreError> {
        if items.is_empty() {
            return Ok(None);
        }
        let path = &self.path;
        let write_error = |source| StoreError::Write {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(write_error)?;
        {
            let mut prepared = tx.prepare_cached(statement).map_err(write_error)?;
            for item in items {
                execute(&mut prepared, item).map_err(write_error)?;
            }
        }
        let also_written = then(&tx).map_err(write_error)?;
        tx.commit().map_err(write_error)?;
        Ok(Some(also_written))
    }
}

/// Rolls up every stored session into the inventory tables, for a database that had sessions
/// before the inventory existed. Runs inside the migration's transaction.
pub(crate) fn rebuild_inventory(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
) -> Result<(), StoreError> {
    let read_error = |source| StoreError::Read {
        path: path.to_owned(),
        source,
    };
    let mut stmt = tx.prepare(&SELECT_ALL).map_err(read_error)?;
    let mut rows = stmt.query([]).map_err(read_error)?;
    let mut rollup = Rollup::default();
    while let Some(row) = rows.next().map_err(read_error)? {
        rollup.add(&record_from_row(path, row)?);
    }
    SqliteRollup::prepare(tx)
        .and_then(|mut tables| rollup.write(&mut tables, &KnownValues::default()))
        .map(drop)
        .map_err(|source| StoreError::Write {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::fixture::{sample_record, TempDir};
    use crate::{Outcome, RefusalReason, Source};

    fn journal_mode(store: &SqliteStore) -> String {
        store
            .conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn a_written_batch_reads_back_equal() {
        let dir = TempDir::new("roundtrip");
        let mut store = SqliteStore::open(&dir.db_path()).unwrap();
        let mut bare = sample_record(2);
        bare.client_addr = "2001:db8::1".parse().unwrap();
        bare.tls_version = None;
        bare.tls_cipher = None;
        bare.offered_max_tls = None;
        bare.sni = None;
        bare.ja4 = None;
        bare.client_id = Vec::new();
        bare.login = None;
        bare.upstream_tls_version = None;
        bare.outcome = Outcome::ClientTlsFailed;
        bare.detail = Some("no shared protocol version: client offered at most TLSv1.0".into());
        bare.bytes_from_client = u64::from(u32::MAX) * 4;
        let mut submission = sample_record(3);
        submission.protocol = "smtp".into();
        submission.envelope_sender = Some("scanner@example.org".into());
        submission.messages_submitted = Some(3);
        let mut null_sender = sample_record(4);
        null_sender.envelope_sender = Some(String::new());
        null_sender.messages_submitted = Some(0);
        let records = vec![sample_record(1), bare, submission, null_sender];

        store.insert_batch(&records).unwrap();

        assert_eq!(store.sessions().unwrap(), records);
        assert_eq!(store.count().unwrap(), 4);
    }

    #[test]
    fn the_envelope_sender_reads_back() {
        // Migrating a database that predates the column is covered by schema's upgrade test.
        let dir = TempDir::new("envelope-sender");
        let mut store = SqliteStore::open(&dir.db_path()).unwrap();
        let mut submission = sample_record(2);
        submission.envelope_sender = Some("printer@example.org".into());
        store
            .insert_batch(&[sample_record(1), submission.clone()])
            .unwrap();
        assert_eq!(
            store.sessions().unwrap(),
            vec![sample_record(1), submission]
        );
    }

    #[test]
    fn a_client_seen_by_two_sources_is_one_client_with_both_listed() {
        let dir = TempDir::new("sources");
        let mut store = SqliteStore::open(&dir.db_path()).unwrap();
        let mut captured = sample_record(1);
        captured.source = Source::Capture;
        let mut bridged = captured.clone();
        bridged.source = Source::Gateway;
        bridged.started_at += Duration::from_secs(60);
        store.insert_batch(&[bridged.clone()]).unwrap();
        store.insert_batch(&[captured.clone()]).unwrap();

        assert_eq!(store.sessions().unwrap(), vec![bridged, captured]);
        let clients = store.clients().unwrap();
        assert_eq!(clients.len(), 1, "one client: {clients:?}");
        // The capture saw it first, though it was stored second; both are listed, earliest
        // first.
        assert_eq!(clients[0].source, Source::Capture);
        assert_eq!(
            clients[0].values(crate::AttributeKind::Source),
            ["capture", "gateway"]
        );
    }

    #[test]
    fn imported_evidence_is_stored_once() {
        let dir = TempDir::new("imported");
        let mut store = SqliteStore::open(&dir.db_path()).unwrap();
        let mut logged = sample_record(1);
        logged.source = Source::DovecotLog;
        let batch = [([1; 16], logged.clone()), ([2; 16], sample_record(2))];
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(
            store
                .insert_imported(&[&batch[0], &batch[1]], now)
                .unwrap()
                .len(),
            2
        );
        // The same evidence again, and one new piece.
        let again = [batch[0].clone(), ([3; 16], sample_record(3))];
        let stored = store.insert_imported(&[&again[0], &again[1]], now).unwrap();
        assert_eq!(stored, [&again[1].1]);
        assert_eq!(store.count().unwrap(), 3);
        assert_eq!(store.clients().unwrap()[0].sessions, 3);
    }

    #[test]
    fn an_entra_sign_in_without_tls_is_not_a_plaintext_login() {
        let dir = TempDir::new("entra");
        let mut store = SqliteStore::open(&dir.db_path()).unwrap();
        let mut sign_in = sample_record(1);
        sign_in.source = Source::EntraSignIns;
        sign_in.tls_version = None;
        sign_in.offered_max_tls = None;
        sign_in.ja4 = None;
        sign_in.client_id = Vec::new();
        let mut plaintext = sign_in.clone();
        plaintext.source = Source::DovecotLog;
        plaintext.login = Some("bob".into());
        store.insert_batch(&[sign_in, plaintext]).unwrap();
        let verdicts: Vec<crate::Verdict> =
            store.clients().unwrap().iter().map(|c| c.verdict).collect();
        assert_eq!(verdicts, [crate::Verdict::Unknown, crate::Verdict::NoTls]);
    }

    #[test]
    fn times_are_stored_as_rfc3339_text_truncated_to_milliseconds() {
        let dir = TempDir::new("times");
        let mut store = SqliteStore::open(&dir.db_path()).unwrap();
        let mut rec = sample_record(1);
        rec.started_at = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        store.insert_batch(&[rec]).unwrap();

        let text: String = store
            .conn
            .query_row("SELECT started_at FROM sessions", [], |row| row.get(0))
            .unwrap();
        assert_eq!(text, "2023-11-14T22:13:20.123Z");
        let back = store.sessions().unwrap();
        assert_eq!(
            back[0].started_at,
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
        );
    }

    #[test]
    fn client_id_is_json_pairs_in_client_order() {
        let dir = TempDir::new("client-id");
        let mut store = SqliteStore::open(&dir.db_path()).unwrap();
        store.insert_batch(&[sample_record(1)]).unwrap();

        let json: String = store
            .conn
            .query_row("SELECT client_id FROM sessions", [], |row| row.get(0))
            .unwrap();
        assert_eq!(
            json,
            r#"[["name","Outlook"],["version","12.0"],["vendor",null]]"#
        );
    }

    #[test]
    fn unicode_survives_every_text_field() {
        let dir = TempDir::new("unicode");
        let mut store = SqliteStore::open(&dir.db_path()).unwrap();
        let mut rec = sample_record(1);
        rec.listener = "Zürich ✉".into();
        rec.sni = Some("bücher.例え.jp".into());
        rec.login = Some("josé.müller@exämple.org".into());
        rec.client_id = vec![
            ("名前".into(), Some("メール 📧".into())),
            ("\"quoted\"\n".into(), None),
        ];
        rec.detail = Some("Ключ отклонён — 🔒".into());
        store.insert_batch(std::slice::from_ref(&rec)).unwrap();

        assert_eq!(store.sessions().unwrap(), vec![rec]);
    }

    #[test]
    fn wal_journaling_and_normal_sync_are_on() {
        let dir = TempDir::new("wal");
        let store = SqliteStore::open(&dir.db_path()).unwrap();
        assert_eq!(journal_mode(&store), "wal");
        let synchronous: i64 = store
            .conn
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .unwrap();
        assert_eq!(synchronous, 1, "1 is NORMAL");
    }

    #[test]
    fn reopening_keeps_records_and_schema_version() {
        let dir = TempDir::new("reopen");
        let mut first = SqliteStore::open(&dir.db_path()).unwrap();
        first.insert_batch(&[sample_record(1)]).unwrap();
        drop(first);

        let mut second = SqliteStore::open(&dir.db_path()).unwrap();
        second.insert_batch(&[sample_record(2)]).unwrap();
        let version: u32 = second
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, schema::LATEST_VERSION);
        assert_eq!(
            second.sessions().unwrap(),
            vec![sample_record(1), sample_record(2)]
        );
        assert_eq!(journal_mode(&second), "wal");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = TempDir::new("newer");
        let store = SqliteStore::open(&dir.db_path()).unwrap();
        store
            .conn
            .pragma_update(None, "user_version", schema::LATEST_VERSION + 1)
            .unwrap();
        drop(store);

        let err = SqliteStore::open(&dir.db_path()).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found, .. } if found == schema::LATEST_VERSION + 1)
        );
        assert!(err.to_string().contains("upgrade mailtls"), "{err}");
    }

    /// A link in the store's folder (which the gateway's unprivileged user owns) must not make
    /// the next start, as root, write to or chown the file it points to.
    #[test]
    fn a_store_or_sidecar_that_is_a_link_is_refused_and_its_target_untouched() {
        for name in ["sessions.db", "sessions.db-wal", "sessions.db-shm"] {
            let dir = TempDir::new("link");
            let target = dir.path().join("target.txt");
            std::fs::write(&target, "not a database").unwrap();
            std::os::unix::fs::symlink(&target, dir.path().join(name)).unwrap();
            let access = StoreAccess {
                owner: Some((65534, 65534)),
                group_readable: false,
            };
            let Err(error) = SqliteStore::open_with_access(&dir.db_path(), access) else {
                panic!("{name}: a link is refused");
            };
            assert!(error.to_string().contains("not a regular file"), "{error}");
            assert_eq!(std::fs::read_to_string(&target).unwrap(), "not a database");
            assert_ne!(std::fs::metadata(&target).unwrap().uid(), 65534, "{name}");
        }
    }

    #[test]
    fn a_missing_directory_is_reported_with_the_path_and_a_fix() {
        let dir = TempDir::new("missing");
        let path = dir.path().join("no-such-dir").join("sessions.db");
        let err = SqliteStore::open(&path).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, StoreError::Access { .. }));
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("check the directory exists"), "{message}");
    }

    /// The permission bits of the database and its WAL and shared-memory files.
    fn modes(db: &Path) -> Vec<(String, u32)> {
        ["", "-wal", "-shm"]
            .iter()
            .map(|suffix| {
                let name = format!("{}{suffix}", db.display());
                let mode = std::fs::metadata(&name)
                    .unwrap_or_else(|e| panic!("{name}: {e}"))
                    .mode();
                (name, mode & 0o777)
            })
            .collect()
    }

    #[test]
    fn a_new_store_and_its_wal_files_are_readable_by_the_owner_alone() {
        let dir = TempDir::new("mode-private");
        let mut store = SqliteStore::open(&dir.db_path()).unwrap();
        store.insert_batch(&[sample_record(1)]).unwrap();
        for (name, mode) in modes(&dir.db_path()) {
            assert_eq!(mode, 0o600, "{name} is {mode:o}");
        }
    }

    #[test]
    fn a_group_readable_store_and_its_wal_files_are_0640() {
        let dir = TempDir::new("mode-group");
        let access = StoreAccess {
            owner: None,
            group_readable: true,
        };
        let mut store = SqliteStore::open_with_access(&dir.db_path(), access).unwrap();
        store.insert_batch(&[sample_record(1)]).unwrap();
        for (name, mode) in modes(&dir.db_path()) {
            assert_eq!(mode, 0o640, "{name} is {mode:o}");
        }
    }

    #[test]
    fn an_existing_stores_mode_is_left_to_the_operator() {
        let dir = TempDir::new("mode-existing");
        drop(SqliteStore::open(&dir.db_path()).unwrap());
        std::fs::set_permissions(dir.db_path(), Permissions::from_mode(0o640)).unwrap();
        drop(SqliteStore::open(&dir.db_path()).unwrap());
        let mode = std::fs::metadata(dir.db_path()).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn the_owner_is_given_to_every_store_file() {
        let dir = TempDir::new("owner");
        // As root (as CI runs), to nobody; otherwise a process may give files only to itself.
        let me = std::fs::metadata(dir.path()).unwrap();
        let owner = if me.uid() == 0 {
            (65534, 65534)
        } else {
            (me.uid(), me.gid())
        };
        let access = StoreAccess {
            owner: Some(owner),
            group_readable: false,
        };
        let mut store = SqliteStore::open_with_access(&dir.db_path(), access).unwrap();
        store.insert_batch(&[sample_record(1)]).unwrap();
        for (name, _) in modes(&dir.db_path()) {
            let meta = std::fs::metadata(&name).unwrap();
            assert_eq!((meta.uid(), meta.gid()), owner, "{name}");
        }
    }

    #[test]
    fn refusal_counts_of_one_minute_add_up_in_one_row() {
        let dir = TempDir::new("refusals");
        let mut store = SqliteStore::open(&dir.db_path()).unwrap();
        let minute = UNIX_EPOCH + Duration::from_secs(1_700_000_040);
        let summary = |addr: &str, reason, count| RefusalSummary {
            minute,
            listener: "imaps".into(),
            client_addr: addr.parse().unwrap(),
            reason,
            count,
        };
        store
            .add_refusals(&[
                summary("192.0.2.7", RefusalReason::ClientLimit, 5_000),
                summary("2001:db8::7", RefusalReason::PreAuthBudget, 1),
            ])
            .unwrap();
        store
            .add_refusals(&[summary("192.0.2.7", RefusalReason::ClientLimit, 5_000)])
            .unwrap();

        assert_eq!(
            store.refusals().unwrap(),
            vec![
                summary("192.0.2.7", RefusalReason::ClientLimit, 10_000),
                summary("2001:db8::7", RefusalReason::PreAuthBudget, 1),
            ]
        );
        let minute_text: String = store
            .conn
            .query_row("SELECT min(minute) FROM refused_connections", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(minute_text, "2023-11-14T22:14:00.000Z");
    }

    #[test]
    fn an_empty_batch_writes_nothing() {
        let dir = TempDir::new("empty");
        let mut store = SqliteStore::open(&dir.db_path()).unwrap();
        store.insert_batch(&[]).unwrap();
        assert_eq!(store.count().unwrap(), 0);
    }

    #[test]
    fn a_hand_edited_row_is_reported_not_misread() {
        let dir = TempDir::new("invalid-row");
        let mut store = SqliteStore::open(&dir.db_path()).unwrap();
        store.insert_batch(&[sample_record(1)]).unwrap();
        store
            .conn
            .execute("UPDATE sessions SET outcome = 'fine'", [])
            .unwrap();

        let err = store.sessions().unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::InvalidRow {
                    column: "outcome",
                    row_id: 1,
                    ..
                }
            ),
            "{err}"
        );
    }
}
