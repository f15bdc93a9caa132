//! The pre-auth dialogue: drives the client-facing proto machine over the client stream until
//! the client presents credentials (or, on a relaying SMTP listener, starts a transaction
//! without them), leaves, or the deadline passes. STARTTLS happens inside it; what to do with
//! what the client presented is the session's next stage, not this one's.

use proto::{ClientDialogue, ClientStep, Credentials, Ending};
use store::Outcome;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{timeout_at, Instant};

use super::facts::{Fact, Facts};
use super::{client_handshake, say_goodbye, ClientStream, SessionEnd};
use crate::listener::ListenerContext;

/// Size of one read from the client before login; commands are short.
const READ_CHUNK: usize = 4096;

/// What the client asked for at the end of the pre-auth dialogue.
pub(crate) enum Presented {
    /// A login with these credentials.
    Login(Credentials),
    /// Relay mode: to send as this envelope sender without authenticating.
    Relay { sender: String },
}

/// Talks with the client until it presents credentials or asks to relay. Returns the client
/// stream (with TLS if the client asked for STARTTLS) and what it presented; otherwise how the
/// session ended.
pub(crate) async fn presented<D: ClientDialogue>(
    mut client: ClientStream,
    dialogue: &mut D,
    ctx: &ListenerContext,
    facts: &mut Facts<'_>,
    deadline: Instant,
) -> Result<(ClientStream, Presented), SessionEnd> {
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let io = match dialogue.next() {
            ClientStep::Write(bytes) => timeout_at(deadline, client.write_all(&bytes)).await,
            ClientStep::NeedInput => {
                let read = async {
                    client.flush().await?;
                    client.read(&mut chunk).await
                };
                match timeout_at(deadline, read).await {
                    Ok(Ok(0)) => {
                        return Err(SessionEnd::new(
                            Outcome::ClientClosed,
                            "the client closed before logging in",
                        ));
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
                client = client_handshake::upgrade(client, ctx, facts, dialogue, deadline).await?;
                dialogue.tls_started();
                continue;
            }
            ClientStep::ClientId(fields) => {
                facts.note(Fact::ClientId(fields));
                continue;
            }
            ClientStep::Login(credentials) => return Ok((client, Presented::Login(credentials))),
            ClientStep::Relay { sender } => return Ok((client, Presented::Relay { sender })),
            ClientStep::Close(ending) => {
                let _ = timeout_at(deadline, client.flush()).await;
                let _ = timeout_at(deadline, client.shutdown()).await;
                return Err(match ending {
                    Ending::ClientQuit => {
                        SessionEnd::new(Outcome::ClientClosed, "the client quit before logging in")
                    }
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
