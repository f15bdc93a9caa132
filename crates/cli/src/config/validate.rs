//! Turns the config file into gateway settings, collecting every problem with its key.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gateway::settings::{
    ClientLimitSettings, ClientTlsMode, GatewaySettings, ListenerSettings, OAuthMechanism,
    Protocol, ProxyProtocol, Timeouts, UpstreamLogin, UpstreamSettings, UpstreamTlsMode,
};
use ipnet::IpNet;
use wire::TlsVersion;

use nix::unistd::{Group, User};

use super::enforcement;
use super::file::{
    AccountEntry, ConfigFile, GatewaySection, ListenerEntry, MetricsSection, UpstreamEntry,
};
use super::Config;
use crate::run_as::RunAs;
use store::{StoreAccess, StoreLocation};

/// One thing wrong with the config: where, what, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl ConfigProblem {
    pub fn new(key: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        ConfigProblem {
            key: key.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}; {}", self.key, self.problem, self.fix)
    }
}

/// Collects problems while the config is read, so all of them are reported at once.
pub(super) struct Checker<'a> {
    pub(super) base: &'a Path,
    problems: Vec<ConfigProblem>,
}

impl Checker<'_> {
    pub(super) fn report(&mut self, key: &str, problem: impl Into<String>, fix: impl Into<String>) {
        self.problems.push(ConfigProblem::new(key, problem, fix));
    }

    pub(super) fn required<'v>(
        &mut self,
        key: &str,
        value: &'v Option<String>,
        example: &str,
    ) -> Option<&'v str> {
        match value.as_deref() {
            Some(v) if !v.trim().is_empty() => Some(v),
            _ => {
                self.report(key, "is missing", format!("set it, e.g. {key} = {example}"));
                None
            }
        }
    }

    pub(super) fn choice<T: Copy>(
        &mut self,
        key: &str,
        value: Option<&str>,
        options: &[(&str, T)],
        default: Option<T>,
    ) -> Option<T> {
        let names = options
            .iter()
            .map(|(n, _)| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ");
        match value {
            None => {
                if default.is_none() {
                    self.report(key, "is missing", format!("set it to one of {names}"));
                }
                default
            }
            Some(v) => match options.iter().find(|(n, _)| *n == v) {
                Some((_, t)) => Some(*t),
                None => {
                    self.report(
                        key,
                        format!("\"{v}\" is not a known value"),
                        format!("use one of {names}"),
                    );
                    None
                }
            },
        }
    }

    /// A PEM file the gateway will read: relative paths are taken from the config's folder.
    pub(super) fn existing_file(&mut self, key: &str, value: &str) -> Option<PathBuf> {
        self.existing(key, value, "a PEM file")
    }

    /// A file of `kind` the gateway will read, relative to the config's folder.
    pub(super) fn existing(&mut self, key: &str, value: &str, kind: &str) -> Option<PathBuf> {
        let path = self.base.join(value);
        if path.is_file() {
            Some(path)
        } else {
            self.report(
                key,
                format!("{} does not exist or is not a file", path.display()),
                format!("give the path of {kind} (relative paths start at the config's folder)"),
            );
            None
        }
    }
}

/// The floors a listener (or a policy) may have: SSLv3 is never offered.
pub(super) const LISTENER_VERSIONS: [TlsVersion; 4] = [
    TlsVersion::Tls10,
    TlsVersion::Tls11,
    TlsVersion::Tls12,
    TlsVersion::Tls13,
];

const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

const PROTOCOLS: &[(&str, Protocol)] = &[
    ("imap", Protocol::Imap),
    ("pop3", Protocol::Pop3),
    ("smtp", Protocol::Smtp),
];

