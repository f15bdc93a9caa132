//! A session record as one `sessions` row, in both directions and for both databases: the
//! values an insert binds ([`SessionColumns`]) and the record read back from a row
//! ([`record_from_row`]).

use std::net::IpAddr;
use std::path::Path;

use postgres::types::Type;
use serde_json::Value;
use wire::TlsVersion;

use crate::stored_row::StoredRow;
use crate::timestamp::StoredTime;
use crate::{OfferedHello, Outcome, PolicyDecision, SessionRecord, Source, StoreError};

/// The columns an insert writes, in the order [`SessionColumns`] binds them.
pub(crate) const INSERT_COLUMNS: &str = "started_at, ended_at, listener, protocol, client_addr,
        client_port, tls_version, tls_cipher, offered_max_tls, sni, ja4, client_id, login,
        upstream, upstream_tls_version, outcome, detail, bytes_from_client, bytes_to_client,
        offered_versions, offered_suites, offered_groups, offered_signature_algorithms,
        offered_alpn, ja3, policy_verdict, policy_rule, policy_exception, envelope_sender, source,
        messages_submitted";

/// How many columns [`INSERT_COLUMNS`] names.
pub(crate) const INSERT_COLUMN_COUNT: usize = 31;

/// The columns every read takes (`id` first), for [`record_from_row`].
pub(crate) const SELECT_COLUMNS: &str = "id, started_at, ended_at, listener, protocol,
        client_addr, client_port, tls_version, tls_cipher, offered_max_tls, sni, ja4, client_id,
        login, upstream, upstream_tls_version, outcome, detail, bytes_from_client,
        bytes_to_client, offered_versions, offered_suites, offered_groups,
        offered_signature_algorithms, offered_alpn, ja3, policy_verdict, policy_rule,
        policy_exception, envelope_sender, source, messages_submitted";

/// One record's values as stored: times to the millisecond (RFC 3339 text in SQLite,
/// `timestamptz` in PostgreSQL), versions in their display spelling (`TLSv1.0`), lists as JSON.
pub(crate) struct SessionColumns {
    started_at: StoredTime,
    ended_at: StoredTime,
    listener: String,
    protocol: String,
    client_addr: String,
    client_port: i64,
    tls_version: Option<String>,
    tls_cipher: Option<String>,
    offered_max_tls: Option<String>,
    sni: Option<String>,
    ja4: Option<String>,
    client_id: String,
    login: Option<String>,
    upstream: String,
    upstream_tls_version: Option<String>,
    outcome: &'static str,
    detail: Option<String>,
    bytes_from_client: i64,
    bytes_to_client: i64,
    offered_versions: String,
    offered_suites: String,
    offered_groups: String,
    offered_signature_algorithms: String,
    offered_alpn: String,
    ja3: Option<String>,
    policy_verdict: Option<String>,
    policy_rule: Option<String>,
    policy_exception: Option<i64>,
    envelope_sender: Option<String>,
    source: &'static str,
    messages_submitted: Option<i64>,
}

/// References to a [`SessionColumns`]' values in [`INSERT_COLUMNS`] order, as an array of
/// whichever database's parameter type the caller returns.
macro_rules! in_insert_order {
    ($columns:expr) => {
        [
            &$columns.started_at,
            &$columns.ended_at,
            &$columns.listener,
            &$columns.protocol,
            &$columns.client_addr,
            &$columns.client_port,
            &$columns.tls_version,
            &$columns.tls_cipher,
            &$columns.offered_max_tls,
            &$columns.sni,
            &$columns.ja4,
            &$columns.client_id,
            &$columns.login,
            &$columns.upstream,
            &$columns.upstream_tls_version,
            &$columns.outcome,
            &$columns.detail,
            &$columns.bytes_from_client,
            &$columns.bytes_to_client,
            &$columns.offered_versions,
            &$columns.offered_suites,
            &$columns.offered_groups,
            &$columns.offered_signature_algorithms,
            &$columns.offered_alpn,
            &$columns.ja3,
            &$columns.policy_verdict,
            &$columns.policy_rule,
            &$columns.policy_exception,
            &$columns.envelope_sender,
            &$columns.source,
            &$columns.messages_submitted,
        ]
    };
}

