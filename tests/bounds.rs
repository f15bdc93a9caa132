//! Bounds on what a client controls (issue 10, item 4), against the real gateway and the lab
//! Dovecot: a user name with a Unicode format character or over 255 bytes, a NUL in a password,
//! an IMAP ID beyond RFC 2971's limits, an SNI over 255 bytes.
//!
//! Each case shows the attacker's view (the exact bytes it gets back), the bystander's view (a
//! normal client of the same gateway logs in within a second while the attacker's connection is
//! still open), that no field of any record is over its bound, and, from Dovecot's own log, that
//! a refused login never reached it: each test also makes one login Dovecot does see fail, so
//! the log check is shown able to find one.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use e2e::clients::REPLY_TIMEOUT;
use e2e::fault_lab::{record_of, standard_listeners, Lab};
use e2e::legacy_client::Client;
use store::{Outcome, SessionRecord};

/// How long a bystander's whole login may take while an attacker is being refused.
const BYSTANDER_LIMIT: Duration = Duration::from_secs(1);

/// The lines of Dovecot's auth process about failed logins (`auth_verbose = yes` in the lab:
/// `auth: Info: passwd-file(alice,...): Password mismatch`, or `unknown user`): one per
/// attempt that reached it and failed.
fn dovecot_auth_failures(lab: &Lab) -> Vec<String> {
    lab.dovecot()
        .log()
        .lines()
        .filter(|l| l.contains(" auth: ") && l.contains("passwd-file("))
        .map(str::to_owned)
        .collect()
}

/// A normal IMAP or POP3 login on `listener`, whole, within [`BYSTANDER_LIMIT`].
fn bystander_logs_in(lab: &Lab, listener: &str) {
    let started = Instant::now();
    match listener.starts_with("imap") {
        true => lab.imap_login_works(listener),
        false => lab.pop3_login_works(listener),
    }
    let took = started.elapsed();
    assert!(
        took < BYSTANDER_LIMIT,
        "{listener}: a normal login took {took:?}"
    );
}

/// Every client-controlled field of every record within its bound.
fn assert_bounded(records: &[SessionRecord]) {
    for r in records {
        assert!(r.sni.as_ref().is_none_or(|s| s.len() <= 255), "{r:?}");
        assert!(r.login.as_ref().is_none_or(|l| l.len() <= 255), "{r:?}");
        assert!(r.client_id.len() <= 30, "{r:?}");
        for (name, value) in &r.client_id {
            assert!(name.len() <= 30, "{r:?}");
            assert!(value.as_ref().is_none_or(|v| v.len() <= 1024), "{r:?}");
        }
    }
}

/// A wrong password through the gateway: Dovecot must log exactly one more failure, which
/// proves that [`dovecot_auth_failures`] sees an attempt that reaches it.
fn one_wrong_password(lab: &Lab) -> u16 {
    let before = dovecot_auth_failures(lab).len();
    let mut c = lab.connect("imap-plain");
    c.expect_greeting_imap();
    c.send(b"w1 LOGIN alice wrong\r\n");
    assert_eq!(
        c.line(),
        "w1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    );
    c.send(b"w2 LOGOUT\r\n");
    c.tagged("w2");
    let deadline = Instant::now() + Duration::from_secs(10);
    while dovecot_auth_failures(lab).len() == before {
        assert!(
            Instant::now() < deadline,
            "Dovecot logged no failure:\n{}",
            lab.dovecot().log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    c.port
}

/// The attacker's side: after the greeting, each command and the exact bytes it gets back.
/// Returns the connection, still open.
fn attack(lab: &Lab, listener: &str, exchanges: &[(&[u8], &str)]) -> Client {
    let mut c = lab.connect(listener);
    match listener.starts_with("imap") {
        true => c.expect_greeting_imap(),
        false => drop(c.expect_line_starting("+OK ")),
    }
    for (command, expected) in exchanges {
        c.send(command);
        let mut reply = String::new();
        while reply.len() < expected.len() {
            reply += &c.line();
        }
        assert_eq!(
            reply,
            *expected,
            "{listener}: {}",
            String::from_utf8_lossy(command)
        );
    }
    c
}

/// The attacker leaves politely once the bystander is done; returns its client port.
fn leave(mut attacker: Client, listener: &str) -> u16 {
    match listener.starts_with("imap") {
        true => attacker.send(b"z LOGOUT\r\n"),
        false => attacker.send(b"QUIT\r\n"),
    }
    attacker.rest_until_closed(REPLY_TIMEOUT);
    attacker.port
}

/// Refused logins leave a record without a login, ended by the client.
fn assert_refused_records(records: &[SessionRecord], ports: &[u16]) {
    for &port in ports {
        let r = record_of(records, port);
        assert_eq!(r.login, None, "{r:?}");
        assert_eq!(r.outcome, Outcome::ClientClosed, "{r:?}");
    }
}

/// Dovecot saw exactly the one wrong password, and none of `names`.
fn assert_dovecot_saw_none_of(lab: &Lab, names: &[&str]) {
    let failures = dovecot_auth_failures(lab);
    assert_eq!(failures.len(), 1, "{failures:#?}");
    let log = lab.dovecot().log();
    for name in names {
        assert!(!log.contains(name), "Dovecot saw {name:?}:\n{log}");
    }
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

#[test]
fn a_user_name_with_a_right_to_left_override_is_refused_in_every_protocol() {
    let mut lab = Lab::start("bounds-rlo", "", Vec::new(), standard_listeners());
    let wrong = one_wrong_password(&lab);
    let refused = "the user name contains control or invisible formatting characters";
    let imap_no = format!("a1 NO [CANNOT] Login refused: {refused}\r\n");
    let pop3_err = format!("-ERR [AUTH] login refused: {refused}\r\n");
    // "mallory" + U+202E + "gpj.exe" reads as "malloryexe.jpg"; U+200B is a zero-width space.
    let login = "a1 LOGIN \"mallory\u{202e}gpj.exe\" secret\r\n";
    let plain = format!(
        "AUTH PLAIN {}\r\n",
        b64("\0mallory\u{200b}\0secret".as_bytes())
    );
    let mut ports = Vec::new();
    for listener in ["imap-tls", "imap-plain"] {
        let attacker = attack(&lab, listener, &[(login.as_bytes(), &imap_no)]);
        bystander_logs_in(&lab, listener);
        ports.push(leave(attacker, listener));
    }
    for listener in ["pop3-tls", "pop3-plain"] {
        let user = "USER mallory\u{202e}gpj.exe\r\n";
        let attacker = attack(
            &lab,
            listener,
            &[
                (user.as_bytes(), "+OK send PASS\r\n"),
                (b"PASS secret\r\n", &pop3_err),
                (plain.as_bytes(), &pop3_err),
            ],
        );
        bystander_logs_in(&lab, listener);
        ports.push(leave(attacker, listener));
    }
    assert_dovecot_saw_none_of(&lab, &["mallory"]);
    let (records, _) = lab.finish();
    assert_refused_records(&records, &ports);
    assert_eq!(record_of(&records, wrong).outcome, Outcome::AuthFailed);
    assert_bounded(&records);
}
