//! One client session, from accept to the session record. [`run_bridge`] shows its stages in
//! order: client address (PROXY protocol header; a sender that may not send one is closed at
//! once and only counted) ─► the limits of that address (over them the connection is closed at
//! once and only counted, never recorded) ─► client TLS (OpenSSL) ─►
//! pre-auth dialogue (proto) until credentials, or on a relaying SMTP listener a MAIL command
//! from a listed network and sender ─► checks (failed-login throttle, TLS policy, a logged-in
//! slot) ─► upstream login (rustls) ─► hand-over ─► byte splice. Each stage reports
//! what it learned as a [`Fact`], merged into the one record the session writes when it ends.

mod bridge;
mod client_handshake;
mod facts;
mod pre_auth;
mod splice;
mod submission_watch;
mod upstream_auth;
mod upstream_login;

use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::FutureExt;
use policy::Verdict;
use proto::{ClientDialogue, ClientTls, Credentials, DialogueOptions, Limits};
use store::{
    Outcome, PolicyDecision, RefusalReason, RefusedConnection, SessionRecord, SessionRecorder,
};
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::time::Instant;
use wire::TlsVersion;

use crate::client_limits::UnauthenticatedSlot;
use crate::listener::ListenerContext;
use crate::proxy_header::{self, NoClient};
use crate::settings::{ClientTlsMode, Protocol, RelaySettings};
use crate::stream::{enable_keepalive, ByteTally, Counted, MaybeTls, Rewind};
use crate::token_logins::MailboxSlot;
use facts::{Fact, Facts};
use pre_auth::Presented;
use submission_watch::{Direction, Watched, WatchedStream};
use upstream_login::LoggedIn;

pub(crate) use bridge::{Bridge, ImapBridge, Pop3Bridge, SmtpBridge};

/// Rejected logins one connection may try before the gateway hangs up, so a device with a
/// wrong password cannot hammer (and lock out) the upstream mailbox.
const MAX_FAILED_LOGINS: u32 = 3;

/// The client's TCP connection, possibly with TLS on top, counting application bytes.
pub(crate) type ClientStream =
    Counted<MaybeTls<Rewind<TcpStream>, tokio_openssl::SslStream<Rewind<TcpStream>>>>;

/// How a session ended, for its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionEnd {
    pub outcome: Outcome,
    pub detail: Option<String>,
}

impl SessionEnd {
    pub fn new(outcome: Outcome, detail: impl Into<String>) -> Self {
        SessionEnd {
            outcome,
            detail: Some(detail.into()),
        }
    }
}

/// A connection closed at once, before any dialogue (its address over its limits, or not
/// allowed to send a PROXY header): counted per address and minute, not recorded as a
/// session, so a flood cannot fill the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused(pub(crate) RefusalReason);

/// Serves one accepted connection to its end and records it.
pub(crate) async fn serve(
    ctx: Arc<ListenerContext>,
    tcp: TcpStream,
    peer: SocketAddr,
    recorder: SessionRecorder,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut record = new_record(&ctx, peer);
    let tally = Arc::new(ByteTally::default());
    // A bug in one session must neither take the gateway down nor leave the session
    // unrecorded: the panic becomes this session's outcome.
    let mut facts = Facts::new(&mut record);
    let session = AssertUnwindSafe(run(&ctx, tcp, peer, &mut facts, tally.clone())).catch_unwind();
    let end = tokio::select! {
        end = session => match end {
            Ok(Ok(end)) => end,
            Ok(Err(Refused(reason))) => {
                refused(&ctx, &record, reason, &recorder);
                return;
            }
            Err(_) => {
                tracing::error!(listener = %ctx.settings.name, client = %peer, "session task panicked");
                SessionEnd::new(Outcome::ProtocolError, "internal error in the gateway (a bug: please report it)")
            }
        },
        // The outcome so far stands (ok once logged in); the detail says why it ended.
        _ = shutdown.wait_for(|stop| *stop) => SessionEnd {
            outcome: record.outcome,
            detail: Some("the gateway shut down".into()),
        },
    };
    record.bytes_from_client = tally.read();
    record.bytes_to_client = tally.written();
    record.ended_at = SystemTime::now();
    record.outcome = end.outcome;
    record.detail = end.detail;
    tracing::info!(
        listener = %record.listener,
        client = %SocketAddr::new(record.client_addr, record.client_port),
        login = record.login.as_deref().unwrap_or("-"),
        tls = record.tls_version.map_or("-", TlsVersion::as_str),
        offered_max_tls = record.offered_max_tls.map_or("-", TlsVersion::as_str),
        upstream = %record.upstream,
        outcome = record.outcome.as_str(),
        detail = record.detail.as_deref().unwrap_or(""),
        bytes_from_client = record.bytes_from_client,
        bytes_to_client = record.bytes_to_client,
        "session ended"
    );
    crate::metrics::session_ended(&ctx.settings, &record);
    recorder.record(record);
}

