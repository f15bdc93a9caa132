//! What the stored sessions say about the TLS floor policy's exception register: when each
//! exception last let a client through, and which legacy clients no exception covered. The
//! register's warnings (stale and missing exceptions) are judged from these by `policy`, in
//! [`Store::judge_register`], the one place the gateway, `mailtls exceptions warnings`, the
//! report and the dashboard get them from.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::SystemTime;

use policy::{DecidedClient, ExceptionId, PolicySet, RegisterUse, RegisterWarning, WARNING_WINDOW};
use rusqlite::types::Value as SqlValue;
use time::OffsetDateTime;
use wire::TlsVersion;

use crate::{timestamp, Source, SqliteStore, Store, StoreError};

/// The register's use, as the gateway's sessions recorded it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyUse {
    /// When the first gateway session the store holds started: nothing before it is known.
    pub first_session: Option<SystemTime>,
    /// Each exception id that let a client through, by id.
    pub exception_matches: Vec<ExceptionMatches>,
    /// Clients a policy decided for without an exception, since the instant asked for.
    pub unexcepted: Vec<UnexceptedClient>,
}

/// The sessions one exception let through, as far as the store still holds them (pruned
/// sessions are not counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExceptionMatches {
    /// The exception's id.
    pub id: u32,
    /// The start of the latest session it let through.
    pub last_matched: SystemTime,
    /// How many sessions it let through.
    pub sessions: u64,
}

impl PolicyUse {
    /// The use as the policy judges it; borrows the clients' texts.
    pub fn register_use(&self) -> RegisterUse<'_> {
        RegisterUse {
            observed_since: self.first_session.map(OffsetDateTime::from),
            last_matched: self
                .exception_matches
                .iter()
                .map(|m| (ExceptionId(m.id), m.last_matched.into()))
                .collect::<HashMap<_, _>>(),
            unexcepted: self
                .unexcepted
                .iter()
                .map(|c| DecidedClient {
                    address: c.client_addr,
                    login: c.login.as_deref(),
                    ja4: c.ja4.as_deref(),
                    version: c.tls_version,
                    rule: &c.policy_rule,
                    last_seen: c.last_seen.into(),
                    sessions: c.sessions,
                })
                .collect(),
        }
    }
}

/// The exception register's warnings at an instant, with the store's record they were judged
/// from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JudgedRegister<'s> {
    /// What the sessions say: the last [`WARNING_WINDOW`] of clients without an exception,
    /// and every exception's matches.
    pub recorded: PolicyUse,
    /// What someone should act on (see [`PolicySet::register_warnings`]).
    pub warnings: Vec<RegisterWarning<'s>>,
}

impl Store {
    /// The warnings of `set`'s exception register at `at`, from what this store recorded.
    pub fn judge_register<'s>(
        &mut self,
        set: &'s PolicySet,
        at: OffsetDateTime,
    ) -> Result<JudgedRegister<'s>, StoreError> {
        let recorded = self.policy_use((at - WARNING_WINDOW).into())?;
        let warnings = set.register_warnings(&recorded.register_use(), at);
        Ok(JudgedRegister { recorded, warnings })
    }
}

/// One client (address and login) decided by a policy rule without an exception, per TLS
/// version it negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnexceptedClient {
    /// Its address.
    pub client_addr: IpAddr,
    /// Its login.
    pub login: Option<String>,
    /// The JA4 fingerprint of its ClientHello.
    pub ja4: Option<String>,
    /// The version it negotiated; `None` for a plaintext login.
    pub tls_version: Option<TlsVersion>,
    /// The rule that decided, e.g. `sunset/window`.
    pub policy_rule: String,
    /// Its latest such session's start.
    pub last_seen: SystemTime,
    /// How many such sessions.
    pub sessions: u64,
}

