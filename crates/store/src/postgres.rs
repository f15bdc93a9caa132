//! The fleet store: one PostgreSQL database several gateways write to, holding one inventory.
//!
//! The rollups are maintained in the transaction that stores the sessions, as in SQLite, with
//! `INSERT ... ON CONFLICT DO UPDATE`: PostgreSQL locks the client's row for the upsert, so two
//! gateways adding to one client wait for each other instead of losing an update. Every batch
//! upserts its clients in identity order, so two batches never wait on each other in a
//! circle; a serialization failure or deadlock (e.g. under a stricter default isolation level)
//! is retried all the same.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use openssl::ssl::{SslConnector, SslMethod, SslVersion};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::error::SqlState;
use postgres::{Client, Statement, Transaction};
use postgres_openssl::MakeTlsConnector;
use wire::TlsVersion;
use zeroize::Zeroizing;

use crate::activity::{self, DayRange, SessionCounts};
use crate::annotation::AnnotationIndex;
use crate::inventory::{
    AttributeRow, ClientUpsert, ClientsReader, DailyRow, DayRow, KnownValue, KnownValues, Rollup,
    RollupTables,
};
use crate::postgres_schema::{self, MigrateError};
use crate::refusal::{refusal_from_row, SELECT_REFUSALS};
use crate::session_row::{
    record_from_row, SessionColumns, INSERT_COLUMNS, POSTGRES_TYPES, SELECT_COLUMNS,
};
use crate::{
    timestamp, Annotation, AnnotationSubject, ClientSummary, EvidenceDigest, ExceptionMatches,
    PolicyUse, RefusalSummary, RetainedTable, SessionRecord, SessionStore, Source, StoreError,
    UnexceptedClient,
};

/// The advisory lock a batch's transaction holds, from its last record's identity; two batches
/// sharing one by chance only wait for each other.
fn batch_lock_key(last: &SessionRecord) -> i64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (
        last.client_addr,
        last.client_port,
        last.started_at,
        &last.listener,
    )
        .hash(&mut hasher);
    hasher.finish() as i64
}

/// Asks a new connection whether the writes of a transaction whose commit went unanswered are
/// there (see [`PostgresStore::in_transaction_checked`]).
type LandedCheck<'a> = &'a dyn Fn(&mut Client) -> Result<bool, postgres::Error>;

/// Attempts at a transaction that failed on a serialization failure or deadlock.
const CONFLICT_ATTEMPTS: u32 = 5;
/// How long a connection attempt may take: the writer retries later, the CLI reports it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a PostgreSQL store is and how to log in: a `postgres://user@host:port/db?sslmode=require`
/// URL without password, the password kept apart (from a file or the environment), and the CA
/// to verify the server's certificate against. Debug output never shows the password.
#[derive(Clone)]
pub struct PostgresTarget {
    url: String,
    // Boxed: a location is passed around by value, and the config is most of its size.
    config: Box<postgres::Config>,
    password: Option<Zeroizing<String>>,
    ca_file: Option<PathBuf>,
}

impl PostgresTarget {
    /// Reads `url`; refused when it holds a password (it belongs in a file or the environment,
    /// never in a config or a log), names no user, or asks for anything but `sslmode=require`.
    /// The server's certificate and name are always verified, whatever libpq would do.
    pub fn parse(url: &str) -> Result<PostgresTarget, String> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err("not a postgres:// URL".into());
        }
        let mut config =
            postgres::Config::from_str(url).map_err(|e| format!("not a valid URL: {e}"))?;
        if config.get_password().is_some() {
            return Err("the URL holds a password; give it in password_file or MAILTLS_STORE_PASSWORD instead, so it stays out of the config and the logs".into());
        }
        if config.get_user().is_none() {
            return Err("the URL names no user (postgres://USER@host/db)".into());
        }
        if config.get_ssl_mode() != postgres::config::SslMode::Require {
            return Err("the URL must end in ?sslmode=require: the store holds logins and addresses, and mailtls speaks to it over verified TLS only".into());
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("mailtls");
        Ok(PostgresTarget {
            url: url.to_string(),
            config: Box::new(config),
            password: None,
            ca_file: None,
        })
    }

    /// The password to log in with.
    pub fn with_password(mut self, password: Zeroizing<String>) -> PostgresTarget {
        self.password = Some(password);
        self
    }

    /// The PEM file of the CA(s) the server's certificate must chain to, besides the system's.
    pub fn with_ca_file(mut self, ca_file: PathBuf) -> PostgresTarget {
        self.ca_file = Some(ca_file);
        self
    }

    /// The URL, which holds no password.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn connect(&self) -> Result<Client, StoreError> {
        let tls_error = |e: openssl::error::ErrorStack| StoreError::PostgresTls {
            target: self.url.clone(),
            reason: e.to_string(),
        };
        // Verifies the chain and (in postgres-openssl) the host name, like sslmode=verify-full.
        let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(tls_error)?;
        builder
            .set_min_proto_version(Some(SslVersion::TLS1_2))
            .map_err(tls_error)?;
        if let Some(ca_file) = &self.ca_file {
            builder
                .set_ca_file(ca_file)
                .map_err(|e| StoreError::PostgresTls {
                    target: self.url.clone(),
                    reason: format!("{}: {e}", ca_file.display()),
                })?;
        }
        let mut config = (*self.config).clone();
        if let Some(password) = &self.password {
            config.password(password.as_bytes());
        }
        config
            .connect(MakeTlsConnector::new(builder.build()))
            .map_err(|error| StoreError::Postgres {
                target: self.url.clone(),
                doing: "connect",
                reason: describe(&error),
            })
    }
}

