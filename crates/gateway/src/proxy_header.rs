//! The PROXY protocol on listeners behind load balancers: before TLS and before the greeting,
//! the connection must come from a trusted load balancer and start with a valid header, which
//! names the real client. The header is consumed here and never reaches the upstream; bytes
//! the client sent right behind it are replayed to the session.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use store::Outcome;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;
use wire::{parse_proxy_header, ProxyHeader, ProxyHeaderError, MAX_PROXY_HEADER_BYTES};

use crate::session::SessionEnd;
use crate::settings::ProxyProtocol;
use crate::stream::Rewind;

/// How long a load balancer gets to send its header. It sends it with (or right after) the
/// connection's first packet, so a wait beyond a few seconds is not a load balancer's.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest single read while looking for the header; what comes past the header is replayed.
const READ_CHUNK: usize = 512;

/// A listener's PROXY protocol check, with the count of connections it refused.
pub(crate) struct ProxyHeaderCheck {
    settings: ProxyProtocol,
    timeout: Duration,
    /// Connections refused so far (untrusted senders, missing or invalid headers), for the log.
    refused: AtomicU64,
}

impl ProxyHeaderCheck {
    pub(crate) fn new(settings: ProxyProtocol) -> Self {
        ProxyHeaderCheck {
            settings,
            timeout: HEADER_TIMEOUT,
            refused: AtomicU64::new(0),
        }
    }

    /// Checks a connection from `peer` and reads its header. Returns the client the header
    /// names (`peer` itself for a `LOCAL` or `UNKNOWN` header) and the bytes read past the
    /// header; or why there is no client, the refusal counted and logged.
    pub(crate) async fn client_of<S: AsyncRead + Unpin>(
        &self,
        listener: &str,
        stream: &mut S,
        peer: SocketAddr,
    ) -> Result<(SocketAddr, Vec<u8>), NoClient> {
        let result = match self.settings.trusts(peer.ip()) {
            // Nothing is read from a sender that may not name clients.
            false => Err(HeaderFailure::Untrusted),
            true => tokio::time::timeout(self.timeout, read_header(stream))
                .await
                .unwrap_or(Err(HeaderFailure::Timeout(self.timeout))),
        };
        match result {
            Ok((header, early)) => {
                tracing::debug!(
                    listener = %listener,
                    proxy = %peer,
                    version = header.version.as_str(),
                    client = ?header.client,
                    "PROXY protocol header read"
                );
                Ok((header.client.unwrap_or(peer), early))
            }
            Err(failure) => {
                let untrusted = matches!(failure, HeaderFailure::Untrusted);
                let end = failure.into_end(peer);
                let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(
                    listener = %listener,
                    peer = %peer,
                    refused_so_far = refused,
                    reason = end.detail.as_deref().unwrap_or(""),
                    "PROXY protocol listener refused a connection"
                );
                Err(match untrusted {
                    true => NoClient::Untrusted,
                    false => NoClient::Ended(end),
                })
            }
        }
    }
}

/// Why a PROXY protocol listener has no client for a connection.
#[derive(Debug)]
pub(crate) enum NoClient {
    /// The sender is not in `proxy_from`. Anyone on the network can be such a sender, so it
    /// is counted per address and minute rather than recorded as a session.
    Untrusted,
    /// A trusted sender's header was missing, late or invalid: the session ends so, recorded.
    Ended(SessionEnd),
}

/// The client's connection as the session task starts it: on a PROXY protocol listener the
/// header is checked, read and dropped first. Returns the socket (with any bytes read past the
/// header queued to be read again) and the client's address.
pub(crate) async fn accept_client(
    check: Option<&ProxyHeaderCheck>,
    listener: &str,
    mut tcp: TcpStream,
    peer: SocketAddr,
) -> Result<(Rewind<TcpStream>, SocketAddr), NoClient> {
    let Some(check) = check else {
        return Ok((Rewind::new(tcp), peer));
    };
    let (client, early) = check.client_of(listener, &mut tcp, peer).await?;
    let mut stream = Rewind::new(tcp);
    if !early.is_empty() {
        stream.rewind(early);
    }
    Ok((stream, client))
}