pub(super) fn validate(raw: ConfigFile, base: &Path) -> Result<Config, Vec<ConfigProblem>> {
    let mut c = Checker {
        base,
        problems: Vec::new(),
    };
    let defaults = Timeouts::default();
    let secs = |v: Option<u64>, d: Duration| v.map(Duration::from_secs).unwrap_or(d);
    let timeouts = Timeouts {
        pre_auth: secs(raw.gateway.pre_auth_timeout_secs, defaults.pre_auth),
        client_handshake: secs(
            raw.gateway.client_handshake_timeout_secs,
            defaults.client_handshake,
        ),
        upstream: secs(raw.gateway.upstream_timeout_secs, defaults.upstream),
    };
    for (key, value) in [
        ("gateway.pre_auth_timeout_secs", timeouts.pre_auth),
        (
            "gateway.client_handshake_timeout_secs",
            timeouts.client_handshake,
        ),
        ("gateway.upstream_timeout_secs", timeouts.upstream),
    ] {
        // A day is far past any useful limit; larger values would overflow the clock.
        if value.is_zero() || value > MAX_TIMEOUT {
            c.report(
                key,
                format!("is {} s", value.as_secs()),
                "use a number of seconds from 1 to 86400",
            );
        }
    }
    let max_sessions = raw.gateway.max_sessions.unwrap_or(10_000);
    if max_sessions == 0 {
        c.report(
            "gateway.max_sessions",
            "is 0",
            "use a positive number, e.g. 10000",
        );
    }
    let client_limits = client_limits(&mut c, &raw.gateway);
    let log_json = c.choice(
        "gateway.log_format",
        raw.gateway.log_format.as_deref(),
        &[("text", false), ("json", true)],
        Some(false),
    );
    let run_as = run_as(&mut c, &raw.gateway);
    let pid_file = raw
        .gateway
        .pid_file
        .as_deref()
        .and_then(|path| pid_file(&mut c, path));

    // Names are checked on the raw entries, so an entry with other faults still counts.
    unique_names(
        &mut c,
        "upstream",
        "name",
        raw.upstream.iter().filter_map(|u| u.name.as_deref()),
    );
    unique_names(
        &mut c,
        "listener",
        "name",
        raw.listener.iter().filter_map(|l| l.name.as_deref()),
    );
    let upstreams: Vec<UpstreamSettings> = raw
        .upstream
        .iter()
        .enumerate()
        .filter_map(|(i, u)| upstream(&mut c, i, u))
        .collect();
    let listeners: Vec<ListenerSettings> = raw
        .listener
        .iter()
        .enumerate()
        .filter_map(|(i, l)| listener(&mut c, i, l, &raw.upstream, &upstreams, &raw.account))
        .collect();
    if raw.listener.is_empty() {
        c.report(
            "listener",
            "no [[listener]] is defined",
            "add one; examples/ has ready configs",
        );
    }

    let metrics_bind = raw
        .metrics
        .as_ref()
        .and_then(|m| metrics_bind(&mut c, m, &listeners));

    let policy = enforcement::policy_set(&mut c, &raw);
    let dashboard = super::dashboard::validate(&mut c, &raw.dashboard, &listeners, metrics_bind);

    let access = run_as
        .as_ref()
        .map_or(StoreAccess::default(), RunAs::store_access);
    let store = super::store_section::location(&mut c, &raw.store, access);
    let keep_sessions = super::store_section::keep_sessions(&mut c, &raw.store);
    // The token cache's default place is beside the SQLite store, or the config with PostgreSQL.
    let sqlite_path = match &store {
        Some(StoreLocation::Sqlite { path, .. }) => path.clone(),
        _ => base.join("mailtls.db"),
    };
    let oauth = super::oauth::validate(&mut c, &raw, &sqlite_path);
    if upstreams
        .iter()
        .any(|u| matches!(u.login, UpstreamLogin::OAuth(_)))
        && raw.account.is_empty()
    {
        c.report(
            "account",
            "an [[upstream]] has auth = \"oauth\" but no [[account]] is defined",
            "add an [[account]] per device login (see examples/exchange-online-oauth.toml)",
        );
    }
    let warnings = listeners
        .iter()
        .flat_map(|l| {
            [
                cleartext_beyond_trusted(l),
                super::relay::relay_beyond_trusted(l),
            ]
        })
        .flatten()
        .collect();
    if let (true, Some(policy), Some(store)) = (c.problems.is_empty(), policy, store) {
        Ok(Config {
            gateway: GatewaySettings {
                listeners,
                upstreams,
                timeouts,
                max_sessions,
                client_limits,
            },
            store,
            keep_sessions,
            oauth,
            log_json: log_json.unwrap_or(false),
            metrics_bind,
            dashboard,
            run_as,
            pid_file,
            policy: Arc::new(policy),
            warnings,
        })
    } else {
        Err(c.problems)
    }
}

