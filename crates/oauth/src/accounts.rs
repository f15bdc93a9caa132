//! Local accounts: the login and password a legacy device sends to the gateway, checked against
//! an Argon2id hash. Argon2 is slow on purpose, so checks run on tokio's blocking pool, a few at
//! a time, and a burst of logins never stalls the sessions already running.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2};
use proto::Secret;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::error::SetupError;
use crate::settings::AccountSettings;

/// A local account, once its password checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAccount {
    /// The login the device sent.
    pub login: String,
    /// The mailbox to open upstream (the `user=` of XOAUTH2).
    pub mailbox: String,
    /// The `[[oauth]]` app whose tokens open it.
    pub oauth: String,
    /// Most sessions at once for this mailbox, if capped.
    pub max_connections: Option<u32>,
}

struct Entry {
    account: Arc<LocalAccount>,
    hash: String,
    /// The last password that checked out, as a keyed digest, and when it did.
    recent: Mutex<Option<(Remembered, Instant)>>,
}

/// How long a password that checked out is remembered: a device that logs in every minute
/// pays for Argon2 once in that time, not at every login (one check costs ~20 ms of CPU, which
/// would cap OAuth logins near 50 a second per core). A wrong password is always checked in
/// full, so guessing gains nothing from it.
const REMEMBER_FOR: Duration = Duration::from_secs(600);

/// SHA-256 of the process's random key and a password: comparable, not reversible, and
/// worthless outside this process.
type Remembered = [u8; 32];

/// The password check failed to run (not: the password was wrong).
#[derive(Debug, thiserror::Error)]
#[error("the local password check could not run: {0}")]
pub struct VerifyError(String);

/// Every `[[account]]`, with a bounded pool for checking passwords.
pub struct LocalAccounts {
    by_login: HashMap<String, Entry>,
    /// Checked for unknown logins, so they cost what a known login costs and the timing of
    /// an answer does not tell which accounts exist.
    dummy_hash: String,
    /// Keys the digests of remembered passwords; random per process.
    remember_key: [u8; 32],
    checks: Arc<Semaphore>,
}

impl std::fmt::Debug for LocalAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAccounts")
            .field("logins", &self.by_login.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Hashes a password as `mailtls passwd` does: Argon2id with the argon2 crate's defaults
/// (19 MiB, 2 passes, 1 lane: OWASP's minimum) and a random salt, as a PHC string.
pub fn hash_password(password: &Secret) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.expose())
        .map(|hash| hash.to_string())
        .map_err(|e| format!("cannot hash: {e}"))
}

/// Checks that `phc` is an Argon2id PHC string (what config validation asks of
/// `password_hash`).
pub fn check_password_hash(phc: &str) -> Result<(), String> {
    let hash = PasswordHash::new(phc)
        .map_err(|e| format!("is not a PHC hash string ({e}); make one with `mailtls passwd`"))?;
    if hash.algorithm.as_str() != Algorithm::Argon2id.ident().as_str() {
        return Err(format!(
            "uses {}, not argon2id; make one with `mailtls passwd`",
            hash.algorithm
        ));
    }
    Ok(())
}

fn verify(phc: &str, password: &[u8]) -> bool {
    PasswordHash::new(phc)
        .map(|hash| Argon2::default().verify_password(password, &hash).is_ok())
        .unwrap_or(false)
}

impl LocalAccounts {
    /// The accounts, with at most `parallel_checks` Argon2 checks running at once.
    pub fn new(accounts: &[AccountSettings], parallel_checks: usize) -> Result<Self, SetupError> {
        let mut by_login = HashMap::new();
        for account in accounts {
            check_password_hash(&account.password_hash).map_err(|problem| {
                SetupError::new(format!("account[{}].password_hash", account.login), problem)
            })?;
            by_login.insert(
                account.login.clone(),
                Entry {
                    account: Arc::new(LocalAccount {
                        login: account.login.clone(),
                        mailbox: account.mailbox.clone(),
                        oauth: account.oauth.clone(),
                        max_connections: account.max_connections,
                    }),
                    hash: account.password_hash.clone(),
                    recent: Mutex::new(None),
                },
            );
        }
        let mut random = [0u8; 32];
        getrandom::fill(&mut random)
            .map_err(|e| SetupError::new("account", format!("no randomness: {e}")))?;
        let dummy_hash = hash_password(&Secret::new(random.to_vec()))
            .map_err(|e| SetupError::new("account", e))?;
        let mut remember_key = [0u8; 32];
        getrandom::fill(&mut remember_key)
            .map_err(|e| SetupError::new("account", format!("no randomness: {e}")))?;
        Ok(LocalAccounts {
            by_login,
            dummy_hash,
            remember_key,
            checks: Arc::new(Semaphore::new(parallel_checks.max(1))),
        })
    }

    /// Whether any account is configured.
    pub fn is_empty(&self) -> bool {
        self.by_login.is_empty()
    }

    /// The account with `login`, without a password check: for the gateway's own logins (the
    /// relay account of an SMTP listener), never for a device's.
    pub fn account(&self, login: &str) -> Option<Arc<LocalAccount>> {
        self.by_login.get(login).map(|entry| entry.account.clone())
    }

