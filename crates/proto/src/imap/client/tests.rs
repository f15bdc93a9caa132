//! Scripted client dialogues. Each script runs fed all at once, in small chunks and one byte
//! at a time (see `testing`), and must give the same transcript every time.

use super::*;
use crate::testing::{self, creds, options, Verdict};
use crate::Limits;

const AUTH_CAPS: &str = "IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN AUTH=LOGIN";
const STARTTLS_CAPS: &str = "IMAP4rev1 SASL-IR LITERAL+ ID STARTTLS LOGINDISABLED";

fn limited(tls: ClientTls, max_line: usize, max_literal: usize) -> DialogueOptions {
    DialogueOptions {
        limits: Limits {
            max_line,
            max_literal,
        },
        ..options(tls)
    }
}

/// What the client saw, and what the machine asked the gateway to do.
#[derive(Debug, PartialEq)]
struct Transcript {
    /// Every byte written to the client, `login_accepted`'s reply included.
    output: String,
    /// Everything but writes, in order (`tls_started` is called at once on `StartTls`).
    events: Vec<ClientStep>,
    /// `login_accepted`'s bytes for the upstream, if a login was accepted.
    to_upstream: Option<Vec<u8>>,
}

fn run(
    options: DialogueOptions,
    phases: &[&[u8]],
    verdicts: &[Verdict],
    chunk: usize,
) -> Transcript {
    let run = testing::run_client(ClientSession::new(options), phases, verdicts, chunk);
    let mut output = Vec::new();
    let mut events = Vec::new();
    for step in run.steps {
        match step {
            ClientStep::Write(bytes) => output.extend(bytes),
            other => events.push(other),
        }
    }
    let to_upstream = run.accepted.map(|handover| {
        output.extend(handover.to_client);
        handover.to_upstream
    });
    Transcript {
        output: String::from_utf8(output).expect("replies are UTF-8"),
        events,
        to_upstream,
    }
}

/// Runs a script in every chunking and checks they agree. A phase ends where a real client
/// would wait for the server (after STARTTLS, the next phase runs over TLS).
fn dialogue(options: DialogueOptions, phases: &[&[u8]], verdicts: &[Verdict]) -> Transcript {
    testing::in_every_chunking(|chunk| run(options.clone(), phases, verdicts, chunk))
}

fn greeting(caps: &str) -> String {
    format!("* OK [CAPABILITY {caps}] mailtls ready\r\n")
}

fn logged_in(credentials: Credentials) -> Vec<ClientStep> {
    vec![ClientStep::Login(credentials)]
}

#[test]
fn greets_with_capabilities_for_the_listener() {
    for (tls, caps) in [
        (ClientTls::Active, AUTH_CAPS),
        (ClientTls::None, AUTH_CAPS),
        (ClientTls::StartTlsRequired, STARTTLS_CAPS),
    ] {
        let t = dialogue(options(tls), &[], &[]);
        assert_eq!(t.output, greeting(caps));
    }
    let mut blank = options(ClientTls::Active);
    blank.greeting = "\r\n".into();
    let t = dialogue(blank, &[b"a LOGOUT\r\n"], &[]);
    assert!(t.output.starts_with(
        "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN AUTH=LOGIN] IMAP4rev1 gateway ready\r\n"
    ));
}

#[test]
fn answers_capability_noop_and_logout_in_any_case() {
    let t = dialogue(
        options(ClientTls::Active),
        &[b"a CAPABILITY\r\nb noop\r\nC1 NoOp\r\nd LogOut\r\ne NOOP\r\n"],
        &[],
    );
    let expected = greeting(AUTH_CAPS)
        + &format!("* CAPABILITY {AUTH_CAPS}\r\na OK CAPABILITY completed\r\n")
        + "b OK NOOP completed\r\nC1 OK NOOP completed\r\n"
        + "* BYE Logging out\r\nd OK LOGOUT completed\r\n";
    assert_eq!(t.output, expected);
    assert_eq!(t.events, vec![ClientStep::Close(Ending::ClientQuit)]);
}

