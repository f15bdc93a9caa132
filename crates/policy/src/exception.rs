//! The exception register: who may keep using a legacy TLS version, until when, owned by whom,
//! and how they will stop needing it. Indexed so a decision against 10,000 exceptions costs
//! a few lookups, not a scan: users and JA4 fingerprints in hash maps, networks in prefix tries.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use time::OffsetDateTime;

/// An exception's id, shown as `exception:ID` in rule ids and recorded with every session it
/// let through: its `id` key, or (for an entry written by hand without one) its 1-based
/// position in the register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExceptionId(pub u32);

impl fmt::Display for ExceptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Which clients an exception covers: every key given must match (several keys narrow it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionMatch {
    client: Option<IpNet>,
    user: Option<String>,
    ja4: Option<String>,
}

/// An exception that would cover no one in particular.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExceptionError {
    /// No client, user or JA4 key.
    #[error("names no client, user or ja4, so it would match every client")]
    NoKey,
    /// A /0 network without `allow_broad`.
    #[error("client {0} matches every address")]
    Broad(IpNet),
}

impl ExceptionMatch {
    /// Covers clients in `client` (host bits are dropped), logged in as `user` (compared
    /// without ASCII case), presenting the JA4 fingerprint `ja4` (compared exactly). At least
    /// one key is needed; a /0 network needs `allow_broad`.
    pub fn new(
        client: Option<IpNet>,
        user: Option<&str>,
        ja4: Option<&str>,
        allow_broad: bool,
    ) -> Result<ExceptionMatch, ExceptionError> {
        if client.is_none() && user.is_none() && ja4.is_none() {
            return Err(ExceptionError::NoKey);
        }
        if let Some(net) = client.filter(|n| n.prefix_len() == 0 && !allow_broad) {
            return Err(ExceptionError::Broad(net));
        }
        Ok(ExceptionMatch {
            client: client.map(|n| n.trunc()),
            user: user.map(str::to_ascii_lowercase),
            ja4: ja4.map(str::to_owned),
        })
    }

    /// The client network, if the exception names one.
    pub fn client(&self) -> Option<IpNet> {
        self.client
    }

    /// The login (ASCII lower case), if the exception names one.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The JA4 fingerprint, if the exception names one.
    pub fn ja4(&self) -> Option<&str> {
        self.ja4.as_deref()
    }

    fn covers(&self, address: IpAddr, login: Option<&str>, ja4: Option<&str>) -> bool {
        self.client.is_none_or(|net| net.contains(&address))
            && self
                .user
                .as_deref()
                .is_none_or(|u| login.is_some_and(|l| l.eq_ignore_ascii_case(u)))
            && self.ja4.as_deref().is_none_or(|j| ja4 == Some(j))
    }
}

impl fmt::Display for ExceptionMatch {
    /// `client=10.20.0.0/24 user=scanner@contoso.com ja4=t10i...`, keys that are set only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(net) = self.client {
            write!(f, "client={net}")?;
            sep = " ";
        }
        if let Some(user) = &self.user {
            write!(f, "{sep}user={user}")?;
            sep = " ";
        }
        if let Some(ja4) = &self.ja4 {
            write!(f, "{sep}ja4={ja4}")?;
        }
        Ok(())
    }
}

/// One `[[exception]]`: a match and its governance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    /// Its id in the register.
    pub id: ExceptionId,
    /// Which clients it covers.
    pub matches: ExceptionMatch,
    /// Who answers for it (a person or team address).
    pub owner: String,
    /// Why the clients cannot meet the floor yet.
    pub reason: String,
    /// The first instant it no longer matches (exclusive): the start, in UTC, of the expiry
    /// date written in the config.
    pub expires: OffsetDateTime,
    /// How the clients will stop needing it.
    pub plan: String,
    /// When it was added, if the register says: until 30 days after, it is not called unused.
    pub added: Option<OffsetDateTime>,
}

impl Exception {
    /// Whether it still matches at `at` (`at < expires`).
    pub fn is_live(&self, at: OffsetDateTime) -> bool {
        at < self.expires
    }
}

/// Positions of exceptions in the register, as stored in the indexes.
type Slots = Vec<u32>;