impl fmt::Debug for PostgresTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresTarget")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "(hidden)"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// A live connection with the statements the writer uses prepared on it.
struct Connection {
    client: Client,
    statements: Statements,
}

/// The writer's statements, prepared once per connection.
struct Statements {
    copy_sessions: Statement,
    upsert_clients: Statement,
    upsert_days: Statement,
    upsert_daily: Statement,
    insert_attributes: Statement,
    add_refusal: Statement,
}

/// Session records and the inventory in a PostgreSQL database.
///
/// A lost connection (the server restarted) fails the call that noticed it; the next call
/// connects again, so the recorder's retries carry the writes over an outage.
pub struct PostgresStore {
    target: PostgresTarget,
    // Boxed: the prepared statements make a connection large beside a SQLite store.
    connection: Option<Box<Connection>>,
    known_values: KnownValues,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database and creates or upgrades its tables.
    pub fn open(target: &PostgresTarget) -> Result<PostgresStore, StoreError> {
        let mut store = PostgresStore::unconnected(target);
        store.connection()?;
        Ok(store)
    }

    /// A store that connects at its first use: for a gateway starting while the database is
    /// unreachable, whose records then wait in the recorder's queue until it answers.
    pub fn unconnected(target: &PostgresTarget) -> PostgresStore {
        PostgresStore {
            target: target.clone(),
            connection: None,
            known_values: KnownValues::default(),
        }
    }

