//! Scripted client dialogues. Each runs fed whole and in pieces down to single bytes (see
//! `testing`), and every run must see the same steps.

use super::*;
use crate::testing::{self, options, Verdict};
use crate::Limits;

/// The steps as the tests compare them, with passwords as bytes: a `Secret` would not show
/// itself in a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Wrote(String),
    StartTls,
    Login {
        user: String,
        password: Vec<u8>,
    },
    Close(Ending),
    /// The hand-over, made once all input was fed.
    Accepted {
        to_client: String,
        to_upstream: Vec<u8>,
    },
}

const HELLO: &str = "+OK mailtls ready\r\n";
const CAPA_LOGIN: &str =
    "+OK capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n";
const CAPA_STLS: &str =
    "+OK capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nSTLS\r\n.\r\n";
const NEED_STLS: &str = "-ERR [AUTH] plaintext login is disabled: send STLS first\r\n";

fn w(text: &str) -> Seen {
    Seen::Wrote(text.into())
}

fn login(user: &str, password: &[u8]) -> Seen {
    Seen::Login {
        user: user.into(),
        password: password.to_vec(),
    }
}

fn accepted(to_client: &str, to_upstream: &[u8]) -> Seen {
    Seen::Accepted {
        to_client: to_client.into(),
        to_upstream: to_upstream.to_vec(),
    }
}

/// Feeds the client's `phases` in pieces of `chunk` bytes, as the gateway does.
fn run(
    options: &DialogueOptions,
    phases: &[&[u8]],
    verdicts: &[Verdict],
    chunk: usize,
) -> Vec<Seen> {
    let run = testing::run_client(ClientSession::new(options.clone()), phases, verdicts, chunk);
    let mut seen: Vec<Seen> = run
        .steps
        .into_iter()
        .map(|step| match step {
            ClientStep::Write(bytes) => Seen::Wrote(String::from_utf8(bytes).unwrap()),
            ClientStep::StartTls => Seen::StartTls,
            ClientStep::Login(credentials) => {
                login(credentials.user(), credentials.password().expose())
            }
            ClientStep::Close(ending) => Seen::Close(ending),
            ClientStep::ClientId(_) => panic!("POP3 has no ID command"),
            ClientStep::Relay { .. } => panic!("POP3 has no relay mode"),
            ClientStep::NeedInput => unreachable!("the driver does not record NeedInput"),
        })
        .collect();
    seen.extend(run.accepted.map(|done| Seen::Accepted {
        to_client: String::from_utf8(done.to_client).unwrap(),
        to_upstream: done.to_upstream,
    }));
    seen
}

/// Runs the client's `phases` in every chunking and returns the common steps.
fn dialogue(options: &DialogueOptions, phases: &[&[u8]], verdicts: &[Verdict]) -> Vec<Seen> {
    testing::in_every_chunking(|chunk| run(options, phases, verdicts, chunk))
}

#[test]
fn greets_with_the_configured_text() {
    assert_eq!(
        dialogue(&options(ClientTls::Active), &[], &[]),
        vec![w(HELLO)]
    );
}

#[test]
fn capa_offers_user_and_sasl_plain_once_login_is_allowed() {
    for tls in [ClientTls::Active, ClientTls::None] {
        assert_eq!(
            dialogue(&options(tls), &[b"CAPA\r\n"], &[]),
            vec![w(HELLO), w(CAPA_LOGIN)]
        );
    }
}

#[test]
fn capa_before_stls_offers_only_stls() {
    assert_eq!(
        dialogue(&options(ClientTls::StartTlsRequired), &[b"capa\r\n"], &[]),
        vec![w(HELLO), w(CAPA_STLS)]
    );
}

#[test]
fn stls_then_login() {
    let seen = dialogue(
        &options(ClientTls::StartTlsRequired),
        &[
            b"STLS\r\n",
            b"CAPA\r\n",
            b"STLS\r\n",
            b"USER bob\r\nPASS pw\r\n",
        ],
        &[Verdict::Accept("Logged in.")],
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w("+OK begin TLS negotiation\r\n"),
            Seen::StartTls,
            w(CAPA_LOGIN),
            w("-ERR TLS is already active\r\n"),
            w("+OK send PASS\r\n"),
            login("bob", b"pw"),
            accepted("+OK Logged in.\r\n", b""),
        ]
    );
}

