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
    // 5: the client inventory. The sessions already stored are rolled up once every step has
    // run (see `migrate`), since reading them takes every column of the latest schema.
    INVENTORY,
    // 6: what saw the session; every row before this step came from the gateway.
    "ALTER TABLE sessions ADD COLUMN source TEXT NOT NULL DEFAULT 'gateway';",
    // 7: when each exception last let a client through, read hourly by the gateway's register
    // warnings without scanning every session.
    "CREATE INDEX sessions_by_exception ON sessions (policy_exception, started_at)
        WHERE policy_exception IS NOT NULL;",
    // 8: SMTP sessions count the messages the upstream accepted (NULL for other sessions).
    "ALTER TABLE sessions ADD COLUMN messages_submitted INTEGER;",
    // 9: what `mailtls import` already stored, by a digest of the log lines or export row each
    // record came from, so importing the same evidence again adds nothing.
    "CREATE TABLE imported_evidence (
        digest      BLOB NOT NULL PRIMARY KEY,
        source      TEXT NOT NULL,
        imported_at TEXT NOT NULL
    ) WITHOUT ROWID;",
    // 10: sessions per UTC day over every client, kept by the writer beside `client_days`, so
    // a report's sessions-per-day chart reads one row a day instead of one per client and day.
    // Filled from `client_days` here (empty when the inventory's rebuild, which fills it too,
    // is still to run).
    "CREATE TABLE daily_sessions (
        day                TEXT    PRIMARY KEY,
        sessions           INTEGER NOT NULL,
        legacy_sessions    INTEGER NOT NULL,
        plaintext_sessions INTEGER NOT NULL,
        failed_sessions    INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO daily_sessions
        SELECT day, sum(sessions), sum(legacy_sessions), sum(plaintext_sessions),
               sum(failed_sessions)
        FROM client_days GROUP BY day;",
    // 11: retention deletes imported evidence by when it was imported, oldest first.
    "CREATE INDEX imported_evidence_by_age ON imported_evidence (imported_at);",
    // 12: the start of what retention keeps, raised at each pruning: imported evidence older
    // than it is not stored again (its digest may be pruned, and the rollups still count it).
    "CREATE TABLE retention (
        id            INTEGER PRIMARY KEY CHECK (id = 1),
        pruned_before TEXT    NOT NULL
    );",
    // 13: nothing to do in SQLite; PostgreSQL leaves room on the pages of the rollups (see
    // postgres_schema.rs). Kept as a step so both databases number their steps alike.
    "",
];