/// A `tls = "none"` listener that binds beyond loopback and private networks: its clients send
/// passwords in the clear, which is only acceptable on a trusted segment. A warning, not an
/// error: a device network may use public addresses behind a firewall.
fn cleartext_beyond_trusted(listener: &ListenerSettings) -> Option<ConfigProblem> {
    if listener.tls != ClientTlsMode::None {
        return None;
    }
    let trusted = super::relay::on_trusted_network(listener.bind.ip());
    (!trusted).then(|| {
        ConfigProblem::new(
            format!("listener[{}].bind", listener.name),
            format!(
                "{} is beyond loopback and private networks, and tls = \"none\" lets clients send passwords there in the clear",
                listener.bind
            ),
            "bind it to an address on the devices' trusted segment (e.g. 10.0.0.1:25), or use tls = \"starttls\"",
        )
    })
}

/// `[metrics] bind`: required once the section is there, and not a listener's socket.
fn metrics_bind(
    c: &mut Checker,
    metrics: &MetricsSection,
    listeners: &[ListenerSettings],
) -> Option<SocketAddr> {
    let text = c.required("metrics.bind", &metrics.bind, "\"127.0.0.1:9109\"")?;
    let Ok(addr) = text.parse::<SocketAddr>() else {
        c.report(
            "metrics.bind",
            format!("\"{text}\" is not an IP:port"),
            "write e.g. \"127.0.0.1:9109\" (keep it off networks clients reach)",
        );
        return None;
    };
    if let Some(l) = listeners.iter().find(|l| l.bind == addr) {
        c.report(
            "metrics.bind",
            format!("{addr} is also the bind of listener {}", l.name),
            "give the metrics endpoint a port of its own, e.g. 9109",
        );
        return None;
    }
    Some(addr)
}

/// `[gateway] pid_file`: relative to the config's folder, in a folder that exists.
fn pid_file(c: &mut Checker, path: &str) -> Option<PathBuf> {
    let fix = "give a file in a folder the gateway's user may write, e.g. \"/run/mailtls/mailtls.pid\" (systemd: RuntimeDirectory=mailtls)";
    if path.trim().is_empty() || path.ends_with('/') {
        c.report(
            "gateway.pid_file",
            format!("\"{path}\" is not a file name"),
            fix,
        );
        return None;
    }
    let file = c.base.join(path);
    match file.parent() {
        Some(folder) if folder.is_dir() => Some(file),
        _ => {
            c.report(
                "gateway.pid_file",
                format!("the folder of {} does not exist", file.display()),
                fix,
            );
            None
        }
    }
}

/// `[gateway] user` and `group`, looked up in the system's user and group databases now, so
/// `check-config` reports a missing account before the gateway has bound anything.
fn run_as(c: &mut Checker, gateway: &GatewaySection) -> Option<RunAs> {
    let create_user = |name: &str| {
        format!(
            "create it (useradd --system --no-create-home --shell /usr/sbin/nologin {name}) or \
             name an existing unprivileged user"
        )
    };
    let Some(name) = gateway.user.as_deref() else {
        if gateway.group.is_some() {
            c.report(
                "gateway.group",
                "is set but gateway.user is not",
                "set gateway.user too: the group is the one the gateway switches to with it",
            );
        }
        return None;
    };
    let user = match User::from_name(name) {
        Ok(Some(user)) => user,
        Ok(None) => {
            c.report(
                "gateway.user",
                format!("no user is named \"{name}\""),
                create_user(name),
            );
            return None;
        }
        Err(e) => {
            c.report(
                "gateway.user",
                format!("cannot look up \"{name}\": {e}"),
                "check the system's user database (getent passwd)",
            );
            return None;
        }
    };
    if user.uid.is_root() {
        c.report(
            "gateway.user",
            format!("\"{name}\" is root, so nothing would be given up"),
            create_user("mailtls"),
        );
        return None;
    }
    let gid = match gateway.group.as_deref() {
        None => user.gid,
        Some(group) => match Group::from_name(group) {
            Ok(Some(found)) if found.gid.as_raw() != 0 => found.gid,
            Ok(Some(_)) => {
                c.report(
                    "gateway.group",
                    format!("\"{group}\" is root's group"),
                    "name a group that owns nothing of the system, or leave it out",
                );
                return None;
            }
            Ok(None) => {
                c.report(
                    "gateway.group",
                    format!("no group is named \"{group}\""),
                    format!("create it (groupadd --system {group}) or leave it out"),
                );
                return None;
            }
            Err(e) => {
                c.report(
                    "gateway.group",
                    format!("cannot look up \"{group}\": {e}"),
                    "check the system's group database (getent group)",
                );
                return None;
            }
        },
    };
    Some(RunAs {
        user: name.to_string(),
        uid: user.uid,
        gid,
        group_readable: gateway.group.is_some(),
    })
}

