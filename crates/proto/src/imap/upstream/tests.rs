//! The upstream login against Dovecot- and Exchange-shaped transcripts. Each transcript runs
//! fed all at once, in small chunks and one byte at a time (see `testing`), with the same result
//! every time.

use super::*;
use crate::sasl::encode_plain;
use crate::testing::{
    self, authenticated, bearer, challenge, creds, decoded_response, wrote, UpstreamSeen as Seen,
};
use crate::BearerMechanism::{self, OAuthBearer, XOAuth2};

const DOVECOT_GREETING: &[u8] = b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot ready.\r\n";
const DOVECOT_CAPS_AFTER_TLS: &[u8] =
    b"* CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN\r\n";
const DOVECOT_LOGGED_IN: &str = "[CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY LITERAL+ NOTIFY SPECIAL-USE] Logged in";
const EXCHANGE_GREETING: &[u8] = b"* OK The Microsoft Exchange IMAP4 service is ready. [TQBOADIAUABSADAAMQBDAEEAMAAwADEANgAuAG4AYQBtAHAAcgBkADAAMQAuAHAAcgBvAGQALgBvAHUAdABsAG8AbwBrAC4AYwBvAG0A]\r\n";
const EXCHANGE_CAPS_PLAIN: &[u8] = b"* CAPABILITY IMAP4 IMAP4rev1 LOGINDISABLED STARTTLS SASL-IR UIDPLUS MOVE ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+\r\n";
const EXCHANGE_CAPS_TLS: &[u8] = b"* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+\r\n";

fn alice(password: &[u8]) -> Credentials {
    creds("alice", password)
}

fn login(password: &[u8], starttls: bool) -> UpstreamLogin {
    UpstreamLogin::new(UpstreamAuth::Password(alice(password)), starttls)
}

/// Runs the server's `phases` in every chunking and returns the common steps.
fn transcript(password: &[u8], starttls: bool, phases: &[&[u8]]) -> Vec<Seen> {
    auth_transcript(&UpstreamAuth::Password(alice(password)), starttls, phases)
}

/// The same for any kind of login.
fn auth_transcript(auth: &UpstreamAuth, starttls: bool, phases: &[&[u8]]) -> Vec<Seen> {
    testing::in_every_chunking(|chunk| {
        testing::run_upstream(UpstreamLogin::new(auth.clone(), starttls), phases, chunk)
    })
}

/// A JWT-shaped access token; only its bytes matter here.
const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";

/// A token login to alice@example.com.
fn token_login(mechanism: BearerMechanism) -> UpstreamAuth {
    UpstreamAuth::Bearer(bearer("alice@example.com", TOKEN, mechanism))
}

/// The raw messages of RFC 7628 section 3.1 and of XOAUTH2, written out by hand.
const XOAUTH2_MESSAGE: &[u8] =
    b"user=alice@example.com\x01auth=Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl\x01\x01";
const OAUTHBEARER_MESSAGE: &[u8] =
    b"n,a=alice@example.com,\x01auth=Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl\x01\x01";

/// Dovecot 2.3 with the oauth2 passdb, as it greets.
const DOVECOT_OAUTH_GREETING: &[u8] = b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN AUTH=LOGIN AUTH=XOAUTH2 AUTH=OAUTHBEARER] Dovecot ready.\r\n";
/// Capabilities of a server that takes tokens but not SASL-IR.
const NO_SASL_IR_GREETING: &[u8] =
    b"* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2 AUTH=OAUTHBEARER] ready\r\n";
/// RFC 7628 section 3.2.2's failure status, as Dovecot words it.
const INVALID_TOKEN: &str = r#"{"status":"invalid_token","schemes":"bearer","scope":"mail"}"#;

fn token_refused(text: &str, oauth_error: Option<&str>) -> Seen {
    Seen::TokenRefused {
        text: text.into(),
        oauth_error: oauth_error.map(Into::into),
    }
}

