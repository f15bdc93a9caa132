//! Test helpers that drive the dialogues the way the gateway does, for both protocols and both
//! sides: feed what the peer sends, step until input is needed, answer logins and STARTTLS.
//! Each script is run fed whole and in small pieces down to single bytes, and every run must
//! see the same, since a machine must not depend on how its input was chunked.

use std::fmt::Debug;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::{
    BearerMechanism, BearerToken, ClientDialogue, ClientStep, ClientTls, Credentials,
    DialogueOptions, Limits, LoginAccepted, Secret, UpstreamDialogue, UpstreamStep,
};

/// The options the scripted client dialogues run with, greeting "mailtls ready".
pub(crate) fn options(tls: ClientTls) -> DialogueOptions {
    DialogueOptions {
        tls,
        limits: Limits::default(),
        greeting: "mailtls ready".into(),
    }
}

/// Credentials the gateway accepts; panics on ones it refuses.
pub(crate) fn creds(user: &str, password: &[u8]) -> Credentials {
    Credentials::new(user.into(), Secret::new(password)).expect("acceptable credentials")
}

/// An IMAP ID command tagged `tag` with `pairs` pairs: field names `n0`, `n1`... padded with
/// `x` to `name_len` octets, values of `value_len` octets of `v`.
pub(crate) fn id_command(tag: &str, pairs: usize, name_len: usize, value_len: usize) -> String {
    let fields: Vec<String> = (0..pairs)
        .map(|i| {
            let name = format!("{:x<name_len$}", format!("n{i}"));
            format!("\"{name}\" \"{}\"", "v".repeat(value_len))
        })
        .collect();
    format!("{tag} ID ({})\r\n", fields.join(" "))
}

/// A token for `mailbox` sent with `mechanism`.
pub(crate) fn bearer(mailbox: &str, token: &str, mechanism: BearerMechanism) -> BearerToken {
    BearerToken::new(mailbox, Secret::new(token), mechanism).expect("a well-formed token")
}

/// The raw SASL message a base64 response (as written, maybe with a command before it and a
/// line ending after it) decodes to: the check that does not trust the encoder under test.
pub(crate) fn decoded_response(written: &str) -> Vec<u8> {
    let b64 = written.trim_end().rsplit(' ').next().expect("a response");
    STANDARD.decode(b64).expect("base64")
}

/// The base64 of a JSON failure status, as a server sends it in a challenge.
pub(crate) fn challenge(json: &str) -> String {
    STANDARD.encode(json)
}

/// Runs a script fed whole (`run(usize::MAX)`), then in pieces of a few sizes, asserts that
/// every run gives the same, and returns it. Odd sizes make pieces end inside line endings and
/// literal announcements.
pub(crate) fn in_every_chunking<T: PartialEq + Debug>(run: impl Fn(usize) -> T) -> T {
    let whole = run(usize::MAX);
    for chunk in [1, 2, 3, 7] {
        assert_eq!(run(chunk), whole, "fed in chunks of {chunk}");
    }
    whole
}

