//! The client's TLS handshake: read its ClientHello first (to record what it offered, even
//! when the handshake then fails), then let OpenSSL complete the handshake on the same bytes.

use std::pin::Pin;

use openssl::ssl::{Ssl, SslVersion};
use proto::ClientDialogue;
use store::{OfferedHello, Outcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_openssl::SslStream;
use wire::{HelloError, TlsVersion};

use super::facts::{Fact, Facts};
use super::{ClientStream, SessionEnd};
use crate::listener::ListenerContext;
use crate::stream::{Counted, MaybeTls};

/// A ClientHello larger than this is not a mail client's.
const MAX_HELLO_BYTES: usize = 64 * 1024;

/// Turns the plain client stream into a TLS one, or ends the session with the reason. The
/// handshake gets `client_handshake` but never runs past the session's pre-auth `deadline`.
pub(crate) async fn upgrade<D: ClientDialogue>(
    client: ClientStream,
    ctx: &ListenerContext,
    facts: &mut Facts<'_>,
    dialogue: &mut D,
    deadline: Instant,
) -> Result<ClientStream, SessionEnd> {
    let (stream, tally) = client.into_parts();
    let MaybeTls::Plain(mut plain) = stream else {
        return Err(SessionEnd::new(
            Outcome::ProtocolError,
            "TLS was requested on a connection that already has it",
        ));
    };
    let Some(acceptor) = ctx.acceptor.as_ref() else {
        return Err(SessionEnd::new(
            Outcome::ProtocolError,
            "TLS was requested on a listener configured without TLS",
        ));
    };

    let handshake = async {
        let mut hello = Vec::with_capacity(1024);
        let mut chunk = [0u8; 2048];
        loop {
            match wire::parse_client_hello(&hello) {
                Ok(parsed) => {
                    facts.note(Fact::ClientHello {
                        offered_max_tls: parsed.highest_offered(),
                        sni: parsed.server_name(),
                        ja4: wire::ja4(&parsed),
                        offered: OfferedHello::from_hello(&parsed),
                    });
                    break;
                }
                Err(HelloError::Incomplete) if hello.len() < MAX_HELLO_BYTES => {}
                Err(HelloError::NotTls) => {
                    // A device set to plaintext on a TLS port: tell it in words it can log.
                    let line =
                        dialogue.farewell("this port expects TLS: set the client to SSL/TLS");
                    let _ = plain.write_all(&line).await;
                    return Err(HandshakeFailure::NotTls);
                }
                // Malformed or oversized: let OpenSSL judge the bytes and name the fault.
                Err(_) => break,
            }
            let n = plain
                .read(&mut chunk)
                .await
                .map_err(|e| HandshakeFailure::Io(e.to_string()))?;
            if n == 0 {
                return Err(HandshakeFailure::Closed);
            }
            hello.extend_from_slice(&chunk[..n]);
        }
        plain.rewind(hello);
        let ssl = Ssl::new(acceptor.context()).map_err(|e| HandshakeFailure::Tls(e.to_string()))?;
        let mut tls =
            SslStream::new(ssl, plain).map_err(|e| HandshakeFailure::Tls(e.to_string()))?;
        Pin::new(&mut tls)
            .accept()
            .await
            .map_err(|e| HandshakeFailure::Tls(describe_tls_error(&e)))?;
        Ok(tls)
    };

    let handshake_deadline = Instant::now() + ctx.timeouts.client_handshake;
    let pre_auth_first = deadline < handshake_deadline;
    let result = tokio::time::timeout_at(deadline.min(handshake_deadline), handshake).await;
    match result {
        Ok(Ok(tls)) => {
            facts.note(Fact::ClientTls {
                version: negotiated_version(tls.ssl()),
                cipher: tls.ssl().current_cipher().map(|c| c.name().to_string()),
            });
            Ok(Counted::new(MaybeTls::Tls(tls), tally))
        }
        Ok(Err(failure)) => Err(failure.into_end()),
        Err(_) => {
            let detail = match pre_auth_first {
                true => format!(
                    "no login within {} s (the TLS handshake was not complete)",
                    ctx.timeouts.pre_auth.as_secs()
                ),
                false => format!(
                    "no TLS handshake within {} s",
                    ctx.timeouts.client_handshake.as_secs()
                ),
            };
            Err(SessionEnd::new(Outcome::Timeout, detail))
        }
    }
}

enum HandshakeFailure {
    NotTls,
    Closed,
    Io(String),
    Tls(String),
}

impl HandshakeFailure {
    fn into_end(self) -> SessionEnd {
        match self {
            HandshakeFailure::NotTls => SessionEnd::new(
                Outcome::ProtocolError,
                "the client sent plaintext where a TLS ClientHello was expected",
            ),
            HandshakeFailure::Closed => SessionEnd::new(
                Outcome::ClientClosed,
                "the client closed the connection before its TLS handshake",
            ),
            HandshakeFailure::Io(e) => SessionEnd::new(Outcome::ClientClosed, e),
            HandshakeFailure::Tls(e) => SessionEnd::new(Outcome::ClientTlsFailed, e),
        }
    }
}

/// OpenSSL's error stack as one line, e.g. "unsupported protocol".
fn describe_tls_error(e: &openssl::ssl::Error) -> String {
    match e.ssl_error() {
        Some(stack) => stack
            .errors()
            .iter()
            .map(|err| err.reason().unwrap_or("unknown reason").to_string())
            .collect::<Vec<_>>()
            .join("; "),
        None => e.to_string(),
    }
}

/// The negotiated version as the one type every record uses, not OpenSSL's own spelling
/// ("TLSv1"), so reports group a version under one name.
fn negotiated_version(ssl: &openssl::ssl::SslRef) -> Option<TlsVersion> {
    let version = ssl.version2()?;
    [
        (SslVersion::TLS1, TlsVersion::Tls10),
        (SslVersion::TLS1_1, TlsVersion::Tls11),
        (SslVersion::TLS1_2, TlsVersion::Tls12),
        (SslVersion::TLS1_3, TlsVersion::Tls13),
    ]
    .into_iter()
    .find(|(openssl, _)| *openssl == version)
    .map(|(_, ours)| ours)
}
