//! TLS floor policies in the running gateway, with real TLS 1.0 clients and the lab Dovecot:
//! a `warn` policy lets a legacy client in and tells it why (an IMAP `[ALERT]`, the POP3
//! `+OK` text); an `enforce` policy whose window has ended refuses it in its own protocol
//! (`NO [ALERT]`, `-ERR [SYS/PERM]`) before anything goes upstream; an exception lets exactly
//! the client it names through; a TLS 1.2 client meets the floor. Every decision is in the
//! session's record with its rule and exception.

use std::net::Ipv4Addr;

use e2e::legacy_client::Client;
use e2e::{start_gateway, Dovecot, DovecotOptions, ListenerSpec, Scratch};
use store::{Outcome, SessionRecord};

const WARNING: &str = "TLS 1.0 ends here on 2027-01-31: update the client";
const REFUSAL: &str = "TLS 1.0 and 1.1 are no longer accepted. Ask IT for an exception.";
/// The address the exception names; every other test client comes from 127.0.0.1.
const EXCEPTED: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 5);

fn policies() -> String {
    format!(
        r#"
[policy.warned]
mode = "warn"
start = "2026-01-01"
end = "2027-01-31"
message = "{WARNING}"

[policy.ended]
mode = "enforce"
start = "2025-01-01"
end = "2025-06-30"
message = "{REFUSAL}"

[[exception]]
client = "{EXCEPTED}/32"
owner = "facilities@lab.example"
reason = "the lab's old printer"
expires = "2099-01-01"
plan = "replace it"
"#
    )
}

/// alice's POP3 login over TLS 1.0 on `port`, whose PASS reply must start with `reply`.
fn pop3_login(port: u16, ca: &std::path::Path, reply: &str) {
    let mut pop3 = Client::tls(port, ca);
    pop3.expect_line_starting("+OK");
    pop3.send(b"USER alice\r\n");
    pop3.expect_line_starting("+OK");
    pop3.send(b"PASS secret\r\n");
    pop3.expect_line_starting(reply);
    pop3.send(b"QUIT\r\n");
}

#[test]
fn warned_refused_and_excepted_clients_each_hear_why_and_are_recorded() {
    let scratch = Scratch::new("policy-enforcement");
    let dovecot = Dovecot::start(&scratch.path().join("dovecot"), &DovecotOptions::default());
    let listeners = vec![
        ListenerSpec::new("imaps-warned", "imap", "implicit", Some("1.0")).with_policy("warned"),
        ListenerSpec::new("imaps-ended", "imap", "implicit", Some("1.0")).with_policy("ended"),
        ListenerSpec::new("pop3s-warned", "pop3", "implicit", Some("1.0")).with_policy("warned"),
        ListenerSpec::new("pop3s-ended", "pop3", "implicit", Some("1.0")).with_policy("ended"),
    ];
    let mut gateway = start_gateway(&scratch, &dovecot, listeners, &policies());
    let ca = dovecot.ca_file();
    let alice_logins = || dovecot.log().matches("Login: user=<alice>").count();

    // warn: an IMAP client sees the ALERT, then its login succeeds.
    let mut imap = Client::tls(gateway.port("imaps-warned"), &ca);
    imap.expect_greeting_imap();
    imap.send(b"a LOGIN alice secret\r\n");
    let reply = imap.tagged("a");
    assert!(
        reply.starts_with(&format!("* OK [ALERT] {WARNING}\r\na OK ")),
        "{reply:?}"
    );
    imap.send(b"b LOGOUT\r\n");
    imap.tagged("b");

    // warn: a POP3 client reads it in the +OK of PASS.
    pop3_login(
        gateway.port("pop3s-warned"),
        &ca,
        &format!("+OK {WARNING} ("),
    );
    let logins_before_refusals = {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while alice_logins() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        alice_logins()
    };
    assert_eq!(logins_before_refusals, 2, "{}", dovecot.log());

    // enforce, window ended: refused in each protocol's words, nothing sent upstream.
    let mut imap = Client::tls(gateway.port("imaps-ended"), &ca);
    imap.expect_greeting_imap();
    imap.send(b"a LOGIN alice secret\r\n");
    assert_eq!(imap.tagged("a"), format!("a NO [ALERT] {REFUSAL}\r\n"));
    imap.send(b"b LOGOUT\r\n");
    imap.tagged("b");
    pop3_login(
        gateway.port("pop3s-ended"),
        &ca,
        &format!("-ERR [SYS/PERM] {REFUSAL}"),
    );

    // The exception's address gets through the ended window.
    let mut excepted = Client::tls_from(EXCEPTED, gateway.port("imaps-ended"), &ca);
    excepted.expect_greeting_imap();
    excepted.send(b"a LOGIN alice secret\r\n");
    let reply = excepted.tagged("a");
    assert!(reply.starts_with("a OK "), "{reply:?}");
    excepted.send(b"b LOGOUT\r\n");
    excepted.tagged("b");

    let records = gateway.stop_and_read_sessions();
    // The refused logins never reached Dovecot: only the two warned and the excepted one did.
    assert_eq!(alice_logins(), 3, "{}", dovecot.log());
    let on = |listener: &str| -> Vec<&SessionRecord> {
        records.iter().filter(|r| r.listener == listener).collect()
    };
    for listener in ["imaps-warned", "pop3s-warned"] {
        let [record] = on(listener)[..] else {
            panic!("{listener}: {records:#?}")
        };
        assert_eq!(record.outcome, Outcome::Ok);
        let policy = record.policy.as_ref().expect("a decision");
        assert_eq!(
            (
                policy.verdict.as_str(),
                policy.rule.as_str(),
                policy.exception
            ),
            ("warn", "warned/window", None)
        );
    }
    let refused: Vec<_> = records
        .iter()
        .filter(|r| r.outcome == Outcome::RefusedByPolicy)
        .collect();
    assert_eq!(refused.len(), 2, "{records:#?}");
    for record in refused {
        let policy = record.policy.as_ref().expect("a decision");
        assert_eq!(
            (policy.verdict.as_str(), policy.rule.as_str()),
            ("refuse", "ended/ended")
        );
        assert!(
            record
                .detail
                .as_deref()
                .unwrap_or("")
                .contains("ended/ended"),
            "{record:#?}"
        );
    }
    let excepted: Vec<_> = records
        .iter()
        .filter(|r| r.client_addr == std::net::IpAddr::V4(EXCEPTED))
        .collect();
    let [record] = excepted[..] else {
        panic!("{records:#?}")
    };
    assert_eq!(record.outcome, Outcome::Ok);
    let policy = record.policy.as_ref().expect("a decision");
    assert_eq!(
        (
            policy.verdict.as_str(),
            policy.rule.as_str(),
            policy.exception
        ),
        ("allow", "exception:1", Some(1))
    );
}
