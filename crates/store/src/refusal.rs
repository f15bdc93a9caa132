//! Connections the gateway closed before any dialogue, kept as counts per client address and
//! minute: a flood of refused connections must not write a row each.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why the gateway closed a connection at once, before greeting it.
///
/// The labels from [`RefusalReason::as_str`] are stored: never rename one, only add new ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalReason {
    /// The client's address already held as many unauthenticated connections as one address
    /// may (`max_unauthenticated_per_client`).
    ClientLimit,
    /// Every unauthenticated slot of the gateway was taken (`max_unauthenticated`).
    PreAuthBudget,
    /// A PROXY protocol listener was reached from an address not in its `proxy_from`: nothing
    /// is read from such a sender, so it is counted like a flood rather than recorded.
    UntrustedProxy,
}

impl RefusalReason {
    /// Every reason, in declaration order.
    pub const ALL: [RefusalReason; 3] = [
        RefusalReason::ClientLimit,
        RefusalReason::PreAuthBudget,
        RefusalReason::UntrustedProxy,
    ];

    /// The stable snake_case label stored in the database, e.g. `"client_limit"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::ClientLimit => "client_limit",
            RefusalReason::PreAuthBudget => "pre_auth_budget",
            RefusalReason::UntrustedProxy => "untrusted_proxy",
        }
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A label that names no [`RefusalReason`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown refusal reason {0:?}; expected one of: client_limit, pre_auth_budget")]
pub struct UnknownRefusalReason(pub String);

impl FromStr for RefusalReason {
    type Err = UnknownRefusalReason;

    /// Parses a label produced by [`RefusalReason::as_str`]; exact match only.
    fn from_str(label: &str) -> Result<Self, Self::Err> {
        RefusalReason::ALL
            .into_iter()
            .find(|reason| reason.as_str() == label)
            .ok_or_else(|| UnknownRefusalReason(label.to_owned()))
    }
}

/// One connection the gateway refused before greeting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedConnection {
    /// When it was refused.
    pub at: SystemTime,
    /// Name of the listener that accepted it.
    pub listener: String,
    /// The client's address (after any PROXY protocol header).
    pub client_addr: IpAddr,
    /// Why it was refused.
    pub reason: RefusalReason,
}

/// How many connections of one client address one listener refused for one reason within one
/// minute: one row of the `refused_connections` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalSummary {
    /// The start of the minute (UTC, whole minutes since the epoch).
    pub minute: SystemTime,
    /// Name of the listener.
    pub listener: String,
    /// The client's address.
    pub client_addr: IpAddr,
    /// Why the connections were refused.
    pub reason: RefusalReason,
    /// Connections refused.
    pub count: u64,
}

/// The columns a read of refusal counts takes, for [`refusal_from_row`].
pub(crate) const SELECT_REFUSALS: &str = "SELECT minute, listener, client_addr, reason, count
    FROM refused_connections ORDER BY minute, listener, client_addr, reason";

/// Reads one row of [`SELECT_REFUSALS`]; an error names the column and what is wrong.
pub(crate) fn refusal_from_row(
    row: &impl crate::stored_row::StoredRow,
) -> Result<RefusalSummary, (&'static str, String)> {
    let column = |name: &'static str| move |e: String| (name, e);
    Ok(RefusalSummary {
        minute: row.time("minute").map_err(column("minute"))?,
        listener: row.text("listener").map_err(column("listener"))?,
        client_addr: row
            .text("client_addr")
            .map_err(column("client_addr"))?
            .parse()
            .map_err(|e: std::net::AddrParseError| ("client_addr", e.to_string()))?,
        reason: row
            .text("reason")
            .map_err(column("reason"))?
            .parse::<RefusalReason>()
            .map_err(|e| ("reason", e.to_string()))?,
        count: row.count("count").map_err(column("count"))?,
    })
}

/// The start of the minute `at` falls in; times before the epoch count as the epoch's minute.
pub(crate) fn minute_of(at: SystemTime) -> SystemTime {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    UNIX_EPOCH + Duration::from_secs(since.as_secs() / 60 * 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_parses_back_to_its_reason() {
        for reason in RefusalReason::ALL {
            assert_eq!(reason.as_str().parse::<RefusalReason>(), Ok(reason));
        }
        assert!("ClientLimit".parse::<RefusalReason>().is_err());
    }

    #[test]
    fn a_minute_starts_on_the_whole_minute() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_059_999);
        assert_eq!(
            minute_of(at),
            UNIX_EPOCH + Duration::from_secs(1_700_000_040)
        );
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_040);
        assert_eq!(minute_of(start), start);
    }
}
