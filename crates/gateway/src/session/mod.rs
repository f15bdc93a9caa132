//! One client session, from accept to the session record. [`run_bridge`] shows its stages in
//! order: client address (PROXY protocol header) ─► client TLS (OpenSSL) ─► pre-auth dialogue
//! (proto) until credentials ─► admission ─► upstream login (rustls) ─► hand-over ─► byte
//! splice. Each stage reports what it learned as a [`Fact`], merged into the one record the
//! session writes when it ends.

mod bridge;
mod client_handshake;
mod facts;
mod pre_auth;
mod splice;
mod upstream_login;

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::SystemTime;

use futures::FutureExt;
use proto::{ClientDialogue, ClientTls, DialogueOptions, Limits, UpstreamAuth};
use store::{Outcome, SessionRecord, SessionRecorder};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use wire::TlsVersion;

use crate::admission::{Decision, LoginAttempt};
use crate::listener::ListenerContext;
use crate::proxy_header;
use crate::settings::{ClientTlsMode, Protocol};
use crate::stream::{enable_keepalive, ByteTally, Counted, MaybeTls, Rewind};
use facts::{Fact, Facts};
use upstream_login::LoggedIn;

pub(crate) use bridge::{Bridge, ImapBridge, Pop3Bridge};

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
        end = session => end.unwrap_or_else(|_| {
            tracing::error!(listener = %ctx.settings.name, client = %peer, "session task panicked");
            SessionEnd::new(Outcome::ProtocolError, "internal error in the gateway (a bug: please report it)")
        }),
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

fn new_record(ctx: &ListenerContext, peer: SocketAddr) -> SessionRecord {
    let now = SystemTime::now();
    SessionRecord {
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
    }
}

async fn run(
    ctx: &ListenerContext,
    tcp: TcpStream,
    peer: SocketAddr,
    facts: &mut Facts<'_>,
    tally: Arc<ByteTally>,
) -> SessionEnd {
    match ctx.settings.protocol {
        Protocol::Imap => run_bridge::<ImapBridge>(ctx, tcp, peer, facts, tally).await,
        Protocol::Pop3 => run_bridge::<Pop3Bridge>(ctx, tcp, peer, facts, tally).await,
    }
}

/// The stages of a session, in order.
async fn run_bridge<B: Bridge>(
    ctx: &ListenerContext,
    tcp: TcpStream,
    peer: SocketAddr,
    facts: &mut Facts<'_>,
    tally: Arc<ByteTally>,
) -> SessionEnd {
    // Mail dialogues are small request/response exchanges: do not let Nagle delay them.
    let _ = tcp.set_nodelay(true);
    enable_keepalive(&tcp);

    // 0. The client's address: the socket's peer, or on a listener behind load balancers
    //    what their PROXY protocol header names (read before anything else, never forwarded).
    let accepted = proxy_header::accept_client(ctx.proxy.as_ref(), &ctx.settings.name, tcp, peer);
    let (tcp, client_addr) = match accepted.await {
        Ok(accepted) => accepted,
        Err(end) => return end,
    };
    facts.note(Fact::ClientAddress(client_addr));

    let deadline = Instant::now() + ctx.timeouts.pre_auth;
    let mut dialogue = B::client(DialogueOptions {
        tls: match ctx.settings.tls {
            ClientTlsMode::Implicit => ClientTls::Active,
            ClientTlsMode::StartTls => ClientTls::StartTlsRequired,
            ClientTlsMode::None => ClientTls::None,
        },
        limits: Limits::default(),
        greeting: ctx.settings.greeting.clone(),
    });
    let mut client: ClientStream = Counted::new(MaybeTls::Plain(tcp), tally);

    // 1. Client TLS at once on implicit-TLS listeners (STARTTLS comes inside the dialogue).
    //    Boxed, like the login stages: a future is as large as its largest stage, and a
    //    session spends hours in the splice after these have finished.
    if ctx.settings.tls == ClientTlsMode::Implicit {
        let handshake = client_handshake::upgrade(client, ctx, facts, &mut dialogue, deadline);
        client = match Box::pin(handshake).await {
            Ok(tls) => tls,
            Err(end) => return end,
        };
    }

    // 2-4. Pre-auth dialogue, admission and upstream login, again after each refused login.
    let login = log_in::<B>(client, &mut dialogue, ctx, facts, deadline);
    let (mut client, logged_in) = match Box::pin(login).await {
        Ok(done) => done,
        Err(end) => return end,
    };
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
    let accepted = dialogue.login_accepted(&text);
    let handover = Box::pin(async {
        client.write_all(&accepted.to_client).await?;
        client.write_all(&leftover).await?;
        client.flush().await?;
        upstream.write_all(&accepted.to_upstream).await?;
        upstream.flush().await
    });
    let handed_over = handover.await;
    drop((text, leftover, accepted));

    // 6. The byte splice, until either side closes.
    match handed_over {
        Ok(()) => splice::splice(&mut client, &mut upstream).await,
        Err(e) => SessionEnd::new(Outcome::Ok, format!("connection lost at hand-over: {e}")),
    }
}

/// Stages 2-4 of a session, repeated while the client retries after a refused login:
/// the pre-auth dialogue until the client presents credentials, the admission decision, and
/// the upstream login. Returns the client and the logged-in upstream, or how the session ended.
async fn log_in<B: Bridge>(
    mut client: ClientStream,
    dialogue: &mut B::Client,
    ctx: &ListenerContext,
    facts: &mut Facts<'_>,
    deadline: Instant,
) -> Result<(ClientStream, LoggedIn), SessionEnd> {
    let mut failed_logins = 0;
    let mut last_refusal: Option<SessionEnd> = None;
    loop {
        // 2. The pre-auth dialogue, until credentials.
        let credentials;
        (client, credentials) =
            match pre_auth::credentials(client, dialogue, ctx, facts, deadline).await {
                Ok(received) => received,
                // A client that leaves after a refused login ends with that refusal.
                Err(end) if end.outcome == Outcome::ClientClosed => {
                    return Err(last_refusal.unwrap_or(end))
                }
                Err(end) => return Err(end),
            };
        facts.note(Fact::Login(credentials.user().to_owned()));

        // 3. Admission: may this client log in at all?
        let record = facts.record();
        let attempt = LoginAttempt {
            listener: &ctx.settings.name,
            client_addr: record.client_addr,
            tls_version: record.tls_version,
            login: credentials.user(),
        };
        if let Decision::Refuse { reason } = ctx.admission.decide(&attempt) {
            dialogue.login_rejected(&reason);
            last_refusal = Some(SessionEnd::new(Outcome::RefusedByPolicy, reason));
            continue;
        }

        // 4. The upstream login.
        let auth = UpstreamAuth::Password(credentials);
        let refusal =
            match upstream_login::login::<B>(&ctx.upstream, auth, &ctx.timeouts, deadline).await {
                Ok(logged_in) => return Ok((client, logged_in)),
                Err(failure) if failure.outcome == Outcome::AuthFailed => failure,
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

/// Writes a last line to the client and closes, bounded so a stuck client cannot hold us.
pub(crate) async fn say_goodbye(client: &mut ClientStream, line: &[u8]) {
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        client.write_all(line).await?;
        client.flush().await?;
        client.shutdown().await
    })
    .await;
}
