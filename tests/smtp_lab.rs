//! The lab's submission server, the upstream of the SMTP bridge: a private Postfix that takes
//! only TLS 1.2 and newer, authenticates through Dovecot's auth service and delivers into
//! Maildirs. Real swaks and Python smtplib submit to it directly here, proving the lab does what
//! the bridge's tests rely on: messages arrive byte-exact, Postfix's log names the SASL user and
//! the TLS version, and a TLS 1.0 device is turned away (which is why the bridge is needed).

use std::process::{Command, Output};

use e2e::clients::smtp_submit;
use e2e::{run, submission_lab, Postfix, Scratch};

/// A scan-to-email message with what submission must carry unchanged: lines that start with
/// dots (one alone, which would end DATA if not stuffed), 8-bit UTF-8 and a line longer than
/// RFC 5322's 998 bytes. It has its own Date and Message-ID, so Postfix adds no header inside
/// it, and CRLF line ends throughout.
fn scan_message(subject: &str, from: &str, to: &str) -> Vec<u8> {
    let long_line = "0123456789".repeat(150);
    let lines = [
        format!("From: {from}"),
        format!("To: {to}"),
        format!("Subject: {subject}"),
        "Date: Thu, 03 Dec 2026 04:00:00 +0000".into(),
        format!("Message-ID: <{subject}@printer.lab.mailtls.example>"),
        "MIME-Version: 1.0".into(),
        "Content-Type: text/plain; charset=utf-8".into(),
        "Content-Transfer-Encoding: 8bit".into(),
        String::new(),
        "Scanned document attached.".into(),
        ".".into(),
        "..two dots".into(),
        ".leading dot".into(),
        "8-bit: grüße, naïve, 日本語".into(),
        long_line,
        " .".into(),
        "end".into(),
    ];
    lines.map(|l| l + "\r\n").concat().into_bytes()
}

/// Checks that `delivered` is `sent` as Postfix stores it, and nothing else: Postfix's own
/// trace headers on top (Return-Path, X-Original-To, Delivered-To, Received), then every byte
/// of the message with dots unstuffed. Maildir files end lines with LF, so the one change
/// allowed is CRLF to LF.
fn assert_delivered_exactly(delivered: &[u8], sent: &[u8]) {
    let sent_lf: Vec<u8> = String::from_utf8(sent.to_vec())
        .unwrap()
        .replace("\r\n", "\n")
        .into_bytes();
    assert!(
        delivered.ends_with(&sent_lf),
        "the delivered message differs from what was sent:\n{}",
        String::from_utf8_lossy(delivered)
    );
    let trace = String::from_utf8_lossy(&delivered[..delivered.len() - sent_lf.len()]);
    for line in trace.lines() {
        let postfix_header = [
            "Return-Path: ",
            "X-Original-To: ",
            "Delivered-To: ",
            "Received: ",
        ]
        .iter()
        .any(|name| line.starts_with(name));
        assert!(
            postfix_header || line.starts_with('\t'),
            "unexpected line before the message: {line:?}"
        );
    }
}

/// The smtpd session in which `user` authenticated, from Postfix's log.
fn session_of(postfix: &Postfix, user: &str) -> Vec<String> {
    let wanted = format!("sasl_username={user}");
    let mut sessions: Vec<Vec<String>> = postfix
        .smtpd_sessions()
        .into_iter()
        .filter(|s| s.iter().any(|l| l.ends_with(&wanted)))
        .collect();
    assert_eq!(sessions.len(), 1, "log:\n{}", postfix.log());
    sessions.remove(0)
}

fn tls_line(session: &[String]) -> &str {
    session
        .iter()
        .find(|l| l.contains("TLS connection established"))
        .unwrap_or_else(|| panic!("no TLS in session {session:#?}"))
}

/// swaks submitting as alice (AUTH PLAIN) to alice on `port`, with `args` for TLS and data.
fn swaks(port: &str, alice: &str, args: &[&str]) -> Output {
    run(Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port", port, "--timeout", "20"])
        .args([
            "--auth",
            "PLAIN",
            "--auth-user",
            "alice",
            "--auth-password",
            "secret",
        ])
        .args(["--from", alice, "--to", alice])
        .args(args))
}

