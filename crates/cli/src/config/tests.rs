//! Config validation: every problem is reported with its key and a fix, all at once.

use std::path::{Path, PathBuf};

use super::{load, DashboardSettings};
use store::StoreLocation;

/// A config file in its own temporary folder, with empty stand-in PEM files where asked:
/// validation only checks that the files exist; loading them is the gateway's job.
fn write_config(name: &str, text: &str, pem_files: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mailtls-config-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    for file in pem_files {
        std::fs::write(dir.join(file), "").unwrap();
    }
    let path = dir.join("mailtls.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn keys(path: &Path) -> Vec<String> {
    load(path)
        .expect_err("the config has problems")
        .into_iter()
        .map(|p| {
            assert!(!p.fix.is_empty(), "{} has no fix", p.key);
            p.key
        })
        .collect()
}

#[test]
fn the_exchange_online_example_is_valid() {
    let example = include_str!("../../../../examples/exchange-online-bridge.toml");
    // The example names the `mailtls` user that lab/quickstart.sh creates; a test machine has
    // `nobody` for certain.
    assert!(example.contains("\nuser = \"mailtls\"\n"));
    let example = example.replace("\nuser = \"mailtls\"\n", "\nuser = \"nobody\"\n");
    let path = write_config(
        "example",
        &example,
        &["certs/gateway.pem", "certs/gateway.key"],
    );
    let config = load(&path).expect("the example validates");
    assert_eq!(config.gateway.listeners.len(), 4);
    assert_eq!(config.gateway.upstreams.len(), 2);
    assert!(config
        .gateway
        .listeners
        .iter()
        .all(|l| l.min_tls == wire::TlsVersion::Tls10));
    assert_eq!(
        config.gateway.upstreams[0].server_name,
        "outlook.office365.com"
    );
    assert!(
        matches!(&config.store, StoreLocation::Sqlite { path: db, .. } if *db == path.parent().unwrap().join("mailtls.db"))
    );
    assert_eq!(config.metrics_bind, Some("127.0.0.1:9109".parse().unwrap()));
    let run_as = config.run_as.as_ref().expect("the example drops root");
    assert_eq!(run_as.user, "nobody");
    assert!(!run_as.group_readable);
    assert_eq!(store_access(&config).mode(), 0o600);
}

/// How a SQLite store's files are made.
fn store_access(config: &super::Config) -> store::StoreAccess {
    match &config.store {
        StoreLocation::Sqlite { access, .. } => *access,
        StoreLocation::Postgres(_) => panic!("a SQLite store"),
    }
}

/// A minimal valid config with `gateway` as its `[gateway]` section.
fn with_gateway_section(name: &str, gateway: &str) -> PathBuf {
    with_sections(name, &format!("[gateway]\n{gateway}"))
}

/// A minimal valid config with `sections` (e.g. `[store]`) before its upstream and listener.
fn with_sections(name: &str, sections: &str) -> PathBuf {
    let text = format!(
        r#"
{sections}

[[upstream]]
name = "up"
address = "127.0.0.1:993"
protocol = "imap"

[[listener]]
name = "a"
protocol = "imap"
bind = "127.0.0.1:143"
tls = "none"
upstream = "up"
"#
    );
    write_config(name, &text, &[])
}

#[test]
fn the_user_and_group_are_looked_up_and_the_group_may_read_the_store() {
    let path = with_gateway_section("run-as", "user = \"nobody\"\ngroup = \"nogroup\"");
    let config = load(&path).expect("nobody and nogroup exist on every Debian machine");
    let run_as = config.run_as.clone().expect("a user");
    assert_eq!(run_as.uid.as_raw(), 65534);
    assert_eq!(run_as.gid.as_raw(), 65534);
    assert!(run_as.group_readable);
    assert_eq!(store_access(&config).mode(), 0o640);
    assert_eq!(store_access(&config).owner, Some((65534, 65534)));

    let alone = load(&with_gateway_section("no-user", "")).unwrap();
    assert_eq!(alone.run_as, None);
    assert_eq!(store_access(&alone).owner, None);
    assert_eq!(store_access(&alone).mode(), 0o600);
}

#[test]
fn a_missing_user_or_group_root_or_a_group_alone_is_a_problem() {
    for (label, section, key, says) in [
        (
            "unknown-user",
            "user = \"no-such-mailtls-user\"",
            "gateway.user",
            "no user is named",
        ),
        ("root", "user = \"root\"", "gateway.user", "is root"),
        (
            "unknown-group",
            "user = \"nobody\"\ngroup = \"no-such-mailtls-group\"",
            "gateway.group",
            "no group is named",
        ),
        (
            "root-group",
            "user = \"nobody\"\ngroup = \"root\"",
            "gateway.group",
            "root's group",
        ),
        (
            "group-alone",
            "group = \"nogroup\"",
            "gateway.group",
            "gateway.user is not",
        ),
    ] {
        let problems = load(&with_gateway_section(label, section)).expect_err(label);
        assert_eq!(problems.len(), 1, "{label}: {problems:?}");
        assert_eq!(problems[0].key, key, "{label}");
        assert!(problems[0].problem.contains(says), "{label}: {problems:?}");
        assert!(!problems[0].fix.is_empty(), "{label}");
    }
}

#[test]
fn the_on_premises_example_is_valid() {
    let example = include_str!("../../../../examples/on-premises-imap.toml");
    let path = write_config(
        "onprem",
        example,
        &[
            "certs/gateway.pem",
            "certs/gateway.key",
            "certs/internal-ca.pem",
        ],
    );
    let config = load(&path).expect("the example validates");
    let modern = &config.gateway.listeners[1];
    assert_eq!(
        modern.min_tls,
        wire::TlsVersion::Tls12,
        "the default floor is TLS 1.2"
    );
    assert_eq!(config.gateway.upstreams[0].server_name, "mail.corp.example");
}

#[test]
fn every_problem_is_reported_with_its_key() {
    let text = r#"
[[upstream]]
name = "up"
address = "mail.example"
protocol = "imap"

[[upstream]]
name = "up"
address = "mail.example:995"
protocol = "pop3"
tls = "sometimes"

[[listener]]
name = "a"
protocol = "imap"
bind = "0.0.0.0"
tls = "implicit"
min_tls = "1.4"
upstream = "nowhere"

[[listener]]
name = "b"
protocol = "pop3"
bind = "127.0.0.1:110"
tls = "none"
upstream = "up"
"#;
    let path = write_config("bad", text, &[]);
    let found = keys(&path);
    for expected in [
        "upstream[up].address",
        "upstream[up].tls",
        "upstream[up].name",
        "listener[a].bind",
        "listener[a].min_tls",
        "listener[a].certificate",
        "listener[a].key",
        "listener[a].upstream",
        "listener[b].protocol",
    ] {
        assert!(
            found.iter().any(|k| k == expected),
            "no problem for {expected} in {found:?}"
        );
    }
}

#[test]
fn a_misspelt_key_is_an_error_not_a_default() {
    let text = "[[listener]]\nname = \"a\"\nmin_tsl = \"1.0\"\n";
    let path = write_config("typo", text, &[]);
    let problems = load(&path).expect_err("unknown key");
    assert_eq!(problems.len(), 1);
    assert!(problems[0].problem.contains("min_tsl"), "{:?}", problems[0]);
    assert!(problems[0].problem.contains("line 3"), "{:?}", problems[0]);
}

#[test]
fn missing_files_name_the_path() {
    let text = r#"
[[upstream]]
name = "up"
address = "127.0.0.1:993"
protocol = "imap"
ca_file = "certs/missing-ca.pem"

[[listener]]
name = "a"
protocol = "imap"
bind = "127.0.0.1:993"
tls = "starttls"
certificate = "certs/missing.pem"
key = "certs/missing.key"
upstream = "up"
"#;
    let path = write_config("files", text, &[]);
    let problems = load(&path).expect_err("files are missing");
    let ca = problems
        .iter()
        .find(|p| p.key == "upstream[up].ca_file")
        .expect("ca_file");
    assert!(ca.problem.contains("missing-ca.pem"), "{ca:?}");
    assert!(problems.iter().any(|p| p.key == "listener[a].certificate"));
}

/// A valid listener and upstream, followed by `extra` (policy sections, exceptions) and with
/// `listener_extra` inside the listener.
fn with_policy(name: &str, listener_extra: &str, extra: &str) -> PathBuf {
    let text = format!(
        r#"
[[upstream]]
name = "up"
address = "mail.example:993"
protocol = "imap"

[[listener]]
name = "lb"
protocol = "imap"
bind = "0.0.0.0:993"
tls = "none"
upstream = "up"
{listener_extra}

{extra}
"#
    );
    write_config(name, &text, &[])
}

/// A minimal valid config with one listener whose extra lines are `listener_extra`.
fn with_listener(name: &str, listener_extra: &str) -> PathBuf {
    with_policy(name, listener_extra, "")
}

#[test]
fn proxy_protocol_takes_networks_and_single_addresses() {
    let path = with_listener(
        "proxy-ok",
        "proxy_protocol = true\nproxy_from = [\"10.0.0.0/8\", \"192.168.7.9\", \"2001:db8::/32\", \"172.16.5.1/12\"]",
    );
    let config = load(&path).expect("valid");
    let proxy = config.gateway.listeners[0]
        .proxy_protocol
        .as_ref()
        .expect("PROXY protocol on");
    let trusted: Vec<String> = proxy.trusted.iter().map(|n| n.to_string()).collect();
    // Host bits are dropped, single addresses become one-host networks.
    assert_eq!(
        trusted,
        [
            "10.0.0.0/8",
            "192.168.7.9/32",
            "2001:db8::/32",
            "172.16.0.0/12"
        ]
    );
    assert!(proxy.trusts("172.31.255.1".parse().unwrap()));
    assert!(!proxy.trusts("192.168.7.10".parse().unwrap()));

    let plain = with_listener("proxy-off", "");
    let config = load(&plain).expect("valid");
    assert_eq!(config.gateway.listeners[0].proxy_protocol, None);
}

#[test]
fn proxy_protocol_needs_its_load_balancers_named() {
    for (label, extra, problem) in [
        ("missing", "proxy_protocol = true", "is missing"),
        (
            "empty",
            "proxy_protocol = true\nproxy_from = []",
            "is empty",
        ),
        (
            "without",
            "proxy_from = [\"10.0.0.0/8\"]",
            "proxy_protocol is not true",
        ),
        (
            "bad-net",
            "proxy_protocol = true\nproxy_from = [\"10.0.0.0/33\"]",
            "\"10.0.0.0/33\" is not an IP network",
        ),
        (
            "everyone",
            "proxy_protocol = true\nproxy_from = [\"0.0.0.0/0\"]",
            "any host could claim",
        ),
    ] {
        let path = with_listener(&format!("proxy-{label}"), extra);
        let problems = load(&path).expect_err(label);
        assert_eq!(problems.len(), 1, "{label}: {problems:?}");
        assert_eq!(problems[0].key, "listener[lb].proxy_from", "{label}");
        assert!(
            problems[0].problem.contains(problem),
            "{label}: {:?}",
            problems[0]
        );
        assert!(!problems[0].fix.is_empty());
    }
}

/// A minimal valid config: one plaintext IMAP listener and its upstream.
const ONE_LISTENER: &str = r#"
[[upstream]]
name = "up"
address = "mail.example:993"
protocol = "imap"

[[listener]]
name = "a"
protocol = "imap"
bind = "127.0.0.1:1143"
tls = "none"
upstream = "up"
"#;

#[test]
fn the_metrics_endpoint_needs_an_address_of_its_own() {
    let listener = ONE_LISTENER;
    for (name, section) in [
        ("metrics-missing", "[metrics]\n"),
        ("metrics-bad", "[metrics]\nbind = \"localhost\"\n"),
        ("metrics-taken", "[metrics]\nbind = \"127.0.0.1:1143\"\n"),
    ] {
        let path = write_config(name, &format!("{section}{listener}"), &[]);
        assert_eq!(keys(&path), ["metrics.bind"], "{name}");
    }
    let path = write_config(
        "metrics-typo",
        &format!("[metrics]\nbnd = \"127.0.0.1:9109\"\n{listener}"),
        &[],
    );
    let problems = load(&path).expect_err("unknown key");
    assert!(problems[0].problem.contains("bnd"), "{:?}", problems[0]);

    let path = write_config("metrics-none", listener, &[]);
    assert_eq!(load(&path).expect("valid").metrics_bind, None);
    let path = write_config(
        "metrics-ok",
        &format!("[metrics]\nbind = \"[::1]:9109\"\n{listener}"),
        &[],
    );
    assert_eq!(
        load(&path).expect("valid").metrics_bind,
        Some("[::1]:9109".parse().unwrap())
    );
}

#[test]
fn the_exchange_online_oauth_example_is_valid() {
    let example = include_str!("../../../../examples/exchange-online-oauth.toml");
    // The example's absolute /etc paths, made relative so the test's folder holds them.
    let example = example.replace("/etc/mailtls/", "");
    let path = write_config(
        "oauth-example",
        &example,
        &[
            "certs/gateway.pem",
            "certs/gateway.key",
            "token.key",
            "contoso.secret",
        ],
    );
    let config = load(&path).expect("the example validates");
    use ::oauth::settings::{CacheKeySource, ClientAuth, Grant};
    use gateway::settings::{OAuthMechanism, UpstreamLogin};
    assert_eq!(config.oauth.apps.len(), 1);
    let app = &config.oauth.apps[0];
    assert_eq!(app.grant, Grant::ClientCredentials);
    assert!(matches!(app.client_auth, ClientAuth::SecretFile(_)));
    assert_eq!(config.oauth.accounts.len(), 2);
    assert_eq!(config.oauth.accounts[0].max_connections, Some(10));
    assert_eq!(config.oauth.accounts[1].max_connections, None);
    let cache = config.oauth.token_cache.as_ref().expect("token cache");
    assert_eq!(
        cache.path,
        path.parent().unwrap().join("mailtls-tokens.enc")
    );
    assert!(matches!(cache.key, CacheKeySource::File(_)));
    assert!(config
        .gateway
        .upstreams
        .iter()
        .all(|u| u.login == UpstreamLogin::OAuth(OAuthMechanism::XOAuth2)));
    let protocols: Vec<String> = config
        .gateway
        .listeners
        .iter()
        .map(|l| format!("{:?}", l.protocol))
        .collect();
    assert_eq!(protocols.len(), 3, "IMAP, POP3 and SMTP: {protocols:?}");
}

#[test]
fn oauth_problems_are_reported_with_their_keys() {
    let text = r#"
[[oauth]]
name = "app"
token_url = "http://login.example/token"
client_id = "id"
scope = "s"
grant = "client_credentials"
certificate = "missing.pem"

[[oauth]]
name = "device"
token_url = "https://login.example/token"
client_id = "id"
scope = "s"
grant = "device_code"

[[account]]
login = "scanner"
password_hash = "secret"
mailbox = "scanner@example.com"
oauth = "nowhere"
max_connections = 0

[[account]]
login = "scanner"
password_hash = "secret"
mailbox = "other@example.com"
oauth = "app"

[token_cache]
key_env = ""

[[upstream]]
name = "up"
address = "mail.example:993"
protocol = "imap"
auth = "passthrough"
sasl = "xoauth2"

[[upstream]]
name = "up2"
address = "mail.example:993"
protocol = "imap"
auth = "oauth"
sasl = "plain"

[[listener]]
name = "a"
protocol = "imap"
bind = "127.0.0.1:143"
tls = "none"
upstream = "up"
"#;
    let path = write_config("oauth-bad", text, &[]);
    let found = keys(&path);
    for expected in [
        "oauth[app].token_url",
        "oauth[app].certificate",
        "oauth[device].device_url",
        "account[scanner].password_hash",
        "account[scanner].oauth",
        "account[scanner].max_connections",
        "account[scanner].login",
        "token_cache.key_env",
        "upstream[up].sasl",
        "upstream[up2].sasl",
    ] {
        assert!(
            found.iter().any(|k| k == expected),
            "no problem for {expected} in {found:?}"
        );
    }
}

#[test]
fn oauth_apps_need_a_token_cache_and_the_cache_defaults_beside_the_store() {
    let base = r#"
[store]
path = "data/mailtls.db"

[[oauth]]
name = "app"
token_url = "https://login.example/token"
client_id = "id"
client_secret_file = "secret"
scope = "s"
grant = "client_credentials"

[[upstream]]
name = "up"
address = "mail.example:993"
protocol = "imap"

[[listener]]
name = "a"
protocol = "imap"
bind = "127.0.0.1:143"
tls = "none"
upstream = "up"
"#;
    let path = write_config("oauth-cache", base, &["secret"]);
    assert_eq!(keys(&path), vec!["token_cache"]);
    let with_cache = format!("{base}\n[token_cache]\nkey_env = \"MAILTLS_TOKEN_KEY\"\n");
    let path = write_config("oauth-cache2", &with_cache, &["secret"]);
    let config = load(&path).expect("valid");
    assert_eq!(
        config.oauth.token_cache.unwrap().path,
        path.parent().unwrap().join("data/mailtls-tokens.enc")
    );
}

#[test]
fn client_limits_default_to_32_connections_and_10_failures_in_10_minutes() {
    let path = write_config("limits-default", ONE_LISTENER, &[]);
    let limits = load(&path).expect("valid").gateway.client_limits;
    assert_eq!(limits.max_unauthenticated, 1_000);
    assert_eq!(limits.max_unauthenticated_per_client, 32);
    assert_eq!(limits.failed_logins_per_client, 10);
    assert_eq!(limits.failed_login_window.as_secs(), 600);

    // A small budget brings the default share down to half of it.
    let text = format!("[gateway]\nmax_unauthenticated = 20\n{ONE_LISTENER}");
    let path = write_config("limits-small", &text, &[]);
    let limits = load(&path).expect("valid").gateway.client_limits;
    assert_eq!(limits.max_unauthenticated_per_client, 10);
}

#[test]
fn one_address_may_never_hold_more_than_half_the_unauthenticated_budget() {
    let text = format!(
        "[gateway]\nmax_unauthenticated = 100\nmax_unauthenticated_per_client = 51\n\
         failed_logins_per_client = 0\nfailed_login_window_secs = 0\n{ONE_LISTENER}"
    );
    let path = write_config("limits-bad", &text, &[]);
    let problems = load(&path).expect_err("over half");
    let share = problems
        .iter()
        .find(|p| p.key == "gateway.max_unauthenticated_per_client")
        .expect("the share is a problem");
    assert!(share.fix.contains("at most 50"), "{share:?}");
    let found: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert!(
        found.contains(&"gateway.failed_logins_per_client"),
        "{found:?}"
    );
    assert!(
        found.contains(&"gateway.failed_login_window_secs"),
        "{found:?}"
    );

    let text = format!("[gateway]\nmax_unauthenticated = 1\n{ONE_LISTENER}");
    let path = write_config("limits-one", &text, &[]);
    assert_eq!(keys(&path), ["gateway.max_unauthenticated"]);
}

#[test]
fn the_enforcement_example_is_valid() {
    let example = include_str!("../../../../examples/enforcement.toml");
    let path = write_config(
        "enforcement",
        example,
        &[
            "certs/gateway.pem",
            "certs/gateway.key",
            "certs/internal-ca.pem",
        ],
    );
    let config = load(&path).expect("the example validates");
    let sunset = config.policy.policy("sunset").expect("[policy.sunset]");
    assert_eq!(sunset.mode(), policy::Mode::Enforce);
    assert_eq!(sunset.min_tls(), wire::TlsVersion::Tls12);
    assert_eq!(
        sunset.window().start(),
        time::macros::datetime!(2026-08-01 00:00 UTC)
    );
    assert_eq!(config.policy.exceptions().len(), 3);
    let opt_in = config
        .policy
        .listener("legacy-optin-imaps")
        .expect("opt-in");
    assert!(opt_in.opt_in);
    assert!(!config.policy.listener("legacy-imaps").unwrap().opt_in);
    let third = config.policy.exceptions().iter().nth(2).unwrap();
    assert_eq!(third.id, policy::ExceptionId(3));
    assert_eq!(
        third.expires,
        time::macros::datetime!(2026-11-30 00:00 UTC),
        "an exception expires at the first instant of its date, UTC"
    );
}

const SUNSET: &str = r#"
[policy.sunset]
min_tls = "1.2"
mode = "enforce"
start = "2026-08-01"
end = "2026-12-31"
message = "TLS 1.0 and 1.1 are no longer accepted."
"#;

const EXCEPTION_FIELDS: &str = r#"owner = "it@contoso.com"
reason = "old firmware"
expires = "2027-03-31"
plan = "replace it"
"#;

#[test]
fn a_policy_with_listeners_and_exceptions_validates() {
    let path = with_policy(
        "policy-ok",
        "policy = \"sunset\"",
        &format!(
            "{SUNSET}\n[[exception]]\nclient = \"10.20.0.5\"\n{EXCEPTION_FIELDS}\n[[exception]]\nclient = \"::/0\"\nallow_broad = true\n{EXCEPTION_FIELDS}"
        ),
    );
    let config = load(&path).expect("valid");
    let ids: Vec<String> = config
        .policy
        .exceptions()
        .iter()
        .map(|e| format!("{} {}", e.id, e.matches))
        .collect();
    assert_eq!(ids, ["1 client=10.20.0.5/32", "2 client=::/0"]);
    assert_eq!(config.policy.listeners_with_policy(), ["lb"]);
}

/// The config at `path` has exactly one problem, at `key`, saying `problem`, with a fix.
fn assert_one_problem(label: &str, path: &Path, key: &str, problem: &str) {
    let problems = load(path).expect_err(label);
    assert_eq!(problems.len(), 1, "{label}: {problems:?}");
    assert_eq!(problems[0].key, key, "{label}: {problems:?}");
    assert!(
        problems[0].problem.contains(problem),
        "{label}: {:?}",
        problems[0]
    );
    assert!(!problems[0].fix.is_empty(), "{label}");
}

#[test]
fn every_bad_policy_input_names_its_key() {
    let sunset_with = |line: &str| {
        SUNSET.replace(
            "mode = \"enforce\"\n",
            &format!("mode = \"enforce\"\n{line}\n"),
        )
    };
    let start = "start = \"2026-08-01\"\n";
    // (label, [policy.sunset] as written, key, problem), on a listener with policy = "sunset".
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "unknown-key",
            sunset_with("floor = \"1.2\""),
            "(syntax)",
            "floor",
        ),
        (
            "bad-start",
            SUNSET.replace("2026-08-01", "2026-08-32"),
            "policy.sunset.start",
            "is not a date",
        ),
        (
            "bad-end",
            SUNSET.replace("2026-12-31", "next year"),
            "policy.sunset.end",
            "is not a date",
        ),
        (
            "end-before-start",
            SUNSET.replace("2026-12-31", "2026-07-01"),
            "policy.sunset.end",
            "is not after start",
        ),
        (
            "end-at-start",
            SUNSET.replace("2026-12-31", "2026-08-01"),
            "policy.sunset.end",
            "is not after start",
        ),
        (
            "no-start",
            SUNSET.replace(start, ""),
            "policy.sunset.start",
            "is missing",
        ),
        (
            "bad-mode",
            SUNSET.replace("\"enforce\"", "\"strict\""),
            "policy.sunset.mode",
            "not a known value",
        ),
        (
            "bad-floor",
            SUNSET.replace("\"1.2\"", "\"1.4\""),
            "policy.sunset.min_tls",
            "not a known value",
        ),
        (
            "two-line-message",
            SUNSET.replace("accepted.", "accepted.\\r\\nA0 LOGOUT"),
            "policy.sunset.message",
            "control characters",
        ),
        (
            "empty-cohort-key",
            sunset_with("cohort_key = \"\""),
            "policy.sunset.cohort_key",
            "is empty",
        ),
    ];
    for (label, section, key, problem) in cases {
        let path = with_policy(&format!("policy-{label}"), "policy = \"sunset\"", &section);
        assert_one_problem(label, &path, key, problem);
    }
    for (label, listener_extra, key, problem) in [
        (
            "missing-policy",
            "policy = \"sunst\"",
            "listener[lb].policy",
            "no [policy.sunst] is defined",
        ),
        (
            "opt-in-without-policy",
            "opt_in = true",
            "listener[lb].opt_in",
            "names no policy",
        ),
    ] {
        let path = with_policy(&format!("policy-{label}"), listener_extra, SUNSET);
        assert_one_problem(label, &path, key, problem);
    }
}

