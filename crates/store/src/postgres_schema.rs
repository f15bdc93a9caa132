//! The PostgreSQL store's tables: the steps of `schema.rs` in PostgreSQL's dialect, numbered
//! the same, so a step means the same in both databases. Times are `timestamptz`, days `date`,
//! integers `bigint`; lists stay JSON text as in SQLite.
//!
//! The table `mailtls_schema` holds the number of steps applied. A later change appends a step
//! here and in `schema.rs` (a test checks both lists are the same length).

use postgres::Client;

/// Step `i` moves a database from schema version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: one row per session.
    "CREATE TABLE sessions (
        id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        started_at           timestamptz NOT NULL,
        ended_at             timestamptz NOT NULL,
        listener             text   NOT NULL,
        protocol             text   NOT NULL,
        client_addr          text   NOT NULL,
        client_port          bigint NOT NULL,
        tls_version          text,
        tls_cipher           text,
        offered_max_tls      text,
        sni                  text,
        ja4                  text,
        client_id            text   NOT NULL DEFAULT '[]',
        login                text,
        upstream             text   NOT NULL,
        upstream_tls_version text,
        outcome              text   NOT NULL,
        detail               text,
        bytes_from_client    bigint NOT NULL,
        bytes_to_client      bigint NOT NULL
    );
    CREATE INDEX sessions_by_start ON sessions (started_at);
    CREATE INDEX sessions_by_client ON sessions (client_addr, started_at);",
    // 2: connections refused before their dialogue, counted per minute.
    "CREATE TABLE refused_connections (
        minute      timestamptz NOT NULL,
        listener    text   NOT NULL,
        client_addr text   NOT NULL,
        reason      text   NOT NULL,
        count       bigint NOT NULL,
        PRIMARY KEY (minute, listener, client_addr, reason)
    );",
    // 3: the TLS floor policy's decision.
    "ALTER TABLE sessions ADD COLUMN policy_verdict text,
        ADD COLUMN policy_rule text,
        ADD COLUMN policy_exception bigint;",
    // 4: SMTP's envelope sender.
    "ALTER TABLE sessions ADD COLUMN envelope_sender text;",
    // 5: the client inventory (see `inventory`). No PostgreSQL store predates it, so unlike
    // SQLite's step there are no older sessions to roll up.
    "ALTER TABLE sessions ADD COLUMN offered_versions text NOT NULL DEFAULT '[]',
        ADD COLUMN offered_suites text NOT NULL DEFAULT '[]',
        ADD COLUMN offered_groups text NOT NULL DEFAULT '[]',
        ADD COLUMN offered_signature_algorithms text NOT NULL DEFAULT '[]',
        ADD COLUMN offered_alpn text NOT NULL DEFAULT '[]',
        ADD COLUMN ja3 text;
    CREATE TABLE clients (
        id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        client_addr         text   NOT NULL,
        login               text   NOT NULL,
        ja4                 text   NOT NULL,
        reported_software   text   NOT NULL,
        source              text   NOT NULL,
        first_seen          timestamptz NOT NULL,
        last_seen           timestamptz NOT NULL,
        sessions            bigint NOT NULL,
        highest_offered     bigint,
        lowest_negotiated   bigint,
        highest_negotiated  bigint,
        downgraded_sessions bigint NOT NULL,
        plaintext_logins    bigint NOT NULL,
        UNIQUE (client_addr, login, ja4, reported_software)
    );
    CREATE TABLE client_days (
        client_id          bigint NOT NULL REFERENCES clients (id),
        day                date   NOT NULL,
        sessions           bigint NOT NULL,
        legacy_sessions    bigint NOT NULL,
        plaintext_sessions bigint NOT NULL,
        failed_sessions    bigint NOT NULL,
        PRIMARY KEY (client_id, day)
    );
    CREATE TABLE client_attributes (
        client_id  bigint NOT NULL REFERENCES clients (id),
        kind       text   NOT NULL,
        value      text   NOT NULL,
        first_seen timestamptz NOT NULL,
        PRIMARY KEY (client_id, kind, value)
    );
    CREATE TABLE client_annotations (
        subject_kind text NOT NULL,
        subject      text NOT NULL,
        owner        text,
        device       text,
        note         text,
        updated_at   timestamptz NOT NULL,
        PRIMARY KEY (subject_kind, subject)
    );",
    // 6: what saw the session.
    "ALTER TABLE sessions ADD COLUMN source text NOT NULL DEFAULT 'gateway';",
    // 7: when each exception last let a client through (the register warnings).
    "CREATE INDEX sessions_by_exception ON sessions (policy_exception, started_at)
        WHERE policy_exception IS NOT NULL;",
    // 8: SMTP sessions count the messages the upstream accepted.
    "ALTER TABLE sessions ADD COLUMN messages_submitted bigint;",
    // 9: what `mailtls import` already stored, by a digest of the evidence behind each record.
    "CREATE TABLE imported_evidence (
        digest      bytea NOT NULL PRIMARY KEY,
        source      text  NOT NULL,
        imported_at text  NOT NULL
    );",
    // 10: sessions per UTC day over every client, kept beside `client_days`.
    "CREATE TABLE daily_sessions (
        day                date   PRIMARY KEY,
        sessions           bigint NOT NULL,
        legacy_sessions    bigint NOT NULL,
        plaintext_sessions bigint NOT NULL,
        failed_sessions    bigint NOT NULL
    );
    INSERT INTO daily_sessions
        SELECT day, sum(sessions), sum(legacy_sessions), sum(plaintext_sessions),
               sum(failed_sessions)
        FROM client_days GROUP BY day;",
    // 11: retention deletes imported evidence by when it was imported.
    "CREATE INDEX imported_evidence_by_age ON imported_evidence (imported_at);",
    // 12: the start of what retention keeps (see the SQLite step).
    "CREATE TABLE retention (
        id            integer PRIMARY KEY CHECK (id = 1),
        pruned_before text    NOT NULL
    );",
    // 13: half of each page of the rollups kept free, so the updates every batch makes stay
    // on the row's page (HOT: no new index entry, the old version pruned in place); with full
    // pages most `client_days` updates moved their row and added to its index. Pages already
    // written keep their layout until rewritten.
    "ALTER TABLE clients SET (fillfactor = 50);
    ALTER TABLE client_days SET (fillfactor = 50);",
];

