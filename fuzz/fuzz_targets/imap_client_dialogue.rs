//! The client-facing IMAP machine fed arbitrary bytes in arbitrary chunks: it must never panic,
//! every reply it writes is whole lines, and the ID fields it reports keep RFC 2971's limits.
//!
//! Input: one setup byte (listener TLS mode, small or default limits, accept or reject logins,
//! rejections as failed logins or as policy refusals),
//! then chunks, each a length byte followed by up to that many bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::imap::ClientSession;
use proto::{ClientDialogue, ClientStep, ClientTls, DialogueOptions, Limits};

fuzz_target!(|data: &[u8]| {
    let Some((&setup, mut rest)) = data.split_first() else {
        return;
    };
    let tls = match setup % 3 {
        0 => ClientTls::Active,
        1 => ClientTls::StartTlsRequired,
        _ => ClientTls::None,
    };
    // Small limits reach the over-limit paths with short inputs.
    let limits = match setup & 4 {
        0 => Limits::default(),
        _ => Limits {
            max_line: 64,
            max_literal: 32,
        },
    };
    let accept_logins = setup & 8 != 0;
    let refused_by_policy = setup & 16 != 0;
    let mut session = ClientSession::new(DialogueOptions {
        tls,
        limits,
        greeting: "fuzz".into(),
    });
    while let Some((&length, tail)) = rest.split_first() {
        let (chunk, tail) = tail.split_at(usize::from(length).min(tail.len()));
        rest = tail;
        session.feed(chunk);
        loop {
            match session.next() {
                ClientStep::NeedInput => break,
                ClientStep::Write(bytes) => assert!(bytes.ends_with(b"\r\n")),
                ClientStep::ClientId(pairs) => {
                    assert!(pairs.len() <= 30);
                    for (name, value) in pairs {
                        assert!(name.len() <= 30);
                        assert!(value.is_none_or(|v| v.len() <= 1024));
                    }
                }
                ClientStep::StartTls => session.tls_started(),
                ClientStep::Login(_) if accept_logins => {
                    session.feed(rest);
                    let handover = session.login_accepted("[CAPABILITY IMAP4rev1] Logged in", None);
                    assert!(handover.to_client.ends_with(b"\r\n"));
                    return;
                }
                ClientStep::Login(_) if refused_by_policy => {
                    session.policy_refused("TLS 1.0 is no longer accepted.\r\n* OK injected")
                }
                ClientStep::Login(_) => session.login_rejected("Authentication failed"),
                ClientStep::Close(_) => return,
                ClientStep::Relay { .. } => panic!("IMAP has no relay mode"),
            }
        }
    }
    assert!(session.farewell("Shutting down").ends_with(b"\r\n"));
});
