//! Scripted client dialogues. Each runs fed whole and in pieces down to single bytes (see
//! `testing`), and every run must see the same steps. Base64 in the scripts is written by an
//! independent encoder (the `base64` crate's engine in `b64`), not by the code under test.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

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
    /// A relay request for this sender.
    Relay(String),
    /// The hand-over, made once all input was fed.
    Accepted {
        to_client: String,
        to_upstream: Vec<u8>,
    },
}

const HELLO: &str = "220 mailtls ready ESMTP\r\n";
/// EHLO on a listener where AUTH is allowed, with no upstream extensions known.
const EHLO_AUTH: &str = "250-mailtls ready\r\n250-AUTH PLAIN LOGIN\r\n250 AUTH=PLAIN LOGIN\r\n";
/// EHLO in plaintext on a STARTTLS listener.
const EHLO_STARTTLS: &str = "250-mailtls ready\r\n250 STARTTLS\r\n";
const READY_FOR_TLS: &str = "220 2.0.0 Ready to start TLS\r\n";
const NEED_STARTTLS: &str = "530 5.7.0 Must issue a STARTTLS command first\r\n";
const NEED_AUTH: &str = "530 5.7.0 Authentication required\r\n";
const BAD_SEQUENCE: &str = "503 5.5.1 Bad sequence of commands: authenticate first\r\n";
const ACCEPTED: &str = "235 2.7.0 Authentication successful\r\n";
const USERNAME_PROMPT: &str = "334 VXNlcm5hbWU6\r\n";
const PASSWORD_PROMPT: &str = "334 UGFzc3dvcmQ6\r\n";

fn w(text: &str) -> Seen {
    Seen::Wrote(text.into())
}

fn login(user: &str, password: &[u8]) -> Seen {
    Seen::Login {
        user: user.into(),
        password: password.to_vec(),
    }
}

fn accepted(to_upstream: &[u8]) -> Seen {
    Seen::Accepted {
        to_client: ACCEPTED.into(),
        to_upstream: to_upstream.to_vec(),
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

/// An `AUTH PLAIN` line with the initial response for `user` and `password`.
fn auth_plain_line(user: &str, password: &[u8]) -> Vec<u8> {
    let message = [b"\0", user.as_bytes(), b"\0", password].concat();
    format!("AUTH PLAIN {}\r\n", b64(message)).into_bytes()
}

/// Feeds the client's `phases` in pieces of `chunk` bytes, as the gateway does.
fn run(
    options: &DialogueOptions,
    extensions: SmtpExtensions,
    phases: &[&[u8]],
    verdicts: &[Verdict],
    chunk: usize,
) -> Vec<Seen> {
    run_session(
        ClientSession::new(options.clone(), extensions),
        phases,
        verdicts,
        chunk,
    )
}

/// Feeds the client's `phases` to `session` in pieces of `chunk` bytes.
fn run_session(
    session: ClientSession,
    phases: &[&[u8]],
    verdicts: &[Verdict],
    chunk: usize,
) -> Vec<Seen> {
    let run = testing::run_client(session, phases, verdicts, chunk);
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
            ClientStep::Relay { sender } => Seen::Relay(sender),
            ClientStep::ClientId(_) => panic!("SMTP has no ID command"),
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
fn dialogue(tls: ClientTls, phases: &[&[u8]], verdicts: &[Verdict]) -> Vec<Seen> {
    dialogue_with(&options(tls), SmtpExtensions::default(), phases, verdicts)
}

fn dialogue_with(
    options: &DialogueOptions,
    extensions: SmtpExtensions,
    phases: &[&[u8]],
    verdicts: &[Verdict],
) -> Vec<Seen> {
    testing::in_every_chunking(|chunk| run(options, extensions, phases, verdicts, chunk))
}

#[test]
fn greets_and_answers_ehlo_with_auth_where_login_is_allowed() {
    for tls in [ClientTls::Active, ClientTls::None] {
        assert_eq!(
            dialogue(tls, &[b"EHLO printer.local\r\n"], &[]),
            vec![w(HELLO), w(EHLO_AUTH)]
        );
    }
}

#[test]
fn ehlo_advertises_the_upstreams_extensions() {
    let exchange = crate::smtp::extensions::EXCHANGE_ONLINE;
    let seen = dialogue_with(
        &options(ClientTls::StartTlsRequired),
        exchange,
        &[b"EHLO a\r\n", b"STARTTLS\r\n", b"EHLO a\r\n"],
        &[],
    );
    let extensions = "250-PIPELINING\r\n250-SIZE 157286400\r\n250-ENHANCEDSTATUSCODES\r\n\
        250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n";
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w(&format!(
                "250-mailtls ready\r\n{extensions}250 STARTTLS\r\n"
            )),
            w(READY_FOR_TLS),
            Seen::StartTls,
            w(&format!(
                "250-mailtls ready\r\n{extensions}250-AUTH PLAIN LOGIN\r\n250 AUTH=PLAIN LOGIN\r\n"
            )),
        ]
    );
}

#[test]
fn starttls_then_ehlo_again_then_auth_plain() {
    let seen = dialogue(
        ClientTls::StartTlsRequired,
        &[
            b"EHLO a\r\n",
            b"AUTH PLAIN AGJvYgBwdw==\r\n",
            b"STARTTLS\r\n",
            b"STARTTLS\r\n",
            &auth_plain_line("bob", b"pw"),
            b"EHLO a\r\n",
            &auth_plain_line("bob", b"pw"),
        ],
        &[Verdict::Accept("2.7.0 Authentication successful")],
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w(EHLO_STARTTLS),
            w(NEED_STARTTLS),
            w(READY_FOR_TLS),
            Seen::StartTls,
            w("503 5.5.1 TLS is already active\r\n"),
            // RFC 3207: the EHLO before TLS no longer counts.
            w("503 5.5.1 Send EHLO first\r\n"),
            w(EHLO_AUTH),
            login("bob", b"pw"),
            accepted(b""),
        ]
    );
}

