//! Devices that cannot authenticate (scan-to-email printers set to "no authentication") on an
//! SMTP listener with `[listener.relay]`: the real `mailtls` binary takes their mail without
//! AUTH only from the listed network and only for the listed senders, logs in to the lab's
//! TLS 1.2-only Postfix as the relay account (a pass-through user from a root-only file), and
//! refuses everyone else with `550 5.7.1` before anything reaches Postfix. Evidence comes from
//! Postfix's Maildirs (byte-exact messages), Postfix's log (the account's SASL login, the TLS
//! version, and no connection at all for the refused) and the gateway's session records (the
//! number of messages each session submitted).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use e2e::clients::smtp_submit;
use e2e::evidence::{assert_no_secret_in_gateway_files, by_start, upstream_is_modern};
use e2e::submission::{assert_delivered_exactly, scan_message, tls_line, wait_for_delivery};
use e2e::{run, submission_lab, Gateway, ListenerSpec, Scratch, SubmissionLab};
use store::{Outcome, SessionRecord};
use wire::TlsVersion;

/// What the `printers-floor` listener's TLS floor policy tells a TLS 1.0 device.
const RETIRED: &str = "TLS 1.0 is retired for printers";

/// The lab's password for alice (lab/dovecot.sh): the relay account's, in the credentials file.
const ALICE_PASSWORD: &str = "secret";

/// Postfix and Dovecot, and a gateway with three relaying listeners in front of Postfix:
/// `printers` without TLS, `printers-tls` with STARTTLS down to TLS 1.0, and `printers-floor`
/// like it under an enforced TLS 1.2 floor policy. All relay for 127.0.0.1 only, for the
/// senders `scanner@` and `Alerts@` the lab domain, as alice.
struct RelayLab {
    lab: SubmissionLab,
    gateway: Gateway,
    /// Where the clients' message files go (outside the gateway's folder).
    messages: PathBuf,
    ca: PathBuf,
}

impl RelayLab {
    fn start(scratch: &Scratch) -> RelayLab {
        let lab = submission_lab(scratch, "TLSv1.2");
        let ca = lab.dovecot.ca_file();
        let certs = ca.parent().expect("certs dir").to_path_buf();
        let dir = scratch.path().join("gateway");
        std::fs::create_dir_all(&dir).expect("gateway dir");
        // Beside the gateway's folder, whose files the test searches for the password.
        let credentials = scratch.path().join("relay.cred");
        std::fs::write(&credentials, format!("alice\n{ALICE_PASSWORD}\n")).expect("write cred");
        std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o600))
            .expect("chmod cred");
        let relay = format!(
            "[listener.relay]\nnetworks = [\"127.0.0.1/32\"]\nsenders = [\"{}\", \"{}\"]\ncredentials_file = \"{}\"\n\n",
            lab.postfix.address("scanner"),
            lab.postfix.address("Alerts"),
            credentials.display()
        );
        let listeners = vec![
            ListenerSpec::new("printers", "smtp", "none", None),
            ListenerSpec::new("printers-tls", "smtp", "starttls", Some("1.0")),
            ListenerSpec::new("printers-floor", "smtp", "starttls", Some("1.0"))
                .with_policy("ended"),
        ];
        let config = format!(
            "[gateway]\n\n[store]\npath = \"sessions.db\"\n\n\
             [policy.ended]\nmode = \"enforce\"\nstart = \"2025-01-01\"\nend = \"2025-06-30\"\n\
             message = \"{RETIRED}\"\n\n\
             [[upstream]]\nname = \"postfix\"\naddress = \"localhost:{port}\"\nprotocol = \"smtp\"\ntls = \"starttls\"\nca_file = \"{ca}\"\n\n{listeners}",
            port = lab.postfix.port("SMTP_PORT"),
            ca = ca.display(),
            listeners = listeners
                .iter()
                .map(|l| l.toml(&certs, "postfix") + &relay)
                .collect::<String>(),
        );
        let gateway = Gateway::start_with_config(&dir, &config, listeners);
        RelayLab {
            lab,
            gateway,
            messages: scratch.path().to_path_buf(),
            ca,
        }
    }

    fn port(&self, listener: &str) -> String {
        self.gateway.port(listener).to_string()
    }

    fn address(&self, user: &str) -> String {
        self.lab.postfix.address(user)
    }

    /// Lines of Postfix's log where a client connected to smtpd.
    fn postfix_connections(&self) -> usize {
        self.lab
            .postfix
            .log()
            .lines()
            .filter(|l| l.contains("postfix/smtpd[") && l.contains(": connect from "))
            .count()
    }
}

/// A device without AUTH: the listener it submits to, `cleartext` or `starttls` (at TLS 1.0),
/// and the local address it connects from.
struct Device<'d> {
    listener: &'d str,
    mode: &'d str,
    source: &'d str,
}

const PRINTER: Device = Device {
    listener: "printers",
    mode: "cleartext",
    source: "127.0.0.1",
};