/// Counts a connection refused before its dialogue (`record` holds no more than its
/// address).
fn refused(
    ctx: &ListenerContext,
    record: &SessionRecord,
    reason: RefusalReason,
    recorder: &SessionRecorder,
) {
    tracing::debug!(
        listener = %ctx.settings.name,
        client = %SocketAddr::new(record.client_addr, record.client_port),
        %reason,
        "connection refused"
    );
    if reason == RefusalReason::ClientLimit {
        crate::metrics::refused_by_client_limit(&ctx.settings.name);
    }
    recorder.refused(RefusedConnection {
        at: SystemTime::now(),
        listener: ctx.settings.name.clone(),
        client_addr: record.client_addr,
        reason,
    });
}

fn new_record(ctx: &ListenerContext, peer: SocketAddr) -> SessionRecord {
    let now = SystemTime::now();
    SessionRecord {
        source: store::Source::Gateway,
        started_at: now,
        ended_at: now,
        listener: ctx.settings.name.clone(),
        protocol: ctx.settings.protocol.as_str().to_string(),
        client_addr: peer.ip(),
        client_port: peer.port(),
        tls_version: None,
        tls_cipher: None,
        offered_max_tls: None,
        sni: None,
        ja4: None,
        offered: store::OfferedHello::default(),
        client_id: Vec::new(),
        login: None,
        upstream: ctx.upstream.settings.name.clone(),
        upstream_tls_version: None,
        // Until the session gets further, a close means the client went away.
        outcome: Outcome::ClientClosed,
        detail: None,
        bytes_from_client: 0,
        bytes_to_client: 0,
        policy: None,
        envelope_sender: None,
        messages_submitted: None,
    }
}

async fn run(
    ctx: &ListenerContext,
    tcp: TcpStream,
    peer: SocketAddr,
    facts: &mut Facts<'_>,
    tally: Arc<ByteTally>,
) -> Result<SessionEnd, Refused> {
    match ctx.settings.protocol {
        Protocol::Imap => run_bridge::<ImapBridge>(ctx, tcp, peer, facts, tally).await,
        Protocol::Pop3 => run_bridge::<Pop3Bridge>(ctx, tcp, peer, facts, tally).await,
        Protocol::Smtp => run_bridge::<SmtpBridge>(ctx, tcp, peer, facts, tally).await,
    }
}

/// The settings of the listener's client-facing dialogue.
fn dialogue_options(ctx: &ListenerContext) -> DialogueOptions {
    DialogueOptions {
        tls: match ctx.settings.tls {
            ClientTlsMode::Implicit => ClientTls::Active,
            ClientTlsMode::StartTls => ClientTls::StartTlsRequired,
            ClientTlsMode::None => ClientTls::None,
        },
        limits: Limits::default(),
        greeting: ctx.settings.greeting.clone(),
    }
}