/// Asserts that `seen` wrote the `AUTHENTICATE mechanism` command with SASL-IR, and that its
/// response decodes to `message`.
fn assert_sasl_ir(seen: &Seen, tag: &str, mechanism: &str, message: &[u8]) {
    let Seen::Wrote(command) = seen else {
        panic!("{seen:?}")
    };
    assert!(
        command.starts_with(&format!("{tag} AUTHENTICATE {mechanism} "))
            && command.ends_with("\r\n"),
        "{command}"
    );
    assert_eq!(decoded_response(command), message);
}

#[test]
fn xoauth2_and_oauthbearer_with_sasl_ir() {
    for (mechanism, message) in [
        (XOAuth2, XOAUTH2_MESSAGE),
        (OAuthBearer, OAUTHBEARER_MESSAGE),
    ] {
        let ok = b"m1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n* 1 EXISTS\r\n";
        let seen = auth_transcript(
            &token_login(mechanism),
            false,
            &[DOVECOT_OAUTH_GREETING, ok],
        );
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_sasl_ir(&seen[0], "m1", mechanism.name(), message);
        assert_eq!(
            seen[1],
            authenticated("[CAPABILITY IMAP4rev1 IDLE] Logged in", b"* 1 EXISTS\r\n")
        );
    }
}

#[test]
fn oauthbearer_escapes_the_mailbox_in_the_gs2_header() {
    let auth = UpstreamAuth::Bearer(bearer("shared,box=1@example.com", "t0k", OAuthBearer));
    let seen = auth_transcript(&auth, false, &[DOVECOT_OAUTH_GREETING]);
    assert_sasl_ir(
        &seen[0],
        "m1",
        "OAUTHBEARER",
        b"n,a=shared=2Cbox=3D1@example.com,\x01auth=Bearer t0k\x01\x01",
    );
}

#[test]
fn exchange_starttls_then_xoauth2_with_sasl_ir() {
    let seen = exchange_starttls(&token_login(XOAuth2));
    assert_eq!(
        seen[..3],
        [
            wrote("m1 CAPABILITY\r\n"),
            wrote("m2 STARTTLS\r\n"),
            Seen::StartTls
        ]
    );
    assert_eq!(seen[3], wrote("m3 CAPABILITY\r\n"));
    assert_sasl_ir(&seen[4], "m4", "XOAUTH2", XOAUTH2_MESSAGE);
    assert_eq!(seen[5], authenticated("AUTHENTICATE completed.", b""));
}

#[test]
fn without_sasl_ir_the_response_follows_the_continuation() {
    for (mechanism, message) in [
        (XOAuth2, XOAUTH2_MESSAGE),
        (OAuthBearer, OAUTHBEARER_MESSAGE),
    ] {
        let seen = auth_transcript(
            &token_login(mechanism),
            false,
            &[NO_SASL_IR_GREETING, b"+ \r\n", b"m1 OK Logged in\r\n"],
        );
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert_eq!(
            seen[0],
            wrote(&format!("m1 AUTHENTICATE {}\r\n", mechanism.name()))
        );
        let Seen::Wrote(response) = &seen[1] else {
            panic!("{seen:?}")
        };
        assert!(
            response.ends_with("\r\n") && !response.contains(' '),
            "{response}"
        );
        assert_eq!(decoded_response(response), message);
        assert_eq!(seen[2], authenticated("Logged in", b""));
    }
}

#[test]
fn a_failure_challenge_is_answered_and_its_status_kept() {
    let failure = format!("+ {}\r\n", challenge(INVALID_TOKEN));
    let no = b"m1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n";
    // XOAUTH2 answers with an empty response, OAUTHBEARER with a lone 0x01.
    assert_eq!(decoded_response("AQ=="), b"\x01");
    for (mechanism, answer) in [(XOAuth2, "\r\n"), (OAuthBearer, "AQ==\r\n")] {
        let seen = auth_transcript(
            &token_login(mechanism),
            false,
            &[DOVECOT_OAUTH_GREETING, failure.as_bytes(), no],
        );
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert_eq!(seen[1], wrote(answer));
        assert_eq!(
            seen[2],
            token_refused(
                "[AUTHENTICATIONFAILED] Authentication failed.",
                Some(INVALID_TOKEN)
            )
        );
    }
    // Without SASL-IR: the go-ahead, the response, then the failure challenge.
    let seen = auth_transcript(
        &token_login(OAuthBearer),
        false,
        &[NO_SASL_IR_GREETING, b"+\r\n", failure.as_bytes(), no],
    );
    assert_eq!(seen[2], wrote("AQ==\r\n"));
    assert_eq!(
        seen[3],
        token_refused(
            "[AUTHENTICATIONFAILED] Authentication failed.",
            Some(INVALID_TOKEN)
        )
    );
}