/// The limits per client address: each positive, and one address's share of the
/// unauthenticated budget at most half of it. Left unset, the share is 32 or half the budget,
/// whichever is smaller.
fn client_limits(c: &mut Checker, gateway: &GatewaySection) -> ClientLimitSettings {
    let defaults = ClientLimitSettings::default();
    let max_unauthenticated = gateway
        .max_unauthenticated
        .unwrap_or(defaults.max_unauthenticated);
    if max_unauthenticated < 2 {
        c.report(
            "gateway.max_unauthenticated",
            format!("is {max_unauthenticated}"),
            "use at least 2 (one address may hold at most half), e.g. 1000",
        );
    }
    let half = u32::try_from(max_unauthenticated / 2).unwrap_or(u32::MAX);
    let per_client = match gateway.max_unauthenticated_per_client {
        Some(0) => {
            c.report(
                "gateway.max_unauthenticated_per_client",
                "is 0",
                "use a positive number, e.g. 32",
            );
            0
        }
        Some(n) if n > half => {
            c.report(
                "gateway.max_unauthenticated_per_client",
                format!(
                    "is {n}, more than half of gateway.max_unauthenticated ({max_unauthenticated})"
                ),
                format!(
                    "use at most {half}, so one address can never take every unauthenticated slot"
                ),
            );
            n
        }
        Some(n) => n,
        None => defaults.max_unauthenticated_per_client.min(half.max(1)),
    };
    let failed_logins = gateway
        .failed_logins_per_client
        .unwrap_or(defaults.failed_logins_per_client);
    if failed_logins == 0 {
        c.report(
            "gateway.failed_logins_per_client",
            "is 0",
            "use a positive number, e.g. 10",
        );
    }
    let window = gateway
        .failed_login_window_secs
        .map(Duration::from_secs)
        .unwrap_or(defaults.failed_login_window);
    if window.is_zero() || window > MAX_TIMEOUT {
        c.report(
            "gateway.failed_login_window_secs",
            format!("is {} s", window.as_secs()),
            "use a number of seconds from 1 to 86400, e.g. 600",
        );
    }
    ClientLimitSettings {
        max_unauthenticated,
        max_unauthenticated_per_client: per_client,
        failed_logins_per_client: failed_logins,
        failed_login_window: window,
    }
}

/// Reports every value of the naming field `field` of `[[kind]]` entries that is used twice.
pub(super) fn unique_names<'a>(
    c: &mut Checker,
    kind: &str,
    field: &str,
    names: impl Iterator<Item = &'a str>,
) {
    let mut seen = HashSet::new();
    for name in names {
        if !seen.insert(name) {
            c.report(
                &format!("{kind}[{name}].{field}"),
                "is used twice",
                format!("give each [[{kind}]] its own {field}"),
            );
        }
    }
}

