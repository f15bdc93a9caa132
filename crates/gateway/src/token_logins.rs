//! Logins the gateway makes with OAuth 2.0 for devices that cannot: the local accounts devices
//! log in to, the broker that holds a token per mailbox, and the cap on sessions per mailbox
//! (Exchange Online throttles concurrent connections per mailbox).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use oauth::{LocalAccount, LocalAccounts, TokenBroker};
use tokio::sync::watch;

/// Everything an upstream with `auth = "oauth"` needs, shared by all its sessions.
pub struct TokenLogins {
    /// Replaced by a reload; a login in progress keeps the accounts it started checking with.
    accounts: watch::Sender<Arc<LocalAccounts>>,
    /// Replaced by a reload that changes the apps or the token cache; a login in progress
    /// keeps the broker it asked. Brokers share the cache file, merged under its lock.
    broker: watch::Sender<Arc<TokenBroker>>,
    /// Sessions open per mailbox, for the accounts with a `max_connections`.
    open: Mutex<HashMap<String, u32>>,
}

impl TokenLogins {
    /// The local accounts and the broker, as `mailtls gateway` opened them from the config.
    pub fn new(accounts: LocalAccounts, broker: TokenBroker) -> Self {
        TokenLogins {
            accounts: watch::Sender::new(Arc::new(accounts)),
            broker: watch::Sender::new(Arc::new(broker)),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The local accounts of the moment.
    pub(crate) fn accounts(&self) -> Arc<LocalAccounts> {
        self.accounts.borrow().clone()
    }

    /// The token broker of the moment.
    pub(crate) fn broker(&self) -> Arc<TokenBroker> {
        self.broker.borrow().clone()
    }

    /// Puts `accounts`, and `broker` when the apps or the token cache changed, in place for
    /// the logins from now on (a config reload). The counts of sessions per mailbox stay. The
    /// broker goes first, so a login that already read the new accounts finds their apps.
    pub fn replace(&self, accounts: LocalAccounts, broker: Option<TokenBroker>) {
        if let Some(broker) = broker {
            self.broker.send_replace(Arc::new(broker));
        }
        self.accounts.send_replace(Arc::new(accounts));
    }

    /// A place among the account's mailbox sessions, held until the session ends; `None`
    /// when the mailbox already has `max_connections` of them.
    pub(crate) fn take_mailbox(self: &Arc<Self>, account: &LocalAccount) -> Option<MailboxSlot> {
        let Some(max) = account.max_connections else {
            return Some(MailboxSlot {
                logins: None,
                mailbox: String::new(),
            });
        };
        let mut open = self.open.lock().expect("mailbox table lock");
        let count = open.entry(account.mailbox.clone()).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(MailboxSlot {
            logins: Some(self.clone()),
            mailbox: account.mailbox.clone(),
        })
    }
}

impl std::fmt::Debug for TokenLogins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenLogins").finish_non_exhaustive()
    }
}

/// One session's place in its mailbox's cap; given back when dropped.
pub(crate) struct MailboxSlot {
    /// `None` for a mailbox without a cap: nothing to count.
    logins: Option<Arc<TokenLogins>>,
    mailbox: String,
}

impl Drop for MailboxSlot {
    fn drop(&mut self) {
        let Some(logins) = &self.logins else {
            return;
        };
        let mut open = logins.open.lock().expect("mailbox table lock");
        if let Some(count) = open.get_mut(&self.mailbox) {
            *count -= 1;
            // An idle mailbox leaves no entry behind, so the table holds busy mailboxes only.
            if *count == 0 {
                open.remove(&self.mailbox);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use oauth::settings::{AccountSettings, OAuthSettings};
    use oauth::{hash_password, Secret};

    use super::*;

    fn logins() -> Arc<TokenLogins> {
        let account = AccountSettings {
            login: "scanner".into(),
            password_hash: hash_password(&Secret::new("pw")).unwrap(),
            mailbox: "scanner@contoso.example".into(),
            oauth: "contoso".into(),
            max_connections: Some(2),
        };
        let accounts = LocalAccounts::new(&[account], 1).unwrap();
        let broker = TokenBroker::open(&OAuthSettings {
            apps: Vec::new(),
            accounts: Vec::new(),
            token_cache: None,
        })
        .unwrap();
        Arc::new(TokenLogins::new(accounts, broker))
    }

    fn account(max_connections: Option<u32>) -> LocalAccount {
        LocalAccount {
            login: "scanner".into(),
            mailbox: "scanner@contoso.example".into(),
            oauth: "contoso".into(),
            max_connections,
        }
    }

    #[test]
    fn a_capped_mailbox_takes_its_cap_and_frees_a_place_per_ended_session() {
        let logins = logins();
        let capped = account(Some(2));
        let first = logins.take_mailbox(&capped).expect("first");
        let second = logins.take_mailbox(&capped).expect("second");
        assert!(
            logins.take_mailbox(&capped).is_none(),
            "a third is over the cap"
        );
        drop(first);
        let third = logins.take_mailbox(&capped).expect("a place came free");
        drop((second, third));
        assert!(
            logins.open.lock().unwrap().is_empty(),
            "idle mailboxes leave no entry"
        );
    }

    #[test]
    fn an_uncapped_mailbox_is_not_counted() {
        let logins = logins();
        let slots: Vec<_> = (0..100)
            .map(|_| logins.take_mailbox(&account(None)).expect("no cap"))
            .collect();
        assert!(logins.open.lock().unwrap().is_empty());
        drop(slots);
    }
}
