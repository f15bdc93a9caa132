//! Real legacy SMTP clients against the gateway's client-facing SMTP machine
//! (`proto::smtp::ClientSession`), driven over real sockets by a loop that does what the
//! gateway's session does before login: write what the machine says, feed what the client
//! sends, run the TLS handshake on STARTTLS. Every login is refused (`login_rejected`), so the
//! dialogue ends before anything would go upstream; the test records the credentials the
//! machine extracted and checks them against what the client was given.
//!
//! Clients: swaks (STARTTLS, TLS 1.0, AUTH LOGIN), Python smtplib (implicit TLS 1.0, AUTH
//! PLAIN), curl (STARTTLS, TLS 1.0, AUTH=LOGIN), and a raw socket for the STARTTLS injection.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use e2e::clients::{smtp_submit, LEGACY_CIPHERS};
use e2e::tls_socket::TlsSocket;
use e2e::{repo_root, run, run_ok, Scratch};
use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod, SslVersion};
use proto::smtp::{ClientSession, SmtpExtensions};
use proto::{ClientDialogue, ClientStep, ClientTls, DialogueOptions, Limits};

/// The gateway's refusal text, as the tests expect to find it at the client.
const REFUSAL: &str = "5.7.8 Authentication credentials invalid";

/// What the machine saw in one connection: the credentials of each login, and whether a
/// command pipelined in the clear behind STARTTLS was answered.
#[derive(Debug, Default, PartialEq, Eq)]
struct Seen {
    logins: Vec<(String, Vec<u8>)>,
    replies: Vec<String>,
}

/// A listener serving the client machine with `tls`; each connection's `Seen` comes out of
/// the receiver when it closes.
fn serve(tls: ClientTls, certs: &Path) -> (u16, Receiver<Seen>) {
    // Legacy clients: TLS 1.0 and 1.1 at OpenSSL's security level 0, as the gateway allows.
    let mut acceptor = SslAcceptor::mozilla_intermediate(SslMethod::tls_server()).unwrap();
    acceptor
        .set_min_proto_version(Some(SslVersion::TLS1))
        .unwrap();
    acceptor.set_cipher_list(LEGACY_CIPHERS).unwrap();
    acceptor
        .set_certificate_chain_file(certs.join("server.pem"))
        .unwrap();
    acceptor
        .set_private_key_file(certs.join("server.key"), SslFiletype::PEM)
        .unwrap();
    let acceptor = acceptor.build();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (seen_tx, seen_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let (acceptor, seen_tx) = (acceptor.clone(), seen_tx.clone());
            std::thread::spawn(move || dialogue(tcp, tls, &acceptor, &seen_tx));
        }
    });
    (port, seen_rx)
}

/// One connection, as the gateway's pre-auth stage runs it.
fn dialogue(tcp: TcpStream, tls: ClientTls, acceptor: &SslAcceptor, seen_tx: &Sender<Seen>) {
    let mut socket = TlsSocket::plain(tcp);
    if tls == ClientTls::Active {
        let Some(tls) = socket.accept_tls(acceptor) else {
            return;
        };
        socket = tls;
    }
    let options = DialogueOptions {
        tls,
        limits: Limits::default(),
        greeting: "gateway.lab ready".into(),
    };
    let extensions = SmtpExtensions::from_ehlo_lines(["SIZE 10240000", "8BITMIME", "PIPELINING"]);
    let mut session = ClientSession::new(options, extensions);
    let mut seen = Seen::default();
    loop {
        match session.next() {
            ClientStep::Write(bytes) => {
                seen.replies
                    .push(String::from_utf8_lossy(&bytes).into_owned());
                if socket.write_all(&bytes).is_err() {
                    break;
                }
            }
            ClientStep::NeedInput => {
                let read = socket.read_some();
                if read.is_empty() {
                    break;
                }
                session.feed(&read);
            }
            ClientStep::StartTls => match socket.accept_tls(acceptor) {
                Some(tls) => {
                    socket = tls;
                    session.tls_started();
                }
                None => break,
            },
            ClientStep::Login(credentials) => {
                let password = credentials.password().expose().to_vec();
                seen.logins.push((credentials.user().to_owned(), password));
                session.login_rejected(REFUSAL);
            }
            ClientStep::Close(_) => break,
            ClientStep::ClientId(_) => panic!("SMTP has no ID"),
            ClientStep::Relay { .. } => panic!("this dialogue is not relaying"),
        }
    }
    let _ = seen_tx.send(seen);
}

fn next_seen(seen: &Receiver<Seen>) -> Seen {
    seen.recv_timeout(Duration::from_secs(30))
        .expect("the connection ended")
}

fn lab_certs(scratch: &Scratch) -> std::path::PathBuf {
    let certs = scratch.path().join("certs");
    run_ok(
        Command::new("bash")
            .arg(repo_root().join("lab/certs.sh"))
            .arg(&certs),
    );
    certs
}

