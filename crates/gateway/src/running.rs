//! A serving gateway: its listeners' accept loops, a config reload that new sessions pick up
//! while running ones keep theirs, and shutdown.
//!
//! Each listener's accept loop reads its current [`ListenerContext`] from a tokio `watch`
//! channel when it accepts: one reader per listener and a write per reload, so a lock-free
//! `arc-swap` would buy nothing over it. A session holds the `Arc` it started with to its end.

use std::net::SocketAddr;
use std::sync::Arc;

use proto::smtp::SmtpExtensions;
use store::SessionRecorder;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client_limits::ClientLimits;
use crate::error::SetupError;
use crate::gateway::{listen_for, Gateway};
use crate::listener::{accept_loop, ListenerContext};
use crate::settings::UpstreamSettings;

/// A gateway accepting clients: reloaded with [`RunningGateway::reload`], stopped with
/// [`RunningGateway::shutdown`].
pub struct RunningGateway {
    recorder: SessionRecorder,
    shutdown: watch::Sender<bool>,
    /// The limits every listener shares, kept across reloads (which change their limits): they
    /// count the sessions and failed logins of the moment, which a fresh set would forget.
    limits: Arc<ClientLimits>,
    listeners: Vec<OpenListener>,
    /// Accept loops of listeners a reload removed, waiting for their sessions to end.
    retired: Vec<JoinHandle<()>>,
}

/// A listener with an open socket and its accept loop.
struct OpenListener {
    ctx: Arc<ListenerContext>,
    current: watch::Sender<Option<Arc<ListenerContext>>>,
    task: JoinHandle<()>,
}

/// What a reload did to the listeners, by name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ListenerChanges {
    /// New names: bound and accepting.
    pub added: Vec<String>,
    /// Names gone from the config: no longer accepting; their sessions run on.
    pub removed: Vec<String>,
    /// Same name, other settings: new sessions get them (on a new socket if `bind` changed).
    pub changed: Vec<String>,
}

impl RunningGateway {
    pub(crate) fn new(recorder: SessionRecorder, limits: Arc<ClientLimits>) -> Self {
        RunningGateway {
            recorder,
            shutdown: watch::Sender::new(false),
            limits,
            listeners: Vec::new(),
            retired: Vec::new(),
        }
    }

    /// Starts accepting on `socket` for `ctx`.
    pub(crate) fn open(&mut self, ctx: Arc<ListenerContext>, socket: TcpListener) {
        crate::metrics::listener_started(&ctx.settings.name);
        tracing::info!(
            listener = %ctx.settings.name,
            bind = %ctx.settings.bind,
            min_tls = %ctx.settings.min_tls,
            upstream = %ctx.upstream.settings.name,
            proxy_protocol = ctx.proxy.is_some(),
            "listening"
        );
        let (current, receiver) = watch::channel(Some(ctx.clone()));
        let task = tokio::spawn(accept_loop(
            receiver,
            socket,
            self.recorder.clone(),
            self.shutdown.subscribe(),
        ));
        self.listeners.push(OpenListener { ctx, current, task });
    }

    /// Puts `next` in place for new sessions; running sessions keep the config they started
    /// with. Listeners are matched by name for the report and by address for their sockets:
    /// a listener whose address stays keeps its socket (no connection is refused while the
    /// config changes), a new address is bound, an address no longer named is closed. Every
    /// new address is bound before anything changes, so a reload that cannot bind one changes
    /// nothing and returns why.
    pub fn reload(&mut self, next: Gateway) -> Result<ListenerChanges, Vec<SetupError>> {
        let Gateway {
            listeners,
            limit_settings,
            max_sessions,
            ..
        } = next;
        let mut sockets = Vec::new();
        let mut errors = Vec::new();
        for ctx in &listeners {
            if self.open_on(ctx.settings.bind).is_some() {
                sockets.push(None);
                continue;
            }
            match listen_for(&ctx.settings) {
                Ok(socket) => sockets.push(Some(socket)),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        self.retired.retain(|task| !task.is_finished());
        self.limits.reconfigure(&limit_settings, max_sessions);

        let changes = self.changes(&listeners);
        let learned = learned_state(&self.listeners);
        let mut old: Vec<Option<OpenListener>> = std::mem::take(&mut self.listeners)
            .into_iter()
            .map(Some)
            .collect();
        for (mut ctx, socket) in listeners.into_iter().zip(sockets) {
            ctx.limits = self.limits.clone();
            carry_learned_state(&ctx, &learned);
            let ctx = Arc::new(ctx);
            match socket {
                Some(socket) => self.open(ctx, socket),
                None => {
                    let kept = old
                        .iter_mut()
                        .find(|l| {
                            l.as_ref()
                                .is_some_and(|l| l.ctx.settings.bind == ctx.settings.bind)
                        })
                        .and_then(Option::take)
                        .expect("an open listener on this address");
                    kept.current.send_replace(Some(ctx.clone()));
                    self.listeners.push(OpenListener { ctx, ..kept });
                }
            }
        }
        for closed in old.into_iter().flatten() {
            closed.current.send_replace(None);
            tracing::info!(
                listener = %closed.ctx.settings.name,
                bind = %closed.ctx.settings.bind,
                "stopped listening: no new sessions here; the running ones go on"
            );
            self.retired.push(closed.task);
        }
        Ok(changes)
    }

    /// Stops accepting everywhere, tells running sessions to end and waits for them to record
    /// themselves (a grace period at most).
    pub async fn shutdown(self) {
        tracing::info!("shutting down: no new sessions; ending the running ones");
        self.shutdown.send_replace(true);
        for listener in self.listeners {
            let _ = listener.task.await;
        }
        for task in self.retired {
            let _ = task.await;
        }
    }

    fn open_on(&self, bind: SocketAddr) -> Option<&OpenListener> {
        self.listeners.iter().find(|l| l.ctx.settings.bind == bind)
    }

    fn changes(&self, next: &[ListenerContext]) -> ListenerChanges {
        let mut changes = ListenerChanges::default();
        for ctx in next {
            let name = &ctx.settings.name;
            match self.listeners.iter().find(|l| &l.ctx.settings.name == name) {
                None => changes.added.push(name.clone()),
                Some(open) if open.ctx.settings != ctx.settings => {
                    changes.changed.push(name.clone())
                }
                Some(_) => {}
            }
        }
        for open in &self.listeners {
            if !next
                .iter()
                .any(|c| c.settings.name == open.ctx.settings.name)
            {
                changes.removed.push(open.ctx.settings.name.clone());
            }
        }
        changes
    }
}

/// What an upstream's server advertised (its SMTP extensions), by upstream settings.
type Learned = Vec<(UpstreamSettings, SmtpExtensions)>;

fn learned_state(listeners: &[OpenListener]) -> Learned {
    listeners
        .iter()
        .map(|l| {
            let upstream = &l.ctx.upstream;
            let extensions = *upstream.smtp_extensions.lock().expect("extensions lock");
            (upstream.settings.clone(), extensions)
        })
        .collect()
}

/// What the old config's upstream of the same settings learned goes on in `ctx`'s, so clients
/// of the reloaded gateway are not shown the plain-SMTP default until the next upstream login.
fn carry_learned_state(ctx: &ListenerContext, learned: &Learned) {
    if let Some((_, extensions)) = learned.iter().find(|(s, _)| *s == ctx.upstream.settings) {
        *ctx.upstream
            .smtp_extensions
            .lock()
            .expect("extensions lock") = *extensions;
    }
}
