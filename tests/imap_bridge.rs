//! IMAP end to end: real legacy clients (OpenSSL's `s_client` pinned to TLS 1.0/1.1, curl
//! pinned to TLS 1.0, Python's imaplib with a TLS 1.0 context) fetch mail through the mailtls
//! gateway from a real Dovecot that refuses anything below TLS 1.2, as Exchange Online does
//! after the cutoff.
//!
//! What it proves:
//! - every message fetched through the gateway is byte for byte the file Dovecot stores;
//! - Dovecot saw each login over TLS 1.2 or 1.3 (its own log line says so), while the session
//!   record shows the client at TLS 1.0/1.1 and the version its ClientHello offered;
//! - Dovecot itself refuses the same TLS 1.0 client, so the gateway is what makes it work;
//! - the RSA-key-exchange CBC suite old printers offer (AES128-SHA) is negotiated;
//! - the IMAP ID fields a client sends before login end up in its record;
//! - a TLS 1.0/1.1 client on a listener left at the default `min_tls` fails its handshake and
//!   is recorded as `client_tls_failed` with what it offered (how legacy devices are found),
//!   while a TLS 1.2 client on the same listener is served;
//! - a listener open to TLS 1.0 still gives modern clients TLS 1.3 (or the 1.2 they ask for);
//! - an upstream reached over Dovecot's plaintext port with `tls = "starttls"` serves TLS 1.0
//!   clients as the implicit-TLS one does, the upstream login at TLS 1.2/1.3.

use std::process::Stdio;

use e2e::clients::{
    curl_tls10_fetch, last_line, python_driver_fetch, s_client_command, s_client_fetch_all,
    Conversation, LEGACY_CIPHERS,
};
use e2e::evidence::{
    self, assert_same_messages, bridged_records, by_start, stored_inbox, upstream_logins,
};
use e2e::{
    post_cutoff_dovecot, run, start_gateway, start_gateway_upstream, ListenerSpec, Scratch,
    UpstreamTls,
};
use store::{Outcome, SessionRecord};
use wire::TlsVersion;

/// The `[gateway]` section of every gateway here. No test here measures the pre-auth limit:
/// it only bounds a client that stalls before login, below the harness's reply timeout.
const GATEWAY_SECTION: &str = "pre_auth_timeout_secs = 10";

/// The bridged-session checks of the harness, for the IMAP listeners and alice.
fn assert_bridged(record: &SessionRecord, listener: &str, tls: &str, offered: &str, mail: usize) {
    evidence::assert_bridged(record, "imap", listener, tls, offered, "alice", mail);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    e2e::clients::find(haystack, needle).is_some()
}

