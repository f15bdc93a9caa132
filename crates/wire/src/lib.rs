//! TLS on the wire for mailtls, without I/O: versions, cipher suite names, ClientHello
//! parsing and its JA3 and JA4 fingerprints, the scanner's probe hellos and reply parsing, and the
//! PROXY protocol header a load balancer sends before all of these.
//!
//! Every function takes the bytes read so far and returns a value or a typed error;
//! none reads a socket, a clock or a random source. A stream that ends early is reported
//! as `Incomplete`, so the caller reads more and calls again with the longer buffer.
//!
//! ```
//! use wire::{parse_client_hello, HelloError, TlsVersion};
//!
//! // A plaintext IMAP command on a TLS port is told apart from a hello cut short.
//! assert_eq!(parse_client_hello(b"a1 LOGIN x y\r\n"), Err(HelloError::NotTls));
//! assert_eq!(parse_client_hello(&[0x16, 0x03, 0x01]), Err(HelloError::Incomplete));
//! assert_eq!("1.2".parse::<TlsVersion>(), Ok(TlsVersion::Tls12));
//! ```

mod alert;
mod client_hello;
mod extension;
#[cfg(test)]
mod fixtures;
mod grease;
mod ja3;
mod ja4;
mod probe;
mod proxy_header;
mod reader;
mod record;
mod server_reply;
mod sslv2_hello;
mod suites;
mod version;

pub use alert::Alert;
pub use client_hello::{parse_client_hello, ClientHello, HelloError, MAX_CLIENT_HELLO_BYTES};
pub use extension::Extension;
pub use grease::is_grease;
pub use ja3::{ja3, Ja3};
pub use ja4::ja4;
pub use probe::{build_probe_hello, ProbeSpec, MAX_PROBE_SUITES};
pub use proxy_header::{
    parse_proxy_header, ProxyHeader, ProxyHeaderError, ProxyVersion, MAX_PROXY_HEADER_BYTES,
};
pub use server_reply::{
    parse_server_reply, Certificates, ReplyError, ServerHello, ServerReply, MAX_SERVER_REPLY_BYTES,
};
pub use suites::suite_name;
pub use version::{TlsVersion, UnknownVersion};