/// The schema version a fully migrated database has.
pub(crate) const LATEST_VERSION: u32 = MIGRATIONS.len() as u32;

/// Why the schema could not be brought up to date.
pub(crate) enum MigrateError {
    Postgres(postgres::Error),
    TooNew(u32),
}

impl From<postgres::Error> for MigrateError {
    fn from(e: postgres::Error) -> MigrateError {
        MigrateError::Postgres(e)
    }
}

/// Any number unlikely to be another application's advisory lock: "mailtls" in ASCII.
const MIGRATION_LOCK: i64 = 0x006d_6169_6c74_6c73;

/// Brings the database up to [`LATEST_VERSION`] in one transaction. The advisory lock makes
/// gateways starting at once against a new database run the steps one after another: the
/// later ones find them done.
pub(crate) fn migrate(client: &mut Client) -> Result<(), MigrateError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS mailtls_schema (version bigint NOT NULL)")?;
    let found: i64 = match tx.query_opt("SELECT version FROM mailtls_schema", &[])? {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO mailtls_schema (version) VALUES (0)", &[])?;
            0
        }
    };
    let found = u32::try_from(found).unwrap_or(u32::MAX);
    if found > LATEST_VERSION {
        return Err(MigrateError::TooNew(found));
    }
    for step in &MIGRATIONS[found as usize..] {
        tx.batch_execute(step)?;
    }
    tx.execute(
        "UPDATE mailtls_schema SET version = $1",
        &[&i64::from(LATEST_VERSION)],
    )?;
    tx.commit()?;
    Ok(())
}