#[test]
fn keeps_returning_close_after_closing() {
    let mut session = ClientSession::new(options(ClientTls::Active));
    session.next();
    session.feed(b"a LOGOUT\r\n");
    assert!(matches!(session.next(), ClientStep::Write(_)));
    assert_eq!(session.next(), ClientStep::Close(Ending::ClientQuit));
    session.feed(b"b NOOP\r\n");
    assert_eq!(session.next(), ClientStep::Close(Ending::ClientQuit));
}

#[test]
fn starttls_then_login() {
    let t = dialogue(
        options(ClientTls::StartTlsRequired),
        &[
            b"a CAPABILITY\r\nb STARTTLS\r\n",
            b"c CAPABILITY\r\nd STARTTLS\r\ne LOGIN alice secret\r\n",
        ],
        &[Verdict::Accept("[CAPABILITY IMAP4rev1 IDLE] Logged in")],
    );
    let expected = greeting(STARTTLS_CAPS)
        + &format!("* CAPABILITY {STARTTLS_CAPS}\r\na OK CAPABILITY completed\r\n")
        + "b OK Begin TLS negotiation now\r\n"
        + &format!("* CAPABILITY {AUTH_CAPS}\r\nc OK CAPABILITY completed\r\n")
        + "d BAD TLS is already active\r\n"
        + "e OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n";
    assert_eq!(t.output, expected);
    assert_eq!(
        t.events,
        vec![
            ClientStep::StartTls,
            ClientStep::Login(creds("alice", b"secret"))
        ]
    );
    assert_eq!(t.to_upstream, Some(vec![]));
}

#[test]
fn starttls_discards_pipelined_bytes() {
    // One read holds STARTTLS and more: only then is there anything to discard.
    let t = run(
        options(ClientTls::StartTlsRequired),
        &[
            b"a STARTTLS\r\nb LOGIN evil injected\r\nc NOOP\r\n",
            b"d NOOP\r\n",
        ],
        &[],
        usize::MAX,
    );
    let expected =
        greeting(STARTTLS_CAPS) + "a OK Begin TLS negotiation now\r\n" + "d OK NOOP completed\r\n";
    assert_eq!(t.output, expected);
    assert_eq!(t.events, vec![ClientStep::StartTls]);
}

#[test]
fn bytes_fed_during_the_handshake_are_dropped() {
    let mut session = ClientSession::new(options(ClientTls::StartTlsRequired));
    session.next();
    session.feed(b"a STARTTLS\r\n");
    session.next();
    assert_eq!(session.next(), ClientStep::StartTls);
    session.feed(b"b LOGIN evil injected\r\n");
    assert_eq!(session.next(), ClientStep::NeedInput);
    session.tls_started();
    assert_eq!(session.next(), ClientStep::NeedInput);
}

#[test]
fn starttls_is_refused_where_not_offered() {
    let t = dialogue(options(ClientTls::None), &[b"a STARTTLS\r\n"], &[]);
    assert!(t
        .output
        .ends_with("a BAD STARTTLS is not offered on this port\r\n"));
    let t = dialogue(options(ClientTls::Active), &[b"a starttls\r\n"], &[]);
    assert!(t.output.ends_with("a BAD TLS is already active\r\n"));
    assert!(t.events.is_empty());
}

#[test]
fn login_needs_tls_first() {
    let plain_ir = b"c AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n";
    let t = dialogue(
        options(ClientTls::StartTlsRequired),
        &[
            b"a LOGIN alice secret\r\nb AUTHENTICATE PLAIN\r\n",
            plain_ir,
        ],
        &[],
    );
    let expected = greeting(STARTTLS_CAPS)
        + "a NO [PRIVACYREQUIRED] Run STARTTLS first\r\n"
        + "b NO [PRIVACYREQUIRED] Run STARTTLS first\r\n"
        + "c NO [PRIVACYREQUIRED] Run STARTTLS first\r\n";
    assert_eq!(t.output, expected);
    assert!(t.events.is_empty());
}

#[test]
fn plaintext_listener_allows_login() {
    let t = dialogue(
        options(ClientTls::None),
        &[b"a LOGIN alice secret\r\n"],
        &[Verdict::Accept("Logged in")],
    );
    assert_eq!(t.events, logged_in(creds("alice", b"secret")));
}

