//! `mailtls sensor -i lo` while a real TLS 1.0 client (`openssl s_client -tls1`) logs in to the
//! lab Dovecot through the gateway: the sensor, listening with libpcap, records the client as
//! the gateway does (same JA4, offered lists, versions, SNI and suite), as source `sensor`, and
//! stops by itself after `--for`.

use std::process::{Command, Stdio};

use e2e::clients::{s_client_imap_login, LEGACY_CIPHERS};
use e2e::{mailtls_bin, post_cutoff_dovecot, start_gateway, ListenerSpec, Scratch};
use store::{Source, SqliteStore};
use wire::TlsVersion;

#[test]
fn the_sensor_on_loopback_records_the_client_the_gateway_records() {
    let scratch = Scratch::new("capture-sensor");
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
    let db = scratch.path().join("sensor.db");
    let mut sensor = Command::new(mailtls_bin())
        .args(["sensor", "--interface", "lo", "--for", "8s", "--store"])
        .arg(&db)
        .args(["--tls-port", &format!("{port}=imap")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mailtls sensor");
    e2e::process::await_stderr_line(&mut sensor, "listening on lo");

    let report = s_client_imap_login(
        port,
        &dovecot.ca_file(),
        &["-tls1", "-cipher", LEGACY_CIPHERS],
    );
    assert!(report.contains("a OK"), "{report}");

    let output = sensor
        .wait_with_output()
        .expect("the sensor stops after --for");
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{summary}");
    assert!(summary.contains("dropped by the kernel"), "{summary}");
    let gateway_records = gateway.stop_and_read_sessions();
    let seen = gateway_records
        .last()
        .expect("the gateway recorded the session");

    let records = SqliteStore::open(&db).unwrap().sessions().unwrap();
    let found = records
        .iter()
        .find(|r| r.client_port == seen.client_port && r.upstream.ends_with(&format!(":{port}")))
        .unwrap_or_else(|| {
            panic!(
                "the sensor did not record port {}: {records:#?}",
                seen.client_port
            )
        });
    assert_eq!(found.source, Source::Sensor);
    assert_eq!(found.tls_version, Some(TlsVersion::Tls10));
    e2e::evidence::assert_same_client(found, seen);
}
