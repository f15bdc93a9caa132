//! The SMTP submission bridge end to end: legacy clients pinned to TLS 1.0 (and a device with
//! no TLS at all) submit through the real `mailtls` binary to the lab's Postfix, which takes only
//! TLS 1.2 and newer and authenticates through the lab Dovecot. Evidence comes from Postfix's
//! Maildirs (byte-exact messages), Postfix's log (the gateway's TLS version, the SASL user) and
//! the gateway's session records.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::clients::{sasl_plain, smtp_submit, Conversation, LEGACY_CIPHERS};
use e2e::evidence::{assert_no_secret_in_gateway_files, by_start, upstream_is_modern};
use e2e::submission::{assert_delivered_exactly, scan_message, tls_line, wait_for_delivery};
use e2e::tls_socket::TlsSocket;
use e2e::{free_port, run, submission_lab, Gateway, ListenerSpec, Scratch, SubmissionLab};
use proto::smtp::SmtpExtensions;
use store::{Outcome, SessionRecord};
use wire::TlsVersion;

/// The lab's password for alice (lab/dovecot.sh).
const ALICE_PASSWORD: &str = "secret";

/// The lab Postfix and Dovecot, and the gateway in front of Postfix.
struct SmtpLab {
    lab: SubmissionLab,
    gateway: Gateway,
    /// The lab CA: it signed the gateway's listener certificate and Postfix's.
    ca: PathBuf,
}

impl SmtpLab {
    /// Starts Postfix (TLS 1.2 and newer only) and a gateway whose `listeners` are each bridged
    /// to the upstream named beside it: `postfix` (STARTTLS on 587-style `SMTP_PORT`),
    /// `postfix-smtps` (implicit TLS on `SMTPS_PORT`), `nowhere` (a port nobody listens on) or
    /// `unverified` (Postfix under a name its certificate does not carry).
    fn start(scratch: &Scratch, listeners: Vec<(ListenerSpec, &str)>) -> SmtpLab {
        SmtpLab::start_with(scratch, listeners, "")
    }

    /// [`SmtpLab::start`] with `extra` tables in the config (policies, exceptions).
    fn start_with(scratch: &Scratch, listeners: Vec<(ListenerSpec, &str)>, extra: &str) -> SmtpLab {
        let lab = submission_lab(scratch, "TLSv1.2");
        let ca = lab.dovecot.ca_file();
        let certs = ca.parent().expect("certs dir").to_path_buf();
        let postfix = &lab.postfix;
        let upstream = |name: &str, port: u16, tls: &str, extra: &str| {
            format!(
                "[[upstream]]\nname = \"{name}\"\naddress = \"localhost:{port}\"\nprotocol = \"smtp\"\ntls = \"{tls}\"\nca_file = \"{ca}\"\n{extra}\n",
                ca = ca.display()
            )
        };
        let smtp = postfix.port("SMTP_PORT");
        let upstreams = [
            upstream("postfix", smtp, "starttls", ""),
            upstream("postfix-smtps", postfix.port("SMTPS_PORT"), "implicit", ""),
            upstream("nowhere", free_port(), "starttls", ""),
            upstream(
                "unverified",
                smtp,
                "starttls",
                "server_name = \"wrong.mailtls.example\"",
            ),
        ]
        .concat();
        let listener_toml = |(l, upstream): &(ListenerSpec, &str)| l.toml(&certs, upstream);
        let config = format!(
            "[gateway]\n\n[store]\npath = \"sessions.db\"\n\n{upstreams}\n{extra}\n{}",
            listeners.iter().map(listener_toml).collect::<String>()
        );
        let dir = scratch.path().join("gateway");
        std::fs::create_dir_all(&dir).expect("gateway dir");
        let gateway = Gateway::start_with_config(
            &dir,
            &config,
            listeners.into_iter().map(|(l, _)| l).collect(),
        );
        SmtpLab { lab, gateway, ca }
    }

    fn port(&self, listener: &str) -> String {
        self.gateway.port(listener).to_string()
    }

    fn alice(&self) -> String {
        self.lab.postfix.address("alice")
    }

