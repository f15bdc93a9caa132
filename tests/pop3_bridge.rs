//! POP3 end to end: real legacy clients (OpenSSL's `s_client` pinned to TLS 1.0/1.1, implicit
//! and `-starttls pop3`; curl pinned to TLS 1.0 over pop3s and STLS; Python's poplib with a TLS
//! 1.0 context) retrieve mail through the mailtls gateway from a real Dovecot that refuses
//! anything below TLS 1.2, as Exchange Online does after the cutoff.
//!
//! What it proves:
//! - every message retrieved through the gateway is the file Dovecot stores. POP3 dot-stuffs
//!   lines that start with `.` (RFC 1939 section 3) and ends the reply with `.CRLF`, so the
//!   comparison is made after undoing exactly that: for s_client the test undoes it on the raw
//!   bytes (and checks the wire really carried stuffed lines); curl undoes it itself; poplib
//!   undoes it and also splits the reply into lines without their CRLF, which the driver
//!   `tests/clients/pop3_fetch.py` joins back with CRLF plus a final CRLF (every lab message is
//!   CRLF-terminated, so that is lossless);
//! - Dovecot saw each login over TLS 1.2 or 1.3 while the session record shows the client at
//!   TLS 1.0/1.1 and what its ClientHello offered;
//! - a TLS 1.0 client on a POP3 listener left at the default `min_tls` fails its handshake and
//!   is recorded as `client_tls_failed` with `offered_max_tls` TLSv1.0;
//! - an upstream reached over Dovecot's plaintext port with `tls = "starttls"` (STLS) serves
//!   TLS 1.0 clients as the implicit-TLS one does, the upstream login at TLS 1.2/1.3.

use std::process::Stdio;

use e2e::clients::{
    curl_tls10_fetch, find, pop3_multiline_body, python_driver_fetch, s_client_command,
    Conversation, LEGACY_CIPHERS,
};
use e2e::evidence::{
    self, assert_same_messages, bridged_records, by_start, stored_inbox, upstream_logins,
};
use e2e::{
    post_cutoff_dovecot, run, start_gateway, start_gateway_upstream, Dovecot, ListenerSpec,
    Scratch, UpstreamTls,
};
use store::{Outcome, SessionRecord};
use wire::TlsVersion;

/// The `[gateway]` section of every gateway here. No test here measures the pre-auth limit:
/// it only bounds a client that stalls before login, below the harness's reply timeout.
const GATEWAY_SECTION: &str = "pre_auth_timeout_secs = 10";

fn assert_bridged(record: &SessionRecord, listener: &str, tls: &str, offered: &str, mail: usize) {
    evidence::assert_bridged(record, "pop3", listener, tls, offered, "alice", mail);
}

/// Reads one POP3 status line and asserts it is positive.
fn expect_ok(client: &mut Conversation, after: &str) -> Vec<u8> {
    let line = client.read_line();
    assert!(
        line.starts_with(b"+OK"),
        "{after}: not +OK\n{}",
        client.describe()
    );
    line
}

/// One POP3 session through `s_client`: USER/PASS, STAT, RETR every message, QUIT. Returns the
/// raw RETR replies (status line through the terminating `.CRLF`).
fn s_client_retrieve_all(port: u16, dovecot: &Dovecot, args: &[&str]) -> Vec<Vec<u8>> {
    let starttls = args.contains(&"-starttls");
    let mut client = Conversation::s_client(port, &dovecot.ca_file(), args);
    if !starttls {
        // With -starttls pop3, s_client reads the greeting and sends STLS itself.
        expect_ok(&mut client, "greeting");
    }
    client.send(b"USER alice\r\n");
    expect_ok(&mut client, "USER");
    client.send(b"PASS secret\r\n");
    expect_ok(&mut client, "PASS");
    client.send(b"STAT\r\n");
    let stat = String::from_utf8_lossy(&expect_ok(&mut client, "STAT")).into_owned();
    let count: usize = stat
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("STAT reply {stat:?}"));
    let mut replies = Vec::new();
    for n in 1..=count {
        client.send(format!("RETR {n}\r\n").as_bytes());
        let mut reply = expect_ok(&mut client, "RETR");
        reply.extend(client.read_until("the end of a RETR reply", |line| line == b".\r\n"));
        replies.push(reply);
    }
    client.send(b"QUIT\r\n");
    expect_ok(&mut client, "QUIT");
    let status = client.finish().expect("s_client exit status");
    assert!(status.success(), "s_client exited with {status}");
    replies
}

