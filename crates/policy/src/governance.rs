//! Warnings that keep the exception register honest: exceptions about to expire, exceptions no
//! client has needed for a while, and legacy clients no exception covers. Judged from what the
//! session store recorded (handed in as plain values) at an instant handed in too.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use time::{Duration, OffsetDateTime};
use wire::TlsVersion;

use crate::exception::{Exception, ExceptionId};
use crate::set::PolicySet;

/// How far ahead an expiry is warned about, and how long an exception may go unmatched (or a
/// legacy client be seen without one) before it is warned about.
pub const WARNING_WINDOW: Duration = Duration::days(30);

/// Longest login shown in a warning; the rest is cut.
const MAX_SHOWN_LOGIN: usize = 64;

/// A client some policy decided for without an exception, as the session store recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecidedClient<'a> {
    /// Its address.
    pub address: IpAddr,
    /// Its login.
    pub login: Option<&'a str>,
    /// The JA4 fingerprint of its ClientHello.
    pub ja4: Option<&'a str>,
    /// The version it negotiated; `None` for a plaintext login.
    pub version: Option<TlsVersion>,
    /// The rule that decided (`POLICY/PHASE`).
    pub rule: &'a str,
    /// Its latest such session.
    pub last_seen: OffsetDateTime,
    /// How many such sessions.
    pub sessions: u64,
}

/// What the session store says about the register's use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterUse<'a> {
    /// The first session the store holds: an exception is only called unused once the store
    /// has watched for [`WARNING_WINDOW`]. `None`: nothing recorded yet.
    pub observed_since: Option<OffsetDateTime>,
    /// When each exception last let a client through.
    pub last_matched: HashMap<ExceptionId, OffsetDateTime>,
    /// Clients decided without an exception lately (at least the last [`WARNING_WINDOW`]).
    pub unexcepted: Vec<DecidedClient<'a>>,
}

/// One thing about the register someone should act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterWarning<'r> {
    /// A live exception expires within [`WARNING_WINDOW`].
    Expiring {
        /// The exception.
        exception: &'r Exception,
    },
    /// A live exception let no client through for [`WARNING_WINDOW`].
    Unused {
        /// The exception.
        exception: &'r Exception,
        /// Its last match, if the store holds one.
        last_matched: Option<OffsetDateTime>,
    },
    /// A client below its policy's floor that no live exception covers.
    Unexcepted {
        /// Its address.
        address: IpAddr,
        /// Its login.
        login: Option<String>,
        /// The lowest version it negotiated (`None`: a plaintext login).
        version: Option<TlsVersion>,
        /// The floor it is below.
        floor: TlsVersion,
        /// The rule that last decided for it.
        rule: String,
        /// Its latest session.
        last_seen: OffsetDateTime,
        /// How many sessions.
        sessions: u64,
    },
}

impl RegisterWarning<'_> {
    /// `expiring`, `unused` or `unexcepted`, as logged and counted.
    pub fn kind(&self) -> &'static str {
        match self {
            RegisterWarning::Expiring { .. } => "expiring",
            RegisterWarning::Unused { .. } => "unused",
            RegisterWarning::Unexcepted { .. } => "unexcepted",
        }
    }
}

impl fmt::Display for RegisterWarning<'_> {
    /// One line for the log and `mailtls exceptions warnings`, with what to do.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterWarning::Expiring { exception: e } => write!(
                f,
                "exception {} ({}) expires at {} (owner {:?}): renew it (mailtls exceptions renew {}) or finish its plan: {:?}",
                e.id, e.matches, e.expires.date(), e.owner, e.id, e.plan
            ),
            RegisterWarning::Unused {
                exception: e,
                last_matched,
            } => {
                write!(f, "exception {} ({}) matched no client for 30 days (", e.id, e.matches)?;
                match last_matched {
                    Some(at) => write!(f, "last on {}", at.date())?,
                    None => f.write_str("never")?,
                }
                write!(
                    f,
                    "; owner {:?}): remove it if its clients are gone (mailtls exceptions remove {})",
                    e.owner, e.id
                )
            }
            RegisterWarning::Unexcepted {
                address,
                login,
                version,
                floor,
                rule,
                last_seen,
                sessions,
            } => {
                write!(f, "legacy client {address}")?;
                if let Some(login) = login {
                    let shown: String = login.chars().take(MAX_SHOWN_LOGIN).collect();
                    write!(f, " (login {:?})", shown)?;
                }
                write!(
                    f,
                    " negotiated {} below the floor {floor} and no exception covers it ({sessions} session(s), last on {}, rule {rule}): upgrade it, or add an exception with an owner and a plan",
                    version.map_or("no TLS", TlsVersion::as_str),
                    last_seen.date()
                )
            }
        }
    }
}