#[test]
fn a_refusal_without_a_challenge_is_still_the_tokens() {
    let seen = auth_transcript(
        &token_login(XOAuth2),
        false,
        &[DOVECOT_OAUTH_GREETING, b"m1 NO AUTHENTICATE failed.\r\n"],
    );
    assert_eq!(seen[1], token_refused("AUTHENTICATE failed.", None));
    // An empty challenge is answered, but says nothing.
    let seen = auth_transcript(
        &token_login(XOAuth2),
        false,
        &[DOVECOT_OAUTH_GREETING, b"+ \r\n", b"m1 NO failed\r\n"],
    );
    assert_eq!(seen[1..], [wrote("\r\n"), token_refused("failed", None)]);
}

#[test]
fn a_challenge_that_is_not_base64_is_kept_as_sent_on_one_line() {
    let seen = auth_transcript(
        &token_login(XOAuth2),
        false,
        &[
            DOVECOT_OAUTH_GREETING,
            b"+ not\tbase64!\r\n",
            b"m1 NO failed\r\n",
        ],
    );
    assert_eq!(seen[2], token_refused("failed", Some("not base64!")));
    // Control characters inside the decoded JSON become spaces.
    let sneaky = format!("+ {}\r\n", challenge("{\"status\":\"x\r\ny\"}"));
    let seen = auth_transcript(
        &token_login(XOAuth2),
        false,
        &[
            DOVECOT_OAUTH_GREETING,
            sneaky.as_bytes(),
            b"m1 NO failed\r\n",
        ],
    );
    assert_eq!(
        seen[2],
        token_refused("failed", Some("{\"status\":\"x  y\"}"))
    );
}

#[test]
fn challenges_are_bounded_and_answered_once() {
    let at_cap = format!("+ {}\r\n", "A".repeat(crate::sasl::MAX_FAILURE_CHALLENGE));
    let over_cap = format!(
        "+ {}\r\n",
        "A".repeat(crate::sasl::MAX_FAILURE_CHALLENGE + 1)
    );
    let seen = auth_transcript(
        &token_login(XOAuth2),
        false,
        &[DOVECOT_OAUTH_GREETING, at_cap.as_bytes()],
    );
    assert_eq!(seen[1], wrote("\r\n"));
    let seen = auth_transcript(
        &token_login(XOAuth2),
        false,
        &[DOVECOT_OAUTH_GREETING, over_cap.as_bytes()],
    );
    assert_eq!(
        seen[1],
        failed("the upstream sent a SASL challenge over 4096 bytes")
    );
    let again = format!("+ {}\r\n", challenge(INVALID_TOKEN));
    let seen = auth_transcript(
        &token_login(OAuthBearer),
        false,
        &[DOVECOT_OAUTH_GREETING, again.as_bytes(), again.as_bytes()],
    );
    assert_eq!(
        seen[1..],
        [
            wrote("AQ==\r\n"),
            failed("the upstream kept asking for more authentication data")
        ]
    );
}