fn upstream(c: &mut Checker, index: usize, u: &UpstreamEntry) -> Option<UpstreamSettings> {
    let name = c.required(
        &format!("upstream[{index}].name"),
        &u.name,
        "\"exchange-imap\"",
    );
    let label = format!("upstream[{}]", name.unwrap_or(&index.to_string()));
    let key = |field: &str| format!("{label}.{field}");
    let address = c.required(&key("address"), &u.address, "\"outlook.office365.com:993\"");
    let host = address.and_then(|a| match a.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Some(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        ),
        _ => {
            c.report(
                &key("address"),
                format!("\"{a}\" is not host:port"),
                "write e.g. \"outlook.office365.com:993\"",
            );
            None
        }
    });
    let protocol = c.choice(&key("protocol"), u.protocol.as_deref(), PROTOCOLS, None);
    let tls = c.choice(
        &key("tls"),
        u.tls.as_deref(),
        &[
            ("implicit", UpstreamTlsMode::Implicit),
            ("starttls", UpstreamTlsMode::StartTls),
        ],
        Some(UpstreamTlsMode::Implicit),
    );
    let ca_file = u
        .ca_file
        .as_deref()
        .map(|f| c.existing_file(&key("ca_file"), f));
    let server_name = u.server_name.clone().or(host);
    let oauth = c.choice(
        &key("auth"),
        u.auth.as_deref(),
        &[("passthrough", false), ("oauth", true)],
        Some(false),
    );
    let mechanism = c.choice(
        &key("sasl"),
        u.sasl.as_deref(),
        &[
            ("xoauth2", OAuthMechanism::XOAuth2),
            ("oauthbearer", OAuthMechanism::OAuthBearer),
        ],
        Some(OAuthMechanism::XOAuth2),
    );
    if oauth == Some(false) && u.sasl.is_some() {
        c.report(
            &key("sasl"),
            "is set but auth is \"passthrough\"",
            "set auth = \"oauth\" or remove sasl",
        );
    }
    let login = match oauth? {
        true => UpstreamLogin::OAuth(mechanism?),
        false => UpstreamLogin::Passthrough,
    };
    Some(UpstreamSettings {
        name: name?.to_string(),
        address: address?.to_string(),
        protocol: protocol?,
        tls: tls?,
        ca_file: match ca_file {
            Some(file) => Some(file?),
            None => None,
        },
        server_name: server_name?,
        login,
    })
}

fn listener(
    c: &mut Checker,
    index: usize,
    l: &ListenerEntry,
    upstreams: &[UpstreamEntry],
    validated_upstreams: &[UpstreamSettings],
    accounts: &[AccountEntry],
) -> Option<ListenerSettings> {
    let name = c.required(
        &format!("listener[{index}].name"),
        &l.name,
        "\"legacy-imaps\"",
    );
    let label = format!("listener[{}]", name.unwrap_or(&index.to_string()));
    let key = |field: &str| format!("{label}.{field}");
    let protocol = c.choice(&key("protocol"), l.protocol.as_deref(), PROTOCOLS, None);
    let bind = c
        .required(&key("bind"), &l.bind, "\"0.0.0.0:993\"")
        .and_then(|b| {
            b.parse::<SocketAddr>()
                .map_err(|_| {
                    c.report(
                        &key("bind"),
                        format!("\"{b}\" is not an IP:port"),
                        "write e.g. \"0.0.0.0:993\" or \"[::]:993\"",
                    )
                })
                .ok()
        });
    let tls = c.choice(
        &key("tls"),
        l.tls.as_deref(),
        &[
            ("implicit", ClientTlsMode::Implicit),
            ("starttls", ClientTlsMode::StartTls),
            ("none", ClientTlsMode::None),
        ],
        None,
    );
    let min_tls = c.choice(
        &key("min_tls"),
        l.min_tls.as_deref(),
        &LISTENER_VERSIONS.map(|v| (v.config_str(), v)),
        Some(TlsVersion::Tls12),
    );
    let needs_cert = tls.is_some_and(|t| t != ClientTlsMode::None);
    let mut pem = |field: &str, value: &Option<String>| match value {
        Some(v) => c.existing_file(&key(field), v),
        None if needs_cert => {
            c.report(
                &key(field),
                "is missing",
                "a TLS listener needs a PEM certificate chain and key (RSA for old devices)",
            );
            None
        }
        None => None,
    };
    let certificate = pem("certificate", &l.certificate);
    let private_key = pem("key", &l.key);
    let upstream = c
        .required(&key("upstream"), &l.upstream, "\"exchange-imap\"")
        .and_then(
            |u| match upstreams.iter().find(|up| up.name.as_deref() == Some(u)) {
                Some(up) => Some(up),
                None => {
                    c.report(
                        &key("upstream"),
                        format!("no [[upstream]] is named \"{u}\""),
                        "name one of the [[upstream]] entries",
                    );
                    None
                }
            },
        );
    let proxy_protocol = proxy_protocol(c, &key, l);
    let relay = match &l.relay {
        None => Some(None),
        Some(section) => {
            let upstream_login = upstream
                .and_then(|up| up.name.as_deref())
                .and_then(|name| validated_upstreams.iter().find(|u| u.name == name))
                .map(|u| u.login);
            super::relay::relay(c, &label, section, protocol, upstream_login, accounts).map(Some)
        }
    };
    let upstream_protocol = upstream.and_then(|up| up.protocol.as_deref());
    if let (Some(p), Some(up_protocol)) = (protocol, upstream_protocol) {
        if p.as_str() != up_protocol {
            c.report(
                &key("protocol"),
                format!("is {} but its upstream speaks {up_protocol}", p.as_str()),
                "bridge each listener to an upstream of the same protocol",
            );
            return None;
        }
    }
    Some(ListenerSettings {
        name: name?.to_string(),
        protocol: protocol?,
        bind: bind?,
        tls: tls?,
        min_tls: min_tls?,
        certificate: if needs_cert { Some(certificate?) } else { None },
        key: if needs_cert { Some(private_key?) } else { None },
        upstream: upstream?.name.clone()?,
        greeting: l
            .greeting
            .clone()
            .unwrap_or_else(|| "mailtls ready".to_string()),
        proxy_protocol: proxy_protocol?,
        relay: relay?,
    })
}