#[test]
fn stls_discards_bytes_pipelined_in_the_clear() {
    // Whole chunk only: fed byte by byte, the tail would arrive after the handshake.
    let seen = run(
        &options(ClientTls::StartTlsRequired),
        &[b"STLS\r\nUSER mallory\r\nPASS x\r\n", b"PASS pw\r\n"],
        &[],
        usize::MAX,
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w("+OK begin TLS negotiation\r\n"),
            Seen::StartTls,
            w("-ERR send USER first\r\n"),
        ]
    );
}

#[test]
fn input_before_the_handshake_completes_is_dropped() {
    let mut session = ClientSession::new(options(ClientTls::StartTlsRequired));
    assert_eq!(session.next(), ClientStep::Write(HELLO.into()));
    session.feed(b"STLS\r\n");
    assert_eq!(
        session.next(),
        ClientStep::Write(b"+OK begin TLS negotiation\r\n".to_vec())
    );
    assert_eq!(session.next(), ClientStep::StartTls);
    session.feed(b"USER injected\r\n");
    assert_eq!(session.next(), ClientStep::NeedInput);
    session.tls_started();
    session.feed(b"PASS pw\r\n");
    assert_eq!(
        session.next(),
        ClientStep::Write(b"-ERR send USER first\r\n".to_vec())
    );
}

#[test]
fn stls_is_refused_where_not_offered() {
    assert_eq!(
        dialogue(&options(ClientTls::None), &[b"STLS\r\nCAPA\r\n"], &[]),
        vec![
            w(HELLO),
            w("-ERR STLS is not offered on this port\r\n"),
            w(CAPA_LOGIN)
        ]
    );
}

#[test]
fn login_before_stls_is_refused_and_the_dialogue_goes_on() {
    let seen = dialogue(
        &options(ClientTls::StartTlsRequired),
        &[b"USER bob\r\nPASS pw\r\nAUTH PLAIN AGJvYgBwdw==\r\nAUTH\r\nQUIT\r\n"],
        &[],
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w(NEED_STLS),
            w(NEED_STLS),
            w(NEED_STLS),
            w(NEED_STLS),
            w("+OK mailtls signing off\r\n"),
            Seen::Close(Ending::ClientQuit),
        ]
    );
}

#[test]
fn user_and_pass() {
    let seen = dialogue(
        &options(ClientTls::Active),
        &[b"USER bob\r\n", b"PASS hunter2\r\n"],
        &[Verdict::Accept("Logged in.")],
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w("+OK send PASS\r\n"),
            login("bob", b"hunter2"),
            accepted("+OK Logged in.\r\n", b""),
        ]
    );
}

#[test]
fn an_empty_upstream_text_gives_a_bare_ok() {
    let seen = dialogue(
        &options(ClientTls::Active),
        &[b"USER bob\r\nPASS pw\r\n"],
        &[Verdict::Accept("")],
    );
    assert_eq!(seen.last(), Some(&accepted("+OK\r\n", b"")));
}

#[test]
fn passwords_keep_spaces_quotes_backslashes_and_non_ascii() {
    let passwords: [&[u8]; 6] = [
        b"two words",
        b" leading and trailing ",
        b"\"quoted\"",
        b"back\\slash",
        "pässwörd €".as_bytes(),
        b"latin1 \xe9t\xe9",
    ];
    for password in passwords {
        let pass_line = [b"PASS ", password, b"\r\n"].concat();
        let seen = dialogue(
            &options(ClientTls::Active),
            &[b"USER bob\r\n", &pass_line],
            &[Verdict::Accept("ok")],
        );
        assert_eq!(seen[2], login("bob", password));
    }
}

