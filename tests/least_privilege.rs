//! Least privilege: the gateway started as root with `[gateway] user` serves as that user (its
//! ports below 1024 bound and its files opened before), every thread of it, with no capability
//! left, while a real TLS 1.0 client logs in through it to a real Dovecot and its session is
//! recorded; the store's files are 0600 (0640 with `[gateway] group`) and belong to that user.
//! Started as root without `user`, it warns once. After giving root up, a reload reads the
//! config as that user: a root-only config is refused with what to do and the old config
//! serves on; readable by the gateway's group it applies; a new port below 1024 is refused
//! (root is gone for good). The shipped systemd unit passes `systemd-analyze verify` and its
//! offline security review.
//!
//! These tests need root, as CI runs them: they fail rather than skip without it.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use e2e::clients::{s_client_imap_login, LEGACY_CIPHERS};
use e2e::evidence::bridged_records;
use e2e::{
    mailtls_bin, post_cutoff_dovecot, repo_root, run_ok, start_gateway, ListenerSpec, Scratch,
};

/// The system user that owns the lab's mail (lab/install.sh and lab/dovecot.sh create it).
const LAB_USER: &str = "mailtls-lab";

fn assert_root() {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    assert_eq!(
        status_ids(&status, "Uid:")[0],
        0,
        "these tests start the gateway as root and must run as root (CI does)"
    );
}

/// The numbers after `field` in a /proc status file: real, effective, saved, file system ids
/// for `Uid:` and `Gid:`, the supplementary groups for `Groups:`.
fn status_ids(status: &str, field: &str) -> Vec<u32> {
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} line in:\n{status}"));
    line[field.len()..]
        .split_whitespace()
        .map(|n| n.parse().expect("an id"))
        .collect()
}

/// A capability set line of a /proc status file, e.g. `CapEff:`, as its hex mask.
fn status_caps(status: &str, field: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} line in:\n{status}"));
    u64::from_str_radix(line[field.len()..].trim(), 16).expect("a hex mask")
}

/// `id -u NAME` or `id -g NAME`.
fn lab_id(flag: &str) -> u32 {
    let output = run_ok(Command::new("id").arg(flag).arg(LAB_USER));
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("a number")
}

/// A loopback port below 1024 that nobody listens on right now (only root may bind one).
fn privileged_port() -> u16 {
    let start = 600 + (std::process::id() % 300) as u16;
    (start..1000)
        .chain(600..start)
        .find(|&port| TcpListener::bind(("127.0.0.1", port)).is_ok())
        .expect("a free port below 1024 on 127.0.0.1")
}

/// Asserts that every thread of process `pid` runs as `uid`/`gid` alone (real, effective,
/// saved and file system ids; `gid` the only supplementary group) with no capability.
fn assert_every_thread_runs_as(pid: u32, uid: u32, gid: u32) {
    let tasks: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("the gateway's threads")
        .map(|t| t.expect("a thread").path())
        .collect();
    // The async runtime's workers and the store's writer, not only the main thread.
    assert!(tasks.len() > 1, "{tasks:?}");
    for task in tasks {
        let status = std::fs::read_to_string(task.join("status")).expect("a thread's status");
        let context = format!("{}:\n{status}", task.display());
        assert_eq!(status_ids(&status, "Uid:"), [uid; 4], "{context}");
        assert_eq!(status_ids(&status, "Gid:"), [gid; 4], "{context}");
        assert_eq!(status_ids(&status, "Groups:"), [gid], "{context}");
        for caps in ["CapEff:", "CapPrm:", "CapAmb:"] {
            assert_eq!(status_caps(&status, caps), 0, "{caps} {context}");
        }
    }
}

/// Mode and owner of the store's database, WAL and shared-memory files, all of which must
/// exist while the gateway runs with WAL journaling.
fn store_files(db: &Path) -> Vec<(String, u32, u32, u32)> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let name = format!("{}{suffix}", db.display());
            let meta = std::fs::metadata(&name).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, meta.mode() & 0o777, meta.uid(), meta.gid())
        })
        .collect()
}

