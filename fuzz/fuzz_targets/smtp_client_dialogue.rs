//! Arbitrary client bytes, in arbitrary chunks, into the client-facing SMTP machine. It must
//! never panic, and everything it writes must be whole CRLF-ended replies, each line starting
//! with a three-digit code.
//!
//! In relay mode a MAIL command before AUTH is a relay request: its sender must be at most
//! 254 bytes as sent, an accepted one hands exactly the MAIL line and what followed it to the
//! upstream and says nothing to the client, and a refused one gets a 550 or 451 reply.
//!
//! Input layout: one settings byte (TLS mode, whether the upstream's extensions are shown, a
//! small or the default line cap, relay mode), then chunks, each a header byte (length, and
//! whether a login or relay request that follows is accepted; a refused login is refused by
//! policy when the length is odd) and its bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::smtp::{ClientSession, SmtpExtensions};
use proto::{ClientDialogue, ClientStep, ClientTls, DialogueOptions, Limits};

fuzz_target!(|data: &[u8]| {
    let Some((&settings, mut rest)) = data.split_first() else {
        return;
    };
    let tls = match settings % 3 {
        0 => ClientTls::Active,
        1 => ClientTls::StartTlsRequired,
        _ => ClientTls::None,
    };
    // A small cap lets the fuzzer reach the over-long-line path with short inputs.
    let max_line = match settings & 0x80 {
        0 => Limits::default().max_line,
        _ => usize::from(settings & 0x3f),
    };
    let extensions = match settings & 0x40 {
        0 => SmtpExtensions::default(),
        _ => SmtpExtensions::from_ehlo_lines(["SIZE 1000", "PIPELINING", "8BITMIME", "CHUNKING"]),
    };
    let options = DialogueOptions {
        tls,
        limits: Limits {
            max_line,
            ..Limits::default()
        },
        greeting: "fuzz ready".into(),
    };
    let mut session = ClientSession::new(options, extensions);
    if settings & 0x20 != 0 {
        session = session.relaying();
    }
    let mut header = 0u8;
    loop {
        loop {
            match session.next() {
                ClientStep::NeedInput => break,
                ClientStep::Write(bytes) => assert_replies(&bytes),
                ClientStep::StartTls => session.tls_started(),
                ClientStep::Login(_) if header & 0x80 != 0 => {
                    let done = session.login_accepted("2.7.0 Authentication successful", None);
                    assert_replies(&done.to_client);
                    return;
                }
                ClientStep::Login(_) if header & 1 != 0 => {
                    session.policy_refused("TLS 1.0 is no longer accepted.\r\n250 injected")
                }
                ClientStep::Login(_) => session.login_rejected("5.7.8 no"),
                ClientStep::Relay { sender } => {
                    // Sender bytes that are not UTF-8 each become a 3-byte U+FFFD.
                    assert!(sender.len() <= 254 * 3, "{} bytes", sender.len());
                    if header & 0x80 != 0 {
                        let done = session.login_accepted("2.7.0 Authentication successful", None);
                        assert!(done.to_client.is_empty());
                        assert!(done.to_upstream[..5].eq_ignore_ascii_case(b"MAIL "));
                        return;
                    }
                    let reason = match sender.len() % 2 {
                        0 => "5.7.1 Sender not allowed",
                        _ => "4.7.0 Relay account unavailable",
                    };
                    session.login_rejected(reason);
                    match session.next() {
                        ClientStep::Write(bytes) => {
                            assert!(bytes.starts_with(b"550 5.7.1 ") || bytes.starts_with(b"451 4.7.0 "));
                            assert_replies(&bytes);
                        }
                        other => panic!("a refused relay request must be answered: {other:?}"),
                    }
                }
                ClientStep::Close(_) => {
                    assert_replies(&session.farewell("bye"));
                    return;
                }
                ClientStep::ClientId(_) => panic!("SMTP has no ID command"),
            }
        }
        let Some((&next_header, tail)) = rest.split_first() else {
            return;
        };
        header = next_header;
        let (chunk, tail) = tail.split_at(usize::from(header & 0x7f).min(tail.len()));
        session.feed(chunk);
        rest = tail;
    }
});

/// CRLF-ended lines, no bare CR or LF, each `ddd` then a space or `-` (RFC 5321 4.2).
fn assert_replies(bytes: &[u8]) {
    assert!(bytes.ends_with(b"\r\n"), "{bytes:?}");
    for line in bytes[..bytes.len() - 2].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(!line.contains(&b'\r'), "{bytes:?}");
        assert!(line.len() >= 4, "{bytes:?}");
        assert!(line[..3].iter().all(u8::is_ascii_digit), "{bytes:?}");
        assert!(matches!(line[3], b' ' | b'-'), "{bytes:?}");
    }
}
