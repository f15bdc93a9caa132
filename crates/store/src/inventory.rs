//! The client inventory: which clients use the gateway, what TLS they offer and get, and how
//! much their TLS setup risks the retirement of TLS 1.0/1.1.
//!
//! # Who is a client (the identity rule)
//!
//! A client is the tuple of what a session tells about it, each part empty when not known:
//! 1. the client's address (after any PROXY protocol header);
//! 2. the login it used (none when it never tried one);
//! 3. the JA4 fingerprint of its ClientHello (none on a plaintext connection);
//! 4. the software it reported in IMAP ID, as `name version` (none when it sent no ID).
//!
//! Two sessions belong to one client exactly when all four parts are equal: a device that
//! upgrades its software or TLS library, moves address or changes account becomes a new client,
//! and the old one stops being seen (its `last_seen` says so). [`ClientIdentity::of`] is the
//! only place that applies the rule; the writer and the migration that rolls up older
//! databases both go through it.
//!
//! # Rollups
//!
//! The writer adds every batch of sessions to three tables in the transaction that stores the
//! sessions: `clients` (one row per identity, with totals), `client_days` (per client and UTC
//! day) and `client_attributes` (the values seen per kind, at most [`MAX_VALUES_PER_KIND`] per
//! kind). Listing clients reads those, never `sessions`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::str::FromStr;
use std::time::SystemTime;

use rusqlite::{params, CachedStatement, OptionalExtension, Transaction};
use wire::TlsVersion;

use crate::stored_row::StoredRow;
use crate::{timestamp, Outcome, SessionRecord, Source};

/// Most values kept per kind of attribute and client: a client sending a new SNI each session
/// must not grow its row without end.
pub const MAX_VALUES_PER_KIND: usize = 64;

/// Longest reported software (`name version` from IMAP ID) kept, in bytes.
const MAX_REPORTED_SOFTWARE_BYTES: usize = 128;

/// One client under the identity rule of this module.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientIdentity {
    /// The client's address.
    pub address: IpAddr,
    /// The login it used.
    pub login: Option<String>,
    /// JA4 of its ClientHello.
    pub ja4: Option<String>,
    /// `name version` from its IMAP ID, at most 128 bytes.
    pub reported_software: Option<String>,
}

impl ClientIdentity {
    /// The client a session belongs to.
    pub fn of(record: &SessionRecord) -> ClientIdentity {
        ClientIdentity {
            address: record.client_addr,
            login: record.login.clone(),
            ja4: record.ja4.clone(),
            reported_software: reported_software(&record.client_id),
        }
    }
}

/// `name version` from IMAP ID fields (names compared without case, as RFC 2971 says);
/// `None` when the client sent no name.
fn reported_software(fields: &[(String, Option<String>)]) -> Option<String> {
    let field = |wanted: &str| {
        fields
            .iter()
            .find(|(name, value)| name.eq_ignore_ascii_case(wanted) && value.is_some())
            .and_then(|(_, value)| value.as_deref())
    };
    let name = field("name")?;
    let mut text = match field("version") {
        Some(version) => format!("{name} {version}"),
        None => name.to_string(),
    };
    if text.len() > MAX_REPORTED_SOFTWARE_BYTES {
        let mut end = MAX_REPORTED_SOFTWARE_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    Some(text)
}

/// How a client fares when its legacy TLS stops working, in order of risk (the order lists
/// are sorted in): one that breaks, one that works only until its settings are fixed, one
/// without TLS at all, one never seen to finish a handshake, one that is fine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// It offers nothing above TLS 1.1: it cannot reach a server that requires TLS 1.2.
    Breaks,
    /// It offers TLS 1.2 or newer yet negotiated older: a configuration problem to fix.
    AtRisk,
    /// It logs in without TLS (a plaintext listener).
    NoTls,
    /// No handshake or login was ever seen, e.g. it spoke plaintext on a TLS port.
    Unknown,
    /// It negotiated TLS 1.2 or newer and nothing older.
    Ok,
}

impl Verdict {
    /// Every verdict, in order of risk.
    pub const ALL: [Verdict; 5] = [
        Verdict::Breaks,
        Verdict::AtRisk,
        Verdict::NoTls,
        Verdict::Unknown,
        Verdict::Ok,
    ];