/// The client inventory (see `inventory` for the identity rule and the verdicts): what each
/// session's ClientHello offered, and rollups the writer keeps up to date in the transaction
/// that stores the sessions, so listing clients never reads `sessions`. Sessions stored before
/// this step are rolled up when it runs.
const INVENTORY: &str = "
    -- JSON arrays of IANA codes (versions as wire codes, 769 is TLS 1.0) and of ALPN names.
    ALTER TABLE sessions ADD COLUMN offered_versions TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE sessions ADD COLUMN offered_suites TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE sessions ADD COLUMN offered_groups TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE sessions ADD COLUMN offered_signature_algorithms TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE sessions ADD COLUMN offered_alpn TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE sessions ADD COLUMN ja3 TEXT;

    -- One row per client identity; '' stands for a part that was not known.
    CREATE TABLE clients (
        id                  INTEGER PRIMARY KEY,
        client_addr         TEXT    NOT NULL,
        login               TEXT    NOT NULL,
        ja4                 TEXT    NOT NULL,
        reported_software   TEXT    NOT NULL,
        source              TEXT    NOT NULL,
        first_seen          TEXT    NOT NULL,
        last_seen           TEXT    NOT NULL,
        sessions            INTEGER NOT NULL,
        -- wire codes; NULL until a hello (offered) or a handshake (negotiated) was seen
        highest_offered     INTEGER,
        lowest_negotiated   INTEGER,
        highest_negotiated  INTEGER,
        -- sessions that offered TLS 1.2 or newer but negotiated older
        downgraded_sessions INTEGER NOT NULL,
        -- sessions that logged in without TLS (a plaintext listener)
        plaintext_logins    INTEGER NOT NULL,
        UNIQUE (client_addr, login, ja4, reported_software)
    );

    -- Per client and UTC day (YYYY-MM-DD): sessions by what they negotiated.
    CREATE TABLE client_days (
        client_id          INTEGER NOT NULL REFERENCES clients (id),
        day                TEXT    NOT NULL,
        sessions           INTEGER NOT NULL,
        legacy_sessions    INTEGER NOT NULL,
        plaintext_sessions INTEGER NOT NULL,
        failed_sessions    INTEGER NOT NULL,
        PRIMARY KEY (client_id, day)
    ) WITHOUT ROWID;

    -- The values a client was seen with, by kind (negotiated, suite, ja3, login, listener,
    -- upstream, sni, alpn), at most 64 per kind and client. Written once per value, so a
    -- client seen again with known values costs reads only.
    CREATE TABLE client_attributes (
        client_id  INTEGER NOT NULL REFERENCES clients (id),
        kind       TEXT    NOT NULL,
        value      TEXT    NOT NULL,
        first_seen TEXT    NOT NULL,
        PRIMARY KEY (client_id, kind, value)
    ) WITHOUT ROWID;

    -- Owner, device and note given by an admin for a client id, a login, an address or a
    -- network (subject spelled as `mailtls clients annotate` takes it).
    CREATE TABLE client_annotations (
        subject_kind TEXT NOT NULL,
        subject      TEXT NOT NULL,
        owner        TEXT,
        device       TEXT,
        note         TEXT,
        updated_at   TEXT NOT NULL,
        PRIMARY KEY (subject_kind, subject)
    );";

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
    if found == LATEST_VERSION {
        return Ok(());
    }
    let migrate_error = |source| StoreError::Migrate {
        path: path.to_owned(),
        from: found,
        to: LATEST_VERSION,
        source,
    };
    // Every pending step in one transaction, so the inventory's rebuild can read the sessions
    // with the latest schema's columns and a crash leaves the database as it was. IMMEDIATE
    // takes the write lock up front, so two processes opening a new file at once cannot both
    // run the steps.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(migrate_error)?;
    let current: u32 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(migrate_error)?;
    if current >= LATEST_VERSION {
        return Ok(());
    }
    let pending = &MIGRATIONS[current as usize..];
    for step in pending {
        tx.execute_batch(step).map_err(migrate_error)?;
    }
    if pending.contains(&INVENTORY) {
        crate::sqlite::rebuild_inventory(&tx, path)?;
    }
    tx.pragma_update(None, "user_version", LATEST_VERSION)
        .map_err(migrate_error)?;
    tx.commit().map_err(migrate_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::params;

    use super::*;
    use crate::fixture::{sample_record, TempDir};
    use crate::{OfferedHello, SessionStore, SqliteStore, Verdict};

    #[test]
    fn a_schema_1_database_is_upgraded_and_its_sessions_rolled_up() {
        let dir = TempDir::new("migrate-1");
        let path = dir.db_path();
        {
            // A database as the release before the inventory left it.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            for (port, tls) in [(1, "TLSv1.0"), (2, "TLSv1.0"), (3, "TLSv1.0")] {
                conn.execute(
                    "INSERT INTO sessions (started_at, ended_at, listener, protocol, client_addr,
                        client_port, tls_version, tls_cipher, offered_max_tls, sni, ja4, client_id,
                        login, upstream, upstream_tls_version, outcome, detail,
                        bytes_from_client, bytes_to_client)
                     VALUES (?1, ?1, 'imaps-legacy', 'imap', '192.0.2.17', ?2, ?3,
                        'ECDHE-RSA-AES128-SHA', 'TLSv1.0', 'mail.example.org',
                        't10d1305h1_c866b44c5a26_e8a9a4eba7c6',
                        '[[\"name\",\"Outlook\"],[\"version\",\"12.0\"],[\"vendor\",null]]',
                        'alice', 'imap.example.org:993', 'TLSv1.3', 'ok', NULL, 10, 20)",
                    params![format!("2026-07-1{port}T08:00:00.000Z"), port, tls],
                )
                .unwrap();
            }
        }

        let mut store = SqliteStore::open(&path).unwrap();
        let version: u32 = store
            .conn()
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, LATEST_VERSION);
        let sessions = store.sessions().unwrap();
        assert_eq!(sessions.len(), 3);
        assert_eq!(sessions[0].offered, OfferedHello::default());
        assert_eq!(sessions[0].login.as_deref(), Some("alice"));
        // Sessions from before the message count have none.
        assert_eq!(sessions[0].messages_submitted, None);

        let clients = store.clients().unwrap();
        assert_eq!(clients.len(), 1, "{clients:?}");
        assert_eq!(clients[0].sessions, 3);
        assert_eq!(clients[0].verdict, Verdict::Breaks);
        assert_eq!(
            clients[0].identity.reported_software.as_deref(),
            Some("Outlook 12.0")
        );

        // New sessions of the same client add to the migrated rollup.
        store.insert_batch(&[sample_record(9)]).unwrap();
        assert_eq!(store.clients().unwrap()[0].sessions, 4);
    }
}