    fn error(&self, doing: &'static str) -> impl Fn(postgres::Error) -> StoreError + '_ {
        move |error| StoreError::Postgres {
            target: self.target.url.clone(),
            doing,
            reason: describe(&error),
        }
    }

    /// The connection, made (and the schema brought up to date) when there is none or the
    /// last one was lost.
    fn connection(&mut self) -> Result<&mut Connection, StoreError> {
        let connection = match self.connection.take() {
            Some(live) if !live.client.is_closed() => live,
            _ => Box::new(self.connect()?),
        };
        Ok(self.connection.insert(connection))
    }

    /// A new connection, with the schema brought up to date and the statements prepared.
    fn connect(&self) -> Result<Connection, StoreError> {
        let mut client = self.target.connect()?;
        postgres_schema::migrate(&mut client).map_err(|e| match e {
            MigrateError::Postgres(error) => StoreError::Postgres {
                target: self.target.url.clone(),
                doing: "create or upgrade the tables",
                reason: describe(&error),
            },
            MigrateError::TooNew(found) => StoreError::SchemaTooNew {
                path: PathBuf::from(&self.target.url),
                found,
                supported: postgres_schema::LATEST_VERSION,
            },
        })?;
        prepare(client).map_err(self.error("prepare statements"))
    }

    /// Runs `work` in a transaction, again after a serialization failure or deadlock.
    fn in_transaction<R>(
        &mut self,
        doing: &'static str,
        work: impl FnMut(&mut Transaction<'_>, &Statements) -> Result<R, postgres::Error>,
    ) -> Result<R, StoreError> {
        self.in_transaction_checked(doing, work, None)
    }

    /// [`PostgresStore::in_transaction`]; when the connection is lost while the commit's answer
    /// is awaited, so the commit may or may not have happened, `landed` is asked on a new
    /// connection whether the transaction's writes are there. Without that check a caller
    /// retrying the "failed" write would store it twice.
    fn in_transaction_checked<R>(
        &mut self,
        doing: &'static str,
        mut work: impl FnMut(&mut Transaction<'_>, &Statements) -> Result<R, postgres::Error>,
        landed: Option<LandedCheck<'_>>,
    ) -> Result<R, StoreError> {
        let mut attempt = 1;
        loop {
            let Connection { client, statements } = self.connection()?;
            let outcome = client.transaction().and_then(|mut tx| {
                let value = work(&mut tx, statements)?;
                Ok((tx.commit(), value))
            });
            let error = match outcome {
                Ok((Ok(()), value)) => return Ok(value),
                // No SQL state: the server's answer never came (the connection broke).
                Ok((Err(e), value)) if e.code().is_none() => {
                    let Some(landed) = landed else {
                        return Err(self.error(doing)(e));
                    };
                    let target = self.target.url.clone();
                    let check = self.connection().and_then(|Connection { client, .. }| {
                        landed(client).map_err(|e| StoreError::Postgres {
                            target,
                            doing: "check whether a commit happened",
                            reason: describe(&e),
                        })
                    });
                    return match check {
                        Ok(true) => {
                            tracing::warn!(
                                doing,
                                "the connection broke while a commit was answered; the commit had happened"
                            );
                            Ok(value)
                        }
                        _ => Err(self.error(doing)(e)),
                    };
                }
                Ok((Err(e), _)) | Err(e) => e,
            };
            let conflict = matches!(
                error.code(),
                Some(&SqlState::T_R_SERIALIZATION_FAILURE) | Some(&SqlState::T_R_DEADLOCK_DETECTED)
            );
            if !conflict || attempt >= CONFLICT_ATTEMPTS {
                return Err(self.error(doing)(error));
            }
            attempt += 1;
        }
    }

    /// Every stored session, oldest insert first.
    pub fn sessions(&mut self) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = self.query(
            "read session records",
            &format!("SELECT {SELECT_COLUMNS} FROM sessions ORDER BY id"),
        )?;
        let location = PathBuf::from(&self.target.url);
        rows.iter()
            .map(|row| record_from_row(&location, row))
            .collect()
    }

    /// Every client of the inventory with its annotation, read from the rollups, in id order.
    pub fn clients(&mut self) -> Result<Vec<ClientSummary>, StoreError> {
        let (attributes, clients) = self.in_transaction("read the inventory", |tx, _| {
            // One snapshot for both reads, so no client lacks attributes a writer just added.
            tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
            Ok((
                tx.query(crate::inventory::SELECT_ATTRIBUTES, &[])?,
                tx.query(crate::inventory::SELECT_CLIENTS, &[])?,
            ))
        })?;
        let mut reader = ClientsReader::default();
        let invalid = |reason| StoreError::InvalidRow {
            path: PathBuf::from(&self.target.url),
            row_id: 0,
            column: "clients",
            reason,
        };
        for row in &attributes {
            reader.attribute(row).map_err(invalid)?;
        }
        for row in &clients {
            reader.client(row).map_err(invalid)?;
        }
        let mut clients = reader.finish();
        let annotations = self.annotations()?;
        let index = AnnotationIndex::new(&annotations);
        for client in &mut clients {
            client.annotation = index.annotation_for(client);
        }
        Ok(clients)
    }

    /// Every annotation, oldest first.
    pub fn annotations(&mut self) -> Result<Vec<(AnnotationSubject, Annotation)>, StoreError> {
        let rows = self.query(
            "read annotations",
            "SELECT subject_kind, subject, owner, device, note FROM client_annotations
             ORDER BY updated_at, subject_kind, subject",
        )?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                // A subject this version cannot read is skipped rather than failing the listing.
                let subject = AnnotationSubject::from_stored(row.get(0), row.get(1))?;
                Some((
                    subject,
                    Annotation {
                        owner: row.get(2),
                        device: row.get(3),
                        note: row.get(4),
                    },
                ))
            })
            .collect())
    }

    /// Sets the owner, device and note of `subject`, as [`SqliteStore::annotate`] does.
    ///
    /// [`SqliteStore::annotate`]: crate::SqliteStore::annotate
    pub fn annotate(
        &mut self,
        subject: &AnnotationSubject,
        annotation: &Annotation,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        crate::annotation::check_lengths(annotation)?;
        let exists = self.in_transaction("annotate", |tx, _| {
            if let AnnotationSubject::Client(id) = subject {
                if tx
                    .query_opt("SELECT 1 FROM clients WHERE id = $1", &[id])?
                    .is_none()
                {
                    return Ok(false);
                }
            }
            let [(set_owner, owner), (set_device, device), (set_note, note)] =
                crate::annotation::field_writes(annotation);
            tx.execute(
                "INSERT INTO client_annotations
                     (subject_kind, subject, owner, device, note, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6::text::timestamptz)
                 ON CONFLICT (subject_kind, subject) DO UPDATE SET
                     owner = CASE WHEN $7 THEN excluded.owner ELSE client_annotations.owner END,
                     device = CASE WHEN $8 THEN excluded.device ELSE client_annotations.device END,
                     note = CASE WHEN $9 THEN excluded.note ELSE client_annotations.note END,
                     updated_at = excluded.updated_at",
                &[
                    &subject.kind(),
                    &subject.key(),
                    &owner,
                    &device,
                    &note,
                    &timestamp::format(now),
                    &set_owner,
                    &set_device,
                    &set_note,
                ],
            )?;
            Ok(true)
        })?;
        match (exists, subject) {
            (false, AnnotationSubject::Client(id)) => Err(StoreError::AnnotationRefused(format!(
                "no client c{id} in the inventory (see `mailtls clients`)"
            ))),
            _ => Ok(()),
        }
    }

    /// Number of stored sessions.
    pub fn count(&mut self) -> Result<u64, StoreError> {
        let rows = self.query("count sessions", "SELECT count(*) FROM sessions")?;
        let count: i64 = rows.first().map_or(0, |row| row.get(0));
        Ok(count.unsigned_abs())
    }

    /// The start of what retention keeps: the latest cutoff a pruning used, if any.
    pub fn pruned_before(&mut self) -> Result<Option<SystemTime>, StoreError> {
        let rows = self.query(
            "read the retention cutoff",
            "SELECT pruned_before FROM retention WHERE id = 1",
        )?;
        Ok(rows
            .first()
            .and_then(|row| timestamp::parse(row.get::<_, &str>(0)).ok()))
    }

    /// Raises the start of what retention keeps to `cutoff` (never lowers it).
    pub fn raise_pruned_before(&mut self, cutoff: SystemTime) -> Result<(), StoreError> {
        let cutoff = timestamp::format(cutoff);
        self.in_transaction("record the retention cutoff", |tx, _| {
            tx.execute(
                "INSERT INTO retention (id, pruned_before) VALUES (1, $1)
                 ON CONFLICT (id) DO UPDATE
                 SET pruned_before = GREATEST(retention.pruned_before, excluded.pruned_before)",
                &[&cutoff],
            )
        })
        .map(drop)
    }

    /// Every stored count of refused connections, by minute, listener, address and reason.
    pub fn refusals(&mut self) -> Result<Vec<RefusalSummary>, StoreError> {
        let rows = self.query("read refusal counts", SELECT_REFUSALS)?;
        rows.iter()
            .map(|row| {
                refusal_from_row(row).map_err(|(column, reason)| StoreError::InvalidRow {
                    path: PathBuf::from(&self.target.url),
                    row_id: 0,
                    column,
                    reason,
                })
            })
            .collect()
    }

    /// Deletes at most `limit` rows of `table` older than `cutoff`, oldest first, in one
    /// transaction; returns how many went. The rollups keep pruned sessions counted.
    pub fn prune(
        &mut self,
        table: RetainedTable,
        cutoff: SystemTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        // Neither refused_connections nor imported_evidence has a single-column id to name a
        // batch of rows by; `ctid` names any table's rows within one statement.
        let sql = match table {
            RetainedTable::Sessions => {
                "DELETE FROM sessions WHERE id IN (
                     SELECT id FROM sessions WHERE started_at < $1::text::timestamptz
                     ORDER BY started_at LIMIT $2)"
            }
            RetainedTable::RefusedConnections => {
                "DELETE FROM refused_connections WHERE ctid IN (
                     SELECT ctid FROM refused_connections WHERE minute < $1::text::timestamptz
                     ORDER BY minute LIMIT $2)"
            }
            RetainedTable::ImportedEvidence => {
                "DELETE FROM imported_evidence WHERE ctid IN (
                     SELECT ctid FROM imported_evidence WHERE imported_at < $1
                     ORDER BY imported_at LIMIT $2)"
            }
        };
        let cutoff = timestamp::format(cutoff);
        self.in_transaction("prune old rows", |tx, _| {
            tx.execute(sql, &[&cutoff, &i64::from(limit)])
        })
    }

    /// What the exception register's warnings are judged from (see [`SqliteStore::policy_use`]
    /// for the meaning, which this shares).
    ///
    /// [`SqliteStore::policy_use`]: crate::SqliteStore::policy_use
    pub fn policy_use(&mut self, since: SystemTime) -> Result<PolicyUse, StoreError> {
        let since = timestamp::format(since);
        let (first, matched, unexcepted) =
            self.in_transaction("read the policy's use", |tx, _| {
                tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
                let first: Option<SystemTime> = tx
                    .query_one(
                        "SELECT MIN(started_at) FROM sessions WHERE source = $1",
                        &[&Source::Gateway.as_str()],
                    )?
                    .get(0);
                let matched = tx.query(
                    "SELECT policy_exception, MAX(started_at), COUNT(*) FROM sessions
                 WHERE policy_exception IS NOT NULL
                 GROUP BY policy_exception ORDER BY policy_exception",
                    &[],
                )?;
                let unexcepted = tx.query(
                    "SELECT client_addr, login, ja4, tls_version, policy_rule, MAX(started_at),
                    COUNT(*)
                 FROM sessions
                 WHERE policy_rule IS NOT NULL AND policy_exception IS NULL
                    AND started_at >= $1::text::timestamptz
                 GROUP BY client_addr, login, ja4, tls_version, policy_rule
                 ORDER BY client_addr, login, ja4, tls_version, policy_rule",
                    &[&since],
                )?;
                Ok((first, matched, unexcepted))
            })?;
        let invalid = |column: &'static str, reason: String| StoreError::InvalidRow {
            path: PathBuf::from(&self.target.url),
            row_id: 0,
            column,
            reason,
        };
        let mut exception_matches = Vec::new();
        for row in &matched {
            let id: i64 = row.get(0);
            let id = u32::try_from(id)
                .map_err(|_| invalid("policy_exception", format!("{id} is not an exception id")))?;
            exception_matches.push(ExceptionMatches {
                id,
                last_matched: row.get(1),
                sessions: row.get::<_, i64>(2).unsigned_abs(),
            });
        }
        let mut clients = Vec::new();
        for row in &unexcepted {
            let address: String = row.get(0);
            let version: Option<String> = row.get(3);
            clients.push(UnexceptedClient {
                client_addr: address
                    .parse()
                    .map_err(|e: std::net::AddrParseError| invalid("client_addr", e.to_string()))?,
                login: row.get(1),
                ja4: row.get(2),
                tls_version: version
                    .map(|label| {
                        TlsVersion::from_config_str(&label).ok_or_else(|| {
                            invalid("tls_version", format!("{label:?} is not a TLS version"))
                        })
                    })
                    .transpose()?,
                policy_rule: row.get(4),
                last_seen: row.get(5),
                sessions: row.get::<_, i64>(6).unsigned_abs(),
            });
        }
        Ok(PolicyUse {
            first_session: first,
            exception_matches,
            unexcepted: clients,
        })
    }

    /// Stores the records of `batch` whose digest was never imported before, and remembers
    /// the digests, in one transaction (see [`SqliteStore::insert_imported`]); returns the
    /// records stored.
    ///
    /// [`SqliteStore::insert_imported`]: crate::SqliteStore::insert_imported
    pub fn insert_imported<'b>(
        &mut self,
        batch: &[&'b (EvidenceDigest, SessionRecord)],
        now: SystemTime,
    ) -> Result<Vec<&'b SessionRecord>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let imported_at = timestamp::format(now);
        let digests: Vec<Vec<u8>> = batch.iter().map(|(d, _)| d.to_vec()).collect();
        let sources: Vec<&str> = batch.iter().map(|(_, r)| r.source.as_str()).collect();
        let known = std::mem::take(&mut self.known_values);
        let written = self.in_transaction("write imported records", |tx, statements| {
            let added: HashSet<Vec<u8>> = tx
                .query(
                    "INSERT INTO imported_evidence (digest, source, imported_at)
                     SELECT d, s, $3 FROM unnest($1::bytea[], $2::text[]) AS t(d, s)
                     ON CONFLICT (digest) DO NOTHING RETURNING digest",
                    &[&digests, &sources, &imported_at],
                )?
                .iter()
                .map(|row| row.get(0))
                .collect();
            // The first record of each new digest (a batch may hold a digest twice).
            let mut taken = HashSet::new();
            let new: Vec<usize> = batch
                .iter()
                .enumerate()
                .filter(|(_, (digest, _))| {
                    added.contains(&digest[..]) && taken.insert(digest.to_vec())
                })
                .map(|(i, _)| i)
                .collect();
            if new.is_empty() {
                return Ok((new, Vec::new()));
            }
            let checked = write_sessions(tx, statements, new.iter().map(|&i| &batch[i].1), &known)?;
            Ok((new, checked))
        });
        self.known_values = known;
        let (new, checked) = written?;
        self.known_values.extend(checked);
        Ok(new.into_iter().map(|i| &batch[i].1).collect())
    }

    /// Sessions per UTC day within `range`, summed over every client, oldest day first.
    pub fn daily_sessions(
        &mut self,
        range: DayRange,
    ) -> Result<Vec<(time::Date, SessionCounts)>, StoreError> {
        let (since, until) = range.dates();
        let rows = self.in_transaction("read sessions per day", |tx, _| {
            tx.query(
                "SELECT day::text, sessions, legacy_sessions, plaintext_sessions,
                    failed_sessions
                 FROM daily_sessions
                 WHERE ($1::text IS NULL OR day >= $1::date)
                   AND ($2::text IS NULL OR day <= $2::date)
                 ORDER BY day",
                &[&since, &until],
            )
        })?;
        rows.iter()
            .map(|row| {
                let text: String = row.get(0);
                let day = activity::parse_day(&text).ok_or_else(|| StoreError::InvalidRow {
                    path: PathBuf::from(&self.target.url),
                    row_id: 0,
                    column: "day",
                    reason: format!("invalid day {text:?}"),
                })?;
                Ok((day, session_counts(row, 1)))
            })
            .collect()
    }

    /// Sessions per client id within `range`; clients without sessions in it are absent.
    pub fn client_sessions(
        &mut self,
        range: DayRange,
    ) -> Result<HashMap<i64, SessionCounts>, StoreError> {
        let (since, until) = range.dates();
        let rows = self.in_transaction("read sessions per client", |tx, _| {
            tx.query(
                "SELECT client_id, sum(sessions)::bigint, sum(legacy_sessions)::bigint,
                    sum(plaintext_sessions)::bigint, sum(failed_sessions)::bigint
                 FROM client_days
                 WHERE ($1::text IS NULL OR day >= $1::date)
                   AND ($2::text IS NULL OR day <= $2::date)
                 GROUP BY client_id",
                &[&since, &until],
            )
        })?;
        Ok(rows
            .iter()
            .map(|row| (row.get::<_, i64>(0), session_counts(row, 1)))
            .collect())
    }

    fn query(&mut self, doing: &'static str, sql: &str) -> Result<Vec<postgres::Row>, StoreError> {
        self.in_transaction(doing, |tx, _| tx.query(sql, &[]))
    }
}