    /// The spelling used in output and on the command line: `breaks`, `no_tls`, `at_risk`,
    /// `ok`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Breaks => "breaks",
            Verdict::NoTls => "no_tls",
            Verdict::AtRisk => "at_risk",
            Verdict::Ok => "ok",
            Verdict::Unknown => "unknown",
        }
    }

    /// The verdict of a client from its totals.
    fn judge(totals: &Totals) -> Verdict {
        let tls12 = TlsVersion::Tls12.wire();
        if totals.highest_offered.is_some_and(|v| v < tls12) {
            Verdict::Breaks
        } else if totals.plaintext_logins > 0 {
            Verdict::NoTls
        } else if totals.downgraded_sessions > 0 {
            Verdict::AtRisk
        } else if totals.lowest_negotiated.is_some() {
            Verdict::Ok
        } else {
            Verdict::Unknown
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verdict spelled other than [`Verdict::as_str`] says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown verdict {0:?}: use breaks, no_tls, at_risk, ok or unknown")]
pub struct UnknownVerdict(pub String);

impl FromStr for Verdict {
    type Err = UnknownVerdict;

    fn from_str(s: &str) -> Result<Verdict, UnknownVerdict> {
        Verdict::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownVerdict(s.to_string()))
    }
}

/// The kinds of values the inventory keeps per client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AttributeKind {
    /// TLS versions negotiated (`TLSv1.0`).
    Negotiated,
    /// Cipher suites negotiated (OpenSSL names).
    Suite,
    /// JA3 hashes.
    Ja3,
    /// Logins.
    Login,
    /// Listeners the client came through.
    Listener,
    /// Upstreams its sessions were bridged to.
    Upstream,
    /// Server names asked for.
    Sni,
    /// ALPN protocols offered.
    Alpn,
    /// What saw its sessions ([`Source`] labels).
    Source,
}

impl AttributeKind {
    const ALL: [AttributeKind; 9] = [
        AttributeKind::Negotiated,
        AttributeKind::Suite,
        AttributeKind::Ja3,
        AttributeKind::Login,
        AttributeKind::Listener,
        AttributeKind::Upstream,
        AttributeKind::Sni,
        AttributeKind::Alpn,
        AttributeKind::Source,
    ];

    fn as_str(self) -> &'static str {
        match self {
            AttributeKind::Negotiated => "negotiated",
            AttributeKind::Suite => "suite",
            AttributeKind::Ja3 => "ja3",
            AttributeKind::Login => "login",
            AttributeKind::Listener => "listener",
            AttributeKind::Upstream => "upstream",
            AttributeKind::Sni => "sni",
            AttributeKind::Alpn => "alpn",
            AttributeKind::Source => "source",
        }
    }

    fn parse(text: &str) -> Option<AttributeKind> {
        AttributeKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// A client as the inventory lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSummary {
    /// The client's id in this store (`mailtls clients annotate c17`).
    pub id: i64,
    /// Who the client is.
    pub identity: ClientIdentity,
    /// What saw its earliest session; every source is in its [`AttributeKind::Source`] values.
    pub source: Source,
    /// Start of its first session.
    pub first_seen: SystemTime,
    /// Start of its latest session.
    pub last_seen: SystemTime,
    /// Sessions seen.
    pub sessions: u64,
    /// Highest version any of its hellos offered.
    pub highest_offered: Option<TlsVersion>,
    /// Versions it negotiated, oldest first.
    pub negotiated: Vec<TlsVersion>,
    /// The values seen per kind, in the order they were first seen.
    pub attributes: BTreeMap<AttributeKind, Vec<String>>,
    /// The verdict.
    pub verdict: Verdict,
    /// Owner, device and note, each from the most specific annotation naming this client that
    /// sets it.
    pub annotation: Option<crate::Annotation>,
}

impl ClientSummary {
    /// The values of one kind, in the order they were first seen.
    pub fn values(&self, kind: AttributeKind) -> &[String] {
        self.attributes.get(&kind).map_or(&[], Vec::as_slice)
    }

