//! What a test reads back after a run to decide whether the gateway did its job: the upstream
//! logins in Dovecot's log, the messages Dovecot stores, and the gateway's files searched for
//! secrets.

use std::time::{Duration, Instant};

use store::{Outcome, SessionRecord};
use wire::TlsVersion;

use crate::secrets::leaked;
use crate::{Dovecot, Gateway};

/// Waits until Dovecot has logged `expected` logins of `user` (its log process writes them a
/// moment after the login), asserts there are exactly that many and that every one came over
/// TLS 1.2 or 1.3, and returns the lines.
///
/// The lab sets `login_log_format_elements` with `%k`, so a line reads `... Login:
/// user=<alice>, method=PLAIN, ..., TLS, TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 ...`.
pub fn upstream_logins(dovecot: &Dovecot, user: &str, expected: usize) -> Vec<String> {
    let marker = format!("Login: user=<{user}>");
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let log = dovecot.log();
        let lines: Vec<String> = log
            .lines()
            .filter(|l| l.contains(&marker))
            .map(str::to_string)
            .collect();
        if lines.len() >= expected || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        lines.len(),
        expected,
        "Dovecot logged {} logins of {user}, expected {expected}:\n{}",
        lines.len(),
        dovecot.log()
    );
    for line in &lines {
        assert!(
            line.contains("TLSv1.2 with cipher") || line.contains("TLSv1.3 with cipher"),
            "an upstream login not at TLS 1.2/1.3: {line}"
        );
    }
    lines
}

/// The messages in `user`'s INBOX as Dovecot stores them, checked to be the lab's full set so
/// that a comparison against them cannot pass vacuously.
pub fn stored_inbox(dovecot: &Dovecot, user: &str) -> Vec<Vec<u8>> {
    let stored = dovecot.stored_messages(user);
    let count: usize = dovecot.var("MESSAGE_COUNT").parse().expect("a count");
    assert!(count > 0, "the lab mailbox is empty");
    assert_eq!(
        stored.len(),
        count,
        "{user}'s maildir does not hold the lab's messages"
    );
    stored
}

/// The files the gateway wrote in its folder as they are now, by name with their bytes: its
/// log, the SQLite database with its WAL and shared-memory files. The config is skipped: it is
/// the operator's file, written by the test.
pub fn gateway_files(gateway: &Gateway) -> Vec<(String, Vec<u8>)> {
    let dir = gateway
        .db_path()
        .parent()
        .expect("the gateway dir")
        .to_path_buf();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("list the gateway dir") {
        let path = entry.expect("dir entry").path();
        if !path.is_file() || path.file_name().is_some_and(|n| n == "mailtls.toml") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("read a gateway file");
        let name = path.file_name().expect("a name").to_string_lossy();
        files.push((name.into_owned(), bytes));
    }
    files
}

/// Asserts that no secret of `secrets` is in any of `files` in any form [`leaked`] knows
/// (raw, escaped, hex, base64, inside a SASL PLAIN response); `when` names the moment in the
/// failure message.
pub fn assert_no_secret_in(files: &[(String, Vec<u8>)], secrets: &[&[u8]], when: &str) {
    for secret in secrets {
        // `leaked` finds nothing for an empty secret, which would pass without searching.
        assert!(!secret.is_empty(), "an empty secret cannot be searched for");
    }
    for (name, bytes) in files {
        for secret in secrets {
            if let Some(form) = leaked(bytes, secret) {
                panic!(
                    "{when}: {name} holds the secret {:?} (as {form})",
                    String::from_utf8_lossy(secret)
                );
            }
        }
    }
}

/// Asserts that none of `secrets` appears in any file the gateway wrote (its log, the SQLite
/// database with its WAL and shared-memory files) in any form [`leaked`] knows, and that the
/// log and the database were there to be searched.
pub fn assert_no_secret_in_gateway_files(gateway: &Gateway, secrets: &[&[u8]]) {
    let files = gateway_files(gateway);
    assert_no_secret_in(&files, secrets, "in the gateway's files");
    // The search must have covered the files secrets could leak into.
    for needed in ["gateway.log", "sessions.db"] {
        assert!(
            files.iter().any(|(n, _)| n == needed),
            "{needed} was not written; searched {:?}",
            files.iter().map(|(n, _)| n).collect::<Vec<_>>()
        );
    }
}

