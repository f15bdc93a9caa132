//! Upstream logins against Dovecot- and Exchange-shaped transcripts. Each runs fed reply by
//! reply and in pieces down to single bytes (see `testing`), and every run must see the same
//! steps.

use super::*;
use crate::testing::{
    self, authenticated, bearer, challenge, creds, decoded_response, wrote, UpstreamSeen as Seen,
};
use crate::BearerMechanism::{self, OAuthBearer, XOAuth2};

const DOVECOT_HELLO: &[u8] = b"+OK Dovecot ready.\r\n";
const DOVECOT_CAPA: &[u8] = b"+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n";
const EXCHANGE_HELLO: &[u8] = b"+OK The Microsoft Exchange POP3 service is ready. [UwBBADIAUABSADAAMQBDAEEAMAAwADAANwAuAG4AYQBtAHAAcgBkADAAMQAuAHAAcgBvAGQALgBvAHUAdABsAG8AbwBrAC4AYwBvAG0A]\r\n";
const EXCHANGE_CAPA: &[u8] = b"+OK\r\nTOP\r\nUIDL\r\nSASL PLAIN XOAUTH2\r\nUSER\r\n.\r\n";
/// base64 of "\0bob\0pw"
const PLAIN_BOB: &str = "AUTH PLAIN AGJvYgBwdw==\r\n";

fn password(user: &str, password: &[u8]) -> UpstreamAuth {
    UpstreamAuth::Password(creds(user, password))
}

/// Feeds the server's `phases` in pieces of `chunk` bytes, as the gateway does.
fn run(auth: &UpstreamAuth, starttls: bool, phases: &[&[u8]], chunk: usize) -> Vec<Seen> {
    testing::run_upstream(UpstreamLogin::new(auth.clone(), starttls), phases, chunk)
}

/// Runs the server's replies in every chunking and returns the common steps.
fn transcript(auth: &UpstreamAuth, starttls: bool, replies: &[&[u8]]) -> Vec<Seen> {
    testing::in_every_chunking(|chunk| run(auth, starttls, replies, chunk))
}

#[test]
fn dovecot_with_sasl_plain() {
    let seen = transcript(
        &password("bob", b"pw"),
        false,
        &[DOVECOT_HELLO, DOVECOT_CAPA, b"+OK Logged in.\r\n"],
    );
    assert_eq!(
        seen,
        vec![
            wrote("CAPA\r\n"),
            wrote(PLAIN_BOB),
            authenticated("Logged in.", b"")
        ]
    );
}

#[test]
fn dovecot_with_stls() {
    let seen = transcript(
        &password("bob", b"pw"),
        true,
        &[
            DOVECOT_HELLO,
            b"+OK Begin TLS negotiation now.\r\n",
            DOVECOT_CAPA,
            b"+OK Logged in.\r\n",
        ],
    );
    assert_eq!(
        seen,
        vec![
            wrote("STLS\r\n"),
            Seen::StartTls,
            wrote("CAPA\r\n"),
            wrote(PLAIN_BOB),
            authenticated("Logged in.", b""),
        ]
    );
}

#[test]
fn dovecot_rejects_a_password() {
    let seen = transcript(
        &password("bob", b"pw"),
        false,
        &[
            DOVECOT_HELLO,
            DOVECOT_CAPA,
            b"-ERR [AUTH] Authentication failed.\r\n",
        ],
    );
    assert_eq!(
        seen.last(),
        Some(&Seen::Rejected("[AUTH] Authentication failed.".into()))
    );
}

#[test]
fn exchange_with_sasl_plain() {
    let seen = transcript(
        &password("bob", b"pw"),
        false,
        &[
            EXCHANGE_HELLO,
            EXCHANGE_CAPA,
            b"+OK User successfully authenticated.\r\n",
        ],
    );
    assert_eq!(
        seen,
        vec![
            wrote("CAPA\r\n"),
            wrote(PLAIN_BOB),
            authenticated("User successfully authenticated.", b""),
        ]
    );
}