/// `STARTTLS\r\nRSET\r\n` in one write: the RSET came in the clear and must have no effect
/// after the handshake (CVE-2011-0411), nor may a pipelined AUTH.
#[test]
fn starttls_discards_bytes_pipelined_in_the_clear() {
    // Whole chunk only: fed byte by byte, the tail would arrive after the handshake.
    let injected = [
        b"STARTTLS\r\nRSET\r\n".to_vec(),
        [
            &b"STARTTLS\r\nEHLO evil\r\n"[..],
            &auth_plain_line("mallory", b"x"),
        ]
        .concat(),
    ];
    for first in injected {
        let seen = run(
            &options(ClientTls::StartTlsRequired),
            SmtpExtensions::default(),
            &[&first, b"NOOP\r\n"],
            &[],
            usize::MAX,
        );
        assert_eq!(
            seen,
            vec![
                w(HELLO),
                w(READY_FOR_TLS),
                Seen::StartTls,
                w("250 2.0.0 Ok\r\n"),
            ]
        );
    }
}

#[test]
fn input_before_the_handshake_completes_is_dropped() {
    let mut session = ClientSession::new(
        options(ClientTls::StartTlsRequired),
        SmtpExtensions::default(),
    );
    assert_eq!(session.next(), ClientStep::Write(HELLO.into()));
    session.feed(b"STARTTLS\r\n");
    assert_eq!(session.next(), ClientStep::Write(READY_FOR_TLS.into()));
    assert_eq!(session.next(), ClientStep::StartTls);
    session.feed(b"EHLO injected\r\n");
    assert_eq!(session.next(), ClientStep::NeedInput);
    session.tls_started();
    session.feed(&auth_plain_line("bob", b"pw"));
    assert_eq!(
        session.next(),
        ClientStep::Write(b"503 5.5.1 Send EHLO first\r\n".to_vec())
    );
}

#[test]
fn starttls_is_refused_where_not_offered_and_takes_no_arguments() {
    assert_eq!(
        dialogue(ClientTls::None, &[b"STARTTLS\r\nEHLO a\r\n"], &[]),
        vec![
            w(HELLO),
            w("502 5.5.1 STARTTLS is not offered here\r\n"),
            w(EHLO_AUTH)
        ]
    );
    assert_eq!(
        dialogue(ClientTls::StartTlsRequired, &[b"STARTTLS x\r\n"], &[]),
        vec![
            w(HELLO),
            w("501 5.5.4 Syntax: STARTTLS takes no arguments\r\n")
        ]
    );
}

#[test]
fn helo_clients_see_no_auth_but_may_use_it() {
    let seen = dialogue(
        ClientTls::None,
        &[
            b"HELO printer\r\n",
            &auth_plain_line("scan@example.com", b"pw"),
        ],
        &[Verdict::Accept("ok")],
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w("250 mailtls ready\r\n"),
            login("scan@example.com", b"pw"),
            accepted(b""),
        ]
    );
}

