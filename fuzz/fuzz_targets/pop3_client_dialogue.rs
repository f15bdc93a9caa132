//! Arbitrary client bytes, in arbitrary chunks, into the client-facing POP3 machine. It must
//! never panic, and everything it writes must be whole CRLF-ended lines.
//!
//! Input layout: one settings byte (TLS mode, a small or the default line cap), then chunks,
//! each a header byte (length, and whether a login that follows is accepted; a refused one is
//! refused by policy when the length is odd) and its bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::pop3::ClientSession;
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
    let mut session = ClientSession::new(DialogueOptions {
        tls,
        limits: Limits {
            max_line,
            ..Limits::default()
        },
        greeting: "fuzz ready".into(),
    });
    let mut header = 0u8;
    loop {
        loop {
            match session.next() {
                ClientStep::NeedInput => break,
                ClientStep::Write(bytes) => assert_whole_lines(&bytes),
                ClientStep::StartTls => session.tls_started(),
                ClientStep::Login(_) if header & 0x80 != 0 => {
                    let done = session.login_accepted("logged in", None);
                    assert_whole_lines(&done.to_client);
                    return;
                }
                ClientStep::Login(_) if header & 1 != 0 => {
                    session.policy_refused("TLS 1.0 is no longer accepted.\r\n+OK injected")
                }
                ClientStep::Login(_) => session.login_rejected("no"),
                ClientStep::Close(_) => {
                    assert_whole_lines(&session.farewell("bye"));
                    return;
                }
                ClientStep::ClientId(_) => panic!("POP3 has no ID command"),
                ClientStep::Relay { .. } => panic!("POP3 has no relay mode"),
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

fn assert_whole_lines(bytes: &[u8]) {
    assert!(bytes.ends_with(b"\r\n"), "{bytes:?}");
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(bytes.get(i + 1), Some(&b'\n'), "{bytes:?}"),
            b'\n' => assert!(i > 0 && bytes[i - 1] == b'\r', "{bytes:?}"),
            _ => {}
        }
    }
}