#[test]
fn reads_every_login_form() {
    let cases: &[(&[u8], &str, &[u8], &str)] = &[
        (b"a LOGIN alice secret\r\n", "alice", b"secret", ""),
        (
            b"a login ALICE s3cr3t!#$&'-./:;<=>?@[^_`|~\r\n",
            "ALICE",
            b"s3cr3t!#$&'-./:;<=>?@[^_`|~",
            "",
        ),
        (
            b"a LOGIN \"alice\" \"pass word\"\r\n",
            "alice",
            b"pass word",
            "",
        ),
        (
            b"a LOGIN \"al ice\" \"q\\\"uo\\\\te\"\r\n",
            "al ice",
            b"q\"uo\\te",
            "",
        ),
        (b"a LOGIN \"\" \"\"\r\n", "", b"", ""),
        (
            b"a LOGIN {5}\r\nalice {6}\r\nsecret\r\n",
            "alice",
            b"secret",
            "+ Ready for literal data\r\n+ Ready for literal data\r\n",
        ),
        (
            b"a LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n",
            "alice",
            b"secret",
            "",
        ),
        (
            b"a LOGIN alice {12}\r\n s \"q\" \\ {1}\r\n",
            "alice",
            b" s \"q\" \\ {1}",
            "+ Ready for literal data\r\n",
        ),
        (
            b"a LOGIN {5+}\r\nalice \"mixed form\"\r\n",
            "alice",
            b"mixed form",
            "",
        ),
        (
            b"a LOGIN \"alice\" {4}\r\n\r\n\r\n\r\n",
            "alice",
            b"\r\n\r\n",
            "+ Ready for literal data\r\n",
        ),
        (b"a LOGIN alice {0+}\r\n\r\n", "alice", b"", ""),
        (
            "a LOGIN {5+}\r\njörg {11}\r\npäss wörd\r\n".as_bytes(),
            "jörg",
            "päss wörd".as_bytes(),
            "+ Ready for literal data\r\n",
        ),
        (
            "a LOGIN \"jörg\" \"pässwörd €\"\r\n".as_bytes(),
            "jörg",
            "pässwörd €".as_bytes(),
            "",
        ),
        (b"a LOGIN alice secret\n", "alice", b"secret", ""),
    ];
    for (input, user, password, continuations) in cases {
        let t = dialogue(
            options(ClientTls::Active),
            &[input],
            &[Verdict::Accept("Logged in")],
        );
        let expected = greeting(AUTH_CAPS) + continuations + "a OK Logged in\r\n";
        assert_eq!(t.output, expected, "{input:?}");
        assert_eq!(t.events, logged_in(creds(user, password)), "{input:?}");
    }
}

#[test]
fn malformed_logins_get_bad_and_no_login() {
    for input in [
        &b"a LOGIN alice\r\n"[..],
        b"a LOGIN alice secret extra\r\n",
        b"a LOGIN alice \"unterminated\r\n",
        b"a LOGIN alice \"bad \\escape\"\r\n",
        b"a LOGIN alice {3+}\r\na\0b\r\n",
        b"a LOGIN {2+}\r\n\xff\xfe secret\r\n",
        b"a LOGIN alice se\"cret\r\n",
    ] {
        let t = dialogue(options(ClientTls::Active), &[input, b"b NOOP\r\n"], &[]);
        assert!(t.events.is_empty(), "{input:?}");
        let tail = t.output.strip_prefix(&greeting(AUTH_CAPS)).unwrap();
        assert!(tail.starts_with("a BAD "), "{input:?}: {tail}");
        assert!(
            tail.ends_with("b OK NOOP completed\r\n"),
            "{input:?}: {tail}"
        );
        assert!(!tail.contains("cret"), "a reply echoed the password");
    }
}

