//! The token broker: one access token per (app, mailbox, scope), shared by every session of
//! that mailbox, fetched ahead of its expiry and kept in the encrypted cache. Concurrent logins
//! that find no usable token queue behind one request to the endpoint (single flight): a
//! thousand devices logging in at once cost one token request, and, if the endpoint fails, one
//! failure they all share.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use proto::Secret;

use crate::cache::{CacheKey, CachedToken, RefreshFailure, TokenCacheFile};
use crate::endpoint::{DeviceLogin, IssuedToken, TokenEndpoint};
use crate::error::{SetupError, TokenError};
use crate::lifetime::{Freshness, Lifetime, TokenKey};
use crate::settings::{Grant, OAuthSettings};

/// An access token ready to be sent upstream.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The bearer token.
    pub token: Secret,
    /// When it was issued and when it expires.
    pub lifetime: Lifetime,
}

/// What `mailtls oauth status` shows for one cached token: never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenStatus {
    /// The cache key.
    pub key: TokenKey,
    /// When the cached access token expires, if one is cached.
    pub expires_at: Option<SystemTime>,
    /// Whether a refresh token is held.
    pub has_refresh_token: bool,
    /// The last failure to obtain a token, if the last attempt failed.
    pub last_error: Option<RefreshFailure>,
}

/// The outcome of a device sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedIn {
    /// Whether the endpoint issued a refresh token (without one, the account must sign in
    /// again when the access token expires: ask for the `offline_access` scope).
    pub refresh_token: bool,
    /// When the access token expires.
    pub expires_at: SystemTime,
}

/// One key's queue: whoever holds `turn` talks to the endpoint; the others wait and then use
/// its result.
#[derive(Default)]
struct Flight {
    turn: tokio::sync::Mutex<()>,
    attempts: AtomicU64,
    last_failure: Mutex<Option<(u64, TokenError)>>,
}

/// Tokens for every configured app and mailbox.
pub struct TokenBroker {
    endpoints: HashMap<String, Arc<TokenEndpoint>>,
    tokens: tokio::sync::Mutex<BTreeMap<TokenKey, CachedToken>>,
    file: Option<Arc<TokenCacheFile>>,
    flights: Mutex<HashMap<TokenKey, Arc<Flight>>>,
    requests: AtomicU64,
}