/// Python smtplib as `device`, sending `message` `count` times in one session as `from` to
/// `to`.
fn relay_submit(
    lab: &RelayLab,
    device: &Device,
    (from, to): (&str, &str),
    message: &[u8],
    count: u32,
) -> (bool, String) {
    let file = lab
        .messages
        .join(format!("{}-{from}-{count}.eml", device.listener));
    std::fs::write(&file, message).expect("write message");
    let ca = lab.ca.display().to_string();
    smtp_submit(
        &file,
        &[
            "--port",
            &lab.port(device.listener),
            "--mode",
            device.mode,
            "--tls-version",
            "1.0",
            "--cafile",
            &ca,
            "--no-auth",
            "--count",
            &count.to_string(),
            "--source",
            device.source,
            "--from",
            from,
            "--to",
            to,
        ],
    )
}

/// What the test compares of each record: listener, outcome, login, envelope sender and the
/// messages submitted.
type Summary<'r> = (
    &'r str,
    Outcome,
    Option<&'r str>,
    Option<&'r str>,
    Option<u32>,
);

/// Listed devices submit without AUTH and their messages arrive byte for byte, with Postfix
/// seeing the relay account's login over TLS 1.2+: Python smtplib without TLS (three messages
/// in one session), smtplib over STARTTLS at TLS 1.0 with the sender in other letter case, and
/// curl without TLS; AUTH still works on the same listener. An unlisted sender from the listed
/// network (smtplib) and a listed sender from another network (smtplib and swaks from
/// 127.0.0.3) get `550 5.7.1`, as does a TLS 1.0 device on a listener whose TLS floor policy
/// refuses TLS 1.0 (with the policy's message), and Postfix sees no connection for them. A
/// recipient in another
/// domain is taken as Postfix takes it for the authenticated account: the gateway judges
/// senders and networks, never recipients. The records count the messages each session
/// submitted, name the relay account and the sender, and hold no password.
#[test]
fn listed_devices_relay_without_auth_and_everyone_else_gets_550() {
    let scratch = Scratch::new("smtp-relay");
    let lab = RelayLab::start(&scratch);
    let alice = lab.address("alice");
    let scanner = lab.address("scanner");
    let mut sent = Vec::new();

    // smtplib, no TLS, no AUTH, three messages in one session.
    let message = scan_message("relay-three", &scanner, &alice);
    let (ok, report) = relay_submit(&lab, &PRINTER, (&scanner, &alice), &message, 3);
    assert!(ok, "{report}");
    assert!(report.contains("queued=3"), "{report}");
    sent.extend([message.clone(), message.clone(), message]);

    // smtplib, STARTTLS at TLS 1.0, no AUTH, the listed sender in other letter case.
    let alerts = lab.address("ALERTS");
    let message = scan_message("relay-tls10", &alerts, &alice);
    let (ok, report) = relay_submit(
        &lab,
        &Device {
            listener: "printers-tls",
            mode: "starttls",
            source: "127.0.0.1",
        },
        (&alerts, &alice),
        &message,
        1,
    );
    assert!(ok, "{report}");
    assert!(report.contains("tls_version=TLSv1 "), "{report}");
    sent.push(message);

    // curl without TLS and without a login.
    let message = scan_message("relay-curl", &scanner, &alice);
    let file = scratch.path().join("relay-curl.eml");
    std::fs::write(&file, &message).expect("write message");
    let out = run(Command::new("curl")
        .arg(format!("smtp://127.0.0.1:{}", lab.port("printers")))
        .args(["--mail-from", &scanner, "--mail-rcpt", &alice])
        .arg("--upload-file")
        .arg(&file)
        .args(["--max-time", "20", "--verbose"]));
    let trace = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{trace}");
    assert!(!trace.contains("> AUTH"), "{trace}");
    sent.push(message);

    // A device that can authenticate still may, on the same listener.
    let message = scan_message("relay-listener-auth", &alice, &alice);
    let file = scratch.path().join("relay-listener-auth.eml");
    std::fs::write(&file, &message).expect("write message");
    let (ok, report) = smtp_submit(
        &file,
        &[
            "--port",
            &lab.port("printers"),
            "--mode",
            "cleartext",
            "--user",
            "alice",
            "--password",
            ALICE_PASSWORD,
            "--from",
            &alice,
            "--to",
            &alice,
        ],
    );
    assert!(ok, "{report}");
    assert!(report.contains("login=235"), "{report}");
    sent.push(message);

    // Maildir names do not keep the order of arrival: match each sent message to one delivered.
    let mut unmatched = wait_for_delivery(&lab.lab.postfix, "alice", sent.len());
    for message in &sent {
        let sent_lf = String::from_utf8_lossy(message).replace("\r\n", "\n");
        let at = unmatched
            .iter()
            .position(|d| d.ends_with(sent_lf.as_bytes()))
            .unwrap_or_else(|| panic!("not delivered:\n{sent_lf}"));
        assert_delivered_exactly(&unmatched.remove(at), message);
    }
    let sessions = lab
        .lab
        .postfix
        .ended_sessions_with("sasl_username=alice", 4);
    for session in &sessions {
        let tls = tls_line(session);
        assert!(
            tls.contains(": TLSv1.2 with cipher") || tls.contains(": TLSv1.3 with cipher"),
            "{session:#?}"
        );
    }

    // Refused: an unlisted sender from the listed network, a listed sender from another.
    let connections = lab.postfix_connections();
    let ceo = lab.address("ceo");
    let message = scan_message("relay-refused", &ceo, &alice);
    let (ok, report) = relay_submit(&lab, &PRINTER, (&ceo, &alice), &message, 1);
    assert!(!ok, "{report}");
    assert!(report.contains("mail=550 5.7.1 "), "{report}");
    let (ok, report) = relay_submit(
        &lab,
        &Device {
            listener: "printers-tls",
            mode: "starttls",
            source: "127.0.0.3",
        },
        (&scanner, &alice),
        &message,
        1,
    );
    assert!(!ok, "{report}");
    assert!(report.contains("mail=550 5.7.1 "), "{report}");
    let file = scratch.path().join("relay-swaks.eml");
    std::fs::write(&file, &message[..message.len() - 2]).expect("write message");
    let out = run(Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port", &lab.port("printers")])
        .args(["--local-interface", "127.0.0.3", "--timeout", "20"])
        .args(["--from", &scanner, "--to", &alice])
        .arg("--data")
        .arg(format!("@{}", file.display())));
    let transcript = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{transcript}");
    assert!(transcript.contains("<** 550 5.7.1 "), "{transcript}");
    // The listener's TLS floor decides relayed sessions as it decides logins.
    let (ok, report) = relay_submit(
        &lab,
        &Device {
            listener: "printers-floor",
            mode: "starttls",
            source: "127.0.0.1",
        },
        (&scanner, &alice),
        &message,
        1,
    );
    assert!(!ok, "{report}");
    assert!(
        report.contains(&format!("mail=550 5.7.1 {RETIRED}")),
        "{report}"
    );
    // Postfix logs through postlogd a moment after the fact: give a connection time to show.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        lab.postfix_connections(),
        connections,
        "{}",
        lab.lab.postfix.log()
    );
    assert!(!lab.lab.postfix.log().contains(&ceo));

    // A recipient in another domain: Postfix relays for its authenticated users
    // (permit_sasl_authenticated), so the relay account may; the gateway does not judge it.
    let outsider = "someone@elsewhere.example";
    let message = scan_message("relay-outside", &scanner, outsider);
    let (ok, report) = relay_submit(&lab, &PRINTER, (&scanner, outsider), &message, 1);
    assert!(ok, "{report}");
    assert!(report.contains("rcpt=250 "), "{report}");
    let log = lab.lab.postfix.log_with(&format!("to=<{outsider}>"));
    assert!(log.contains(&format!("from=<{scanner}>")), "{log}");
    lab.lab
        .postfix
        .ended_sessions_with("sasl_username=alice", 5);

    let mut lab = lab;
    let records = by_start(lab.gateway.stop_and_read_sessions());
    let summary: Vec<Summary> = records
        .iter()
        .map(|r: &SessionRecord| {
            (
                r.listener.as_str(),
                r.outcome,
                r.login.as_deref(),
                r.envelope_sender.as_deref(),
                r.messages_submitted,
            )
        })
        .collect();
    let ok = Outcome::Ok;
    let refused = Outcome::RefusedByPolicy;
    assert_eq!(
        summary,
        [
            (
                "printers",
                ok,
                Some("alice"),
                Some(scanner.as_str()),
                Some(3)
            ),
            (
                "printers-tls",
                ok,
                Some("alice"),
                Some(alerts.as_str()),
                Some(1)
            ),
            (
                "printers",
                ok,
                Some("alice"),
                Some(scanner.as_str()),
                Some(1)
            ),
            ("printers", ok, Some("alice"), Some(alice.as_str()), Some(1)),
            ("printers", refused, None, None, None),
            ("printers-tls", refused, None, None, None),
            ("printers", refused, None, None, None),
            ("printers-floor", refused, Some("alice"), None, None),
            (
                "printers",
                ok,
                Some("alice"),
                Some(scanner.as_str()),
                Some(1)
            ),
        ],
        "{records:#?}"
    );
    for record in &records {
        if record.outcome == Outcome::Ok {
            assert!(
                upstream_is_modern(record.upstream_tls_version.map(TlsVersion::as_str)),
                "{record:#?}"
            );
        } else if record.listener != "printers-floor" {
            let detail = record.detail.as_deref().unwrap_or_default();
            assert!(detail.starts_with("relay refused: "), "{record:#?}");
        }
    }
    assert_eq!(records[1].tls_version, Some(TlsVersion::Tls10));
    assert!(records[4].detail.as_deref().unwrap().contains("ceo@"));
    assert!(records[5].detail.as_deref().unwrap().contains("127.0.0.3"));
    let floor = records[7].policy.as_ref().expect("the policy decided");
    assert_eq!(floor.verdict, "refuse", "{:#?}", records[7]);
    assert_no_secret_in_gateway_files(&lab.gateway, &[ALICE_PASSWORD.as_bytes()]);
}