    /// The software: what the client reported in IMAP ID, else what its fingerprint is known
    /// to be (see `known_software`), else `None`.
    pub fn software(&self) -> Option<String> {
        self.identity.reported_software.clone().or_else(|| {
            self.identity
                .ja4
                .as_deref()
                .and_then(crate::known_software::software_for_ja4)
                .map(|known| format!("{known} (by fingerprint)"))
        })
    }
}

/// The client-level numbers the verdict is judged from (wire codes for versions).
#[derive(Debug, Clone, Default, PartialEq)]
struct Totals {
    highest_offered: Option<u16>,
    lowest_negotiated: Option<u16>,
    highest_negotiated: Option<u16>,
    downgraded_sessions: u64,
    plaintext_logins: u64,
}

/// Counts of one client on one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct DayCounts {
    sessions: u64,
    legacy: u64,
    plaintext: u64,
    failed: u64,
}

/// One client's share of a batch.
#[derive(Debug, Default)]
struct ClientDelta {
    /// The source of the batch's earliest session.
    source: Option<Source>,
    first_seen: String,
    last_seen: String,
    sessions: u64,
    totals: Totals,
    days: BTreeMap<String, DayCounts>,
    /// Each value with the start of its first session in the batch.
    attributes: BTreeMap<(AttributeKind, String), String>,
}

/// A client's value of one kind, as `client_attributes` keys it.
pub(crate) type KnownValue = (i64, AttributeKind, String);

/// The attribute values a store's writer knows are stored (or refused by the cap), so a
/// client seen again with them costs no statement. Emptied when it reaches
/// [`KnownValues::MAX`], which bounds its memory to tens of megabytes.
#[derive(Debug, Default)]
pub(crate) struct KnownValues {
    values: HashSet<KnownValue>,
}

impl KnownValues {
    const MAX: usize = 500_000;

    /// Remembers values written in a committed transaction.
    pub(crate) fn extend(&mut self, committed: Vec<KnownValue>) {
        if self.values.len() + committed.len() > Self::MAX {
            self.values.clear();
        }
        self.values.extend(committed);
    }
}

/// A batch of sessions summed per client, then added to the rollup tables in one pass, so a
/// client polling every minute costs one row update per batch rather than per session.
#[derive(Debug, Default)]
pub(crate) struct Rollup {
    // Ordered, so new clients of a batch get their ids in one reproducible order.
    clients: BTreeMap<ClientIdentity, ClientDelta>,
}

impl Rollup {
    /// Adds one session.
    pub(crate) fn add(&mut self, record: &SessionRecord) {
        let started = timestamp::format(record.started_at);
        let delta = self.clients.entry(ClientIdentity::of(record)).or_default();
        if delta.sessions == 0 || started < delta.first_seen {
            delta.first_seen = started.clone();
            delta.source = Some(record.source);
        }
        if started > delta.last_seen {
            delta.last_seen = started.clone();
        }
        delta.sessions += 1;

        let offered = record.offered_max_tls.map(TlsVersion::wire);
        let negotiated = record.tls_version.map(TlsVersion::wire);
        let tls12 = TlsVersion::Tls12.wire();
        let totals = &mut delta.totals;
        totals.highest_offered = totals.highest_offered.max(offered);
        totals.highest_negotiated = totals.highest_negotiated.max(negotiated);
        totals.lowest_negotiated = match (totals.lowest_negotiated, negotiated) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let downgraded =
            offered.is_some_and(|o| o >= tls12) && negotiated.is_some_and(|n| n < tls12);
        let plaintext = is_plaintext_login(record);
        totals.downgraded_sessions += u64::from(downgraded);
        totals.plaintext_logins += u64::from(plaintext);

        let day = delta.days.entry(started[..10].to_string()).or_default();
        day.sessions += 1;
        day.legacy += u64::from(negotiated.is_some_and(|n| n < tls12));
        day.plaintext += u64::from(plaintext);
        day.failed += u64::from(record.outcome != Outcome::Ok);

        let values = [
            (
                AttributeKind::Negotiated,
                record.tls_version.map(|v| v.as_str().to_string()),
            ),
            (AttributeKind::Suite, record.tls_cipher.clone()),
            (AttributeKind::Ja3, record.offered.ja3.clone()),
            (AttributeKind::Login, record.login.clone()),
            (AttributeKind::Listener, Some(record.listener.clone())),
            (AttributeKind::Upstream, Some(record.upstream.clone())),
            (AttributeKind::Sni, record.sni.clone()),
            (
                AttributeKind::Source,
                Some(record.source.as_str().to_string()),
            ),
        ];
        let alpn = record
            .offered
            .alpn
            .iter()
            .map(|a| (AttributeKind::Alpn, Some(a.clone())));
        for (kind, value) in values.into_iter().chain(alpn) {
            let Some(value) = value else { continue };
            let first = delta
                .attributes
                .entry((kind, value))
                .or_insert_with(|| started.clone());
            if started < *first {
                *first = started.clone();
            }
        }
    }

