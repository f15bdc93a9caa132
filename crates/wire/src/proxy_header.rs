//! The PROXY protocol header (HAProxy's v1 text and v2 binary forms) that a load balancer puts
//! before a client's first byte to say whom it relays. The `ppp` crate parses it; this module
//! bounds what is read and reduces the header to what a mail gateway needs: how many bytes it
//! takes and which client it names.

use std::net::{IpAddr, SocketAddr};

use ppp::v1;
use ppp::v2;
use ppp::PartialResult;

/// The longest header accepted. A v1 header is at most 107 bytes; a v2 header is 16 bytes,
/// the addresses (216 bytes at most, for Unix sockets) and TLVs. The TLVs load balancers add
/// (AWS, Azure and GCP endpoint ids, HAProxy's TLS details) stay well below this.
pub const MAX_PROXY_HEADER_BYTES: usize = 2048;

/// The longest v1 header, line end included (the spec's limit).
const V1_MAX_BYTES: usize = 107;

/// How every v1 header starts.
const V1_SIGNATURE: &[u8] = b"PROXY ";

/// The fixed part of a v2 header: signature, version and command, family, payload length.
const V2_FIXED_BYTES: usize = 16;

/// Which form of the PROXY protocol a header used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyVersion {
    /// The text form, `PROXY TCP4 ...\r\n` (HAProxy's `send-proxy`).
    V1,
    /// The binary form (HAProxy's `send-proxy-v2`).
    V2,
}

impl ProxyVersion {
    /// "v1" or "v2", as logs and records spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyVersion::V1 => "v1",
            ProxyVersion::V2 => "v2",
        }
    }
}

/// A complete, valid header at the start of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    pub version: ProxyVersion,
    /// How many bytes the header takes; the client's own bytes start right after.
    pub len: usize,
    /// The client's address and port as the proxy saw them. `None` when the header names no
    /// TCP client: a v2 `LOCAL` command (the proxy's own health check), v1 `UNKNOWN`, or a v2
    /// address family or transport other than TCP over IPv4/IPv6. The spec says to use the
    /// connection's own endpoints then.
    pub client: Option<SocketAddr>,
}

/// Why the bytes read so far are not (yet) a header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyHeaderError {
    /// A valid start of a header: read more and ask again.
    #[error("the PROXY protocol header is not complete")]
    Incomplete,
    /// The header is, or would become, longer than `limit` bytes (107 for v1, as the spec
    /// says; [`MAX_PROXY_HEADER_BYTES`] for v2).
    #[error("the PROXY protocol header is longer than {limit} bytes")]
    TooLong { limit: usize },
    /// The stream starts with neither a v1 nor a v2 signature: whoever connected sent no
    /// header at all (a client's own first bytes, say).
    #[error("the connection does not start with a PROXY protocol header")]
    Missing,
    /// A header that breaks the spec; more bytes cannot mend it.
    #[error("not a valid PROXY protocol header: {0}")]
    Invalid(String),
}

/// Parses the header at the start of `stream`, the bytes a connection has sent so far (they
/// may go on past the header). Returns `Incomplete` while the bytes are a valid beginning.
///
/// ```
/// use wire::{parse_proxy_header, ProxyHeaderError, ProxyVersion};
///
/// let header = parse_proxy_header(b"PROXY TCP4 192.0.2.7 10.0.0.1 51000 993\r\n\x16\x03").unwrap();
/// assert_eq!(header.version, ProxyVersion::V1);
/// assert_eq!(header.len, 41);
/// assert_eq!(header.client, Some("192.0.2.7:51000".parse().unwrap()));
/// assert_eq!(parse_proxy_header(b"PROXY TCP4 192.0."), Err(ProxyHeaderError::Incomplete));
/// assert_eq!(parse_proxy_header(b"a1 CAPABILITY\r\n"), Err(ProxyHeaderError::Missing));
/// ```
pub fn parse_proxy_header(stream: &[u8]) -> Result<ProxyHeader, ProxyHeaderError> {
    if stream.starts_with(V1_SIGNATURE) || V1_SIGNATURE.starts_with(stream) {
        parse_v1(stream)
    } else {
        parse_v2(stream)
    }
}

/// The text form. ppp takes a line cut inside a field (after "51000 ", say) for a broken
/// header rather than a partial one, and ends a line only at CR: it is handed exactly one
/// line, once that line's end (CR LF, or a stray LF) has come.
fn parse_v1(stream: &[u8]) -> Result<ProxyHeader, ProxyHeaderError> {
    let too_long = Err(ProxyHeaderError::TooLong {
        limit: V1_MAX_BYTES,
    });
    let Some(end) = stream.iter().position(|&b| b == b'\r' || b == b'\n') else {
        return match stream.len() < V1_MAX_BYTES {
            true => Err(ProxyHeaderError::Incomplete),
            false => too_long,
        };
    };
    if end >= V1_MAX_BYTES {
        return too_long;
    }
    let line = match stream[end] {
        b'\r' if end + 1 == stream.len() => return Err(ProxyHeaderError::Incomplete),
        b'\r' => &stream[..end + 2],
        _ => &stream[..=end],
    };
    match v1::Header::try_from(line) {
        Ok(header) => Ok(ProxyHeader {
            version: ProxyVersion::V1,
            len: header.header.len(),
            client: v1_client(&header.addresses),
        }),
        Err(v1::BinaryParseError::Parse(v1::ParseError::HeaderTooLong)) => too_long,
        // The whole line is here: whatever is missing from it is missing for good.
        Err(e) => Err(ProxyHeaderError::Invalid(e.to_string())),
    }
}