/// Starts the gateway as root with `[gateway] user` = the lab user plus `group_line` on a port
/// below 1024, and checks that once it listens every thread runs as that user and `gid`, that a
/// real TLS 1.0 client logs in through it, that the store's files are `mode` and belong to the
/// user and `gid`, and that the session was recorded (written after the drop).
fn serve_as_lab_user(label: &str, group_line: &str, gid: u32, mode: u32) {
    assert_root();
    let scratch = Scratch::new(label);
    let dovecot = post_cutoff_dovecot(&scratch);
    let uid = lab_id("-u");
    assert_ne!(uid, 0);
    let mut listener = ListenerSpec::new("imaps-legacy", "imap", "implicit", Some("1.0"));
    listener.port = privileged_port();
    let port = listener.port;
    let mut gateway = start_gateway(
        &scratch,
        &dovecot,
        vec![listener],
        &format!("pre_auth_timeout_secs = 10\nuser = \"{LAB_USER}\"\n{group_line}"),
    );

    // Listening: the drop is done (the gateway logs "listening" after it).
    assert_every_thread_runs_as(gateway.pid(), uid, gid);
    let log = gateway.log();
    assert!(log.contains("serving as an unprivileged user"), "{log}");
    assert!(!log.contains("running as root"), "{log}");

    s_client_imap_login(
        port,
        &dovecot.ca_file(),
        &["-tls1", "-cipher", LEGACY_CIPHERS],
    );
    for (name, found_mode, owner, group) in store_files(&gateway.db_path()) {
        assert_eq!(found_mode, mode, "{name} is {found_mode:o}");
        assert_eq!((owner, group), (uid, gid), "{name}");
    }
    let records = bridged_records(&mut gateway, &dovecot, "alice", 1);
    assert_eq!(records[0].listener, "imaps-legacy");
    assert_eq!(records[0].tls_version, Some(wire::TlsVersion::Tls10));
}

#[test]
fn started_as_root_with_a_user_it_serves_as_that_user_on_a_port_below_1024() {
    serve_as_lab_user("least-privilege", "", lab_id("-g"), 0o600);
}

#[test]
fn with_a_group_it_serves_as_that_group_and_the_store_is_group_readable() {
    // nogroup (65534), not the lab user's own group: the configured group wins.
    serve_as_lab_user("least-privilege-group", "group = \"nogroup\"", 65534, 0o640);
}

