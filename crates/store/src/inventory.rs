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

use rusqlite::{params, OptionalExtension, Transaction};
use wire::TlsVersion;

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

/// How a client fares when its legacy TLS stops working, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// It offers nothing above TLS 1.1: it cannot reach a server that requires TLS 1.2.
    Breaks,
    /// It logs in without TLS (a plaintext listener).
    NoTls,
    /// It offers TLS 1.2 or newer yet negotiated older: a configuration problem to fix.
    AtRisk,
    /// It negotiated TLS 1.2 or newer and nothing older.
    Ok,
    /// No handshake or login was ever seen, e.g. it spoke plaintext on a TLS port.
    Unknown,
}

impl Verdict {
    /// Every verdict, worst first.
    pub const ALL: [Verdict; 5] = [
        Verdict::Breaks,
        Verdict::NoTls,
        Verdict::AtRisk,
        Verdict::Ok,
        Verdict::Unknown,
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
    /// Owner, device and note from the most specific annotation naming this client.
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

    /// Adds the batch to the rollup tables within `tx`. Values in `known` are skipped; the
    /// values written or checked are returned, for the caller to add to `known` once `tx`
    /// commits.
    pub(crate) fn write(
        self,
        tx: &Transaction<'_>,
        known: &KnownValues,
    ) -> rusqlite::Result<Vec<KnownValue>> {
        let mut checked = Vec::new();
        let mut upsert_client = tx.prepare_cached(UPSERT_CLIENT)?;
        let mut upsert_day = tx.prepare_cached(UPSERT_DAY)?;
        let mut insert_attribute = tx.prepare_cached(INSERT_ATTRIBUTE)?;
        for (identity, delta) in self.clients {
            let totals = &delta.totals;
            let id: i64 = upsert_client.query_row(
                params![
                    identity.address.to_string(),
                    identity.login.unwrap_or_default(),
                    identity.ja4.unwrap_or_default(),
                    identity.reported_software.unwrap_or_default(),
                    delta.source.unwrap_or(Source::Gateway).as_str(),
                    delta.first_seen,
                    delta.last_seen,
                    count(delta.sessions),
                    totals.highest_offered,
                    totals.lowest_negotiated,
                    totals.highest_negotiated,
                    count(totals.downgraded_sessions),
                    count(totals.plaintext_logins),
                ],
                |row| row.get(0),
            )?;
            for (day, counts) in delta.days {
                upsert_day.execute(params![
                    id,
                    day,
                    count(counts.sessions),
                    count(counts.legacy),
                    count(counts.plaintext),
                    count(counts.failed),
                ])?;
            }
            for ((kind, value), first_seen) in delta.attributes {
                let key = (id, kind, value);
                if known.values.contains(&key) {
                    continue;
                }
                insert_attribute.execute(params![
                    id,
                    kind.as_str(),
                    key.2,
                    first_seen,
                    MAX_VALUES_PER_KIND as i64,
                ])?;
                checked.push(key);
            }
        }
        Ok(checked)
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

/// Inserts a value not yet known, while the client has fewer than `?5` of that kind; a known
/// value is only looked up. (A value first seen earlier than stored, which only a batch of
/// older records could bring, keeps the stored time.)
const INSERT_ATTRIBUTE: &str = "INSERT INTO client_attributes (client_id, kind, value, first_seen)
    SELECT ?1, ?2, ?3, ?4
    WHERE NOT EXISTS (SELECT 1 FROM client_attributes
                      WHERE client_id = ?1 AND kind = ?2 AND value = ?3)
      AND (SELECT count(*) FROM client_attributes WHERE client_id = ?1 AND kind = ?2) < ?5";

const SELECT_CLIENTS: &str = "SELECT id, client_addr, login, ja4, reported_software, source,
        first_seen, last_seen, sessions, highest_offered, lowest_negotiated, highest_negotiated,
        downgraded_sessions, plaintext_logins
    FROM clients ORDER BY id";

const SELECT_ATTRIBUTES: &str = "SELECT client_id, kind, value FROM client_attributes
    ORDER BY client_id, kind, first_seen, value";

/// Every client in the inventory, read from the rollup tables only.
pub(crate) fn read_clients(
    conn: &rusqlite::Connection,
) -> Result<Vec<ClientSummary>, InventoryRowError> {
    let mut attributes: HashMap<i64, BTreeMap<AttributeKind, Vec<String>>> = HashMap::new();
    {
        let mut stmt = conn.prepare(SELECT_ATTRIBUTES)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let kind: String = row.get(1)?;
            let kind = AttributeKind::parse(&kind)
                .ok_or_else(|| InventoryRowError::Invalid(format!("attribute kind {kind:?}")))?;
            attributes
                .entry(id)
                .or_default()
                .entry(kind)
                .or_default()
                .push(row.get(2)?);
        }
    }
    let mut stmt = conn.prepare(SELECT_CLIENTS)?;
    let mut rows = stmt.query([])?;
    let mut clients = Vec::new();
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let nonempty = |text: String| (!text.is_empty()).then_some(text);
        let address: String = row.get(1)?;
        let time = |i: usize| -> Result<SystemTime, InventoryRowError> {
            let text: String = row.get(i)?;
            timestamp::parse(&text).map_err(InventoryRowError::Invalid)
        };
        let version = |i: usize| -> Result<Option<u16>, InventoryRowError> {
            let code: Option<i64> = row.get(i)?;
            Ok(code.and_then(|c| u16::try_from(c).ok()))
        };
        let counter = |i: usize| -> Result<u64, InventoryRowError> {
            let n: i64 = row.get(i)?;
            Ok(n.unsigned_abs())
        };
        let totals = Totals {
            highest_offered: version(9)?,
            lowest_negotiated: version(10)?,
            highest_negotiated: version(11)?,
            downgraded_sessions: counter(12)?,
            plaintext_logins: counter(13)?,
        };
        let attributes = attributes.remove(&id).unwrap_or_default();
        let mut negotiated: Vec<TlsVersion> = attributes
            .get(&AttributeKind::Negotiated)
            .into_iter()
            .flatten()
            .filter_map(|label| TlsVersion::from_config_str(label))
            .collect();
        negotiated.sort_unstable();
        clients.push(ClientSummary {
            id,
            identity: ClientIdentity {
                address: address
                    .parse()
                    .map_err(|_| InventoryRowError::Invalid(format!("address {address:?}")))?,
                login: nonempty(row.get(2)?),
                ja4: nonempty(row.get(3)?),
                reported_software: nonempty(row.get(4)?),
            },
            source: row
                .get::<_, String>(5)?
                .parse()
                .map_err(|e: crate::UnknownSource| InventoryRowError::Invalid(e.to_string()))?,
            first_seen: time(6)?,
            last_seen: time(7)?,
            sessions: counter(8)?,
            highest_offered: totals.highest_offered.and_then(TlsVersion::from_wire),
            negotiated,
            attributes,
            verdict: Verdict::judge(&totals),
            annotation: None,
        });
    }
    Ok(clients)
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
