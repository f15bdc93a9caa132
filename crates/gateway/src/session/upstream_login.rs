//! Connecting to the upstream and logging in there: TCP, verified TLS (implicit or STARTTLS)
//! and the upstream proto machine, all under one time limit.

use std::io;

use proto::{UpstreamAuth, UpstreamDialogue, UpstreamStep};
use store::Outcome;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::client::TlsStream;
use wire::TlsVersion;

use super::{Bridge, SessionEnd};
use crate::listener::UpstreamContext;
use crate::settings::{Timeouts, UpstreamTlsMode};
use crate::stream::{enable_keepalive, MaybeTls, ReadAhead};

/// The upstream socket, read in large chunks (rustls reads 4 KiB at a time).
type UpstreamSocket = ReadAhead<TcpStream>;

/// The upstream connection, TLS from the start or after STARTTLS.
pub(crate) type UpstreamStream = MaybeTls<UpstreamSocket, TlsStream<UpstreamSocket>>;

/// An upstream connection that has accepted the login.
pub(crate) struct LoggedIn {
    pub stream: UpstreamStream,
    /// The human text of the upstream's success reply, for the client.
    pub text: String,
    /// Upstream bytes already read past the success reply; they belong to the client.
    pub leftover: Vec<u8>,
    /// The negotiated upstream TLS version (`None` only for a version rustls names that
    /// `wire` does not know, which cannot be below TLS 1.2).
    pub tls_version: Option<TlsVersion>,
}

/// Logs in upstream with `auth`. Failures come back as the session end they would cause;
/// `Outcome::AuthFailed` means the upstream refused the credentials and the client may retry.
pub(crate) async fn login<B: Bridge>(
    upstream: &UpstreamContext,
    auth: UpstreamAuth,
    timeouts: &Timeouts,
    session_deadline: Instant,
) -> Result<LoggedIn, SessionEnd> {
    let started = Instant::now();
    let deadline = session_deadline.min(started + timeouts.upstream);
    let address = &upstream.settings.address;
    let result = match timeout_at(deadline, dialogue::<B>(upstream, auth)).await {
        Ok(result) => result,
        Err(_) => Err(SessionEnd::new(
            Outcome::Timeout,
            format!("upstream {address} did not complete the login in time"),
        )),
    };
    let outcome = result
        .as_ref()
        .map_or_else(|end| end.outcome, |_| Outcome::Ok);
    crate::metrics::upstream_login_took(&upstream.settings.name, outcome, started.elapsed());
    result
}

