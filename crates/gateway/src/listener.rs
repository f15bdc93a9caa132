//! Listening sockets and their accept loops.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use openssl::ssl::SslAcceptor;
use policy::PolicySet;
use proto::smtp::SmtpExtensions;
use store::SessionRecorder;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::client_limits::ClientLimits;
use crate::metrics::ActiveSession;
use crate::proxy_header::ProxyHeaderCheck;
use crate::settings::{ListenerSettings, Timeouts, UpstreamSettings};
use crate::token_logins::TokenLogins;
use crate::upstream_tls::UpstreamTls;

/// An upstream with its verified TLS connector.
pub(crate) struct UpstreamContext {
    pub settings: UpstreamSettings,
    pub tls: UpstreamTls,
    /// The local accounts and their tokens, on an upstream with `auth = "oauth"`.
    pub tokens: Option<Arc<TokenLogins>>,
    /// What an SMTP upstream advertised after TLS at the latest login, shown to the next
    /// clients in their EHLO reply; the plain-SMTP default until a login has succeeded.
    pub smtp_extensions: Mutex<SmtpExtensions>,
}

/// Everything a session task needs to know about the listener that accepted it.
pub(crate) struct ListenerContext {
    pub settings: ListenerSettings,
    /// `None` on a plaintext listener.
    pub acceptor: Option<Arc<SslAcceptor>>,
    pub upstream: Arc<UpstreamContext>,
    pub timeouts: Timeouts,
    /// The TLS floor policies and exceptions, asked at every login.
    pub policy: Arc<PolicySet>,
    /// `Some` on a listener behind PROXY protocol load balancers.
    pub proxy: Option<ProxyHeaderCheck>,
    /// Shared by every listener.
    pub limits: Arc<ClientLimits>,
}

/// How long sessions get to write their records after shutdown was asked.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The config a listener's new sessions start with: replaced by a reload, `None` once a
/// reload removed the listener. Each session keeps the `Arc` it started with.
pub(crate) type CurrentContext = watch::Receiver<Option<Arc<ListenerContext>>>;

/// Accepts connections until the listener is removed or the gateway shuts down, each served
/// by its own task with the listener's config of the moment, then waits for those tasks to
/// record their sessions. Accepting never waits: the session task itself closes a connection
/// over the limits of the client at once, so every refusal is seen and counted.
pub(crate) async fn accept_loop(
    current: CurrentContext,
    listener: TcpListener,
    recorder: SessionRecorder,
    shutdown: watch::Receiver<bool>,
) {
    let name = match current.borrow().as_ref() {
        Some(ctx) => ctx.settings.name.clone(),
        None => return,
    };
    let mut tasks = JoinSet::new();
    accept_until_stopped(current, &listener, &recorder, &shutdown, &mut tasks).await;
    drop(listener);
    // A listener a reload removed lets its sessions run to their end; at shutdown they are
    // told to stop and get a grace period to record themselves.
    let mut stop = shutdown.clone();
    let ended_on_their_own = {
        let drain = async { while tasks.join_next().await.is_some() {} };
        tokio::pin!(drain);
        tokio::select! {
            _ = &mut drain => true,
            _ = shut_down(&mut stop) => tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_ok(),
        }
    };
    if !ended_on_their_own {
        tracing::warn!(listener = %name, left = tasks.len(), "sessions did not end in time");
    }
}

/// Completes once the gateway shuts down.
async fn shut_down(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns may not live across an await: dropped here.
    let _ = shutdown.wait_for(|stop| *stop).await.map(drop);
}

/// Completes once a reload removed the listener (or its running gateway is gone).
async fn removed(current: &mut CurrentContext) {
    let _ = current.wait_for(Option::is_none).await.map(drop);
}

async fn accept_until_stopped(
    mut current: CurrentContext,
    listener: &TcpListener,
    recorder: &SessionRecorder,
    shutdown: &watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) {
    let mut stop = shutdown.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => return,
            _ = removed(&mut current) => return,
        };
        // The config of this moment; a reload after this leaves the session with it.
        let Some(ctx) = current.borrow().clone() else {
            return;
        };
        match accepted {
            Ok((tcp, peer)) => {
                let recorder = recorder.clone();
                let shutdown = shutdown.clone();
                tasks.spawn(async move {
                    let active = ActiveSession::start(&ctx.settings.name);
                    crate::session::serve(ctx, tcp, peer, recorder, shutdown).await;
                    drop(active);
                });
            }
            Err(e) => {
                // Out of file descriptors or a transient network error: keep serving the
                // sessions we have and try again shortly.
                tracing::warn!(listener = %ctx.settings.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        // Reap finished tasks so the set does not grow with every session ever served.
        while tasks.try_join_next().is_some() {}
    }
}
