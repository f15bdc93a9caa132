//! Opens one probe connection: waits for the host's gate, connects TCP, and for STARTTLS
//! targets runs the plaintext dialogue up to the server's go-ahead.

mod gate;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use crate::starttls::{Action, Dialogue, DialogueError, Findings};
use crate::target::{Target, TlsMode};
pub(crate) use gate::{Gates, Pass};

/// Why a connection did not reach the point where a ClientHello can be sent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnectError {
    /// TCP connect failed (refused, unreachable).
    #[error("cannot connect: {0}")]
    Tcp(String),
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
        /// The system's words.
        error: String,
    },
    /// The STARTTLS dialogue failed.
    #[error(transparent)]
    Dialogue(#[from] DialogueError),
}

impl ConnectError {
    /// Whether the server seems to be limiting us, so that `--slow` may help.
    pub fn is_rate_limit(&self) -> bool {
        match self {
            ConnectError::Dialogue(DialogueError::RateLimited(_)) => true,
            ConnectError::Tcp(e) | ConnectError::Io { error: e, .. } => {
                e.contains("reset") || e.contains("refused")
            }
            ConnectError::Closed(_) => true,
            _ => false,
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
                    result: Err(ConnectError::Tcp(e.to_string())),
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
                    Ok(Err(e)) => {
                        return Err(ConnectError::Io {
                            phase,
                            error: e.to_string(),
                        })
                    }
                    Ok(Ok(())) => {}
                }
            }
            Action::Read => {
                let phase = dialogue.phase();
                match timeout_at(deadline, stream.read(&mut buf)).await {
                    Err(_) => return Err(ConnectError::Timeout { phase, seconds }),
                    Ok(Ok(0)) => return Err(ConnectError::Closed(phase)),
                    Ok(Ok(n)) => dialogue.receive(&buf[..n]),
                    Ok(Err(e)) => {
                        return Err(ConnectError::Io {
                            phase,
                            error: e.to_string(),
                        })
                    }
                }
            }
        }
    }
}
