//! Arbitrary client bytes, in arbitrary chunks, into the client-facing SMTP machine. It must
//! never panic, and everything it writes must be whole CRLF-ended replies, each line starting
//! with a three-digit code.
//!
//! Input layout: one settings byte (TLS mode, whether the upstream's extensions are shown, a
//! small or the default line cap), then chunks, each a header byte (length, and whether a
//! login that follows is accepted; a refused one is refused by policy when the length is odd)
//! and its bytes.

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