impl SqliteStore {
    /// The register's use: every exception's last match, and the clients decided without one
    /// since `since`.
    pub fn policy_use(&self, since: SystemTime) -> Result<PolicyUse, StoreError> {
        let conn = &self.conn;
        let read = |e| self.read_error(e);
        let invalid = |column: &'static str, reason: String| StoreError::InvalidRow {
            path: self.path.clone(),
            row_id: 0,
            column,
            reason,
        };
        let time = |column: &'static str, text: String| {
            timestamp::parse(&text).map_err(|reason| invalid(column, reason))
        };

        let first: Option<String> = conn
            .query_row(
                "SELECT MIN(started_at) FROM sessions WHERE source = ?1",
                [Source::Gateway.as_str()],
                |row| row.get(0),
            )
            .map_err(read)?;
        let first_session = first.map(|t| time("started_at", t)).transpose()?;

        // The count costs nothing more: the grouping reads the whole index either way.
        let mut stmt = conn
            .prepare_cached(
                "SELECT policy_exception, MAX(started_at), COUNT(*) FROM sessions
                 WHERE policy_exception IS NOT NULL
                 GROUP BY policy_exception ORDER BY policy_exception",
            )
            .map_err(read)?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })
            .map_err(read)?;
        let mut exception_matches = Vec::new();
        for row in rows {
            let (id, at, sessions) = row.map_err(read)?;
            let id = u32::try_from(id)
                .map_err(|_| invalid("policy_exception", format!("{id} is not an exception id")))?;
            exception_matches.push(ExceptionMatches {
                id,
                last_matched: time("started_at", at)?,
                // COUNT(*) is never negative.
                sessions: sessions.unsigned_abs(),
            });
        }

        let mut stmt = conn
            .prepare_cached(
                "SELECT client_addr, login, ja4, tls_version, policy_rule, MAX(started_at),
                    COUNT(*)
                 FROM sessions
                 WHERE policy_rule IS NOT NULL AND policy_exception IS NULL AND started_at >= ?1
                 GROUP BY client_addr, login, ja4, tls_version, policy_rule
                 ORDER BY client_addr, login, ja4, tls_version, policy_rule",
            )
            .map_err(read)?;
        let rows = stmt
            .query_map([timestamp::format(since)], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Option<String>>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, SqlValue>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, i64>(6)?,
                ))
            })
            .map_err(read)?;
        let mut unexcepted = Vec::new();
        for row in rows {
            let (addr, login, ja4, version, policy_rule, last, sessions) = row.map_err(read)?;
            let tls_version = match version {
                SqlValue::Null => None,
                SqlValue::Text(label) => {
                    Some(TlsVersion::from_config_str(&label).ok_or_else(|| {
                        invalid("tls_version", format!("{label:?} is not a TLS version"))
                    })?)
                }
                other => {
                    return Err(invalid(
                        "tls_version",
                        format!("expected text or NULL, found {:?}", other.data_type()),
                    ))
                }
            };
            unexcepted.push(UnexceptedClient {
                client_addr: addr
                    .parse()
                    .map_err(|e: std::net::AddrParseError| invalid("client_addr", e.to_string()))?,
                login,
                ja4,
                tls_version,
                policy_rule,
                last_seen: time("started_at", last)?,
                // COUNT(*) is never negative.
                sessions: sessions.unsigned_abs(),
            });
        }
        Ok(PolicyUse {
            first_session,
            exception_matches,
            unexcepted,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::fixture::{sample_record, TempDir};
    use crate::{PolicyDecision, SessionStore};

    #[test]
    fn last_matches_and_unexcepted_clients_come_from_the_sessions() {
        let dir = TempDir::new("policy-use");
        let mut store = SqliteStore::open(&dir.db_path()).unwrap();
        assert_eq!(
            store.policy_use(SystemTime::UNIX_EPOCH).unwrap(),
            PolicyUse::default()
        );

        let excepted = |n: u16, id: u32| {
            let mut r = sample_record(n);
            r.policy = Some(PolicyDecision {
                verdict: "allow".into(),
                rule: format!("exception:{id}"),
                exception: Some(id),
            });
            r
        };
        let mut plain = sample_record(5);
        plain.tls_version = None;
        plain.login = Some("printer".into());
        let mut undecided = sample_record(6);
        undecided.policy = None;
        let records = vec![
            excepted(1, 4),
            excepted(3, 4),
            excepted(2, 7),
            sample_record(4),
            sample_record(8),
            plain,
            undecided,
        ];
        store.insert_batch(&records).unwrap();

        let since = records[3].started_at;
        let found = store.policy_use(since).unwrap();
        assert_eq!(found.first_session, Some(records[0].started_at));
        assert_eq!(
            found.exception_matches,
            [
                ExceptionMatches {
                    id: 4,
                    last_matched: records[1].started_at,
                    sessions: 2
                },
                ExceptionMatches {
                    id: 7,
                    last_matched: records[2].started_at,
                    sessions: 1
                }
            ]
        );
        let alice = UnexceptedClient {
            client_addr: records[3].client_addr,
            login: Some("alice".into()),
            ja4: records[3].ja4.clone(),
            tls_version: Some(TlsVersion::Tls10),
            policy_rule: "sunset/window".into(),
            last_seen: records[4].started_at,
            sessions: 2,
        };
        let printer = UnexceptedClient {
            login: Some("printer".into()),
            tls_version: None,
            last_seen: records[5].started_at,
            sessions: 1,
            ..alice.clone()
        };
        assert_eq!(found.unexcepted, [alice, printer]);

        // Only sessions since the instant asked for.
        let later = store
            .policy_use(records[5].started_at + Duration::from_millis(1))
            .unwrap();
        let clients: Vec<(Option<&str>, u64)> = later
            .unexcepted
            .iter()
            .map(|c| (c.login.as_deref(), c.sessions))
            .collect();
        assert_eq!(clients, [(Some("alice"), 1)]);
    }
}
