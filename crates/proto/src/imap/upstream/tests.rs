//! The upstream login against Dovecot- and Exchange-shaped transcripts. Each transcript runs
//! fed all at once, in small chunks and one byte at a time (see `testing`), with the same result
//! every time.

use super::*;
use crate::sasl::encode_plain;
use crate::testing::{self, authenticated, creds, wrote, UpstreamSeen as Seen};

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
    testing::in_every_chunking(|chunk| {
        testing::run_upstream(login(password, starttls), phases, chunk)
    })
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

#[test]
fn exchange_starttls_with_capability_requests() {
    let seen = transcript(
        b"secret",
        true,
        &[
            EXCHANGE_GREETING,
            &[EXCHANGE_CAPS_PLAIN, b"m1 OK CAPABILITY completed.\r\n"].concat(),
            b"m2 OK Begin TLS negotiation now.\r\n",
            &[EXCHANGE_CAPS_TLS, b"m3 OK CAPABILITY completed.\r\n"].concat(),
            b"m4 OK AUTHENTICATE completed.\r\n",
        ],
    );
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
