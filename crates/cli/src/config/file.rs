//! The config file's shape, exactly as written in TOML. Unknown keys are errors: a typo must
//! not silently fall back to a default.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub gateway: GatewaySection,
    #[serde(default)]
    pub store: StoreSection,
    pub metrics: Option<MetricsSection>,
    #[serde(default)]
    pub upstream: Vec<UpstreamEntry>,
    #[serde(default)]
    pub listener: Vec<ListenerEntry>,
    #[serde(default)]
    pub oauth: Vec<OAuthEntry>,
    #[serde(default)]
    pub account: Vec<AccountEntry>,
    pub token_cache: Option<TokenCacheSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    pub max_sessions: Option<usize>,
    pub max_unauthenticated: Option<usize>,
    pub max_unauthenticated_per_client: Option<u32>,
    pub failed_logins_per_client: Option<u32>,
    pub failed_login_window_secs: Option<u64>,
    pub pre_auth_timeout_secs: Option<u64>,
    pub client_handshake_timeout_secs: Option<u64>,
    pub upstream_timeout_secs: Option<u64>,
    /// "text" (default) or "json".
    pub log_format: Option<String>,
    /// The account to serve as once ports are bound and files opened, when started as root.
    pub user: Option<String>,
    /// The group to serve as instead of the user's primary group; it may read the store.
    pub group: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    pub path: Option<String>,
}

/// `[metrics]`: present means serve Prometheus metrics.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    pub bind: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamEntry {
    pub name: Option<String>,
    pub address: Option<String>,
    pub protocol: Option<String>,
    pub tls: Option<String>,
    pub ca_file: Option<String>,
    pub server_name: Option<String>,
    /// "passthrough" (default) or "oauth".
    pub auth: Option<String>,
    /// "xoauth2" (default with oauth) or "oauthbearer".
    pub sasl: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerEntry {
    pub name: Option<String>,
    pub protocol: Option<String>,
    pub bind: Option<String>,
    pub tls: Option<String>,
    pub min_tls: Option<String>,
    pub certificate: Option<String>,
    pub key: Option<String>,
    pub upstream: Option<String>,
    pub greeting: Option<String>,
    /// Clients arrive through load balancers that send a PROXY protocol header.
    pub proxy_protocol: Option<bool>,
    /// The load balancers' networks ("10.0.0.0/8") or addresses; required with proxy_protocol.
    pub proxy_from: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthEntry {
    pub name: Option<String>,
    pub token_url: Option<String>,
    pub device_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_file: Option<String>,
    pub certificate: Option<String>,
    pub private_key: Option<String>,
    pub scope: Option<String>,
    /// "client_credentials" or "device_code".
    pub grant: Option<String>,
    pub ca_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountEntry {
    pub login: Option<String>,
    pub password_hash: Option<String>,
    pub mailbox: Option<String>,
    pub oauth: Option<String>,
    pub max_connections: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenCacheSection {
    pub path: Option<String>,
    pub key_file: Option<String>,
    pub key_env: Option<String>,
}