#[test]
fn auth_plain_with_and_without_an_initial_response() {
    let response = format!("{}\r\n", b64(b"\0bob\0pass word"));
    let seen = dialogue(
        ClientTls::Active,
        &[
            b"EHLO a\r\n",
            b"auth plain\r\n",
            response.as_bytes(),
            &auth_plain_line("bob", b"pass word"),
        ],
        &[
            Verdict::Reject("5.7.8 Error: authentication failed"),
            Verdict::Accept("ok"),
        ],
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w(EHLO_AUTH),
            w("334 \r\n"),
            login("bob", b"pass word"),
            w("535 5.7.8 Error: authentication failed\r\n"),
            login("bob", b"pass word"),
            accepted(b""),
        ]
    );
}

/// AUTH LOGIN as printers send it: Microsoft's exact prompts, and the user name either after
/// the first prompt or on the AUTH line itself.
#[test]
fn auth_login_in_two_steps_or_with_the_user_up_front() {
    let user = format!("{}\r\n", b64("scanner@example.com"));
    let password = format!("{}\r\n", b64("pa ss:wörd"));
    let seen = dialogue(
        ClientTls::Active,
        &[
            b"EHLO a\r\n",
            b"AUTH LOGIN\r\n",
            user.as_bytes(),
            password.as_bytes(),
            format!("AUTH LOGIN {user}").as_bytes(),
            password.as_bytes(),
        ],
        &[Verdict::Reject(""), Verdict::Accept("ok")],
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w(EHLO_AUTH),
            w(USERNAME_PROMPT),
            w(PASSWORD_PROMPT),
            login("scanner@example.com", "pa ss:wörd".as_bytes()),
            w("535 5.7.8 Authentication credentials invalid\r\n"),
            w(PASSWORD_PROMPT),
            login("scanner@example.com", "pa ss:wörd".as_bytes()),
            accepted(b""),
        ]
    );
}

#[test]
fn auth_can_be_cancelled_at_every_step_and_the_dialogue_goes_on() {
    let seen = dialogue(
        ClientTls::Active,
        &[
            b"EHLO a\r\n",
            b"AUTH PLAIN\r\n",
            b"*\r\n",
            b"AUTH LOGIN\r\n",
            b"*\r\n",
            b"AUTH LOGIN Ym9i\r\n",
            b"*\r\n",
            b"NOOP\r\n",
        ],
        &[],
    );
    let cancelled = "501 5.7.0 Authentication cancelled\r\n";
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w(EHLO_AUTH),
            w("334 \r\n"),
            w(cancelled),
            w(USERNAME_PROMPT),
            w(cancelled),
            w(PASSWORD_PROMPT),
            w(cancelled),
            w("250 2.0.0 Ok\r\n"),
        ]
    );
}

#[test]
fn malformed_responses_and_unknown_mechanisms_never_log_in() {
    let no_password = format!("AUTH PLAIN {}\r\n", b64(b"\0bob"));
    let seen = dialogue(
        ClientTls::Active,
        &[
            b"EHLO a\r\n",
            b"AUTH PLAIN not-base64!\r\n",
            no_password.as_bytes(),
            b"AUTH PLAIN =\r\n",
            b"AUTH LOGIN =\r\n",
            b"AUTH CRAM-MD5\r\n",
            b"AUTH XOAUTH2 dXNlcj0=\r\n",
            b"AUTH\r\n",
        ],
        &[],
    );
    let shape = "501 5.5.2 Malformed PLAIN response: the response does not have the form \
        authzid NUL authcid NUL password\r\n";
    let unknown = "504 5.5.4 Unrecognized authentication type\r\n";
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w(EHLO_AUTH),
            w("501 5.5.2 Malformed PLAIN response: the response is not valid base64\r\n"),
            w(shape),
            w(shape),
            w("501 5.5.2 Malformed LOGIN response: the user name is empty\r\n"),
            w(unknown),
            w(unknown),
            w("501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n"),
        ]
    );
}

