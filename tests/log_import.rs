//! `mailtls import dovecot` and `mailtls import postfix` on the logs the lab's own Dovecot and
//! Postfix write while real clients use them: a TLS 1.0 client the server accepts and one it
//! refuses, TLS 1.3 clients, a plaintext login, a wrong password. Each client connects from
//! its own loopback address (127.0.0.x), so each is its own client in the inventory, whose
//! verdicts `mailtls clients --json` must then show with the log as their source. Also: a
//! gzip copy read from standard input, and re-imports that add nothing.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use e2e::legacy_client::{connect_tcp_from, legacy_connector, Client, Stream};
use e2e::{mailtls_bin, run_mailtls, Dovecot, DovecotOptions, Postfix, Scratch};
use openssl::ssl::{SslConnector, SslMethod};
use serde_json::Value;

fn mailtls(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let output = run_mailtls(args, stdin.unwrap_or_default());
    assert!(
        output.status.code().is_some_and(|c| c < 2),
        "mailtls {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs `mailtls import ... --json` and returns its summary.
fn import(args: &[&str], stdin: Option<&[u8]>) -> Value {
    let mut all = vec!["import"];
    all.extend(args);
    all.push("--json");
    let output = mailtls(&all, stdin);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "summary of {args:?} is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn clients(store: &str) -> Vec<Value> {
    let output = mailtls(&["clients", "--store", store, "--json"], None);
    serde_json::from_slice(&output.stdout).expect("an array of clients")
}

/// The one client at `address`.
fn client_at<'a>(clients: &'a [Value], address: &str) -> &'a Value {
    let found: Vec<&Value> = clients.iter().filter(|c| c["address"] == address).collect();
    assert_eq!(found.len(), 1, "one client at {address}: {clients:#?}");
    found[0]
}

