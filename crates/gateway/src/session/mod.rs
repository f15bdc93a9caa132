//! One client session, from accept to the session record:
//! client TLS (OpenSSL) ─► pre-auth dialogue (proto) ─► admission ─► upstream login (rustls)
//! ─► byte splice ─► one record in the store.

mod bridge;
mod client_tls;
mod pre_auth;
mod splice;
mod upstream_login;

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::SystemTime;

use futures::FutureExt;
use proto::{ClientDialogue, ClientTls, DialogueOptions, Limits};
use store::{Outcome, SessionRecord, SessionRecorder};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::listener::ListenerContext;
use crate::settings::{ClientTlsMode, Protocol};
use crate::stream::{enable_keepalive, ByteTally, Counted, MaybeTls, Rewind};
use upstream_login::LoggedIn;

pub(crate) use bridge::{Bridge, ImapBridge, Pop3Bridge};

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
    let session = AssertUnwindSafe(run(&ctx, tcp, &mut record, tally.clone())).catch_unwind();
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
        client = %peer,
        login = record.login.as_deref().unwrap_or("-"),
        tls = record.tls_version.as_deref().unwrap_or("-"),
        offered_max_tls = record.offered_max_tls.as_deref().unwrap_or("-"),
        upstream = %record.upstream,
        outcome = record.outcome.as_str(),
        detail = record.detail.as_deref().unwrap_or(""),
        bytes_from_client = record.bytes_from_client,
        bytes_to_client = record.bytes_to_client,
        "session ended"
    );
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
    record: &mut SessionRecord,
    tally: Arc<ByteTally>,
) -> SessionEnd {
    match ctx.settings.protocol {
        Protocol::Imap => run_bridge::<ImapBridge>(ctx, tcp, record, tally).await,
        Protocol::Pop3 => run_bridge::<Pop3Bridge>(ctx, tcp, record, tally).await,
    }
}

async fn run_bridge<B: Bridge>(
    ctx: &ListenerContext,
    tcp: TcpStream,
    record: &mut SessionRecord,
    tally: Arc<ByteTally>,
) -> SessionEnd {
    // Mail dialogues are small request/response exchanges: do not let Nagle delay them.
    let _ = tcp.set_nodelay(true);
    enable_keepalive(&tcp);
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

    let plain = MaybeTls::Plain(Rewind::new(tcp));
    let mut client: ClientStream = Counted::new(plain, tally);
    if ctx.settings.tls == ClientTlsMode::Implicit {
        // Boxed, like the pre-auth conversation below: a future is as large as its largest
        // stage, and a session spends hours in the splice after these have finished.
        let handshake = Box::pin(client_tls::upgrade(
            client,
            ctx,
            record,
            &mut dialogue,
            deadline,
        ));
        client = match handshake.await {
            Ok(tls) => tls,
            Err(end) => return end,
        };
    }

    let (mut client, logged_in) = match Box::pin(pre_auth::converse::<B>(
        client,
        &mut dialogue,
        ctx,
        record,
        deadline,
    ))
    .await
    {
        Ok(done) => done,
        Err(end) => return end,
    };
    let LoggedIn {
        stream: mut upstream,
        text,
        leftover,
        tls_version,
    } = logged_in;
    record.outcome = Outcome::Ok;
    record.upstream_tls_version = Some(tls_version);
    let accepted = dialogue.login_accepted(&text);
    // The hand-over is its own future, done before the splice, so its buffers do not stay
    // in the session's state for the session's whole life.
    let handover = Box::pin(async {
        client.write_all(&accepted.to_client).await?;
        client.write_all(&leftover).await?;
        client.flush().await?;
        upstream.write_all(&accepted.to_upstream).await?;
        upstream.flush().await
    });
    let handed_over = handover.await;
    drop((text, leftover, accepted));
    let end = match handed_over {
        Ok(()) => splice::splice(&mut client, &mut upstream).await,
        Err(e) => SessionEnd::new(Outcome::Ok, format!("connection lost at hand-over: {e}")),
    };
    end
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