#[test]
fn exchange_with_user_and_pass() {
    let capa_without_sasl: &[u8] = b"+OK\r\nTOP\r\nUIDL\r\nSTLS\r\nUSER\r\n.\r\n";
    let seen = transcript(
        &password("bob@example.com", b"p w"),
        false,
        &[
            EXCHANGE_HELLO,
            capa_without_sasl,
            b"+OK\r\n",
            b"-ERR Logon failure: unknown user name or bad password.\r\n",
        ],
    );
    assert_eq!(
        seen,
        vec![
            wrote("CAPA\r\n"),
            wrote("USER bob@example.com\r\n"),
            wrote("PASS p w\r\n"),
            Seen::Rejected("Logon failure: unknown user name or bad password.".into()),
        ]
    );
}

#[test]
fn sasl_without_plain_falls_back_to_user_and_pass() {
    let capa: &[u8] = b"+OK\r\nSASL NTLM GSSAPI\r\nUSER\r\n.\r\n";
    let seen = transcript(
        &password("bob", b"pw"),
        false,
        &[
            EXCHANGE_HELLO,
            capa,
            b"+OK\r\n",
            b"+OK User successfully logged on.\r\n",
        ],
    );
    assert_eq!(
        seen,
        vec![
            wrote("CAPA\r\n"),
            wrote("USER bob\r\n"),
            wrote("PASS pw\r\n"),
            authenticated("User successfully logged on.", b""),
        ]
    );
}

#[test]
fn a_server_without_capa_gets_user_and_pass() {
    let seen = transcript(
        &password("bob", b"pw"),
        false,
        &[
            b"+OK POP3 ready\r\n",
            b"-ERR unknown command\r\n",
            b"+OK\r\n",
            b"+OK\r\n",
        ],
    );
    assert_eq!(
        seen,
        vec![
            wrote("CAPA\r\n"),
            wrote("USER bob\r\n"),
            wrote("PASS pw\r\n"),
            authenticated("", b""),
        ]
    );
}

#[test]
fn a_rejected_user_stops_before_pass() {
    let seen = transcript(
        &password("nobody", b"pw"),
        false,
        &[b"+OK\r\n", b"-ERR\r\n", b"-ERR no such user\r\n"],
    );
    assert_eq!(
        seen,
        vec![
            wrote("CAPA\r\n"),
            wrote("USER nobody\r\n"),
            Seen::Rejected("no such user".into()),
        ]
    );
}

#[test]
fn bytes_after_the_success_reply_are_leftover() {
    let seen = transcript(
        &password("bob", b"pw"),
        false,
        &[
            DOVECOT_HELLO,
            DOVECOT_CAPA,
            b"+OK Logged in.\r\n+OK 2 messages\r\n",
            b"1 120\r\n",
        ],
    );
    assert_eq!(
        seen.last(),
        Some(&authenticated("Logged in.", b"+OK 2 messages\r\n1 120\r\n"))
    );
}

#[test]
fn long_credentials_send_the_plain_response_on_its_own_line() {
    // A user name at the gateway's limit and a long password.
    let long = "x".repeat(255);
    let auth = password(&long, &[b'p'; 100]);
    let response = format!("{}\r\n", encode_plain(&creds(&long, &[b'p'; 100])));
    let seen = transcript(
        &auth,
        false,
        &[
            DOVECOT_HELLO,
            DOVECOT_CAPA,
            b"+ \r\n",
            b"+OK Logged in.\r\n",
        ],
    );
    assert_eq!(
        seen,
        vec![
            wrote("CAPA\r\n"),
            wrote("AUTH PLAIN\r\n"),
            wrote(&response),
            authenticated("Logged in.", b""),
        ]
    );
}

#[test]
fn passwords_with_spaces_quotes_backslashes_and_non_ascii_go_out_unchanged() {
    for pass in [&b"a b"[..], b"\"q\"", b"b\\s", "ü €".as_bytes(), b"\xe9"] {
        let seen = transcript(
            &password("bob", pass),
            false,
            &[b"+OK\r\n", b"-ERR\r\n", b"+OK\r\n", b"+OK\r\n"],
        );
        let pass_line = [b"PASS ", pass, b"\r\n"].concat();
        assert_eq!(
            seen[2],
            Seen::Wrote(String::from_utf8_lossy(&pass_line).into_owned())
        );
    }
}