/// Four counters from `first` on: sessions, legacy, plaintext, failed (never negative).
fn session_counts(row: &postgres::Row, first: usize) -> SessionCounts {
    let at = |i: usize| row.get::<_, i64>(first + i).unsigned_abs();
    SessionCounts {
        sessions: at(0),
        legacy_sessions: at(1),
        plaintext_sessions: at(2),
        failed_sessions: at(3),
    }
}

/// What went wrong, for the operator: the server's own message and SQLSTATE when it answered
/// (the client's Display says only "db error"), else the client's error and its root cause.
fn describe(error: &postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let top = error.to_string();
    let root = cause.to_string();
    if top.contains(&root) {
        top
    } else {
        // The library's text repeats its cause's; keep one copy.
        format!("{}: {root}", top.split(": ").next().unwrap_or(&top))
    }
}

/// Prepares the writer's statements on a new connection.
fn prepare(mut client: Client) -> Result<Connection, postgres::Error> {
    let statements = Statements {
        copy_sessions: client.prepare(&COPY_SESSIONS)?,
        upsert_clients: client.prepare(UPSERT_CLIENTS)?,
        upsert_days: client.prepare(UPSERT_DAYS)?,
        upsert_daily: client.prepare(UPSERT_DAILY)?,
        insert_attributes: client.prepare(INSERT_ATTRIBUTES)?,
        add_refusal: client.prepare(ADD_REFUSAL)?,
    };
    Ok(Connection { client, statements })
}

