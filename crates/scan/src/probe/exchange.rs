//! The I/O half of a probe: write the hello, read until the judge decides, say goodbye.

use std::sync::LazyLock;

use rustls::crypto::SecureRandom;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use wire::{build_probe_hello, ProbeSpec, TlsVersion, MAX_SERVER_REPLY_BYTES};

use super::judge::{judge, judge_end, Answer};
use super::offer::RENEGOTIATION_SCSV;

/// Sends a hello offering `version` and `suites` on `stream` (after any STARTTLS) and reads
/// the answer until `deadline`. `leftover` holds bytes the server already sent.
pub(crate) async fn exchange(
    stream: &mut TcpStream,
    leftover: Vec<u8>,
    version: TlsVersion,
    suites: &[u16],
    server_name: Option<&str>,
    want_chain: bool,
    deadline: Instant,
) -> Answer {
    let mut offered = suites.to_vec();
    if version == TlsVersion::Ssl3 {
        offered.push(RENEGOTIATION_SCSV);
    }
    let spec = ProbeSpec {
        version,
        cipher_suites: offered,
        server_name: server_name.map(str::to_string),
        random: random(),
    };
    let hello = build_probe_hello(&spec);
    let seconds = deadline
        .saturating_duration_since(Instant::now())
        .as_secs_f32();
    match timeout_at(deadline, stream.write_all(&hello)).await {
        Err(_) => {
            return Answer::Unknown {
                reason: format!("could not send the hello within {seconds:.1} s"),
            }
        }
        Ok(Err(e)) => {
            return Answer::Unknown {
                reason: format!("could not send the hello: {e}"),
            }
        }
        Ok(Ok(())) => {}
    }
    let mut reply = leftover;
    let mut chunk = vec![0; 16 * 1024];
    let answer = loop {
        if let Some(answer) = judge(version, suites, &reply, want_chain) {
            break answer;
        }
        match timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => {
                // The chain may still be on its way; the hello alone answers the question.
                break judge(version, suites, &reply, false).unwrap_or(Answer::Unknown {
                    reason: format!("no answer to the hello within {seconds:.1} s"),
                });
            }
            Ok(Ok(0)) => break judge_end(version, suites, &reply),
            Ok(Ok(n)) => {
                reply.extend_from_slice(&chunk[..n]);
                // The wire parser reports replies beyond its cap as too large.
                reply.truncate(MAX_SERVER_REPLY_BYTES);
            }
            Ok(Err(e)) if reply.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => {
                break Answer::Rejected {
                    reason: "the server reset the connection after the hello".into(),
                    try_other_suites: false,
                    silent: true,
                }
            }
            Ok(Err(e)) => {
                break Answer::Unknown {
                    reason: format!("network error after the hello: {e}"),
                }
            }
        }
    };
    // Close politely: a warning close_notify, then FIN; the handshake is never completed.
    let record_version = version.min(TlsVersion::Tls12).wire().to_be_bytes();
    let close_notify = [0x15, record_version[0], record_version[1], 0, 2, 1, 0];
    let _ = timeout_at(deadline, stream.write_all(&close_notify)).await;
    let _ = timeout_at(deadline, stream.shutdown()).await;
    answer
}

/// The operating system's generator, through rustls's aws-lc provider; the provider is
/// built once, not for every hello.
static SECURE_RANDOM: LazyLock<&'static dyn SecureRandom> =
    LazyLock::new(|| rustls::crypto::aws_lc_rs::default_provider().secure_random);

/// A fresh client random.
fn random() -> [u8; 32] {
    let mut bytes = [0; 32];
    // The generator failing leaves zeros: still a valid hello, only less private.
    let _ = SECURE_RANDOM.fill(&mut bytes);
    bytes
}