    /// Adds the batch to the rollup tables through `tables` (statements of the transaction
    /// that stores the sessions). Values in `known` are skipped; the values written or checked
    /// are returned, for the caller to add to `known` once the transaction commits.
    pub(crate) fn write<T: RollupTables>(
        self,
        tables: &mut T,
        known: &KnownValues,
    ) -> Result<Vec<KnownValue>, T::Error> {
        let (upserts, seen): (Vec<ClientUpsert>, Vec<_>) = self
            .clients
            .into_iter()
            .map(|(identity, delta)| {
                let totals = &delta.totals;
                let upsert = ClientUpsert {
                    client_addr: identity.address.to_string(),
                    login: identity.login.unwrap_or_default(),
                    ja4: identity.ja4.unwrap_or_default(),
                    reported_software: identity.reported_software.unwrap_or_default(),
                    source: delta.source.unwrap_or(Source::Gateway).as_str(),
                    first_seen: delta.first_seen,
                    last_seen: delta.last_seen,
                    sessions: count(delta.sessions),
                    highest_offered: totals.highest_offered.map(i64::from),
                    lowest_negotiated: totals.lowest_negotiated.map(i64::from),
                    highest_negotiated: totals.highest_negotiated.map(i64::from),
                    downgraded_sessions: count(totals.downgraded_sessions),
                    plaintext_logins: count(totals.plaintext_logins),
                };
                (upsert, (delta.days, delta.attributes))
            })
            .unzip();
        // Clients first, in identity order: concurrent writers lock client rows in one order.
        let ids = tables.upsert_clients(&upserts)?;
        let mut days = Vec::new();
        let mut attributes = Vec::new();
        let mut checked = Vec::new();
        for (id, (client_days, client_attributes)) in ids.into_iter().zip(seen) {
            for (day, counts) in client_days {
                days.push(DayRow {
                    client_id: id,
                    day,
                    counts: [
                        count(counts.sessions),
                        count(counts.legacy),
                        count(counts.plaintext),
                        count(counts.failed),
                    ],
                });
            }
            for ((kind, value), first_seen) in client_attributes {
                let key = (id, kind, value);
                if known.values.contains(&key) {
                    continue;
                }
                attributes.push(AttributeRow {
                    client_id: id,
                    kind: kind.as_str(),
                    value: key.2.clone(),
                    first_seen,
                });
                checked.push(key);
            }
        }
        // Every client's days summed per day, for the chart of all sessions; written last, as
        // concurrent writers share these rows.
        let mut daily: BTreeMap<String, [i64; 4]> = BTreeMap::new();
        for row in &days {
            let sums = daily.entry(row.day.clone()).or_default();
            for (sum, n) in sums.iter_mut().zip(row.counts) {
                *sum += n;
            }
        }
        let daily: Vec<DailyRow> = daily
            .into_iter()
            .map(|(day, counts)| DailyRow { day, counts })
            .collect();
        tables.upsert_days(&days)?;
        tables.insert_attributes(&attributes)?;
        tables.upsert_daily(&daily)?;
        Ok(checked)
    }
}

/// All clients' counts of one UTC day (`YYYY-MM-DD`): sessions, legacy, plaintext, failed.
pub(crate) struct DailyRow {
    pub(crate) day: String,
    pub(crate) counts: [i64; 4],
}

/// A client's counts of one UTC day (`YYYY-MM-DD`): sessions, legacy, plaintext, failed.
pub(crate) struct DayRow {
    pub(crate) client_id: i64,
    pub(crate) day: String,
    pub(crate) counts: [i64; 4],
}