/// What the register holds for one client.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Lookup<'r> {
    /// The live exception with the lowest id that covers the client.
    pub live: Option<&'r Exception>,
    /// An expired exception that covers it, when no live one does: worth saying why.
    pub expired: Option<&'r Exception>,
}

/// Every exception, indexed by the key that narrows it most (user, else JA4, else network):
/// a client's candidates come from at most three lookups and are then checked on every key.
#[derive(Debug, Default)]
pub struct ExceptionRegister {
    exceptions: Vec<Exception>,
    by_user: HashMap<String, Slots>,
    by_ja4: HashMap<String, Slots>,
    by_v4: PrefixMap<Ipv4Net, Slots>,
    by_v6: PrefixMap<Ipv6Net, Slots>,
}

impl ExceptionRegister {
    /// Indexes `exceptions` (kept in the order given).
    pub fn new(exceptions: Vec<Exception>) -> ExceptionRegister {
        let mut register = ExceptionRegister::default();
        for (slot, exception) in exceptions.iter().enumerate() {
            let slot = u32::try_from(slot).expect("fewer than 2^32 exceptions");
            let m = &exception.matches;
            if let Some(user) = &m.user {
                register.by_user.entry(user.clone()).or_default().push(slot);
            } else if let Some(ja4) = &m.ja4 {
                register.by_ja4.entry(ja4.clone()).or_default().push(slot);
            } else if let Some(net) = m.client {
                let slots = match net {
                    IpNet::V4(v4) => register.by_v4.entry(v4).or_default(),
                    IpNet::V6(v6) => register.by_v6.entry(v6).or_default(),
                };
                slots.push(slot);
            }
        }
        register.exceptions = exceptions;
        register
    }

    /// Every exception, in register order.
    pub fn iter(&self) -> impl Iterator<Item = &Exception> {
        self.exceptions.iter()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.exceptions.len()
    }

    /// Whether the register is empty.
    pub fn is_empty(&self) -> bool {
        self.exceptions.is_empty()
    }

    /// Live exceptions whose expiry falls before `until`, soonest first.
    pub fn expiring(&self, at: OffsetDateTime, until: OffsetDateTime) -> Vec<&Exception> {
        let mut soon: Vec<&Exception> = self
            .exceptions
            .iter()
            .filter(|e| e.is_live(at) && e.expires < until)
            .collect();
        soon.sort_by_key(|e| (e.expires, e.id));
        soon
    }

    /// The exceptions covering a client at `at`.
    pub(crate) fn lookup(
        &self,
        address: IpAddr,
        login: Option<&str>,
        ja4: Option<&str>,
        at: OffsetDateTime,
    ) -> Lookup<'_> {
        let mut found = Lookup::default();
        let mut consider = |slots: &Slots| {
            for &slot in slots {
                let exception = &self.exceptions[slot as usize];
                if !exception.matches.covers(address, login, ja4) {
                    continue;
                }
                let best = if exception.is_live(at) {
                    &mut found.live
                } else {
                    &mut found.expired
                };
                if best.is_none_or(|b| exception.id < b.id) {
                    *best = Some(exception);
                }
            }
        };
        if let Some(login) = login {
            if let Some(slots) = self.by_user_folded(login) {
                consider(slots);
            }
        }
        if let Some(slots) = ja4.and_then(|j| self.by_ja4.get(j)) {
            consider(slots);
        }
        match address {
            IpAddr::V4(v4) => self
                .by_v4
                .cover(&Ipv4Net::from(v4))
                .for_each(|(_, s)| consider(s)),
            IpAddr::V6(v6) => self
                .by_v6
                .cover(&Ipv6Net::from(v6))
                .for_each(|(_, s)| consider(s)),
        }
        if found.live.is_some() {
            found.expired = None;
        }
        found
    }

    /// Users are stored in ASCII lower case; most logins already are, so fold only if needed.
    fn by_user_folded(&self, login: &str) -> Option<&Slots> {
        if login.bytes().any(|b| b.is_ascii_uppercase()) {
            self.by_user.get(&login.to_ascii_lowercase())
        } else {
            self.by_user.get(login)
        }
    }
}