impl SessionColumns {
    pub(crate) fn of(rec: &SessionRecord) -> SessionColumns {
        SessionColumns {
            started_at: StoredTime::of(rec.started_at),
            ended_at: StoredTime::of(rec.ended_at),
            listener: rec.listener.clone(),
            protocol: rec.protocol.clone(),
            client_addr: rec.client_addr.to_string(),
            client_port: rec.client_port.into(),
            tls_version: rec.tls_version.map(|v| v.to_string()),
            tls_cipher: rec.tls_cipher.clone(),
            offered_max_tls: rec.offered_max_tls.map(|v| v.to_string()),
            sni: rec.sni.clone(),
            ja4: rec.ja4.clone(),
            client_id: encode_client_id(&rec.client_id),
            login: rec.login.clone(),
            upstream: rec.upstream.clone(),
            upstream_tls_version: rec.upstream_tls_version.map(|v| v.to_string()),
            outcome: rec.outcome.as_str(),
            detail: rec.detail.clone(),
            // A session cannot move 2^63 bytes; saturate rather than fail the batch.
            bytes_from_client: i64::try_from(rec.bytes_from_client).unwrap_or(i64::MAX),
            bytes_to_client: i64::try_from(rec.bytes_to_client).unwrap_or(i64::MAX),
            offered_versions: json_codes(&rec.offered.versions),
            offered_suites: json_codes(&rec.offered.cipher_suites),
            offered_groups: json_codes(&rec.offered.groups),
            offered_signature_algorithms: json_codes(&rec.offered.signature_algorithms),
            offered_alpn: Value::from(rec.offered.alpn.clone()).to_string(),
            ja3: rec.offered.ja3.clone(),
            policy_verdict: rec.policy.as_ref().map(|p| p.verdict.clone()),
            policy_rule: rec.policy.as_ref().map(|p| p.rule.clone()),
            policy_exception: rec.policy.as_ref().and_then(|p| p.exception).map(i64::from),
            envelope_sender: rec.envelope_sender.clone(),
            source: rec.source.as_str(),
            messages_submitted: rec.messages_submitted.map(i64::from),
        }
    }

    /// The values as SQLite binds them, `?1` to `?31`.
    pub(crate) fn sqlite_params(&self) -> [&dyn rusqlite::ToSql; INSERT_COLUMN_COUNT] {
        in_insert_order!(self)
    }

    /// The values as PostgreSQL's binary COPY writes them, of [`POSTGRES_TYPES`].
    pub(crate) fn postgres_params(
        &self,
    ) -> [&(dyn postgres::types::ToSql + Sync); INSERT_COLUMN_COUNT] {
        in_insert_order!(self)
    }
}

/// The PostgreSQL types of [`INSERT_COLUMNS`], in order: a binary COPY converts nothing, so
/// each value is sent as its column's own type.
pub(crate) const POSTGRES_TYPES: [Type; INSERT_COLUMN_COUNT] = [
    Type::TIMESTAMPTZ, // started_at
    Type::TIMESTAMPTZ, // ended_at
    Type::TEXT,        // listener
    Type::TEXT,        // protocol
    Type::TEXT,        // client_addr
    Type::INT8,        // client_port
    Type::TEXT,        // tls_version
    Type::TEXT,        // tls_cipher
    Type::TEXT,        // offered_max_tls
    Type::TEXT,        // sni
    Type::TEXT,        // ja4
    Type::TEXT,        // client_id
    Type::TEXT,        // login
    Type::TEXT,        // upstream
    Type::TEXT,        // upstream_tls_version
    Type::TEXT,        // outcome
    Type::TEXT,        // detail
    Type::INT8,        // bytes_from_client
    Type::INT8,        // bytes_to_client
    Type::TEXT,        // offered_versions
    Type::TEXT,        // offered_suites
    Type::TEXT,        // offered_groups
    Type::TEXT,        // offered_signature_algorithms
    Type::TEXT,        // offered_alpn
    Type::TEXT,        // ja3
    Type::TEXT,        // policy_verdict
    Type::TEXT,        // policy_rule
    Type::INT8,        // policy_exception
    Type::TEXT,        // envelope_sender
    Type::TEXT,        // source
    Type::INT8,        // messages_submitted
];