/// A policy's warning is the text of the `+OK` that accepts the login.
#[test]
fn a_warning_is_the_text_of_the_ok() {
    let mut session = ClientSession::new(options(ClientTls::Active));
    session.next();
    session.feed(b"USER alice\r\nPASS secret\r\n");
    while !matches!(session.next(), ClientStep::Login(_)) {}
    let handover = session.login_accepted("Logged in.", Some("TLS 1.0 ends on 2026-12-31."));
    assert_eq!(
        handover.to_client,
        b"+OK TLS 1.0 ends on 2026-12-31. (Logged in.)\r\n"
    );
}

#[test]
fn pass_without_user_is_refused() {
    assert_eq!(
        dialogue(&options(ClientTls::Active), &[b"PASS pw\r\n"], &[]),
        vec![w(HELLO), w("-ERR send USER first\r\n")]
    );
}

#[test]
fn a_rejected_login_forgets_the_user() {
    let seen = dialogue(
        &options(ClientTls::Active),
        &[
            b"USER bob\r\nPASS bad\r\n",
            b"PASS good\r\n",
            b"USER bob\r\nPASS good\r\n",
        ],
        &[
            Verdict::Reject("Authentication failed."),
            Verdict::Accept("Logged in."),
        ],
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w("+OK send PASS\r\n"),
            login("bob", b"bad"),
            w("-ERR [AUTH] Authentication failed.\r\n"),
            w("-ERR send USER first\r\n"),
            w("+OK send PASS\r\n"),
            login("bob", b"good"),
            accepted("+OK Logged in.\r\n", b""),
        ]
    );
}

#[test]
fn a_rejection_keeps_a_response_code_it_already_has() {
    let seen = dialogue(
        &options(ClientTls::Active),
        &[b"USER a\r\nPASS b\r\n", b"USER a\r\nPASS b\r\n"],
        &[Verdict::Reject("[SYS/TEMP] try later"), Verdict::Reject("")],
    );
    assert_eq!(seen[3], w("-ERR [SYS/TEMP] try later\r\n"));
    assert_eq!(seen[6], w("-ERR [AUTH] authentication failed\r\n"));
}

#[test]
fn a_relayed_reason_cannot_inject_lines() {
    let seen = dialogue(
        &options(ClientTls::Active),
        &[b"USER a\r\nPASS b\r\n"],
        &[Verdict::Reject("no\r\n+OK fake")],
    );
    assert_eq!(seen[3], w("-ERR [AUTH] no  +OK fake\r\n"));
}

#[test]
fn bytes_pipelined_after_pass_belong_to_the_upstream() {
    let seen = dialogue(
        &options(ClientTls::Active),
        &[
            b"CAPA\r\nUSER bob\r\nPASS pw\r\nSTAT\r\nLIST\r\n",
            b"RETR 1\r\n",
        ],
        &[Verdict::Accept("Logged in.")],
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w(CAPA_LOGIN),
            w("+OK send PASS\r\n"),
            login("bob", b"pw"),
            accepted("+OK Logged in.\r\n", b"STAT\r\nLIST\r\nRETR 1\r\n"),
        ]
    );
}

#[test]
fn pipelined_bytes_after_a_rejected_login_are_read_as_commands() {
    let seen = dialogue(
        &options(ClientTls::Active),
        &[b"USER bob\r\nPASS pw\r\nSTAT\r\nQUIT\r\n"],
        &[Verdict::Reject("no")],
    );
    assert_eq!(
        seen[3..],
        [
            w("-ERR [AUTH] no\r\n"),
            w("-ERR not allowed before login\r\n"),
            w("+OK mailtls signing off\r\n"),
            Seen::Close(Ending::ClientQuit),
        ]
    );
}

#[test]
fn auth_plain_with_an_initial_response() {
    // base64 of "\0bob\0pass word"
    let seen = dialogue(
        &options(ClientTls::Active),
        &[b"AUTH PLAIN AGJvYgBwYXNzIHdvcmQ=\r\nSTAT\r\n"],
        &[Verdict::Accept("Logged in.")],
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            login("bob", b"pass word"),
            accepted("+OK Logged in.\r\n", b"STAT\r\n"),
        ]
    );
}