    /// Writes `message` to a file in `scratch` for a client that reads it from one.
    /// Python smtplib, STARTTLS pinned to TLS 1.0 on `listener`, AUTH PLAIN as alice, submits
    /// a scan from alice to alice with `subject`: whether it was queued, the script's report,
    /// and the message sent.
    fn alice_submits_over_starttls_tls10(
        &self,
        scratch: &Scratch,
        listener: &str,
        subject: &str,
    ) -> (bool, String, Vec<u8>) {
        let alice = self.alice();
        let message = scan_message(subject, &alice, &alice);
        let file = SmtpLab::message_file(scratch, &format!("{subject}.eml"), &message);
        let (ok, report) = smtp_submit(
            &file,
            &[
                "--port",
                &self.port(listener),
                "--mode",
                "starttls",
                "--tls-version",
                "1.0",
                "--cafile",
                &self.ca.display().to_string(),
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
        (ok, report, message)
    }

    fn message_file(scratch: &Scratch, name: &str, message: &[u8]) -> PathBuf {
        let path = scratch.path().join(name);
        std::fs::write(&path, message).expect("write message");
        path
    }
}

/// An SMTP listener open to TLS 1.0 clients, TLS as `tls` says.
fn legacy(name: &str, tls: &str) -> ListenerSpec {
    ListenerSpec::new(name, "smtp", tls, Some("1.0"))
}

/// One whole SMTP reply (every line of a multi-line one) read from `socket`.
fn reply(socket: &mut TlsSocket) -> String {
    let mut text = String::new();
    while !is_complete_reply(&text) {
        let read = socket.read_some();
        assert!(!read.is_empty(), "closed after {text:?}");
        text.push_str(&String::from_utf8_lossy(&read));
    }
    text
}

/// Whether `text` ends with the last line of a reply: `ddd ` and a line end.
fn is_complete_reply(text: &str) -> bool {
    text.ends_with('\n')
        && text
            .trim_end()
            .lines()
            .last()
            .is_some_and(|last| last.len() >= 4 && last.as_bytes()[3] == b' ')
}

/// Sends `line` and returns the reply to it.
fn command(socket: &mut TlsSocket, line: &str) -> String {
    socket.write_all(line.as_bytes()).expect("write");
    reply(socket)
}

/// The extensions an EHLO reply advertises, as the gateway reads them.
fn extensions_of(ehlo_reply: &str) -> SmtpExtensions {
    SmtpExtensions::from_ehlo_lines(ehlo_reply.lines().skip(1).map(|l| l.get(4..).unwrap_or("")))
}

/// A TLS connection to a listener (implicit TLS at once, or after STARTTLS), greeting and
/// EHLO read; returns the socket and the EHLO reply over TLS.
fn connect_tls(port: &str, ca: &Path, starttls: bool) -> (TlsSocket, String) {
    let tcp = TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
    let mut socket = TlsSocket::plain(tcp);
    if starttls {
        assert!(reply(&mut socket).starts_with("220 "));
        command(&mut socket, "EHLO device.lab\r\n");
        assert!(command(&mut socket, "STARTTLS\r\n").starts_with("220 "));
        socket = socket.connect_tls(ca);
    } else {
        socket = socket.connect_tls(ca);
        assert!(reply(&mut socket).starts_with("220 "));
    }
    let ehlo = command(&mut socket, "EHLO device.lab\r\n");
    (socket, ehlo)
}

/// `AUTH PLAIN` for a lab user.
fn auth_plain(user: &str, password: &str) -> String {
    format!("AUTH PLAIN {}\r\n", sasl_plain(user, password.as_bytes()))
}

/// The smtpd sessions of the gateway's logins as `user`, with the TLS each used.
fn assert_postfix_saw_modern_tls(lab: &SmtpLab, user: &str, count: usize) {
    let sessions = lab
        .lab
        .postfix
        .ended_sessions_with(&format!("sasl_username={user}"), count);
    for session in sessions {
        let tls = tls_line(&session);
        assert!(
            tls.contains(": TLSv1.2 with cipher") || tls.contains(": TLSv1.3 with cipher"),
            "{session:#?}"
        );
    }
}

/// The records of `listener`'s sessions, oldest first.
fn records_of<'r>(records: &'r [SessionRecord], listener: &str) -> Vec<&'r SessionRecord> {
    records.iter().filter(|r| r.listener == listener).collect()
}