/// The gateway's own rules on credentials, whichever way they came (LOGIN, AUTHENTICATE PLAIN
/// or LOGIN): a tagged `NO [CANNOT]`, no `Login` for the gateway, and the dialogue goes on.
#[test]
fn credentials_the_gateway_refuses_get_no_and_no_login() {
    let b64 =
        |bytes: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes);
    let long = "u".repeat(256);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            "a LOGIN \"alice\u{202e}gpj.exe\" secret\r\n".into(),
            "the user name contains control or invisible formatting characters",
        ),
        (
            "a LOGIN {8+}\r\nal\u{200b}ice secret\r\n".into(),
            "the user name contains control or invisible formatting characters",
        ),
        (
            b"a LOGIN {7+}\r\nal\r\nice secret\r\n".to_vec(),
            "the user name contains control or invisible formatting characters",
        ),
        (
            format!("a LOGIN {long} secret\r\n").into_bytes(),
            "the user name is longer than 255 bytes",
        ),
        (
            format!("a AUTHENTICATE PLAIN {}\r\n", b64(b"\0alice\0sec\0ret")).into_bytes(),
            "the password contains a NUL byte",
        ),
        (
            format!("a AUTHENTICATE PLAIN {}\r\n", b64(b"\0al\tice\0secret")).into_bytes(),
            "the user name contains control or invisible formatting characters",
        ),
        (
            format!(
                "a AUTHENTICATE PLAIN {}\r\n",
                b64(format!("\0{long}\0pw").as_bytes())
            )
            .into_bytes(),
            "the user name is longer than 255 bytes",
        ),
    ];
    for (input, why) in cases {
        let t = dialogue(options(ClientTls::Active), &[&input, b"b NOOP\r\n"], &[]);
        let expected = greeting(AUTH_CAPS)
            + &format!("a NO [CANNOT] Login refused: {why}\r\n")
            + "b OK NOOP completed\r\n";
        assert_eq!(t.output, expected, "{input:?}");
        assert!(t.events.is_empty(), "{input:?}");
    }
    // AUTHENTICATE LOGIN: the password's NUL is seen after both steps; a continuation form
    // of PLAIN the same way.
    let password = format!("{}\r\n", b64(b"pass\0word"));
    let plain = format!("{}\r\n", b64("\0bob\u{2028}\0pw".as_bytes()));
    let t = dialogue(
        options(ClientTls::Active),
        &[
            b"a AUTHENTICATE LOGIN\r\n",
            b"YWxpY2U=\r\n",
            password.as_bytes(),
            b"b AUTHENTICATE PLAIN\r\n",
            plain.as_bytes(),
            b"c LOGIN alice secret\r\n",
        ],
        &[Verdict::Accept("Logged in")],
    );
    let expected = greeting(AUTH_CAPS)
        + "+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n"
        + "a NO [CANNOT] Login refused: the password contains a NUL byte\r\n"
        + "+ \r\nb NO [CANNOT] Login refused: the user name contains control or invisible formatting characters\r\n"
        + "c OK Logged in\r\n";
    assert_eq!(t.output, expected);
    assert_eq!(t.events, logged_in(creds("alice", b"secret")));
}

#[test]
fn user_names_of_255_bytes_log_in() {
    let user = "ü".repeat(127) + "a";
    let input = format!("a LOGIN \"{user}\" secret\r\n");
    let t = dialogue(
        options(ClientTls::Active),
        &[input.as_bytes()],
        &[Verdict::Accept("Logged in")],
    );
    assert_eq!(t.events, logged_in(creds(&user, b"secret")));
}

#[test]
fn rejected_login_can_be_retried() {
    let t = dialogue(
        options(ClientTls::Active),
        &[b"a LOGIN alice wrong\r\nb LOGIN alice wrong2\r\nc LOGIN alice right\r\n"],
        &[
            Verdict::Reject("Wrong password"),
            Verdict::Reject("[UNAVAILABLE] Try later\r\n* OK injected"),
            Verdict::Accept("Logged in"),
        ],
    );
    let expected = greeting(AUTH_CAPS)
        + "a NO [AUTHENTICATIONFAILED] Wrong password\r\n"
        + "b NO [UNAVAILABLE] Try later  * OK injected\r\n"
        + "c OK Logged in\r\n";
    assert_eq!(t.output, expected);
    assert_eq!(
        t.events,
        vec![
            ClientStep::Login(creds("alice", b"wrong")),
            ClientStep::Login(creds("alice", b"wrong2")),
            ClientStep::Login(creds("alice", b"right")),
        ]
    );
}