#[test]
fn a_token_needs_its_mechanism_advertised() {
    for (mechanism, reason) in [
        (XOAuth2, "the upstream does not offer AUTH=XOAUTH2"),
        (OAuthBearer, "the upstream does not offer AUTH=OAUTHBEARER"),
    ] {
        let seen = auth_transcript(&token_login(mechanism), false, &[DOVECOT_GREETING]);
        assert_eq!(seen, vec![failed(reason)]);
    }
    // Exchange before TLS offers no AUTH= at all; after TLS it lists XOAUTH2 only.
    let seen = auth_transcript(
        &token_login(OAuthBearer),
        false,
        &[
            EXCHANGE_GREETING,
            &[EXCHANGE_CAPS_TLS, b"m1 OK CAPABILITY completed.\r\n"].concat(),
        ],
    );
    assert_eq!(
        seen,
        vec![
            wrote("m1 CAPABILITY\r\n"),
            failed("the upstream does not offer AUTH=OAUTHBEARER")
        ]
    );
}

#[test]
fn the_capability_reply_is_capped_in_lines() {
    let reply = |untagged: usize| {
        let mut reply = b"* CAPABILITY IMAP4rev1 X-CHATTER\r\n".repeat(untagged);
        reply.extend_from_slice(b"m1 OK done\r\n");
        reply
    };
    // The tagged line counts too: 999 untagged lines and it make the cap of 1,000.
    let at_cap = reply(crate::line::MAX_REPLY_LINES - 1);
    let seen = auth_transcript(&token_login(XOAuth2), false, &[b"* OK ready\r\n", &at_cap]);
    assert_eq!(seen[1], failed("the upstream does not offer AUTH=XOAUTH2"));
    let over_cap = reply(crate::line::MAX_REPLY_LINES);
    let seen = auth_transcript(
        &token_login(XOAuth2),
        false,
        &[b"* OK ready\r\n", &over_cap],
    );
    assert_eq!(
        seen[1],
        failed("the upstream sent more than 1000 lines in one reply")
    );
}

#[test]
fn the_capability_reply_is_capped_in_bytes() {
    // Two lines of 40 KiB each are within the line cap but over the reply's 64 KiB.
    let mut line = b"* CAPABILITY IMAP4rev1".to_vec();
    while line.len() < 40 * 1024 {
        line.extend_from_slice(b" X-FILLER");
    }
    line.extend_from_slice(b"\r\n");
    let reply = [&line[..], &line[..], b"m1 OK done\r\n"].concat();
    let seen = testing::run_upstream(login(b"secret", false), &[b"* OK ready\r\n", &reply], 4096);
    assert_eq!(
        seen,
        vec![
            wrote("m1 CAPABILITY\r\n"),
            failed("the upstream sent more than 65536 bytes in one reply")
        ]
    );
    // One such line is within the cap.
    let one = [&line[..], b"m1 OK done\r\n"].concat();
    let seen = testing::run_upstream(login(b"secret", false), &[b"* OK ready\r\n", &one], 4096);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1], wrote("m2 LOGIN {5}\r\n"));
}

#[test]
fn tokens_stay_out_of_debug_output() {
    let auth = token_login(XOAuth2);
    let mut machine = UpstreamLogin::new(auth.clone(), false);
    let mut shown = format!("{auth:?} {machine:?}");
    machine.feed(NO_SASL_IR_GREETING);
    machine.feed(b"+ \r\n");
    let failure = format!("+ {}\r\n", challenge(INVALID_TOKEN));
    machine.feed(failure.as_bytes());
    machine.feed(b"m1 NO failed\r\n");
    loop {
        let step = machine.next();
        shown.push_str(&format!("{step:?} {machine:?}"));
        if !matches!(step, UpstreamStep::Write(_)) {
            assert!(
                matches!(step, UpstreamStep::TokenRefused { .. }),
                "{step:?}"
            );
            break;
        }
    }
    let response = crate::sasl::encode_bearer(&bearer("alice@example.com", TOKEN, XOAuth2));
    for secret in [TOKEN, "c2lnbmF0dXJl", &response[response.len() - 16..]] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(shown.contains("invalid_token"), "{shown}");
}

fn plain_ir(tag: &str, password: &[u8]) -> Seen {
    Seen::Wrote(format!(
        "{tag} AUTHENTICATE PLAIN {}\r\n",
        encode_plain(&alice(password))
    ))
}

