//! What the SMTP tests submit and how they check it arrived: a scan-to-email message that
//! submission must carry unchanged, the byte-exact comparison with what Postfix delivered, and
//! the smtpd session in Postfix's log that shows who logged in over which TLS.

use std::time::{Duration, Instant};

use crate::Postfix;

/// A scan-to-email message with what submission must carry unchanged: lines that start with
/// dots (one alone, which would end DATA if not stuffed), 8-bit UTF-8 and a line longer than
/// RFC 5322's 998 bytes. It has its own Date and Message-ID, so Postfix adds no header inside
/// it, and CRLF line ends throughout.
pub fn scan_message(subject: &str, from: &str, to: &str) -> Vec<u8> {
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
pub fn assert_delivered_exactly(delivered: &[u8], sent: &[u8]) {
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
pub fn session_of(postfix: &Postfix, user: &str) -> Vec<String> {
    postfix
        .ended_sessions_with(&format!("sasl_username={user}"), 1)
        .remove(0)
}

pub fn tls_line(session: &[String]) -> &str {
    session
        .iter()
        .find(|l| l.contains("TLS connection established"))
        .unwrap_or_else(|| panic!("no TLS in session {session:#?}"))
}

/// Postfix hands a queued message to its delivery agent at once, but asynchronously.
pub fn wait_for_delivery(postfix: &Postfix, user: &str, count: usize) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let delivered = postfix.delivered(user);
        if delivered.len() >= count {
            assert_eq!(delivered.len(), count, "more messages than were sent");
            return delivered;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} messages delivered to {user} within 10 s; log:\n{}",
            delivered.len(),
            postfix.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
