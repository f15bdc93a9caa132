//! Arbitrary server bytes, in arbitrary chunks, into the upstream POP3 login with arbitrary
//! credentials or access tokens. It must never panic, every command it writes must be exactly
//! one CRLF-ended line, whatever the password or token holds, and a refused token's status is
//! one bounded line.
//!
//! Input layout: one settings byte (bit 0 STLS; bit 1 the secret is an access token, sent with
//! OAUTHBEARER if bit 2 is set, else XOAUTH2), a length byte and that many secret bytes, then
//! chunks, each a length byte and its bytes. A token that could not be framed (a control
//! character, say) is replaced by a fixed one, as the gateway never gets such a token past
//! `BearerToken::new`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::pop3::UpstreamLogin;
use proto::sasl::MAX_FAILURE_CHALLENGE;
use proto::{
    BearerMechanism, BearerToken, Credentials, Secret, UpstreamAuth, UpstreamDialogue, UpstreamStep,
};

fuzz_target!(|data: &[u8]| {
    let [settings, secret_len, rest @ ..] = data else {
        return;
    };
    let (secret, mut rest) = rest.split_at(usize::from(*secret_len).min(rest.len()));
    let auth = if settings & 2 != 0 {
        let mechanism = match settings & 4 {
            0 => BearerMechanism::XOAuth2,
            _ => BearerMechanism::OAuthBearer,
        };
        let token = BearerToken::new("fuzz", Secret::new(secret), mechanism)
            .or_else(|_| BearerToken::new("fuzz", Secret::new("t0ken"), mechanism))
            .expect("a valid token");
        UpstreamAuth::Bearer(token)
    } else {
        // A password with a NUL cannot become credentials: the client dialogues refuse it.
        let Ok(credentials) = Credentials::new("fuzz".into(), Secret::new(secret)) else {
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
        let Some((&len, tail)) = rest.split_first() else {
            return;
        };
        let (chunk, tail) = tail.split_at(usize::from(len).min(tail.len()));
        login.feed(chunk);
        rest = tail;
    }
});