#[test]
fn every_bad_exception_names_its_key() {
    let without = |field: &str| {
        EXCEPTION_FIELDS
            .lines()
            .filter(|l| !l.starts_with(field))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "no-owner",
            format!("client = \"10.0.0.0/8\"\n{}", without("owner")),
            "exception[1].owner",
            "is missing",
        ),
        (
            "no-reason",
            format!("client = \"10.0.0.0/8\"\n{}", without("reason")),
            "exception[1].reason",
            "is missing",
        ),
        (
            "no-expires",
            format!("client = \"10.0.0.0/8\"\n{}", without("expires")),
            "exception[1].expires",
            "is missing",
        ),
        (
            "no-plan",
            format!("client = \"10.0.0.0/8\"\n{}", without("plan")),
            "exception[1].plan",
            "is missing",
        ),
        (
            "bad-expires",
            format!(
                "client = \"10.0.0.0/8\"\n{}",
                EXCEPTION_FIELDS.replace("2027-03-31", "31/03/2027")
            ),
            "exception[1].expires",
            "is not a date",
        ),
        (
            "bad-client",
            format!("client = \"10.0.0.0/33\"\n{EXCEPTION_FIELDS}"),
            "exception[1].client",
            "is not an IP network",
        ),
        (
            "broad-v4",
            format!("client = \"0.0.0.0/0\"\n{EXCEPTION_FIELDS}"),
            "exception[1].client",
            "matches every address",
        ),
        (
            "broad-v6",
            format!("client = \"::/0\"\nuser = \"a@b\"\n{EXCEPTION_FIELDS}"),
            "exception[1].client",
            "matches every address",
        ),
        (
            "no-key",
            EXCEPTION_FIELDS.to_string(),
            "exception[1]",
            "names no client, user or ja4",
        ),
        (
            "spaced-user",
            format!("user = \"a b\"\n{EXCEPTION_FIELDS}"),
            "exception[1].user",
            "spaces",
        ),
        (
            "unknown-key",
            format!("client = \"10.0.0.0/8\"\nexpiry = \"2027-01-01\"\n{EXCEPTION_FIELDS}"),
            "(syntax)",
            "expiry",
        ),
    ];
    for (label, fields, key, problem) in cases {
        let path = with_policy(
            &format!("exception-{label}"),
            "",
            &format!("[[exception]]\n{fields}"),
        );
        assert_one_problem(label, &path, key, problem);
    }
}