#[test]
fn auth_plain_with_a_continuation() {
    let seen = dialogue(
        &options(ClientTls::None),
        &[b"auth plain\r\n", b"AGJvYgBwdw==\r\n"],
        &[Verdict::Accept("Logged in.")],
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w("+ \r\n"),
            login("bob", b"pw"),
            accepted("+OK Logged in.\r\n", b""),
        ]
    );
}

#[test]
fn auth_plain_can_be_cancelled() {
    let seen = dialogue(
        &options(ClientTls::Active),
        &[b"AUTH PLAIN\r\n", b"*\r\n", b"CAPA\r\n"],
        &[],
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w("+ \r\n"),
            w("-ERR authentication cancelled\r\n"),
            w(CAPA_LOGIN),
        ]
    );
}

#[test]
fn a_malformed_plain_response_never_logs_in() {
    let no_password = b"AUTH PLAIN AGJvYg==\r\n"; // "\0bob": no second NUL
    let seen = dialogue(
        &options(ClientTls::Active),
        &[b"AUTH PLAIN\r\n", b"not base64!\r\n", no_password],
        &[],
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w("+ \r\n"),
            w("-ERR malformed PLAIN response: the response is not valid base64\r\n"),
            w("-ERR malformed PLAIN response: the response does not have the form authzid NUL authcid NUL password\r\n"),
        ]
    );
}

#[test]
fn bare_auth_lists_plain_and_login_and_other_mechanisms_are_refused() {
    assert_eq!(
        dialogue(
            &options(ClientTls::Active),
            &[b"AUTH\r\nAUTH CRAM-MD5\r\nAUTH XOAUTH2 dXNlcj0=\r\n"],
            &[]
        ),
        vec![
            w(HELLO),
            w("+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n"),
            w("-ERR only the PLAIN and LOGIN mechanisms are offered\r\n"),
            w("-ERR only the PLAIN and LOGIN mechanisms are offered\r\n"),
        ]
    );
}

/// AUTH LOGIN as devices raised on SMTP AUTH send it: user name, then password, each asked
/// for with Microsoft's prompts; or the user name as initial response.
#[test]
fn auth_login_in_two_steps_or_with_the_user_up_front() {
    // "bob" and "pass word"
    let seen = dialogue(
        &options(ClientTls::Active),
        &[
            b"AUTH LOGIN\r\n",
            b"Ym9i\r\n",
            b"cGFzcyB3b3Jk\r\n",
            b"auth login Ym9i\r\n",
            b"cGFzcyB3b3Jk\r\nSTAT\r\n",
        ],
        &[
            Verdict::Reject("[AUTH] Wrong"),
            Verdict::Accept("Logged in."),
        ],
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w("+ VXNlcm5hbWU6\r\n"),
            w("+ UGFzc3dvcmQ6\r\n"),
            login("bob", b"pass word"),
            w("-ERR [AUTH] Wrong\r\n"),
            w("+ UGFzc3dvcmQ6\r\n"),
            login("bob", b"pass word"),
            accepted("+OK Logged in.\r\n", b"STAT\r\n"),
        ]
    );
}