fn failed(reason: &str) -> Seen {
    Seen::Failed(reason.into())
}

#[test]
fn dovecot_implicit_tls_with_sasl_ir() {
    let ok = format!("m1 OK {DOVECOT_LOGGED_IN}\r\n* 3 EXISTS\r\n");
    let seen = transcript(b"secret", false, &[DOVECOT_GREETING, ok.as_bytes()]);
    assert_eq!(
        seen,
        vec![
            plain_ir("m1", b"secret"),
            authenticated(DOVECOT_LOGGED_IN, b"* 3 EXISTS\r\n"),
        ]
    );
}

#[test]
fn dovecot_starttls_then_rejected() {
    let seen = transcript(
        b"wrong",
        true,
        &[
            DOVECOT_GREETING,
            b"m1 OK Begin TLS negotiation now.\r\n",
            &[
                DOVECOT_CAPS_AFTER_TLS,
                b"m2 OK Pre-login capabilities listed, post-login capabilities have more.\r\n",
            ]
            .concat(),
            b"m3 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
        ],
    );
    assert_eq!(
        seen,
        vec![
            wrote("m1 STARTTLS\r\n"),
            Seen::StartTls,
            wrote("m2 CAPABILITY\r\n"),
            plain_ir("m3", b"wrong"),
            Seen::Rejected("[AUTHENTICATIONFAILED] Authentication failed.".into()),
        ]
    );
}

#[test]
fn dovecot_logindisabled_before_tls() {
    let greeting = b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED] Dovecot ready.\r\n";
    let seen = transcript(
        b"secret",
        true,
        &[
            greeting,
            b"m1 OK Begin TLS negotiation now.\r\n",
            &[
                DOVECOT_CAPS_AFTER_TLS,
                b"m2 OK Pre-login capabilities listed.\r\n",
            ]
            .concat(),
            b"m3 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n",
        ],
    );
    assert_eq!(
        seen.last(),
        Some(&authenticated("[CAPABILITY IMAP4rev1 IDLE] Logged in", b""))
    );
}

/// Exchange with STARTTLS: capabilities asked before and after TLS, then a login that works.
fn exchange_starttls(auth: &UpstreamAuth) -> Vec<Seen> {
    auth_transcript(
        auth,
        true,
        &[
            EXCHANGE_GREETING,
            &[EXCHANGE_CAPS_PLAIN, b"m1 OK CAPABILITY completed.\r\n"].concat(),
            b"m2 OK Begin TLS negotiation now.\r\n",
            &[EXCHANGE_CAPS_TLS, b"m3 OK CAPABILITY completed.\r\n"].concat(),
            b"m4 OK AUTHENTICATE completed.\r\n",
        ],
    )
}

#[test]
fn exchange_starttls_with_capability_requests() {
    let seen = exchange_starttls(&UpstreamAuth::Password(alice(b"secret")));
    assert_eq!(
        seen,
        vec![
            wrote("m1 CAPABILITY\r\n"),
            wrote("m2 STARTTLS\r\n"),
            Seen::StartTls,
            wrote("m3 CAPABILITY\r\n"),
            plain_ir("m4", b"secret"),
            authenticated("AUTHENTICATE completed.", b""),
        ]
    );
}

#[test]
fn exchange_implicit_tls_with_split_capabilities_and_chatter() {
    let seen = transcript(
        b"secret",
        false,
        &[
            EXCHANGE_GREETING,
            b"* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2\r\n\
              * OK [ALERT] Maintenance tonight\r\n\
              * CAPABILITY SASL-IR UIDPLUS LITERAL+\r\n\
              m1 OK CAPABILITY completed.\r\n",
            b"* ENABLED\r\nm2 OK AUTHENTICATE completed.\r\n",
        ],
    );
    assert_eq!(
        seen,
        vec![
            wrote("m1 CAPABILITY\r\n"),
            plain_ir("m2", b"secret"),
            authenticated("AUTHENTICATE completed.", b""),
        ]
    );
}