#[test]
fn user_names_with_control_characters_are_refused() {
    let seen = dialogue(
        ClientTls::Active,
        &[
            b"EHLO a\r\n",
            &auth_plain_line("b\x1bob", b"pw"),
            format!("AUTH LOGIN {}\r\n", b64("bob\r\nRSET")).as_bytes(),
            b"cHc=\r\n",
        ],
        &[],
    );
    let refused =
        "535 5.7.8 Authentication credentials invalid: the user name contains control or invisible formatting characters\r\n";
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w(EHLO_AUTH),
            w(refused),
            w(PASSWORD_PROMPT),
            w(refused)
        ]
    );
}

/// Nothing of a mail transaction is accepted or forwarded before authentication.
#[test]
fn mail_transaction_commands_before_auth_are_refused() {
    let seen = dialogue(
        ClientTls::None,
        &[
            b"EHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nVRFY root\r\nEXPN all\r\n\
            ETRN x\r\nXYZZY\r\n\r\nRSET\r\nNOOP\r\nHELP\r\nEHLO\r\nQUIT\r\n",
        ],
        &[],
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w(EHLO_AUTH),
            w(NEED_AUTH),
            w(BAD_SEQUENCE),
            w(BAD_SEQUENCE),
            w(NEED_AUTH),
            w(NEED_AUTH),
            w(NEED_AUTH),
            w("500 5.5.2 Command not recognized\r\n"),
            w("500 5.5.2 Command not recognized\r\n"),
            w("250 2.0.0 Ok\r\n"),
            w("250 2.0.0 Ok\r\n"),
            w("214 2.0.0 Authenticate with AUTH PLAIN or AUTH LOGIN, then submit mail\r\n"),
            w("501 5.5.4 Syntax: EHLO hostname\r\n"),
            w("221 2.0.0 Bye\r\n"),
            Seen::Close(Ending::ClientQuit),
        ]
    );
}

/// A refused BDAT's chunk follows at once; its bytes are skipped, never read as commands.
#[test]
fn a_refused_bdat_chunk_is_skipped() {
    let seen = dialogue(
        ClientTls::None,
        &[
            b"EHLO a\r\nBDAT 12 LAST\r\nQUIT\r\nRSET\r\n",
            b"NOOP\r\nBDAT 0\r\nQUIT\r\n",
        ],
        &[],
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w(EHLO_AUTH),
            w(BAD_SEQUENCE),
            w("250 2.0.0 Ok\r\n"),
            w(BAD_SEQUENCE),
            w("221 2.0.0 Bye\r\n"),
            Seen::Close(Ending::ClientQuit),
        ]
    );
}

#[test]
fn auth_needs_ehlo_or_helo_first() {
    assert_eq!(
        dialogue(ClientTls::Active, &[&auth_plain_line("bob", b"pw")], &[]),
        vec![w(HELLO), w("503 5.5.1 Send EHLO first\r\n")]
    );
}

#[test]
fn bytes_pipelined_after_auth_belong_to_the_upstream() {
    let seen = dialogue(
        ClientTls::Active,
        &[
            &[
                &b"EHLO a\r\n"[..],
                &auth_plain_line("bob", b"pw"),
                b"MAIL FROM:<bob@example.com>\r\nRCPT TO:<a@b>\r\n",
            ]
            .concat(),
            b"DATA\r\n",
        ],
        &[Verdict::Accept("2.7.0 Authentication successful")],
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w(EHLO_AUTH),
            login("bob", b"pw"),
            accepted(b"MAIL FROM:<bob@example.com>\r\nRCPT TO:<a@b>\r\nDATA\r\n"),
        ]
    );
}

#[test]
fn rejections_carry_one_enhanced_code_and_cannot_inject_lines() {
    let seen = dialogue(
        ClientTls::Active,
        &[
            b"EHLO a\r\n",
            &auth_plain_line("a", b"b"),
            &auth_plain_line("a", b"b"),
            &auth_plain_line("a", b"b"),
        ],
        &[
            Verdict::Reject(
                "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled",
            ),
            Verdict::Reject("no\r\n250 fake"),
            Verdict::Reject("5.7.8"),
        ],
    );
    assert_eq!(
        seen[3..],
        [
            w("535 5.7.8 Authentication unsuccessful, SmtpClientAuthentication is disabled\r\n"),
            login("a", b"b"),
            w("535 5.7.8 no  250 fake\r\n"),
            login("a", b"b"),
            w("535 5.7.8 Authentication credentials invalid\r\n"),
        ]
    );
}