#[test]
fn pipelined_bytes_after_login_go_upstream() {
    let after = b"b SELECT INBOX\r\nc FETCH 1 (BODY[]<0.{5}>)\r\nd IDLE";
    let input = [&b"a LOGIN {5+}\r\nalice secret\r\n"[..], after].concat();
    let t = dialogue(
        options(ClientTls::Active),
        &[&input],
        &[Verdict::Accept("[CAPABILITY IMAP4rev1] Logged in")],
    );
    assert_eq!(t.to_upstream.as_deref(), Some(&after[..]));
    assert!(t
        .output
        .ends_with("a OK [CAPABILITY IMAP4rev1] Logged in\r\n"));
}

#[test]
fn pipelined_bytes_after_a_rejected_login_are_commands() {
    let t = dialogue(
        options(ClientTls::Active),
        &[b"a LOGIN alice wrong\r\nb SELECT INBOX\r\n"],
        &[Verdict::Reject("Authentication failed")],
    );
    assert!(t.output.ends_with(
        "a NO [AUTHENTICATIONFAILED] Authentication failed\r\n\
         b BAD Unknown command or not valid before login; log in first\r\n"
    ));
}

#[test]
fn authenticate_plain_with_initial_response() {
    // "\0alice\0se cret" and "alice\0alice\0pw"
    let t = dialogue(
        options(ClientTls::Active),
        &[b"a AUTHENTICATE PLAIN AGFsaWNlAHNlIGNyZXQ=\r\nb authenticate plain YWxpY2UAYWxpY2UAcHc=\r\n"],
        &[Verdict::Reject("Wrong"), Verdict::Accept("Logged in")],
    );
    assert_eq!(
        t.events,
        vec![
            ClientStep::Login(creds("alice", b"se cret")),
            ClientStep::Login(creds("alice", b"pw")),
        ]
    );
    let expected =
        greeting(AUTH_CAPS) + "a NO [AUTHENTICATIONFAILED] Wrong\r\n" + "b OK Logged in\r\n";
    assert_eq!(t.output, expected);
}

#[test]
fn authenticate_plain_with_continuation() {
    let t = dialogue(
        options(ClientTls::Active),
        &[
            b"a AUTHENTICATE PLAIN\r\n",
            b"AGFsaWNlAHNlY3JldA==\r\nb NOOP\r\n",
        ],
        &[Verdict::Accept("Logged in")],
    );
    assert_eq!(t.events, logged_in(creds("alice", b"secret")));
    assert_eq!(t.output, greeting(AUTH_CAPS) + "+ \r\na OK Logged in\r\n");
    assert_eq!(t.to_upstream.as_deref(), Some(&b"b NOOP\r\n"[..]));
}

/// The LOGIN mechanism as devices raised on SMTP AUTH use it: user name, then password, each
/// asked for with Microsoft's prompts; or the user name as SASL-IR initial response.
#[test]
fn authenticate_login_in_two_steps_or_with_the_user_up_front() {
    // "alice" and "se cret"
    let t = dialogue(
        options(ClientTls::Active),
        &[
            b"a AUTHENTICATE LOGIN\r\n",
            b"YWxpY2U=\r\n",
            b"c2UgY3JldA==\r\n",
            b"b authenticate login YWxpY2U=\r\n",
            b"c2UgY3JldA==\r\nc NOOP\r\n",
        ],
        &[Verdict::Reject("Wrong"), Verdict::Accept("Logged in")],
    );
    assert_eq!(
        t.events,
        vec![
            ClientStep::Login(creds("alice", b"se cret")),
            ClientStep::Login(creds("alice", b"se cret")),
        ]
    );
    let expected = greeting(AUTH_CAPS)
        + "+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\na NO [AUTHENTICATIONFAILED] Wrong\r\n"
        + "+ UGFzc3dvcmQ6\r\nb OK Logged in\r\n";
    assert_eq!(t.output, expected);
    assert_eq!(t.to_upstream.as_deref(), Some(&b"c NOOP\r\n"[..]));
}

