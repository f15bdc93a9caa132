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
