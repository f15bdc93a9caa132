//! What can go wrong with the session store, phrased for the operator who has to fix it.

use std::path::PathBuf;

/// An error from opening, writing or reading a session store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or configured.
    #[error(
        "cannot open session store at {path}: {source}; check the directory exists and is writable"
    )]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite reported.
        source: rusqlite::Error,
    },
    /// A store file could not be created with its mode or given to its owner.
    #[error("cannot set up session store file {path}: {source}; check the directory exists and that mailtls runs as root or as the file's owner")]
    Access {
        /// The database file or one of its `-wal`/`-shm` files.
        path: PathBuf,
        /// What the system reported.
        source: std::io::Error,
    },
    /// A schema migration failed; it was rolled back, so the file is as it was.
    #[error("cannot upgrade session store at {path} from schema version {from} to {to}: {source}; the upgrade was rolled back, check the file is writable and not corrupt (sqlite3 FILE 'PRAGMA integrity_check')")]
    Migrate {
        /// The database file.
        path: PathBuf,
        /// Schema version found in the file.
        from: u32,
        /// Schema version the failed step was moving to.
        to: u32,
        /// What SQLite reported.
        source: rusqlite::Error,
    },
    /// The file was written by a newer mailtls whose schema this version does not know.
    #[error("session store at {path} has schema version {found}, newer than the {supported} this mailtls understands; upgrade mailtls or point it at another database file")]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// Schema version found in the file.
        found: u32,
        /// Newest schema version this build knows.
        supported: u32,
    },
    /// A batch of records could not be written; nothing of the batch was stored.
    #[error("cannot write session records to {path}: {source}; check free disk space and that no other process holds a long write lock on the database")]
    Write {
        /// The database file.
        path: PathBuf,
        /// What SQLite reported.
        source: rusqlite::Error,
    },
    /// The PostgreSQL store could not be reached, set up, written or read. For writes nothing
    /// of the batch was stored.
    #[error("PostgreSQL session store {target}: cannot {doing}: {reason}; check that the server runs and is reachable, and the user, password, database and TLS certificate (ca_file)")]
    Postgres {
        /// The store's URL (which never holds the password).
        target: String,
        /// What was being done: "connect", "write session records", ...
        doing: &'static str,
        /// What the server or the client library reported, with its cause.
        reason: String,
    },
    /// The TLS setup for PostgreSQL failed, e.g. an unreadable CA file.
    #[error("PostgreSQL session store {target}: cannot set up TLS: {reason}; check ca_file is a readable PEM file")]
    PostgresTls {
        /// The store's URL.
        target: String,
        /// What OpenSSL reported.
        reason: String,
    },
    /// An annotation was refused: the reason says why and what to do.
    #[error("cannot annotate: {0}")]
    AnnotationRefused(String),
    /// Records could not be read.
    #[error("cannot read session records from {path}: {source}; check the file is a mailtls session store and not corrupt")]
    Read {
        /// The database file.
        path: PathBuf,
        /// What SQLite reported.
        source: rusqlite::Error,
    },
    /// A stored row holds a value this crate never writes, e.g. after a manual edit.
    #[error(
        "session row {row_id} in {path} has an invalid {column}: {reason}; fix or delete that row"
    )]
    InvalidRow {
        /// The database file.
        path: PathBuf,
        /// The row's `id` column.
        row_id: i64,
        /// The offending column.
        column: &'static str,
        /// Why the value was rejected.
        reason: String,
    },
}