async fn dialogue<B: Bridge>(
    upstream: &UpstreamContext,
    auth: UpstreamAuth,
) -> Result<LoggedIn, SessionEnd> {
    let address = &upstream.settings.address;
    let tcp = TcpStream::connect(address).await.map_err(|e| {
        SessionEnd::new(
            Outcome::UpstreamUnreachable,
            format!("cannot connect to {address}: {e}"),
        )
    })?;
    let _ = tcp.set_nodelay(true);
    enable_keepalive(&tcp);
    // During the login each reply is awaited before the next command goes out. A server that
    // writes twice in a row (TLS 1.3 session tickets, then its EHLO reply) with Nagle on waits
    // for our ACK of the first, which Linux delays by 40 ms: quick ACKs while logging in
    // (bench/README.md, "SMTP"). A clone of the socket handle, as the stream owns the original.
    let quick_ack = socket2::SockRef::from(&tcp).try_clone().ok();
    let tcp = ReadAhead::new(tcp);
    let starttls = upstream.settings.tls == UpstreamTlsMode::StartTls;
    let mut stream = if starttls {
        MaybeTls::Plain(tcp)
    } else {
        MaybeTls::Tls(tls_connect(upstream, tcp).await?)
    };
    let mut machine = B::upstream(auth, starttls);
    let mut chunk = vec![0u8; 4096];
    let lost = |e: io::Error| {
        SessionEnd::new(
            Outcome::UpstreamUnreachable,
            format!("connection to {address} lost during login: {e}"),
        )
    };
    loop {
        match machine.next() {
            UpstreamStep::NeedInput => {
                stream.flush().await.map_err(lost)?;
                if let Some(socket) = &quick_ack {
                    let _ = socket.set_tcp_quickack(true);
                }
                let n = stream.read(&mut chunk).await.map_err(lost)?;
                if n == 0 {
                    return Err(SessionEnd::new(
                        Outcome::UpstreamProtocolError,
                        format!("{address} closed the connection during login"),
                    ));
                }
                machine.feed(&chunk[..n]);
            }
            UpstreamStep::Write(bytes) => stream.write_all(&bytes).await.map_err(lost)?,
            UpstreamStep::StartTls => {
                stream.flush().await.map_err(lost)?;
                let MaybeTls::Plain(tcp) = stream else {
                    return Err(SessionEnd::new(
                        Outcome::UpstreamProtocolError,
                        "STARTTLS asked on a connection that already has TLS",
                    ));
                };
                stream = MaybeTls::Tls(tls_connect(upstream, tcp).await?);
                machine.tls_started();
            }
            UpstreamStep::Authenticated { text, leftover } => {
                let MaybeTls::Tls(tls) = &stream else {
                    // The machines only log in after TLS; this guards the invariant.
                    return Err(SessionEnd::new(
                        Outcome::UpstreamProtocolError,
                        "login completed without TLS",
                    ));
                };
                let tls_version = tls
                    .get_ref()
                    .1
                    .protocol_version()
                    .and_then(|v| TlsVersion::from_wire(u16::from(v)));
                B::logged_in(&machine, upstream);
                return Ok(LoggedIn {
                    stream,
                    text,
                    leftover,
                    tls_version,
                });
            }
            UpstreamStep::Rejected { text } => {
                return Err(SessionEnd::new(Outcome::AuthFailed, text));
            }
            UpstreamStep::TokenRefused { text, oauth_error } => {
                // The upstream's JSON status says why (a missing permission, a mailbox not
                // granted); it carries no secret.
                let status = oauth_error.map_or(String::new(), |json| format!(" (status {json})"));
                return Err(SessionEnd::new(
                    Outcome::TokenRefused,
                    format!("{address} refused the access token: {text}{status}"),
                ));
            }
            UpstreamStep::Failed { reason } => {
                return Err(SessionEnd::new(
                    Outcome::UpstreamProtocolError,
                    format!("{address}: {reason}"),
                ));
            }
        }
    }
}

async fn tls_connect(
    upstream: &UpstreamContext,
    tcp: UpstreamSocket,
) -> Result<TlsStream<UpstreamSocket>, SessionEnd> {
    let address = &upstream.settings.address;
    upstream
        .tls
        .connector
        .connect(upstream.tls.server_name.clone(), tcp)
        .await
        .map_err(|e| {
            let rustls_error = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>());
            match rustls_error {
                Some(rustls::Error::InvalidCertificate(why)) => SessionEnd::new(
                    Outcome::UpstreamCertificateRejected,
                    format!(
                        "{address} presented a certificate that does not verify for {}: {why:?}",
                        upstream.settings.server_name
                    ),
                ),
                Some(other) => SessionEnd::new(
                    Outcome::UpstreamProtocolError,
                    format!("TLS with {address} failed: {other}"),
                ),
                None => SessionEnd::new(
                    Outcome::UpstreamUnreachable,
                    format!("TLS with {address} failed: {e}"),
                ),
            }
        })
}

impl SessionEnd {
    /// What the client is told when the upstream cannot be used; names no secret.
    pub(crate) fn client_text(&self, upstream: &str) -> String {
        match self.outcome {
            Outcome::UpstreamCertificateRejected => {
                format!("Upstream server {upstream} presented a certificate that does not verify")
            }
            Outcome::Timeout => format!("Upstream server {upstream} did not answer in time"),
            Outcome::UpstreamProtocolError => {
                format!("Upstream server {upstream} did not behave as a mail server")
            }
            _ => format!("Upstream server {upstream} is unreachable"),
        }
    }
}
