//! When a cached token is good, due for refresh or spent. Pure decisions: the clock is an
//! argument, so every rule is tested with fixed times.

use std::time::{Duration, SystemTime};

/// What a token is cached under: one token per app, mailbox and scope, shared by every
/// session of that mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenKey {
    /// The `[[oauth]]` name.
    pub app: String,
    /// The mailbox the token opens.
    pub mailbox: String,
    /// The scopes asked for.
    pub scope: String,
}

/// How usable a cached token is at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Use it.
    Fresh,
    /// Still usable, but close enough to its end that a new one should be fetched now, so no
    /// login ever waits on an expired token.
    RefreshDue,
    /// Too close to its end (or past it) to be sent upstream.
    Expired,
}

/// The longest a token is refreshed ahead of its expiry (a common choice among OAuth proxies).
const MAX_REFRESH_AHEAD: Duration = Duration::from_secs(600);
/// The longest safety margin before expiry in which a token is no longer sent: the upstream
/// must still see it valid when it checks it, a moment later.
const MAX_EXPIRY_SKEW: Duration = Duration::from_secs(30);
/// The lifetime assumed when the endpoint gives no `expires_in` (RFC 6749 makes it optional):
/// short, so a wrong guess costs a few extra requests, not failed logins.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);

/// A token's lifetime: when it was issued and when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// When the token endpoint issued it (our clock).
    pub issued_at: SystemTime,
    /// When it expires.
    pub expires_at: SystemTime,
}

impl Lifetime {
    /// The lifetime of a token received at `now` with the endpoint's `expires_in`.
    pub fn starting(now: SystemTime, expires_in: Option<Duration>) -> Lifetime {
        Lifetime {
            issued_at: now,
            expires_at: now + expires_in.unwrap_or(DEFAULT_LIFETIME),
        }
    }

    /// How usable the token is at `now`. Refresh starts a quarter of the lifetime before
    /// expiry (at most 10 minutes); the token is withheld in the last tenth (at most 30 s).
    /// Scaling with the lifetime keeps short-lived tokens useful for most of their life.
    pub fn freshness(&self, now: SystemTime) -> Freshness {
        let total = self
            .expires_at
            .duration_since(self.issued_at)
            .unwrap_or_default();
        let Ok(remaining) = self.expires_at.duration_since(now) else {
            return Freshness::Expired;
        };
        if remaining <= (total / 10).min(MAX_EXPIRY_SKEW) || remaining.is_zero() {
            Freshness::Expired
        } else if remaining <= (total / 4).min(MAX_REFRESH_AHEAD) {
            Freshness::RefreshDue
        } else {
            Freshness::Fresh
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    #[test]
    fn an_hour_token_is_refreshed_in_its_last_ten_minutes_and_withheld_in_its_last_30_s() {
        let life = Lifetime::starting(at(0), Some(Duration::from_secs(3600)));
        assert_eq!(life.freshness(at(0)), Freshness::Fresh);
        assert_eq!(life.freshness(at(2999)), Freshness::Fresh);
        assert_eq!(life.freshness(at(3000)), Freshness::RefreshDue);
        assert_eq!(life.freshness(at(3569)), Freshness::RefreshDue);
        assert_eq!(life.freshness(at(3570)), Freshness::Expired);
        assert_eq!(life.freshness(at(3600)), Freshness::Expired);
        assert_eq!(life.freshness(at(9000)), Freshness::Expired);
    }

    #[test]
    fn a_short_token_is_refreshed_in_its_last_quarter() {
        let life = Lifetime::starting(at(0), Some(Duration::from_secs(40)));
        assert_eq!(life.freshness(at(29)), Freshness::Fresh);
        assert_eq!(life.freshness(at(30)), Freshness::RefreshDue);
        assert_eq!(life.freshness(at(35)), Freshness::RefreshDue);
        assert_eq!(life.freshness(at(36)), Freshness::Expired);
    }

    #[test]
    fn a_token_without_expires_in_gets_the_default_lifetime() {
        let life = Lifetime::starting(at(0), None);
        assert_eq!(life.expires_at, at(600));
    }

    #[test]
    fn a_clock_set_back_before_issue_still_counts_the_token_fresh() {
        let life = Lifetime::starting(at(100), Some(Duration::from_secs(3600)));
        assert_eq!(life.freshness(at(0)), Freshness::Fresh);
    }

    #[test]
    fn a_token_issued_already_expired_is_expired() {
        let life = Lifetime::starting(at(0), Some(Duration::ZERO));
        assert_eq!(life.freshness(at(0)), Freshness::Expired);
    }
}