#[test]
fn authenticate_login_can_be_cancelled_or_botched_at_either_step() {
    let t = dialogue(
        options(ClientTls::Active),
        &[
            b"a AUTHENTICATE LOGIN\r\n",
            b"*\r\n",
            b"b AUTHENTICATE LOGIN YWxpY2U=\r\n",
            b"*\r\n",
            b"c AUTHENTICATE LOGIN =\r\n",
            b"d AUTHENTICATE LOGIN\r\n",
            b"YWxpY2U=\r\n",
            b"not base64!\r\n",
            b"e NOOP\r\n",
        ],
        &[],
    );
    let expected = greeting(AUTH_CAPS)
        + "+ VXNlcm5hbWU6\r\na BAD AUTHENTICATE cancelled\r\n"
        + "+ UGFzc3dvcmQ6\r\nb BAD AUTHENTICATE cancelled\r\n"
        + "c BAD Invalid SASL LOGIN response: the user name is empty\r\n"
        + "+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n"
        + "d BAD Invalid SASL LOGIN response: the response is not valid base64\r\n"
        + "e OK NOOP completed\r\n";
    assert_eq!(t.output, expected);
    assert!(t.events.is_empty());
}

#[test]
fn authenticate_can_be_cancelled_or_botched() {
    let t = dialogue(
        options(ClientTls::Active),
        &[
            b"a AUTHENTICATE PLAIN\r\n",
            b"*\r\n",
            b"b AUTHENTICATE PLAIN\r\n",
            b"not base64!\r\n",
            b"c AUTHENTICATE PLAIN =\r\n",
            b"d AUTHENTICATE PLAIN\r\n",
            b"{5}\r\n",
            b"e AUTHENTICATE PLAIN YWxpY2UAcHc=\r\n",
            b"f AUTHENTICATE PLAIN AGFsaWNlAHB3 extra\r\n",
            b"g NOOP\r\n",
        ],
        &[],
    );
    let expected = greeting(AUTH_CAPS)
        + "+ \r\na BAD AUTHENTICATE cancelled\r\n"
        + "+ \r\nb BAD Invalid SASL PLAIN response: the response is not valid base64\r\n"
        + "c BAD Invalid SASL PLAIN response: the response does not have the form authzid NUL authcid NUL password\r\n"
        + "+ \r\nd BAD Invalid SASL PLAIN response: the response is not valid base64\r\n"
        + "e BAD Invalid SASL PLAIN response: the response does not have the form authzid NUL authcid NUL password\r\n"
        + "f BAD AUTHENTICATE expects a mechanism and an optional base64 initial response\r\n"
        + "g OK NOOP completed\r\n";
    assert_eq!(t.output, expected);
    assert!(t.events.is_empty());
}

#[test]
fn other_mechanisms_are_refused() {
    let t = dialogue(
        options(ClientTls::Active),
        &[b"a AUTHENTICATE CRAM-MD5\r\nb AUTHENTICATE XOAUTH2 dXNlcj0=\r\n"],
        &[],
    );
    let no = "NO [CANNOT] Unsupported mechanism; use PLAIN or LOGIN\r\n";
    assert_eq!(t.output, greeting(AUTH_CAPS) + "a " + no + "b " + no);
}

#[test]
fn answers_id_and_reports_it() {
    let t = dialogue(
        options(ClientTls::StartTlsRequired),
        &[b"a ID (\"name\" \"HP Scan\" \"version\" NIL)\r\nb id nil\r\nc ID (\"name\")\r\n"],
        &[],
    );
    let expected = greeting(STARTTLS_CAPS)
        + "* ID NIL\r\na OK ID completed\r\n"
        + "* ID NIL\r\nb OK ID completed\r\n"
        + "c BAD ID expects a parenthesised list of pairs or NIL\r\n";
    assert_eq!(t.output, expected);
    assert_eq!(
        t.events,
        vec![
            ClientStep::ClientId(vec![
                ("name".into(), Some("HP Scan".into())),
                ("version".into(), None),
            ]),
            ClientStep::ClientId(vec![]),
        ]
    );
}