    /// The account if `password` is right for `login`, else `None`. An unknown login is
    /// checked against a dummy hash so it takes as long as a wrong password. The password that
    /// last checked out for an account is remembered for [`REMEMBER_FOR`].
    pub async fn verify(
        &self,
        login: &str,
        password: &Secret,
    ) -> Result<Option<Arc<LocalAccount>>, VerifyError> {
        let entry = self.by_login.get(login);
        let digest = self.remembered(password);
        if let Some(entry) = entry {
            let recent = entry.recent.lock().expect("recent password lock");
            if let Some((known, at)) = recent.as_ref() {
                if at.elapsed() < REMEMBER_FOR && same_digest(known, &digest) {
                    return Ok(Some(entry.account.clone()));
                }
            }
        }
        let hash = entry.map_or(&self.dummy_hash, |e| &e.hash).clone();
        let password = password.clone();
        let _permit = self
            .checks
            .acquire()
            .await
            .map_err(|e| VerifyError(e.to_string()))?;
        let matches = tokio::task::spawn_blocking(move || verify(&hash, password.expose()))
            .await
            .map_err(|e| VerifyError(e.to_string()))?;
        let entry = entry.filter(|_| matches);
        if let Some(entry) = entry {
            *entry.recent.lock().expect("recent password lock") = Some((digest, Instant::now()));
        }
        Ok(entry.map(|e| e.account.clone()))
    }

    fn remembered(&self, password: &Secret) -> Remembered {
        let mut digest = Sha256::new();
        digest.update(self.remember_key);
        digest.update(password.expose());
        digest.finalize().into()
    }
}

/// Compares in time independent of where the digests differ.
fn same_digest(a: &Remembered, b: &Remembered) -> bool {
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_that_checked_out_is_remembered_and_a_wrong_one_never() {
        let accounts = LocalAccounts::new(&[settings("scanner", "right")], 1).unwrap();
        let right = Secret::new("right");
        let started = Instant::now();
        assert!(accounts.verify("scanner", &right).await.unwrap().is_some());
        let full_check = started.elapsed();
        let started = Instant::now();
        assert!(accounts.verify("scanner", &right).await.unwrap().is_some());
        let remembered = started.elapsed();
        assert!(
            remembered * 10 < full_check,
            "{remembered:?} against {full_check:?}"
        );
        assert!(accounts
            .verify("scanner", &Secret::new("wrong"))
            .await
            .unwrap()
            .is_none());
        assert!(accounts.verify("scanner", &right).await.unwrap().is_some());
    }

    fn settings(login: &str, password: &str) -> AccountSettings {
        AccountSettings {
            login: login.into(),
            password_hash: hash_password(&Secret::new(password)).unwrap(),
            mailbox: format!("{login}@contoso.com"),
            oauth: "contoso".into(),
            max_connections: Some(4),
        }
    }

    #[test]
    fn a_hash_is_an_argon2id_phc_string_that_verifies_only_its_password() {
        let hash = hash_password(&Secret::new("p a\"s\\s wörd")).unwrap();
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(check_password_hash(&hash).is_ok());
        assert!(verify(&hash, "p a\"s\\s wörd".as_bytes()));
        assert!(!verify(&hash, b"p a\"s\\s word"));
        assert!(check_password_hash("$2b$12$abcdefghijklmnopqrstuv").is_err());
        assert!(check_password_hash("secret").is_err());
        let argon2i = "$argon2i$v=19$m=16,t=2,p=1$c29tZXNhbHQ$YWJjZGVmZ2hpamtsbW5vcA";
        assert!(check_password_hash(argon2i)
            .unwrap_err()
            .contains("argon2id"));
    }

    #[tokio::test]
    async fn verify_returns_the_account_only_for_the_right_password() {
        let accounts = LocalAccounts::new(&[settings("scanner", "right")], 2).unwrap();
        let found = accounts
            .verify("scanner", &Secret::new("right"))
            .await
            .unwrap();
        assert_eq!(found.unwrap().mailbox, "scanner@contoso.com");
        assert!(accounts
            .verify("scanner", &Secret::new("wrong"))
            .await
            .unwrap()
            .is_none());
        assert!(accounts
            .verify("nobody", &Secret::new("right"))
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn an_unknown_login_costs_about_what_a_wrong_password_costs() {
        let accounts = LocalAccounts::new(&[settings("scanner", "right")], 1).unwrap();
        let time = |login: &'static str| {
            let accounts = &accounts;
            async move {
                let start = std::time::Instant::now();
                for _ in 0..3 {
                    accounts.verify(login, &Secret::new("wrong")).await.unwrap();
                }
                start.elapsed()
            }
        };
        let known = time("scanner").await;
        let unknown = time("nobody").await;
        let ratio = unknown.as_secs_f64() / known.as_secs_f64();
        assert!(
            (0.5..2.0).contains(&ratio),
            "known {known:?}, unknown {unknown:?}"
        );
    }

    #[test]
    fn a_bad_hash_in_the_config_names_the_account() {
        let mut bad = settings("scanner", "x");
        bad.password_hash = "plain".into();
        let err = LocalAccounts::new(&[bad], 1).unwrap_err();
        assert_eq!(err.field, "account[scanner].password_hash");
    }
}
