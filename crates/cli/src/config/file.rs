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
    #[serde(default)]
    pub upstream: Vec<UpstreamEntry>,
    #[serde(default)]
    pub listener: Vec<ListenerEntry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    pub max_sessions: Option<usize>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamEntry {
    pub name: Option<String>,
    pub address: Option<String>,
    pub protocol: Option<String>,
    pub tls: Option<String>,
    pub ca_file: Option<String>,
    pub server_name: Option<String>,
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
}
