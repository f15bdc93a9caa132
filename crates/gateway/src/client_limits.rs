//! Limits per client address that keep one host from starving the others: a budget of
//! unauthenticated connections with a share per address, a separate budget of logged-in
//! sessions, and failed logins counted across connections. Shared by every listener; each
//! lookup takes one small mutex for a few map operations and never holds it across an await.
//!
//! An IPv4 client is one address; an IPv6 client is its /64, since a host is usually given a
//! whole /64 and can pick a fresh address from it for every connection.

mod failed_logins;
mod unauthenticated;

use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use store::RefusalReason;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::settings::ClientLimitSettings;
use failed_logins::FailedLogins;
use unauthenticated::UnauthenticatedCounts;

/// Client addresses whose failed logins are remembered at most; about 64 bytes each.
const FAILED_LOGIN_ADDRESSES: usize = 65_536;

/// The gateway's limits per client address, shared by all listeners and kept across reloads
/// (they count the connections and failures of the moment); a reload changes their limits.
pub(crate) struct ClientLimits {
    unauthenticated: Arc<Mutex<UnauthenticatedCounts>>,
    failed_logins: Mutex<FailedLogins>,
    logged_in: Arc<Semaphore>,
    /// The logged-in budget as last configured: what a reload's new budget is measured from.
    session_budget: Mutex<usize>,
}

impl ClientLimits {
    /// Limits as configured; `max_sessions` is the budget of logged-in sessions.
    pub fn new(settings: &ClientLimitSettings, max_sessions: usize) -> ClientLimits {
        ClientLimits {
            unauthenticated: Arc::new(Mutex::new(UnauthenticatedCounts::new(
                settings.max_unauthenticated,
                settings.max_unauthenticated_per_client,
            ))),
            failed_logins: Mutex::new(FailedLogins::new(
                settings.failed_logins_per_client,
                settings.failed_login_window,
                FAILED_LOGIN_ADDRESSES,
            )),
            logged_in: Arc::new(Semaphore::new(max_sessions)),
            session_budget: Mutex::new(max_sessions),
        }
    }

    /// Applies a reloaded config's limits. Connections and failures counted so far stay
    /// counted: a lower limit refuses new connections until enough of the present ones end.
    /// A smaller session budget takes back free places at once and the rest as sessions end
    /// (a task waits for them), so running sessions are never cut.
    pub fn reconfigure(&self, settings: &ClientLimitSettings, max_sessions: usize) {
        lock(&self.unauthenticated).set_limits(
            settings.max_unauthenticated,
            settings.max_unauthenticated_per_client,
        );
        lock(&self.failed_logins).set_limits(
            settings.failed_logins_per_client,
            settings.failed_login_window,
        );
        let mut budget = lock(&self.session_budget);
        if max_sessions > *budget {
            self.logged_in.add_permits(max_sessions - *budget);
        } else if max_sessions < *budget {
            let surplus = *budget - max_sessions;
            let held_back = surplus - self.logged_in.forget_permits(surplus);
            if held_back > 0 {
                let logged_in = self.logged_in.clone();
                let held_back = u32::try_from(held_back).unwrap_or(u32::MAX);
                tokio::spawn(async move {
                    if let Ok(places) = logged_in.acquire_many_owned(held_back).await {
                        places.forget();
                    }
                });
            }
        }
        *budget = max_sessions;
    }

    /// A place for a new connection of `client` until it logs in, or why there is none (the
    /// connection is then closed at once and counted).
    pub fn admit_unauthenticated(
        &self,
        client: IpAddr,
    ) -> Result<UnauthenticatedSlot, RefusalReason> {
        let client = limit_key(client);
        lock(&self.unauthenticated).claim(client)?;
        Ok(UnauthenticatedSlot {
            counts: self.unauthenticated.clone(),
            client,
        })
    }

    /// Whether logins from `client` are refused now because it failed too many recently.
    pub fn login_throttled(&self, client: IpAddr) -> bool {
        lock(&self.failed_logins)
            .refused_until(limit_key(client), Instant::now())
            .is_some()
    }

    /// The upstream refused a login of `client`.
    pub fn login_failed(&self, client: IpAddr) {
        lock(&self.failed_logins).failed(limit_key(client), Instant::now());
    }

    /// A logged-in session's place, taken before the upstream login; `None` when every one is
    /// taken.
    pub fn take_session_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.logged_in.clone().try_acquire_owned().ok()
    }
}

/// One unauthenticated connection's place; given back when dropped (the session logged in or
/// ended).
pub(crate) struct UnauthenticatedSlot {
    counts: Arc<Mutex<UnauthenticatedCounts>>,
    client: IpAddr,
}

impl Drop for UnauthenticatedSlot {
    fn drop(&mut self) {
        lock(&self.counts).release(self.client);
    }
}