#[test]
fn openssl_s_client_at_tls10_and_tls11_retrieves_mail_from_a_tls12_only_dovecot() {
    let scratch = Scratch::new("pop3-s-client");
    let dovecot = post_cutoff_dovecot(&scratch);
    let ca = dovecot.ca_file();

    // The control: Dovecot itself refuses a TLS 1.0 POP3 client.
    let direct = run(s_client_command(
        dovecot.port("POP3S_PORT"),
        &ca,
        &["-tls1", "-cipher", LEGACY_CIPHERS],
    )
    .stdin(Stdio::null()));
    assert!(
        !direct.status.success() && find(&direct.stdout, b"+OK").is_none(),
        "Dovecot accepted TLS 1.0 directly: the stand-in is not post-cutoff\n{}",
        String::from_utf8_lossy(&direct.stderr)
    );

    let mut gateway = start_gateway(
        &scratch,
        &dovecot,
        vec![
            ListenerSpec::new("pop3s-legacy", "pop3", "implicit", Some("1.0")),
            ListenerSpec::new("pop3-stls-legacy", "pop3", "starttls", Some("1.0")),
            ListenerSpec::new("pop3s-default", "pop3", "implicit", None),
        ],
        GATEWAY_SECTION,
    );
    let stored = stored_inbox(&dovecot, "alice");
    let all_mail: usize = stored.iter().map(Vec::len).sum();

    // (listener, s_client arguments, record's tls, record's offered_max_tls)
    let cases: [(&str, Vec<&str>, &str, &str); 5] = [
        (
            "pop3s-legacy",
            vec!["-tls1", "-cipher", LEGACY_CIPHERS],
            "TLSv1.0",
            "TLSv1.0",
        ),
        (
            "pop3s-legacy",
            vec!["-tls1_1", "-cipher", LEGACY_CIPHERS],
            "TLSv1.1",
            "TLSv1.1",
        ),
        (
            "pop3-stls-legacy",
            vec!["-tls1", "-cipher", LEGACY_CIPHERS, "-starttls", "pop3"],
            "TLSv1.0",
            "TLSv1.0",
        ),
        (
            "pop3-stls-legacy",
            vec!["-tls1_1", "-cipher", LEGACY_CIPHERS, "-starttls", "pop3"],
            "TLSv1.1",
            "TLSv1.1",
        ),
        // RSA key exchange with AES-CBC and SHA-1, as an old device offers.
        (
            "pop3s-legacy",
            vec!["-tls1", "-cipher", "AES128-SHA:@SECLEVEL=0"],
            "TLSv1.0",
            "TLSv1.0",
        ),
    ];
    for (listener, args, _, _) in &cases {
        let replies = s_client_retrieve_all(gateway.port(listener), &dovecot, args);
        let who = format!("s_client {args:?} on {listener}");
        // Every lab message has lines "." and ". a line ..." and "..two dots": on the wire
        // they must arrive stuffed, or the un-stuffing below would prove nothing.
        for reply in &replies {
            assert!(
                find(reply, b"\r\n..\r\n").is_some() && find(reply, b"\r\n...two dots").is_some(),
                "{who}: a RETR reply without dot-stuffing: {:?}",
                String::from_utf8_lossy(reply)
            );
        }
        let fetched: Vec<(u32, Vec<u8>)> = replies
            .iter()
            .enumerate()
            .map(|(i, reply)| (i as u32 + 1, pop3_multiline_body(reply)))
            .collect();
        assert_same_messages(&who, &fetched, &stored);
    }

    // A TLS 1.0 client on the listener left at the default floor: handshake refused.
    let refused = run(s_client_command(
        gateway.port("pop3s-default"),
        &ca,
        &["-tls1", "-cipher", LEGACY_CIPHERS],
    )
    .stdin(Stdio::null()));
    assert!(
        !refused.status.success() && find(&refused.stdout, b"+OK").is_none(),
        "TLS 1.0 accepted on a default listener:\n{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let logins = upstream_logins(&dovecot, "alice", cases.len());
    assert!(
        logins.iter().all(|l| l.contains("pop3-login")),
        "{logins:#?}"
    );

    let records = by_start(gateway.stop_and_read_sessions());
    assert_eq!(records.len(), cases.len() + 1, "{records:#?}");
    for ((listener, args, tls, offered), record) in cases.iter().zip(&records) {
        assert_bridged(record, listener, tls, offered, all_mail);
        assert_eq!(record.sni.as_deref(), Some("localhost"), "{args:?}");
    }
    assert_eq!(records[4].tls_cipher.as_deref(), Some("AES128-SHA"));
    let refused = records.last().expect("the refused session");
    assert_eq!(refused.listener, "pop3s-default", "{refused:#?}");
    assert_eq!(refused.outcome, Outcome::ClientTlsFailed, "{refused:#?}");
    assert_eq!(
        refused.offered_max_tls.map(TlsVersion::as_str),
        Some("TLSv1.0"),
        "{refused:#?}"
    );
    assert_eq!(refused.tls_version, None, "{refused:#?}");
}

#[test]
fn curl_at_tls10_retrieves_every_message_over_pop3s_and_stls() {
    let scratch = Scratch::new("pop3-curl");
    let dovecot = post_cutoff_dovecot(&scratch);
    let mut gateway = start_gateway(
        &scratch,
        &dovecot,
        ListenerSpec::legacy_pair("pop3"),
        GATEWAY_SECTION,
    );
    let stored = stored_inbox(&dovecot, "alice");
    let ca = dovecot.ca_file();
    let out_dir = scratch.path().join("curl");
    std::fs::create_dir_all(&out_dir).expect("out dir");

    // curl retrieves one message per URL (RETR n): one session per message and scheme. It
    // undoes the dot-stuffing itself, so its output compares directly with the stored file.
    let mut expected_listeners = Vec::new();
    for (listener, scheme, stls) in [
        ("pop3s-legacy", "pop3s", None),
        ("pop3-stls-legacy", "pop3", Some("STLS")),
    ] {
        let port = gateway.port(listener);
        let mut fetched = Vec::new();
        for n in 1..=stored.len() {
            let out = out_dir.join(format!("{listener}-{n}.eml"));
            let url = format!("{scheme}://127.0.0.1:{port}/{n}");
            fetched.push((
                n as u32,
                curl_tls10_fetch(&ca, &url, &out, "alice:secret".as_ref(), stls, &[]).0,
            ));
            expected_listeners.push((listener, stored[n - 1].len()));
        }
        assert_same_messages(&format!("curl {scheme}"), &fetched, &stored);
    }

    let records = bridged_records(&mut gateway, &dovecot, "alice", expected_listeners.len());
    for ((listener, mail), record) in expected_listeners.iter().zip(&records) {
        assert_bridged(record, listener, "TLSv1.0", "TLSv1.0", *mail);
    }
}

#[test]
fn python_poplib_at_tls10_retrieves_every_message_over_pop3s_and_stls() {
    let scratch = Scratch::new("pop3-python");
    let dovecot = post_cutoff_dovecot(&scratch);
    let mut gateway = start_gateway(
        &scratch,
        &dovecot,
        ListenerSpec::legacy_pair("pop3"),
        GATEWAY_SECTION,
    );
    let stored = stored_inbox(&dovecot, "alice");
    let all_mail: usize = stored.iter().map(Vec::len).sum();

    // (listener, mode, TLS version, auth, the version as Python reports it, record's tls,
    // record's offered_max_tls). Python spells TLS 1.0 "TLSv1"; the record spells it "TLSv1.0".
    let cases = [
        (
            "pop3s-legacy",
            "implicit",
            "1.0",
            "user",
            "TLSv1",
            "TLSv1.0",
            "TLSv1.0",
        ),
        (
            "pop3-stls-legacy",
            "starttls",
            "1.0",
            "user",
            "TLSv1",
            "TLSv1.0",
            "TLSv1.0",
        ),
        (
            "pop3s-legacy",
            "implicit",
            "1.1",
            "plain",
            "TLSv1.1",
            "TLSv1.1",
            "TLSv1.1",
        ),
    ];
    for (i, (listener, mode, version, auth, python_tls, _, _)) in cases.iter().enumerate() {
        let args = [
            format!("--port={}", gateway.port(listener)),
            format!("--mode={mode}"),
            format!("--tls-version={version}"),
            format!("--auth={auth}"),
            format!("--cafile={}", dovecot.ca_file().display()),
            "--user=alice".to_string(),
            "--password=secret".to_string(),
        ];
        // The driver joins poplib's lines with CRLF and adds the final CRLF (see the top).
        let out_dir = scratch.path().join(format!("poplib-{i}"));
        let fetched =
            python_driver_fetch("pop3_fetch.py", &args, python_tls, out_dir, stored.len());
        assert_same_messages(&format!("poplib {mode} TLS {version}"), &fetched, &stored);
    }

    let records = bridged_records(&mut gateway, &dovecot, "alice", cases.len());
    for ((listener, _, _, _, _, tls, offered), record) in cases.iter().zip(&records) {
        assert_bridged(record, listener, tls, offered, all_mail);
    }
}

/// An upstream reached over Dovecot's plaintext POP3 port with `tls = "starttls"` (STLS,
/// verified with the lab CA): TLS 1.0 clients, implicit and STLS, retrieve every message. The
/// lab Dovecot refuses logins without TLS, and its log line for each login names TLS 1.2/1.3,
/// so the gateway did upgrade the upstream leg before sending the password.
#[test]
fn tls10_clients_retrieve_mail_through_a_starttls_upstream() {
    let scratch = Scratch::new("pop3-starttls-upstream");
    let dovecot = post_cutoff_dovecot(&scratch);
    let mut gateway = start_gateway_upstream(
        &scratch,
        &dovecot,
        ListenerSpec::legacy_pair("pop3"),
        GATEWAY_SECTION,
        UpstreamTls::StartTls,
    );
    let stored = stored_inbox(&dovecot, "alice");
    let all_mail: usize = stored.iter().map(Vec::len).sum();

    let cases: [(&str, Vec<&str>); 2] = [
        ("pop3s-legacy", vec!["-tls1", "-cipher", LEGACY_CIPHERS]),
        (
            "pop3-stls-legacy",
            vec!["-tls1", "-cipher", LEGACY_CIPHERS, "-starttls", "pop3"],
        ),
    ];
    for (listener, args) in &cases {
        let replies = s_client_retrieve_all(gateway.port(listener), &dovecot, args);
        let fetched: Vec<(u32, Vec<u8>)> = replies
            .iter()
            .enumerate()
            .map(|(i, reply)| (i as u32 + 1, pop3_multiline_body(reply)))
            .collect();
        assert_same_messages(
            &format!("s_client {args:?} on {listener} via STLS upstream"),
            &fetched,
            &stored,
        );
    }

    let logins = upstream_logins(&dovecot, "alice", cases.len());
    assert!(
        logins.iter().all(|l| l.contains("pop3-login")),
        "{logins:#?}"
    );
    let records = by_start(gateway.stop_and_read_sessions());
    assert_eq!(records.len(), cases.len(), "{records:#?}");
    for ((listener, _), record) in cases.iter().zip(&records) {
        assert_bridged(record, listener, "TLSv1.0", "TLSv1.0", all_mail);
    }
}