/// The peer's input: `phases` in order, each cut into pieces of `chunk` bytes. A phase is what
/// the peer sends before it waits for an answer, so a piece never spans two of them.
fn pieces<'a>(phases: &'a [&'a [u8]], chunk: usize) -> impl Iterator<Item = &'a [u8]> {
    phases.iter().flat_map(move |phase| phase.chunks(chunk))
}

/// How the test gateway answers a `Login`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Verdict {
    /// `login_accepted` with this upstream text.
    Accept(&'static str),
    /// `login_rejected` with this reason.
    Reject(&'static str),
    /// `policy_refused` with this message.
    RefusedByPolicy(&'static str),
}

/// What a client-facing dialogue did in one run.
#[derive(Debug)]
pub(crate) struct ClientRun {
    /// Every step but `NeedInput`, in order. `tls_started` was called at once after each
    /// `StartTls`, and each `Close` was checked to repeat.
    pub(crate) steps: Vec<ClientStep>,
    /// The hand-over if a login was accepted. It is made after all input was fed, so
    /// `to_upstream` shows the session kept what the client sent while awaiting the verdict.
    pub(crate) accepted: Option<LoginAccepted>,
}

/// Feeds the client's `phases` to `session` in pieces of `chunk` bytes, stepping it before the
/// first piece and after each until it needs input, and answering each `Login` with the next of
/// `verdicts`. Stepping stops at an accepted login or a `Close`; input is fed on regardless.
pub(crate) fn run_client<D: ClientDialogue>(
    mut session: D,
    phases: &[&[u8]],
    verdicts: &[Verdict],
    chunk: usize,
) -> ClientRun {
    let mut verdicts = verdicts.iter();
    let mut steps = Vec::new();
    let mut accepted = None;
    let mut over = false;
    let mut step_until_input = |session: &mut D| {
        while !over {
            let step = session.next();
            match &step {
                ClientStep::NeedInput => return,
                ClientStep::StartTls => session.tls_started(),
                ClientStep::Login(_) | ClientStep::Relay { .. } => {
                    match verdicts.next().expect("a verdict for every login") {
                        Verdict::Accept(text) => {
                            accepted = Some(*text);
                            over = true;
                        }
                        Verdict::Reject(reason) => session.login_rejected(reason),
                        Verdict::RefusedByPolicy(message) => session.policy_refused(message),
                    }
                }
                ClientStep::Close(ending) => {
                    assert_eq!(session.next(), ClientStep::Close(ending.clone()));
                    over = true;
                }
                ClientStep::Write(_) | ClientStep::ClientId(_) => {}
            }
            steps.push(step);
        }
    };
    step_until_input(&mut session);
    for piece in pieces(phases, chunk) {
        session.feed(piece);
        step_until_input(&mut session);
    }
    ClientRun {
        steps,
        accepted: accepted.map(|text| session.login_accepted(text, None)),
    }
}

/// What an upstream login did; writes are kept as text so that failures read well
/// (`UpstreamStep` shows only their length).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum UpstreamSeen {
    Wrote(String),
    StartTls,
    /// `leftover` plus whatever the server sent after it, as the gateway passes both on.
    Authenticated {
        text: String,
        leftover: Vec<u8>,
    },
    Rejected(String),
    TokenRefused {
        text: String,
        oauth_error: Option<String>,
    },
    Failed(String),
}

pub(crate) fn wrote(text: &str) -> UpstreamSeen {
    UpstreamSeen::Wrote(text.into())
}

pub(crate) fn authenticated(text: &str, leftover: &[u8]) -> UpstreamSeen {
    UpstreamSeen::Authenticated {
        text: text.into(),
        leftover: leftover.to_vec(),
    }
}

/// Feeds the server's `phases` to `login` in pieces of `chunk` bytes, stepping it before the
/// first piece and after each until it needs input, and calling `tls_started` on `StartTls`.
/// After the outcome the machine is fed no more; what is left goes to an `Authenticated`
/// leftover.
pub(crate) fn run_upstream<D: UpstreamDialogue>(
    mut login: D,
    phases: &[&[u8]],
    chunk: usize,
) -> Vec<UpstreamSeen> {
    let mut seen = Vec::new();
    let mut unfed = Vec::new();
    let mut step_until_input = |login: &mut D| loop {
        let step = match login.next() {
            UpstreamStep::NeedInput => return false,
            UpstreamStep::Write(bytes) => {
                UpstreamSeen::Wrote(String::from_utf8_lossy(&bytes).into_owned())
            }
            UpstreamStep::StartTls => {
                login.tls_started();
                UpstreamSeen::StartTls
            }
            UpstreamStep::Authenticated { text, leftover } => {
                UpstreamSeen::Authenticated { text, leftover }
            }
            UpstreamStep::Rejected { text } => UpstreamSeen::Rejected(text),
            UpstreamStep::TokenRefused { text, oauth_error } => {
                UpstreamSeen::TokenRefused { text, oauth_error }
            }
            UpstreamStep::Failed { reason } => UpstreamSeen::Failed(reason),
        };
        let over = !matches!(step, UpstreamSeen::Wrote(_) | UpstreamSeen::StartTls);
        seen.push(step);
        if over {
            return true;
        }
    };
    let mut over = step_until_input(&mut login);
    for piece in pieces(phases, chunk) {
        if over {
            unfed.extend_from_slice(piece);
        } else {
            login.feed(piece);
            over = step_until_input(&mut login);
        }
    }
    if let Some(UpstreamSeen::Authenticated { leftover, .. }) = seen.last_mut() {
        leftover.extend(unfed);
    }
    seen
}