#[test]
fn openssl_s_client_at_tls10_and_tls11_fetches_mail_from_a_tls12_only_dovecot() {
    let scratch = Scratch::new("imap-s-client");
    let dovecot = post_cutoff_dovecot(&scratch);
    let ca = dovecot.ca_file();

    // The control: Dovecot itself refuses a TLS 1.0 client, like Exchange after the cutoff.
    let direct = run(s_client_command(
        dovecot.port("IMAPS_PORT"),
        &ca,
        &["-tls1", "-cipher", LEGACY_CIPHERS],
    )
    .stdin(Stdio::null()));
    assert!(
        !direct.status.success() && !contains(&direct.stdout, b"* OK"),
        "Dovecot accepted TLS 1.0 directly: the stand-in is not post-cutoff\n{}",
        String::from_utf8_lossy(&direct.stderr)
    );

    let mut gateway = start_gateway(
        &scratch,
        &dovecot,
        ListenerSpec::legacy_pair("imap"),
        GATEWAY_SECTION,
    );
    let stored = stored_inbox(&dovecot, "alice");
    let all_mail: usize = stored.iter().map(Vec::len).sum();

    // (listener, s_client arguments, record's tls, record's offered_max_tls). The first
    // session also sends ID before logging in, as some devices do.
    let cases: [(&str, Vec<&str>, &str, &str); 5] = [
        (
            "imaps-legacy",
            vec!["-tls1", "-cipher", LEGACY_CIPHERS],
            "TLSv1.0",
            "TLSv1.0",
        ),
        (
            "imaps-legacy",
            vec!["-tls1_1", "-cipher", LEGACY_CIPHERS],
            "TLSv1.1",
            "TLSv1.1",
        ),
        (
            "imap-starttls-legacy",
            vec!["-tls1", "-cipher", LEGACY_CIPHERS, "-starttls", "imap"],
            "TLSv1.0",
            "TLSv1.0",
        ),
        (
            "imap-starttls-legacy",
            vec!["-tls1_1", "-cipher", LEGACY_CIPHERS, "-starttls", "imap"],
            "TLSv1.1",
            "TLSv1.1",
        ),
        // RSA key exchange with AES-CBC and SHA-1: what an old printer offers and nothing else.
        (
            "imaps-legacy",
            vec!["-tls1", "-cipher", "AES128-SHA:@SECLEVEL=0"],
            "TLSv1.0",
            "TLSv1.0",
        ),
    ];
    for (i, (listener, args, _, _)) in cases.iter().enumerate() {
        let fetched = s_client_fetch_all(gateway.port(listener), &ca, args, i == 0);
        assert_same_messages(
            &format!("s_client {args:?} on {listener}"),
            &fetched,
            &stored,
        );
    }

    let logins = upstream_logins(&dovecot, "alice", cases.len());
    assert!(
        logins.iter().all(|l| l.contains("method=PLAIN")),
        "{logins:#?}"
    );

    let records = by_start(gateway.stop_and_read_sessions());
    assert_eq!(records.len(), cases.len(), "{records:#?}");
    for ((listener, args, tls, offered), record) in cases.iter().zip(&records) {
        assert_bridged(record, listener, tls, offered, all_mail);
        assert_eq!(record.sni.as_deref(), Some("localhost"), "{args:?}");
        assert!(
            record.ja4.is_some(),
            "{args:?}: no JA4 for a parsed ClientHello"
        );
    }
    assert_eq!(
        records[0].client_id,
        vec![
            ("name".to_string(), Some("printer".to_string())),
            ("version".to_string(), Some("1.0".to_string())),
        ],
        "the ID the client sent is not in its record"
    );
    assert!(records[1].client_id.is_empty(), "{:#?}", records[1]);
    assert_eq!(records[4].tls_cipher.as_deref(), Some("AES128-SHA"));
}