/// Six legacy submissions, each of a message with dot-lines, 8-bit text and a line over 998
/// bytes: Python smtplib over STARTTLS (TLS 1.0, AUTH PLAIN) and over implicit TLS (TLS 1.0,
/// AUTH LOGIN, the tricky password, to Postfix's implicit-TLS port), curl (TLS 1.0,
/// AUTH=LOGIN), swaks (TLS 1.0, AUTH LOGIN), `openssl s_client -starttls smtp -tls1` driven by
/// hand, and a device without TLS on a `tls = "none"` listener. Every message arrives
/// byte-exact; Postfix saw only TLS 1.2+ from the gateway and the right SASL users; the records
/// name the client's TLS 1.0, the modern upstream TLS and the envelope sender; no password is
/// in the gateway's log or store.
#[test]
fn legacy_clients_submit_byte_exact_through_the_gateway() {
    let scratch = Scratch::new("smtp-bridge-clients");
    let lab = SmtpLab::start(
        &scratch,
        vec![
            (legacy("submission-legacy", "starttls"), "postfix"),
            (legacy("smtps-legacy", "implicit"), "postfix-smtps"),
            (
                ListenerSpec::new("printers-cleartext", "smtp", "none", None),
                "postfix",
            ),
        ],
    );
    let alice = lab.alice();
    let tricky = lab.lab.postfix.address("tricky");
    let ca = lab.ca.display().to_string();
    let starttls_port = lab.port("submission-legacy");
    let tricky_password_file = lab.lab.dovecot.var("TRICKY_PASSWORD_FILE").to_string();
    let tricky_password = std::fs::read(&tricky_password_file).expect("tricky's password");
    let mut sent = Vec::new();

    // Python smtplib, STARTTLS at TLS 1.0, AUTH PLAIN.
    let (ok, report, message) =
        lab.alice_submits_over_starttls_tls10(&scratch, "submission-legacy", "smtplib-starttls");
    assert!(ok, "{report}");
    assert!(report.contains("tls_version=TLSv1 "), "{report}");
    sent.push(message);

    // Python smtplib, implicit TLS 1.0, AUTH LOGIN with the tricky password.
    let message = scan_message("smtplib-smtps", &tricky, &alice);
    let file = SmtpLab::message_file(&scratch, "smtplib-smtps.eml", &message);
    let (ok, report) = smtp_submit(
        &file,
        &[
            "--port",
            &lab.port("smtps-legacy"),
            "--mode",
            "implicit",
            "--tls-version",
            "1.0",
            "--cafile",
            &ca,
            "--auth",
            "login",
            "--user",
            "tricky",
            "--password-file",
            &tricky_password_file,
            "--from",
            &tricky,
            "--to",
            &alice,
        ],
    );
    assert!(ok, "{report}");
    assert!(report.contains("tls_version=TLSv1 "), "{report}");
    sent.push(message);

    // curl, STARTTLS pinned to TLS 1.0, AUTH=LOGIN.
    let message = scan_message("curl", &alice, &alice);
    let file = SmtpLab::message_file(&scratch, "curl.eml", &message);
    let out = run(Command::new("curl")
        .arg(format!("smtp://127.0.0.1:{starttls_port}"))
        .args([
            "--ssl-reqd",
            "--tlsv1.0",
            "--tls-max",
            "1.0",
            "--ciphers",
            LEGACY_CIPHERS,
        ])
        .args(["--cacert", &ca])
        .args([
            "--login-options",
            "AUTH=LOGIN",
            "--user",
            &format!("alice:{ALICE_PASSWORD}"),
        ])
        .args(["--mail-from", &alice, "--mail-rcpt", &alice])
        .arg("--upload-file")
        .arg(&file)
        .args(["--max-time", "20", "--verbose"]));
    let trace = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{trace}");
    assert!(trace.contains("TLSv1.0"), "{trace}");
    assert!(trace.contains("< 235 2.7.0"), "{trace}");
    sent.push(message);

    // swaks, STARTTLS at TLS 1.0, AUTH LOGIN; it ends DATA with CRLF . CRLF itself.
    let message = scan_message("swaks", &alice, &alice);
    let file = SmtpLab::message_file(&scratch, "swaks.eml", &message[..message.len() - 2]);
    let data = format!("@{}", file.display());
    let out = run(Command::new("swaks")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &starttls_port,
            "--timeout",
            "20",
        ])
        .args([
            "--tls",
            "--tls-protocol",
            "tlsv1",
            "--tls-cipher",
            LEGACY_CIPHERS,
        ])
        .args(["--tls-verify", "--tls-ca-path", &ca])
        .args([
            "--auth",
            "LOGIN",
            "--auth-user",
            "alice",
            "--auth-password",
            ALICE_PASSWORD,
        ])
        .args(["--from", &alice, "--to", &alice, "--data", &data]));
    let transcript = String::from_utf8_lossy(&[out.stdout, out.stderr].concat()).into_owned();
    assert!(out.status.success(), "{transcript}");
    for expected in [
        "<-  250 STARTTLS",
        "<~  250-AUTH PLAIN LOGIN",
        "<~  334 VXNlcm5hbWU6",
    ] {
        assert!(
            transcript.contains(expected),
            "no {expected:?} in:\n{transcript}"
        );
    }
    sent.push(message);

    // openssl s_client -starttls smtp -tls1, the rest of the dialogue by hand.
    let message = scan_message("s-client", &alice, &alice);
    let mut s_client = Conversation::s_client(
        lab.gateway.port("submission-legacy"),
        &lab.ca,
        &["-starttls", "smtp", "-tls1", "-cipher", LEGACY_CIPHERS],
    );
    let final_line = |code: &'static str| move |line: &[u8]| line.starts_with(code.as_bytes());
    s_client.send(b"EHLO s-client.lab\r\n");
    s_client.read_until("the EHLO reply", final_line("250 "));
    s_client.send(auth_plain("alice", ALICE_PASSWORD).as_bytes());
    s_client.read_until("235", final_line("235 "));
    s_client.send(format!("MAIL FROM:<{alice}>\r\n").as_bytes());
    s_client.read_until("250 to MAIL", final_line("250 "));
    s_client.send(format!("RCPT TO:<{alice}>\r\n").as_bytes());
    s_client.read_until("250 to RCPT", final_line("250 "));
    s_client.send(b"DATA\r\n");
    s_client.read_until("354", final_line("354 "));
    // Dot-stuffing is the client's job (RFC 5321 section 4.5.2).
    let stuffed = String::from_utf8(message.clone())
        .unwrap()
        .split("\r\n")
        .map(|line| match line.starts_with('.') {
            true => format!(".{line}"),
            false => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\r\n");
    s_client.send(stuffed.as_bytes());
    s_client.send(b".\r\n");
    s_client.read_until("250 queued", final_line("250 "));
    s_client.send(b"QUIT\r\n");
    s_client.read_until("221", final_line("221 "));
    let transcript = String::from_utf8_lossy(&s_client.read_to_end()).into_owned();
    drop(s_client);
    assert!(!transcript.contains("5.5."), "{transcript}");
    sent.push(message);

    // A device without TLS on the cleartext listener.
    let message = scan_message("cleartext-device", &alice, &alice);
    let file = SmtpLab::message_file(&scratch, "cleartext.eml", &message);
    let (ok, report) = smtp_submit(
        &file,
        &[
            "--port",
            &lab.port("printers-cleartext"),
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
    assert!(
        report.contains("tls=none") && report.contains("ehlo_auth=PLAIN LOGIN"),
        "{report}"
    );
    sent.push(message);

    let delivered = wait_for_delivery(&lab.lab.postfix, "alice", sent.len());
    for message in &sent {
        let subject = String::from_utf8_lossy(message)
            .lines()
            .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
            .expect("a subject");
        let found = delivered
            .iter()
            .find(|m| String::from_utf8_lossy(m).contains(&format!("Subject: {subject}\n")))
            .unwrap_or_else(|| panic!("{subject} was not delivered"));
        assert_delivered_exactly(found, message);
    }
    assert_postfix_saw_modern_tls(&lab, "alice", 5);
    assert_postfix_saw_modern_tls(&lab, "tricky", 1);

    let mut lab = lab;
    let records = by_start(lab.gateway.stop_and_read_sessions());
    assert_eq!(records.len(), 6, "{records:#?}");
    for record in &records {
        assert_eq!(record.protocol, "smtp");
        assert_eq!(record.outcome, Outcome::Ok, "{record:#?}");
        assert!(
            upstream_is_modern(record.upstream_tls_version.map(TlsVersion::as_str)),
            "{record:#?}"
        );
        let expected_tls = (record.listener != "printers-cleartext").then_some(TlsVersion::Tls10);
        assert_eq!(record.tls_version, expected_tls, "{record:#?}");
    }
    // Each client submitted one message, counted from Postfix's reply to its end of DATA.
    let senders: Vec<(&str, &str, Option<u32>)> = records
        .iter()
        .map(|r| {
            (
                r.login.as_deref().unwrap_or("-"),
                r.envelope_sender.as_deref().unwrap_or("-"),
                r.messages_submitted,
            )
        })
        .collect();
    assert_eq!(
        senders,
        [
            ("alice", alice.as_str(), Some(1)),
            ("tricky", tricky.as_str(), Some(1)),
            ("alice", alice.as_str(), Some(1)),
            ("alice", alice.as_str(), Some(1)),
            ("alice", alice.as_str(), Some(1)),
            ("alice", alice.as_str(), Some(1)),
        ]
    );
    assert_no_secret_in_gateway_files(&lab.gateway, &[ALICE_PASSWORD.as_bytes(), &tricky_password]);
}

/// EHLO before STARTTLS offers STARTTLS and no AUTH; after it, AUTH in both forms and no
/// STARTTLS, with the upstream's extensions: none before the gateway has logged in upstream
/// once, then exactly those Postfix advertises after TLS. `STARTTLS\r\nRSET\r\n` in one write
/// leaves the RSET unanswered. A MAIL FROM declaring more than Postfix's SIZE gets Postfix's
/// own refusal.
#[test]
fn ehlo_starttls_injection_and_size_follow_the_upstream() {
    let scratch = Scratch::new("smtp-bridge-ehlo");
    let lab = SmtpLab::start(
        &scratch,
        vec![(legacy("submission-legacy", "starttls"), "postfix")],
    );
    let port = lab.port("submission-legacy");
    let alice = lab.alice();

    // What Postfix itself advertises after STARTTLS.
    let (mut direct, postfix_ehlo) = connect_tls(
        &lab.lab.postfix.port("SMTP_PORT").to_string(),
        &lab.ca,
        true,
    );
    let postfix_extensions = extensions_of(&postfix_ehlo);
    assert!(postfix_extensions.size.is_some(), "{postfix_ehlo}");

    // Before any upstream login: plain RFC 5321, as the gateway knows nothing better yet.
    let tcp = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    let mut socket = TlsSocket::plain(tcp);
    assert!(reply(&mut socket).starts_with("220 "));
    let before_tls = command(&mut socket, "EHLO device.lab\r\n");
    assert!(before_tls.contains("250 STARTTLS"), "{before_tls}");
    assert!(!before_tls.contains("AUTH"), "{before_tls}");
    assert_eq!(
        command(&mut socket, "STARTTLS\r\nRSET\r\n"),
        "220 2.0.0 Ready to start TLS\r\n"
    );
    let mut socket = socket.connect_tls(&lab.ca);
    // Were the injected RSET run, its 250 would come before the EHLO reply.
    let after_tls = command(&mut socket, "EHLO device.lab\r\n");
    assert!(after_tls.starts_with("250-"), "{after_tls}");
    assert!(
        after_tls.contains("250-AUTH PLAIN LOGIN\r\n"),
        "{after_tls}"
    );
    assert!(
        after_tls.contains("250 AUTH=PLAIN LOGIN\r\n"),
        "{after_tls}"
    );
    assert!(!after_tls.contains("STARTTLS"), "{after_tls}");
    assert_eq!(
        extensions_of(&after_tls),
        SmtpExtensions::default(),
        "{after_tls}"
    );
    assert!(command(&mut socket, &auth_plain("alice", ALICE_PASSWORD)).starts_with("235 2.7.0"));
    assert!(command(&mut socket, "QUIT\r\n").starts_with("221"));

    // That login taught the gateway Postfix's extensions; the next client sees them.
    let (mut socket, ehlo) = connect_tls(&port, &lab.ca, true);
    assert_eq!(extensions_of(&ehlo), postfix_extensions, "{ehlo}");
    assert!(command(&mut socket, &auth_plain("alice", ALICE_PASSWORD)).starts_with("235 2.7.0"));
    let too_big = format!(
        "MAIL FROM:<{alice}> SIZE={}\r\n",
        postfix_extensions.size.unwrap() + 1
    );
    let through_gateway = command(&mut socket, &too_big);
    assert!(
        through_gateway.starts_with("552 5.3.4"),
        "{through_gateway}"
    );
    command(&mut socket, "QUIT\r\n");
    assert!(command(&mut direct, &auth_plain("alice", ALICE_PASSWORD)).starts_with("235"));
    assert_eq!(command(&mut direct, &too_big), through_gateway);
    command(&mut direct, "QUIT\r\n");

    let mut lab = lab;
    let records = lab.gateway.stop_and_read_sessions();
    let records = records_of(&records, "submission-legacy");
    assert_eq!(records.len(), 2, "{records:#?}");
    // The refused MAIL FROM is still the first transaction's sender.
    assert!(records
        .iter()
        .any(|r| r.envelope_sender.as_deref() == Some(alice.as_str())));
}

/// Faults answered in SMTP's own terms and recorded: wrong passwords get `535 5.7.8` and a
/// retry (a right one then succeeds), the third wrong one `421 4.3.0` and the end; a refused
/// and an unverified upstream `421 4.3.0` naming the upstream; a line over the limit
/// `500 5.5.6`. No password, right or wrong, is in the gateway's files.
#[test]
fn faults_get_smtp_replies_and_records() {
    let scratch = Scratch::new("smtp-bridge-faults");
    let lab = SmtpLab::start(
        &scratch,
        vec![
            (legacy("good", "implicit"), "postfix"),
            (legacy("refused", "implicit"), "nowhere"),
            (legacy("unverified", "implicit"), "unverified"),
        ],
    );
    let wrong = ["wrong-one", "wrong-two", "wrong-three"];

    // Three wrong passwords: 535 twice, then 421 and the connection closes.
    let (mut socket, _) = connect_tls(&lab.port("good"), &lab.ca, false);
    for password in &wrong[..2] {
        let refused = command(&mut socket, &auth_plain("alice", password));
        assert!(refused.starts_with("535 5.7.8 "), "{refused}");
    }
    let last = command(&mut socket, &auth_plain("alice", wrong[2]));
    assert_eq!(last, "421 4.3.0 Too many failed logins\r\n");
    assert!(socket.read_some().is_empty(), "still open after 421");

    // A wrong password, then the right one on the same connection.
    let (mut socket, _) = connect_tls(&lab.port("good"), &lab.ca, false);
    assert!(command(&mut socket, &auth_plain("alice", wrong[0])).starts_with("535 5.7.8 "));
    assert!(command(&mut socket, &auth_plain("alice", ALICE_PASSWORD)).starts_with("235 2.7.0"));
    assert!(command(&mut socket, "QUIT\r\n").starts_with("221"));

    for (listener, says) in [
        (
            "refused",
            "421 4.3.0 Upstream server nowhere is unreachable\r\n",
        ),
        (
            "unverified",
            "421 4.3.0 Upstream server unverified presented a certificate that does not verify\r\n",
        ),
    ] {
        let (mut socket, _) = connect_tls(&lab.port(listener), &lab.ca, false);
        assert_eq!(
            command(&mut socket, &auth_plain("alice", ALICE_PASSWORD)),
            says
        );
        assert!(
            socket.read_some().is_empty(),
            "{listener}: still open after 421"
        );
    }

    // A command line over the limit.
    let (mut socket, _) = connect_tls(&lab.port("good"), &lab.ca, false);
    let long = format!("NOOP {}\r\n", "x".repeat(10_000));
    assert_eq!(command(&mut socket, &long), "500 5.5.6 Line too long\r\n");
    assert!(
        socket.read_some().is_empty(),
        "still open after a line too long"
    );

    let mut lab = lab;
    let records = by_start(lab.gateway.stop_and_read_sessions());
    let outcomes: Vec<(&str, Outcome)> = records
        .iter()
        .map(|r| (r.listener.as_str(), r.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("good", Outcome::AuthFailed),
            ("good", Outcome::Ok),
            ("refused", Outcome::UpstreamUnreachable),
            ("unverified", Outcome::UpstreamCertificateRejected),
            ("good", Outcome::ProtocolError),
        ],
        "{records:#?}"
    );
    assert_eq!(records[1].login.as_deref(), Some("alice"));
    let secrets: Vec<&[u8]> = wrong
        .iter()
        .map(|w| w.as_bytes())
        .chain([ALICE_PASSWORD.as_bytes()])
        .collect();
    assert_no_secret_in_gateway_files(&lab.gateway, &secrets);
}

/// A TLS floor policy on SMTP listeners, with Python smtplib pinned to TLS 1.0 against the lab
/// Postfix: warned, the client reads the message in the `235` text and its mail arrives
/// byte-exact; refused, it gets `530 5.7.0 <message>`, Postfix never sees its login, and the
/// record says refused by policy with the rule.
#[test]
fn a_policy_warns_in_the_235_text_and_refuses_with_530() {
    const WARNING: &str = "TLS 1.0 ends here on 2099-01-31: update the printer";
    const REFUSAL: &str = "TLS 1.0 and 1.1 are no longer accepted. Ask IT for an exception.";
    let scratch = Scratch::new("smtp-bridge-policy");
    let policies = format!(
        "[policy.warned]\nmode = \"warn\"\nstart = \"2026-01-01\"\nend = \"2099-01-31\"\nmessage = \"{WARNING}\"\n\n[policy.ended]\nmode = \"enforce\"\nstart = \"2025-01-01\"\nend = \"2025-06-30\"\nmessage = \"{REFUSAL}\"\n"
    );
    let lab = SmtpLab::start_with(
        &scratch,
        vec![
            (
                legacy("submission-warned", "starttls").with_policy("warned"),
                "postfix",
            ),
            (
                legacy("submission-ended", "starttls").with_policy("ended"),
                "postfix",
            ),
        ],
        &policies,
    );
    let submit = |listener: &str, subject: &str| {
        lab.alice_submits_over_starttls_tls10(&scratch, listener, subject)
    };

    let (ok, report, sent) = submit("submission-warned", "policy-warned");
    assert!(ok, "{report}");
    assert!(report.contains("tls_version=TLSv1 "), "{report}");
    assert!(
        report.contains(&format!(
            "login=235 2.7.0 Authentication successful; {WARNING}\n"
        )),
        "{report}"
    );
    let delivered = wait_for_delivery(&lab.lab.postfix, "alice", 1);
    assert_delivered_exactly(&delivered[0], &sent);

    let (ok, report, _) = submit("submission-ended", "policy-ended");
    assert!(!ok, "{report}");
    assert!(
        report.contains(&format!("login=530 5.7.0 {REFUSAL}\n")),
        "{report}"
    );
    // Only the warned client's login reached Postfix.
    assert_postfix_saw_modern_tls(&lab, "alice", 1);
    assert_eq!(lab.lab.postfix.delivered("alice").len(), 1);

    let mut gateway = lab.gateway;
    let records = gateway.stop_and_read_sessions();
    let decided = |listener: &str| {
        let [record] = records_of(&records, listener)[..] else {
            panic!("{listener}: {records:#?}")
        };
        let policy = record.policy.clone().expect("a decision");
        (record.outcome, policy.verdict, policy.rule)
    };
    assert_eq!(
        decided("submission-warned"),
        (Outcome::Ok, "warn".into(), "warned/window".into())
    );
    assert_eq!(
        decided("submission-ended"),
        (
            Outcome::RefusedByPolicy,
            "refuse".into(),
            "ended/ended".into()
        )
    );
}
