//! Arbitrary server bytes, in arbitrary chunks, into the upstream POP3 login with arbitrary
//! credentials. It must never panic, and every command it writes must be exactly one
//! CRLF-ended line, whatever the password holds.
//!
//! Input layout: one settings byte (STLS or not), a length byte and that many password bytes,
//! then chunks, each a length byte and its bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::pop3::UpstreamLogin;
use proto::{Credentials, Secret, UpstreamAuth, UpstreamDialogue, UpstreamStep};

fuzz_target!(|data: &[u8]| {
    let [settings, password_len, rest @ ..] = data else {
        return;
    };
    let (password, mut rest) = rest.split_at(usize::from(*password_len).min(rest.len()));
    // A password with a NUL cannot become credentials: the client dialogues refuse it.
    let Ok(credentials) = Credentials::new("fuzz".into(), Secret::new(password)) else {
        return;
    };
    let auth = UpstreamAuth::Password(credentials);
    let mut login = UpstreamLogin::new(auth, settings & 1 != 0);
    loop {
        loop {
            match login.next() {
                UpstreamStep::NeedInput => break,
                UpstreamStep::Write(bytes) => {
                    let line_ends = bytes.iter().filter(|&&b| b == b'\r' || b == b'\n');
                    assert_eq!(line_ends.count(), 2, "{bytes:?}");
                    assert!(bytes.ends_with(b"\r\n"), "{bytes:?}");
                }
                UpstreamStep::StartTls => login.tls_started(),
                UpstreamStep::Authenticated { .. }
                | UpstreamStep::Rejected { .. }
                | UpstreamStep::Failed { .. } => return,
            }
        }
        let Some((&len, tail)) = rest.split_first() else {
            return;
        };
        let (chunk, tail) = tail.split_at(usize::from(len).min(tail.len()));
        login.feed(chunk);
        rest = tail;
    }
});