/// A batch of sessions in one COPY, each value in its column's binary form: the server parses
/// no text and evaluates no expression per row, which made the `unnest` INSERT of text arrays
/// the largest cost of a batch (see bench/README.md).
static COPY_SESSIONS: LazyLock<String> =
    LazyLock::new(|| format!("COPY sessions ({INSERT_COLUMNS}) FROM STDIN (FORMAT binary)"));

/// Stores `records` and adds them to the rollups within `tx`; returns the attribute values
/// written or checked, for the writer's [`KnownValues`] once `tx` commits.
fn write_sessions<'r>(
    tx: &mut Transaction<'_>,
    statements: &Statements,
    records: impl Iterator<Item = &'r SessionRecord> + Clone,
    known: &KnownValues,
) -> Result<Vec<KnownValue>, postgres::Error> {
    let mut copy = BinaryCopyInWriter::new(tx.copy_in(&statements.copy_sessions)?, &POSTGRES_TYPES);
    for record in records.clone() {
        copy.write(&SessionColumns::of(record).postgres_params())?;
    }
    copy.finish()?;
    let mut rollup = Rollup::default();
    records.for_each(|record| rollup.add(record));
    rollup.write(&mut PostgresRollup { tx, statements }, known)
}

/// The rollup tables as one transaction writes them.
struct PostgresRollup<'a, 't> {
    tx: &'a mut Transaction<'t>,
    statements: &'a Statements,
}

