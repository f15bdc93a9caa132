//! The pre-auth conversation: drives the client-facing proto machine over the client stream
//! until the upstream accepts a login, the client leaves, or the deadline passes.

use proto::{ClientDialogue, ClientStep, Ending, UpstreamAuth};
use store::{Outcome, SessionRecord};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{timeout_at, Instant};

use super::upstream_login::{self, LoggedIn};
use super::{client_tls, say_goodbye, Bridge, ClientStream, SessionEnd};
use crate::admission::{Decision, LoginAttempt};
use crate::listener::ListenerContext;

/// Rejected logins one connection may try before the gateway hangs up, so a device with a
/// wrong password cannot hammer (and lock out) the upstream mailbox.
const MAX_FAILED_LOGINS: u32 = 3;

/// Size of one read from the client before login; commands are short.
const READ_CHUNK: usize = 4096;

/// Talks with the client until it is logged in upstream. On success returns the client
/// stream and the logged-in upstream; otherwise how the session ended (bytes recorded).
pub(crate) async fn converse<B: Bridge>(
    mut client: ClientStream,
    dialogue: &mut B::Client,
    ctx: &ListenerContext,
    record: &mut SessionRecord,
    deadline: Instant,
) -> Result<(ClientStream, LoggedIn), SessionEnd> {
    let mut failed_logins = 0;
    let mut last_refusal: Option<SessionEnd> = None;
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let step = dialogue.next();
        let io = match step {
            ClientStep::Write(bytes) => timeout_at(deadline, client.write_all(&bytes)).await,
            ClientStep::NeedInput => {
                let read = async {
                    client.flush().await?;
                    client.read(&mut chunk).await
                };
                match timeout_at(deadline, read).await {
                    Ok(Ok(0)) => {
                        return Err(last_refusal.unwrap_or_else(|| {
                            SessionEnd::new(
                                Outcome::ClientClosed,
                                "the client closed before logging in",
                            )
                        }));
                    }
                    Ok(Ok(n)) => {
                        dialogue.feed(&chunk[..n]);
                        Ok(Ok(()))
                    }
                    Ok(Err(e)) => Ok(Err(e)),
                    Err(elapsed) => Err(elapsed),
                }
            }
            ClientStep::StartTls => {
                match timeout_at(deadline, client.flush()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        return Err(SessionEnd::new(Outcome::ClientClosed, e.to_string()))
                    }
                    Err(_) => return Err(pre_auth_expired(ctx)),
                }
                client = client_tls::upgrade(client, ctx, record, dialogue, deadline).await?;
                dialogue.tls_started();
                continue;
            }
            ClientStep::ClientId(fields) => {
                record.client_id = fields;
                continue;
            }
            ClientStep::Login(credentials) => {
                record.login = Some(credentials.user().to_owned());
                let attempt = LoginAttempt {
                    listener: &ctx.settings.name,
                    client_addr: record.client_addr,
                    tls_version: record.tls_version.as_deref(),
                    login: credentials.user(),
                };
                if let Decision::Refuse { reason } = ctx.admission.decide(&attempt) {
                    dialogue.login_rejected(&reason);
                    last_refusal = Some(SessionEnd::new(Outcome::RefusedByPolicy, reason));
                    continue;
                }
                let auth = UpstreamAuth::Password(credentials);
                match upstream_login::login::<B>(&ctx.upstream, auth, &ctx.timeouts, deadline).await
                {
                    Ok(logged_in) => return Ok((client, logged_in)),
                    Err(failure) if failure.outcome == Outcome::AuthFailed => {
                        failed_logins += 1;
                        let reason = failure.detail.clone().unwrap_or_default();
                        if failed_logins >= MAX_FAILED_LOGINS {
                            let line = dialogue.farewell("Too many failed logins");
                            say_goodbye(&mut client, &line).await;
                            return Err(failure);
                        }
                        dialogue.login_rejected(&reason);
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
                        let line =
                            dialogue.farewell(&failure.client_text(&ctx.upstream.settings.name));
                        say_goodbye(&mut client, &line).await;
                        return Err(failure);
                    }
                }
            }
            ClientStep::Close(ending) => {
                let _ = timeout_at(deadline, client.flush()).await;
                let _ = timeout_at(deadline, client.shutdown()).await;
                return Err(match ending {
                    Ending::ClientQuit => last_refusal.unwrap_or_else(|| {
                        SessionEnd::new(Outcome::ClientClosed, "the client quit before logging in")
                    }),
                    Ending::ProtocolError(reason) => {
                        SessionEnd::new(Outcome::ProtocolError, reason)
                    }
                });
            }
        };
        match io {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(SessionEnd::new(Outcome::ClientClosed, e.to_string()));
            }
            Err(_) => {
                let line = dialogue.farewell("Autologout: no login in time");
                say_goodbye(&mut client, &line).await;
                return Err(pre_auth_expired(ctx));
            }
        }
    }
}

/// The end of a session whose pre-auth time ran out.
fn pre_auth_expired(ctx: &ListenerContext) -> SessionEnd {
    SessionEnd::new(
        Outcome::Timeout,
        format!("no login within {} s", ctx.timeouts.pre_auth.as_secs()),
    )
}

impl SessionEnd {
    /// What the client is told when the upstream cannot be used; names no secret.
    fn client_text(&self, upstream: &str) -> String {
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