#[test]
fn a_password_with_a_line_break_is_never_sent_with_pass() {
    for pass in [&b"a\r\nDELE 1"[..], b"a\nb", b"a\rb"] {
        let seen = transcript(&password("bob", pass), false, &[b"+OK\r\n", b"-ERR\r\n"]);
        assert_eq!(seen.len(), 2, "{seen:?}");
        let Seen::Rejected(text) = &seen[1] else {
            panic!("{seen:?}")
        };
        assert!(text.contains("line break"), "{text}");
        assert!(!text.contains(&*String::from_utf8_lossy(pass)), "{text}");
    }
}

#[test]
fn a_password_with_a_line_break_goes_through_plain() {
    let seen = transcript(
        &password("bob", b"a\r\nb"),
        false,
        &[DOVECOT_HELLO, DOVECOT_CAPA, b"+OK Logged in.\r\n"],
    );
    assert_eq!(seen[1], wrote("AUTH PLAIN AGJvYgBhDQpi\r\n"));
}

#[test]
fn an_err_greeting_fails() {
    let seen = transcript(
        &password("bob", b"pw"),
        false,
        &[b"-ERR too many connections\r\n"],
    );
    assert_eq!(
        seen,
        vec![Seen::Failed(
            "the server refused the connection: too many connections".into()
        )]
    );
}

#[test]
fn a_greeting_of_another_protocol_fails() {
    let seen = transcript(
        &password("bob", b"pw"),
        true,
        &[b"* OK IMAP4rev1 ready\r\n"],
    );
    assert_eq!(
        seen,
        vec![Seen::Failed(
            "the greeting is not POP3: * OK IMAP4rev1 ready".into()
        )]
    );
}

#[test]
fn a_refused_stls_fails() {
    let seen = transcript(
        &password("bob", b"pw"),
        true,
        &[DOVECOT_HELLO, b"-ERR TLS support isn't enabled.\r\n"],
    );
    assert_eq!(
        seen,
        vec![
            wrote("STLS\r\n"),
            Seen::Failed("the server refused STLS: TLS support isn't enabled.".into()),
        ]
    );
}

#[test]
fn bytes_after_the_stls_reply_are_discarded() {
    // Whole replies only: fed byte by byte, the tail would arrive after the handshake.
    let seen = run(
        &password("bob", b"pw"),
        true,
        &[
            DOVECOT_HELLO,
            b"+OK Begin TLS negotiation now.\r\n+OK\r\nSASL FAKE\r\n.\r\n",
            DOVECOT_CAPA,
        ],
        usize::MAX,
    );
    assert_eq!(
        seen,
        vec![
            wrote("STLS\r\n"),
            Seen::StartTls,
            wrote("CAPA\r\n"),
            wrote(PLAIN_BOB)
        ]
    );
}

#[test]
fn odd_replies_fail_with_a_reason() {
    let cases: [(&[&[u8]], &str); 4] = [
        (
            &[b"+OK\r\n", b"garbage\r\n"],
            "unexpected reply to CAPA: garbage",
        ),
        (
            &[b"+OK\r\n", b"-ERR\r\n", b"+ more?\r\n"],
            "unexpected reply to USER: + more?",
        ),
        (
            &[DOVECOT_HELLO, DOVECOT_CAPA, b"+ \r\n"],
            "unexpected reply to AUTH PLAIN: + ",
        ),
        (
            &[b"+OK\r\n", b"-ERR\r\n", b"+OK\r\n", b"what\r\n"],
            "unexpected reply to PASS: what",
        ),
    ];
    for (replies, reason) in cases {
        let seen = transcript(&password("bob", b"pw"), false, replies);
        assert_eq!(seen.last(), Some(&Seen::Failed(reason.into())));
    }
}

#[test]
fn an_overlong_line_fails() {
    let mut login = UpstreamLogin::new(password("bob", b"pw"), false);
    login.feed(&vec![b'+'; MAX_LINE]);
    assert_eq!(
        login.next(),
        UpstreamStep::Failed {
            reason: "the server sent a line longer than 65536 bytes".into()
        }
    );
}