/// swaks pinned to TLS 1.0 on a STARTTLS listener, AUTH LOGIN with the tricky password: it
/// reads the EHLO before TLS (STARTTLS, no AUTH) and after (AUTH), answers Microsoft's prompts,
/// and the machine decodes exactly its user name and password.
#[test]
fn swaks_tls10_starttls_auth_login() {
    let scratch = Scratch::new("smtp-dialogue-swaks");
    let certs = lab_certs(&scratch);
    let (port, seen) = serve(ClientTls::StartTlsRequired, &certs);
    let password = "p a\"s\\s wörd";
    let out = run(Command::new("swaks")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &port.to_string(),
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
        .args([
            "--auth",
            "LOGIN",
            "--auth-user",
            "tricky",
            "--auth-password",
            password,
        ])
        .args(["--from", "tricky@example.com", "--to", "alice@example.com"]));
    let transcript = String::from_utf8_lossy(&[out.stdout, out.stderr].concat()).into_owned();
    assert!(!out.status.success(), "{transcript}");
    for expected in [
        "<-  250 STARTTLS",
        "<-  220 2.0.0 Ready to start TLS",
        "<~  250-SIZE 10240000",
        "<~  250-AUTH PLAIN LOGIN",
        "<~  250 AUTH=PLAIN LOGIN",
        "<~  334 VXNlcm5hbWU6",
        "<~  334 UGFzc3dvcmQ6",
        &format!("<~* 535 {REFUSAL}"),
    ] {
        assert!(
            transcript.contains(expected),
            "no {expected:?} in:\n{transcript}"
        );
    }
    let seen = next_seen(&seen);
    assert_eq!(
        seen.logins,
        [("tricky".to_string(), password.as_bytes().to_vec())]
    );
}

/// Python smtplib on an implicit-TLS listener, TLS 1.0, AUTH PLAIN with an initial response.
#[test]
fn smtplib_tls10_implicit_auth_plain() {
    let scratch = Scratch::new("smtp-dialogue-python");
    let certs = lab_certs(&scratch);
    let (port, seen) = serve(ClientTls::Active, &certs);
    let message = scratch.path().join("m.eml");
    std::fs::write(&message, b"Subject: x\r\n\r\ny\r\n").unwrap();
    let ca = certs.join("ca.pem").display().to_string();
    let (ok, report) = smtp_submit(
        &message,
        &[
            "--port",
            &port.to_string(),
            "--mode",
            "implicit",
            "--tls-version",
            "1.0",
            "--cafile",
            &ca,
            "--user",
            "alice@example.com",
            "--password",
            "s3cret pass",
            "--auth",
            "plain",
            "--from",
            "a@example.com",
            "--to",
            "b@example.com",
        ],
    );
    assert!(!ok, "{report}");
    assert!(report.contains("tls_version=TLSv1 "), "{report}");
    assert!(report.contains("ehlo_auth=PLAIN LOGIN"), "{report}");
    assert!(report.contains(&format!("535 {REFUSAL}")), "{report}");
    let seen = next_seen(&seen);
    assert_eq!(
        seen.logins,
        [("alice@example.com".to_string(), b"s3cret pass".to_vec())]
    );
}

/// curl pinned to TLS 1.0 with `--login-options AUTH=LOGIN` on a STARTTLS listener.
#[test]
fn curl_tls10_starttls_auth_login() {
    let scratch = Scratch::new("smtp-dialogue-curl");
    let certs = lab_certs(&scratch);
    let (port, seen) = serve(ClientTls::StartTlsRequired, &certs);
    let message = scratch.path().join("m.eml");
    std::fs::write(&message, b"Subject: x\r\n\r\ny\r\n").unwrap();
    let out = run(Command::new("curl")
        .arg(format!("smtp://127.0.0.1:{port}"))
        .args([
            "--ssl-reqd",
            "--tlsv1.0",
            "--tls-max",
            "1.0",
            "--ciphers",
            LEGACY_CIPHERS,
        ])
        .arg("--cacert")
        .arg(certs.join("ca.pem"))
        .args([
            "--login-options",
            "AUTH=LOGIN",
            "--user",
            "scanner:pass:word",
        ])
        .args([
            "--mail-from",
            "scanner@example.com",
            "--mail-rcpt",
            "a@example.com",
        ])
        .arg("--upload-file")
        .arg(&message)
        .args(["--max-time", "20", "--verbose"]));
    let trace = String::from_utf8_lossy(&out.stderr);
    // curl's exit code 67: "the user name, password, or similar was not accepted".
    assert_eq!(out.status.code(), Some(67), "{trace}");
    assert!(trace.contains("TLSv1.0"), "{trace}");
    assert!(trace.contains(&format!("< 535 {REFUSAL}")), "{trace}");
    let seen = next_seen(&seen);
    assert_eq!(
        seen.logins,
        [("scanner".to_string(), b"pass:word".to_vec())]
    );
}

/// `STARTTLS\r\nHELP\r\n` in one write: HELP came in the clear behind STARTTLS and must not be
/// answered after the handshake (CVE-2011-0411); the first reply over TLS is the NOOP's.
#[test]
fn a_command_pipelined_behind_starttls_has_no_effect() {
    let scratch = Scratch::new("smtp-dialogue-injection");
    let certs = lab_certs(&scratch);
    let (port, seen) = serve(ClientTls::StartTlsRequired, &certs);
    let mut socket = TlsSocket::plain(TcpStream::connect(("127.0.0.1", port)).unwrap());
    let read_reply =
        |socket: &mut TlsSocket| String::from_utf8_lossy(&socket.read_some()).into_owned();
    assert!(read_reply(&mut socket).starts_with("220 "));
    socket.write_all(b"EHLO x\r\n").unwrap();
    assert!(read_reply(&mut socket).contains("250 STARTTLS"));
    socket.write_all(b"STARTTLS\r\nHELP\r\n").unwrap();
    assert_eq!(read_reply(&mut socket), "220 2.0.0 Ready to start TLS\r\n");
    let mut socket = socket.connect_tls(&certs.join("ca.pem"));
    socket.write_all(b"NOOP\r\nQUIT\r\n").unwrap();
    let mut after = String::new();
    while !after.contains("221 ") {
        let read = socket.read_some();
        assert!(!read.is_empty(), "closed after {after:?}");
        after.push_str(&String::from_utf8_lossy(&read));
    }
    assert_eq!(after, "250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n");
    let seen = next_seen(&seen);
    assert!(
        !seen.replies.iter().any(|r| r.starts_with("214")),
        "{seen:?}"
    );
}
