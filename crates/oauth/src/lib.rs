//! OAuth 2.0 for the gateway's upstream logins: token grants against any OAuth 2.0 token
//! endpoint (client credentials with a secret or a certificate assertion, device code, refresh
//! tokens), a broker that caches one token per (app, mailbox, scope) and refreshes it ahead of
//! expiry, the encrypted token cache on disk, and the local accounts devices log in with.
//!
//! The decisions (when a token is due, what a cache key is, what the cache file holds) take the
//! time as an argument and are tested without I/O; [`TokenEndpoint`], [`TokenBroker`] and
//! [`LocalAccounts`] are the async shells around them.

#![warn(missing_docs)]

mod accounts;
mod assertion;
mod broker;
mod cache;
mod endpoint;
mod error;
mod lifetime;
pub mod settings;

pub use accounts::{check_password_hash, hash_password, LocalAccount, LocalAccounts, VerifyError};
pub use assertion::ClientCertificate;
pub use broker::{AccessToken, SignedIn, TokenBroker, TokenStatus};
pub use cache::{CacheKey, CachedToken, RefreshFailure, TokenCacheFile};
pub use endpoint::{endpoint_url, DeviceLogin, IssuedToken, TokenEndpoint};
pub use error::{CacheError, SetupError, TokenError};
pub use lifetime::{Freshness, Lifetime, TokenKey, DEFAULT_LIFETIME};
pub use proto::Secret;
