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
    assert_eq!(config.store_path, path.parent().unwrap().join("mailtls.db"));
    let run_as = config.run_as.as_ref().expect("the example drops root");
    assert_eq!(run_as.user, "nobody");
    assert!(!run_as.group_readable);
    assert_eq!(config.store_access().mode(), 0o600);
}

/// A minimal valid config with `gateway` as its `[gateway]` section.
fn with_gateway_section(name: &str, gateway: &str) -> PathBuf {
    let text = format!(
        r#"
[gateway]
{gateway}

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
    assert_eq!(config.store_access().mode(), 0o640);
    assert_eq!(config.store_access().owner, Some((65534, 65534)));

    let alone = load(&with_gateway_section("no-user", "")).unwrap();
    assert_eq!(alone.run_as, None);
    assert_eq!(alone.store_access().owner, None);
    assert_eq!(alone.store_access().mode(), 0o600);
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