impl RollupTables for PostgresRollup<'_, '_> {
    type Error = postgres::Error;

    fn upsert_clients(&mut self, clients: &[ClientUpsert]) -> Result<Vec<i64>, postgres::Error> {
        let text = |f: fn(&ClientUpsert) -> &str| clients.iter().map(f).collect::<Vec<_>>();
        let number = |f: fn(&ClientUpsert) -> i64| clients.iter().map(f).collect::<Vec<_>>();
        let version =
            |f: fn(&ClientUpsert) -> Option<i64>| clients.iter().map(f).collect::<Vec<_>>();
        let rows = self.tx.query(
            &self.statements.upsert_clients,
            &[
                &text(|c| &c.client_addr),
                &text(|c| &c.login),
                &text(|c| &c.ja4),
                &text(|c| &c.reported_software),
                &text(|c| c.source),
                &text(|c| &c.first_seen),
                &text(|c| &c.last_seen),
                &number(|c| c.sessions),
                &version(|c| c.highest_offered),
                &version(|c| c.lowest_negotiated),
                &version(|c| c.highest_negotiated),
                &number(|c| c.downgraded_sessions),
                &number(|c| c.plaintext_logins),
            ],
        )?;
        let ids: HashMap<(String, String, String, String), i64> = rows
            .iter()
            .map(|row| ((row.get(1), row.get(2), row.get(3), row.get(4)), row.get(0)))
            .collect();
        Ok(clients
            .iter()
            .map(|c| {
                // Every client given was inserted or updated, so each has its id here.
                ids.get(&(
                    c.client_addr.clone(),
                    c.login.clone(),
                    c.ja4.clone(),
                    c.reported_software.clone(),
                ))
                .copied()
                .unwrap_or_default()
            })
            .collect())
    }