/// `proxy_protocol` and `proxy_from`: `Some(None)` for a listener without PROXY protocol,
/// `None` when either key has a problem.
fn proxy_protocol(
    c: &mut Checker,
    key: &dyn Fn(&str) -> String,
    l: &ListenerEntry,
) -> Option<Option<ProxyProtocol>> {
    let example = "proxy_from = [\"10.0.0.0/8\"] (the load balancers' networks)";
    match (l.proxy_protocol.unwrap_or(false), &l.proxy_from) {
        (false, None) => Some(None),
        (false, Some(_)) => {
            c.report(
                &key("proxy_from"),
                "is set but proxy_protocol is not true",
                "set proxy_protocol = true if clients arrive through PROXY protocol load balancers, else remove proxy_from",
            );
            None
        }
        (true, None) => {
            c.report(
                &key("proxy_from"),
                "is missing: a PROXY protocol listener must say which load balancers may send the header",
                format!("set it, e.g. {example}"),
            );
            None
        }
        (true, Some(entries)) if entries.is_empty() => {
            c.report(
                &key("proxy_from"),
                "is empty: no load balancer could connect",
                format!("name them, e.g. {example}"),
            );
            None
        }
        (true, Some(entries)) => {
            let mut trusted = Vec::new();
            for entry in entries {
                match trusted_network(entry) {
                    Ok(net) => trusted.push(net),
                    Err(problem) => c.report(
                        &key("proxy_from"),
                        problem,
                        "write networks as \"10.0.0.0/8\" or \"2001:db8::/32\", single hosts as \"10.0.0.5\"",
                    ),
                }
            }
            (trusted.len() == entries.len()).then_some(Some(ProxyProtocol { trusted }))
        }
    }
}

/// One `proxy_from` entry: a network, or one address (a /32 or /128). A network that holds
/// every address is refused: any host could then claim to be any client.
fn trusted_network(entry: &str) -> Result<IpNet, String> {
    let net = network_or_address(entry)?;
    if net.prefix_len() == 0 {
        return Err(format!(
            "\"{entry}\" trusts every address, so any host could claim to be any client"
        ));
    }
    Ok(net)
}

/// A network ("10.0.0.0/8", host bits dropped) or one address (a /32 or /128).
pub(super) fn network_or_address(entry: &str) -> Result<IpNet, String> {
    entry
        .parse::<IpNet>()
        .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("\"{entry}\" is not an IP network or address"))
}
