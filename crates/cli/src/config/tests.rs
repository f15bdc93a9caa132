//! Config validation: every problem is reported with its key and a fix, all at once.

use std::path::{Path, PathBuf};

use super::load;

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
    let path = write_config(
        "example",
        example,
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
    assert_eq!(config.store_path, path.parent().unwrap().join("mailtls.db"));
    assert_eq!(config.metrics_bind, Some("127.0.0.1:9109".parse().unwrap()));
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

#[test]
fn the_metrics_endpoint_needs_an_address_of_its_own() {
    let listener = r#"
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