/// Reads until `stream` holds a whole header; returns it and what was read past it. The bytes
/// live on the heap, not in the session's future, which stays small for the session's life.
async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(ProxyHeader, Vec<u8>), HeaderFailure> {
    let mut read = Vec::with_capacity(READ_CHUNK);
    loop {
        match parse_proxy_header(&read) {
            Ok(header) => {
                let early = read.split_off(header.len);
                return Ok((header, early));
            }
            Err(ProxyHeaderError::Incomplete) => {}
            Err(e) => return Err(HeaderFailure::Invalid(e)),
        }
        // An incomplete header is always shorter than the cap, so there is room to read into.
        let filled = read.len();
        let room = (MAX_PROXY_HEADER_BYTES - filled).min(READ_CHUNK);
        read.resize(filled + room, 0);
        let n = stream
            .read(&mut read[filled..])
            .await
            .map_err(HeaderFailure::Io)?;
        read.truncate(filled + n);
        if n == 0 {
            return Err(HeaderFailure::Closed { read: filled });
        }
    }
}

enum HeaderFailure {
    Untrusted,
    Timeout(Duration),
    Closed { read: usize },
    Io(io::Error),
    Invalid(ProxyHeaderError),
}

impl HeaderFailure {
    fn into_end(self, peer: SocketAddr) -> SessionEnd {
        let sender = peer.ip();
        match self {
            HeaderFailure::Untrusted => SessionEnd::new(
                Outcome::RefusedByPolicy,
                format!(
                    "{sender} may not connect to a PROXY protocol listener: it is not in proxy_from"
                ),
            ),
            HeaderFailure::Timeout(limit) => SessionEnd::new(
                Outcome::Timeout,
                format!(
                    "no PROXY protocol header from {sender} within {} s",
                    limit.as_secs_f32()
                ),
            ),
            HeaderFailure::Closed { read } => SessionEnd::new(
                Outcome::ClientClosed,
                format!(
                    "{sender} closed the connection before a whole PROXY protocol header ({read} bytes read)"
                ),
            ),
            HeaderFailure::Io(e) => SessionEnd::new(
                Outcome::ClientClosed,
                format!("reading the PROXY protocol header from {sender}: {e}"),
            ),
            HeaderFailure::Invalid(e) => {
                SessionEnd::new(Outcome::ProtocolError, format!("from {sender}: {e}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::ReadBuf;

    /// A connection that delivers its bytes in the given pieces, one piece per read, then ends.
    struct Pieces(VecDeque<Vec<u8>>);

    impl AsyncRead for Pieces {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            out: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if let Some(mut piece) = self.0.pop_front() {
                let n = piece.len().min(out.remaining());
                out.put_slice(&piece[..n]);
                if n < piece.len() {
                    self.0.push_front(piece.split_off(n));
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    fn pieces(parts: &[&[u8]]) -> Pieces {
        Pieces(parts.iter().map(|p| p.to_vec()).collect())
    }

    fn check(trusted: &[&str]) -> ProxyHeaderCheck {
        ProxyHeaderCheck::new(ProxyProtocol {
            trusted: trusted.iter().map(|n| n.parse().unwrap()).collect(),
        })
    }

    const BALANCER: &str = "10.1.2.3:40000";

    fn v2(command: ppp::v2::Command, client: &str) -> Vec<u8> {
        let client: SocketAddr = client.parse().unwrap();
        // Both ends of one family, or the builder writes an unspecified address.
        let server = SocketAddr::new(
            match client {
                SocketAddr::V4(_) => "10.0.0.1".parse().unwrap(),
                SocketAddr::V6(_) => "2001:db8::1".parse().unwrap(),
            },
            993,
        );
        ppp::v2::Builder::with_addresses(
            ppp::v2::Version::Two | command,
            ppp::v2::Protocol::Stream,
            (client, server),
        )
        .build()
        .unwrap()
    }

    async fn client_of(
        check: &ProxyHeaderCheck,
        stream: &mut Pieces,
        peer: &str,
    ) -> Result<(SocketAddr, Vec<u8>), NoClient> {
        check.client_of("test", stream, peer.parse().unwrap()).await
    }

    /// How a trusted sender's session ended.
    fn ended(result: Result<(SocketAddr, Vec<u8>), NoClient>) -> SessionEnd {
        match result {
            Err(NoClient::Ended(end)) => end,
            other => panic!("expected a recorded end, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_v1_header_names_the_client_and_the_bytes_behind_it_are_kept() {
        let check = check(&["10.0.0.0/8"]);
        let mut stream = pieces(&[b"PROXY TCP4 192.0.2.7 10.0.0.1 51000 993\r\na1 CAPABILITY\r\n"]);
        let (client, early) = client_of(&check, &mut stream, BALANCER).await.unwrap();
        assert_eq!(client, "192.0.2.7:51000".parse().unwrap());
        assert_eq!(early, b"a1 CAPABILITY\r\n");
        assert_eq!(check.refused.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_v2_header_names_the_client_and_a_client_hello_behind_it_is_kept() {
        let check = check(&["10.0.0.0/8"]);
        let mut bytes = v2(ppp::v2::Command::Proxy, "[2001:db8::7]:6000");
        bytes.extend_from_slice(&[0x16, 0x03, 0x01, 0x00, 0x05]);
        let mut stream = pieces(&[&bytes]);
        let (client, early) = client_of(&check, &mut stream, BALANCER).await.unwrap();
        assert_eq!(client, "[2001:db8::7]:6000".parse().unwrap());
        assert_eq!(early, [0x16, 0x03, 0x01, 0x00, 0x05]);
    }

    #[tokio::test]
    async fn the_session_reads_on_exactly_where_the_header_ended() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut balancer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (tcp, peer) = listener.accept().await.unwrap();
        // Header and the client's first command in one segment, as a balancer may send them.
        tokio::io::AsyncWriteExt::write_all(
            &mut balancer,
            b"PROXY TCP4 192.0.2.7 127.0.0.1 51000 993\r\na1 NOOP\r\n",
        )
        .await
        .unwrap();
        drop(balancer);
        let check = check(&["127.0.0.0/8"]);
        let (mut stream, client) = accept_client(Some(&check), "test", tcp, peer)
            .await
            .unwrap();
        assert_eq!(client, "192.0.2.7:51000".parse().unwrap());
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"a1 NOOP\r\n");
    }

    #[tokio::test]
    async fn a_header_split_across_reads_is_put_together() {
        let check = check(&["10.0.0.0/8"]);
        let v1 = b"PROXY TCP4 192.0.2.7 10.0.0.1 51000 993\r\n+OK";
        let v2 = v2(ppp::v2::Command::Proxy, "192.0.2.8:52000");
        for (whole, client) in [(&v1[..], "192.0.2.7:51000"), (&v2, "192.0.2.8:52000")] {
            for size in [1, 2, 3, 7] {
                let mut stream = Pieces(whole.chunks(size).map(<[u8]>::to_vec).collect());
                let (got, early) = client_of(&check, &mut stream, BALANCER).await.unwrap();
                assert_eq!(got, client.parse().unwrap(), "{size}-byte reads");
                let tail = match whole == v1 {
                    true => &b"+OK"[..],
                    false => &[],
                };
                // With small reads nothing past the header is read at all.
                assert_eq!(early, &tail[..early.len()], "{size}-byte reads");
            }
        }
    }

    #[tokio::test]
    async fn local_and_unknown_keep_the_socket_peer() {
        let check = check(&["10.0.0.0/8"]);
        let local = v2(ppp::v2::Command::Local, "192.0.2.9:1");
        for header in [&local[..], b"PROXY UNKNOWN\r\n"] {
            let mut stream = pieces(&[header]);
            let (client, early) = client_of(&check, &mut stream, BALANCER).await.unwrap();
            assert_eq!(client, BALANCER.parse().unwrap());
            assert!(early.is_empty());
        }
    }

    #[tokio::test]
    async fn garbage_is_refused_as_a_protocol_error() {
        let check = check(&["10.0.0.0/8"]);
        for garbage in [
            &b"a1 LOGIN alice secret\r\n"[..],
            &[0x16, 0x03, 0x01, 0x00, 0xa5],
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
        ] {
            let mut stream = pieces(&[garbage]);
            let end = ended(client_of(&check, &mut stream, BALANCER).await);
            assert_eq!(end.outcome, Outcome::ProtocolError, "{end:?}");
            let detail = end.detail.unwrap();
            assert!(detail.starts_with("from 10.1.2.3: "), "{detail}");
            // What the sender wrote is never echoed into the record.
            assert!(!detail.contains("secret"), "{detail}");
        }
        assert_eq!(check.refused.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn a_header_over_the_cap_is_refused_without_reading_it_all() {
        let check = check(&["10.0.0.0/8"]);
        let long_v1 = format!("PROXY UNKNOWN {}\r\n", "x".repeat(300));
        let mut stream = pieces(&[long_v1.as_bytes()]);
        let end = ended(client_of(&check, &mut stream, BALANCER).await);
        assert_eq!(end.outcome, Outcome::ProtocolError);
        assert!(end.detail.unwrap().contains("longer than"));

        let mut huge_v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        huge_v2.extend([0x21, 0x11, 0xff, 0xff]);
        huge_v2.extend(vec![0u8; 70_000]);
        let mut stream = pieces(&[&huge_v2]);
        let end = ended(client_of(&check, &mut stream, BALANCER).await);
        assert_eq!(end.outcome, Outcome::ProtocolError);
        let unread: usize = stream.0.iter().map(Vec::len).sum();
        assert!(unread > 60_000, "only the announced length was needed");
    }

    #[tokio::test]
    async fn an_untrusted_sender_is_refused_before_anything_is_read() {
        let check = check(&["10.0.0.0/8", "192.168.1.10/32"]);
        let header = b"PROXY TCP4 192.0.2.7 10.0.0.1 51000 993\r\n";
        for peer in ["11.0.0.1:1000", "192.168.1.11:1000", "[2001:db8::1]:1000"] {
            let mut stream = pieces(&[header]);
            let refused = client_of(&check, &mut stream, peer).await;
            assert!(matches!(refused, Err(NoClient::Untrusted)), "{peer}");
            assert_eq!(stream.0.len(), 1, "nothing read from {peer}");
        }
        // An IPv4 balancer seen on an IPv6 socket is still the IPv4 balancer.
        for peer in ["192.168.1.10:1000", "[::ffff:10.9.9.9]:1000"] {
            let mut stream = pieces(&[header]);
            assert!(client_of(&check, &mut stream, peer).await.is_ok(), "{peer}");
        }
        assert_eq!(check.refused.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn a_connection_that_ends_or_stalls_before_the_header_is_refused() {
        let check = check(&["10.0.0.0/8"]);
        let mut stream = pieces(&[b"PROXY TCP4 192.0"]);
        let end = ended(client_of(&check, &mut stream, BALANCER).await);
        assert_eq!(end.outcome, Outcome::ClientClosed);
        assert!(end.detail.unwrap().contains("(16 bytes read)"));

        let mut quick = check;
        quick.timeout = Duration::from_millis(50);
        let (_writer, mut silent) = tokio::io::duplex(64);
        let end = ended(
            quick
                .client_of("test", &mut silent, BALANCER.parse().unwrap())
                .await,
        );
        assert_eq!(end.outcome, Outcome::Timeout);
        assert_eq!(
            end.detail.as_deref(),
            Some("no PROXY protocol header from 10.1.2.3 within 0.05 s")
        );
        assert_eq!(quick.refused.load(Ordering::Relaxed), 2);
    }
}
