//! The upstream IMAP login fed arbitrary server bytes in arbitrary chunks: it must never panic.
//!
//! Input: one setup byte (STARTTLS or not, which password), then chunks, each a length byte
//! followed by up to that many bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::imap::UpstreamLogin;
use proto::{Credentials, Secret, UpstreamAuth, UpstreamDialogue, UpstreamStep};

fuzz_target!(|data: &[u8]| {
    let Some((&setup, mut rest)) = data.split_first() else {
        return;
    };
    let password: &[u8] = match setup & 2 {
        0 => b"secret",
        _ => "p \"w\\ {3}\r\nö".as_bytes(),
    };
    let credentials = Credentials::new("alice".into(), Secret::new(password));
    let auth = UpstreamAuth::Password(credentials.expect("acceptable credentials"));
    let mut login = UpstreamLogin::new(auth, setup & 1 != 0);
    while let Some((&length, tail)) = rest.split_first() {
        let (chunk, tail) = tail.split_at(usize::from(length).min(tail.len()));
        rest = tail;
        login.feed(chunk);
        loop {
            match login.next() {
                UpstreamStep::NeedInput => break,
                UpstreamStep::Write(bytes) => assert!(bytes.ends_with(b"\r\n")),
                UpstreamStep::StartTls => login.tls_started(),
                UpstreamStep::Authenticated { .. }
                | UpstreamStep::Rejected { .. }
                | UpstreamStep::Failed { .. } => return,
            }
        }
    }
});
