//! A blocking socket that starts in plaintext and may switch to TLS in the middle (STARTTLS),
//! on either side: for tests that drive a sans-I/O proto machine over a real connection.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use openssl::ssl::{SslAcceptor, SslConnector, SslMethod, SslStream, SslVersion};

/// A TCP connection, in plaintext or TLS.
pub enum TlsSocket {
    Plain(TcpStream),
    Tls(Box<SslStream<TcpStream>>),
}

impl TlsSocket {
    /// Wraps an accepted or connected TCP stream; reads give up after 20 s.
    pub fn plain(tcp: TcpStream) -> TlsSocket {
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        TlsSocket::Plain(tcp)
    }

    /// The client side of a TLS handshake, TLS 1.2 or newer, the server's certificate verified
    /// against `ca` for the name `localhost`, as the gateway's upstream leg does.
    pub fn connect_tls(self, ca: &Path) -> TlsSocket {
        let mut connector = SslConnector::builder(SslMethod::tls_client()).unwrap();
        connector.set_ca_file(ca).unwrap();
        connector
            .set_min_proto_version(Some(SslVersion::TLS1_2))
            .unwrap();
        let tls = connector
            .build()
            .connect("localhost", self.into_tcp())
            .expect("TLS handshake with the server");
        TlsSocket::Tls(Box::new(tls))
    }

    /// The server side of a TLS handshake with `acceptor`; `None` if the client gave up.
    pub fn accept_tls(self, acceptor: &SslAcceptor) -> Option<TlsSocket> {
        let tls = acceptor.accept(self.into_tcp()).ok()?;
        Some(TlsSocket::Tls(Box::new(tls)))
    }

    fn into_tcp(self) -> TcpStream {
        match self {
            TlsSocket::Plain(tcp) => tcp,
            TlsSocket::Tls(_) => panic!("TLS is already up"),
        }
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            TlsSocket::Plain(s) => s.write_all(bytes),
            TlsSocket::Tls(s) => s.write_all(bytes),
        }
    }

    /// What one read returns; empty when the peer closed or the read failed.
    pub fn read_some(&mut self) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        let n = match self {
            TlsSocket::Plain(s) => s.read(&mut buf),
            TlsSocket::Tls(s) => s.read(&mut buf),
        };
        buf[..n.unwrap_or(0)].to_vec()
    }
}