/// The stages of a session, in order. A connection refused before its dialogue ends in
/// `Err`, to be counted rather than recorded.
async fn run_bridge<B: Bridge>(
    ctx: &ListenerContext,
    tcp: TcpStream,
    peer: SocketAddr,
    facts: &mut Facts<'_>,
    tally: Arc<ByteTally>,
) -> Result<SessionEnd, Refused> {
    // Mail dialogues are small request/response exchanges: do not let Nagle delay them.
    let _ = tcp.set_nodelay(true);
    enable_keepalive(&tcp);

    // 0. The client's address: the socket's peer, or on a listener behind load balancers
    //    what their PROXY protocol header names (read before anything else, never forwarded).
    let accepted = proxy_header::accept_client(ctx.proxy.as_ref(), &ctx.settings.name, tcp, peer);
    let (mut tcp, client_addr) = match accepted.await {
        Ok(accepted) => accepted,
        Err(NoClient::Untrusted) => return Err(Refused(RefusalReason::UntrustedProxy)),
        Err(NoClient::Ended(end)) => return Ok(end),
    };
    facts.note(Fact::ClientAddress(client_addr));
    let relaying = ctx.settings.relay.is_some();
    let mut dialogue = B::client(dialogue_options(ctx), &ctx.upstream, relaying);

    // 0b. The limits of that address: a place among the unauthenticated connections, held
    //     until the upstream accepts a login. Over them the connection is closed at once.
    let unauthenticated: UnauthenticatedSlot =
        match ctx.limits.admit_unauthenticated(client_addr.ip()) {
            Ok(slot) => slot,
            Err(reason) => {
                close_over_limits(ctx, &mut tcp, &mut dialogue, reason).await;
                return Err(Refused(reason));
            }
        };

    let deadline = Instant::now() + ctx.timeouts.pre_auth;
    let mut client: ClientStream = Counted::new(MaybeTls::Plain(tcp), tally);

    // 1. Client TLS at once on implicit-TLS listeners (STARTTLS comes inside the dialogue).
    //    Boxed, like the login stages: a future is as large as its largest stage, and a
    //    session spends hours in the splice after these have finished.
    if ctx.settings.tls == ClientTlsMode::Implicit {
        let handshake = client_handshake::upgrade(client, ctx, facts, &mut dialogue, deadline);
        client = match Box::pin(handshake).await {
            Ok(tls) => tls,
            Err(end) => return Ok(end),
        };
    }

    // 2-4. Pre-auth dialogue, checks and upstream login, again after each refused login.
    let login = log_in::<B>(client, &mut dialogue, ctx, facts, deadline);
    let (mut client, logged_in, held) = match Box::pin(login).await {
        Ok(done) => done,
        Err(end) => return Ok(end),
    };
    // Logged in: the unauthenticated place goes to the next client; the session holds its
    // logged-in slot until it ends.
    drop(unauthenticated);
    let LoggedIn {
        stream: mut upstream,
        text,
        leftover,
        tls_version,
    } = logged_in;
    facts.note(Fact::LoggedIn {
        upstream_tls: tls_version,
    });

    // 5. Hand-over: the login reply and any bytes either side sent early. Its own future,
    //    done before the splice, so its buffers do not stay in the session's state.
    let accepted = dialogue.login_accepted(&text, held.warning.as_deref());
    let handover = Box::pin(async {
        client.write_all(&accepted.to_client).await?;
        client.write_all(&leftover).await?;
        client.flush().await?;
        upstream.write_all(&accepted.to_upstream).await?;
        upstream.flush().await
    });
    let handed_over = handover.await;
    // SMTP records the first envelope sender and counts the messages: pipelined commands may
    // already hold a transaction's start, and the upstream's early bytes its replies.
    let watch = B::submission_watch();
    let watching = watch.is_some();
    let mut watched = Watched::new(watch, facts);
    watched.saw(Direction::Upstream, &accepted.to_upstream);
    watched.saw(Direction::ToClient, &leftover);
    drop((text, leftover, accepted));

    // 6. The byte splice, until either side closes. Only a watched session reads through the
    //    watch: IMAP and POP3 splice the bare streams, with nothing added per read.
    Ok(match handed_over {
        Ok(()) if !watching => {
            drop(watched);
            splice::splice(&mut client, &mut upstream).await
        }
        Ok(()) => {
            let watched = Mutex::new(watched);
            let mut client = WatchedStream {
                stream: &mut client,
                direction: Direction::Upstream,
                watched: &watched,
            };
            let mut upstream = WatchedStream {
                stream: &mut upstream,
                direction: Direction::ToClient,
                watched: &watched,
            };
            splice::splice(&mut client, &mut upstream).await
        }
        Err(e) => SessionEnd::new(Outcome::Ok, format!("connection lost at hand-over: {e}")),
    })
}