/// A value a client was seen with, and the start of its first session with it.
pub(crate) struct AttributeRow {
    pub(crate) client_id: i64,
    pub(crate) kind: &'static str,
    pub(crate) value: String,
    pub(crate) first_seen: String,
}

/// One client's share of a batch as its `clients` row takes it (times as RFC 3339 text, wire
/// codes of versions).
pub(crate) struct ClientUpsert {
    pub(crate) client_addr: String,
    pub(crate) login: String,
    pub(crate) ja4: String,
    pub(crate) reported_software: String,
    pub(crate) source: &'static str,
    pub(crate) first_seen: String,
    pub(crate) last_seen: String,
    pub(crate) sessions: i64,
    pub(crate) highest_offered: Option<i64>,
    pub(crate) lowest_negotiated: Option<i64>,
    pub(crate) highest_negotiated: Option<i64>,
    pub(crate) downgraded_sessions: i64,
    pub(crate) plaintext_logins: i64,
}

/// The rollup tables of one database, written within the transaction that stores the sessions.
pub(crate) trait RollupTables {
    type Error;

    /// Adds each client's share of a batch to its row, creating missing ones; returns their
    /// ids in the order given.
    fn upsert_clients(&mut self, clients: &[ClientUpsert]) -> Result<Vec<i64>, Self::Error>;

    /// Adds each row's counts to its client's day.
    fn upsert_days(&mut self, days: &[DayRow]) -> Result<(), Self::Error>;

    /// Adds each row's counts to the day's total over all clients.
    fn upsert_daily(&mut self, days: &[DailyRow]) -> Result<(), Self::Error>;

    /// Adds values the clients were seen with, skipping those stored already and, per client
    /// and kind, those beyond [`MAX_VALUES_PER_KIND`] (the first by value are kept).
    fn insert_attributes(&mut self, attributes: &[AttributeRow]) -> Result<(), Self::Error>;
}

/// SQLite's rollup statements, cached on the transaction's connection.
pub(crate) struct SqliteRollup<'t> {
    upsert_client: CachedStatement<'t>,
    upsert_day: CachedStatement<'t>,
    upsert_daily: CachedStatement<'t>,
    insert_attribute: CachedStatement<'t>,
}

impl<'t> SqliteRollup<'t> {
    pub(crate) fn prepare(tx: &'t Transaction<'_>) -> rusqlite::Result<SqliteRollup<'t>> {
        Ok(SqliteRollup {
            upsert_client: tx.prepare_cached(UPSERT_CLIENT)?,
            upsert_day: tx.prepare_cached(UPSERT_DAY)?,
            upsert_daily: tx.prepare_cached(UPSERT_DAILY)?,
            insert_attribute: tx.prepare_cached(INSERT_ATTRIBUTE)?,
        })
    }
}

impl RollupTables for SqliteRollup<'_> {
    type Error = rusqlite::Error;

    fn upsert_clients(&mut self, clients: &[ClientUpsert]) -> rusqlite::Result<Vec<i64>> {
        clients
            .iter()
            .map(|c| {
                self.upsert_client.query_row(
                    params![
                        c.client_addr,
                        c.login,
                        c.ja4,
                        c.reported_software,
                        c.source,
                        c.first_seen,
                        c.last_seen,
                        c.sessions,
                        c.highest_offered,
                        c.lowest_negotiated,
                        c.highest_negotiated,
                        c.downgraded_sessions,
                        c.plaintext_logins,
                    ],
                    |row| row.get(0),
                )
            })
            .collect()
    }

    fn upsert_days(&mut self, days: &[DayRow]) -> rusqlite::Result<()> {
        for row in days {
            let [sessions, legacy, plaintext, failed] = row.counts;
            self.upsert_day.execute(params![
                row.client_id,
                row.day,
                sessions,
                legacy,
                plaintext,
                failed
            ])?;
        }
        Ok(())
    }

    fn upsert_daily(&mut self, days: &[DailyRow]) -> rusqlite::Result<()> {
        for row in days {
            let [sessions, legacy, plaintext, failed] = row.counts;
            self.upsert_daily
                .execute(params![row.day, sessions, legacy, plaintext, failed])?;
        }
        Ok(())
    }

    fn insert_attributes(&mut self, attributes: &[AttributeRow]) -> rusqlite::Result<()> {
        for row in attributes {
            self.insert_attribute.execute(params![
                row.client_id,
                row.kind,
                row.value,
                row.first_seen,
                MAX_VALUES_PER_KIND as i64
            ])?;
        }
        Ok(())
    }
}

