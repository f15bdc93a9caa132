//! From a captured frame to its TCP segment: the link-layer header of each supported link type,
//! then IPv4 or IPv6 and TCP (etherparse).

use std::net::{IpAddr, SocketAddr};

use etherparse::{EtherType, NetSlice, SlicedPacket, TransportSlice};

/// LINKTYPE_NULL: BSD loopback, a 4-byte address family in the capturing host's byte order.
const NULL: u32 = 0;
/// LINKTYPE_ETHERNET.
const ETHERNET: u32 = 1;
/// LINKTYPE_RAW and the two historical numbers of DLT_RAW: an IP packet, no link header.
const RAW: [u32; 3] = [101, 12, 14];
/// LINKTYPE_LOOP: OpenBSD loopback, the address family in network byte order.
const LOOP: u32 = 108;
/// LINKTYPE_LINUX_SLL: Linux cooked capture v1 (`tcpdump -i any`).
const LINUX_SLL: u32 = 113;
/// LINKTYPE_IPV4 and LINKTYPE_IPV6.
const IPV4: u32 = 228;
const IPV6: u32 = 229;
/// LINKTYPE_LINUX_SLL2: Linux cooked capture v2.
const LINUX_SLL2: u32 = 276;
/// The SLL2 header: protocol (2), reserved (2), interface index (4), ARPHRD (2), packet
/// type (1), address length (1), address (8).
const SLL2_HEADER_BYTES: usize = 20;

/// A TCP segment as the analysis needs it.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    /// Sender's address and port.
    pub source: SocketAddr,
    /// Receiver's address and port.
    pub destination: SocketAddr,
    /// Sequence number of the first payload byte (of the SYN itself when `syn`).
    pub sequence: u32,
    /// SYN flag.
    pub syn: bool,
    /// ACK flag.
    pub ack: bool,
    /// FIN flag.
    pub fin: bool,
    /// RST flag.
    pub rst: bool,
    /// The TCP payload.
    pub payload: &'a [u8],
}

/// Why a frame gives no TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotTcp {
    /// The link type is not one this reader decodes.
    UnknownLinkType,
    /// IP but another transport (UDP, ICMP), or not IP at all (ARP).
    OtherProtocol,
    /// A fragment of an IP packet: not reassembled (TCP on mail ports avoids fragmentation).
    Fragment,
    /// Headers cut short or impossible.
    Malformed,
}

/// The TCP segment in `frame` of link type `link_type`.
pub fn tcp_segment(link_type: u32, frame: &[u8]) -> Result<Segment<'_>, NotTcp> {
    let sliced = match link_type {
        ETHERNET => SlicedPacket::from_ethernet(frame),
        LINUX_SLL => SlicedPacket::from_linux_sll(frame),
        LINUX_SLL2 => {
            if frame.len() < SLL2_HEADER_BYTES {
                return Err(NotTcp::Malformed);
            }
            let protocol = EtherType(u16::from_be_bytes([frame[0], frame[1]]));
            SlicedPacket::from_ether_type(protocol, &frame[SLL2_HEADER_BYTES..])
        }
        NULL | LOOP => {
            let Some(family) = frame.get(..4) else {
                return Err(NotTcp::Malformed);
            };
            let family: [u8; 4] = family.try_into().map_err(|_| NotTcp::Malformed)?;
            // The family is in the capturing host's byte order for NULL: look at both.
            let value = if link_type == LOOP {
                u32::from_be_bytes(family)
            } else {
                u32::from_le_bytes(family).min(u32::from_be_bytes(family))
            };
            match value {
                // AF_INET everywhere; AF_INET6 on the BSDs, macOS and Windows.
                2 | 24 | 28 | 30 | 23 => SlicedPacket::from_ip(&frame[4..]),
                _ => return Err(NotTcp::OtherProtocol),
            }
        }
        IPV4 | IPV6 => SlicedPacket::from_ip(frame),
        raw if RAW.contains(&raw) => SlicedPacket::from_ip(frame),
        _ => return Err(NotTcp::UnknownLinkType),
    }
    .map_err(|_| NotTcp::Malformed)?;
    let (source_ip, destination_ip, fragmented): (IpAddr, IpAddr, bool) = match &sliced.net {
        Some(NetSlice::Ipv4(ip)) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
            ip.is_payload_fragmented(),
        ),
        Some(NetSlice::Ipv6(ip)) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
            ip.is_payload_fragmented(),
        ),
        _ => return Err(NotTcp::OtherProtocol),
    };
    if fragmented {
        return Err(NotTcp::Fragment);
    }
    let Some(TransportSlice::Tcp(tcp)) = sliced.transport else {
        return Err(NotTcp::OtherProtocol);
    };
    Ok(Segment {
        source: SocketAddr::new(source_ip, tcp.source_port()),
        destination: SocketAddr::new(destination_ip, tcp.destination_port()),
        sequence: tcp.sequence_number(),
        syn: tcp.syn(),
        ack: tcp.ack(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        payload: tcp.payload(),
    })
}