/// What the limits count a client as: its IPv4 address (also when it arrives as an IPv4-mapped
/// IPv6 address on a dual-stack socket), or its IPv6 /64.
fn limit_key(client: IpAddr) -> IpAddr {
    match client.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

/// The counts stay consistent even if a holder panicked: every update is a single step.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits() -> ClientLimits {
        ClientLimits::new(
            &ClientLimitSettings {
                max_unauthenticated: 4,
                max_unauthenticated_per_client: 2,
                failed_logins_per_client: 2,
                failed_login_window: Duration::from_secs(600),
            },
            1,
        )
    }

    #[test]
    fn a_slot_is_given_back_when_dropped() {
        let limits = limits();
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        let first = limits.admit_unauthenticated(client).unwrap();
        let _second = limits.admit_unauthenticated(client).unwrap();
        assert!(matches!(
            limits.admit_unauthenticated(client),
            Err(RefusalReason::ClientLimit)
        ));
        drop(first);
        assert!(limits.admit_unauthenticated(client).is_ok());
    }

    #[test]
    fn an_ipv4_client_on_a_dual_stack_socket_is_one_address() {
        let limits = limits();
        let _v4 = limits
            .admit_unauthenticated("192.0.2.1".parse().unwrap())
            .unwrap();
        let _mapped = limits
            .admit_unauthenticated("::ffff:192.0.2.1".parse().unwrap())
            .unwrap();
        assert!(matches!(
            limits.admit_unauthenticated("192.0.2.1".parse().unwrap()),
            Err(RefusalReason::ClientLimit)
        ));
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        let limits = limits();
        let _first = limits
            .admit_unauthenticated("2001:db8:1:2::1".parse().unwrap())
            .unwrap();
        let _second = limits
            .admit_unauthenticated("2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse().unwrap())
            .unwrap();
        // A third address of the same /64 is the same host; the next /64 is not.
        assert!(matches!(
            limits.admit_unauthenticated("2001:db8:1:2::99".parse().unwrap()),
            Err(RefusalReason::ClientLimit)
        ));
        assert!(limits
            .admit_unauthenticated("2001:db8:1:3::1".parse().unwrap())
            .is_ok());

        limits.login_failed("2001:db8:1:2::7".parse().unwrap());
        limits.login_failed("2001:db8:1:2::8".parse().unwrap());
        assert!(limits.login_throttled("2001:db8:1:2::9".parse().unwrap()));
        assert!(!limits.login_throttled("2001:db8:1:3::9".parse().unwrap()));
    }

    #[test]
    fn failed_logins_throttle_that_address_only() {
        let limits = limits();
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        limits.login_failed(client);
        assert!(!limits.login_throttled(client));
        limits.login_failed("::ffff:192.0.2.1".parse().unwrap());
        assert!(limits.login_throttled(client));
        assert!(!limits.login_throttled("192.0.2.2".parse().unwrap()));
    }

    #[tokio::test]
    async fn a_reload_changes_the_limits_and_keeps_what_is_counted() {
        let limits = limits();
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        let first = limits.admit_unauthenticated(client).unwrap();
        let _second = limits.admit_unauthenticated(client).unwrap();
        let session = limits.take_session_slot().expect("one slot");
        limits.login_failed(client);

        let raised = ClientLimitSettings {
            max_unauthenticated: 10,
            max_unauthenticated_per_client: 3,
            failed_logins_per_client: 1,
            failed_login_window: Duration::from_secs(600),
        };
        limits.reconfigure(&raised, 3);
        let third = limits
            .admit_unauthenticated(client)
            .expect("the raised share");
        assert!(matches!(
            limits.admit_unauthenticated(client),
            Err(RefusalReason::ClientLimit)
        ));
        assert!(
            limits.login_throttled(client),
            "the failure counted before now reaches the lower limit"
        );
        let more: Vec<_> = (0..2)
            .map(|_| limits.take_session_slot().unwrap())
            .collect();
        assert!(limits.take_session_slot().is_none(), "three places in all");

        // Lowered below what is held: nothing running is cut, new ones wait for the ends.
        let lowered = ClientLimitSettings {
            max_unauthenticated_per_client: 1,
            ..raised
        };
        limits.reconfigure(&lowered, 1);
        drop((first, third));
        assert!(matches!(
            limits.admit_unauthenticated(client),
            Err(RefusalReason::ClientLimit)
        ));
        drop(more);
        tokio::task::yield_now().await;
        assert!(
            limits.take_session_slot().is_none(),
            "the one place left is the running session's"
        );
        drop(session);
        assert!(limits.take_session_slot().is_some());
    }

    #[test]
    fn logged_in_sessions_have_their_own_budget() {
        let limits = limits();
        let session = limits.take_session_slot().expect("one slot");
        assert!(limits.take_session_slot().is_none());
        // Unauthenticated connections are not held back by the logged-in budget.
        assert!(limits
            .admit_unauthenticated("192.0.2.9".parse().unwrap())
            .is_ok());
        drop(session);
        assert!(limits.take_session_slot().is_some());
    }
}
