//! The upstream IMAP login fed arbitrary server bytes in arbitrary chunks: it must never panic,
//! every command ends in CRLF, and a refused token's status is one bounded line.
//!
//! Input: one setup byte (bit 0 STARTTLS; bit 1 a password that needs quoting and a literal;
//! bit 2 an access token instead of a password, sent with OAUTHBEARER if bit 3 is set, else
//! XOAUTH2), then chunks, each a length byte followed by up to that many bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::imap::UpstreamLogin;
use proto::sasl::MAX_FAILURE_CHALLENGE;
use proto::{
    BearerMechanism, BearerToken, Credentials, Secret, UpstreamAuth, UpstreamDialogue, UpstreamStep,
};

fuzz_target!(|data: &[u8]| {
    let Some((&setup, mut rest)) = data.split_first() else {
        return;
    };
    let auth = if setup & 4 != 0 {
        let mechanism = match setup & 8 {
            0 => BearerMechanism::XOAuth2,
            _ => BearerMechanism::OAuthBearer,
        };
        let token = Secret::new("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln");
        UpstreamAuth::Bearer(BearerToken::new("alice", token, mechanism).expect("a valid token"))
    } else {
        let password: &[u8] = match setup & 2 {
            0 => b"secret",
            _ => "p \"w\\ {3}\r\nö".as_bytes(),
        };
        let credentials = Credentials::new("alice".into(), Secret::new(password));
        UpstreamAuth::Password(credentials.expect("acceptable credentials"))
    };
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
                UpstreamStep::TokenRefused { oauth_error, .. } => {
                    if let Some(status) = oauth_error {
                        assert!(!status.chars().any(char::is_control), "{status:?}");
                        assert!(status.chars().count() <= MAX_FAILURE_CHALLENGE);
                    }
                    return;
                }
                UpstreamStep::Authenticated { .. }
                | UpstreamStep::Rejected { .. }
                | UpstreamStep::Failed { .. } => return,
            }
        }
    }
});
