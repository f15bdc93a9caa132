//! Upstream logins against Dovecot- and Exchange-shaped transcripts. Each runs fed reply by
//! reply and in pieces down to single bytes (see `testing`), and every run must see the same
//! steps.

use super::*;
use crate::testing::{self, authenticated, creds, wrote, UpstreamSeen as Seen};

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
    let UpstreamAuth::Password(credentials) = &auth;
    let response = format!("{}\r\n", encode_plain(credentials));
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
    assert!(shown.contains("PlainChallenge"), "{shown}");
    let UpstreamAuth::Password(credentials) = password(&long, b"hunter2");
    let response = encode_plain(&credentials);
    assert!(!shown.contains(&response[response.len() - 12..]), "{shown}");
}