#[test]
fn instants_are_dates_at_midnight_utc_or_rfc3339() {
    use super::parse_instant;
    assert_eq!(
        parse_instant("2027-03-31"),
        Ok(time::macros::datetime!(2027-03-31 00:00 UTC))
    );
    assert_eq!(
        parse_instant("2027-03-31T06:00:00+02:00"),
        Ok(time::macros::datetime!(2027-03-31 04:00 UTC))
    );
    assert!(parse_instant("2027-02-30").is_err());
    assert!(parse_instant("tomorrow").is_err());
}

/// A cleartext SMTP listener `printers` bound at `bind`, bridged to Exchange Online's
/// submission with pass-through logins, followed by `more` (tables of the listener).
fn printers_config(bind: &str, more: &str) -> String {
    format!(
        r#"
[[upstream]]
name = "submission"
address = "smtp.office365.com:587"
protocol = "smtp"
tls = "starttls"

[[listener]]
name = "printers"
protocol = "smtp"
bind = "{bind}"
tls = "none"
upstream = "submission"
{more}"#
    )
}

#[test]
fn smtp_listeners_and_a_warning_for_cleartext_beyond_private_networks() {
    let text = |bind: &str| printers_config(bind, "");
    for (bind, warned) in [
        ("127.0.0.1:2525", false),
        ("10.1.2.3:25", false),
        ("192.168.7.1:25", false),
        ("[fd00::1]:25", false),
        ("0.0.0.0:25", true),
        ("203.0.113.5:25", true),
        ("[::]:25", true),
    ] {
        let path = write_config("smtp-cleartext", &text(bind), &[]);
        let config = load(&path).expect("valid");
        assert_eq!(
            config.gateway.listeners[0].protocol,
            gateway::settings::Protocol::Smtp
        );
        let keys: Vec<&str> = config.warnings.iter().map(|w| w.key.as_str()).collect();
        let expected: &[&str] = if warned {
            &["listener[printers].bind"]
        } else {
            &[]
        };
        assert_eq!(keys, expected, "{bind}");
    }
}