/// The binary form, whose first 16 bytes give its length.
fn parse_v2(stream: &[u8]) -> Result<ProxyHeader, ProxyHeaderError> {
    let too_long = Err(ProxyHeaderError::TooLong {
        limit: MAX_PROXY_HEADER_BYTES,
    });
    match v2::Header::try_from(stream) {
        Ok(header) if header.len() > MAX_PROXY_HEADER_BYTES => too_long,
        Ok(header) => Ok(ProxyHeader {
            version: ProxyVersion::V2,
            len: header.len(),
            client: v2_client(&header),
        }),
        Err(v2::ParseError::Prefix) => Err(ProxyHeaderError::Missing),
        // Refused on its length field alone, before waiting for the rest of it.
        Err(v2::ParseError::Partial(_, length))
            if V2_FIXED_BYTES + length > MAX_PROXY_HEADER_BYTES =>
        {
            too_long
        }
        Err(e) if e.is_incomplete() => Err(ProxyHeaderError::Incomplete),
        Err(e) => Err(ProxyHeaderError::Invalid(e.to_string())),
    }
}

fn v1_client(addresses: &v1::Addresses) -> Option<SocketAddr> {
    match addresses {
        v1::Addresses::Tcp4(a) => {
            Some(SocketAddr::new(IpAddr::V4(a.source_address), a.source_port))
        }
        v1::Addresses::Tcp6(a) => {
            Some(SocketAddr::new(IpAddr::V6(a.source_address), a.source_port))
        }
        v1::Addresses::Unknown => None,
    }
}

