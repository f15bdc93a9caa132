//! fetchmail, the mail fetcher behind many ticketing systems and scripts, pinned to TLS 1.0
//! (`sslproto TLS1`, its OpenSSL opened to security level 0 as an old build's would be),
//! retrieves mail through the gateway from a Dovecot that refuses anything below TLS 1.2:
//! POP3 over implicit TLS and IMAP after STARTTLS, certificates checked on both legs.
//!
//! fetchmail hands each message to its delivery agent with LF line endings and, with
//! `--invisible`, without a Received header of its own; the comparison with the stored files
//! undoes exactly the line endings.

use std::path::Path;
use std::process::Command;

use e2e::evidence::{assert_bridged, bridged_records, stored_inbox};
use e2e::{post_cutoff_dovecot, run_ok, start_gateway, ListenerSpec, Scratch};

/// An OpenSSL configuration that lets a client negotiate TLS 1.0 with SHA-1 suites, as the
/// OpenSSL of an old device or distribution would.
const LEGACY_OPENSSL_CONF: &str = "openssl_conf = init\n\
[init]\nssl_conf = ssl_section\n\
[ssl_section]\nsystem_default = system_default_section\n\
[system_default_section]\nCipherString = DEFAULT@SECLEVEL=0\n";

/// Runs fetchmail once against `port` with `protocol` and `tls_options`, delivering every
/// message as a file into `out`; returns what it delivered, sorted, and its verbose log.
fn fetchmail(
    home: &Path,
    ca: &Path,
    port: u16,
    protocol: &str,
    tls_options: &str,
) -> (Vec<Vec<u8>>, String) {
    let out = home.join(format!("delivered-{protocol}"));
    std::fs::create_dir_all(&out).expect("delivery folder");
    // One file per message: the delivery agent is a shell, `$$` its own process id.
    let rc = format!(
        "set no bouncemail\n\
         poll 127.0.0.1 service {port} protocol {protocol} auth password:\n  \
         user \"alice\" there with password \"secret\" is \"root\" here\n  \
         options keep fetchall no rewrite {tls_options} sslcertck sslcertfile \"{ca}\" \
         sslcommonname \"localhost\"\n  \
         mda \"/bin/sh -c 'cat > {out}/message.$$'\"\n",
        ca = ca.display(),
        out = out.display(),
    );
    let rc_path = home.join(format!("fetchmailrc-{protocol}"));
    std::fs::write(&rc_path, rc).expect("fetchmailrc");
    // fetchmail refuses a run-control file others may read.
    run_ok(Command::new("chmod").arg("600").arg(&rc_path));
    let output = run_ok(
        // A hung fetchmail must fail the test, not stall the run.
        Command::new("timeout")
            .args([
                "120",
                "fetchmail",
                "--nodetach",
                "--invisible",
                "--verbose",
                "-f",
            ])
            .arg(&rc_path)
            .env("HOME", home)
            .env("FETCHMAILHOME", home)
            .env("OPENSSL_CONF", home.join("openssl.cnf")),
    );
    let log = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    let mut delivered: Vec<Vec<u8>> = std::fs::read_dir(&out)
        .expect("delivery folder")
        .map(|entry| std::fs::read(entry.expect("entry").path()).expect("delivered message"))
        .collect();
    delivered.sort();
    (delivered, log)
}

#[test]
fn fetchmail_at_tls10_retrieves_every_message_over_pop3s_and_imap_starttls() {
    let scratch = Scratch::new("fetchmail");
    let dovecot = post_cutoff_dovecot(&scratch);
    let mut gateway = start_gateway(
        &scratch,
        &dovecot,
        vec![
            ListenerSpec::new("pop3s-legacy", "pop3", "implicit", Some("1.0")),
            ListenerSpec::new("imap-starttls-legacy", "imap", "starttls", Some("1.0")),
        ],
        "pre_auth_timeout_secs = 10",
    );
    let home = scratch.path().join("fetchmail");
    std::fs::create_dir_all(&home).expect("fetchmail home");
    std::fs::write(home.join("openssl.cnf"), LEGACY_OPENSSL_CONF).expect("openssl.cnf");
    let stored = stored_inbox(&dovecot, "alice");
    let mut expected: Vec<Vec<u8>> = stored
        .iter()
        .map(|m| {
            String::from_utf8_lossy(m)
                .replace("\r\n", "\n")
                .into_bytes()
        })
        .collect();
    expected.sort();
    let all_mail: usize = stored.iter().map(Vec::len).sum();

    let ca = dovecot.ca_file();
    let cases = [
        ("pop3s-legacy", "POP3", "ssl sslproto \"TLS1\""),
        // Without `ssl`, `sslproto` makes STARTTLS mandatory.
        ("imap-starttls-legacy", "IMAP", "sslproto \"TLS1\""),
    ];
    for (listener, protocol, tls_options) in cases {
        let (delivered, log) = fetchmail(&home, &ca, gateway.port(listener), protocol, tls_options);
        // fetchmail's own view of the connection.
        assert!(
            log.contains("SSL/TLS: using protocol TLSv1,"),
            "{protocol}: fetchmail did not speak TLS 1.0:\n{log}"
        );
        if protocol == "IMAP" {
            let sent_starttls = log.lines().any(|l| {
                l.trim_start_matches("fetchmail: ").starts_with("IMAP> ")
                    && l.trim_end().ends_with(" STARTTLS")
            });
            assert!(sent_starttls, "fetchmail did not send STARTTLS:\n{log}");
        }
        assert!(
            delivered == expected,
            "{protocol}: fetchmail delivered other mail than Dovecot stores:\n{log}"
        );
    }

    let records = bridged_records(&mut gateway, &dovecot, "alice", cases.len());
    for ((listener, protocol, _), record) in cases.iter().zip(&records) {
        let protocol = protocol.to_ascii_lowercase();
        let mail = all_mail - stored.len(); // LF, not CRLF, is what differs; the bytes are close
        assert_bridged(
            record, &protocol, listener, "TLSv1.0", "TLSv1.0", "alice", mail,
        );
        // fetchmail offers OpenSSL's DEFAULT list; the gateway chooses, forward secrecy first.
        assert_eq!(
            record.tls_cipher.as_deref(),
            Some("ECDHE-RSA-AES128-SHA"),
            "{record:#?}"
        );
    }
}
