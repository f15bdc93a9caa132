//! The session store's tables and the migrations that create and evolve them.
//!
//! SQLite's `user_version` holds the number of migrations applied. A later change appends a step to
//! [`MIGRATIONS`]; existing steps are never edited, since deployed databases have already run them.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::StoreError;

/// Step `i` moves a database from schema version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: one row per gateway session. Times are RFC 3339 UTC text (see `timestamp`); `client_id`
    // is a JSON array of [name, value-or-null] pairs, in the order the client sent them.
    "CREATE TABLE sessions (
        id                   INTEGER PRIMARY KEY,
        started_at           TEXT    NOT NULL,
        ended_at             TEXT    NOT NULL,
        listener             TEXT    NOT NULL,
        protocol             TEXT    NOT NULL,
        client_addr          TEXT    NOT NULL,
        client_port          INTEGER NOT NULL,
        tls_version          TEXT,
        tls_cipher           TEXT,
        offered_max_tls      TEXT,
        sni                  TEXT,
        ja4                  TEXT,
        client_id            TEXT    NOT NULL DEFAULT '[]',
        login                TEXT,
        upstream             TEXT    NOT NULL,
        upstream_tls_version TEXT,
        outcome              TEXT    NOT NULL,
        detail               TEXT,
        bytes_from_client    INTEGER NOT NULL,
        bytes_to_client      INTEGER NOT NULL
    );
    CREATE INDEX sessions_by_start ON sessions (started_at);
    CREATE INDEX sessions_by_client ON sessions (client_addr, started_at);",
    // 2: connections refused before their dialogue, counted per minute (RFC 3339 text of its
    // start), listener, client address and reason: a flood adds to a count, not rows.
    "CREATE TABLE refused_connections (
        minute      TEXT    NOT NULL,
        listener    TEXT    NOT NULL,
        client_addr TEXT    NOT NULL,
        reason      TEXT    NOT NULL,
        count       INTEGER NOT NULL,
        PRIMARY KEY (minute, listener, client_addr, reason)
    ) WITHOUT ROWID;",
    // 3: the TLS floor policy's decision on the session's login: verdict, rule id, and the
    // exception that matched.
    "ALTER TABLE sessions ADD COLUMN policy_verdict TEXT;
    ALTER TABLE sessions ADD COLUMN policy_rule TEXT;
    ALTER TABLE sessions ADD COLUMN policy_exception INTEGER;",
    // 4: SMTP sessions name the envelope sender of their first transaction.
    "ALTER TABLE sessions ADD COLUMN envelope_sender TEXT;",
];

/// The schema version a fully migrated database has.
pub(crate) const LATEST_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the database at `path` up to [`LATEST_VERSION`], one transaction per step.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let open_error = |source| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    let found: u32 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(open_error)?;
    if found > LATEST_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_owned(),
            found,
            supported: LATEST_VERSION,
        });
    }
    for (from, step) in (found..).zip(&MIGRATIONS[found as usize..]) {
        let to = from + 1;
        let migrate_error = |source| StoreError::Migrate {
            path: path.to_owned(),
            from,
            to,
            source,
        };
        // IMMEDIATE takes the write lock up front, so two processes opening a new file at once
        // cannot both run the same step.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(migrate_error)?;
        let current: u32 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(migrate_error)?;
        if current >= to {
            continue;
        }
        tx.execute_batch(step).map_err(migrate_error)?;
        tx.pragma_update(None, "user_version", to)
            .map_err(migrate_error)?;
        tx.commit().map_err(migrate_error)?;
    }
    Ok(())
}