    fn upsert_days(&mut self, days: &[DayRow]) -> Result<(), postgres::Error> {
        if days.is_empty() {
            return Ok(());
        }
        let count = |i: usize| days.iter().map(|d| d.counts[i]).collect::<Vec<_>>();
        self.tx
            .execute(
                &self.statements.upsert_days,
                &[
                    &days.iter().map(|d| d.client_id).collect::<Vec<_>>(),
                    &days.iter().map(|d| d.day.as_str()).collect::<Vec<_>>(),
                    &count(0),
                    &count(1),
                    &count(2),
                    &count(3),
                ],
            )
            .map(drop)
    }

    fn upsert_daily(&mut self, days: &[DailyRow]) -> Result<(), postgres::Error> {
        if days.is_empty() {
            return Ok(());
        }
        let count = |i: usize| days.iter().map(|d| d.counts[i]).collect::<Vec<_>>();
        self.tx
            .execute(
                &self.statements.upsert_daily,
                &[
                    &days.iter().map(|d| d.day.as_str()).collect::<Vec<_>>(),
                    &count(0),
                    &count(1),
                    &count(2),
                    &count(3),
                ],
            )
            .map(drop)
    }

    fn insert_attributes(&mut self, attributes: &[AttributeRow]) -> Result<(), postgres::Error> {
        if attributes.is_empty() {
            return Ok(());
        }
        self.tx
            .execute(
                &self.statements.insert_attributes,
                &[
                    &attributes.iter().map(|a| a.client_id).collect::<Vec<_>>(),
                    &attributes.iter().map(|a| a.kind).collect::<Vec<_>>(),
                    &attributes
                        .iter()
                        .map(|a| a.value.as_str())
                        .collect::<Vec<_>>(),
                    &attributes
                        .iter()
                        .map(|a| a.first_seen.as_str())
                        .collect::<Vec<_>>(),
                    &(crate::MAX_VALUES_PER_KIND as i64),
                ],
            )
            .map(drop)
    }
}

impl SessionStore for PostgresStore {
    /// Writes the whole batch and its rollups in one transaction: all records are stored, or
    /// none.
    fn insert_batch(&mut self, records: &[SessionRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        // Taken out for the transaction's closure, which borrows the store; put back after.
        let known = std::mem::take(&mut self.known_values);
        // A batch is written whole or not at all, so its last record being there proves the
        // commit: no two sessions share a client address and port, start and listener. The
        // writing transaction holds an advisory lock keyed by that record, which the check
        // takes first: a commit still under way when the connection broke ends before the
        // check looks.
        let last = records.last().expect("a batch that is not empty");
        let lock = batch_lock_key(last);
        let landed = |client: &mut Client| -> Result<bool, postgres::Error> {
            let mut tx = client.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock])?;
            let found = tx.query_one(
                "SELECT EXISTS (SELECT 1 FROM sessions WHERE client_addr = $1
                     AND started_at = $2::text::timestamptz AND client_port = $3
                     AND listener = $4 AND source = $5)",
                &[
                    &last.client_addr.to_string(),
                    &timestamp::format(last.started_at),
                    &i64::from(last.client_port),
                    &last.listener,
                    &last.source.as_str(),
                ],
            )?;
            tx.commit()?;
            Ok(found.get(0))
        };
        let written = self.in_transaction_checked(
            "write session records",
            |tx, statements| {
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock])?;
                write_sessions(tx, statements, records.iter(), &known)
            },
            Some(&landed),
        );
        self.known_values = known;
        let checked: Vec<KnownValue> = written?;
        self.known_values.extend(checked);
        Ok(())
    }

    fn add_refusals(&mut self, summaries: &[RefusalSummary]) -> Result<(), StoreError> {
        if summaries.is_empty() {
            return Ok(());
        }
        self.in_transaction("write refusal counts", |tx, statements| {
            for summary in summaries {
                tx.execute(
                    &statements.add_refusal,
                    &[
                        &timestamp::format(summary.minute),
                        &summary.listener,
                        &summary.client_addr.to_string(),
                        &summary.reason.as_str(),
                        &i64::try_from(summary.count).unwrap_or(i64::MAX),
                    ],
                )?;
            }
            Ok(())
        })
    }
}

const ADD_REFUSAL: &str = "INSERT INTO refused_connections
        (minute, listener, client_addr, reason, count)
    VALUES ($1::text::timestamptz, $2, $3, $4, $5)
    ON CONFLICT (minute, listener, client_addr, reason)
    DO UPDATE SET count = refused_connections.count + excluded.count";