/// RFC 2971's limits: 30 pairs, names of 30 octets and values of 1024 are reported; one more
/// of any is answered with BAD and nothing of that command is reported.
#[test]
fn id_beyond_rfc_2971_limits_gets_bad_and_is_not_reported() {
    let id = testing::id_command;
    let at_limits = id("a", 30, 30, 200);
    let long_value = format!("b ID (\"name\" \"{}\")\r\n", "v".repeat(1024));
    let phases = [
        at_limits,
        long_value,
        id("c", 31, 2, 1),
        id("d", 1, 31, 1),
        format!("e ID (\"name\" {{1025+}}\r\n{})\r\n", "v".repeat(1025)),
        "f NOOP\r\n".to_string(),
    ];
    let phases: Vec<&[u8]> = phases.iter().map(|p| p.as_bytes()).collect();
    let t = dialogue(options(ClientTls::StartTlsRequired), &phases, &[]);
    let expected = greeting(STARTTLS_CAPS)
        + "* ID NIL\r\na OK ID completed\r\n"
        + "* ID NIL\r\nb OK ID completed\r\n"
        + "c BAD ID takes at most 30 field-value pairs (RFC 2971)\r\n"
        + "d BAD ID field names are at most 30 octets long (RFC 2971)\r\n"
        + "e BAD ID values are at most 1024 octets long (RFC 2971)\r\n"
        + "f OK NOOP completed\r\n";
    assert_eq!(t.output, expected);
    let reported: Vec<usize> = t
        .events
        .iter()
        .map(|event| match event {
            ClientStep::ClientId(pairs) => pairs.len(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(reported, [30, 1]);
}

#[test]
fn other_commands_and_garbage_get_bad() {
    let t = dialogue(
        options(ClientTls::Active),
        &[b"a SELECT INBOX\r\n\r\n+x NOOP\r\nb\r\nc NOOP extra\r\nd APPEND INBOX {3}\r\nabc\r\n"],
        &[],
    );
    let expected = greeting(AUTH_CAPS)
        + "a BAD Unknown command or not valid before login; log in first\r\n"
        + "* BAD Expected a tag and a command\r\n"
        + "* BAD Expected a tag and a command\r\n"
        + "* BAD Expected a tag and a command\r\n"
        + "c BAD This command takes no arguments\r\n"
        + "+ Ready for literal data\r\n"
        + "d BAD Unknown command or not valid before login; log in first\r\n";
    assert_eq!(t.output, expected);
}

#[test]
fn client_talking_before_the_greeting_is_answered_after_it() {
    let mut session = ClientSession::new(options(ClientTls::Active));
    session.feed(b"a NOOP\r\n");
    assert_eq!(
        session.next(),
        ClientStep::Write(greeting(AUTH_CAPS).into_bytes())
    );
    assert_eq!(
        session.next(),
        ClientStep::Write(b"a OK NOOP completed\r\n".to_vec())
    );
}

#[test]
fn line_over_the_limit_ends_the_dialogue() {
    let opts = limited(ClientTls::Active, 16, 64);
    let t = dialogue(
        opts.clone(),
        &[b"a NOOP\r\n", b"b LOGIN alice secret\r\n"],
        &[],
    );
    assert_eq!(
        t.output,
        greeting(AUTH_CAPS) + "a OK NOOP completed\r\n* BYE Command line too long\r\n"
    );
    let ending = Ending::ProtocolError("Command line too long".into());
    assert_eq!(t.events, vec![ClientStep::Close(ending)]);
    // Exactly at the limit, CRLF included, is fine.
    let t = dialogue(opts, &[b"abcdefgh NOOP\r\n"], &[]);
    assert!(t.output.ends_with("abcdefgh OK NOOP completed\r\n"));
}

#[test]
fn line_limit_also_applies_to_the_sasl_response() {
    let opts = limited(ClientTls::Active, 24, 64);
    let t = dialogue(
        opts,
        &[
            b"a AUTHENTICATE PLAIN\r\n",
            b"AGFsaWNlAHNlY3JldAAAAAAAAAAAAAA=\r\n",
        ],
        &[],
    );
    assert!(t.output.ends_with("+ \r\n* BYE Command line too long\r\n"));
}

#[test]
fn sync_literal_over_the_limit_gets_bad_and_service_goes_on() {
    let opts = limited(ClientTls::Active, 64, 8);
    let t = dialogue(
        opts,
        &[
            b"a LOGIN alice {9}\r\n",
            b"b LOGIN alice {8}\r\n",
            b"12345678\r\n",
        ],
        &[Verdict::Accept("Logged in")],
    );
    let expected = greeting(AUTH_CAPS)
        + "a BAD Literal too large (the limit is 8 bytes)\r\n"
        + "+ Ready for literal data\r\n"
        + "b OK Logged in\r\n";
    assert_eq!(t.output, expected);
    assert_eq!(t.events, logged_in(creds("alice", b"12345678")));
}

#[test]
fn non_sync_literal_over_the_limit_ends_the_dialogue() {
    let opts = limited(ClientTls::Active, 64, 8);
    let t = dialogue(opts, &[b"a LOGIN alice {9+}\r\n123456789\r\n"], &[]);
    assert_eq!(
        t.output,
        greeting(AUTH_CAPS) + "* BYE Literal too large\r\n"
    );
    let ending = Ending::ProtocolError("Literal too large".into());
    assert_eq!(t.events, vec![ClientStep::Close(ending)]);
}

#[test]
fn farewell_says_bye_and_goes_quiet() {
    let mut session = ClientSession::new(options(ClientTls::Active));
    session.next();
    session.feed(b"a NOOP\r\n");
    assert_eq!(
        session.farewell("Pre-auth timeout\r\n* OK forged"),
        b"* BYE Pre-auth timeout  * OK forged\r\n"
    );
    assert_eq!(session.next(), ClientStep::NeedInput);
}

#[test]
fn waits_for_the_verdict_before_reading_on() {
    let mut session = ClientSession::new(options(ClientTls::Active));
    session.next();
    session.feed(b"a LOGIN alice secret\r\nb NOOP\r\n");
    assert_eq!(session.next(), ClientStep::Login(creds("alice", b"secret")));
    assert_eq!(session.next(), ClientStep::NeedInput);
    session.feed(b"c NOOP\r\n");
    let handover = session.login_accepted("", None);
    assert_eq!(handover.to_client, b"a OK Logged in\r\n");
    assert_eq!(handover.to_upstream, b"b NOOP\r\nc NOOP\r\n");
}

/// A policy's warning comes as an untagged ALERT before the tagged OK, on one line whatever
/// it holds.
#[test]
fn a_warning_is_an_alert_before_the_tagged_ok() {
    let mut session = ClientSession::new(options(ClientTls::Active));
    session.next();
    session.feed(b"a LOGIN alice secret\r\n");
    assert_eq!(session.next(), ClientStep::Login(creds("alice", b"secret")));
    let handover = session.login_accepted(
        "[CAPABILITY IMAP4rev1] Logged in",
        Some("TLS 1.0 ends on 2026-12-31.\r\n* BYE forged"),
    );
    assert_eq!(
        handover.to_client,
        b"* OK [ALERT] TLS 1.0 ends on 2026-12-31.  * BYE forged\r\n\
a OK [CAPABILITY IMAP4rev1] Logged in\r\n"
    );
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let mut session = ClientSession::new(options(ClientTls::Active));
    session.next();
    session.feed(b"a LOGIN alice hunter2\r\nb AUTHENTICATE PLAIN AGFsaWNlAGh1bnRlcjI=\r\n");
    let step = session.next();
    let debug = format!("{step:?} {session:?}");
    assert!(debug.contains("alice"));
    assert!(!debug.contains("hunter2") && !debug.contains("AGFsaWNlAGh1bnRlcjI"));
}

#[test]
fn many_pipelined_commands_and_big_literals_fed_bytewise() {
    let noops = b"a NOOP\r\n".repeat(5_000);
    let password = vec![b'x'; 8 * 1024];
    let login = [&b"z LOGIN alice {8192}\r\n"[..], &password, b"\r\n"].concat();
    let t = run(
        options(ClientTls::Active),
        &[&noops, &login],
        &[Verdict::Accept("Logged in")],
        1,
    );
    assert_eq!(t.events, logged_in(creds("alice", &password)));
    assert_eq!(t.output.matches("a OK NOOP completed\r\n").count(), 5_000);
}

#[test]
fn a_policy_refusal_is_an_alert() {
    let t = dialogue(
        options(ClientTls::Active),
        &[b"a LOGIN alice pw\r\nb LOGIN alice pw\r\n"],
        &[
            Verdict::RefusedByPolicy("TLS 1.0 is no longer accepted.\r\n* OK fake"),
            Verdict::Accept("Logged in"),
        ],
    );
    assert!(
        t.output
            .contains("a NO [ALERT] TLS 1.0 is no longer accepted.  * OK fake\r\nb OK "),
        "{}",
        t.output
    );
}
