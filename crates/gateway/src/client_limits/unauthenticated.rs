//! The unauthenticated connections of the gateway, counted per client address: the decision
//! whether one more may start. No lock, no clock, no socket; [`super::ClientLimits`] shares it.

use std::collections::HashMap;
use std::net::IpAddr;

use store::RefusalReason;

/// Unauthenticated connections held now, in all and per client address. An address is
/// forgotten when its last connection logs in or ends, so the map never holds more addresses
/// than there are unauthenticated connections.
#[derive(Debug)]
pub(crate) struct UnauthenticatedCounts {
    budget: usize,
    per_client: u32,
    total: usize,
    by_client: HashMap<IpAddr, u32>,
}

impl UnauthenticatedCounts {
    /// At most `budget` unauthenticated connections in all and `per_client` from one address.
    pub fn new(budget: usize, per_client: u32) -> UnauthenticatedCounts {
        UnauthenticatedCounts {
            budget,
            per_client,
            total: 0,
            by_client: HashMap::new(),
        }
    }

    /// Changes the limits; connections held now stay counted.
    pub fn set_limits(&mut self, budget: usize, per_client: u32) {
        self.budget = budget;
        self.per_client = per_client;
    }

    /// Takes a place for one more connection of `client`, or says why there is none. The
    /// address's own limit is checked first, so a flooding host is named as the cause even
    /// when it has also filled the budget.
    pub fn claim(&mut self, client: IpAddr) -> Result<(), RefusalReason> {
        let held = self.by_client.get(&client).copied().unwrap_or(0);
        if held >= self.per_client {
            return Err(RefusalReason::ClientLimit);
        }
        if self.total >= self.budget {
            return Err(RefusalReason::PreAuthBudget);
        }
        self.by_client.insert(client, held + 1);
        self.total += 1;
        Ok(())
    }

    /// Gives back a place taken by [`claim`](Self::claim).
    pub fn release(&mut self, client: IpAddr) {
        if let Some(held) = self.by_client.get_mut(&client) {
            *held -= 1;
            if *held == 0 {
                self.by_client.remove(&client);
            }
            self.total -= 1;
        }
    }

    /// Unauthenticated connections held now.
    #[cfg(test)]
    pub fn total(&self) -> usize {
        self.total
    }

    /// Client addresses with at least one unauthenticated connection.
    #[cfg(test)]
    pub fn addresses(&self) -> usize {
        self.by_client.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn one_address_stops_at_its_own_limit_and_others_go_on() {
        let mut counts = UnauthenticatedCounts::new(8, 3);
        for _ in 0..3 {
            assert_eq!(counts.claim(addr(1)), Ok(()));
        }
        assert_eq!(counts.claim(addr(1)), Err(RefusalReason::ClientLimit));
        assert_eq!(counts.claim(addr(2)), Ok(()));
        counts.release(addr(1));
        assert_eq!(counts.claim(addr(1)), Ok(()));
        assert_eq!(counts.total(), 4);
    }

    #[test]
    fn the_budget_caps_all_addresses_together() {
        let mut counts = UnauthenticatedCounts::new(4, 2);
        for last in [1, 1, 2, 2] {
            assert_eq!(counts.claim(addr(last)), Ok(()));
        }
        assert_eq!(counts.claim(addr(3)), Err(RefusalReason::PreAuthBudget));
        // An address at its own limit is named as such even with the budget full.
        assert_eq!(counts.claim(addr(1)), Err(RefusalReason::ClientLimit));
        counts.release(addr(2));
        assert_eq!(counts.claim(addr(3)), Ok(()));
    }

    #[test]
    fn addresses_are_forgotten_when_their_last_connection_goes() {
        let mut counts = UnauthenticatedCounts::new(10_000, 2);
        for last in 0..=255 {
            counts.claim(addr(last)).unwrap();
        }
        assert_eq!(counts.addresses(), 256);
        for last in 0..=255 {
            counts.release(addr(last));
        }
        assert_eq!((counts.addresses(), counts.total()), (0, 0));
        // A release without a claim changes nothing.
        counts.release(addr(9));
        assert_eq!((counts.addresses(), counts.total()), (0, 0));
    }
}
