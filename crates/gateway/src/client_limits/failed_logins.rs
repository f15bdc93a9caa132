//! Failed logins counted per client address across connections, and the decision to refuse
//! further logins from an address that failed too often. No lock, no clock (time is an
//! argument), no socket; [`super::ClientLimits`] shares it.

use std::collections::hash_map::RandomState;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use hashlink::LruCache;

/// The failures of one address since its window opened (at its first failure).
#[derive(Debug, Clone, Copy)]
struct Window {
    opened: Instant,
    failures: u32,
}

/// Failed logins per client address in fixed windows: `limit` failures within `window` of the
/// first one, and the address is refused until that window closes.
///
/// At most `capacity` addresses are kept; past that the one whose last failure is oldest is
/// forgotten, so a churn of addresses cannot grow the map. A host that keeps failing is kept
/// by its own failures.
pub(crate) struct FailedLogins {
    limit: u32,
    window: Duration,
    // SipHash with a random key: the addresses are chosen by whoever connects.
    by_client: LruCache<IpAddr, Window, RandomState>,
}

impl FailedLogins {
    pub fn new(limit: u32, window: Duration, capacity: usize) -> FailedLogins {
        FailedLogins {
            limit,
            window,
            by_client: LruCache::with_hasher(capacity, RandomState::new()),
        }
    }

    /// Changes the limit and the window; failures counted so far stay, judged by the new ones.
    pub fn set_limits(&mut self, limit: u32, window: Duration) {
        self.limit = limit;
        self.window = window;
    }

    /// When `client`'s logins are refused at `now`, the time the refusal ends; `None` when it
    /// may log in. Does not count as a use of the address (it keeps its place in the map).
    pub fn refused_until(&mut self, client: IpAddr, now: Instant) -> Option<Instant> {
        let window = *self.by_client.peek(&client)?;
        let closes = window.opened + self.window;
        if now >= closes {
            self.by_client.remove(&client);
            return None;
        }
        (window.failures >= self.limit).then_some(closes)
    }

    /// The upstream refused a login of `client` at `now`.
    pub fn failed(&mut self, client: IpAddr, now: Instant) {
        let window = self.window;
        match self.by_client.get_mut(&client) {
            Some(open) if now < open.opened + window => {
                open.failures = open.failures.saturating_add(1);
            }
            _ => {
                // Inserting past the capacity forgets the least recently failed address.
                self.by_client.insert(
                    client,
                    Window {
                        opened: now,
                        failures: 1,
                    },
                );
            }
        }
    }

    /// Addresses remembered now.
    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.by_client.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_MINUTES: Duration = Duration::from_secs(600);

    fn addr(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn the_tenth_failure_within_the_window_refuses_until_it_closes() {
        let start = Instant::now();
        let mut logins = FailedLogins::new(10, TEN_MINUTES, 100);
        for n in 0..9 {
            let at = start + Duration::from_secs(n * 30);
            logins.failed(addr(1), at);
            assert_eq!(
                logins.refused_until(addr(1), at),
                None,
                "after {} failures",
                n + 1
            );
        }
        let tenth = start + Duration::from_secs(300);
        logins.failed(addr(1), tenth);
        assert_eq!(
            logins.refused_until(addr(1), tenth),
            Some(start + TEN_MINUTES)
        );
        let just_before = start + TEN_MINUTES - Duration::from_millis(1);
        assert_eq!(
            logins.refused_until(addr(1), just_before),
            Some(start + TEN_MINUTES)
        );
        // Other addresses are not touched.
        assert_eq!(logins.refused_until(addr(2), tenth), None);
        // Once the window has closed the address starts afresh.
        assert_eq!(logins.refused_until(addr(1), start + TEN_MINUTES), None);
        logins.failed(addr(1), start + TEN_MINUTES);
        assert_eq!(logins.refused_until(addr(1), start + TEN_MINUTES), None);
    }

    #[test]
    fn failures_spread_over_more_than_the_window_never_refuse() {
        let start = Instant::now();
        let mut logins = FailedLogins::new(3, TEN_MINUTES, 100);
        for n in 0..30 {
            // Two failures per window, each window opened by the first failure after the last.
            let at = start + Duration::from_secs(n * 301);
            logins.failed(addr(1), at);
            assert_eq!(logins.refused_until(addr(1), at), None, "failure {n}");
        }
    }

    #[test]
    fn a_churn_of_addresses_keeps_the_map_at_its_capacity() {
        let now = Instant::now();
        let mut logins = FailedLogins::new(2, TEN_MINUTES, 64);
        // The host that keeps failing stays remembered while 10,000 others come and go.
        logins.failed(addr(0), now);
        for n in 0u32..10_000 {
            let [_, _, hi, lo] = n.to_be_bytes();
            logins.failed(IpAddr::from([10, 1, hi, lo]), now);
            if n % 50 == 0 {
                logins.failed(addr(0), now);
            }
            assert!(logins.addresses() <= 64);
        }
        assert_eq!(logins.addresses(), 64);
        assert_eq!(logins.refused_until(addr(0), now), Some(now + TEN_MINUTES));
        // The oldest of the churn were forgotten.
        assert_eq!(logins.refused_until(IpAddr::from([10, 1, 0, 0]), now), None);
    }

    #[test]
    fn an_unknown_address_is_never_refused_and_not_remembered() {
        let mut logins = FailedLogins::new(1, TEN_MINUTES, 8);
        assert_eq!(logins.refused_until(addr(7), Instant::now()), None);
        assert_eq!(logins.addresses(), 0);
    }
}
