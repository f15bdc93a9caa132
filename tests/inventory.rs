//! The client inventory end to end: real clients fetch mail through the gateway from the lab
//! Dovecot, then `mailtls clients` lists each with the verdict its TLS earns, its software (as
//! it reported it in IMAP ID, or as its fingerprint is known) and the owner and device an
//! admin recorded with `mailtls clients annotate`.
//!
//! Clients: `openssl s_client -tls1` and curl pinned to TLS 1.0 (both `breaks`), Python's
//! imaplib pinned to TLS 1.2 and `openssl s_client` at its default TLS 1.3 (both `ok`, the
//! latter naming itself in IMAP ID), and a plaintext IMAP client on a listener without TLS
//! (`no_tls`) whose IMAP ID carries terminal escapes and a spreadsheet formula.

use std::process::{Command, Output};

use e2e::clients::{
    curl_tls10_fetch, last_line, python_driver_fetch, s_client_fetch_all, Conversation,
    LEGACY_CIPHERS,
};
use e2e::evidence::{assert_same_messages, stored_inbox};
use e2e::{mailtls_bin, post_cutoff_dovecot, start_gateway, ListenerSpec, Scratch};
use serde_json::Value;

fn mailtls(args: &[&str]) -> Output {
    let output = Command::new(mailtls_bin())
        .args(args)
        .output()
        .expect("run mailtls");
    assert!(
        output.status.code().is_some_and(|c| c < 2),
        "mailtls {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The JSON client whose `field` equals `value`.
fn client_with<'a>(clients: &'a [Value], field: &str, value: &str) -> &'a Value {
    clients
        .iter()
        .find(|c| c[field].as_str() == Some(value))
        .unwrap_or_else(|| panic!("no client with {field} = {value:?} in {clients:#?}"))
}

