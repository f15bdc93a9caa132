//! The gateway as a whole: prepared from settings (every TLS context built and checked),
//! bound to its sockets, then served until shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use policy::PolicySet;
use store::SessionRecorder;
use tokio::net::{TcpListener, TcpSocket};
use wire::TlsVersion;

use crate::client_limits::ClientLimits;
use crate::client_tls::{acceptor_for, negotiated_suites};
use crate::error::SetupError;
use crate::listener::{ListenerContext, UpstreamContext};
use crate::proxy_header::ProxyHeaderCheck;
use crate::running::RunningGateway;
use crate::settings::{
    ClientLimitSettings, ClientTlsMode, GatewaySettings, ListenerSettings, UpstreamLogin,
};
use crate::token_logins::TokenLogins;
use crate::upstream_tls::connector_for;

/// A gateway whose settings have all been put to use, ready to bind (at start) or to replace
/// a running gateway's config ([`RunningGateway::reload`]).
pub struct Gateway {
    pub(crate) listeners: Vec<ListenerContext>,
    /// Used at start; a reload keeps the running gateway's and gives it the limits below.
    limits: Arc<ClientLimits>,
    pub(crate) limit_settings: ClientLimitSettings,
    pub(crate) max_sessions: usize,
}

impl Gateway {
    /// Builds every TLS context and links listeners to upstreams. Returns every problem found,
    /// not just the first, so `check-config` can list them all.
    /// `tokens` serves the upstreams with `auth = "oauth"`; it may be `None` when there are
    /// none.
    pub fn prepare(
        settings: &GatewaySettings,
        policy: Arc<PolicySet>,
        tokens: Option<Arc<TokenLogins>>,
    ) -> Result<Gateway, Vec<SetupError>> {
        let mut errors = Vec::new();
        let mut upstreams = HashMap::new();
        for upstream in &settings.upstreams {
            match connector_for(upstream) {
                Ok(tls) => {
                    let tokens = match upstream.login {
                        UpstreamLogin::Passthrough => None,
                        UpstreamLogin::OAuth(_) if tokens.is_none() => {
                            errors.push(SetupError::new(
                                format!("upstream[{}].auth", upstream.name),
                                "is \"oauth\" but no [[account]] and [[oauth]] entries were given",
                            ));
                            continue;
                        }
                        UpstreamLogin::OAuth(_) => tokens.clone(),
                    };
                    let ctx = UpstreamContext {
                        settings: upstream.clone(),
                        tls,
                        tokens,
                        smtp_extensions: Default::default(),
                    };
                    upstreams.insert(upstream.name.clone(), Arc::new(ctx));
                }
                Err(e) => errors.push(e),
            }
        }
        // One set of limits for all listeners: a host is one host whichever port it floods.
        let limits = Arc::new(ClientLimits::new(
            &settings.client_limits,
            settings.max_sessions,
        ));
        let mut listeners = Vec::new();
        for listener in &settings.listeners {
            let acceptor = match listener.tls {
                ClientTlsMode::None => None,
                _ => match acceptor_for(listener) {
                    Ok(acceptor) => Some(acceptor),
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                },
            };
            let Some(upstream) = upstreams.get(&listener.upstream) else {
                // An upstream that failed to prepare has its own error already.
                if !settings
                    .upstreams
                    .iter()
                    .any(|u| u.name == listener.upstream)
                {
                    errors.push(SetupError::new(
                        format!("listener[{}].upstream", listener.name),
                        format!(
                            "no upstream is named \"{}\"; name one of the [[upstream]] entries",
                            listener.upstream
                        ),
                    ));
                }
                continue;
            };
            listeners.push(ListenerContext {
                settings: listener.clone(),
                acceptor,
                upstream: upstream.clone(),
                timeouts: settings.timeouts,
                policy: policy.clone(),
                proxy: listener.proxy_protocol.clone().map(ProxyHeaderCheck::new),
                limits: limits.clone(),
            });
        }
        if errors.is_empty() {
            Ok(Gateway {
                listeners,
                limits,
                limit_settings: settings.client_limits,
                max_sessions: settings.max_sessions,
            })
        } else {
            Err(errors)
        }
    }

    /// The suites each TLS listener negotiates at every TLS version, in its order of
    /// preference, as its OpenSSL context really picks them (see [`negotiated_suites`]).
    /// Plaintext listeners are left out.
    pub fn client_suites(&self) -> Result<Vec<ListenerSuites>, SetupError> {
        let mut all = Vec::new();
        for ctx in &self.listeners {
            let Some(acceptor) = &ctx.acceptor else {
                continue;
            };
            let mut by_version = Vec::new();
            for version in [
                TlsVersion::Tls10,
                TlsVersion::Tls11,
                TlsVersion::Tls12,
                TlsVersion::Tls13,
            ] {
                let suites = negotiated_suites(acceptor, version).map_err(|e| {
                    SetupError::new(
                        format!("listener[{}]", ctx.settings.name),
                        format!("cannot try its {version} suites: {e}"),
                    )
                })?;
                by_version.push((version, suites));
            }
            all.push(ListenerSuites {
                listener: ctx.settings.name.clone(),
                by_version,
            });
        }
        Ok(all)
    }

    /// Binds every listener's socket.
    pub async fn bind(self) -> Result<BoundGateway, SetupError> {
        let mut bound = Vec::new();
        for ctx in self.listeners {
            let socket = listen_for(&ctx.settings)?;
            bound.push((ctx, socket));
        }
        Ok(BoundGateway {
            listeners: bound,
            limits: self.limits,
        })
    }
}

/// The cipher suites one TLS listener negotiates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSuites {
    pub listener: String,
    /// Each TLS version with its suites, most preferred first; empty for a version the
    /// listener does not speak.
    pub by_version: Vec<(TlsVersion, Vec<&'static str>)>,
}

/// Connections the kernel queues before the gateway accepts them. The std/mio default of 128
/// overflows when a site's devices all reconnect at once after an outage or a restart, and an
/// overflowed connect is never seen, so never recorded. The kernel caps it at somaxconn.
const LISTEN_BACKLOG: u32 = 4096;

/// A listening socket for `listener`, or what stops it with the listener's `bind` key. A port
/// below 1024 refused to a process without root or CAP_NET_BIND_SERVICE (a gateway that
/// gave root up at start, on reload) says so, since the fix is a restart, not the config.
pub(crate) fn listen_for(listener: &ListenerSettings) -> Result<TcpListener, SetupError> {
    let addr = listener.bind;
    listen(addr).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied && addr.port() < 1024 {
            ": a port below 1024 needs root or CAP_NET_BIND_SERVICE, which this process does \
             not hold (a gateway that gave root up after starting cannot take it back); restart \
             the gateway to bind it, or choose a port from 1024"
        } else {
            ""
        };
        SetupError::new(
            format!("listener[{}].bind", listener.name),
            format!("cannot listen on {addr}: {e}{hint}"),
        )
    })
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // A restarted gateway must be able to bind while old connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A gateway listening on its sockets, not yet accepting.
pub struct BoundGateway {
    listeners: Vec<(ListenerContext, TcpListener)>,
    limits: Arc<ClientLimits>,
}

impl BoundGateway {
    /// Starts accepting on every socket (inside the async runtime); the returned handle
    /// reloads the config and shuts the gateway down.
    pub fn start(self, recorder: SessionRecorder) -> RunningGateway {
        let mut running = RunningGateway::new(recorder, self.limits);
        for (ctx, socket) in self.listeners {
            running.open(Arc::new(ctx), socket);
        }
        running
    }
}