fn v2_client(header: &v2::Header<'_>) -> Option<SocketAddr> {
    if header.command != v2::Command::Proxy || header.protocol != v2::Protocol::Stream {
        return None;
    }
    match header.addresses {
        v2::Addresses::IPv4(a) => {
            Some(SocketAddr::new(IpAddr::V4(a.source_address), a.source_port))
        }
        v2::Addresses::IPv6(a) => {
            Some(SocketAddr::new(IpAddr::V6(a.source_address), a.source_port))
        }
        v2::Addresses::Unspecified | v2::Addresses::Unix(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppp::v2::{Builder, Command, IPv4, IPv6, Protocol, Version};

    fn v2_proxy(client: &str, server: &str) -> Vec<u8> {
        let client: SocketAddr = client.parse().unwrap();
        let server: SocketAddr = server.parse().unwrap();
        Builder::with_addresses(
            Version::Two | Command::Proxy,
            Protocol::Stream,
            (client, server),
        )
        .build()
        .unwrap()
    }

    #[test]
    fn v1_tcp4_and_tcp6_name_the_client_and_leave_what_follows() {
        let stream = b"PROXY TCP4 192.0.2.7 10.0.0.1 51000 993\r\na1 CAPABILITY\r\n";
        let header = parse_proxy_header(stream).unwrap();
        assert_eq!(header.version, ProxyVersion::V1);
        assert_eq!(&stream[header.len..], b"a1 CAPABILITY\r\n");
        assert_eq!(header.client, Some("192.0.2.7:51000".parse().unwrap()));

        let stream = b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 143\r\n";
        let header = parse_proxy_header(stream).unwrap();
        assert_eq!(header.len, stream.len());
        assert_eq!(header.client, Some("[2001:db8::7]:40000".parse().unwrap()));
    }

    #[test]
    fn v1_unknown_names_no_client() {
        let header = parse_proxy_header(b"PROXY UNKNOWN\r\n").unwrap();
        assert_eq!((header.len, header.client), (15, None));
        let with_addresses = b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
        let header = parse_proxy_header(with_addresses).unwrap();
        assert_eq!((header.len, header.client), (with_addresses.len(), None));
    }

    #[test]
    fn v2_ipv4_and_ipv6_name_the_client_with_tlvs_skipped() {
        let mut stream = Builder::with_addresses(
            Version::Two | Command::Proxy,
            Protocol::Stream,
            IPv4::new([198, 51, 100, 9], [10, 0, 0, 1], 40123, 995),
        )
        .write_tlv(0x04, b"ignored")
        .unwrap()
        .build()
        .unwrap();
        let len = stream.len();
        stream.extend_from_slice(&[0x16, 0x03, 0x01]);
        let header = parse_proxy_header(&stream).unwrap();
        assert_eq!(header.version, ProxyVersion::V2);
        assert_eq!(header.len, len);
        assert_eq!(header.client, Some("198.51.100.9:40123".parse().unwrap()));

        let stream = v2_proxy("[2001:db8::9]:1234", "[2001:db8::1]:993");
        let header = parse_proxy_header(&stream).unwrap();
        assert_eq!(header.client, Some("[2001:db8::9]:1234".parse().unwrap()));
    }

    #[test]
    fn v2_local_and_non_tcp_name_no_client() {
        let local = Builder::with_addresses(
            Version::Two | Command::Local,
            Protocol::Stream,
            IPv4::new([127, 0, 0, 1], [127, 0, 0, 1], 1, 2),
        )
        .build()
        .unwrap();
        let header = parse_proxy_header(&local).unwrap();
        assert_eq!((header.len, header.client), (local.len(), None));

        let datagram = Builder::with_addresses(
            Version::Two | Command::Proxy,
            Protocol::Datagram,
            IPv6::new([0u16; 8], [0u16; 8], 1, 2),
        )
        .build()
        .unwrap();
        assert_eq!(parse_proxy_header(&datagram).unwrap().client, None);

        let unspecified = Builder::new(Version::Two | Command::Local, 0)
            .build()
            .unwrap();
        let header = parse_proxy_header(&unspecified).unwrap();
        assert_eq!((header.len, header.client), (16, None));
    }

    #[test]
    fn every_prefix_of_a_header_is_incomplete() {
        let v1 = b"PROXY TCP4 192.0.2.7 10.0.0.1 51000 993\r\n".to_vec();
        let v1_unknown = b"PROXY UNKNOWN\r\n".to_vec();
        let v2 = v2_proxy("192.0.2.7:51000", "10.0.0.1:993");
        for whole in [v1, v1_unknown, v2] {
            for cut in 0..whole.len() {
                assert_eq!(
                    parse_proxy_header(&whole[..cut]),
                    Err(ProxyHeaderError::Incomplete),
                    "{:?}",
                    String::from_utf8_lossy(&whole[..cut])
                );
            }
            assert!(parse_proxy_header(&whole).is_ok());
        }
    }

    #[test]
    fn a_clients_own_first_bytes_are_no_header() {
        for stream in [
            &b"a1 LOGIN alice secret\r\n"[..],
            &[0x16, 0x03, 0x01, 0x00, 0xa5, 0x01],
            b"PROX\r\n",
            b"\r\n\r\nQUIT",
        ] {
            assert_eq!(
                parse_proxy_header(stream),
                Err(ProxyHeaderError::Missing),
                "{stream:?}"
            );
        }
    }

    #[test]
    fn broken_headers_are_invalid() {
        for stream in [
            &b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"[..],
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
            // Found by fuzzing: a stray LF ends the line, whatever follows.
            b"PROXY 10.0\n192.0\x02\0\0\0\0",
            b"PROXY TCP4 1.2.3.4\r\n",
            b"PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
            b"\r\n\r\n\0\r\nQUIT\n\x31\x11\0\x0c",
        ] {
            assert!(
                matches!(
                    parse_proxy_header(stream),
                    Err(ProxyHeaderError::Invalid(_))
                ),
                "{stream:?}: {:?}",
                parse_proxy_header(stream)
            );
        }
    }

    #[test]
    fn oversized_headers_are_refused_early() {
        // v1: no line end within 107 bytes, whether it comes later or not at all.
        let long = format!("PROXY UNKNOWN {}", "x".repeat(200));
        for stream in [long.clone(), long.clone() + "\r\n", long + "\n"] {
            assert_eq!(
                parse_proxy_header(stream.as_bytes()),
                Err(ProxyHeaderError::TooLong { limit: 107 })
            );
        }
        // v2: the length field alone is enough to refuse it.
        let mut announced = v2::PROTOCOL_PREFIX.to_vec();
        announced.extend([0x21, 0x11, 0xff, 0xff]);
        let too_long = Err(ProxyHeaderError::TooLong {
            limit: MAX_PROXY_HEADER_BYTES,
        });
        assert_eq!(parse_proxy_header(&announced), too_long);
        // v2 just within the limit is read.
        let tlv_room = MAX_PROXY_HEADER_BYTES - 16 - 12 - 3;
        let fits = Builder::with_addresses(
            Version::Two | Command::Proxy,
            Protocol::Stream,
            IPv4::new([192, 0, 2, 1], [10, 0, 0, 1], 1, 2),
        )
        .write_tlv(0x04, &vec![b'a'; tlv_room])
        .unwrap()
        .build()
        .unwrap();
        assert_eq!(fits.len(), MAX_PROXY_HEADER_BYTES);
        assert_eq!(parse_proxy_header(&fits).unwrap().len, fits.len());
        // One byte more is refused even when it all came at once.
        let over = Builder::with_addresses(
            Version::Two | Command::Proxy,
            Protocol::Stream,
            IPv4::new([192, 0, 2, 1], [10, 0, 0, 1], 1, 2),
        )
        .write_tlv(0x04, &vec![b'a'; tlv_room + 1])
        .unwrap()
        .build()
        .unwrap();
        assert_eq!(parse_proxy_header(&over), too_long);
    }
}