/// Closes a connection over the limits of its address, with a line in the client's protocol
/// where it expects one. An implicit-TLS client expects a TLS handshake, which a refused
/// connection does not get: it is closed without a word.
async fn close_over_limits<D: ClientDialogue>(
    ctx: &ListenerContext,
    tcp: &mut Rewind<TcpStream>,
    dialogue: &mut D,
    reason: RefusalReason,
) {
    if ctx.settings.tls == ClientTlsMode::Implicit {
        return;
    }
    let text = match reason {
        RefusalReason::ClientLimit => "Too many connections from your address; try again later",
        RefusalReason::PreAuthBudget => "Too many connections; try again later",
        // Refused before the limits are checked, without a word.
        RefusalReason::UntrustedProxy => return,
    };
    let line = dialogue.farewell(&format!(
        "{} {text}",
        ctx.settings.protocol.try_later_code()
    ));
    // A fresh socket's send buffer is empty: this returns at once but for a broken peer.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        tcp.write_all(&line).await?;
        tcp.shutdown().await
    })
    .await;
}

/// Stages 2-4 of a session, repeated while the client retries after a refused login:
/// the pre-auth dialogue until the client presents credentials, the checks (failed-login
/// throttle, TLS floor policy, a logged-in slot), and the upstream login. Returns the client, the
/// logged-in upstream and the session's logged-in slot, or how the session ended.
async fn log_in<B: Bridge>(
    mut client: ClientStream,
    dialogue: &mut B::Client,
    ctx: &ListenerContext,
    facts: &mut Facts<'_>,
    deadline: Instant,
) -> Result<(ClientStream, LoggedIn, Held), SessionEnd> {
    let mut failed_logins = 0;
    let mut last_refusal: Option<SessionEnd> = None;
    loop {
        // 2. The pre-auth dialogue, until credentials (or a relay request).
        let presented;
        (client, presented) =
            match pre_auth::presented(client, dialogue, ctx, facts, deadline).await {
                Ok(received) => received,
                // A client that leaves after a refused login ends with that refusal.
                Err(end) if end.outcome == Outcome::ClientClosed => {
                    return Err(last_refusal.unwrap_or(end))
                }
                Err(end) => return Err(end),
            };
        let login_as = match presented {
            Presented::Login(credentials) => LoginAs::Device(credentials),
            Presented::Relay { sender } => {
                match check_relay(ctx, facts.record().client_addr, &sender) {
                    Ok(relay) => LoginAs::Relay(relay),
                    // Refused relay requests count as failed logins of the connection, so a
                    // client cannot probe sender after sender on one connection.
                    Err(refusal) => {
                        failed_logins += 1;
                        if failed_logins >= MAX_FAILED_LOGINS {
                            let line = dialogue.farewell("Too many refused requests");
                            say_goodbye(&mut client, &line).await;
                            return Err(refusal.end);
                        }
                        match &refusal.client_text {
                            RefusalText::Rejected(text) => dialogue.login_rejected(text),
                            RefusalText::ByPolicy(message) => dialogue.policy_refused(message),
                        }
                        last_refusal = Some(refusal.end);
                        continue;
                    }
                }
            }
        };
        let user = match &login_as {
            LoginAs::Device(credentials) => credentials.user(),
            LoginAs::Relay(relay) => relay.login_name(),
        };
        facts.note(Fact::Login(user.to_owned()));

        // 3. Checks: may this client log in now?
        let (session_slot, warning) = match check_login(ctx, facts, user) {
            Ok(admitted) => admitted,
            Err(refusal) => {
                match &refusal.client_text {
                    RefusalText::Rejected(text) => dialogue.login_rejected(text),
                    RefusalText::ByPolicy(message) => dialogue.policy_refused(message),
                }
                last_refusal = Some(refusal.end);
                continue;
            }
        };
        let client_addr = facts.record().client_addr;
        let relaying = matches!(login_as, LoginAs::Relay(_));

        // 4. Who logs in upstream (the device's own password, a local account's mailbox
        //    with its token, or the listener's relay account), then the upstream login.
        let authorised = match login_as {
            LoginAs::Device(credentials) => {
                upstream_auth::authorise(&ctx.upstream, credentials).await
            }
            LoginAs::Relay(relay) => upstream_auth::relay(&ctx.upstream, &relay.login).await,
        };
        let logged_in = match authorised {
            Ok(authorised) => {
                let upstream = &ctx.upstream;
                let login =
                    upstream_login::login::<B>(upstream, authorised.auth, &ctx.timeouts, deadline)
                        .await;
                if let (Err(failure), Some(token)) = (&login, &authorised.token) {
                    if failure.outcome == Outcome::TokenRefused {
                        upstream_auth::token_refused(upstream, token).await;
                    }
                }
                login.map(|logged_in| (logged_in, authorised.mailbox))
            }
            Err(refusal) => Err(refusal),
        };
        let refusal = match logged_in {
            Ok((logged_in, mailbox)) => {
                let held = Held {
                    _session: session_slot,
                    _mailbox: mailbox,
                    warning,
                };
                return Ok((client, logged_in, held));
            }
            // The relay account's password is the gateway's configuration, not the device's
            // fault: the device is told to try later, and the admin is told why.
            Err(failure) if failure.outcome == Outcome::AuthFailed && relaying => {
                tracing::error!(
                    listener = %ctx.settings.name,
                    upstream = %ctx.upstream.settings.name,
                    reason = failure.detail.as_deref().unwrap_or(""),
                    "the upstream refused the relay account's login; check listener.relay"
                );
                dialogue.login_rejected(&format!(
                    "{} The relay account cannot log in upstream; try again later",
                    ctx.settings.protocol.try_later_code()
                ));
                last_refusal = Some(failure);
                continue;
            }
            Err(failure) if failure.outcome == Outcome::AuthFailed => {
                ctx.limits.login_failed(client_addr);
                failure
            }
            // Not the device's fault (no token, token refused, mailbox full): it is told to
            // try later and may, without that counting as a failed login.
            Err(failure) if failure.refusal_text(ctx.settings.protocol).is_some() => {
                tracing::warn!(
                    upstream = %ctx.upstream.settings.name,
                    outcome = failure.outcome.as_str(),
                    reason = failure.detail.as_deref().unwrap_or(""),
                    "upstream login not attempted or refused for the gateway's token"
                );
                let text = failure
                    .refusal_text(ctx.settings.protocol)
                    .unwrap_or_default();
                dialogue.login_rejected(&text);
                last_refusal = Some(failure);
                continue;
            }
            Err(failure) => {
                tracing::warn!(
                    upstream = %ctx.upstream.settings.name,
                    outcome = failure.outcome.as_str(),
                    reason = failure.detail.as_deref().unwrap_or(""),
                    "upstream login failed"
                );
                let line = dialogue.farewell(&failure.client_text(&ctx.upstream.settings.name));
                say_goodbye(&mut client, &line).await;
                return Err(failure);
            }
        };
        failed_logins += 1;
        if failed_logins >= MAX_FAILED_LOGINS {
            let line = dialogue.farewell("Too many failed logins");
            say_goodbye(&mut client, &line).await;
            return Err(refusal);
        }
        dialogue.login_rejected(refusal.detail.as_deref().unwrap_or_default());
        last_refusal = Some(refusal);
    }
}

