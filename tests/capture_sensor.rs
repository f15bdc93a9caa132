//! `mailtls sensor -i lo` while a real TLS 1.0 client (`openssl s_client -tls1`) logs in to the
//! lab Dovecot through the gateway: the sensor, listening with libpcap, records the client as
//! the gateway does (same JA4, offered lists, versions, SNI and suite), as source `sensor`,
//! counts it in the Prometheus metrics it serves because its config (the gateway's, on another
//! metrics port) has `[metrics]`, and stops by itself after `--for`.

use std::process::{Command, Stdio};

use e2e::clients::{s_client_imap_login, LEGACY_CIPHERS};
use e2e::scrape::{scrape_until, value};
use e2e::{free_port, mailtls_bin, post_cutoff_dovecot, start_gateway, ListenerSpec, Scratch};
use store::{Source, SqliteStore};
use wire::TlsVersion;

#[test]
fn the_sensor_on_loopback_records_the_client_the_gateway_records() {
    let scratch = Scratch::new("capture-sensor");
    let dovecot = post_cutoff_dovecot(&scratch);
    let gateway_metrics = free_port();
    let mut gateway = start_gateway(
        &scratch,
        &dovecot,
        vec![ListenerSpec::new(
            "imaps-legacy",
            "imap",
            "implicit",
            Some("1.0"),
        )],
        &format!("pre_auth_timeout_secs = 10\n\n[metrics]\nbind = \"127.0.0.1:{gateway_metrics}\""),
    );
    let port = gateway.port("imaps-legacy");
    // The gateway's config, its metrics on another port; its store is `sessions.db` beside it.
    let sensor_dir = scratch.path().join("sensor");
    std::fs::create_dir_all(&sensor_dir).unwrap();
    let sensor_metrics = free_port();
    let config = std::fs::read_to_string(scratch.path().join("gateway/mailtls.toml"))
        .unwrap()
        .replace(
            &format!(":{gateway_metrics}\""),
            &format!(":{sensor_metrics}\""),
        );
    std::fs::write(sensor_dir.join("mailtls.toml"), config).unwrap();
    let db = sensor_dir.join("sessions.db");
    let mut sensor = Command::new(mailtls_bin())
        .args(["sensor", "--interface", "lo", "--for", "8s", "--config"])
        .arg(sensor_dir.join("mailtls.toml"))
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

    let text = scrape_until(sensor_metrics, "the handshake counted", |text| {
        value(text, "mailtls_sensor_handshakes_total", &[]) == Some(1.0)
    });
    assert!(
        value(&text, "mailtls_sensor_connections_total", &[]) >= Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "mailtls_sensor_dropped_packets", &[]),
        Some(0.0),
        "{text}"
    );
    // promtool's lint has nothing to say about the sensor's series.
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (lab/install.sh installs prometheus)");
    std::io::Write::write_all(&mut promtool.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let linted = promtool.wait_with_output().unwrap();
    assert!(
        linted.status.success() && linted.stdout.is_empty() && linted.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&linted.stdout),
        String::from_utf8_lossy(&linted.stderr)
    );

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