/// `log()` once it has `count` lines containing `text`: the servers write their logs a
/// moment after the client saw the reply.
fn wait_for_lines(log: impl Fn() -> String, text: &str, count: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = log();
        let found = now.lines().filter(|l| l.contains(text)).count();
        if found >= count {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "{found} of {count} lines with {text:?} within 10 s:\n{now}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn source(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, n)
}

/// A TLS client at OpenSSL's defaults (TLS 1.3 here), verifying the lab CA.
fn modern_tls(from: Ipv4Addr, port: u16, ca: &Path) -> Client {
    let mut builder = SslConnector::builder(SslMethod::tls_client()).unwrap();
    builder.set_ca_file(ca).unwrap();
    let tls = builder
        .build()
        .connect("localhost", connect_tcp_from(from, port))
        .expect("TLS handshake");
    Client::over(Stream::Tls(Box::new(tls)))
}

/// Logs in over IMAP with `password` and logs out; whether the login was accepted.
fn imap_login(mut client: Client, password: &str) -> bool {
    client.expect_greeting_imap();
    client.send(format!("a LOGIN alice \"{password}\"\r\n").as_bytes());
    let ok = client.tagged("a").contains("a OK");
    client.send(b"b LOGOUT\r\n");
    client.tagged("b");
    ok
}

#[test]
fn dovecot_logs_of_real_clients_give_their_tls_versions_and_verdicts() {
    let scratch = Scratch::new("log-import-dovecot");
    // A server that still accepts TLS 1.0 and plaintext logins, and one past the cutoff.
    let legacy = Dovecot::start(
        &scratch.path().join("legacy"),
        &DovecotOptions {
            min_tls: "TLSv1".into(),
            plaintext_auth: true,
            ..DovecotOptions::default()
        },
    );
    let strict = Dovecot::start(&scratch.path().join("strict"), &DovecotOptions::default());
    let ca = legacy.ca_file();
    let imaps = legacy.port("IMAPS_PORT");

    assert!(imap_login(
        Client::tls_from(source(2), imaps, &ca),
        "secret"
    ));
    assert!(imap_login(modern_tls(source(3), imaps, &ca), "secret"));
    assert!(imap_login(
        Client::plain_from(source(4), legacy.port("IMAP_PORT")),
        "secret"
    ));
    assert!(!imap_login(modern_tls(source(5), imaps, &ca), "wrong"));
    let refused = legacy_connector(&strict.ca_file()).connect(
        "localhost",
        connect_tcp_from(source(6), strict.port("IMAPS_PORT")),
    );
    assert!(refused.is_err(), "the strict Dovecot refuses TLS 1.0");

    wait_for_lines(|| legacy.log(), "imap-login: Info: Login: ", 3);
    wait_for_lines(|| legacy.log(), "auth failed", 1);
    let strict_log = wait_for_lines(|| strict.log(), "unsupported protocol", 1);

    let store_path = scratch.path().join("inventory.db");
    let store = store_path.to_str().unwrap();
    let legacy_log = legacy.var("DOVECOT_LOG");
    let first = import(&["dovecot", "--store", store, legacy_log], None);
    assert_eq!(first["new_records"], 4, "{first:#}");
    assert_eq!(first["not_understood"], 0, "{first:#}");
    // The strict server's log, gzip-compressed, from standard input.
    let gzipped = gzip(strict_log.as_bytes());
    let second = import(&["dovecot", "--store", store, "-"], Some(&gzipped));
    assert_eq!(second["new_records"], 1, "{second:#}");
    assert_eq!(second["clients"]["breaks"], 1, "{second:#}");

    let listed = clients(store);
    assert_eq!(listed.len(), 5, "{listed:#?}");
    for client in &listed {
        assert_eq!(client["sources"], serde_json::json!(["dovecot_log"]));
        assert_eq!(client["listeners"], serde_json::json!(["dovecot-log"]));
    }
    let accepted_tls10 = client_at(&listed, "127.0.0.2");
    assert_eq!(accepted_tls10["verdict"], "breaks");
    assert_eq!(accepted_tls10["negotiated"], serde_json::json!(["TLSv1.0"]));
    assert_eq!(accepted_tls10["login"], "alice");
    let modern = client_at(&listed, "127.0.0.3");
    assert_eq!(modern["verdict"], "ok");
    assert_eq!(modern["negotiated"], serde_json::json!(["TLSv1.3"]));
    assert_eq!(client_at(&listed, "127.0.0.4")["verdict"], "no_tls");
    let wrong_password = client_at(&listed, "127.0.0.5");
    assert_eq!(wrong_password["verdict"], "ok");
    assert_eq!(wrong_password["login"], "alice");
    let refused = client_at(&listed, "127.0.0.6");
    assert_eq!(refused["verdict"], "breaks");
    assert_eq!(refused["login"], Value::Null);
    assert_eq!(refused["highest_offered"], "TLSv1.1");

    // The same lines again, from the file and as a gzip copy: nothing new, nothing doubled.
    let again = import(&["dovecot", "--store", store, legacy_log], None);
    assert_eq!(again["new_records"], 0, "{again:#}");
    assert_eq!(again["already_imported"], 4, "{again:#}");
    let legacy_gzip = gzip(legacy.log().as_bytes());
    let copy = import(&["dovecot", "--store", store, "-"], Some(&legacy_gzip));
    assert_eq!(copy["new_records"], 0, "{copy:#}");
    let after = clients(store);
    let sessions: Vec<&Value> = after.iter().map(|c| &c["sessions"]).collect();
    assert!(sessions.iter().all(|s| **s == 1), "{after:#?}");
}

/// Python's smtplib from `from`: STARTTLS pinned to `tls` ("1.0" or "default"), then AUTH
/// PLAIN and, when it succeeds, one message. Prints the outcome.
fn smtp_client(
    from: Ipv4Addr,
    port: u16,
    ca: &Path,
    tls: &str,
    user: &str,
    password: &str,
) -> String {
    let script = r#"
import smtplib, ssl, sys, warnings
warnings.simplefilter("ignore")
source, port, ca, tls, user, password = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
if tls == "1.0":
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
s = smtplib.SMTP("127.0.0.1", int(port), source_address=(source, 0), timeout=20)
try:
    if tls != "none":
        s.starttls(context=ctx)
    s.ehlo()
    s.login(user, password)
    to = "alice@lab.mailtls.example"
    s.sendmail(to, [to], "Subject: log import\r\n\r\nhello\r\n")
    print("sent")
except smtplib.SMTPAuthenticationError:
    print("auth refused")
except (ssl.SSLError, smtplib.SMTPException, ConnectionError) as e:
    print("tls refused" if isinstance(e, ssl.SSLError) else "refused: %s" % e)
try:
    s.quit()
except Exception:
    pass
"#;
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(from.to_string())
        .arg(port.to_string())
        .arg(ca)
        .arg(tls)
        .arg(user)
        .arg(password)
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn postfix_logs_of_real_clients_join_tls_and_login_per_connection() {
    let scratch = Scratch::new("log-import-postfix");
    // Submission that still takes TLS 1.0, authenticating through a lab Dovecot.
    let lab = e2e::submission_lab(&scratch, "TLSv1");
    let ca = lab.postfix.ca_file();
    // A server past the cutoff that offers AUTH before TLS: a TLS 1.0 client is refused and
    // a device that authenticates in the clear is seen doing so.
    let strict = Postfix::start(
        &scratch.path().join("strict"),
        &["--min-tls", "TLSv1.2", "--auth-before-tls", "yes"],
    );
    let submission = lab.postfix.port("SMTP_PORT");
    let past_cutoff = strict.port("SMTP_PORT");
    for (from, port, tls, user, password, expected) in [
        (2, submission, "1.0", "alice", "secret", "sent"),
        (3, submission, "default", "alice", "secret", "sent"),
        (4, submission, "default", "alice", "wrong", "auth refused"),
        (5, past_cutoff, "1.0", "alice", "secret", "tls refused"),
        (6, past_cutoff, "none", "bob", "secret", "auth refused"),
    ] {
        let outcome = smtp_client(source(from), port, &ca, tls, user, password);
        assert_eq!(outcome, expected, "127.0.0.{from}, TLS {tls}, {user}");
    }

    let submission_log = wait_for_lines(|| lab.postfix.log(), "disconnect from", 3);
    let strict_log = wait_for_lines(|| strict.log(), "disconnect from", 2);
    let store_path = scratch.path().join("inventory.db");
    let store = store_path.to_str().unwrap();
    let first = import(
        &["postfix", "--store", store, lab.postfix.var("POSTFIX_LOG")],
        None,
    );
    assert_eq!(first["new_records"], 3, "{first:#}\n{submission_log}");
    let second = import(
        &["postfix", "--store", store, strict.var("POSTFIX_LOG")],
        None,
    );
    assert_eq!(second["new_records"], 2, "{second:#}\n{strict_log}");

    let listed = clients(store);
    assert_eq!(listed.len(), 5, "{listed:#?}");
    for client in &listed {
        assert_eq!(client["sources"], serde_json::json!(["postfix_log"]));
    }
    let tls10 = client_at(&listed, "127.0.0.2");
    assert_eq!(tls10["verdict"], "breaks");
    assert_eq!(tls10["login"], "alice");
    assert_eq!(tls10["negotiated"], serde_json::json!(["TLSv1.0"]));
    let modern = client_at(&listed, "127.0.0.3");
    assert_eq!(modern["verdict"], "ok");
    assert_eq!(modern["login"], "alice");
    assert_eq!(client_at(&listed, "127.0.0.4")["verdict"], "ok");
    assert_eq!(client_at(&listed, "127.0.0.5")["verdict"], "breaks");
    let plaintext = client_at(&listed, "127.0.0.6");
    assert_eq!(plaintext["verdict"], "no_tls");
    assert_eq!(plaintext["login"], "bob");

    let again = import(
        &["postfix", "--store", store, lab.postfix.var("POSTFIX_LOG")],
        None,
    );
    assert_eq!(again["new_records"], 0, "{again:#}");
    assert_eq!(again["already_imported"], 3, "{again:#}");
}

/// `mailtls import dovecot --follow` reads lines as Dovecot writes them, until Ctrl-C (SIGINT)
/// ends it with its summary.
#[test]
fn a_followed_dovecot_log_is_read_as_it_grows_until_interrupted() {
    let scratch = Scratch::new("log-import-follow");
    let dovecot = Dovecot::start(&scratch.path().join("dovecot"), &DovecotOptions::default());
    let store_path = scratch.path().join("inventory.db");
    // Built (a test may be the first to need it) before the clock starts.
    let bin = mailtls_bin();
    let started = Instant::now();
    let follower = Command::new(bin)
        .args([
            "import", "dovecot", "--json", "--follow", "--for", "120s", "--store",
        ])
        .arg(&store_path)
        .arg(dovecot.var("DOVECOT_LOG"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailtls import --follow");
    // The store appears once the follower has read the log so far (and handles Ctrl-C).
    while !store_path.exists() {
        assert!(started.elapsed() < Duration::from_secs(30), "no store made");
        std::thread::sleep(Duration::from_millis(20));
    }
    let ca = dovecot.ca_file();
    assert!(imap_login(
        modern_tls(source(7), dovecot.port("IMAPS_PORT"), &ca),
        "secret"
    ));
    wait_for_lines(|| dovecot.log(), "Login: user=<alice>", 1);
    let interrupt = Command::new("kill")
        .args(["-INT", &follower.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(interrupt.success());
    let output = follower.wait_with_output().expect("the follower ends");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "ended by Ctrl-C, not --for"
    );
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["new_records"], 1, "{summary:#}");
    let listed = clients(store_path.to_str().unwrap());
    assert_eq!(client_at(&listed, "127.0.0.7")["verdict"], "ok");
}

/// A followed log rotated as logrotate does it (renamed, then created anew) while the daemon
/// still writes to the old file: the lines it wrote there after the last read and those of the
/// new file are all read, none lost.
#[test]
fn a_followed_log_loses_no_line_across_rotation() {
    let scratch = Scratch::new("log-import-rotate");
    let dovecot = Dovecot::start(&scratch.path().join("dovecot"), &DovecotOptions::default());
    let ca = dovecot.ca_file();
    // Three clients' logins in Dovecot's own words, cut into three parts of its log.
    for n in [7, 8, 9] {
        assert!(imap_login(
            modern_tls(source(n), dovecot.port("IMAPS_PORT"), &ca),
            "secret"
        ));
    }
    let log = wait_for_lines(|| dovecot.log(), "Login: user=<alice>", 3);
    let lines: Vec<&str> = log.lines().collect();
    let logins: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains("Login: user=<alice>"))
        .collect();
    let part = |from: usize, to: usize| lines[from..=to].join("\n") + "\n";
    let (first, second, third) = (
        part(0, logins[0]),
        part(logins[0] + 1, logins[1]),
        part(logins[1] + 1, logins[2]),
    );

    let followed = scratch.path().join("dovecot-followed.log");
    std::fs::write(&followed, first).expect("write the log");
    let store_path = scratch.path().join("inventory.db");
    let follower = Command::new(mailtls_bin())
        .args([
            "import", "dovecot", "--json", "--follow", "--for", "5s", "--store",
        ])
        .arg(&store_path)
        .arg(&followed)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailtls import --follow");
    // The follower has read the log so far once its first record is stored.
    let started = Instant::now();
    let stored = || {
        store::SqliteStore::open(&store_path)
            .and_then(|s| s.count())
            .unwrap_or(0)
    };
    while !store_path.exists() || stored() < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the first part was not read"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // In one go: the daemon writes on, the log is renamed, a new one is started.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&followed)
        .and_then(|mut f| f.write_all(second.as_bytes()))
        .expect("append to the log");
    std::fs::rename(&followed, followed.with_extension("log.1")).expect("rotate");
    std::fs::write(&followed, third).expect("the new log");

    let output = follower.wait_with_output().expect("the follower ends");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["new_records"], 3, "{summary:#}");
    let listed = clients(store_path.to_str().unwrap());
    for address in ["127.0.0.7", "127.0.0.8", "127.0.0.9"] {
        client_at(&listed, address);
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut stdin = child.stdin.take().unwrap();
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success());
    output.stdout
}