/// swaks (STARTTLS, TLS 1.2, AUTH PLAIN, certificate verified) and Python smtplib (implicit
/// TLS, TLS 1.3, AUTH LOGIN with the tricky password) each submit a message that arrives
/// byte-exact; Postfix logs each user with the TLS version the client used.
#[test]
fn tls12_and_tls13_submissions_arrive_byte_exact() {
    let scratch = Scratch::new("smtp-lab");
    let lab = submission_lab(&scratch, "TLSv1.2");
    let (postfix, dovecot) = (&lab.postfix, &lab.dovecot);
    let (alice, tricky) = (postfix.address("alice"), postfix.address("tricky"));
    let ca = postfix.ca_file().display().to_string();

    let by_swaks = scan_message("swaks-0001", &alice, &alice);
    // swaks ends DATA with CRLF . CRLF after the data, so the file holds no final CRLF.
    let data_file = scratch.path().join("swaks.eml");
    std::fs::write(&data_file, &by_swaks[..by_swaks.len() - 2]).unwrap();
    let smtp_port = postfix.port("SMTP_PORT").to_string();
    let data_arg = format!("@{}", data_file.display());
    let out = swaks(
        &smtp_port,
        &alice,
        &[
            "--tls",
            "--tls-protocol",
            "tlsv1_2",
            "--tls-verify",
            "--tls-ca-path",
            &ca,
            "--data",
            &data_arg,
        ],
    );
    let transcript = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "swaks failed:\n{transcript}");
    assert!(
        transcript.contains("<~  235 2.7.0 Authentication successful"),
        "{transcript}"
    );

    let by_python = scan_message("python-0002", &tricky, &alice);
    let message_file = scratch.path().join("python.eml");
    std::fs::write(&message_file, &by_python).unwrap();
    let smtps_port = postfix.port("SMTPS_PORT").to_string();
    let tricky_password = dovecot.var("TRICKY_PASSWORD_FILE");
    let (ok, report) = smtp_submit(
        &message_file,
        &[
            "--port",
            &smtps_port,
            "--mode",
            "implicit",
            "--tls-version",
            "1.3",
            "--cafile",
            &ca,
            "--auth",
            "login",
            "--user",
            "tricky",
            "--password-file",
            tricky_password,
            "--from",
            &tricky,
            "--to",
            &alice,
        ],
    );
    assert!(ok, "{report}");
    assert!(report.contains("tls_version=TLSv1.3 "), "{report}");
    assert!(
        report.contains("login=235") && report.contains("queued=yes"),
        "{report}"
    );

    let delivered = wait_for_delivery(postfix, "alice", 2);
    let find = |subject: &str| {
        delivered
            .iter()
            .find(|m| String::from_utf8_lossy(m).contains(&format!("Subject: {subject}\n")))
            .unwrap_or_else(|| panic!("no {subject} delivered"))
    };
    assert_delivered_exactly(find("swaks-0001"), &by_swaks);
    assert_delivered_exactly(find("python-0002"), &by_python);

    let alice_session = session_of(postfix, "alice");
    assert!(
        tls_line(&alice_session).contains(": TLSv1.2 with cipher"),
        "{alice_session:#?}"
    );
    assert!(alice_session
        .iter()
        .any(|l| l.contains("sasl_method=PLAIN, sasl_username=alice")));
    let tricky_session = session_of(postfix, "tricky");
    assert!(
        tls_line(&tricky_session).contains(": TLSv1.3 with cipher"),
        "{tricky_session:#?}"
    );
    assert!(tricky_session
        .iter()
        .any(|l| l.contains("sasl_method=LOGIN, sasl_username=tricky")));
    // The passwords are Dovecot's to judge: a wrong one is refused with Postfix's 535 and
    // Dovecot's auth service says why.
    let (ok, report) = smtp_submit(
        &message_file,
        &[
            "--port",
            &smtp_port,
            "--mode",
            "starttls",
            "--tls-version",
            "1.2",
            "--cafile",
            &ca,
            "--user",
            "alice",
            "--password",
            "wrong",
            "--from",
            &alice,
            "--to",
            &alice,
        ],
    );
    assert!(!ok && report.contains("login=535"), "{report}");
    assert!(
        dovecot
            .log()
            .contains("passwd-file(alice,127.0.0.1): Password mismatch"),
        "{}",
        dovecot.log()
    );
}

/// A TLS 1.0 device is refused by the server at the handshake (Postfix logs "unsupported
/// protocol"), not by its own TLS library: swaks offers TLS 1.0 at security level 0. Without
/// TLS, AUTH is not offered and MAIL is refused. Nothing is delivered.
#[test]
fn tls10_and_plaintext_clients_are_refused() {
    let scratch = Scratch::new("smtp-lab-refused");
    let lab = submission_lab(&scratch, "TLSv1.2");
    let postfix = &lab.postfix;
    let alice = postfix.address("alice");
    let smtp_port = postfix.port("SMTP_PORT").to_string();
    let out = swaks(
        &smtp_port,
        &alice,
        &[
            "--tls",
            "--tls-protocol",
            "tlsv1",
            "--tls-cipher",
            "DEFAULT:@SECLEVEL=0",
            "--data",
            "Subject: legacy\r\n\r\nhello\r\n",
        ],
    );
    // swaks reports the failed handshake on stderr.
    let transcript = [out.stdout, out.stderr].concat();
    let transcript = String::from_utf8_lossy(&transcript);
    assert!(
        !out.status.success(),
        "a TLS 1.0 swaks got through:\n{transcript}"
    );
    assert!(
        transcript.contains("alert protocol version"),
        "{transcript}"
    );
    assert!(!transcript.contains("AUTH PLAIN"), "{transcript}");

    let message_file = scratch.path().join("plain.eml");
    std::fs::write(&message_file, b"Subject: plain\r\n\r\nhello\r\n").unwrap();
    let (ok, report) = smtp_submit(
        &message_file,
        &[
            "--port",
            &smtp_port,
            "--mode",
            "plain",
            "--user",
            "alice",
            "--password",
            "secret",
            "--from",
            &alice,
            "--to",
            &alice,
        ],
    );
    assert!(!ok, "{report}");
    assert!(
        report.contains("ehlo_auth=-"),
        "AUTH offered in the clear: {report}"
    );
    assert!(
        report.contains("mail=530 5.7.0 Must issue a STARTTLS command first"),
        "{report}"
    );

    let log = postfix.log();
    assert!(log.contains("unsupported protocol"), "{log}");
    assert!(!log.contains("sasl_username"), "{log}");
    assert!(postfix.delivered("alice").is_empty());
}

/// Postfix hands a queued message to its delivery agent at once, but asynchronously.
fn wait_for_delivery(postfix: &Postfix, user: &str, count: usize) -> Vec<Vec<u8>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let delivered = postfix.delivered(user);
        if delivered.len() >= count {
            assert_eq!(delivered.len(), count, "more messages than were sent");
            return delivered;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {count} messages delivered to {user} within 10 s; log:\n{}",
            delivered.len(),
            postfix.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
