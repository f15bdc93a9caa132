//! The exception register as a report shows it: every exception with its owner, reason,
//! expiry, plan and the sessions it let through, and the register's warnings, judged by
//! [`store::Store::judge_register`] exactly as the gateway logs them and `mailtls exceptions
//! warnings` lists them.

use std::time::SystemTime;

use policy::{PolicySet, RegisterWarning};
use serde::{Deserialize, Serialize};
use store::{cut_to, Store, StoreError, MAX_ANNOTATION_BYTES};
use time::OffsetDateTime;

use crate::client_row::{rfc3339, to_the_minute};

/// Longest register text shown (owner, reason, plan, match): as long as a client's owner may
/// be; config texts have no limit of their own.
const MAX_SHOWN_TEXT: usize = MAX_ANNOTATION_BYTES;

/// Longest warning shown: it quotes an owner and a plan besides its own words.
const MAX_SHOWN_WARNING: usize = 4 * MAX_ANNOTATION_BYTES;

/// The register in a report. A report made without one (from `--store` alone) has none, and
/// says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterSection {
    /// Every exception, in register order.
    pub exceptions: Vec<ExceptionRow>,
    /// What someone should act on, judged when the report was made: expiring exceptions
    /// (soonest first), unused ones, then legacy clients no exception covers.
    pub warnings: Vec<WarningRow>,
}

/// One exception as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionRow {
    /// Its id, recorded with every session it let through.
    pub id: u32,
    /// The clients it covers: `client=10.20.0.0/24 user=scanner@contoso.com`.
    pub matches: String,
    /// Who answers for it.
    pub owner: String,
    /// Why its clients cannot meet the floor yet.
    pub reason: String,
    /// The first instant it no longer matches (RFC 3339, UTC).
    pub expires: String,
    /// Whether it still matched when the report was made.
    pub live: bool,
    /// How its clients will stop needing it.
    pub plan: String,
    /// Sessions it let through, of those the store still holds.
    pub sessions: u64,
    /// The start of the latest of them (RFC 3339), if any.
    pub last_matched: Option<String>,
}

/// One warning about the register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarningRow {
    /// `expiring`, `unused` or `unexcepted`, as logged and counted.
    pub kind: String,
    /// The exception it is about; none for a legacy client without one.
    pub exception: Option<u32>,
    /// The warning with what to do, as the gateway logs it.
    pub text: String,
}

impl ExceptionRow {
    /// Its expiry to the minute, as the table shows it.
    pub fn expires_minute(&self) -> String {
        to_the_minute(&self.expires)
    }

    /// Its last match to the minute, or a dash.
    pub fn last_matched_minute(&self) -> String {
        self.last_matched
            .as_deref()
            .map_or_else(|| "—".to_owned(), to_the_minute)
    }
}

impl WarningRow {
    /// The kind as the page labels it.
    pub fn label(&self) -> &'static str {
        match self.kind.as_str() {
            "expiring" => "expires soon",
            "unused" => "unused",
            "unexcepted" => "no exception",
            _ => "warning",
        }
    }
}

impl RegisterSection {
    /// The register of `register` (the gateway's policies) and its warnings at `at`, from
    /// what `store` recorded; none without a register.
    pub fn judge(
        store: &mut Store,
        register: Option<&PolicySet>,
        at: SystemTime,
    ) -> Result<Option<RegisterSection>, StoreError> {
        let Some(set) = register else {
            return Ok(None);
        };
        let at = OffsetDateTime::from(at);
        let judged = store.judge_register(set, at)?;
        let shown = |text: &str| cut_to(text.to_owned(), MAX_SHOWN_TEXT);
        let exceptions = set
            .exceptions()
            .iter()
            .map(|e| {
                let matched = judged
                    .recorded
                    .exception_matches
                    .iter()
                    .find(|m| m.id == e.id.0);
                ExceptionRow {
                    id: e.id.0,
                    matches: shown(&e.matches.to_string()),
                    owner: shown(&e.owner),
                    reason: shown(&e.reason),
                    expires: rfc3339(e.expires.into()),
                    live: e.is_live(at),
                    plan: shown(&e.plan),
                    sessions: matched.map_or(0, |m| m.sessions),
                    last_matched: matched.map(|m| rfc3339(m.last_matched)),
                }
            })
            .collect();
        let warnings = judged
            .warnings
            .iter()
            .map(|w| WarningRow {
                kind: w.kind().to_owned(),
                exception: match w {
                    RegisterWarning::Expiring { exception }
                    | RegisterWarning::Unused { exception, .. } => Some(exception.id.0),
                    RegisterWarning::Unexcepted { .. } => None,
                },
                text: cut_to(w.to_string(), MAX_SHOWN_WARNING),
            })
            .collect();
        Ok(Some(RegisterSection {
            exceptions,
            warnings,
        }))
    }

    /// How many warnings are of `kind`.
    pub fn count(&self, kind: &str) -> usize {
        self.warnings.iter().filter(|w| w.kind == kind).count()
    }
}
