//! Upstream logins against Postfix- and Exchange Online-shaped transcripts. Each runs fed
//! reply by reply and in pieces down to single bytes (see `testing`), and every run must see
//! the same steps. What the machine writes in base64 is decoded here by the `base64` crate.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::*;
use crate::testing::{self, authenticated, creds, wrote, UpstreamSeen as Seen};

const POSTFIX_HELLO: &[u8] = b"220 lab.mailtls.invalid ESMTP Postfix (Debian/GNU)\r\n";
const POSTFIX_EHLO_PLAIN: &[u8] = b"250-lab.mailtls.invalid\r\n250-PIPELINING\r\n\
250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n\
250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n";
const POSTFIX_EHLO_TLS: &[u8] = b"250-lab.mailtls.invalid\r\n250-PIPELINING\r\n\
250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n\
250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n";
const STARTTLS_READY: &[u8] = b"220 2.0.0 Ready to start TLS\r\n";
const EXCHANGE_HELLO: &[u8] = b"220 SN4PR0501CA0047.outlook.office365.com Microsoft ESMTP \
MAIL Service ready at Thu, 3 Dec 2026 03:00:00 +0000\r\n";
const EXCHANGE_EHLO_PLAIN: &[u8] = b"250-SN4PR0501CA0047.outlook.office365.com Hello \
[203.0.113.5]\r\n250-SIZE 157286400\r\n250-PIPELINING\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n\
250-STARTTLS\r\n250-8BITMIME\r\n250-BINARYMIME\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n";
const EXCHANGE_EHLO_TLS: &[u8] = b"250-SN4PR0501CA0047.outlook.office365.com Hello \
[203.0.113.5]\r\n250-SIZE 157286400\r\n250-PIPELINING\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n\
250-AUTH LOGIN XOAUTH2\r\n250-8BITMIME\r\n250-BINARYMIME\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n";
const EHLO: &str = "EHLO localhost\r\n";

