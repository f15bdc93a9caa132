//! Forward secrecy for legacy clients: a real `openssl s_client` pinned to TLS 1.0 logs in
//! through a `min_tls = "1.0"` listener of the gateway to a real Dovecot with whichever key
//! exchange it knows (ECDHE, DHE, or only RSA key exchange), and a client offering all of them
//! gets ECDHE, even when it lists RSA key exchange first: the server chooses. The suite is
//! taken both from the client's own report and from the session record, and `check-config
//! --verbose` lists the same suites for the listener.

use e2e::clients::s_client_imap_login;
use e2e::evidence::bridged_records;
use e2e::{mailtls_bin, post_cutoff_dovecot, run_ok, start_gateway, ListenerSpec, Scratch};

const LISTENER: &str = "imaps-legacy";

#[test]
fn tls10_clients_log_in_with_ecdhe_dhe_or_rsa_key_exchange_and_ecdhe_is_preferred() {
    let scratch = Scratch::new("legacy-suites");
    let dovecot = post_cutoff_dovecot(&scratch);
    let mut gateway = start_gateway(
        &scratch,
        &dovecot,
        vec![ListenerSpec::new(LISTENER, "imap", "implicit", Some("1.0"))],
        "pre_auth_timeout_secs = 10",
    );
    let ca = dovecot.ca_file();
    let port = gateway.port(LISTENER);

    // (what the client offers, the suite it must get, a line its report must hold)
    let cases = [
        (
            "ECDHE-RSA-AES128-SHA:@SECLEVEL=0",
            "ECDHE-RSA-AES128-SHA",
            "Server Temp Key: X25519",
        ),
        (
            "DHE-RSA-AES128-SHA:@SECLEVEL=0",
            "DHE-RSA-AES128-SHA",
            "Server Temp Key: DH, 2048 bits",
        ),
        (
            "AES128-SHA:@SECLEVEL=0",
            "AES128-SHA",
            "Protocol version: TLSv1\n",
        ),
        // RSA key exchange and DHE listed before ECDHE, as an old client might: the server's
        // preference decides.
        (
            "AES128-SHA:AES256-SHA:DHE-RSA-AES256-SHA:DHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:\
             ECDHE-RSA-AES128-SHA:@SECLEVEL=0",
            "ECDHE-RSA-AES128-SHA",
            "Server Temp Key: X25519",
        ),
    ];
    for (offer, suite, evidence) in cases {
        let report = s_client_imap_login(port, &ca, &["-tls1", "-cipher", offer, "-brief"]);
        assert!(
            report.contains(&format!("Ciphersuite: {suite}\n")),
            "{offer}: the client did not get {suite}:\n{report}"
        );
        assert!(
            report.contains(evidence),
            "{offer}: no {evidence:?} in the client's report:\n{report}"
        );
    }

    let records = bridged_records(&mut gateway, &dovecot, "alice", cases.len());
    for ((offer, suite, _), record) in cases.iter().zip(&records) {
        assert_eq!(record.tls_version, Some(wire::TlsVersion::Tls10), "{offer}");
        assert_eq!(record.tls_cipher.as_deref(), Some(*suite), "{offer}");
    }

    // The operator's view of the same listener.
    let config = gateway.db_path().with_file_name("mailtls.toml");
    let output = run_ok(
        std::process::Command::new(mailtls_bin())
            .args(["check-config", "--verbose", "--config"])
            .arg(&config),
    );
    let listing = String::from_utf8_lossy(&output.stdout);
    for line in [
        format!("listener {LISTENER} (implicit TLS, min_tls 1.0): suites in order of preference"),
        "  TLSv1.0: ECDHE-RSA-AES128-SHA ECDHE-RSA-AES256-SHA DHE-RSA-AES128-SHA \
         DHE-RSA-AES256-SHA AES128-SHA AES256-SHA"
            .to_string(),
    ] {
        assert!(
            listing.lines().any(|l| l == line),
            "no line {line:?} in:\n{listing}"
        );
    }
}