// greatest() and least() skip NULLs, which SQLite's max() and min() do not. Rows go in the
// order given (identity order), so concurrent writers lock client rows in one order.
const UPSERT_CLIENTS: &str = "INSERT INTO clients (
        client_addr, login, ja4, reported_software, source, first_seen, last_seen, sessions,
        highest_offered, lowest_negotiated, highest_negotiated, downgraded_sessions,
        plaintext_logins
    )
    SELECT a, l, j, r, s, f::timestamptz, ls::timestamptz, n, ho, lo, hn, d, p
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::text[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[],
                $12::bigint[], $13::bigint[])
         WITH ORDINALITY AS t(a, l, j, r, s, f, ls, n, ho, lo, hn, d, p, i)
    ORDER BY i
    ON CONFLICT (client_addr, login, ja4, reported_software) DO UPDATE SET
        source = CASE WHEN excluded.first_seen < clients.first_seen
                      THEN excluded.source ELSE clients.source END,
        first_seen = least(clients.first_seen, excluded.first_seen),
        last_seen = greatest(clients.last_seen, excluded.last_seen),
        sessions = clients.sessions + excluded.sessions,
        highest_offered = greatest(clients.highest_offered, excluded.highest_offered),
        lowest_negotiated = least(clients.lowest_negotiated, excluded.lowest_negotiated),
        highest_negotiated = greatest(clients.highest_negotiated, excluded.highest_negotiated),
        downgraded_sessions = clients.downgraded_sessions + excluded.downgraded_sessions,
        plaintext_logins = clients.plaintext_logins + excluded.plaintext_logins
    RETURNING id, client_addr, login, ja4, reported_software";

const UPSERT_DAYS: &str = "INSERT INTO client_days (
        client_id, day, sessions, legacy_sessions, plaintext_sessions, failed_sessions
    )
    SELECT c, d::date, s, l, p, f
    FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[],
                $6::bigint[]) AS t(c, d, s, l, p, f)
    ON CONFLICT (client_id, day) DO UPDATE SET
        sessions = client_days.sessions + excluded.sessions,
        legacy_sessions = client_days.legacy_sessions + excluded.legacy_sessions,
        plaintext_sessions = client_days.plaintext_sessions + excluded.plaintext_sessions,
        failed_sessions = client_days.failed_sessions + excluded.failed_sessions";

const UPSERT_DAILY: &str = "INSERT INTO daily_sessions (
        day, sessions, legacy_sessions, plaintext_sessions, failed_sessions
    )
    SELECT d::date, s, l, p, f
    FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[])
        AS t(d, s, l, p, f)
    ON CONFLICT (day) DO UPDATE SET
        sessions = daily_sessions.sessions + excluded.sessions,
        legacy_sessions = daily_sessions.legacy_sessions + excluded.legacy_sessions,
        plaintext_sessions = daily_sessions.plaintext_sessions + excluded.plaintext_sessions,
        failed_sessions = daily_sessions.failed_sessions + excluded.failed_sessions";

/// New values only, and per client and kind no more than `$5` in all: the values not yet
/// stored are ranked by value (the order SQLite's writer inserts them in) and those past the
/// cap left out. The client's row, locked by the upsert earlier in the transaction, keeps two
/// writers from racing past the cap.
const INSERT_ATTRIBUTES: &str = "INSERT INTO client_attributes (client_id, kind, value, first_seen)
    SELECT c, k, v, f::timestamptz FROM (
        SELECT c, k, v, f, row_number() OVER (PARTITION BY c, k ORDER BY v) AS rank
        FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS t(c, k, v, f)
        WHERE NOT EXISTS (SELECT 1 FROM client_attributes a
                          WHERE a.client_id = t.c AND a.kind = t.k AND a.value = t.v)
    ) AS fresh
    WHERE rank + (SELECT count(*) FROM client_attributes a
                  WHERE a.client_id = fresh.c AND a.kind = fresh.k) <= $5::bigint
    ON CONFLICT (client_id, kind, value) DO NOTHING";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dialects_have_the_same_schema_steps() {
        assert_eq!(
            postgres_schema::LATEST_VERSION,
            crate::schema::LATEST_VERSION,
            "append the new schema step to both schema.rs and postgres_schema.rs"
        );
    }

    #[test]
    fn a_url_with_a_password_or_without_tls_is_refused() {
        let with_password =
            PostgresTarget::parse("postgres://gw:s3cret@db.example.org/mailtls?sslmode=require")
                .unwrap_err();
        assert!(with_password.contains("password_file"), "{with_password}");
        assert!(!with_password.contains("s3cret"), "{with_password}");
        for url in [
            "postgres://gw@db.example.org/mailtls",
            "postgres://gw@db.example.org/mailtls?sslmode=disable",
            "postgres://gw@db.example.org/mailtls?sslmode=prefer",
        ] {
            let error = PostgresTarget::parse(url).unwrap_err();
            assert!(error.contains("sslmode=require"), "{url}: {error}");
        }
        assert!(
            PostgresTarget::parse("postgres://db.example.org/mailtls?sslmode=require")
                .unwrap_err()
                .contains("no user")
        );
        assert!(PostgresTarget::parse("/var/lib/mailtls/mailtls.db").is_err());
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let target =
            PostgresTarget::parse("postgres://gw@db.example.org:5433/mailtls?sslmode=require")
                .unwrap()
                .with_password(Zeroizing::new("s3cret-pw".to_string()));
        let shown = format!("{target:?} {}", target.url());
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(shown.contains("(hidden)"), "{shown}");
    }
}
