//! A fleet of gateways on one PostgreSQL store (a private server from `lab/postgres.sh`, over
//! verified TLS with a scram-sha-256 password), with real clients through real gateways:
//! two gateways writing at once make one inventory, and a database that goes away mid-run
//! costs no session and no record.

use std::process::Command;
use std::time::{Duration, Instant};

use e2e::clients::{s_client_fetch_all, LEGACY_CIPHERS};
use e2e::fault_lab::{standard_listeners, Lab};
use e2e::scrape::{scrape, scrape_until, value};
use e2e::{
    free_port, mailtls_bin, Dovecot, DovecotOptions, Gateway, ListenerSpec, Postgres, Scratch,
};
use serde_json::Value;
use store::{Outcome, Store};

/// Sessions stored in the lab PostgreSQL's `mailtls` database.
fn stored_sessions(postgres: &Postgres) -> u64 {
    Store::open(&postgres.location())
        .and_then(|mut store| store.count())
        .unwrap_or_else(|e| panic!("count the sessions: {e}"))
}

/// Waits until `n` sessions are stored while the gateway of `lab` runs.
fn wait_until_stored(postgres: &Postgres, n: u64, lab: &Lab) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored_sessions(postgres) < n {
        assert!(
            Instant::now() < deadline,
            "{n} records were not written:\n{}",
            lab.gateway.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Two gateways (listeners `imaps-east` and `imaps-west`) write to one PostgreSQL while
/// `openssl s_client` fetches mail through both at once, once at TLS 1.0 and once at its
/// default TLS 1.3 naming itself in IMAP ID, twice per gateway. `mailtls clients --store URL`
/// then lists each client once, with the sessions of both gateways summed and both listeners.
#[test]
fn two_gateways_writing_to_one_postgres_make_one_inventory() {
    let scratch = Scratch::new("fleet");
    let postgres = Postgres::start(&scratch.path().join("postgres"));
    let dovecot = Dovecot::start(&scratch.path().join("dovecot"), &DovecotOptions::default());
    let store_table = format!("\n{}", postgres.store_toml());
    let mut gateways: Vec<Gateway> = ["east", "west"]
        .iter()
        .map(|side| {
            let dir = scratch.path().join(format!("gateway-{side}"));
            std::fs::create_dir_all(&dir).unwrap();
            let listener =
                ListenerSpec::new(&format!("imaps-{side}"), "imap", "implicit", Some("1.0"));
            Gateway::start(&dir, &dovecot, vec![listener], &store_table)
        })
        .collect();
    let ca = dovecot.ca_file();
    let ports: Vec<u16> = gateways
        .iter()
        .map(|g| g.port(&g.listeners[0].name))
        .collect();

    std::thread::scope(|scope| {
        for &port in &ports {
            for legacy in [true, false] {
                let ca = &ca;
                scope.spawn(move || {
                    for _ in 0..2 {
                        let args: &[&str] = if legacy {
                            &["-tls1", "-cipher", LEGACY_CIPHERS]
                        } else {
                            &[]
                        };
                        let fetched = s_client_fetch_all(port, ca, args, !legacy);
                        assert!(
                            !fetched.is_empty(),
                            "s_client fetched nothing through {port}"
                        );
                    }
                });
            }
        }
    });
    for gateway in &mut gateways {
        let status = gateway.stop();
        assert!(status.is_some_and(|s| s.success()), "{}", gateway.log());
    }
    assert_eq!(stored_sessions(&postgres), 8);

    let output = Command::new(mailtls_bin())
        .args(["clients", "--json", "--store", postgres.url(), "--store-ca"])
        .arg(postgres.ca_file())
        .env("MAILTLS_STORE_PASSWORD", postgres.password())
        .output()
        .expect("run mailtls clients");
    assert_eq!(
        output.status.code(),
        Some(1),
        "exit 1: a client breaks\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let clients: Vec<Value> = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(
        clients.len(),
        2,
        "one client per s_client setup: {clients:#?}"
    );
    for client in &clients {
        assert_eq!(client["sessions"], 4, "two per gateway: {client:#}");
        // Both gateways' listeners, in the order first seen, which their race decides.
        let mut listeners: Vec<&str> = client["listeners"]
            .as_array()
            .expect("listeners")
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        listeners.sort_unstable();
        assert_eq!(listeners, ["imaps-east", "imaps-west"], "{client:#}");
    }
    let verdicts: Vec<&str> = clients
        .iter()
        .map(|c| c["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["breaks", "ok"], "worst first");

    // `clients annotate` through the URL too; the annotation shows in the listing.
    let id = clients[0]["id"].as_str().unwrap();
    let annotate = Command::new(mailtls_bin())
        .args([
            "clients",
            "annotate",
            id,
            "--owner",
            "Facilities",
            "--store",
            postgres.url(),
            "--store-ca",
        ])
        .arg(postgres.ca_file())
        .env("MAILTLS_STORE_PASSWORD", postgres.password())
        .output()
        .expect("run mailtls clients annotate");
    assert!(
        annotate.status.success(),
        "{}",
        String::from_utf8_lossy(&annotate.stderr)
    );
    let mut store = Store::open(&postgres.location()).unwrap();
    let annotated = store.clients().unwrap();
    assert!(
        annotated
            .iter()
            .any(|c| c.annotation.as_ref().and_then(|a| a.owner.as_deref()) == Some("Facilities")),
        "{annotated:#?}"
    );
}

/// PostgreSQL is down when the gateway starts, then stops again while it serves (`pg_ctl stop
/// -m fast`, as a restart or crash does): the gateway starts and serves all the same, records
/// wait with a counted warning (log and metrics), and once the server is back a retry stores
/// every one of them while the gateway still runs.
#[test]
fn postgres_stopped_mid_run_delays_records_and_loses_none() {
    let scratch = Scratch::new("fleet-outage");
    let postgres = Postgres::start(&scratch.path().join("postgres"));
    postgres.pause();
    let metrics = free_port();
    let mut lab = Lab::start(
        "postgres-outage",
        &format!(
            "\n[metrics]\nbind = \"127.0.0.1:{metrics}\"\n\n{}",
            postgres.store_toml()
        ),
        Vec::new(),
        standard_listeners(),
    );
    assert!(
        lab.gateway.log().contains("serving anyway"),
        "{}",
        lab.gateway.log()
    );
    lab.imap_login_works("imap-tls");
    lab.wait_for_failed_writes(1);
    postgres.resume();
    wait_until_stored(&postgres, 1, &lab);
    let failed_before = lab
        .gateway
        .log()
        .matches("they stay queued and the write is retried")
        .count();

    postgres.pause();
    lab.imap_login_works("imap-tls");
    lab.pop3_login_works("pop3-plain");
    lab.imap_login_works("imap-plain");
    lab.wait_for_failed_writes(failed_before + 2);
    let text = scrape(metrics);
    assert!(
        value(&text, "mailtls_store_write_failures_total", &[])
            .is_some_and(|n| n >= (failed_before + 2) as f64),
        "{text}"
    );
    assert_eq!(
        value(&text, "mailtls_store_queued_records", &[]),
        Some(3.0),
        "{text}"
    );
    let log = lab.gateway.log();
    assert!(
        log.contains("PostgreSQL session store"),
        "the warning names the store:\n{log}"
    );
    assert!(
        !log.contains(&postgres.password()),
        "the password is in the log"
    );

    postgres.resume();
    // Stored by a retry while the gateway runs (pauses grow to 5 s), not at shutdown.
    wait_until_stored(&postgres, 4, &lab);
    scrape_until(metrics, "an empty store queue", |text| {
        value(text, "mailtls_store_queued_records", &[]) == Some(0.0)
    });
    assert!(lab
        .gateway
        .log()
        .contains("session records written after the store recovered"));

    let status = lab.gateway.stop();
    assert!(status.is_some_and(|s| s.success()), "{}", lab.gateway.log());
    let records = Store::open(&postgres.location())
        .unwrap()
        .sessions()
        .unwrap();
    assert_eq!(
        records.len(),
        4,
        "one record per session, none twice: {records:#?}"
    );
    for record in &records {
        assert_eq!(record.outcome, Outcome::Ok, "{record:?}");
        assert_eq!(record.login.as_deref(), Some("alice"));
    }
    assert!(!lab.gateway.log().contains("session record not stored"));
}
