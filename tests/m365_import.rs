//! `mailtls import entra-signins` and `mailtls import smtp-auth-report` on exports laid out as
//! Microsoft documents them (`crates/logs/testdata/`), through the binary into a store, then
//! `mailtls clients --json`: an Entra sign-in names an account, an address and a protocol but
//! no TLS (verdict `unknown`, never `no_tls`); the SMTP AUTH report names TLS versions per
//! sender (`breaks` for a sender with any TLS 1.0/1.1 share). A file lacking a required
//! column fails with the column's name, and a re-import adds nothing.

use std::path::PathBuf;
use std::process::Output;

use e2e::{repo_root, run_mailtls, Scratch};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    repo_root().join("crates/logs/testdata").join(name)
}

fn mailtls(args: &[&str]) -> Output {
    run_mailtls(args, b"")
}

fn import(args: &[&str]) -> Value {
    let mut all = vec!["import"];
    all.extend(args);
    all.push("--json");
    let output = mailtls(&all);
    assert!(
        output.status.success(),
        "mailtls {all:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON summary")
}

/// The client with this login at this address.
fn client<'a>(clients: &'a [Value], login: &str, address: &str) -> &'a Value {
    clients
        .iter()
        .find(|c| c["login"] == login && c["address"] == address)
        .unwrap_or_else(|| panic!("no client {login} at {address}: {clients:#?}"))
}

#[test]
fn microsoft_365_exports_join_the_inventory() {
    let scratch = Scratch::new("m365-import");
    let store_path = scratch.path().join("inventory.db");
    let store = store_path.to_str().unwrap();

    let csv = fixture("entra-interactive.csv");
    let signins = import(&["entra-signins", "--store", store, csv.to_str().unwrap()]);
    assert_eq!(signins["read"], 6, "{signins:#}");
    assert_eq!(signins["new_records"], 4, "{signins:#}");
    assert_eq!(
        signins["notes"]["rows about other client apps or protocols"], 2,
        "{signins:#}"
    );
    // The Graph JSON page holds the same sign-ins (by id): nothing new.
    let json = fixture("entra-signins-graph.json");
    let again = import(&["entra-signins", "--store", store, json.to_str().unwrap()]);
    assert_eq!(again["new_records"], 0, "{again:#}");
    assert_eq!(again["already_imported"], 4, "{again:#}");

    let report = fixture("smtp-auth-report.csv");
    let shares = import(&[
        "smtp-auth-report",
        "--store",
        store,
        "--date",
        "2026-11-30",
        report.to_str().unwrap(),
    ]);
    assert_eq!(shares["new_records"], 5, "{shares:#}");
    assert_eq!(shares["clients"]["breaks"], 2, "{shares:#}");
    assert_eq!(shares["clients"]["ok"], 1, "{shares:#}");

    let output = mailtls(&["clients", "--store", store, "--json"]);
    let clients: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let scanner = client(&clients, "scanner@contoso.com", "192.0.2.7");
    assert_eq!(scanner["verdict"], "unknown");
    assert_eq!(scanner["sources"], serde_json::json!(["entra_sign_ins"]));
    assert_eq!(scanner["negotiated"], serde_json::json!([]));
    let reported = client(&clients, "printer@contoso.com", "0.0.0.0");
    assert_eq!(reported["verdict"], "breaks");
    assert_eq!(
        reported["negotiated"],
        serde_json::json!(["TLSv1.0", "TLSv1.1", "TLSv1.2"])
    );
    assert_eq!(reported["sources"], serde_json::json!(["smtp_auth_report"]));
    assert_eq!(
        client(&clients, "app@contoso.com", "0.0.0.0")["verdict"],
        "ok"
    );
    assert!(
        clients.iter().all(|c| c["verdict"] != "no_tls"),
        "a sign-in without TLS data is no plaintext login: {clients:#?}"
    );
}

#[test]
fn an_export_without_a_required_column_names_it() {
    let scratch = Scratch::new("m365-missing");
    let store_path = scratch.path().join("inventory.db");
    for (command, file, column) in [
        (
            "entra-signins",
            "entra-missing-client-app.csv",
            "\"Client app\"",
        ),
        (
            "smtp-auth-report",
            "smtp-auth-report-missing-tls.csv",
            "\"TLS 1.1\"",
        ),
    ] {
        let output = mailtls(&[
            "import",
            command,
            "--store",
            store_path.to_str().unwrap(),
            fixture(file).to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command}: {stderr}");
        assert!(stderr.contains(column), "{command}: {stderr}");
    }
}