/// Credentials the gateway refuses itself (a user name with control or format characters or
/// over 255 bytes, a NUL in the password) never reach the upstream, the record or the log,
/// whichever way they came: USER/PASS, AUTH PLAIN or AUTH LOGIN. The dialogue goes on.
#[test]
fn credentials_the_gateway_refuses_get_err_and_no_login() {
    let long = format!("USER {}\r\n", "u".repeat(256));
    // "\0b\x1bob\0pw", "\0bob\0p\0w" and "\0bob\u{202e}\0pw" as PLAIN; "bob\r\n",
    // "bob" then "pw\0" and "b\u{feff}ob" as LOGIN.
    let seen = dialogue(
        &options(ClientTls::Active),
        &[
            b"USER b\x1bob\r\nPASS pw\r\n",
            long.as_bytes(),
            b"PASS pw\r\n",
            "USER bob\u{200b}\r\nPASS pw\r\n".as_bytes(),
            b"AUTH PLAIN AGIbb2IAcHc=\r\n",
            b"AUTH PLAIN AGJvYgBwAHc=\r\n",
            b"AUTH PLAIN AGJvYuKArgBwdw==\r\n",
            b"AUTH LOGIN Ym9iDQo=\r\n",
            b"cHc=\r\n",
            b"AUTH LOGIN Ym9i\r\n",
            b"cHcA\r\n",
            b"AUTH LOGIN\r\n",
            b"Yu+7v29i\r\n",
            b"cHc=\r\n",
            b"USER bob\r\nPASS pw\r\n",
        ],
        &[Verdict::Accept("Logged in.")],
    );
    let control = "-ERR [AUTH] login refused: the user name contains control or invisible formatting characters\r\n";
    let too_long = "-ERR [AUTH] login refused: the user name is longer than 255 bytes\r\n";
    let nul = "-ERR [AUTH] login refused: the password contains a NUL byte\r\n";
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w("+OK send PASS\r\n"),
            w(control),
            w("+OK send PASS\r\n"),
            w(too_long),
            w("+OK send PASS\r\n"),
            w(control),
            w(control),
            w(nul),
            w(control),
            w("+ UGFzc3dvcmQ6\r\n"),
            w(control),
            w("+ UGFzc3dvcmQ6\r\n"),
            w(nul),
            w("+ VXNlcm5hbWU6\r\n"),
            w("+ UGFzc3dvcmQ6\r\n"),
            w(control),
            w("+OK send PASS\r\n"),
            login("bob", b"pw"),
            accepted("+OK Logged in.\r\n", b""),
        ]
    );
}

#[test]
fn auth_login_can_be_cancelled_or_botched_at_either_step() {
    let seen = dialogue(
        &options(ClientTls::Active),
        &[
            b"AUTH LOGIN\r\n",
            b"*\r\n",
            b"AUTH LOGIN Ym9i\r\n",
            b"*\r\n",
            b"AUTH LOGIN =\r\n",
            b"AUTH LOGIN Ym9i\r\n",
            b"not base64!\r\n",
        ],
        &[],
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w("+ VXNlcm5hbWU6\r\n"),
            w("-ERR authentication cancelled\r\n"),
            w("+ UGFzc3dvcmQ6\r\n"),
            w("-ERR authentication cancelled\r\n"),
            w("-ERR malformed LOGIN response: the user name is empty\r\n"),
            w("+ UGFzc3dvcmQ6\r\n"),
            w("-ERR malformed LOGIN response: the response is not valid base64\r\n"),
        ]
    );
}

#[test]
fn quit_closes_and_later_input_is_ignored() {
    let mut session = ClientSession::new(options(ClientTls::Active));
    session.feed(b"QUIT\r\n");
    assert_eq!(session.next(), ClientStep::Write(HELLO.into()));
    assert_eq!(
        session.next(),
        ClientStep::Write(b"+OK mailtls signing off\r\n".to_vec())
    );
    assert_eq!(session.next(), ClientStep::Close(Ending::ClientQuit));
    session.feed(b"CAPA\r\n");
    assert_eq!(session.next(), ClientStep::Close(Ending::ClientQuit));
}

#[test]
fn transaction_unknown_and_malformed_commands_are_refused() {
    let seen = dialogue(
        &options(ClientTls::Active),
        &[b"NOOP\r\nSTAT\r\nLIST\r\nRETR 1\r\nAPOP bob 0123\r\nXYZZY\r\n\r\nUSER\r\nQUIT now\r\n"],
        &[],
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w("-ERR not allowed before login\r\n"),
            w("-ERR not allowed before login\r\n"),
            w("-ERR not allowed before login\r\n"),
            w("-ERR not allowed before login\r\n"),
            w("-ERR APOP is not offered: use USER and PASS, or AUTH PLAIN or LOGIN\r\n"),
            w("-ERR unknown command\r\n"),
            w("-ERR unknown command\r\n"),
            w("-ERR USER needs a name\r\n"),
            w("-ERR this command takes no arguments\r\n"),
        ]
    );
}

