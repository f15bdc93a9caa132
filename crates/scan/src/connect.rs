//! Opens one probe connection: waits for the host's gate, connects TCP, and for STARTTLS
//! targets runs the plaintext dialogue up to the server's go-ahead.

mod gate;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use crate::target::{Target, TlsMode};
pub(crate) use gate::{Gates, Pass};
use proto::starttls::{Action, Dialogue, DialogueError, Findings};

/// Why a connection did not reach the point where a ClientHello can be sent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum ConnectError {
    /// TCP connect failed (refused, unreachable).
    #[error("cannot connect: {error}")]
    Tcp {
        /// The kind, which tells a reset (rate limiting) from a closed port.
        kind: io::ErrorKind,
        /// The system's words.
        error: String,
    },
    /// Nothing within the time limit.
    #[error("no answer within {seconds:.1} s during {phase}")]
    Timeout {
        /// The step that was waiting.
        phase: &'static str,
        /// The limit.
        seconds: f32,
    },
    /// The server closed the connection early.
    #[error("the server closed the connection during {0}")]
    Closed(&'static str),
    /// A read or write failed.
    #[error("network error during {phase}: {error}")]
    Io {
        /// The step under way.
        phase: &'static str,
        /// The kind, which tells a reset (rate limiting) from other failures.
        kind: io::ErrorKind,
        /// The system's words.
        error: String,
    },
    /// The STARTTLS dialogue failed.
    #[error(transparent)]
    Dialogue(#[from] DialogueError),
}

impl ConnectError {
    /// Whether the server seems to be limiting us, so that `--slow` may help: it said so,
    /// or it reset the connection. A refused connect is a closed port, which waiting does
    /// not open; the kind is matched, not the system's words, which vary by platform.
    pub(crate) fn is_rate_limit(&self) -> bool {
        match self {
            ConnectError::Dialogue(DialogueError::RateLimited(_)) => true,
            ConnectError::Tcp { kind, .. } | ConnectError::Io { kind, .. } => {
                *kind == io::ErrorKind::ConnectionReset
            }
            _ => false,
        }
    }
}

impl ConnectError {
    fn io(phase: &'static str, error: &io::Error) -> ConnectError {
        ConnectError::Io {
            phase,
            kind: error.kind(),
            error: error.to_string(),
        }
    }
}

/// How connections are made.
#[derive(Debug)]
pub(crate) struct Connector {
    pub(crate) gates: Gates,
    /// The limit on one whole connection: connect, dialogue and probe.
    pub(crate) timeout: Duration,
    /// The name SMTP's EHLO gives.
    pub(crate) client_name: String,
}

/// A connection ready for a ClientHello.
#[derive(Debug)]
pub(crate) struct Ready {
    pub(crate) stream: TcpStream,
    /// Bytes the server sent after its STARTTLS go-ahead.
    pub(crate) leftover: Vec<u8>,
    /// When the connection's time is up.
    pub(crate) deadline: Instant,
    _pass: Pass,
}

/// What opening a connection gave: the STARTTLS findings (also when it then failed).
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) findings: Option<Findings>,
    pub(crate) result: Result<Ready, ConnectError>,
}

impl Connector {
    /// Opens a connection to `address` for `target`, ready for a hello.
    pub(crate) async fn open(&self, target: &Target, address: SocketAddr) -> Opened {
        let pass = self.gates.enter(address.ip()).await;
        // The deadline starts once the gate lets us through: waiting is not the server's fault.
        let deadline = Instant::now() + self.timeout;
        let seconds = self.timeout.as_secs_f32();
        let mut stream = match timeout_at(deadline, TcpStream::connect(address)).await {
            Err(_) => {
                return Opened {
                    findings: None,
                    result: Err(ConnectError::Timeout {
                        phase: "connect",
                        seconds,
                    }),
                }
            }
            Ok(Err(e)) => {
                return Opened {
                    findings: None,
                    result: Err(ConnectError::Tcp {
                        kind: e.kind(),
                        error: e.to_string(),
                    }),
                }
            }
            Ok(Ok(stream)) => stream,
        };
        let _ = stream.set_nodelay(true);
        if target.tls_mode == TlsMode::Implicit {
            return Opened {
                findings: None,
                result: Ok(Ready {
                    stream,
                    leftover: Vec::new(),
                    deadline,
                    _pass: pass,
                }),
            };
        }
        let mut dialogue = Dialogue::new(target.protocol, &self.client_name);
        let result = run_dialogue(&mut stream, &mut dialogue, deadline, seconds).await;
        let findings = Some(dialogue.findings().clone());
        match result {
            Ok(leftover) => Opened {
                findings,
                result: Ok(Ready {
                    stream,
                    leftover,
                    deadline,
                    _pass: pass,
                }),
            },
            Err(error) => {
                if let Some(goodbye) = dialogue.goodbye() {
                    let _ = timeout_at(deadline, stream.write_all(goodbye)).await;
                }
                Opened {
                    findings,
                    result: Err(error),
                }
            }
        }
    }
}

/// Drives `dialogue` over `stream` until STARTTLS is agreed; returns the leftover bytes.
pub(crate) async fn run_dialogue(
    stream: &mut TcpStream,
    dialogue: &mut Dialogue,
    deadline: Instant,
    seconds: f32,
) -> Result<Vec<u8>, ConnectError> {
    let mut buf = vec![0; 8 * 1024];
    loop {
        match dialogue.step()? {
            Action::StartTls { leftover } => return Ok(leftover),
            Action::Send(bytes) => {
                let phase = dialogue.phase();
                match timeout_at(deadline, stream.write_all(&bytes)).await {
                    Err(_) => return Err(ConnectError::Timeout { phase, seconds }),
                    Ok(Err(e)) => return Err(ConnectError::io(phase, &e)),
                    Ok(Ok(())) => {}
                }
            }
            Action::Read => {
                let phase = dialogue.phase();
                match timeout_at(deadline, stream.read(&mut buf)).await {
                    Err(_) => return Err(ConnectError::Timeout { phase, seconds }),
                    Ok(Ok(0)) => return Err(ConnectError::Closed(phase)),
                    Ok(Ok(n)) => dialogue.receive(&buf[..n]),
                    Ok(Err(e)) => return Err(ConnectError::io(phase, &e)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_resets_and_the_servers_own_words_are_rate_limits() {
        let tcp = |kind: io::ErrorKind| ConnectError::Tcp {
            kind,
            error: io::Error::from(kind).to_string(),
        };
        assert!(tcp(io::ErrorKind::ConnectionReset).is_rate_limit());
        assert!(
            ConnectError::io("greeting", &io::ErrorKind::ConnectionReset.into()).is_rate_limit()
        );
        // A closed port stays closed: --slow must not wait and retry it.
        assert!(!tcp(io::ErrorKind::ConnectionRefused).is_rate_limit());
        // The words do not count, only the kind.
        let worded = ConnectError::Io {
            phase: "greeting",
            kind: io::ErrorKind::Other,
            error: "connection reset by peer".into(),
        };
        assert!(!worded.is_rate_limit());
        assert!(!ConnectError::Closed("greeting").is_rate_limit());
        let limited = DialogueError::RateLimited("421 too many connections".into());
        assert!(ConnectError::Dialogue(limited).is_rate_limit());
        let refused = DialogueError::Refused("554 no".into());
        assert!(!ConnectError::Dialogue(refused).is_rate_limit());
    }
}