#[test]
fn bare_lf_line_endings_are_accepted() {
    let seen = dialogue(
        ClientTls::None,
        &[b"EHLO a\nAUTH LOGIN Ym9i\ncHc=\n"],
        &[Verdict::Accept("ok")],
    );
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
fn an_overlong_line_ends_the_dialogue_with_500_5_5_6() {
    let too_long = Seen::Close(Ending::ProtocolError("line too long".into()));
    let run =
        |phases: &[&[u8]]| dialogue_with(&limited(16), SmtpExtensions::default(), phases, &[]);
    // 16 bytes with CRLF fit a 16-byte cap; 17 do not.
    assert_eq!(
        run(&[b"NOOP 012345678\r\n"]),
        vec![w(HELLO), w("250 2.0.0 Ok\r\n")]
    );
    assert_eq!(
        run(&[b"NOOP 0123456789\r\nQUIT\r\n"]),
        vec![w(HELLO), w("500 5.5.6 Line too long\r\n"), too_long.clone()]
    );
    // Also a SASL response, as soon as the cap is passed.
    assert_eq!(
        run(&[b"EHLO a\r\n", b"AUTH PLAIN\r\n", &[b'A'; 16]]),
        vec![
            w(HELLO),
            w("250-mailtls ready\r\n250-AUTH PLAIN LOGIN\r\n250 AUTH=PLAIN LOGIN\r\n"),
            w("334 \r\n"),
            w("500 5.5.6 Line too long\r\n"),
            too_long
        ]
    );
}

#[test]
fn farewell_is_one_clean_421_line() {
    let mut session = ClientSession::new(options(ClientTls::Active), SmtpExtensions::default());
    assert_eq!(
        session.farewell("upstream mx.example unreachable"),
        b"421 4.3.0 upstream mx.example unreachable\r\n"
    );
    assert_eq!(session.farewell("a\r\nb"), b"421 4.3.0 a  b\r\n");
}

#[test]
fn quit_closes_and_later_input_is_ignored() {
    let mut session = ClientSession::new(options(ClientTls::Active), SmtpExtensions::default());
    session.feed(b"QUIT\r\n");
    assert_eq!(session.next(), ClientStep::Write(HELLO.into()));
    assert_eq!(
        session.next(),
        ClientStep::Write(b"221 2.0.0 Bye\r\n".to_vec())
    );
    assert_eq!(session.next(), ClientStep::Close(Ending::ClientQuit));
    session.feed(b"EHLO a\r\n");
    assert_eq!(session.next(), ClientStep::Close(Ending::ClientQuit));
}

#[test]
fn a_verdict_without_a_login_is_ignored() {
    let mut session = ClientSession::new(options(ClientTls::Active), SmtpExtensions::default());
    assert_eq!(session.next(), ClientStep::Write(HELLO.into()));
    session.login_rejected("stray");
    assert_eq!(session.next(), ClientStep::NeedInput);
}

#[test]
fn debug_output_never_shows_a_password() {
    let mut session = ClientSession::new(options(ClientTls::Active), SmtpExtensions::default());
    let line = auth_plain_line("bob", b"hunter2");
    session.feed(
        &[
            &b"EHLO a\r\n"[..],
            &line,
            b"AUTH LOGIN\r\nYm9i\r\naHVudGVyMg==\r\n",
        ]
        .concat(),
    );
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
    for secret in ["hunter2", "aHVudGVyMg", &b64(b"\0bob\0hunter2")] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[test]
fn a_policy_refusal_is_530_5_7_0_and_the_client_may_try_again() {
    let seen = dialogue(
        ClientTls::Active,
        &[
            b"EHLO a\r\n",
            &auth_plain_line("bob", b"pw"),
            &auth_plain_line("bob", b"pw"),
        ],
        &[
            Verdict::RefusedByPolicy("4.7.0 TLS 1.0 is no longer accepted.\r\n250 fake"),
            Verdict::Accept("ok"),
        ],
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w(EHLO_AUTH),
            login("bob", b"pw"),
            w("530 5.7.0 TLS 1.0 is no longer accepted.  250 fake\r\n"),
            login("bob", b"pw"),
            accepted(b""),
        ]
    );
}

/// Runs the client's `phases` on a relaying listener in every chunking.
fn relay_dialogue(tls: ClientTls, phases: &[&[u8]], verdicts: &[Verdict]) -> Vec<Seen> {
    testing::in_every_chunking(|chunk| {
        let session = ClientSession::new(options(tls), SmtpExtensions::default()).relaying();
        run_session(session, phases, verdicts, chunk)
    })
}

const RELAY_REFUSED: &str = "550 5.7.1 Sender not allowed\r\n";

fn relayed(to_upstream: &[u8]) -> Seen {
    Seen::Accepted {
        to_client: String::new(),
        to_upstream: to_upstream.to_vec(),
    }
}

/// A device that cannot authenticate: its MAIL command, with what it pipelined after it, goes
/// upstream once the gateway lets it; the client hears nothing from the gateway, the
/// upstream's reply to MAIL is its answer.
#[test]
fn relay_mode_hands_a_mail_command_before_auth_to_the_gateway() {
    let seen = relay_dialogue(
        ClientTls::None,
        &[b"EHLO printer\r\nmail from: <Scanner@Contoso.example> SIZE=100\r\nRCPT TO:<a@b>\r\nDATA\r\n"],
        &[Verdict::Accept("2.7.0 ok")],
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w(EHLO_AUTH),
            Seen::Relay("Scanner@Contoso.example".into()),
            relayed(b"mail from: <Scanner@Contoso.example> SIZE=100\r\nRCPT TO:<a@b>\r\nDATA\r\n"),
        ]
    );
}