/// Whom the gateway logs in upstream for: the device with its own credentials, or, for mail
/// relayed without authentication, the listener's relay account.
enum LoginAs<'c> {
    Device(Credentials),
    Relay(&'c RelaySettings),
}

/// What a logged-in session holds until it ends: its logged-in slot, and its place in its
/// mailbox's cap when the account has one (both give their place back when dropped); and the
/// policy's warning the client is shown with its login.
struct Held {
    _session: OwnedSemaphorePermit,
    _mailbox: Option<MailboxSlot>,
    warning: Option<String>,
}

/// A login refused by the gateway itself: what the client is told and how the session ends
/// if the client then leaves.
struct LoginRefusal {
    client_text: RefusalText,
    end: SessionEnd,
}

/// What a client whose login the gateway refused is told.
enum RefusalText {
    /// The text of a failed login's NO / -ERR / 535 (with its response code).
    Rejected(String),
    /// A TLS floor policy's message, said in the protocol's policy terms (see
    /// [`ClientDialogue::policy_refused`]).
    ByPolicy(String),
}

/// Stage 3, between credentials and the upstream login. First the failed-login throttle: an
/// address that failed too many logins lately is refused here, so the upstream (whose own
/// lockout would hit everyone behind the gateway's address) never sees the attempt. Then the
/// TLS floor policy (recorded whatever it decides), then a logged-in slot, taken before the
/// upstream login so a full gateway never logs in only to hang up. Returns the slot the
/// session holds once logged in and the policy's warning for the client, if any.
fn check_login(
    ctx: &ListenerContext,
    facts: &mut Facts<'_>,
    user: &str,
) -> Result<(OwnedSemaphorePermit, Option<String>), LoginRefusal> {
    let try_later = ctx.settings.protocol.try_later_code();
    let record = facts.record();
    if ctx.limits.login_throttled(record.client_addr) {
        crate::metrics::login_throttled(&ctx.settings.name);
        return Err(LoginRefusal {
            client_text: RefusalText::Rejected(format!(
                "{try_later} Too many failed logins from your address; try again later"
            )),
            end: SessionEnd::new(
                Outcome::Throttled,
                "the address failed too many logins lately; refused without asking the upstream",
            ),
        });
    }
    let client = policy::Client {
        address: record.client_addr,
        login: Some(user),
        ja4: record.ja4.as_deref(),
        offered_max: record.offered_max_tls,
        negotiated: record.tls_version,
    };
    let decision = ctx
        .policy
        .decide(&ctx.settings.name, &client, OffsetDateTime::now_utc());
    let message = decision
        .message
        .unwrap_or("TLS 1.0 and 1.1 are no longer accepted");
    let why = format!("policy rule {}: {}", decision.rule, decision.why);
    facts.note(Fact::Policy(PolicyDecision {
        verdict: decision.verdict.as_str().to_string(),
        rule: decision.rule.to_string(),
        exception: decision.exception.map(|id| id.0),
    }));
    let warning = match decision.verdict {
        Verdict::Allow => None,
        Verdict::Warn => {
            tracing::info!(listener = %ctx.settings.name, login = user, "{why}: warned");
            Some(message.to_string())
        }
        Verdict::Refuse => {
            return Err(LoginRefusal {
                client_text: RefusalText::ByPolicy(message.to_string()),
                end: SessionEnd::new(Outcome::RefusedByPolicy, why),
            })
        }
    };
    let slot = ctx.limits.take_session_slot().ok_or_else(|| LoginRefusal {
        client_text: RefusalText::Rejected(format!(
            "{try_later} The gateway is serving all the sessions it may; try again later"
        )),
        end: SessionEnd::new(
            Outcome::RefusedByPolicy,
            "every logged-in session slot was taken (gateway.max_sessions)",
        ),
    })?;
    Ok((slot, warning))
}