#[test]
fn the_outcome_repeats_but_the_leftover_is_handed_over_once() {
    let mut login = UpstreamLogin::new(password("bob", b"pw"), false);
    login.feed(DOVECOT_HELLO);
    login.feed(DOVECOT_CAPA);
    assert_eq!(login.next(), UpstreamStep::Write(b"CAPA\r\n".to_vec()));
    assert_eq!(login.next(), UpstreamStep::Write(PLAIN_BOB.into()));
    login.feed(b"+OK Logged in.\r\nrest");
    let first = UpstreamStep::Authenticated {
        text: "Logged in.".into(),
        leftover: b"rest".to_vec(),
    };
    assert_eq!(login.next(), first);
    login.feed(b"more");
    assert_eq!(
        login.next(),
        UpstreamStep::Authenticated {
            text: "Logged in.".into(),
            leftover: Vec::new()
        }
    );
}

#[test]
fn debug_output_never_shows_the_password() {
    let mut login = UpstreamLogin::new(password("bob", b"hunter2"), false);
    login.feed(b"+OK\r\n-ERR\r\n");
    let mut shown = format!("{login:?}");
    while !matches!(login.next(), UpstreamStep::NeedInput) {
        shown.push_str(&format!("{login:?}"));
    }
    assert!(shown.contains("UserReply"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    // Nor as a list of byte values ("hun").
    assert!(!shown.contains("104, 117, 110"), "{shown}");
}

#[test]
fn debug_output_never_shows_a_pending_plain_response() {
    let long = "x".repeat(255);
    let mut login = UpstreamLogin::new(password(&long, b"hunter2"), false);
    login.feed(DOVECOT_HELLO);
    login.feed(DOVECOT_CAPA);
    while !matches!(login.next(), UpstreamStep::NeedInput) {}
    let shown = format!("{login:?}");
    assert!(shown.contains("SaslGoAhead"), "{shown}");
    let response = encode_plain(&creds(&long, b"hunter2"));
    assert!(!shown.contains(&response[response.len() - 12..]), "{shown}");
}

/// Dovecot 2.3 with the oauth2 passdb, as it answers CAPA.
const DOVECOT_OAUTH_CAPA: &[u8] = b"+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN LOGIN XOAUTH2 OAUTHBEARER\r\n.\r\n";
/// RFC 7628 section 3.2.2's failure status, as Dovecot words it.
const INVALID_TOKEN: &str = r#"{"status":"invalid_token","schemes":"bearer","scope":"mail"}"#;

/// An access token as long as Entra ID's (a JWT of about 1.5 KB).
fn long_token() -> String {
    format!("eyJhbGciOiJSUzI1NiJ9.{}.c2ln", "eyJzdWIi".repeat(180))
}

fn token(mechanism: BearerMechanism, token: &str) -> UpstreamAuth {
    UpstreamAuth::Bearer(bearer("alice@example.com", token, mechanism))
}

/// The raw SASL message, written out by hand from the XOAUTH2 and RFC 7628 formats.
fn message(mechanism: BearerMechanism, token: &str) -> Vec<u8> {
    let head = match mechanism {
        XOAuth2 => "user=alice@example.com",
        OAuthBearer => "n,a=alice@example.com,",
    };
    format!("{head}\x01auth=Bearer {token}\x01\x01").into_bytes()
}

fn token_refused(text: &str, oauth_error: Option<&str>) -> Seen {
    Seen::TokenRefused {
        text: text.into(),
        oauth_error: oauth_error.map(Into::into),
    }
}

#[test]
fn a_long_token_goes_on_its_own_line_after_the_go_ahead() {
    for mechanism in [XOAuth2, OAuthBearer] {
        let long = long_token();
        let seen = transcript(
            &token(mechanism, &long),
            false,
            &[
                DOVECOT_HELLO,
                DOVECOT_OAUTH_CAPA,
                b"+ \r\n",
                b"+OK Logged in.\r\n+OK 1 messages\r\n",
            ],
        );
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert_eq!(seen[1], wrote(&format!("AUTH {}\r\n", mechanism.name())));
        let Seen::Wrote(response) = &seen[2] else {
            panic!("{seen:?}")
        };
        // One line, over the 255 octets an AUTH line with it could hold.
        assert!(response.len() > MAX_AUTH_LINE, "{}", response.len());
        assert!(response.ends_with("\r\n") && !response.contains(' '));
        assert_eq!(response.matches("\r\n").count(), 1);
        assert_eq!(decoded_response(response), message(mechanism, &long));
        assert_eq!(seen[3], authenticated("Logged in.", b"+OK 1 messages\r\n"));
    }
}

#[test]
fn a_short_token_goes_on_the_auth_line() {
    for mechanism in [XOAuth2, OAuthBearer] {
        let seen = transcript(
            &token(mechanism, "opaque-t0ken"),
            false,
            &[DOVECOT_HELLO, DOVECOT_OAUTH_CAPA, b"+OK Logged in.\r\n"],
        );
        let Seen::Wrote(command) = &seen[1] else {
            panic!("{seen:?}")
        };
        let prefix = format!("AUTH {} ", mechanism.name());
        assert!(command.starts_with(&prefix) && command.len() <= MAX_AUTH_LINE);
        assert_eq!(
            decoded_response(command),
            message(mechanism, "opaque-t0ken")
        );
        assert_eq!(seen[2], authenticated("Logged in.", b""));
    }
}

#[test]
fn exchange_with_xoauth2_after_stls() {
    let long = long_token();
    let seen = transcript(
        &token(XOAuth2, &long),
        true,
        &[
            EXCHANGE_HELLO,
            b"+OK Begin TLS negotiation.\r\n",
            EXCHANGE_CAPA,
            b"+ \r\n",
            b"+OK User successfully authenticated.\r\n",
        ],
    );
    assert_eq!(
        seen[..4],
        [
            wrote("STLS\r\n"),
            Seen::StartTls,
            wrote("CAPA\r\n"),
            wrote("AUTH XOAUTH2\r\n")
        ]
    );
    assert_eq!(
        seen[5],
        authenticated("User successfully authenticated.", b"")
    );
}

#[test]
fn a_failure_challenge_is_answered_and_its_status_kept() {
    let failure = format!("+ {}\r\n", challenge(INVALID_TOKEN));
    let err = b"-ERR [AUTH] Authentication failed.\r\n";
    // XOAUTH2 answers with an empty line, OAUTHBEARER with a lone 0x01 (base64 "AQ==").
    assert_eq!(decoded_response("AQ=="), b"\x01");
    for (mechanism, answer) in [(XOAuth2, "\r\n"), (OAuthBearer, "AQ==\r\n")] {
        let seen = transcript(
            &token(mechanism, &long_token()),
            false,
            &[
                DOVECOT_HELLO,
                DOVECOT_OAUTH_CAPA,
                b"+ \r\n",
                failure.as_bytes(),
                err,
            ],
        );
        assert_eq!(seen.len(), 5, "{seen:?}");
        assert_eq!(seen[3], wrote(answer));
        assert_eq!(
            seen[4],
            token_refused("[AUTH] Authentication failed.", Some(INVALID_TOKEN))
        );
    }
    // With the response on the AUTH line.
    let seen = transcript(
        &token(OAuthBearer, "short"),
        false,
        &[DOVECOT_HELLO, DOVECOT_OAUTH_CAPA, failure.as_bytes(), err],
    );
    assert_eq!(seen[2], wrote("AQ==\r\n"));
    assert_eq!(
        seen[3],
        token_refused("[AUTH] Authentication failed.", Some(INVALID_TOKEN))
    );
}

#[test]
fn refusals_without_a_challenge_are_still_the_tokens() {
    let err = b"-ERR [AUTH] Authentication failed.\r\n";
    let refused = token_refused("[AUTH] Authentication failed.", None);
    // Before the go-ahead, and after the response.
    let seen = transcript(
        &token(XOAuth2, &long_token()),
        false,
        &[DOVECOT_HELLO, DOVECOT_OAUTH_CAPA, err],
    );
    assert_eq!(seen[2], refused);
    let seen = transcript(
        &token(XOAuth2, &long_token()),
        false,
        &[DOVECOT_HELLO, DOVECOT_OAUTH_CAPA, b"+ \r\n", err],
    );
    assert_eq!(seen[3], refused);
}

#[test]
fn a_token_needs_its_mechanism_listed() {
    let seen = transcript(
        &token(OAuthBearer, "t"),
        false,
        &[EXCHANGE_HELLO, EXCHANGE_CAPA],
    );
    assert_eq!(
        seen[1],
        Seen::Failed("the server does not offer SASL OAUTHBEARER".into())
    );
    let seen = transcript(
        &token(XOAuth2, "t"),
        false,
        &[b"+OK\r\n", b"-ERR unknown command\r\n"],
    );
    assert_eq!(
        seen[1],
        Seen::Failed("the server does not offer SASL XOAUTH2".into())
    );
}

#[test]
fn challenges_are_bounded_and_answered_once() {
    let over_cap = format!(
        "+ {}\r\n",
        "A".repeat(crate::sasl::MAX_FAILURE_CHALLENGE + 1)
    );
    let seen = transcript(
        &token(XOAuth2, "t"),
        false,
        &[DOVECOT_HELLO, DOVECOT_OAUTH_CAPA, over_cap.as_bytes()],
    );
    assert_eq!(
        seen[2],
        Seen::Failed("the server sent a SASL challenge over 4096 bytes".into())
    );
    let seen = transcript(
        &token(XOAuth2, "t"),
        false,
        &[
            DOVECOT_HELLO,
            DOVECOT_OAUTH_CAPA,
            b"+ e30=\r\n",
            b"+ e30=\r\n",
        ],
    );
    assert_eq!(
        seen[2..],
        [
            wrote("\r\n"),
            Seen::Failed(
                "unexpected reply to the answer to a SASL failure challenge: + e30=".into()
            )
        ]
    );
}

#[test]
fn the_capa_reply_is_capped_in_lines_and_bytes() {
    let capa = |lines: usize| {
        let mut capa = b"+OK\r\n".to_vec();
        capa.extend(b"X-CHATTER\r\n".repeat(lines));
        capa.extend_from_slice(b"SASL XOAUTH2\r\n.\r\n");
        capa
    };
    // +OK, the lines, SASL and the dot: 1,000 lines in all are fine, 1,001 are not.
    let at_cap = capa(crate::line::MAX_REPLY_LINES - 3);
    let seen = transcript(&token(XOAuth2, "t"), false, &[DOVECOT_HELLO, &at_cap]);
    assert!(
        matches!(&seen[1], Seen::Wrote(w) if w.starts_with("AUTH XOAUTH2 ")),
        "{seen:?}"
    );
    let over_cap = capa(crate::line::MAX_REPLY_LINES - 2);
    let seen = transcript(&token(XOAuth2, "t"), false, &[DOVECOT_HELLO, &over_cap]);
    assert_eq!(
        seen[1],
        Seen::Failed("the server sent more than 1000 lines in one reply".into())
    );
    let mut long_line = vec![b'X'; 40 * 1024];
    long_line.extend_from_slice(b"\r\n");
    let heavy = [&b"+OK\r\n"[..], &long_line, &long_line, b".\r\n"].concat();
    let seen = run(&token(XOAuth2, "t"), false, &[DOVECOT_HELLO, &heavy], 4096);
    assert_eq!(
        seen[1],
        Seen::Failed("the server sent more than 65536 bytes in one reply".into())
    );
}

#[test]
fn debug_output_never_shows_a_token() {
    let long = long_token();
    let auth = token(XOAuth2, &long);
    let mut login = UpstreamLogin::new(auth.clone(), false);
    let mut shown = format!("{auth:?}");
    let failure = format!("+ {}\r\n", challenge(INVALID_TOKEN));
    for reply in [
        DOVECOT_HELLO,
        DOVECOT_OAUTH_CAPA,
        b"+ \r\n",
        failure.as_bytes(),
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
    login.feed(b"-ERR [AUTH] Authentication failed.\r\n");
    let step = login.next();
    assert!(
        matches!(step, UpstreamStep::TokenRefused { .. }),
        "{step:?}"
    );
    shown.push_str(&format!("{step:?} {login:?}"));
    assert!(
        shown.contains("SaslReply") && shown.contains("invalid_token"),
        "{shown}"
    );
    let response = crate::sasl::encode_bearer(&bearer("alice@example.com", &long, XOAuth2));
    for secret in [&long[..], "eyJzdWIi", &response[response.len() - 16..]] {
        assert!(!shown.contains(secret), "{shown}");
    }
}
