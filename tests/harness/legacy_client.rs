//! An in-process test client for the gateway: plaintext or TLS 1.0 as a legacy device speaks
//! it, reading lines against deadlines (never by sleeping), from the test's own thread, so many
//! can run side by side without a process each (as `openssl s_client` in [`crate::clients`]
//! would need). It also hands out the pieces a test needs to break a session on purpose: a
//! bare socket, the TLS 1.0 connector and a socket that keeps what it read.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use openssl::ssl::{SslConnector, SslMethod, SslStream, SslVersion};
use socket2::{Domain, Socket, Type};

use crate::clients::{LEGACY_CIPHERS, REPLY_TIMEOUT};

/// A plain socket or TLS over one.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<SslStream<TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// A line-oriented test client that waits for replies with deadlines, never by sleeping.
pub struct Client {
    stream: Stream,
    /// Our source port: the `client_port` of the session's record.
    pub port: u16,
    /// Received and not yet returned.
    pending: Vec<u8>,
    closed: bool,
    /// Application bytes sent and received so far, to hold against the session record.
    sent: u64,
    received: u64,
}

/// The source address of clients unless a test picks another.
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A TCP connection to a loopback port whose reads and writes give up after
/// [`REPLY_TIMEOUT`], so a gateway that never answers fails the test instead of hanging it.
pub fn connect_tcp(port: u16) -> TcpStream {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    with_reply_timeouts(tcp)
}

/// [`connect_tcp`] from the loopback address `source` (e.g. 127.0.0.3), so the gateway sees
/// this client apart from others on 127.0.0.1.
pub fn connect_tcp_from(source: Ipv4Addr, port: u16) -> TcpStream {
    let connect = || {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        socket.bind(&SocketAddr::from((source, 0)).into())?;
        socket.connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())?;
        io::Result::Ok(TcpStream::from(socket))
    };
    let tcp =
        connect().unwrap_or_else(|e| panic!("connect from {source} to 127.0.0.1:{port}: {e}"));
    with_reply_timeouts(tcp)
}

fn with_reply_timeouts(tcp: TcpStream) -> TcpStream {
    tcp.set_nodelay(true).expect("nodelay");
    tcp.set_read_timeout(Some(REPLY_TIMEOUT)).expect("timeout");
    tcp.set_write_timeout(Some(REPLY_TIMEOUT)).expect("timeout");
    tcp
}

/// A TLS 1.0 client as a legacy device has it (OpenSSL 3 needs security level 0 for that),
/// verifying the gateway's certificate with the lab CA.
pub fn legacy_connector(ca: &Path) -> SslConnector {
    let mut builder = SslConnector::builder(SslMethod::tls_client()).expect("TLS client");
    builder.set_ca_file(ca).expect("lab CA");
    builder
        .set_min_proto_version(Some(SslVersion::TLS1))
        .expect("TLS 1.0");
    builder
        .set_max_proto_version(Some(SslVersion::TLS1))
        .expect("TLS 1.0");
    builder
        .set_cipher_list(LEGACY_CIPHERS)
        .expect("legacy ciphers");
    builder.build()
}

impl Client {
    /// A plaintext client of a loopback port.
    pub fn plain(port: u16) -> Client {
        Client::plain_from(LOOPBACK, port)
    }

    /// A plaintext client of a loopback port, from the source address `source`.
    pub fn plain_from(source: Ipv4Addr, port: u16) -> Client {
        Client::over(Stream::Plain(connect_tcp_from(source, port)))
    }

    /// A TLS 1.0 client of a loopback port, verifying the gateway as `localhost` with `ca`.
    pub fn tls(port: u16, ca: &Path) -> Client {
        Client::tls_from(LOOPBACK, port, ca)
    }

    /// [`Client::tls`] from the source address `source`.
    pub fn tls_from(source: Ipv4Addr, port: u16, ca: &Path) -> Client {
        let tcp = connect_tcp_from(source, port);
        let tls = legacy_connector(ca)
            .connect("localhost", tcp)
            .unwrap_or_else(|e| panic!("TLS 1.0 handshake with port {port}: {e}"));
        // The client's own view: OpenSSL really negotiated the old version it was pinned to.
        assert_eq!(tls.ssl().version2(), Some(SslVersion::TLS1));
        Client::over(Stream::Tls(Box::new(tls)))
    }

