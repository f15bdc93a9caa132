//! Arbitrary server bytes, in arbitrary chunks, into the upstream SMTP login with arbitrary
//! credentials. It must never panic, and every command it writes must be exactly one
//! CRLF-ended line, whatever the user name and password hold.
//!
//! Input layout: one settings byte (bit 0 STARTTLS; bit 1 an access token instead of a
//! password, bit 2 OAUTHBEARER instead of XOAUTH2), a length byte and that many password or
//! token bytes, then chunks, each a length byte and its bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::smtp::UpstreamLogin;
use proto::{
    BearerMechanism, BearerToken, Credentials, Secret, UpstreamAuth, UpstreamDialogue, UpstreamStep,
};

fuzz_target!(|data: &[u8]| {
    let [settings, password_len, rest @ ..] = data else {
        return;
    };
    let (password, mut rest) = rest.split_at(usize::from(*password_len).min(rest.len()));
    let auth = if settings & 2 != 0 {
        let mechanism = match settings & 4 {
            0 => BearerMechanism::XOAuth2,
            _ => BearerMechanism::OAuthBearer,
        };
        let token = BearerToken::new("fuzz", Secret::new(password), mechanism)
            .or_else(|_| BearerToken::new("fuzz", Secret::new("t0ken"), mechanism))
            .expect("a valid token");
        UpstreamAuth::Bearer(token)
    } else {
        // Credentials the client dialogues would refuse (a NUL in the password) never get here.
        let Ok(credentials) = Credentials::new("fuzz".into(), Secret::new(password)) else {
            return;
        };
        UpstreamAuth::Password(credentials)
    };
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
                UpstreamStep::TokenRefused { oauth_error, .. } => {
                    let status = oauth_error.unwrap_or_default();
                    assert!(!status.contains(['\r', '\n']), "{status:?}");
                    return;
                }
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