#[test]
fn started_as_root_without_a_user_it_warns_once_and_serves() {
    assert_root();
    let scratch = Scratch::new("root-warning");
    let dovecot = post_cutoff_dovecot(&scratch);
    let mut gateway = start_gateway(
        &scratch,
        &dovecot,
        vec![ListenerSpec::new(
            "imaps-legacy",
            "imap",
            "implicit",
            Some("1.0"),
        )],
        "pre_auth_timeout_secs = 10",
    );
    let port = gateway.port("imaps-legacy");
    s_client_imap_login(
        port,
        &dovecot.ca_file(),
        &["-tls1", "-cipher", LEGACY_CIPHERS],
    );
    bridged_records(&mut gateway, &dovecot, "alice", 1);
    let log = gateway.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("running as root"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("[gateway] user"), "{log}");
    // Still root: the warning is all it does.
    assert!(!log.contains("serving as an unprivileged user"), "{log}");
    // The store is private all the same.
    let mode = std::fs::metadata(gateway.db_path()).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

/// Makes `path` owned by root and group `gid`, with `mode`.
fn set_owner_and_mode(path: &Path, gid: u32, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::os::unix::fs::chown(path, Some(0), Some(gid)).expect("chown");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn after_giving_root_up_a_reload_needs_a_config_its_group_may_read_and_no_new_port_below_1024() {
    assert_root();
    let scratch = Scratch::new("least-privilege-reload");
    let dovecot = post_cutoff_dovecot(&scratch);
    let ca = dovecot.ca_file();
    let gid = lab_id("-g");
    let mut listener = ListenerSpec::new("imaps-legacy", "imap", "implicit", Some("1.0"));
    listener.port = privileged_port();
    let section = format!("pre_auth_timeout_secs = 10\nuser = \"{LAB_USER}\"\n");
    let mut gateway = start_gateway(&scratch, &dovecot, vec![listener.clone()], &section);
    let config = gateway.config_path();
    let legacy = ["-tls1", "-cipher", LEGACY_CIPHERS];

    // Root's alone, as lab/quickstart.sh installs it: the serving user cannot read it.
    set_owner_and_mode(&config, 0, 0o600);
    let added = ListenerSpec::new("imaps-added", "imap", "implicit", Some("1.0"));
    gateway.rewrite_config(&dovecot, &[listener.clone(), added.clone()], &section);
    gateway.hang_up();
    let refusal = gateway.reload_refusal(1, "cannot read");
    assert!(refusal.contains("Permission denied"), "{refusal}");
    assert!(
        refusal.contains(&format!("serves as {LAB_USER}")),
        "{refusal}"
    );
    assert!(refusal.contains("chgrp"), "{refusal}");
    // The old config serves on, on the port below 1024 bound at start.
    s_client_imap_login(listener.port, &ca, &legacy);
    assert!(TcpListener::bind(("127.0.0.1", added.port)).is_ok());

    // Readable by the gateway's group, with the key it names: the reload applies.
    set_owner_and_mode(&config, gid, 0o640);
    let key = ca.parent().expect("certs").join("server.key");
    set_owner_and_mode(&key, gid, 0o640);
    gateway.hang_up();
    gateway.wait_for_log("config reloaded", 1);
    s_client_imap_login(added.port, &ca, &legacy);
    s_client_imap_login(listener.port, &ca, &legacy);

    // A new port below 1024 needs root, given up for good: refused, with the key.
    let mut low = ListenerSpec::new("imaps-low", "imap", "implicit", Some("1.0"));
    low.port = privileged_port();
    gateway.rewrite_config(
        &dovecot,
        &[listener.clone(), added.clone(), low.clone()],
        &section,
    );
    gateway.hang_up();
    let refusal = gateway.reload_refusal(2, "listener[imaps-low].bind");
    assert!(refusal.contains("below 1024"), "{refusal}");
    assert!(refusal.contains("restart the gateway"), "{refusal}");
    s_client_imap_login(added.port, &ca, &legacy);
    // Four logins: one before the reloads, two after the second, one after the third.
    let records = bridged_records(&mut gateway, &dovecot, "alice", 4);
    assert!(records
        .iter()
        .all(|r| r.tls_version == Some(wire::TlsVersion::Tls10)));
}

#[test]
fn the_systemd_unit_verifies_and_its_sandbox_is_rated_ok() {
    let unit = repo_root().join("examples/systemd/mailtls.service");
    let text = std::fs::read_to_string(&unit).expect("the shipped unit");
    // systemd-analyze verify checks that ExecStart's and ExecReload's binary exists: point
    // them at the one this checkout builds, and change nothing else.
    let installed = "=/usr/local/bin/mailtls ";
    for key in ["ExecStart", "ExecReload"] {
        let line = format!("{key}{installed}");
        assert_eq!(text.matches(&line).count(), 1, "{key} in {text}");
    }
    let built = format!("={} ", mailtls_bin().display());
    let scratch = Scratch::new("systemd-unit");
    let copy = scratch.path().join("mailtls.service");
    std::fs::write(&copy, text.replace(installed, &built)).expect("write the unit");

    let analyze = |args: &[&str]| {
        let mut command = Command::new("systemd-analyze");
        command.args(args).arg(&copy);
        match command.output() {
            Ok(output) => output,
            Err(e) => panic!("cannot run systemd-analyze ({e}): run lab/install.sh"),
        }
    };
    let verify = analyze(&["verify"]);
    // verify exits 0 on unknown or misspelt keys and only warns: a clean run says nothing.
    assert!(
        verify.status.success() && verify.stderr.is_empty() && verify.stdout.is_empty(),
        "systemd-analyze verify: {verify:?}"
    );

    // The offline security review, failing above an exposure of 2.0 ("OK" ends at 3.9).
    let security = analyze(&["security", "--offline=true", "--threshold=20"]);
    let report = String::from_utf8_lossy(&security.stdout);
    assert!(security.status.success(), "{report}\n{security:?}");
    let overall = report
        .lines()
        .find(|l| l.contains("Overall exposure level for mailtls.service:"))
        .unwrap_or_else(|| panic!("no overall rating in:\n{report}"));
    assert!(overall.contains(" OK"), "{overall}");
    // What the review must have found, by the names it gives them.
    for setting in [
        "✓ NoNewPrivileges=",
        "✓ ProtectSystem=",
        "✓ ProtectHome=",
        "✓ PrivateTmp=",
        "✓ RestrictAddressFamilies=~AF_PACKET",
        "✓ CapabilityBoundingSet=~CAP_SET(UID|GID|PCAP)",
        "✓ User=/DynamicUser=",
    ] {
        assert!(report.contains(setting), "no {setting} in:\n{report}");
    }
    for line in [
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "User=mailtls",
        "ReadWritePaths=/var/lib/mailtls",
        "ExecReload=/usr/local/bin/mailtls reload --config /etc/mailtls/mailtls.toml --pid $MAINPID",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in the unit");
    }
}