    /// A client over a connection already made (plaintext on a TLS port, for example).
    pub fn over(stream: Stream) -> Client {
        let port = stream.tcp().local_addr().expect("local address").port();
        Client {
            stream,
            port,
            pending: Vec::new(),
            closed: false,
            sent: 0,
            received: 0,
        }
    }

    /// Sends bytes exactly as given (the caller writes the CRLFs); nothing for no bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .unwrap_or_else(|e| panic!("port {}: send failed: {e}", self.port));
        self.sent += bytes.len() as u64;
    }

    /// Application bytes sent so far (inside TLS on a TLS connection): what the record's
    /// `bytes_from_client` counts.
    pub fn bytes_sent(&self) -> u64 {
        self.sent
    }

    /// Application bytes received so far, read or still pending: what the record's
    /// `bytes_to_client` counts.
    pub fn bytes_received(&self) -> u64 {
        self.received
    }

    /// Reads once, waiting until `deadline`; false when nothing came in time.
    fn fill(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        self.stream
            .tcp()
            .set_read_timeout(Some(left))
            .expect("read timeout");
        let mut buf = [0u8; 16 * 1024];
        match self.stream.read(&mut buf) {
            Ok(0) => self.closed = true,
            Ok(n) => {
                self.pending.extend_from_slice(&buf[..n]);
                self.received += n as u64;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            // A reset or a TLS close without close_notify: the gateway has gone.
            Err(_) => self.closed = true,
        }
        true
    }

    /// The next line, CRLF included.
    pub fn line(&mut self) -> String {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            if let Some(eol) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=eol).collect();
                return String::from_utf8_lossy(&line).into_owned();
            }
            assert!(
                !self.closed,
                "port {}: closed while waiting for a line; got {:?}",
                self.port,
                String::from_utf8_lossy(&self.pending)
            );
            assert!(
                self.fill(deadline),
                "port {}: no line within {REPLY_TIMEOUT:?}; got {:?}",
                self.port,
                String::from_utf8_lossy(&self.pending)
            );
        }
    }

    /// The next line, asserted to start with `prefix`.
    pub fn expect_line_starting(&mut self, prefix: &str) -> String {
        let line = self.line();
        assert!(
            line.starts_with(prefix),
            "expected {prefix:?}..., got {line:?}"
        );
        line
    }

    /// The gateway's IMAP greeting, which lists its capabilities.
    pub fn expect_greeting_imap(&mut self) {
        self.expect_line_starting("* OK [CAPABILITY IMAP4rev1 ");
    }

    /// Lines through the tagged reply for `tag`, joined.
    pub fn tagged(&mut self, tag: &str) -> String {
        let mut reply = String::new();
        loop {
            let line = self.line();
            reply += &line;
            if line.starts_with(&format!("{tag} ")) {
                return reply;
            }
        }
    }

    /// Selects INBOX with `tag` on a logged-in IMAP session and checks it holds the lab
    /// mailbox's three messages.
    pub fn select_lab_inbox(&mut self, tag: &str) {
        self.send(format!("{tag} SELECT INBOX\r\n").as_bytes());
        let select = self.tagged(tag);
        assert!(
            select.contains("* 3 EXISTS") && select.contains(&format!("{tag} OK ")),
            "{select:?}"
        );
    }

    /// Everything until the gateway closes, which it must do `within`.
    pub fn raw_until_closed(&mut self, within: Duration) -> Vec<u8> {
        let deadline = Instant::now() + within;
        while !self.closed {
            assert!(
                self.fill(deadline),
                "port {}: not closed within {within:?}; got {:?}",
                self.port,
                String::from_utf8_lossy(&self.pending)
            );
        }
        std::mem::take(&mut self.pending)
    }

    /// [`Client::raw_until_closed`] as text.
    pub fn rest_until_closed(&mut self, within: Duration) -> String {
        String::from_utf8_lossy(&self.raw_until_closed(within)).into_owned()
    }
}

/// A socket that keeps a copy of every byte read from it, to show what the gateway sent even
/// when a TLS handshake over it failed.
pub struct Tee {
    pub inner: TcpStream,
    pub seen: Vec<u8>,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads until the peer closes (or resets), keeping what came.
pub fn read_to_close(tee: &mut Tee) {
    let mut buf = [0u8; 4096];
    loop {
        match tee.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                panic!("the gateway did not close within {REPLY_TIMEOUT:?}")
            }
            Err(_) => return,
        }
    }
}