/// A refused relay request gets 550 5.7.1 (or 451 with the gateway's temporary code), the
/// transaction that was to follow gets 503, and the client may try again or AUTH.
#[test]
fn relay_mode_refusals_are_550_5_7_1_and_the_dialogue_goes_on() {
    let seen = relay_dialogue(
        ClientTls::None,
        &[
            b"EHLO printer\r\nMAIL FROM:<ceo@contoso.example>\r\nRCPT TO:<a@b>\r\n",
            b"MAIL FROM:<scanner@contoso.example>\r\n",
            &auth_plain_line("bob", b"pw"),
        ],
        &[
            Verdict::Reject("5.7.1 Sender not allowed"),
            Verdict::Reject("4.7.0 The relay account cannot log in; try again later"),
            Verdict::Accept("2.7.0 ok"),
        ],
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w(EHLO_AUTH),
            Seen::Relay("ceo@contoso.example".into()),
            w(RELAY_REFUSED),
            w(BAD_SEQUENCE),
            Seen::Relay("scanner@contoso.example".into()),
            w("451 4.7.0 The relay account cannot log in; try again later\r\n"),
            login("bob", b"pw"),
            accepted(b""),
        ]
    );
    // A reason without a code, or with a permanent one, is always 550 5.7.1.
    let seen = relay_dialogue(
        ClientTls::None,
        &[b"EHLO a\r\nMAIL FROM:<x@y>\r\n"],
        &[Verdict::Reject("5.7.0 Sender not allowed")],
    );
    assert_eq!(seen.last(), Some(&w(RELAY_REFUSED)));
}

/// Relay mode lets no MAIL through before EHLO, before STARTTLS on a STARTTLS listener, or
/// with a path that does not read; without relay mode MAIL still needs AUTH.
#[test]
fn relay_mode_needs_ehlo_tls_and_a_readable_sender() {
    let seen = relay_dialogue(
        ClientTls::StartTlsRequired,
        &[
            b"MAIL FROM:<a@b>\r\nEHLO a\r\nMAIL FROM:<a@b>\r\nSTARTTLS\r\n",
            b"MAIL FROM:<a@b>\r\nEHLO a\r\nMAIL FROM:a@b\r\nMAIL\r\nMAIL FROM:<a@b>\r\n",
        ],
        &[Verdict::Reject("no")],
    );
    assert_eq!(
        seen,
        vec![
            w(HELLO),
            w(NEED_STARTTLS),
            w(EHLO_STARTTLS),
            w(NEED_STARTTLS),
            w(READY_FOR_TLS),
            Seen::StartTls,
            w("503 5.5.1 Send EHLO first\r\n"),
            w(EHLO_AUTH),
            w("501 5.5.4 Syntax: MAIL FROM:<address>\r\n"),
            w("501 5.5.4 Syntax: MAIL FROM:<address>\r\n"),
            Seen::Relay("a@b".into()),
            w("550 5.7.1 no\r\n"),
        ]
    );
    let seen = dialogue(ClientTls::None, &[b"EHLO a\r\nMAIL FROM:<a@b>\r\n"], &[]);
    assert_eq!(seen.last(), Some(&w(NEED_AUTH)));
}