/// A login without TLS: only a listener configured without TLS lets one through. A source
/// that never knows about TLS (see [`Source::knows_tls`]) reports none.
fn is_plaintext_login(record: &SessionRecord) -> bool {
    record.login.is_some()
        && record.tls_version.is_none()
        && record.offered_max_tls.is_none()
        && record.source.knows_tls()
}

/// Counts are far below 2^63; saturate rather than fail a batch.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

// SQLite's max()/min() of a value and NULL is NULL, hence the coalesce and nullif around them.
const UPSERT_CLIENT: &str = "INSERT INTO clients (
        client_addr, login, ja4, reported_software, source, first_seen, last_seen, sessions,
        highest_offered, lowest_negotiated, highest_negotiated, downgraded_sessions,
        plaintext_logins
    ) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
    ON CONFLICT (client_addr, login, ja4, reported_software) DO UPDATE SET
        -- SET reads the row as it was, so this compares with the stored first_seen
        source = CASE WHEN excluded.first_seen < first_seen THEN excluded.source ELSE source END,
        first_seen = min(first_seen, excluded.first_seen),
        last_seen = max(last_seen, excluded.last_seen),
        sessions = sessions + excluded.sessions,
        highest_offered = nullif(max(coalesce(highest_offered, -1),
                                     coalesce(excluded.highest_offered, -1)), -1),
        lowest_negotiated = nullif(min(coalesce(lowest_negotiated, 65536),
                                       coalesce(excluded.lowest_negotiated, 65536)), 65536),
        highest_negotiated = nullif(max(coalesce(highest_negotiated, -1),
                                        coalesce(excluded.highest_negotiated, -1)), -1),
        downgraded_sessions = downgraded_sessions + excluded.downgraded_sessions,
        plaintext_logins = plaintext_logins + excluded.plaintext_logins
    RETURNING id";

const UPSERT_DAY: &str = "INSERT INTO client_days (
        client_id, day, sessions, legacy_sessions, plaintext_sessions, failed_sessions
    ) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
    ON CONFLICT (client_id, day) DO UPDATE SET
        sessions = sessions + excluded.sessions,
        legacy_sessions = legacy_sessions + excluded.legacy_sessions,
        plaintext_sessions = plaintext_sessions + excluded.plaintext_sessions,
        failed_sessions = failed_sessions + excluded.failed_sessions";

const UPSERT_DAILY: &str = "INSERT INTO daily_sessions (
        day, sessions, legacy_sessions, plaintext_sessions, failed_sessions
    ) VALUES (?1, ?2, ?3, ?4, ?5)
    ON CONFLICT (day) DO UPDATE SET
        sessions = sessions + excluded.sessions,
        legacy_sessions = legacy_sessions + excluded.legacy_sessions,
        plaintext_sessions = plaintext_sessions + excluded.plaintext_sessions,
        failed_sessions = failed_sessions + excluded.failed_sessions";

/// Inserts a value not yet known, while the client has fewer than `?5` of that kind; a known
/// value is only looked up. (A value first seen earlier than stored, which only a batch of
/// older records could bring, keeps the stored time.)
const INSERT_ATTRIBUTE: &str = "INSERT INTO client_attributes (client_id, kind, value, first_seen)
    SELECT ?1, ?2, ?3, ?4
    WHERE NOT EXISTS (SELECT 1 FROM client_attributes
                      WHERE client_id = ?1 AND kind = ?2 AND value = ?3)
      AND (SELECT count(*) FROM client_attributes WHERE client_id = ?1 AND kind = ?2) < ?5";

pub(crate) const SELECT_CLIENTS: &str = "SELECT id, client_addr, login, ja4, reported_software,
        source, first_seen, last_seen, sessions, highest_offered, lowest_negotiated,
        highest_negotiated, downgraded_sessions, plaintext_logins
    FROM clients ORDER BY id";