#[test]
fn curl_at_tls10_fetches_every_message_over_imaps_and_starttls() {
    let scratch = Scratch::new("imap-curl");
    let dovecot = post_cutoff_dovecot(&scratch);
    let mut gateway = start_gateway(
        &scratch,
        &dovecot,
        ListenerSpec::legacy_pair("imap"),
        GATEWAY_SECTION,
    );
    let stored = stored_inbox(&dovecot, "alice");
    let ca = dovecot.ca_file();
    let out_dir = scratch.path().join("curl");
    std::fs::create_dir_all(&out_dir).expect("out dir");

    // curl fetches one message per URL, so one session per message and scheme.
    let mut expected_listeners = Vec::new();
    for (listener, scheme, starttls) in [
        ("imaps-legacy", "imaps", None),
        ("imap-starttls-legacy", "imap", Some("STARTTLS")),
    ] {
        let port = gateway.port(listener);
        let mut fetched = Vec::new();
        for n in 1..=stored.len() {
            let out = out_dir.join(format!("{listener}-{n}.eml"));
            let url = format!("{scheme}://127.0.0.1:{port}/INBOX;MAILINDEX={n}");
            fetched.push((
                n as u32,
                curl_tls10_fetch(&ca, &url, &out, "alice:secret".as_ref(), starttls, &[]).0,
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
fn python_imaplib_at_tls10_fetches_every_message_over_imaps_and_starttls() {
    let scratch = Scratch::new("imap-python");
    let dovecot = post_cutoff_dovecot(&scratch);
    let mut gateway = start_gateway(
        &scratch,
        &dovecot,
        ListenerSpec::legacy_pair("imap"),
        GATEWAY_SECTION,
    );
    let stored = stored_inbox(&dovecot, "alice");
    let all_mail: usize = stored.iter().map(Vec::len).sum();

    // (listener, mode, TLS version, the version as Python reports it, record's tls, record's
    // offered_max_tls). Python spells TLS 1.0 "TLSv1"; the record spells it "TLSv1.0".
    let cases = [
        (
            "imaps-legacy",
            "implicit",
            "1.0",
            "TLSv1",
            "TLSv1.0",
            "TLSv1.0",
        ),
        (
            "imap-starttls-legacy",
            "starttls",
            "1.0",
            "TLSv1",
            "TLSv1.0",
            "TLSv1.0",
        ),
        (
            "imaps-legacy",
            "implicit",
            "1.1",
            "TLSv1.1",
            "TLSv1.1",
            "TLSv1.1",
        ),
    ];
    for (i, (listener, mode, version, python_tls, _, _)) in cases.iter().enumerate() {
        let args = [
            format!("--port={}", gateway.port(listener)),
            format!("--mode={mode}"),
            format!("--tls-version={version}"),
            format!("--cafile={}", dovecot.ca_file().display()),
            "--user=alice".to_string(),
            "--password=secret".to_string(),
        ];
        let out_dir = scratch.path().join(format!("imaplib-{i}"));
        let fetched =
            python_driver_fetch("imap_fetch.py", &args, python_tls, out_dir, stored.len());
        assert_same_messages(&format!("imaplib {mode} TLS {version}"), &fetched, &stored);
    }

    let records = bridged_records(&mut gateway, &dovecot, "alice", cases.len());
    for ((listener, _, _, _, tls, offered), record) in cases.iter().zip(&records) {
        assert_bridged(record, listener, tls, offered, all_mail);
    }
}

#[test]
fn tls10_and_tls11_clients_fail_the_handshake_on_a_default_listener() {
    let scratch = Scratch::new("imap-default-floor");
    let dovecot = post_cutoff_dovecot(&scratch);
    let mut gateway = start_gateway(
        &scratch,
        &dovecot,
        vec![
            ListenerSpec::new("imaps-default", "imap", "implicit", None),
            ListenerSpec::new("imap-starttls-default", "imap", "starttls", None),
        ],
        GATEWAY_SECTION,
    );
    let ca = dovecot.ca_file();
    let implicit = gateway.port("imaps-default");
    let starttls = gateway.port("imap-starttls-default");

    // (listener, port, s_client arguments, offered_max_tls the record must show)
    let refused: [(&str, u16, Vec<&str>, &str); 3] = [
        (
            "imaps-default",
            implicit,
            vec!["-tls1", "-cipher", LEGACY_CIPHERS],
            "TLSv1.0",
        ),
        (
            "imaps-default",
            implicit,
            vec!["-tls1_1", "-cipher", LEGACY_CIPHERS],
            "TLSv1.1",
        ),
        (
            "imap-starttls-default",
            starttls,
            vec!["-tls1", "-cipher", LEGACY_CIPHERS, "-starttls", "imap"],
            "TLSv1.0",
        ),
    ];
    for (listener, port, args, _) in &refused {
        let output = run(s_client_command(*port, &ca, args).stdin(Stdio::null()));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "{args:?} on {listener} succeeded:\n{stderr}"
        );
        // OpenSSL's client names the cause: the server answered with a protocol_version alert.
        assert!(
            stderr.contains("alert protocol version") || stderr.contains("unsupported protocol"),
            "{args:?} on {listener} failed for another reason:\n{stderr}"
        );
    }

    // The same listener serves a TLS 1.2 client: the refusal is about the version, not a
    // broken listener.
    let mut modern = Conversation::s_client(implicit, &ca, &["-tls1_2"]);
    assert!(
        modern.read_line().starts_with(b"* OK"),
        "{}",
        modern.describe()
    );
    modern.send(b"a LOGIN alice secret\r\n");
    assert!(
        last_line(&modern.read_tagged("a")).starts_with("a OK"),
        "{}",
        modern.describe()
    );
    modern.send(b"b LOGOUT\r\n");
    modern.read_tagged("b");
    assert!(modern.finish().expect("exit status").success());

    // Only the TLS 1.2 client reached Dovecot.
    upstream_logins(&dovecot, "alice", 1);
    let records = by_start(gateway.stop_and_read_sessions());
    assert_eq!(records.len(), refused.len() + 1, "{records:#?}");
    for ((listener, _, args, offered), record) in refused.iter().zip(&records) {
        let context = format!("{args:?}: {record:#?}");
        assert_eq!(record.listener, *listener, "{context}");
        assert_eq!(record.outcome, Outcome::ClientTlsFailed, "{context}");
        assert_eq!(
            record.offered_max_tls.map(TlsVersion::as_str),
            Some(*offered),
            "{context}"
        );
        assert_eq!(record.tls_version, None, "{context}");
        assert_eq!(record.login, None, "{context}");
        assert!(
            record
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("unsupported protocol")),
            "{context}"
        );
    }
    let last = records.last().expect("the TLS 1.2 session");
    assert_eq!(last.outcome, Outcome::Ok, "{last:#?}");
    assert_eq!(
        last.tls_version.map(TlsVersion::as_str),
        Some("TLSv1.2"),
        "{last:#?}"
    );
    assert_eq!(last.login.as_deref(), Some("alice"), "{last:#?}");
}

/// A listener opened to TLS 1.0 (`min_tls = "1.0"`) still serves modern clients at their own
/// version, over implicit TLS and after STARTTLS. A regression test: the legacy profile used
/// to switch TLS 1.3 off for the whole listener, so every modern client on a legacy port was
/// quietly held at TLS 1.2. `-tls1_3` makes s_client accept nothing else, so the handshake
/// itself fails if 1.3 is off; a client with no version flags offers everything and must get
/// 1.3 too.
#[test]
fn a_legacy_listener_still_serves_tls13_and_tls12_clients() {
    let scratch = Scratch::new("imap-legacy-modern");
    let dovecot = post_cutoff_dovecot(&scratch);
    let mut gateway = start_gateway(
        &scratch,
        &dovecot,
        ListenerSpec::legacy_pair("imap"),
        GATEWAY_SECTION,
    );
    let ca = dovecot.ca_file();
    let stored = stored_inbox(&dovecot, "alice");
    let all_mail: usize = stored.iter().map(Vec::len).sum();

    // (listener, s_client arguments, record's tls and offered_max_tls)
    let cases: [(&str, Vec<&str>, &str); 4] = [
        ("imaps-legacy", vec!["-tls1_3"], "TLSv1.3"),
        ("imaps-legacy", vec!["-tls1_2"], "TLSv1.2"),
        ("imaps-legacy", vec![], "TLSv1.3"),
        (
            "imap-starttls-legacy",
            vec!["-tls1_3", "-starttls", "imap"],
            "TLSv1.3",
        ),
    ];
    for (listener, args, _) in &cases {
        let fetched = s_client_fetch_all(gateway.port(listener), &ca, args, false);
        assert_same_messages(
            &format!("s_client {args:?} on {listener}"),
            &fetched,
            &stored,
        );
    }

    let records = bridged_records(&mut gateway, &dovecot, "alice", cases.len());
    for ((listener, _, tls), record) in cases.iter().zip(&records) {
        assert_bridged(record, listener, tls, tls, all_mail);
    }
}

/// An upstream reached over Dovecot's plaintext IMAP port with `tls = "starttls"` (verified
/// with the lab CA): TLS 1.0 clients, implicit and STARTTLS, fetch every message byte for
/// byte. The lab Dovecot refuses logins without TLS, and its log line for each login names
/// TLS 1.2/1.3, so the gateway did upgrade the upstream leg before sending the password.
#[test]
fn tls10_clients_fetch_mail_through_a_starttls_upstream() {
    let scratch = Scratch::new("imap-starttls-upstream");
    let dovecot = post_cutoff_dovecot(&scratch);
    let mut gateway = start_gateway_upstream(
        &scratch,
        &dovecot,
        ListenerSpec::legacy_pair("imap"),
        GATEWAY_SECTION,
        UpstreamTls::StartTls,
    );
    let ca = dovecot.ca_file();
    let stored = stored_inbox(&dovecot, "alice");
    let all_mail: usize = stored.iter().map(Vec::len).sum();

    let cases: [(&str, Vec<&str>); 2] = [
        ("imaps-legacy", vec!["-tls1", "-cipher", LEGACY_CIPHERS]),
        (
            "imap-starttls-legacy",
            vec!["-tls1", "-cipher", LEGACY_CIPHERS, "-starttls", "imap"],
        ),
    ];
    for (listener, args) in &cases {
        let fetched = s_client_fetch_all(gateway.port(listener), &ca, args, false);
        assert_same_messages(
            &format!("s_client {args:?} on {listener} via STARTTLS upstream"),
            &fetched,
            &stored,
        );
    }

    let records = bridged_records(&mut gateway, &dovecot, "alice", cases.len());
    for ((listener, _), record) in cases.iter().zip(&records) {
        assert_bridged(record, listener, "TLSv1.0", "TLSv1.0", all_mail);
    }
}