#[test]
fn the_exchange_online_smtp_example_is_valid() {
    let example = include_str!("../../../../examples/exchange-online-smtp.toml");
    let path = write_config(
        "smtp-example",
        example,
        &["certs/gateway.pem", "certs/gateway.key"],
    );
    let config = load(&path).expect("the example validates");
    let upstream = &config.gateway.upstreams[0];
    assert_eq!(upstream.protocol, gateway::settings::Protocol::Smtp);
    assert_eq!(upstream.tls, gateway::settings::UpstreamTlsMode::StartTls);
    assert_eq!(upstream.server_name, "smtp.office365.com");
    assert_eq!(config.gateway.listeners.len(), 3);
    // The cleartext listener is on a private network: no warning.
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);

    // Its commented relay listener validates once uncommented (with its credentials file).
    let relay_at = example
        .find("# [[listener]]")
        .expect("the commented relay example");
    let uncommented: String = example[relay_at..]
        .lines()
        .map(|l| {
            l.strip_prefix("# ")
                .or(l.strip_prefix('#'))
                .unwrap_or(l)
                .to_string()
                + "\n"
        })
        .collect::<String>()
        .replace("/etc/mailtls/", "");
    let path = write_config(
        "smtp-example-relay",
        &format!("{example}{uncommented}"),
        &["certs/gateway.pem", "certs/gateway.key"],
    );
    let cred = path.parent().unwrap().join("relay.cred");
    std::fs::write(&cred, "scanner@contoso.com\npassword\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cred, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = load(&path).expect("the relay example validates");
    assert_eq!(config.gateway.listeners.len(), 4);
    assert!(config.gateway.listeners[3].relay.is_some());
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

/// An SMTP listener bound at `bind` with a `[listener.relay]` holding `relay`, on a
/// pass-through upstream, with `relay.cred` (mode `mode`) holding `credentials`.
fn with_relay(name: &str, bind: &str, relay: &str, mode: u32, credentials: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let text = printers_config(bind, &format!("\n[listener.relay]\n{relay}\n"));
    let path = write_config(name, &text, &[]);
    let cred = path.parent().unwrap().join("relay.cred");
    std::fs::write(&cred, credentials).unwrap();
    std::fs::set_permissions(&cred, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

const RELAY: &str = r#"networks = ["10.20.0.0/24", "10.30.0.7"]
senders = ["scanner@contoso.com", "Alerts@Contoso.com"]
credentials_file = "relay.cred""#;

#[test]
fn a_relay_listener_takes_networks_senders_and_a_root_only_credentials_file() {
    let path = with_relay(
        "relay-ok",
        "10.20.0.1:25",
        RELAY,
        0o600,
        "relay@contoso.com\nS3cr3t:pw\n",
    );
    let config = load(&path).expect("valid");
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let relay = config.gateway.listeners[0].relay.as_ref().expect("relay");
    use gateway::settings::RelayLogin;
    let RelayLogin::Password(credentials) = &relay.login else {
        panic!("a password login");
    };
    assert_eq!(credentials.user(), "relay@contoso.com");
    assert_eq!(credentials.password().expose(), b"S3cr3t:pw");
    assert!(!format!("{config:?}").contains("S3cr3t"));
    assert!(relay.admits_client("10.20.0.99".parse().unwrap()));
    assert!(relay.admits_client("::ffff:10.30.0.7".parse().unwrap()));
    assert!(!relay.admits_client("10.30.0.8".parse().unwrap()));
    assert!(!relay.admits_client("10.20.1.1".parse().unwrap()));
    assert!(relay.admits_sender("SCANNER@contoso.COM"));
    assert!(relay.admits_sender("alerts@contoso.com"));
    assert!(!relay.admits_sender("ceo@contoso.com"));
    assert!(!relay.admits_sender("scanner@contoso.com.evil.example"));
    assert!(!relay.admits_sender(""));

    // Beyond private networks it is a warning, as for cleartext listeners.
    let path = with_relay("relay-public", "0.0.0.0:25", RELAY, 0o600, "u\np\n");
    let config = load(&path).expect("valid");
    let keys: Vec<&str> = config.warnings.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(
        keys,
        ["listener[printers].bind", "listener[printers].relay"]
    );
}

#[test]
fn relay_problems_name_their_keys_and_never_allow_an_open_relay() {
    let senders = r#"senders = ["scanner@contoso.com"]"#;
    let networks = r#"networks = ["10.20.0.0/24"]"#;
    let file = r#"credentials_file = "relay.cred""#;
    for (label, relay, key, problem) in [
        (
            "every v4",
            format!("networks = [\"0.0.0.0/0\"]\n{senders}\n{file}"),
            "networks",
            "open relay",
        ),
        (
            "every v6",
            format!("networks = [\"::/0\"]\n{senders}\n{file}"),
            "networks",
            "open relay",
        ),
        (
            "no networks",
            format!("networks = []\n{senders}\n{file}"),
            "networks",
            "empty",
        ),
        (
            "bad network",
            format!("networks = [\"10.20.0.0/33\"]\n{senders}\n{file}"),
            "networks",
            "not an IP",
        ),
        (
            "no senders",
            format!("{networks}\n{file}"),
            "senders",
            "missing",
        ),
        (
            "a domain",
            format!("{networks}\nsenders = [\"@contoso.com\"]\n{file}"),
            "senders",
            "whole domain",
        ),
        (
            "not an address",
            format!("{networks}\nsenders = [\"scanner\"]\n{file}"),
            "senders",
            "not an e-mail",
        ),
        (
            "brackets",
            format!("{networks}\nsenders = [\"<a@b>\"]\n{file}"),
            "senders",
            "not an e-mail",
        ),
        (
            "an account on pass-through",
            format!("{networks}\n{senders}\naccount = \"scanner\""),
            "account",
            "passes",
        ),
        (
            "both",
            format!("{networks}\n{senders}\n{file}\naccount = \"x\""),
            "account",
            "together",
        ),
    ] {
        let path = with_relay("relay-bad", "10.20.0.1:25", &relay, 0o600, "u\np\n");
        assert_one_problem(
            label,
            &path,
            &format!("listener[printers].relay.{key}"),
            problem,
        );
    }
    let path = with_relay(
        "relay-none",
        "10.20.0.1:25",
        &format!("{networks}\n{senders}"),
        0o600,
        "",
    );
    assert_one_problem(
        "no login",
        &path,
        "listener[printers].relay",
        "names no account",
    );
    let key = "listener[printers].relay.credentials_file";
    for (label, mode, content, problem) in [
        ("readable by others", 0o644, "u\np\n", "other users"),
        ("group writable", 0o620, "u\np\n", "other users"),
        (
            "one line",
            0o600,
            "u\n",
            "a user name line and a password line",
        ),
        (
            "three lines",
            0o600,
            "u\np\nmore\n",
            "a user name line and a password line",
        ),
        ("a NUL", 0o400, "u\np\0w\n", "NUL"),
    ] {
        let path = with_relay("relay-file", "10.20.0.1:25", RELAY, mode, content);
        assert_one_problem(label, &path, key, problem);
    }
}

#[test]
fn a_relay_account_must_exist_on_an_oauth_upstream_and_relay_is_smtp_only() {
    let text = |login: &str, protocol: &str| {
        format!(
            r#"
[[oauth]]
name = "contoso"
token_url = "https://login.example/token"
client_id = "id"
scope = "https://outlook.office365.com/.default"
grant = "client_credentials"
client_secret_file = "app.secret"

[[account]]
login = "scanner"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$1O0iR/1SXaEmoVZyU3rYtAmD7Ms0yKWNLFJaR2IbfAk"
mailbox = "scanner@contoso.com"
oauth = "contoso"

[token_cache]
key_env = "MAILTLS_TOKEN_KEY"

[[upstream]]
name = "submission"
address = "smtp.office365.com:587"
protocol = "{protocol}"
tls = "starttls"
auth = "oauth"

[[listener]]
name = "printers"
protocol = "{protocol}"
bind = "10.20.0.1:25"
tls = "none"
upstream = "submission"

[listener.relay]
networks = ["10.20.0.0/24"]
senders = ["scanner@contoso.com"]
account = "{login}"
"#
        )
    };
    let path = write_config("relay-oauth", &text("scanner", "smtp"), &["app.secret"]);
    let config = load(&path).expect("valid");
    let relay = config.gateway.listeners[0].relay.as_ref().expect("relay");
    assert_eq!(
        relay.login,
        gateway::settings::RelayLogin::Account("scanner".into())
    );
    let path = write_config("relay-oauth", &text("printer", "smtp"), &["app.secret"]);
    assert_one_problem(
        "unknown",
        &path,
        "listener[printers].relay.account",
        "no [[account]]",
    );
    let path = write_config("relay-oauth", &text("scanner", "imap"), &["app.secret"]);
    assert_one_problem(
        "imap",
        &path,
        "listener[printers].relay",
        "not protocol = \"smtp\"",
    );
}

#[test]
fn exception_ids_are_their_id_keys_else_their_positions_and_unique() {
    let path = with_policy(
        "exception-ids",
        "",
        &format!(
            "[[exception]]\nid = 7\nclient = \"10.0.0.1\"\n{EXCEPTION_FIELDS}\n[[exception]]\nclient = \"10.0.0.2\"\n{EXCEPTION_FIELDS}\n[[exception]]\nid = 3\nclient = \"10.0.0.3\"\nadded = \"2026-12-01\"\n{EXCEPTION_FIELDS}"
        ),
    );
    let config = load(&path).expect("valid");
    let ids: Vec<(u32, bool)> = config
        .policy
        .exceptions()
        .iter()
        .map(|e| (e.id.0, e.added.is_some()))
        .collect();
    assert_eq!(ids, [(7, false), (2, false), (3, true)]);

    for (label, entries, key, problem) in [
        (
            "id-twice",
            "[[exception]]\nid = 2\nclient = \"10.0.0.1\"\n{F}\n[[exception]]\nclient = \"10.0.0.2\"\n{F}",
            "exception[2].id",
            "entries 1 and 2",
        ),
        (
            "id-zero",
            "[[exception]]\nid = 0\nclient = \"10.0.0.1\"\n{F}",
            "exception[1].id",
            "not a positive whole number",
        ),
        (
            "bad-added",
            "[[exception]]\nclient = \"10.0.0.1\"\nadded = \"yesterday\"\n{F}",
            "exception[1].added",
            "is not a date",
        ),
    ] {
        let path = with_policy(
            &format!("exception-{label}"),
            "",
            &entries.replace("{F}", EXCEPTION_FIELDS),
        );
        assert_one_problem(label, &path, key, problem);
    }
}

#[test]
fn the_register_may_live_in_a_file_the_config_names() {
    let path = with_policy(
        "register-file",
        "policy = \"sunset\"",
        &format!("{SUNSET}\n[exception_register]\nfile = \"exceptions.toml\"\n"),
    );
    let register = path.with_file_name("exceptions.toml");
    std::fs::write(
        &register,
        format!("# approved by the CAB\n[[exception]]\nid = 4\nuser = \"scanner@contoso.com\"\n{EXCEPTION_FIELDS}"),
    )
    .unwrap();
    let config = load(&path).expect("valid");
    let ids: Vec<String> = config
        .policy
        .exceptions()
        .iter()
        .map(|e| format!("{} {}", e.id, e.matches))
        .collect();
    assert_eq!(ids, ["4 user=scanner@contoso.com"]);
    assert_eq!(super::register_path(&path).unwrap(), register);

    // The next id is kept at the top of the file; one not above every id is a problem, and
    // so is the key in the config when the register is elsewhere.
    let entry =
        format!("[[exception]]\nid = 4\nuser = \"scanner@contoso.com\"\n{EXCEPTION_FIELDS}");
    std::fs::write(&register, format!("next_exception_id = 7\n{entry}")).unwrap();
    load(&path).expect("valid");
    std::fs::write(&register, format!("next_exception_id = 4\n{entry}")).unwrap();
    assert_one_problem(
        "next-id-low",
        &path,
        "next_exception_id",
        "the highest is 4",
    );
    let problems = load(&path).expect_err("next-id-low");
    assert!(
        problems[0].fix.contains("next_exception_id = 5"),
        "{problems:?}"
    );
    std::fs::write(&register, &entry).unwrap();
    let config_text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("next_exception_id = 7\n{config_text}")).unwrap();
    assert_one_problem(
        "next-id-in-config",
        &path,
        "next_exception_id",
        "is in the config",
    );
    std::fs::write(&path, config_text).unwrap();

    // Problems in the file are reported with the file's key or the exception's.
    std::fs::write(&register, "[[exception]]\nuser = \"a\"\nowner = \"b\"\n").unwrap();
    let keys = keys(&path);
    assert!(keys.contains(&"exception[1].plan".to_string()), "{keys:?}");
    std::fs::write(&register, "[listener]\nname = \"x\"\n").unwrap();
    assert_one_problem("other-keys", &path, "exception_register.file", "listener");
    std::fs::remove_file(&register).unwrap();
    assert_one_problem(
        "missing-file",
        &path,
        "exception_register.file",
        "cannot read",
    );

    // One place only, and the section needs its file.
    for (label, extra, key, problem) in [
        (
            "both",
            format!("[exception_register]\nfile = \"exceptions.toml\"\n\n[[exception]]\nclient = \"10.0.0.1\"\n{EXCEPTION_FIELDS}"),
            "exception",
            "keep the register in one place",
        ),
        (
            "no-file",
            "[exception_register]\n".to_string(),
            "exception_register.file",
            "is missing",
        ),
    ] {
        let path = with_policy(&format!("register-{label}"), "", &extra);
        let problems = load(&path).expect_err(label);
        assert_eq!(problems.len(), 1, "{label}: {problems:?}");
        assert_eq!(problems[0].key, key);
        assert!(
            problems[0].problem.contains(problem) || problems[0].fix.contains(problem),
            "{label}: {problems:?}"
        );
    }
}

#[test]
fn a_postgres_store_takes_its_url_password_file_and_ca_file() {
    let dir = std::env::temp_dir().join(format!("mailtls-store-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let password = dir.join("store-password");
    std::fs::write(&password, "pw-from-file\n").unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, "not read until connecting").unwrap();
    let path = with_sections(
        "store-postgres",
        &format!(
            "[store]\nurl = \"postgres://gw@db.example.org:5432/mailtls?sslmode=require\"\n\
             password_file = \"{}\"\nca_file = \"{}\"\nkeep_sessions = \"400d\"",
            password.display(),
            ca.display()
        ),
    );
    let config = load(&path).unwrap();
    let StoreLocation::Postgres(target) = &config.store else {
        panic!("a PostgreSQL store: {:?}", config.store);
    };
    assert_eq!(
        target.url(),
        "postgres://gw@db.example.org:5432/mailtls?sslmode=require"
    );
    let shown = format!("{config:?}");
    assert!(
        !shown.contains("pw-from-file"),
        "the password shows: {shown}"
    );
    assert_eq!(
        config.keep_sessions,
        Some(std::time::Duration::from_secs(400 * 86_400))
    );
}

#[test]
fn store_keys_that_do_not_fit_are_problems_with_their_key() {
    for (label, store, key, says) in [
        (
            "both",
            "path = \"a.db\"\nurl = \"postgres://gw@db/m?sslmode=require\"",
            "store.url",
            "together with store.path",
        ),
        (
            "password-in-url",
            "url = \"postgres://gw:hunter2@db/m?sslmode=require\"",
            "store.url",
            "password_file",
        ),
        (
            "no-tls",
            "url = \"postgres://gw@db/m\"",
            "store.url",
            "sslmode=require",
        ),
        (
            "missing-password-file",
            "url = \"postgres://gw@db/m?sslmode=require\"\npassword_file = \"/nonexistent/pw\"",
            "store.password_file",
            "does not exist",
        ),
        (
            "ca-without-url",
            "ca_file = \"/etc/ssl/certs/ca-certificates.crt\"",
            "store.ca_file",
            "only used with store.url",
        ),
        (
            "keep-unit",
            "keep_sessions = \"400\"",
            "store.keep_sessions",
            "not a number followed by",
        ),
        (
            "keep-short",
            "keep_sessions = \"2h\"",
            "store.keep_sessions",
            "shorter than a day",
        ),
    ] {
        let path = with_sections(&format!("store-{label}"), &format!("[store]\n{store}"));
        let problems = load(&path).expect_err(label);
        let problem = problems
            .iter()
            .find(|p| p.key == key)
            .unwrap_or_else(|| panic!("{label}: no problem at {key}: {problems:?}"));
        assert!(
            problem.problem.contains(says) || problem.fix.contains(says),
            "{label}: {problem}"
        );
        assert!(
            !problem.to_string().contains("hunter2"),
            "{label}: {problem}"
        );
    }
}

#[test]
fn the_dashboard_binds_beyond_loopback_only_with_a_long_enough_token() {
    let dashboard = |name: &str, section: &str| {
        with_gateway_section(name, &format!("\n[dashboard]\n{section}"))
    };
    let loopback = load(&dashboard("dash-loopback", "bind = \"127.0.0.1:8081\"")).unwrap();
    assert_eq!(
        loopback.dashboard.bind,
        Some("127.0.0.1:8081".parse().unwrap())
    );
    assert_eq!(loopback.dashboard.token_file, None);
    assert_eq!(
        load(&with_gateway_section("dash-none", ""))
            .unwrap()
            .dashboard,
        DashboardSettings::default()
    );

    assert_eq!(
        keys(&dashboard("dash-exposed", "bind = \"0.0.0.0:8080\"")),
        ["dashboard.bind"]
    );
    assert_eq!(
        keys(&dashboard("dash-listener", "bind = \"127.0.0.1:143\"")),
        ["dashboard.bind"]
    );
    assert_eq!(
        keys(&dashboard("dash-garbled", "bind = \"localhost\"")),
        ["dashboard.bind"]
    );
    assert_eq!(
        keys(&dashboard("dash-missing", "token_file = \"nowhere.token\"")),
        ["dashboard.token_file"]
    );
    assert_eq!(
        keys(&dashboard("dash-typo", "tokenfile = \"x\"")),
        ["(syntax)"]
    );

    let path = dashboard(
        "dash-token",
        "bind = \"0.0.0.0:8080\"\ntoken_file = \"dashboard.token\"",
    );
    let token = path.with_file_name("dashboard.token");
    std::fs::write(&token, "tiny-secret\n").unwrap();
    let problems = load(&path).unwrap_err();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems
            .iter()
            .all(|p| !p.to_string().contains("tiny-secret")),
        "the token is not repeated"
    );
    std::fs::write(&token, format!("{}\n", "a1".repeat(16))).unwrap();
    let exposed = load(&path).expect("a long token protects it");
    assert_eq!(exposed.dashboard.token_file, Some(token));
}
