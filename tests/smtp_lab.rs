//! The lab's submission server, the upstream of the SMTP bridge: a private Postfix that takes
//! only TLS 1.2 and newer, authenticates through Dovecot's auth service and delivers into
//! Maildirs. Real swaks and Python smtplib submit to it directly here, proving the lab does what
//! the bridge's tests rely on: messages arrive byte-exact, Postfix's log names the SASL user and
//! the TLS version, and a TLS 1.0 device is turned away (which is why the bridge is needed).

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use e2e::clients::smtp_submit;
use e2e::submission::{
    assert_delivered_exactly, scan_message, session_of, tls_line, wait_for_delivery,
};
use e2e::tls_socket::TlsSocket;
use e2e::{run, submission_lab, Scratch};
use proto::smtp::{SmtpExtensions, UpstreamLogin};
use proto::{Credentials, Secret, UpstreamAuth, UpstreamDialogue, UpstreamStep};

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
    // Dovecot's log process writes a moment after the reply went out.
    let mismatch = "passwd-file(alice,127.0.0.1): Password mismatch";
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dovecot.log().contains(mismatch) {
        assert!(Instant::now() < deadline, "{}", dovecot.log());
        std::thread::sleep(Duration::from_millis(50));
    }
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

    let log = postfix.log_with("unsupported protocol");
    assert!(!log.contains("sasl_username"), "{log}");
    assert!(postfix.delivered("alice").is_empty());
}

/// Connects to Postfix's `port`, at once in TLS for an implicit-TLS port.
fn connect(port: u16, implicit_tls: bool, ca: &Path) -> TlsSocket {
    let plain = TlsSocket::plain(TcpStream::connect(("127.0.0.1", port)).expect("connect"));
    if implicit_tls {
        plain.connect_tls(ca)
    } else {
        plain
    }
}

/// Sends one command and returns the reply's last line.
fn command(upstream: &mut TlsSocket, line: &[u8]) -> String {
    upstream.write_all(line).expect("write to Postfix");
    let mut reply = Vec::new();
    loop {
        let read = upstream.read_some();
        assert!(!read.is_empty(), "Postfix closed the connection");
        reply.extend(read);
        let text = String::from_utf8_lossy(&reply).into_owned();
        if let Some(last) = text.lines().last() {
            if text.ends_with("\r\n") && last.as_bytes().get(3) == Some(&b' ') {
                return last.to_string();
            }
        }
    }
}

/// Runs `login` over `upstream` the way the gateway does, until it ends.
fn drive(login: &mut UpstreamLogin, upstream: TlsSocket, ca: &Path) -> (UpstreamStep, TlsSocket) {
    let mut upstream = upstream;
    loop {
        match login.next() {
            UpstreamStep::Write(bytes) => upstream.write_all(&bytes).expect("write to Postfix"),
            UpstreamStep::NeedInput => {
                let read = upstream.read_some();
                assert!(!read.is_empty(), "Postfix closed the connection");
                login.feed(&read);
            }
            UpstreamStep::StartTls => {
                upstream = upstream.connect_tls(ca);
                login.tls_started();
            }
            end => return (end, upstream),
        }
    }
}

fn password(user: &str, password: &[u8]) -> UpstreamAuth {
    let credentials = Credentials::new(user.into(), Secret::new(password));
    UpstreamAuth::Password(credentials.expect("acceptable credentials"))
}

/// The gateway's upstream SMTP machine against the real submission server: STARTTLS and EHLO
/// again on the submission port (Postfix counts `ehlo=2 starttls=1`), implicit TLS on the
/// other, AUTH PLAIN with the tricky password, the extensions Postfix advertises learned, a
/// wrong password told apart as a rejection; after the login the connection carries a mail
/// transaction that Postfix delivers.
#[test]
fn the_upstream_machine_logs_in_to_postfix() {
    let scratch = Scratch::new("smtp-lab-machine");
    let lab = submission_lab(&scratch, "TLSv1.2");
    let (postfix, dovecot) = (&lab.postfix, &lab.dovecot);
    let ca = postfix.ca_file();
    let tricky_password = std::fs::read(dovecot.var("TRICKY_PASSWORD_FILE")).unwrap();
    let postfix_extensions = SmtpExtensions {
        size: Some(10_240_000),
        eight_bit_mime: true,
        smtputf8: true,
        pipelining: true,
        chunking: true,
        dsn: true,
        enhanced_status_codes: true,
    };

    for (port, starttls) in [("SMTP_PORT", true), ("SMTPS_PORT", false)] {
        let upstream = connect(postfix.port(port), !starttls, &ca);
        let mut login = UpstreamLogin::new(password("tricky", &tricky_password), starttls)
            .with_ehlo_name("gateway.lab.mailtls.example");
        let (end, mut upstream) = drive(&mut login, upstream, &ca);
        let UpstreamStep::Authenticated { text, leftover } = end else {
            panic!("{port}: {end:?}\n{}", postfix.log());
        };
        assert_eq!(text, "2.7.0 Authentication successful");
        assert!(leftover.is_empty());
        assert_eq!(login.extensions(), Some(postfix_extensions), "{port}");

        let (from, to) = (postfix.address("tricky"), postfix.address("alice"));
        let mail_from = format!("MAIL FROM:<{from}>\r\n");
        assert!(command(&mut upstream, mail_from.as_bytes()).starts_with("250 "));
        let rcpt_to = format!("RCPT TO:<{to}>\r\n");
        assert!(command(&mut upstream, rcpt_to.as_bytes()).starts_with("250 "));
        assert!(command(&mut upstream, b"DATA\r\n").starts_with("354 "));
        let message = scan_message(&format!("machine-{port}"), &from, &to);
        let stuffed = String::from_utf8(message.clone())
            .unwrap()
            .replace("\r\n.", "\r\n..");
        let data = [stuffed.as_bytes(), b".\r\n"].concat();
        assert!(command(&mut upstream, &data).starts_with("250 2.0.0 Ok: queued"));
        assert!(command(&mut upstream, b"QUIT\r\n").starts_with("221 "));
    }
    let delivered = wait_for_delivery(postfix, "alice", 2);
    for port in ["SMTP_PORT", "SMTPS_PORT"] {
        let subject = format!("machine-{port}");
        let message = scan_message(
            &subject,
            &postfix.address("tricky"),
            &postfix.address("alice"),
        );
        let found = delivered
            .iter()
            .find(|m| String::from_utf8_lossy(m).contains(&format!("Subject: {subject}\n")))
            .unwrap_or_else(|| panic!("no {subject} delivered"));
        assert_delivered_exactly(found, &message);
    }
    let summaries: Vec<String> = postfix
        .ended_sessions_with("sasl_username=tricky", 2)
        .into_iter()
        .map(|s| s.last().cloned().unwrap_or_default())
        .collect();
    assert!(
        summaries[0].contains(" ehlo=2 starttls=1 auth=1 mail=1 rcpt=1 data=1 quit=1 "),
        "{summaries:?}"
    );
    assert!(
        summaries[1].contains(" ehlo=1 auth=1 mail=1 rcpt=1 data=1 quit=1 "),
        "{summaries:?}"
    );

    let upstream = connect(postfix.port("SMTP_PORT"), false, &ca);
    let mut login = UpstreamLogin::new(password("alice", b"wrong"), true);
    let (end, _) = drive(&mut login, upstream, &ca);
    assert!(
        matches!(&end, UpstreamStep::Rejected { text } if text.starts_with("5.7.8 ")),
        "{end:?}"
    );
}