/// Reads one `sessions` row (columns as [`SELECT_COLUMNS`] names them) of the store at
/// `location` (a file, or PostgreSQL's URL).
pub(crate) fn record_from_row(
    location: &Path,
    row: &impl StoredRow,
) -> Result<SessionRecord, StoreError> {
    let row_id = row.integer("id").unwrap_or_default();
    let invalid = |column: &'static str, reason: String| StoreError::InvalidRow {
        path: location.to_owned(),
        row_id,
        column,
        reason,
    };
    let text = |column| row.text(column).map_err(|e| invalid(column, e));
    let optional_text = |column| row.optional_text(column).map_err(|e| invalid(column, e));
    // Versions are stored in their display spelling ("TLSv1.0"), one spelling for all.
    let optional_version = |column: &'static str| -> Result<Option<TlsVersion>, StoreError> {
        optional_text(column)?
            .map(|label| {
                TlsVersion::from_config_str(&label)
                    .ok_or_else(|| invalid(column, format!("{label:?} is not a TLS version")))
            })
            .transpose()
    };
    let time = |column| row.time(column).map_err(|e| invalid(column, e));
    let count = |column| row.count(column).map_err(|e| invalid(column, e));
    let code_list = |column: &'static str| -> Result<Vec<u16>, StoreError> {
        serde_json::from_str(&text(column)?)
            .map_err(|e| invalid(column, format!("not a JSON array of 16-bit codes: {e}")))
    };

    let client_port = row
        .integer("client_port")
        .map_err(|e| invalid("client_port", e))?;
    Ok(SessionRecord {
        source: text("source")?
            .parse::<Source>()
            .map_err(|e| invalid("source", e.to_string()))?,
        started_at: time("started_at")?,
        ended_at: time("ended_at")?,
        listener: text("listener")?,
        protocol: text("protocol")?,
        client_addr: text("client_addr")?
            .parse::<IpAddr>()
            .map_err(|e| invalid("client_addr", e.to_string()))?,
        client_port: u16::try_from(client_port)
            .map_err(|_| invalid("client_port", format!("{client_port} is not a port number")))?,
        tls_version: optional_version("tls_version")?,
        tls_cipher: optional_text("tls_cipher")?,
        offered_max_tls: optional_version("offered_max_tls")?,
        sni: optional_text("sni")?,
        ja4: optional_text("ja4")?,
        client_id: decode_client_id(&text("client_id")?)
            .map_err(|reason| invalid("client_id", reason))?,
        login: optional_text("login")?,
        upstream: text("upstream")?,
        upstream_tls_version: optional_version("upstream_tls_version")?,
        outcome: text("outcome")?
            .parse::<Outcome>()
            .map_err(|e| invalid("outcome", e.to_string()))?,
        detail: optional_text("detail")?,
        bytes_from_client: count("bytes_from_client")?,
        bytes_to_client: count("bytes_to_client")?,
        offered: OfferedHello {
            versions: code_list("offered_versions")?,
            cipher_suites: code_list("offered_suites")?,
            groups: code_list("offered_groups")?,
            signature_algorithms: code_list("offered_signature_algorithms")?,
            alpn: serde_json::from_str(&text("offered_alpn")?)
                .map_err(|e| invalid("offered_alpn", format!("not a JSON array of text: {e}")))?,
            ja3: optional_text("ja3")?,
        },
        policy: match optional_text("policy_verdict")? {
            None => None,
            Some(verdict) => Some(PolicyDecision {
                verdict,
                rule: optional_text("policy_rule")?.unwrap_or_default(),
                exception: row
                    .optional_integer("policy_exception")
                    .map_err(|e| invalid("policy_exception", e))?
                    .map(|n| {
                        u32::try_from(n).map_err(|_| {
                            invalid("policy_exception", format!("{n} is not an exception id"))
                        })
                    })
                    .transpose()?,
            }),
        },
        envelope_sender: optional_text("envelope_sender")?,
        messages_submitted: row
            .optional_integer("messages_submitted")
            .map_err(|e| invalid("messages_submitted", e))?
            .map(|n| {
                u32::try_from(n)
                    .map_err(|_| invalid("messages_submitted", format!("{n} is not a count")))
            })
            .transpose()?,
    })
}

/// A list of IANA codes as a JSON array of numbers.
fn json_codes(codes: &[u16]) -> String {
    Value::from(codes.to_vec()).to_string()
}

/// IMAP ID fields as a JSON array of `[name, value-or-null]` pairs: a pair list rather than an
/// object because the client's order is kept and a name may repeat.
fn encode_client_id(fields: &[(String, Option<String>)]) -> String {
    let pairs = fields
        .iter()
        .map(|(name, value)| {
            Value::Array(vec![
                Value::String(name.clone()),
                value.clone().map_or(Value::Null, Value::String),
            ])
        })
        .collect();
    Value::Array(pairs).to_string()
}

fn decode_client_id(json: &str) -> Result<Vec<(String, Option<String>)>, String> {
    serde_json::from_str(json).map_err(|e| format!("not a JSON array of [name, value] pairs: {e}"))
}