#[test]
fn capabilities_in_the_capability_reply_code_count_too() {
    let seen = transcript(
        b"secret",
        false,
        &[
            b"* OK ready\r\n",
            b"m1 OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] done\r\n",
            b"m2 OK done\r\n",
        ],
    );
    assert_eq!(seen[1], plain_ir("m2", b"secret"));
}

#[test]
fn plain_without_sasl_ir_waits_for_the_continuation() {
    let seen = transcript(
        b"secret",
        false,
        &[
            b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n",
            b"+ \r\n",
            b"m1 OK Logged in\r\n",
        ],
    );
    assert_eq!(
        seen,
        vec![
            wrote("m1 AUTHENTICATE PLAIN\r\n"),
            Seen::Wrote(format!("{}\r\n", encode_plain(&alice(b"secret")))),
            authenticated("Logged in", b""),
        ]
    );
}

#[test]
fn login_with_literals_keeps_every_byte() {
    let password = "pa ss\"\\{1}\r\nö".as_bytes();
    let seen = transcript(
        password,
        false,
        &[
            b"* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n",
            b"+ Ready for literal data\r\n",
            b"+ OK\r\n",
            b"m1 OK LOGIN completed\r\n",
        ],
    );
    assert_eq!(
        seen,
        vec![
            wrote("m1 LOGIN {5}\r\n"),
            wrote("alice {14}\r\n"),
            Seen::Wrote(String::from_utf8([password, b"\r\n"].concat()).unwrap()),
            authenticated("LOGIN completed", b""),
        ]
    );
}

#[test]
fn login_refused_mid_literal_is_a_rejection() {
    let seen = transcript(
        b"secret",
        false,
        &[
            b"* OK [CAPABILITY IMAP4rev1] ready\r\n",
            b"m1 BAD Literal too big\r\n",
        ],
    );
    assert_eq!(seen.last(), Some(&Seen::Rejected("Literal too big".into())));
}

#[test]
fn challenge_after_plain_gets_one_empty_answer() {
    let challenge = b"+ eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIn0=\r\n";
    let seen = transcript(
        b"secret",
        false,
        &[
            b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready\r\n",
            challenge,
            b"m1 NO AUTHENTICATE failed.\r\n",
        ],
    );
    assert_eq!(
        seen,
        vec![
            plain_ir("m1", b"secret"),
            wrote("\r\n"),
            Seen::Rejected("AUTHENTICATE failed.".into()),
        ]
    );
    let seen = transcript(
        b"secret",
        false,
        &[
            b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n",
            b"+\r\n",
            challenge,
            challenge,
        ],
    );
    assert_eq!(
        seen[2..],
        [
            wrote("\r\n"),
            failed("the upstream kept asking for more authentication data")
        ]
    );
}

#[test]
fn greetings_that_end_the_login() {
    for (greeting, reason) in [
        (
            &b"* PREAUTH [CAPABILITY IMAP4rev1] Logged in as alice\r\n"[..],
            "the upstream greeted with PREAUTH, so it would not check the login",
        ),
        (
            b"* BYE Too many connections\r\n",
            "the upstream refused the connection: Too many connections",
        ),
        (
            b"* NO go away\r\n",
            "the upstream's greeting is not an IMAP greeting",
        ),
        (
            b"SSH-2.0-OpenSSH_9.6\r\n",
            "the upstream sent a line that is not an IMAP response",
        ),
    ] {
        assert_eq!(
            transcript(b"secret", false, &[greeting]),
            vec![failed(reason)]
        );
    }
}