impl PolicySet {
    /// The register's warnings at `at`, expiring first (soonest first), then unused (by id),
    /// then unexcepted clients (in the order `usage` lists them).
    ///
    /// - Expiring: live, expiring before `at` + [`WARNING_WINDOW`].
    /// - Unused: live, no match since `at` − [`WARNING_WINDOW`], added (when the register says)
    ///   before then, and the store watching since before then.
    /// - Unexcepted: seen since `at` − [`WARNING_WINDOW`] below the floor of the policy its
    ///   rule names, and not covered by an exception live now (one may have been added since).
    pub fn register_warnings(
        &self,
        usage: &RegisterUse<'_>,
        at: OffsetDateTime,
    ) -> Vec<RegisterWarning<'_>> {
        let register = self.exceptions();
        let mut warnings: Vec<RegisterWarning<'_>> = register
            .expiring(at, at + WARNING_WINDOW)
            .into_iter()
            .map(|exception| RegisterWarning::Expiring { exception })
            .collect();

        let quiet_since = at - WARNING_WINDOW;
        if usage
            .observed_since
            .is_some_and(|first| first <= quiet_since)
        {
            let mut unused: Vec<&Exception> = register
                .iter()
                .filter(|e| e.is_live(at))
                .filter(|e| e.added.is_none_or(|added| added <= quiet_since))
                .filter(|e| {
                    usage
                        .last_matched
                        .get(&e.id)
                        .is_none_or(|&last| last < quiet_since)
                })
                .collect();
            unused.sort_by_key(|e| e.id);
            warnings.extend(unused.into_iter().map(|exception| RegisterWarning::Unused {
                exception,
                last_matched: usage.last_matched.get(&exception.id).copied(),
            }));
        }

        // One warning per address and login, with its lowest version and latest session.
        let mut clients: Vec<RegisterWarning<'_>> = Vec::new();
        let mut index: HashMap<(IpAddr, Option<&str>), usize> = HashMap::new();
        for client in &usage.unexcepted {
            if client.last_seen < quiet_since {
                continue;
            }
            let Some(floor) = client
                .rule
                .split_once('/')
                .and_then(|(policy, _)| self.policy(policy))
                .map(|p| p.min_tls())
            else {
                continue;
            };
            if client.version.is_some_and(|v| v >= floor)
                || register
                    .lookup(client.address, client.login, client.ja4, at)
                    .live
                    .is_some()
            {
                continue;
            }
            match index.get(&(client.address, client.login)) {
                Some(&slot) => {
                    if let RegisterWarning::Unexcepted {
                        version,
                        rule,
                        last_seen,
                        sessions,
                        ..
                    } = &mut clients[slot]
                    {
                        *version = (*version).min(client.version);
                        *sessions += client.sessions;
                        if client.last_seen > *last_seen {
                            *last_seen = client.last_seen;
                            *rule = client.rule.to_owned();
                        }
                    }
                }
                None => {
                    index.insert((client.address, client.login), clients.len());
                    clients.push(RegisterWarning::Unexcepted {
                        address: client.address,
                        login: client.login.map(str::to_owned),
                        version: client.version,
                        floor,
                        rule: client.rule.to_owned(),
                        last_seen: client.last_seen,
                        sessions: client.sessions,
                    });
                }
            }
        }
        warnings.extend(clients);
        warnings
    }
}