pub(crate) const SELECT_ATTRIBUTES: &str = "SELECT client_id, kind, value FROM client_attributes
    ORDER BY client_id, kind, first_seen, value";

/// Assembles the inventory from the rows of [`SELECT_ATTRIBUTES`], then of [`SELECT_CLIENTS`],
/// fed one at a time whichever database they come from.
#[derive(Default)]
pub(crate) struct ClientsReader {
    attributes: HashMap<i64, BTreeMap<AttributeKind, Vec<String>>>,
    clients: Vec<ClientSummary>,
}

impl ClientsReader {
    /// Takes one row of [`SELECT_ATTRIBUTES`].
    pub(crate) fn attribute(&mut self, row: &impl StoredRow) -> Result<(), String> {
        let id = row.integer("client_id")?;
        let kind = row.text("kind")?;
        let kind = AttributeKind::parse(&kind).ok_or_else(|| format!("attribute kind {kind:?}"))?;
        self.attributes
            .entry(id)
            .or_default()
            .entry(kind)
            .or_default()
            .push(row.text("value")?);
        Ok(())
    }

    /// Takes one row of [`SELECT_CLIENTS`], after every attribute.
    pub(crate) fn client(&mut self, row: &impl StoredRow) -> Result<(), String> {
        let id = row.integer("id")?;
        let nonempty = |text: String| (!text.is_empty()).then_some(text);
        let address = row.text("client_addr")?;
        let version = |column| -> Result<Option<u16>, String> {
            Ok(row
                .optional_integer(column)?
                .and_then(|c| u16::try_from(c).ok()))
        };
        let totals = Totals {
            highest_offered: version("highest_offered")?,
            lowest_negotiated: version("lowest_negotiated")?,
            highest_negotiated: version("highest_negotiated")?,
            downgraded_sessions: row.count("downgraded_sessions")?,
            plaintext_logins: row.count("plaintext_logins")?,
        };
        let attributes = self.attributes.remove(&id).unwrap_or_default();
        let mut negotiated: Vec<TlsVersion> = attributes
            .get(&AttributeKind::Negotiated)
            .into_iter()
            .flatten()
            .filter_map(|label| TlsVersion::from_config_str(label))
            .collect();
        negotiated.sort_unstable();
        self.clients.push(ClientSummary {
            id,
            identity: ClientIdentity {
                address: address
                    .parse()
                    .map_err(|_| format!("address {address:?}"))?,
                login: nonempty(row.text("login")?),
                ja4: nonempty(row.text("ja4")?),
                reported_software: nonempty(row.text("reported_software")?),
            },
            source: row
                .text("source")?
                .parse()
                .map_err(|e: crate::UnknownSource| e.to_string())?,
            first_seen: row.time("first_seen")?,
            last_seen: row.time("last_seen")?,
            sessions: row.count("sessions")?,
            highest_offered: totals.highest_offered.and_then(TlsVersion::from_wire),
            negotiated,
            attributes,
            verdict: Verdict::judge(&totals),
            annotation: None,
        });
        Ok(())
    }

    /// The clients, in id order.
    pub(crate) fn finish(self) -> Vec<ClientSummary> {
        self.clients
    }
}

/// Every client in the inventory, read from the rollup tables only.
pub(crate) fn read_clients(
    conn: &rusqlite::Connection,
) -> Result<Vec<ClientSummary>, InventoryRowError> {
    let mut reader = ClientsReader::default();
    let mut stmt = conn.prepare(SELECT_ATTRIBUTES)?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        reader.attribute(row).map_err(InventoryRowError::Invalid)?;
    }
    let mut stmt = conn.prepare(SELECT_CLIENTS)?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        reader.client(row).map_err(InventoryRowError::Invalid)?;
    }
    Ok(reader.finish())
}

/// Whether a client with this id exists.
pub(crate) fn client_exists(conn: &rusqlite::Connection, id: i64) -> rusqlite::Result<bool> {
    conn.query_row("SELECT 1 FROM clients WHERE id = ?1", [id], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
}

/// Why the inventory tables could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InventoryRowError {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error("invalid inventory row: {0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests;
