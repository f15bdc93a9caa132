//! The OAuth side of the validated config: token endpoints (`[[oauth]]`), local accounts
//! (`[[account]]`) and the encrypted token cache (`[token_cache]`). The `cli` crate reads and
//! checks the TOML; this crate and the gateway consume these types.

use std::path::PathBuf;

/// How an OAuth app obtains tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// App-only tokens (Exchange Online `IMAP.AccessAsApp`/`POP.AccessAsApp`): no user involved.
    ClientCredentials,
    /// Delegated tokens: an admin signs in once with `mailtls oauth login ACCOUNT`; the refresh
    /// token obtained then keeps the access tokens coming.
    DeviceCode,
}

/// How the app proves its identity to the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// A client secret, read from this file (surrounding whitespace ignored).
    SecretFile(PathBuf),
    /// A signed JWT client assertion (RS256, `x5t#S256` header), as Microsoft Entra ID accepts
    /// for certificate credentials.
    Certificate {
        /// PEM certificate registered with the app.
        certificate: PathBuf,
        /// PEM RSA private key of that certificate.
        private_key: PathBuf,
    },
    /// A public client (device code only): the client id alone.
    Public,
}

/// One `[[oauth]]` entry: an app registered with a token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSettings {
    /// The name accounts refer to.
    pub name: String,
    /// The token endpoint, HTTPS (plain HTTP only on a loopback address).
    pub token_url: String,
    /// The device authorization endpoint; required for [`Grant::DeviceCode`].
    pub device_url: Option<String>,
    /// The app (client) id.
    pub client_id: String,
    /// How the app authenticates.
    pub client_auth: ClientAuth,
    /// Space-separated scopes, e.g. `https://outlook.office365.com/.default`.
    pub scope: String,
    /// The grant used for this app's accounts.
    pub grant: Grant,
    /// Extra CA certificates trusted for the token endpoint, beside the system roots.
    pub ca_file: Option<PathBuf>,
}

/// One `[[account]]`: a local login mapped to a mailbox signed in through an app.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountSettings {
    /// The login a device sends to the gateway.
    pub login: String,
    /// Argon2id PHC string (`mailtls passwd` prints one).
    pub password_hash: String,
    /// The mailbox the gateway logs in to upstream (the `user=` of XOAUTH2).
    pub mailbox: String,
    /// The `[[oauth]]` entry whose tokens open the mailbox.
    pub oauth: String,
    /// Most gateway sessions open at once for this mailbox (Exchange throttles per mailbox).
    pub max_connections: Option<u32>,
}

// The hash is not a secret by itself, but it lets an attacker guess passwords offline.
impl std::fmt::Debug for AccountSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountSettings")
            .field("login", &self.login)
            .field("mailbox", &self.mailbox)
            .field("oauth", &self.oauth)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

/// Where the token cache's 32-byte key comes from. Either way it is written in base64
/// (`openssl rand -base64 32`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheKeySource {
    /// A file holding the base64 key (surrounding whitespace ignored).
    File(PathBuf),
    /// An environment variable holding the base64 key.
    Env(String),
}

/// `[token_cache]`: the encrypted file that keeps tokens across restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenCacheSettings {
    /// The encrypted file.
    pub path: PathBuf,
    /// Its key.
    pub key: CacheKeySource,
}

/// Everything OAuth: apps, accounts and the cache. Empty apps and accounts mean the gateway
/// only passes client passwords through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    /// The `[[oauth]]` entries.
    pub apps: Vec<AppSettings>,
    /// The `[[account]]` entries.
    pub accounts: Vec<AccountSettings>,
    /// `[token_cache]`; `None` when no app is configured.
    pub token_cache: Option<TokenCacheSettings>,
}