impl std::fmt::Debug for TokenBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBroker")
            .field("apps", &self.endpoints.keys().collect::<Vec<_>>())
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl TokenBroker {
    /// Loads every app's credentials and opens the token cache. A missing or wrong cache key is
    /// an error here, at startup, never a silently emptied cache.
    pub fn open(settings: &OAuthSettings) -> Result<Self, SetupError> {
        let mut endpoints = HashMap::new();
        for app in &settings.apps {
            let endpoint =
                TokenEndpoint::new(app).map_err(|e| e.within(&format!("oauth[{}]", app.name)))?;
            endpoints.insert(app.name.clone(), Arc::new(endpoint));
        }
        let (file, cached) = match &settings.token_cache {
            Some(cache) => {
                let key = CacheKey::load(&cache.key)
                    .map_err(|e| SetupError::new("token_cache", e.to_string()))?;
                let (file, cached) = TokenCacheFile::open(&cache.path, &key)
                    .map_err(|e| SetupError::new("token_cache", e.to_string()))?;
                (Some(Arc::new(file)), cached)
            }
            None => (None, Vec::new()),
        };
        Ok(TokenBroker {
            endpoints,
            tokens: tokio::sync::Mutex::new(
                cached.into_iter().map(|t| (t.key.clone(), t)).collect(),
            ),
            file,
            flights: Mutex::new(HashMap::new()),
            requests: AtomicU64::new(0),
        })
    }

    /// How many requests this broker has sent to token endpoints.
    pub fn requests_made(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn endpoint(&self, app: &str) -> Result<&Arc<TokenEndpoint>, TokenError> {
        self.endpoints
            .get(app)
            .ok_or_else(|| TokenError::UnknownApp(app.to_string()))
    }

    /// The cache key of `mailbox` through `app`.
    pub fn key(&self, app: &str, mailbox: &str) -> Result<TokenKey, TokenError> {
        Ok(TokenKey {
            app: app.to_string(),
            mailbox: mailbox.to_string(),
            scope: self.endpoint(app)?.scope(),
        })
    }

    async fn cached(
        &self,
        key: &TokenKey,
        now: SystemTime,
        accept: &[Freshness],
    ) -> Option<AccessToken> {
        let tokens = self.tokens.lock().await;
        let (token, lifetime) = tokens.get(key)?.access.as_ref()?;
        accept
            .contains(&lifetime.freshness(now))
            .then(|| AccessToken {
                token: token.clone(),
                lifetime: *lifetime,
            })
    }

    fn flight(&self, key: &TokenKey) -> Arc<Flight> {
        self.flights
            .lock()
            .expect("flight table lock")
            .entry(key.clone())
            .or_default()
            .clone()
    }

    /// An access token for `mailbox` through `app`: the cached one while it is fresh, else a new
    /// one from the endpoint (client credentials, or the refresh token of a device sign-in).
    /// While a token is due for refresh but not yet expired, a failed refresh still returns
    /// the old token (and records the failure for `mailtls oauth status`).
    pub async fn token(&self, app: &str, mailbox: &str) -> Result<AccessToken, TokenError> {
        let key = self.key(app, mailbox)?;
        if let Some(token) = self
            .cached(&key, SystemTime::now(), &[Freshness::Fresh])
            .await
        {
            return Ok(token);
        }
        let flight = self.flight(&key);
        let seen = flight.attempts.load(Ordering::SeqCst);
        let _turn = flight.turn.lock().await;
        let now = SystemTime::now();
        if flight.attempts.load(Ordering::SeqCst) != seen {
            // Someone fetched while this caller waited: share their outcome.
            let usable = [Freshness::Fresh, Freshness::RefreshDue];
            if let Some(token) = self.cached(&key, now, &usable).await {
                return Ok(token);
            }
            let failure = flight.last_failure.lock().expect("failure lock").clone();
            if let Some((attempt, error)) = failure {
                if attempt > seen {
                    return Err(error);
                }
            }
        } else if let Some(token) = self.cached(&key, now, &[Freshness::Fresh]).await {
            return Ok(token);
        }

        let result = self.fetch(&key, now).await;
        let attempt = flight.attempts.load(Ordering::SeqCst) + 1;
        match result {
            Ok(token) => {
                *flight.last_failure.lock().expect("failure lock") = None;
                flight.attempts.store(attempt, Ordering::SeqCst);
                Ok(token)
            }
            Err(error) => {
                *flight.last_failure.lock().expect("failure lock") = Some((attempt, error.clone()));
                flight.attempts.store(attempt, Ordering::SeqCst);
                match self.cached(&key, now, &[Freshness::RefreshDue]).await {
                    Some(old) => Ok(old),
                    None => Err(error),
                }
            }
        }
    }

    /// Drops the cached access token of `mailbox` through `app` if it is still `refused`, the
    /// token the upstream just refused (revoked, or its permissions changed): the next login
    /// fetches a new one instead of presenting it again until it expires. A refresh token is
    /// kept, and a newer token that another login fetched meanwhile is left alone.
    pub async fn forget_refused(&self, app: &str, mailbox: &str, refused: &Secret) {
        let Ok(key) = self.key(app, mailbox) else {
            return;
        };
        let mut tokens = self.tokens.lock().await;
        if let Some(cached) = tokens.get_mut(&key) {
            if cached
                .access
                .as_ref()
                .is_some_and(|(token, _)| token == refused)
            {
                cached.access = None;
                cached.updated_at = SystemTime::now();
                tracing::info!(
                    app,
                    mailbox,
                    "the upstream refused the access token; dropped it"
                );
            }
        }
    }

    /// One request to the endpoint for `key`, its outcome stored in the cache.
    async fn fetch(&self, key: &TokenKey, now: SystemTime) -> Result<AccessToken, TokenError> {
        let endpoint = self.endpoint(&key.app)?.clone();
        let result = match endpoint.grant() {
            Grant::ClientCredentials => {
                self.requests.fetch_add(1, Ordering::Relaxed);
                endpoint.client_credentials(now).await
            }
            Grant::DeviceCode => {
                let mut tokens = self.tokens.lock().await;
                if tokens.get(key).is_none_or(|t| t.refresh.is_none()) {
                    // `mailtls oauth login` may have signed the mailbox in since the start:
                    // its token serves as it is, while fresh.
                    self.persist(&mut tokens).await;
                    let signed_in = tokens.get(key).and_then(|t| t.access.as_ref());
                    if let Some((token, lifetime)) = signed_in {
                        if lifetime.freshness(now) == Freshness::Fresh {
                            return Ok(AccessToken {
                                token: token.clone(),
                                lifetime: *lifetime,
                            });
                        }
                    }
                }
                let refresh = tokens.get(key).and_then(|t| t.refresh.clone());
                drop(tokens);
                match refresh {
                    Some(refresh) => {
                        self.requests.fetch_add(1, Ordering::Relaxed);
                        endpoint.refresh(&refresh, now).await
                    }
                    None => Err(TokenError::NotSignedIn {
                        mailbox: key.mailbox.clone(),
                    }),
                }
            }
        };
        match result {
            Ok(issued) => {
                let token = self.store(key, issued, now).await;
                tracing::info!(
                    app = %key.app,
                    mailbox = %key.mailbox,
                    expires_in_secs = token.lifetime.expires_at.duration_since(now).unwrap_or_default().as_secs(),
                    "access token obtained"
                );
                Ok(token)
            }
            Err(error) => {
                tracing::warn!(app = %key.app, mailbox = %key.mailbox, %error, "no access token");
                let mut tokens = self.tokens.lock().await;
                let entry = tokens.entry(key.clone()).or_insert_with(|| empty(key));
                entry.last_error = Some(RefreshFailure {
                    at: now,
                    message: error.to_string(),
                });
                entry.updated_at = now;
                self.persist(&mut tokens).await;
                Err(error)
            }
        }
    }

    async fn store(&self, key: &TokenKey, issued: IssuedToken, now: SystemTime) -> AccessToken {
        let lifetime = Lifetime::starting(now, issued.expires_in);
        let mut tokens = self.tokens.lock().await;
        let entry = tokens.entry(key.clone()).or_insert_with(|| empty(key));
        entry.access = Some((issued.access.clone(), lifetime));
        // Endpoints may rotate the refresh token or keep the old one valid without resending it.
        if let Some(refresh) = issued.refresh {
            entry.refresh = Some(refresh);
        }
        entry.last_error = None;
        entry.updated_at = now;
        self.persist(&mut tokens).await;
        AccessToken {
            token: issued.access,
            lifetime,
        }
    }

    /// Writes the whole cache off the reactor, merged with what another process (`mailtls
    /// oauth login`, another gateway) wrote meanwhile, and takes their newer entries into
    /// `tokens`. A failed write is logged, not fatal: the token in memory still serves, and
    /// the next write tries again.
    async fn persist(&self, tokens: &mut BTreeMap<TokenKey, CachedToken>) {
        let Some(file) = self.file.clone() else {
            return;
        };
        let snapshot: Vec<CachedToken> = tokens.values().cloned().collect();
        let written = tokio::task::spawn_blocking(move || file.merge_write(&snapshot)).await;
        match written {
            Ok(Ok(merged)) => {
                for token in merged {
                    tokens.insert(token.key.clone(), token);
                }
            }
            Ok(Err(error)) => tracing::error!(%error, "token cache not written"),
            Err(error) => tracing::error!(%error, "token cache writer failed"),
        }
    }

    /// Signs `mailbox` in through `app` with the device code flow: `show` gets the code and
    /// URL for the person signing in; the call returns once they have (or the code expired).
    pub async fn sign_in_with_device_code(
        &self,
        app: &str,
        mailbox: &str,
        show: impl FnOnce(&DeviceLogin),
    ) -> Result<SignedIn, TokenError> {
        let key = self.key(app, mailbox)?;
        let endpoint = self.endpoint(app)?.clone();
        self.requests.fetch_add(1, Ordering::Relaxed);
        let login = endpoint.start_device_login().await?;
        show(&login);
        let issued = endpoint.finish_device_login(&login).await?;
        let refresh_token = issued.refresh.is_some();
        let token = self.store(&key, issued, SystemTime::now()).await;
        Ok(SignedIn {
            refresh_token,
            expires_at: token.lifetime.expires_at,
        })
    }

    /// Every cached token's expiry and last error, never a token.
    pub async fn status(&self) -> Vec<TokenStatus> {
        self.tokens
            .lock()
            .await
            .values()
            .map(|t| TokenStatus {
                key: t.key.clone(),
                expires_at: t.access.as_ref().map(|(_, l)| l.expires_at),
                has_refresh_token: t.refresh.is_some(),
                last_error: t.last_error.clone(),
            })
            .collect()
    }
}

fn empty(key: &TokenKey) -> CachedToken {
    CachedToken {
        key: key.clone(),
        access: None,
        refresh: None,
        last_error: None,
        updated_at: UNIX_EPOCH,
    }
}