#[test]
fn a_password_with_a_stray_cr_or_nul_never_logs_in() {
    let seen = dialogue(
        &options(ClientTls::Active),
        &[b"USER bob\r\nPASS a\rb\r\nPASS a\0b\r\n"],
        &[],
    );
    assert_eq!(
        seen[2..],
        [
            w("-ERR the line holds a NUL byte or a stray CR\r\n"),
            w("-ERR the line holds a NUL byte or a stray CR\r\n"),
        ]
    );
}

#[test]
fn bare_lf_line_endings_are_accepted() {
    let seen = dialogue(
        &options(ClientTls::Active),
        &[b"CAPA\nUSER bob\nPASS pw\n"],
        &[Verdict::Accept("ok")],
    );
    assert_eq!(seen[1], w(CAPA_LOGIN));
    assert_eq!(seen[3], login("bob", b"pw"));
}

fn limited(max_line: usize) -> DialogueOptions {
    DialogueOptions {
        limits: Limits {
            max_line,
            ..Limits::default()
        },
        ..options(ClientTls::Active)
    }
}

#[test]
fn an_overlong_line_ends_the_dialogue() {
    let too_long = Seen::Close(Ending::ProtocolError("line too long".into()));
    // 16 bytes with CRLF fit a 16-byte cap; 17 do not.
    assert_eq!(
        dialogue(&limited(16), &[b"USER abcdefghi\r\n"], &[]),
        vec![w(HELLO), w("+OK send PASS\r\n")]
    );
    assert_eq!(
        dialogue(&limited(16), &[b"USER abcdefghij\r\nCAPA\r\n"], &[]),
        vec![w(HELLO), w("-ERR line too long\r\n"), too_long.clone()]
    );
    // The verdict comes as soon as the cap is passed, without waiting for the line's end.
    assert_eq!(
        dialogue(&limited(16), &[&[b'A'; 16]], &[]),
        vec![w(HELLO), w("-ERR line too long\r\n"), too_long]
    );
}

#[test]
fn an_overlong_plain_response_ends_the_dialogue() {
    let response = [&[b'A'; 40][..], b"\r\n"].concat();
    assert_eq!(
        dialogue(&limited(32), &[b"AUTH PLAIN\r\n", &response], &[]),
        vec![
            w(HELLO),
            w("+ \r\n"),
            w("-ERR line too long\r\n"),
            Seen::Close(Ending::ProtocolError("line too long".into())),
        ]
    );
}

#[test]
fn farewell_is_one_clean_err_line() {
    let mut session = ClientSession::new(options(ClientTls::Active));
    assert_eq!(session.farewell("timed out"), b"-ERR timed out\r\n");
    assert_eq!(session.farewell("a\r\nb"), b"-ERR a  b\r\n");
}

#[test]
fn a_verdict_without_a_login_is_ignored() {
    let mut session = ClientSession::new(options(ClientTls::Active));
    assert_eq!(session.next(), ClientStep::Write(HELLO.into()));
    session.login_rejected("stray");
    assert_eq!(session.next(), ClientStep::NeedInput);
}

#[test]
fn debug_output_never_shows_a_password() {
    let mut session = ClientSession::new(options(ClientTls::Active));
    session.feed(b"USER bob\r\nPASS hunter2\r\nAUTH PLAIN AGJvYgBodW50ZXIy\r\n");
    let mut shown = format!("{session:?}");
    while !matches!(session.next(), ClientStep::NeedInput) {
        shown.push_str(&format!("{session:?}"));
    }
    session.login_rejected("no");
    loop {
        let step = session.next();
        shown.push_str(&format!("{step:?} {session:?}"));
        if step == ClientStep::NeedInput {
            break;
        }
    }
    assert!(shown.contains("Login"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("AGJvYgBodW50ZXIy"), "{shown}");
}

#[test]
fn a_policy_refusal_says_sys_perm() {
    let seen = dialogue(
        &options(ClientTls::Active),
        &[b"USER a\r\nPASS b\r\n"],
        &[Verdict::RefusedByPolicy("TLS 1.0 is no longer accepted.")],
    );
    assert_eq!(
        seen[3],
        w("-ERR [SYS/PERM] TLS 1.0 is no longer accepted.\r\n")
    );
}