#[test]
fn starttls_that_cannot_happen() {
    let seen = transcript(
        b"secret",
        true,
        &[b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n"],
    );
    assert_eq!(seen, vec![failed("the upstream does not offer STARTTLS")]);
    let seen = transcript(
        b"secret",
        true,
        &[DOVECOT_GREETING, b"m1 NO TLS unavailable\r\n"],
    );
    assert_eq!(
        seen[1],
        failed("the upstream refused STARTTLS: TLS unavailable")
    );
}

#[test]
fn no_way_to_log_in() {
    let seen = transcript(
        b"secret",
        false,
        &[b"* OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=GSSAPI] ready\r\n"],
    );
    assert_eq!(
        seen,
        vec![failed(
            "the upstream offers neither AUTH=PLAIN nor LOGIN (LOGINDISABLED)"
        )]
    );
}

#[test]
fn protocol_violations_fail() {
    let greeting = b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready\r\n";
    for (reply, reason) in [
        (
            &b"m7 OK Logged in\r\n"[..],
            "the upstream replied with a tag that was not sent",
        ),
        (
            b"* BYE Shutting down\r\n",
            "the upstream closed the session: Shutting down",
        ),
        (
            b"m1 PREAUTH what\r\n",
            "the upstream sent a line that is not an IMAP response",
        ),
    ] {
        let seen = transcript(b"secret", false, &[greeting, reply]);
        assert_eq!(seen[1], failed(reason));
    }
    let seen = transcript(b"secret", false, &[b"* OK ready\r\n", b"+ go on\r\n"]);
    assert_eq!(
        seen[1],
        failed("the upstream sent an unexpected continuation request")
    );
    let seen = transcript(b"secret", false, &[b"* OK ready\r\n", b"m1 NO no\r\n"]);
    assert_eq!(seen[1], failed("the upstream refused CAPABILITY: no"));
}

#[test]
fn long_lines_fail() {
    let mut line = b"* OK ".to_vec();
    line.resize(MAX_LINE, b'x');
    let seen = testing::run_upstream(login(b"secret", false), &[&line], usize::MAX);
    assert_eq!(
        seen,
        vec![failed("the upstream sent a line over 65536 bytes")]
    );
    // A line of exactly the limit is fine.
    line.truncate(MAX_LINE - 2);
    line.extend_from_slice(b"\r\n");
    let seen = testing::run_upstream(login(b"secret", false), &[&line], usize::MAX);
    assert_eq!(seen, vec![wrote("m1 CAPABILITY\r\n")]);
}

#[test]
fn bytes_after_the_starttls_reply_are_dropped() {
    let injected = [
        &b"m1 OK Begin TLS negotiation now.\r\n"[..],
        b"* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR\r\nm2 OK done\r\n",
    ]
    .concat();
    let seen = testing::run_upstream(
        login(b"secret", true),
        &[DOVECOT_GREETING, &injected],
        usize::MAX,
    );
    assert_eq!(
        seen,
        vec![
            wrote("m1 STARTTLS\r\n"),
            Seen::StartTls,
            wrote("m2 CAPABILITY\r\n")
        ]
    );
}

#[test]
fn finished_machines_stay_finished() {
    let mut machine = login(b"secret", false);
    machine.feed(b"* BYE busy\r\n");
    let failure = UpstreamStep::Failed {
        reason: "the upstream refused the connection: busy".into(),
    };
    assert_eq!(machine.next(), failure);
    assert_eq!(machine.next(), failure);
    let mut machine = login(b"secret", false);
    machine.feed(DOVECOT_GREETING);
    machine.next();
    machine.feed(b"m1 OK Logged in\r\n");
    assert!(matches!(machine.next(), UpstreamStep::Authenticated { .. }));
    assert!(matches!(machine.next(), UpstreamStep::Failed { .. }));
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let mut machine = login(b"hunter2", false);
    machine.feed(b"* OK [CAPABILITY IMAP4rev1] ready\r\n");
    let step = machine.next();
    assert!(!format!("{machine:?} {step:?}").contains("hunter2"));
    machine.feed(b"+ \r\n");
    let user = machine.next();
    machine.feed(b"+ \r\n");
    let password = machine.next();
    assert_eq!(password, UpstreamStep::Write(b"hunter2\r\n".to_vec()));
    let debug = format!("{machine:?} {user:?} {password:?}");
    assert!(!debug.contains("hunter2") && !debug.contains("104, 117, 110"));
    assert_eq!(format!("{password:?}"), "Write(<9 bytes>)");
}
