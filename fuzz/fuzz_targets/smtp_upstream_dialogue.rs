//! Arbitrary server bytes, in arbitrary chunks, into the upstream SMTP login with arbitrary
//! credentials. It must never panic, and every command it writes must be exactly one
//! CRLF-ended line, whatever the user name and password hold.
//!
//! Input layout: one settings byte (STARTTLS or not), a length byte and that many password
//! bytes, then chunks, each a length byte and its bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::smtp::UpstreamLogin;
use proto::{Credentials, Secret, UpstreamAuth, UpstreamDialogue, UpstreamStep};

fuzz_target!(|data: &[u8]| {
    let [settings, password_len, rest @ ..] = data else {
        return;
    };
    let (password, mut rest) = rest.split_at(usize::from(*password_len).min(rest.len()));
    let auth = UpstreamAuth::Password(Credentials {
        user: "fuzz\r\nRSET".into(),
        password: Secret::new(password),
    });
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