fn password(user: &str, password: &[u8]) -> UpstreamAuth {
    UpstreamAuth::Password(creds(user, password))
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

/// Feeds the server's `phases` in pieces of `chunk` bytes, as the gateway does.
fn run(auth: &UpstreamAuth, starttls: bool, phases: &[&[u8]], chunk: usize) -> Vec<Seen> {
    testing::run_upstream(UpstreamLogin::new(auth.clone(), starttls), phases, chunk)
}

/// Runs the server's replies in every chunking and returns the common steps.
fn transcript(auth: &UpstreamAuth, starttls: bool, replies: &[&[u8]]) -> Vec<Seen> {
    testing::in_every_chunking(|chunk| run(auth, starttls, replies, chunk))
}

/// The PLAIN message a written `AUTH PLAIN <base64>` line carries, decoded.
fn plain_message(seen: &Seen) -> Vec<u8> {
    let Seen::Wrote(line) = seen else {
        panic!("{seen:?}")
    };
    let response = line
        .strip_prefix("AUTH PLAIN ")
        .and_then(|l| l.strip_suffix("\r\n"))
        .unwrap_or_else(|| panic!("{line:?}"));
    STANDARD.decode(response).expect("base64")
}

#[test]
fn postfix_on_587_starttls_ehlo_again_and_auth_plain() {
    let seen = transcript(
        &password("alice", b"secret"),
        true,
        &[
            POSTFIX_HELLO,
            POSTFIX_EHLO_PLAIN,
            STARTTLS_READY,
            POSTFIX_EHLO_TLS,
            b"235 2.7.0 Authentication successful\r\n",
        ],
    );
    assert_eq!(
        seen[..4],
        [
            wrote(EHLO),
            wrote("STARTTLS\r\n"),
            Seen::StartTls,
            wrote(EHLO)
        ]
    );
    assert_eq!(plain_message(&seen[4]), b"\0alice\0secret");
    assert_eq!(
        seen[5],
        authenticated("2.7.0 Authentication successful", b"")
    );
    assert_eq!(seen.len(), 6);
}

#[test]
fn learns_the_extensions_after_tls_only() {
    let mut login = UpstreamLogin::new(password("alice", b"secret"), true);
    assert_eq!(login.extensions(), None);
    for reply in [POSTFIX_HELLO, POSTFIX_EHLO_PLAIN, STARTTLS_READY] {
        login.feed(reply);
        while !matches!(login.next(), UpstreamStep::NeedInput) {}
    }
    assert_eq!(login.extensions(), None, "nothing is learned in the clear");
    login.tls_started();
    assert!(matches!(login.next(), UpstreamStep::Write(_)));
    login.feed(POSTFIX_EHLO_TLS);
    assert!(matches!(login.next(), UpstreamStep::Write(_)));
    assert_eq!(
        login.extensions(),
        Some(SmtpExtensions {
            size: Some(10_240_000),
            ..crate::smtp::extensions::EXCHANGE_ONLINE
        })
    );
}

#[test]
fn implicit_tls_on_465_needs_no_starttls() {
    let seen = transcript(
        &password("alice", b"secret"),
        false,
        &[
            POSTFIX_HELLO,
            POSTFIX_EHLO_TLS,
            b"535 5.7.8 Error: authentication failed: authentication failure\r\n",
        ],
    );
    assert_eq!(seen[0], wrote(EHLO));
    assert_eq!(plain_message(&seen[1]), b"\0alice\0secret");
    assert_eq!(
        seen[2],
        Seen::Rejected("5.7.8 Error: authentication failed: authentication failure".into())
    );
}

/// Exchange Online offers no PLAIN after STARTTLS (`AUTH LOGIN XOAUTH2`): passwords go by
/// LOGIN, answering its two prompts.
#[test]
fn exchange_online_gets_auth_login() {
    let user = "scanner@contoso.example";
    let seen = transcript(
        &password(user, "pä ss".as_bytes()),
        true,
        &[
            EXCHANGE_HELLO,
            EXCHANGE_EHLO_PLAIN,
            b"220 2.0.0 SMTP server ready\r\n",
            EXCHANGE_EHLO_TLS,
            b"334 VXNlcm5hbWU6\r\n",
            b"334 UGFzc3dvcmQ6\r\n",
            b"535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled \
for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. \
[SN4PR0501CA0047.namprd05.prod.outlook.com]\r\n",
        ],
    );
    assert_eq!(
        seen[..7],
        [
            wrote(EHLO),
            wrote("STARTTLS\r\n"),
            Seen::StartTls,
            wrote(EHLO),
            wrote("AUTH LOGIN\r\n"),
            wrote(&format!("{}\r\n", b64(user))),
            wrote(&format!("{}\r\n", b64("pä ss"))),
        ]
    );
    let Seen::Rejected(text) = &seen[7] else {
        panic!("{seen:?}")
    };
    assert!(
        text.starts_with("5.7.139 Authentication unsuccessful"),
        "{text}"
    );
}

/// Exchange Online's refusals of a password are the user's, shown to the client as 535.
#[test]
fn basic_auth_disabled_is_a_rejection() {
    let seen = transcript(
        &password("alice", b"secret"),
        false,
        &[
            POSTFIX_HELLO,
            POSTFIX_EHLO_TLS,
            b"550 5.7.30 Basic authentication is not supported for Client Submission.\r\n",
        ],
    );
    assert_eq!(
        seen.last(),
        Some(&Seen::Rejected(
            "5.7.30 Basic authentication is not supported for Client Submission.".into()
        ))
    );
}

#[test]
fn a_long_plain_response_waits_for_an_empty_challenge() {
    let long = vec![b'p'; 600];
    let seen = transcript(
        &password("alice", &long),
        false,
        &[
            POSTFIX_HELLO,
            POSTFIX_EHLO_TLS,
            b"334 \r\n",
            b"235 2.7.0 Authentication successful\r\n",
        ],
    );
    assert_eq!(seen[1], wrote("AUTH PLAIN\r\n"));
    let expected = [&b"\0alice\0"[..], &long].concat();
    assert_eq!(seen[2], wrote(&format!("{}\r\n", b64(expected))));
    assert!(matches!(seen[3], Seen::Authenticated { .. }));
}

#[test]
fn bytes_after_the_success_reply_are_leftover() {
    let seen = transcript(
        &password("alice", b"secret"),
        false,
        &[
            POSTFIX_HELLO,
            POSTFIX_EHLO_TLS,
            b"235 2.7.0 Authentication successful\r\n250 2.1.0 Ok\r\n",
        ],
    );
    assert_eq!(
        seen.last(),
        Some(&authenticated(
            "2.7.0 Authentication successful",
            b"250 2.1.0 Ok\r\n"
        ))
    );
}

#[test]
fn bytes_after_the_starttls_go_ahead_are_dropped() {
    // Whole replies only: the injected line must arrive with the 220.
    let seen = run(
        &password("alice", b"secret"),
        true,
        &[
            POSTFIX_HELLO,
            POSTFIX_EHLO_PLAIN,
            b"220 2.0.0 Ready to start TLS\r\n235 2.7.0 injected\r\n",
            POSTFIX_EHLO_TLS,
            b"235 2.7.0 Authentication successful\r\n",
        ],
        usize::MAX,
    );
    assert_eq!(seen[3], wrote(EHLO));
    assert_eq!(
        seen.last(),
        Some(&authenticated("2.7.0 Authentication successful", b""))
    );
}

#[test]
fn failures_that_are_not_about_the_password() {
    let fails = |auth: &UpstreamAuth, starttls: bool, replies: &[&[u8]]| -> String {
        match transcript(auth, starttls, replies).pop() {
            Some(Seen::Failed(reason)) => reason,
            other => panic!("{other:?}"),
        }
    };
    let alice = password("alice", b"secret");
    assert_eq!(
        fails(&alice, true, &[b"554 5.7.1 go away\r\n"]),
        "the server refused the session: 554 5.7.1 go away"
    );
    assert_eq!(
        fails(&alice, true, &[POSTFIX_HELLO, POSTFIX_EHLO_TLS]),
        "the server does not offer STARTTLS"
    );
    assert_eq!(
        fails(
            &alice,
            true,
            &[
                POSTFIX_HELLO,
                POSTFIX_EHLO_PLAIN,
                b"454 4.7.0 TLS not available\r\n"
            ]
        ),
        "the server refused STARTTLS: 454 4.7.0 TLS not available"
    );
    assert_eq!(
        fails(&alice, false, &[POSTFIX_HELLO, b"250-x\r\n250 SIZE 1\r\n"]),
        "the server offers neither AUTH PLAIN nor AUTH LOGIN (it offers: no AUTH)"
    );
    assert_eq!(
        fails(
            &alice,
            false,
            &[POSTFIX_HELLO, b"250-x\r\n250 AUTH CRAM-MD5 XOAUTH2\r\n"]
        ),
        "the server offers neither AUTH PLAIN nor AUTH LOGIN (it offers: CRAM-MD5 XOAUTH2)"
    );
    assert_eq!(
        fails(
            &alice,
            false,
            &[
                POSTFIX_HELLO,
                POSTFIX_EHLO_TLS,
                b"454 4.7.0 Temporary authentication failure\r\n"
            ]
        ),
        "the server did not accept AUTH: 454 4.7.0 Temporary authentication failure"
    );
    assert_eq!(
        fails(
            &alice,
            false,
            &[POSTFIX_HELLO, POSTFIX_EHLO_TLS, b"334 \r\n"]
        ),
        "the server asked for more than the mechanism sends: 334 "
    );
    assert_eq!(
        fails(
            &alice,
            false,
            &[POSTFIX_HELLO, b"421 4.3.2 Service shutting down\r\n"]
        ),
        "the server is closing the session: 421 4.3.2 Service shutting down"
    );
    assert_eq!(
        fails(&alice, false, &[b"* OK IMAP4rev1 ready\r\n"]),
        "the server sent a line that is not an SMTP reply: * OK IMAP4rev1 ready"
    );
    assert_eq!(
        fails(&alice, false, &[&[b'2'; MAX_LINE]]),
        format!("the server sent a line longer than {MAX_LINE} bytes")
    );
}

#[test]
fn the_ehlo_name_is_sanitised() {
    let login = UpstreamLogin::new(password("a", b"b"), false).with_ehlo_name("gw.example\r\nRSET");
    let seen = testing::run_upstream(login, &[POSTFIX_HELLO], usize::MAX);
    assert_eq!(seen, vec![wrote("EHLO gw.exampleRSET\r\n")]);
}

#[test]
fn debug_output_never_shows_the_password() {
    let mut login = UpstreamLogin::new(password("alice", b"hunter2"), false);
    let mut shown = format!("{login:?}");
    for reply in [
        POSTFIX_HELLO,
        b"250-x\r\n250 AUTH LOGIN\r\n",
        b"334 VXNlcm5hbWU6\r\n",
    ] {
        login.feed(reply);
        loop {
            let step = login.next();
            shown.push_str(&format!("{step:?} {login:?}"));
            if step == UpstreamStep::NeedInput {
                break;
            }
        }
    }
    assert!(
        !shown.contains("hunter2") && !shown.contains(&b64("hunter2")),
        "{shown}"
    );
}

fn token(mechanism: BearerMechanism, access_token: &str) -> UpstreamAuth {
    let token = BearerToken::new(
        "scanner@contoso.example",
        Secret::new(access_token),
        mechanism,
    );
    UpstreamAuth::Bearer(token.expect("a valid token"))
}

/// Exchange Online's submission with a real-sized token: `AUTH XOAUTH2` alone (the token
/// does not fit on the line), the XOAUTH2 message after the empty `334`, then `235`.
#[test]
fn exchange_online_gets_xoauth2_after_an_empty_challenge() {
    let access_token = "eyJ0eXAiOiJKV1QifQ.".to_string() + &"x".repeat(1500);
    let seen = transcript(
        &token(BearerMechanism::XOAuth2, &access_token),
        true,
        &[
            EXCHANGE_HELLO,
            EXCHANGE_EHLO_PLAIN,
            b"220 2.0.0 SMTP server ready\r\n",
            EXCHANGE_EHLO_TLS,
            b"334 \r\n",
            b"235 2.7.0 Authentication successful\r\n",
        ],
    );
    let expected = format!("user=scanner@contoso.example\x01auth=Bearer {access_token}\x01\x01");
    assert_eq!(
        seen[4..6],
        [
            wrote("AUTH XOAUTH2\r\n"),
            wrote(&format!("{}\r\n", b64(expected))),
        ]
    );
    assert!(matches!(seen[6], Seen::Authenticated { .. }), "{seen:?}");
}

/// A refused token: the server's failure challenge (base64 JSON) is answered as the
/// mechanism wants, and the `535` that follows is a refused token carrying that JSON.
#[test]
fn a_refused_token_reports_the_failure_challenge() {
    let status = r#"{"status":"401","schemes":"bearer","scope":"mail"}"#;
    for (mechanism, answer) in [
        (BearerMechanism::XOAuth2, "\r\n"),
        (BearerMechanism::OAuthBearer, "AQ==\r\n"),
    ] {
        let challenge = format!("334 {}\r\n", b64(status));
        let seen = transcript(
            &token(mechanism, "t0ken"),
            false,
            &[
                POSTFIX_HELLO,
                b"250-lab\r\n250 AUTH PLAIN XOAUTH2 OAUTHBEARER\r\n",
                challenge.as_bytes(),
                b"535 5.7.8 Error: authentication failed\r\n",
            ],
        );
        assert_eq!(seen[2], wrote(answer), "{mechanism:?}");
        assert_eq!(
            seen[3],
            Seen::TokenRefused {
                text: "5.7.8 Error: authentication failed".into(),
                oauth_error: Some(status.into()),
            },
            "{mechanism:?}"
        );
    }
}

/// A token login to a server that offers no such mechanism fails plainly: a refusal would
/// read as a bad token.
#[test]
fn a_token_needs_its_mechanism_offered() {
    let seen = transcript(
        &token(BearerMechanism::OAuthBearer, "t0ken"),
        false,
        &[POSTFIX_HELLO, b"250-lab\r\n250 AUTH PLAIN LOGIN\r\n"],
    );
    assert_eq!(
        seen[1],
        Seen::Failed("the server does not offer AUTH OAUTHBEARER".into())
    );
}