#[test]
fn real_clients_become_an_inventory_with_verdicts_software_and_owners() {
    let scratch = Scratch::new("inventory");
    let dovecot = post_cutoff_dovecot(&scratch);
    let mut listeners = vec![ListenerSpec::new(
        "imaps-legacy",
        "imap",
        "implicit",
        Some("1.0"),
    )];
    listeners.push(ListenerSpec::new("imap-plain", "imap", "none", None));
    let mut gateway = start_gateway(&scratch, &dovecot, listeners, "pre_auth_timeout_secs = 10");
    let ca = dovecot.ca_file();
    let stored = stored_inbox(&dovecot, "alice");
    let tls_port = gateway.port("imaps-legacy");

    // openssl s_client pinned to TLS 1.0, and at its default (TLS 1.3) naming itself in ID.
    let legacy = ["-tls1", "-cipher", LEGACY_CIPHERS];
    assert_same_messages(
        "s_client -tls1",
        &s_client_fetch_all(tls_port, &ca, &legacy, false),
        &stored,
    );
    assert_same_messages(
        "s_client",
        &s_client_fetch_all(tls_port, &ca, &[], true),
        &stored,
    );
    // curl pinned to TLS 1.0.
    let out = scratch.path().join("curl-1.eml");
    let url = format!("imaps://127.0.0.1:{tls_port}/INBOX;MAILINDEX=1");
    let (message, _) = curl_tls10_fetch(&ca, &url, &out, "alice:secret".as_ref(), None, &[]);
    assert_eq!(message, stored[0], "curl fetched message 1 as stored");
    // Python imaplib pinned to TLS 1.2.
    let args = [
        format!("--port={tls_port}"),
        "--mode=implicit".to_string(),
        "--tls-version=1.2".to_string(),
        format!("--cafile={}", ca.display()),
        "--user=alice".to_string(),
        "--password=secret".to_string(),
    ];
    let fetched = python_driver_fetch(
        "imap_fetch.py",
        &args,
        "TLSv1.2",
        scratch.path().join("imaplib"),
        stored.len(),
    );
    assert_same_messages("imaplib TLS 1.2", &fetched, &stored);
    // A plaintext device whose ID carries an escape sequence and a formula.
    let mut plain = Conversation::tcp(gateway.port("imap-plain"));
    plain.read_line();
    plain.send(
        b"a ID (\"name\" \"=cmd|' /C calc'!A0\" \"version\" \"\x1b[2J\x1b]2;owned\x07\")\r\n",
    );
    let reply = plain.read_tagged("a");
    assert!(
        last_line(&reply).starts_with("a OK"),
        "{}",
        plain.describe()
    );
    plain.send(b"b LOGIN alice secret\r\n");
    let reply = plain.read_tagged("b");
    assert!(
        last_line(&reply).starts_with("b OK"),
        "{}",
        plain.describe()
    );
    plain.send(b"c LOGOUT\r\n");
    plain.read_tagged("c");
    drop(plain);

    gateway.stop();
    let db = gateway.db_path();
    let db = db.to_str().expect("UTF-8 path");

    let listed = mailtls(&["clients", "--store", db, "--json"]);
    assert_eq!(listed.status.code(), Some(1), "exit 1: a client breaks");
    let clients: Vec<Value> = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(clients.len(), 5, "{clients:#?}");
    let verdicts: Vec<&str> = clients
        .iter()
        .map(|c| c["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        verdicts,
        ["breaks", "breaks", "no_tls", "ok", "ok"],
        "worst first"
    );

    let printer = client_with(&clients, "software", "printer 1.0");
    assert_eq!(printer["verdict"], "ok");
    assert_eq!(printer["negotiated"], serde_json::json!(["TLSv1.3"]));
    assert_eq!(printer["highest_offered"], "TLSv1.3");
    let s_client_tls10 = client_with(
        &clients,
        "software",
        "OpenSSL 3.0 at TLS 1.0 (openssl s_client, Python ssl, fetchmail) (by fingerprint)",
    );
    assert_eq!(s_client_tls10["verdict"], "breaks");
    assert_eq!(s_client_tls10["negotiated"], serde_json::json!(["TLSv1.0"]));
    assert_eq!(s_client_tls10["sni"], serde_json::json!(["localhost"]));
    assert_eq!(s_client_tls10["sessions"], 1);
    let curl = client_with(
        &clients,
        "software",
        "curl 7.88 (OpenSSL 3.0) at TLS 1.0 (by fingerprint)",
    );
    assert_eq!(curl["verdict"], "breaks");
    assert!(curl["ja4"].as_str().unwrap().starts_with("t10i"), "{curl}");
    assert_eq!(curl["ja3"].as_array().unwrap().len(), 1);
    let python = clients
        .iter()
        .find(|c| c["highest_offered"] == "TLSv1.2")
        .expect("the TLS 1.2 client");
    assert_eq!(python["verdict"], "ok");
    assert_eq!(python["negotiated"], serde_json::json!(["TLSv1.2"]));
    let plaintext = client_with(&clients, "verdict", "no_tls");
    assert_eq!(plaintext["listeners"], serde_json::json!(["imap-plain"]));
    assert_eq!(plaintext["ja4"], Value::Null);
    for client in &clients {
        assert_eq!(client["logins"], serde_json::json!(["alice"]), "{client}");
        assert_eq!(client["sources"], serde_json::json!(["gateway"]));
    }

    // Owners: the address covers every client, the plaintext device gets its own.
    let plaintext_id = plaintext["id"].as_str().unwrap();
    mailtls(&[
        "clients",
        "annotate",
        "127.0.0.0/8",
        "--owner",
        "Front desk",
        "--device",
        "Scanner 3F",
        "--store",
        db,
    ]);
    mailtls(&[
        "clients",
        "annotate",
        plaintext_id,
        "--owner",
        "Print room",
        "--note",
        "replace by June",
        "--store",
        db,
    ]);
    let table = String::from_utf8(mailtls(&["clients", "--store", db]).stdout).unwrap();
    assert!(
        !table.contains('\x1b') && !table.contains('\x07'),
        "{table}"
    );
    assert!(table.contains("\\u{1b}[2J"), "{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 6, "{table}");
    for line in &lines[1..] {
        let owner = if line.contains(plaintext_id) {
            "Print room"
        } else {
            "Front desk"
        };
        assert!(line.contains(owner), "{line}");
    }
    // Each field comes from the most specific subject that sets it: the plaintext client's own
    // annotation gives owner and note, the address's the device.
    assert_eq!(table.matches("Scanner 3F").count(), 5, "{table}");

    let only = mailtls(&["clients", "--store", db, "--verdict", "no_tls", "--csv"]);
    assert_eq!(only.status.code(), Some(0), "no client breaks among these");
    let csv = String::from_utf8(only.stdout).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows[1].contains(",'=cmd|' /C calc'!A0 "), "{csv}");
    assert!(
        rows[1].contains(",Print room,Scanner 3F,replace by June"),
        "{csv}"
    );

    // The filters: one rule each, exit 1 only when a listed client breaks.
    let ids = |args: &[&str]| -> (Option<i32>, Vec<String>) {
        let mut all = vec!["clients", "--store", db, "--json"];
        all.extend_from_slice(args);
        let output = mailtls(&all);
        let listed: Vec<Value> = serde_json::from_slice(&output.stdout).expect("JSON");
        let ids = listed
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        (output.status.code(), ids)
    };
    assert_eq!(
        ids(&["--owner", "print ROOM"]),
        (Some(0), vec![plaintext_id.to_string()])
    );
    assert_eq!(ids(&["--listener", "imap-plain"]).1, [plaintext_id]);
    assert_eq!(ids(&["--listener", "imaps-legacy"]).1.len(), 4);
    assert_eq!(ids(&["--unowned"]), (Some(0), vec![]));
    assert_eq!(ids(&["--since", "1h"]).0, Some(1));
    assert_eq!(ids(&["--since", "1h"]).1.len(), 5);
    assert_eq!(ids(&["--since", "2999-01-01"]), (Some(0), vec![]));
    assert_eq!(
        ids(&["--verdict", "breaks", "--owner", "front desk"])
            .1
            .len(),
        2
    );
}