/// Relay mode, before the checks every login gets: is the `client` address (after any PROXY
/// header) in the listener's relay networks, and the sender among its senders? Either refusal
/// is a `550 5.7.1`, and nothing reaches the upstream. An admitted request logs in as the
/// relay account.
fn check_relay<'c>(
    ctx: &'c ListenerContext,
    client: IpAddr,
    sender: &str,
) -> Result<&'c RelaySettings, LoginRefusal> {
    let refused = |client_text: &str, detail: String| LoginRefusal {
        client_text: RefusalText::Rejected(format!("5.7.1 {client_text}")),
        end: SessionEnd::new(Outcome::RefusedByPolicy, detail),
    };
    // The dialogue asks only in relay mode; a listener without it refuses all the same.
    let Some(relay) = ctx.settings.relay.as_ref() else {
        return Err(refused(
            "Relay access denied: authenticate first",
            "a relay request on a listener without relay".into(),
        ));
    };
    if !relay.admits_client(client) {
        return Err(refused(
            "Relay access denied: this address may not send without authenticating",
            format!("relay refused: {client} is outside the listener's relay networks"),
        ));
    }
    if !relay.admits_sender(sender) {
        return Err(refused(
            "Sender address rejected: not allowed to send without authenticating",
            // Debug quoting escapes whatever control characters the client put in the path.
            format!("relay refused: sender {sender:?} is not among the listener's relay senders"),
        ));
    }
    Ok(relay)
}

/// Writes a last line to the client and closes, bounded so a stuck client cannot hold us.
pub(crate) async fn say_goodbye(client: &mut ClientStream, line: &[u8]) {
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        client.write_all(line).await?;
        client.flush().await?;
        client.shutdown().await
    })
    .await;
}