/// Asserts `fetched` is exactly the stored INBOX, message n at number n, byte for byte.
pub fn assert_same_messages(who: &str, fetched: &[(u32, Vec<u8>)], stored: &[Vec<u8>]) {
    assert_eq!(
        fetched.len(),
        stored.len(),
        "{who}: fetched {} messages, Dovecot stores {}",
        fetched.len(),
        stored.len()
    );
    for (i, ((seq, body), want)) in fetched.iter().zip(stored).enumerate() {
        assert_eq!(*seq as usize, i + 1, "{who}: messages out of order");
        assert!(
            body == want,
            "{who}: message {seq} differs from the stored file\n got: {:?}\nwant: {:?}",
            String::from_utf8_lossy(body),
            String::from_utf8_lossy(want)
        );
    }
}

/// Session records in the order their sessions started (tests that run sessions one after
/// another match them to their cases this way).
pub fn by_start(mut records: Vec<SessionRecord>) -> Vec<SessionRecord> {
    records.sort_by_key(|r| r.started_at);
    records
}

/// TLS 1.2 or 1.3, spelled as the record spells every TLS version ("TLSv1.3").
pub fn upstream_is_modern(version: Option<&str>) -> bool {
    matches!(version, Some("TLSv1.2" | "TLSv1.3"))
}

/// Asserts the record of a legacy client that was bridged: the listener and protocol, client
/// TLS as the record spells every TLS version (`"TLSv1.0"`, `"TLSv1.1"`), the highest version
/// its ClientHello offered (`"TLSv1.0"`), `user` logged in, the lab upstream of that protocol reached at TLS
/// 1.2 or newer, and at least `mail_bytes` sent to the client (the mail it fetched).
pub fn assert_bridged(
    record: &SessionRecord,
    protocol: &str,
    listener: &str,
    tls: &str,
    offered: &str,
    user: &str,
    mail_bytes: usize,
) {
    let context = format!("{record:#?}");
    assert_eq!(record.listener, listener, "{context}");
    assert_eq!(record.protocol, protocol, "{context}");
    assert_eq!(record.outcome, Outcome::Ok, "{context}");
    assert_eq!(
        record.tls_version.map(TlsVersion::as_str),
        Some(tls),
        "{context}"
    );
    assert_eq!(
        record.offered_max_tls.map(TlsVersion::as_str),
        Some(offered),
        "{context}"
    );
    assert_eq!(record.login.as_deref(), Some(user), "{context}");
    assert_eq!(record.upstream, format!("dovecot-{protocol}"), "{context}");
    assert!(
        upstream_is_modern(record.upstream_tls_version.map(TlsVersion::as_str)),
        "upstream leg below TLS 1.2: {context}"
    );
    assert!(record.bytes_to_client >= mail_bytes as u64, "{context}");
    assert!(record.bytes_from_client > 0, "{context}");
}

/// The end of a bridging test: waits for Dovecot to log `sessions` logins of `user` (each at
/// TLS 1.2/1.3), stops the gateway and returns its records in start order, exactly `sessions`
/// of them.
pub fn bridged_records(
    gateway: &mut Gateway,
    dovecot: &Dovecot,
    user: &str,
    sessions: usize,
) -> Vec<SessionRecord> {
    upstream_logins(dovecot, user, sessions);
    let records = by_start(gateway.stop_and_read_sessions());
    assert_eq!(records.len(), sessions, "{records:#?}");
    records
}

/// Asserts that a record from a capture or the sensor saw the client as the gateway's record
/// `seen` did: the same hello (JA4, offered lists and JA3, highest version, SNI), version and
/// suite.
pub fn assert_same_client(found: &SessionRecord, seen: &SessionRecord) {
    assert_eq!(
        (
            &found.ja4,
            &found.offered,
            found.offered_max_tls,
            found.tls_version,
            &found.sni,
            &found.tls_cipher
        ),
        (
            &seen.ja4,
            &seen.offered,
            seen.offered_max_tls,
            seen.tls_version,
            &seen.sni,
            &seen.tls_cipher
        ),
        "found {found:#?}\nthe gateway saw {seen:#?}"
    );
}
