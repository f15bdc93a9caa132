//! The config file's shape, exactly as written in TOML. Unknown keys are errors: a typo must
//! not silently fall back to a default.

use std::collections::BTreeMap;

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
    pub dashboard: DashboardSection,
    #[serde(default)]
    pub upstream: Vec<UpstreamEntry>,
    #[serde(default)]
    pub listener: Vec<ListenerEntry>,
    #[serde(default)]
    pub oauth: Vec<OAuthEntry>,
    #[serde(default)]
    pub account: Vec<AccountEntry>,
    pub token_cache: Option<TokenCacheSection>,
    /// `[policy.NAME]` sections, by name.
    #[serde(default)]
    pub policy: BTreeMap<String, PolicyEntry>,
    /// The exception register, `[[exception]]` in order, when it lives in the config itself.
    #[serde(default)]
    pub exception: Vec<ExceptionEntry>,
    /// `[exception_register]`: the register in a file of its own instead.
    pub exception_register: Option<ExceptionRegisterSection>,
    /// The id `mailtls exceptions add` gives next, kept beside the `[[exception]]` entries
    /// (here, or at the top of the register's own file) so no id is given twice.
    pub next_exception_id: Option<i64>,
}

/// `[exception_register] file = "exceptions.toml"`: the `[[exception]]` entries live in that
/// file (relative to the config's folder), so `mailtls exceptions add|remove|renew` and the
/// people who approve exceptions edit it without touching listeners or upstreams.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionRegisterSection {
    pub file: Option<String>,
}

/// The file `[exception_register] file` names: nothing but `[[exception]]` entries.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionFile {
    /// As [`ConfigFile::next_exception_id`].
    pub next_exception_id: Option<i64>,
    #[serde(default)]
    pub exception: Vec<ExceptionEntry>,
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
    /// Where the gateway writes its process id while it serves, for `mailtls reload`.
    pub pid_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// A SQLite file (the default, `mailtls.db` beside the config).
    pub path: Option<String>,
    /// A PostgreSQL store: `postgres://USER@HOST:PORT/DB?sslmode=require`.
    pub url: Option<String>,
    pub password_file: Option<String>,
    pub ca_file: Option<String>,
    /// How long raw sessions are kept, e.g. "400d".
    pub keep_sessions: Option<String>,
}

/// `[metrics]`: present means serve Prometheus metrics.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    pub bind: Option<String>,
}

/// `[dashboard]`: where `mailtls dashboard` listens and the token it asks for.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardSection {
    pub bind: Option<String>,
    pub token_file: Option<String>,
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
    /// The `[policy.NAME]` this listener applies.
    pub policy: Option<String>,
    /// The legacy opt-in endpoint: only clients with a live exception get through.
    pub opt_in: Option<bool>,
    /// `[listener.relay]`: SMTP mail without authentication from listed networks and senders.
    pub relay: Option<RelaySection>,
}

/// `[listener.relay]` of an SMTP listener: devices that cannot authenticate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelaySection {
    /// The devices' networks ("10.20.0.0/24") or addresses.
    pub networks: Option<Vec<String>>,
    /// The envelope senders they may use, whole addresses.
    pub senders: Option<Vec<String>>,
    /// The `[[account]]` to log in as, on an upstream with auth = "oauth".
    pub account: Option<String>,
    /// A file with a user name line and a password line, on a pass-through upstream.
    pub credentials_file: Option<String>,
}

/// `[policy.NAME]`: a TLS floor phased in between two dates.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyEntry {
    pub min_tls: Option<String>,
    /// "monitor", "warn" or "enforce".
    pub mode: Option<String>,
    /// "2026-08-01" (midnight UTC) or an RFC 3339 instant.
    pub start: Option<String>,
    pub end: Option<String>,
    pub message: Option<String>,
    /// A deployment secret that keys the rollout cohorts; default: derived from the name.
    pub cohort_key: Option<String>,
}

/// `[[exception]]`: clients allowed below the floor, with an owner, a reason, an expiry and
/// a plan.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionEntry {
    /// Its stable id, written by `mailtls exceptions add`; without one, its 1-based position.
    pub id: Option<i64>,
    pub client: Option<String>,
    pub user: Option<String>,
    pub ja4: Option<String>,
    pub owner: Option<String>,
    pub reason: Option<String>,
    pub expires: Option<String>,
    pub plan: Option<String>,
    pub allow_broad: Option<bool>,
    /// When it was added ("2026-12-03"), written by `mailtls exceptions add`: an exception is
    /// only called unused once it has had 30 days to match.
    pub added: Option<String>,
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
