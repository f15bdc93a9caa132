//! Connections followed packet by packet: which side is the client, the plaintext dialogue up
//! to STARTTLS, the ClientHello and the server's answer, each turned into a session record.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use store::{OfferedHello, Outcome, SessionRecord, Source};
use wire::{
    parse_client_hello, parse_server_reply, ClientHello, HelloError, ReplyError, ServerReply,
};

use crate::dialogue::{Dialogue, MailProtocol, ServerTurn};
use crate::link::{tcp_segment, NotTcp, Segment};
use crate::reassembly::{SegmentFate, StreamReassembler};
use crate::Packet;

/// Longest plaintext line followed; a longer one is skipped up to its line end.
const MAX_LINE_BYTES: usize = 4096;
/// Plaintext read per connection before giving up on seeing STARTTLS or a login: a mail
/// session without either is bulk data not worth following.
const MAX_PLAINTEXT_BYTES: u64 = 256 * 1024;
/// How often (in capture time) idle connections are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// Record bytes kept while waiting for a ServerHello (it comes first; certificates after it
/// are not needed).
const MAX_SERVER_REPLY_BYTES: usize = 64 * 1024;

/// Ports whose service is known when a connection is joined mid-stream or speaks TLS first.
const PLAINTEXT_PORTS: [(u16, MailProtocol); 5] = [
    (143, MailProtocol::Imap),
    (110, MailProtocol::Pop3),
    (25, MailProtocol::Smtp),
    (587, MailProtocol::Smtp),
    (2525, MailProtocol::Smtp),
];

/// How the analysis is set up.
#[derive(Debug, Clone)]
pub struct AnalysisConfig {
    /// Which source the records name: a capture file or the live sensor.
    pub source: Source,
    /// The records' listener name, e.g. `capture`.
    pub listener: String,
    /// Ports where the client starts with TLS (implicit TLS), and the protocol inside.
    pub implicit_tls_ports: Vec<(u16, MailProtocol)>,
    /// A connection with no packet for this long (in capture time) is closed.
    pub idle_timeout: Duration,
    /// Most connections followed at once; more are counted and ignored.
    pub max_flows: usize,
    /// Most bytes held out of order per direction of a connection.
    pub max_held_bytes: usize,
    /// Most bytes held across all connections (out of order, and read but not yet
    /// understood); a connection that would go beyond is given up.
    pub max_buffered_bytes: usize,
}

impl AnalysisConfig {
    /// The defaults: implicit TLS on 993 (IMAP), 995 (POP3) and 465 (SMTP), five minutes idle,
    /// 100,000 connections, 64 KiB out of order per direction, 256 MiB held in all.
    pub fn new(source: Source, listener: &str) -> AnalysisConfig {
        AnalysisConfig {
            source,
            listener: listener.to_string(),
            implicit_tls_ports: vec![
                (993, MailProtocol::Imap),
                (995, MailProtocol::Pop3),
                (465, MailProtocol::Smtp),
            ],
            idle_timeout: Duration::from_secs(300),
            max_flows: 100_000,
            max_held_bytes: 64 * 1024,
            max_buffered_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Counts of what the analysis saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Frames read.
    pub packets: u64,
    /// Frames that were not TCP over IP (ARP, UDP, ICMP).
    pub not_tcp: u64,
    /// Frames of a link type the analysis does not decode.
    pub unknown_link_type: u64,
    /// Frames whose headers were cut short or impossible.
    pub malformed: u64,
    /// IP fragments (not reassembled).
    pub fragments: u64,
    /// TCP connections followed.
    pub flows: u64,
    /// Connections joined after their SYN (the capture started mid-connection).
    pub mid_stream_flows: u64,
    /// Connections not followed because the table was full.
    pub flows_not_followed: u64,
    /// Connections closed for being idle.
    pub expired_flows: u64,
    /// Segments whose bytes had all been seen: retransmissions.
    pub retransmissions: u64,
    /// Segments that arrived ahead of a gap and were held.
    pub out_of_order: u64,
    /// Segments dropped to keep within the per-connection bound.
    pub dropped_segments: u64,
    /// ClientHellos found.
    pub handshakes: u64,
    /// Handshakes the server refused (an alert, or closing, instead of a ServerHello).
    pub refused_handshakes: u64,
    /// Logins seen in the clear.
    pub plaintext_logins: u64,
    /// TLS connections on ports not known to carry mail.
    pub tls_on_other_ports: u64,
    /// Connections given up because all connections together held too many bytes.
    pub flows_over_budget: u64,
}

/// Where a connection's analysis stands.
#[derive(Debug)]
enum Stage {
    /// No payload yet.
    Opening,
    /// A plaintext mail dialogue, until STARTTLS or a login.
    Plaintext(Dialogue),
    /// TLS: waiting for the ClientHello, then the server's answer.
    Tls,
    /// Nothing more to learn; packets are only counted.
    Done,
}

/// One direction of a connection.
#[derive(Debug)]
struct Side {
    stream: StreamReassembler,
    /// Bytes delivered and not yet consumed by the analysis.
    buffer: Vec<u8>,
    /// Parse again only once the buffer is this long (the end of the next TLS record).
    wanted: usize,
    /// Payload bytes seen, counting retransmissions once.
    bytes: u64,
    /// Set while skipping the rest of an overlong line.
    skipping_line: bool,
    closed: bool,
    /// Nothing more is needed from this direction: its bytes are only counted.
    done: bool,
}

impl Side {
    fn new(limit: usize) -> Side {
        Side {
            stream: StreamReassembler::new(limit),
            buffer: Vec::new(),
            wanted: 0,
            bytes: 0,
            skipping_line: false,
            closed: false,
            done: false,
        }
    }

    fn stop(&mut self) {
        self.stream.stop();
        self.buffer = Vec::new();
        self.done = true;
    }

    /// The complete line at the front of the buffer (without its line end), removed from
    /// it; an overlong line is skipped up to its end.
    fn take_line(&mut self) -> Option<Vec<u8>> {
        loop {
            let Some(end) = self.buffer.iter().position(|&b| b == b'\n') else {
                if self.buffer.len() > MAX_LINE_BYTES {
                    self.buffer.clear();
                    self.skipping_line = true;
                }
                return None;
            };
            let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
            if std::mem::take(&mut self.skipping_line) {
                continue;
            }
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Some(line);
        }
    }
}

/// One TCP connection.
#[derive(Debug)]
struct Flow {
    client: SocketAddr,
    server: SocketAddr,
    started: SystemTime,
    last_seen: SystemTime,
    mid_stream: bool,
    to_server: Side,
    to_client: Side,
    stage: Stage,
    protocol: Option<MailProtocol>,
    hello: Option<Box<ClientHello>>,
    login: Option<String>,
    plaintext_bytes: u64,
}

impl Flow {
    /// Bytes the connection holds: buffers as allocated, and segments held out of order.
    fn footprint(&self) -> usize {
        self.to_server.buffer.capacity()
            + self.to_server.stream.held_bytes()
            + self.to_client.buffer.capacity()
            + self.to_client.stream.held_bytes()
    }
}

/// How a connection ended before the server answered its ClientHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    ServerClosed,
    ClientClosed,
    Idle,
    CaptureEnded,
}

/// Follows the TCP connections of a capture (or a live interface) and makes a session record
/// of every TLS handshake and every plaintext login on them. Time comes only from the packets.
#[derive(Debug)]
pub struct Analyzer {
    config: AnalysisConfig,
    flows: HashMap<(SocketAddr, SocketAddr), Flow>,
    stats: CaptureStats,
    records: Vec<SessionRecord>,
    next_sweep: Option<SystemTime>,
    /// What all connections hold, as [`Flow::footprint`] counts it.
    buffered_bytes: usize,
}

impl Analyzer {
    /// An analysis with nothing seen yet.
    pub fn new(config: AnalysisConfig) -> Analyzer {
        Analyzer {
            config,
            flows: HashMap::new(),
            stats: CaptureStats::default(),
            records: Vec::new(),
            next_sweep: None,
            buffered_bytes: 0,
        }
    }

    /// What has been counted so far.
    pub fn stats(&self) -> &CaptureStats {
        &self.stats
    }

    /// Connections followed right now.
    pub fn open_flows(&self) -> usize {
        self.flows.len()
    }

    /// The records completed since the last call.
    pub fn take_records(&mut self) -> Vec<SessionRecord> {
        std::mem::take(&mut self.records)
    }

    /// Takes one captured frame.
    pub fn packet(&mut self, packet: &Packet<'_>) {
        self.stats.packets += 1;
        match tcp_segment(packet.link_type, packet.data) {
            Ok(segment) => self.segment(packet.timestamp, &segment),
            Err(NotTcp::UnknownLinkType) => self.stats.unknown_link_type += 1,
            Err(NotTcp::OtherProtocol) => self.stats.not_tcp += 1,
            Err(NotTcp::Fragment) => self.stats.fragments += 1,
            Err(NotTcp::Malformed) => self.stats.malformed += 1,
        }
        self.sweep(packet.timestamp);
    }

    /// Closes every connection still open, as at the end of a capture; their pending
    /// handshakes are recorded.
    pub fn finish(&mut self) {
        let keys: Vec<_> = self.flows.keys().copied().collect();
        for key in keys {
            if let Some(flow) = self.remove_flow(&key) {
                self.close(flow, Ending::CaptureEnded);
            }
        }
    }

    /// Takes one TCP segment seen at `now`.
    pub fn segment(&mut self, now: SystemTime, segment: &Segment<'_>) {
        let key = flow_key(segment.source, segment.destination);
        let opening = segment.syn && !segment.ack;
        // A new SYN on ports whose connection carried data: the ports were reused (its FIN
        // was not captured). A SYN before any data is a retransmission and changes nothing.
        if opening
            && self
                .flows
                .get(&key)
                .is_some_and(|f| f.to_server.bytes + f.to_client.bytes > 0)
        {
            if let Some(old) = self.remove_flow(&key) {
                self.close(old, Ending::ClientClosed);
            }
        }
        if !self.flows.contains_key(&key) {
            // A connection starts at its SYN, or mid-stream at a segment carrying data; bare
            // ACKs, FINs and RSTs of connections not followed are ignored.
            if !opening && (segment.payload.is_empty() || segment.rst) {
                return;
            }
            if self.flows.len() >= self.config.max_flows {
                self.stats.flows_not_followed += 1;
                return;
            }
            let (client, server) = if opening {
                (segment.source, segment.destination)
            } else {
                self.guess_roles(segment)
            };
            self.stats.flows += 1;
            if !opening {
                self.stats.mid_stream_flows += 1;
            }
            self.flows.insert(
                key,
                Flow {
                    client,
                    server,
                    started: now,
                    last_seen: now,
                    mid_stream: !opening,
                    to_server: Side::new(self.config.max_held_bytes),
                    to_client: Side::new(self.config.max_held_bytes),
                    stage: Stage::Opening,
                    protocol: None,
                    hello: None,
                    login: None,
                    plaintext_bytes: 0,
                },
            );
        }
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        flow.last_seen = now;
        let footprint_before = flow.footprint();
        let from_client = segment.source == flow.client;
        let side = if from_client {
            &mut flow.to_server
        } else {
            &mut flow.to_client
        };
        let mut delivered = 0u64;
        let mut broken = false;
        if side.done {
            side.bytes += segment.payload.len() as u64;
        } else {
            let buffer = &mut side.buffer;
            let fate = side.stream.segment(
                segment.sequence,
                segment.syn,
                segment.payload,
                &mut |bytes| {
                    delivered += bytes.len() as u64;
                    buffer.extend_from_slice(bytes);
                },
            );
            side.bytes += delivered;
            match fate {
                SegmentFate::Duplicate if !segment.payload.is_empty() => {
                    self.stats.retransmissions += 1
                }
                SegmentFate::Held => self.stats.out_of_order += 1,
                SegmentFate::Dropped => {
                    self.stats.dropped_segments += 1;
                    broken = true;
                }
                _ => {}
            }
        }
        if segment.fin || segment.rst {
            side.closed = true;
        }
        if broken {
            // A gap that will never fill: nothing after it can be read.
            finish_sides(flow);
        } else if delivered > 0 {
            self.advance(key, now, from_client);
        }
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        let footprint = flow.footprint();
        self.buffered_bytes = (self.buffered_bytes + footprint).saturating_sub(footprint_before);
        if self.buffered_bytes > self.config.max_buffered_bytes && footprint > 0 {
            finish_sides(flow);
            self.buffered_bytes = self.buffered_bytes.saturating_sub(footprint);
            self.stats.flows_over_budget += 1;
        }
        if segment.rst || (flow.to_server.closed && flow.to_client.closed) {
            let ending = if from_client {
                Ending::ClientClosed
            } else {
                Ending::ServerClosed
            };
            if let Some(flow) = self.remove_flow(&key) {
                self.close(flow, ending);
            }
        } else if segment.fin && !from_client && matches!(flow.stage, Stage::Tls) {
            // The server hung up on a ClientHello without answering: refused.
            if let Some(flow) = self.remove_flow(&key) {
                self.close(flow, Ending::ServerClosed);
            }
        }
    }

    /// Stops following a connection, and forgets what it held.
    fn remove_flow(&mut self, key: &(SocketAddr, SocketAddr)) -> Option<Flow> {
        let flow = self.flows.remove(key)?;
        self.buffered_bytes = self.buffered_bytes.saturating_sub(flow.footprint());
        Some(flow)
    }

    /// Client and server of a connection joined mid-stream: the side on a known mail port
    /// is the server, else the lower port.
    fn guess_roles(&self, segment: &Segment<'_>) -> (SocketAddr, SocketAddr) {
        let known = |port: u16| {
            self.config
                .implicit_tls_ports
                .iter()
                .any(|(p, _)| *p == port)
                || PLAINTEXT_PORTS.iter().any(|(p, _)| *p == port)
        };
        let (source, destination) = (segment.source, segment.destination);
        if known(destination.port()) {
            (source, destination)
        } else if known(source.port()) {
            (destination, source)
        } else if source.port() > destination.port() {
            (source, destination)
        } else {
            (destination, source)
        }
    }

    /// Reads what the new bytes tell, stage by stage.
    fn advance(&mut self, key: (SocketAddr, SocketAddr), now: SystemTime, from_client: bool) {
        loop {
            let Some(flow) = self.flows.get(&key) else {
                return;
            };
            let changed = match flow.stage {
                Stage::Opening => self.open(key, from_client),
                Stage::Plaintext(_) => self.follow_plaintext(key, now),
                Stage::Tls => {
                    self.follow_tls(key, now);
                    false
                }
                Stage::Done => false,
            };
            if !changed {
                return;
            }
        }
    }

    /// Decides what a connection is from its first bytes; true when the stage changed.
    fn open(&mut self, key: (SocketAddr, SocketAddr), from_client: bool) -> bool {
        let implicit = &self.config.implicit_tls_ports;
        let Some(flow) = self.flows.get_mut(&key) else {
            return false;
        };
        let server_port = flow.server.port();
        let plaintext_port = PLAINTEXT_PORTS
            .iter()
            .find(|(p, _)| *p == server_port)
            .map(|(_, protocol)| *protocol);
        if from_client {
            let first = flow.to_server.buffer[0];
            // A handshake record, or an SSLv2-format hello.
            if first == 0x16 || first & 0x80 != 0 {
                match implicit.iter().find(|(p, _)| *p == server_port) {
                    Some((_, protocol)) => {
                        flow.protocol = Some(*protocol);
                        flow.stage = Stage::Tls;
                    }
                    None => {
                        self.stats.tls_on_other_ports += 1;
                        finish_sides(flow);
                    }
                }
                return true;
            }
            match plaintext_port {
                // Joined mid-dialogue on a known port.
                Some(protocol) if flow.mid_stream => {
                    flow.protocol = Some(protocol);
                    flow.stage = Stage::Plaintext(Dialogue::new(protocol));
                }
                _ => finish_sides(flow),
            }
            return true;
        }
        let buffer = &flow.to_client.buffer;
        let Some(end) = buffer.iter().position(|&b| b == b'\n') else {
            if buffer.len() > MAX_LINE_BYTES {
                finish_sides(flow);
                return true;
            }
            return false;
        };
        let protocol = MailProtocol::from_greeting(&buffer[..end])
            .or(plaintext_port.filter(|_| flow.mid_stream));
        match protocol {
            Some(protocol) => {
                flow.protocol = Some(protocol);
                flow.stage = Stage::Plaintext(Dialogue::new(protocol));
            }
            None => finish_sides(flow),
        }
        true
    }

    /// Follows plaintext lines; true when the stage changed to TLS.
    fn follow_plaintext(&mut self, key: (SocketAddr, SocketAddr), now: SystemTime) -> bool {
        let Some(flow) = self.flows.get_mut(&key) else {
            return false;
        };
        let Stage::Plaintext(dialogue) = &mut flow.stage else {
            return false;
        };
        // The client's lines were sent before the replies to them. After STARTTLS they wait:
        // if the server agrees, the bytes that follow are the ClientHello.
        while !dialogue.awaiting_starttls() {
            let Some(line) = flow.to_server.take_line() else {
                break;
            };
            flow.plaintext_bytes += line.len() as u64;
            dialogue.client_line(&line);
        }
        let mut turn = ServerTurn::Nothing;
        // Line by line, so bytes after the STARTTLS reply stay in the buffer as TLS.
        while turn == ServerTurn::Nothing {
            let Some(line) = flow.to_client.take_line() else {
                break;
            };
            flow.plaintext_bytes += line.len() as u64;
            turn = dialogue.server_line(&line);
        }
        flow.login = dialogue.login().map(str::to_string);
        match turn {
            ServerTurn::StartTls => {
                flow.stage = Stage::Tls;
                true
            }
            ServerTurn::LoginAnswered { accepted } => {
                let outcome = if accepted {
                    Outcome::Ok
                } else {
                    Outcome::AuthFailed
                };
                self.stats.plaintext_logins += 1;
                let record = session_record(&self.config, flow, now, outcome, None);
                self.records.push(record);
                finish_sides(flow);
                false
            }
            ServerTurn::Nothing => {
                if flow.plaintext_bytes > MAX_PLAINTEXT_BYTES {
                    finish_sides(flow);
                }
                false
            }
        }
    }

    /// Reads the ClientHello, then the server's answer.
    fn follow_tls(&mut self, key: (SocketAddr, SocketAddr), now: SystemTime) {
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        if flow.hello.is_none() && flow.to_server.buffer.len() >= flow.to_server.wanted {
            match parse_client_hello(&flow.to_server.buffer) {
                Ok(hello) => {
                    self.stats.handshakes += 1;
                    flow.hello = Some(Box::new(hello));
                    flow.to_server.stop();
                }
                Err(HelloError::Incomplete) => {
                    flow.to_server.wanted = next_record_end(&flow.to_server.buffer)
                }
                Err(_) => {
                    finish_sides(flow);
                    return;
                }
            }
        }
        if flow.hello.is_none() {
            return;
        }
        let reply = &flow.to_client.buffer;
        if reply.is_empty() || reply.len() < flow.to_client.wanted {
            return;
        }
        let (outcome, version, cipher, detail) = match parse_server_reply(reply) {
            Ok(ServerReply::Hello(hello)) => {
                let cipher = wire::suite_name(hello.cipher_suite)
                    .map(|name| openssl::ssl::cipher_name(name).to_string())
                    .filter(|name| name != "(NONE)")
                    .unwrap_or_else(|| format!("0x{:04X}", hello.cipher_suite));
                (Outcome::Ok, hello.version(), Some(cipher), None)
            }
            Ok(ServerReply::Alert(alert)) => {
                self.stats.refused_handshakes += 1;
                let name = alert
                    .description_name()
                    .map_or_else(|| alert.description.to_string(), str::to_string);
                let detail = format!("the server refused the handshake with alert {name}");
                (Outcome::ClientTlsFailed, None, None, Some(detail))
            }
            Err(ReplyError::Incomplete) => {
                if reply.len() > MAX_SERVER_REPLY_BYTES {
                    finish_sides(flow);
                } else {
                    flow.to_client.wanted = next_record_end(&flow.to_client.buffer);
                }
                return;
            }
            Err(ReplyError::NotTls) => (
                Outcome::UpstreamProtocolError,
                None,
                None,
                Some("the server did not answer the ClientHello with TLS".to_string()),
            ),
            Err(e) => (
                Outcome::UpstreamProtocolError,
                None,
                None,
                Some(e.to_string()),
            ),
        };
        let mut record = session_record(&self.config, flow, now, outcome, detail);
        record.tls_version = version;
        record.tls_cipher = cipher;
        self.records.push(record);
        finish_sides(flow);
    }

    /// Ends a connection: a ClientHello without an answer, or a login without one, is
    /// recorded as such.
    fn close(&mut self, mut flow: Flow, ending: Ending) {
        let now = flow.last_seen;
        match flow.stage {
            Stage::Tls if flow.hello.is_some() => {
                let (outcome, detail) = match ending {
                    Ending::ServerClosed => {
                        self.stats.refused_handshakes += 1;
                        (
                            Outcome::ClientTlsFailed,
                            "the server closed the connection instead of answering the ClientHello",
                        )
                    }
                    Ending::ClientClosed => (
                        Outcome::ClientClosed,
                        "the client closed the connection before the server answered",
                    ),
                    Ending::Idle => (Outcome::Timeout, "no answer to the ClientHello was seen"),
                    Ending::CaptureEnded => (
                        Outcome::ClientClosed,
                        "the capture ended before the server answered the ClientHello",
                    ),
                };
                let record =
                    session_record(&self.config, &flow, now, outcome, Some(detail.to_string()));
                self.records.push(record);
            }
            Stage::Plaintext(ref dialogue) if dialogue.login().is_some() => {
                flow.login = dialogue.login().map(str::to_string);
                self.stats.plaintext_logins += 1;
                let record = session_record(
                    &self.config,
                    &flow,
                    now,
                    Outcome::ClientClosed,
                    Some("no answer to the plaintext login was seen".to_string()),
                );
                self.records.push(record);
            }
            _ => {}
        }
        if ending == Ending::Idle {
            self.stats.expired_flows += 1;
        }
    }

    /// Closes connections idle for longer than the timeout, every few seconds of capture time.
    fn sweep(&mut self, now: SystemTime) {
        match self.next_sweep {
            Some(at) if now < at => return,
            _ => self.next_sweep = Some(now + SWEEP_EVERY),
        }
        let timeout = self.config.idle_timeout;
        let idle: Vec<_> = self
            .flows
            .iter()
            .filter(|(_, flow)| {
                now.duration_since(flow.last_seen)
                    .is_ok_and(|idle| idle > timeout)
            })
            .map(|(key, _)| *key)
            .collect();
        for key in idle {
            if let Some(flow) = self.remove_flow(&key) {
                self.close(flow, Ending::Idle);
            }
        }
    }
}

/// The session record of `flow` as far as it is known.
fn session_record(
    config: &AnalysisConfig,
    flow: &Flow,
    now: SystemTime,
    outcome: Outcome,
    detail: Option<String>,
) -> SessionRecord {
    let hello = flow.hello.as_deref();
    let mut record = SessionRecord {
        source: config.source,
        started_at: flow.started,
        ended_at: now.max(flow.started),
        listener: config.listener.clone(),
        protocol: flow
            .protocol
            .map_or("unknown", MailProtocol::as_str)
            .to_string(),
        client_addr: flow.client.ip().to_canonical(),
        client_port: flow.client.port(),
        tls_version: None,
        tls_cipher: None,
        offered_max_tls: hello.and_then(ClientHello::highest_offered),
        sni: None,
        ja4: hello.map(wire::ja4),
        offered: hello.map(OfferedHello::from_hello).unwrap_or_default(),
        client_id: Vec::new(),
        login: flow.login.clone(),
        upstream: SocketAddr::new(flow.server.ip().to_canonical(), flow.server.port()).to_string(),
        upstream_tls_version: None,
        outcome,
        detail,
        bytes_from_client: flow.to_server.bytes,
        bytes_to_client: flow.to_client.bytes,
        envelope_sender: None,
        messages_submitted: None,
        policy: None,
    };
    record.set_sni(hello.and_then(ClientHello::server_name));
    record
}

/// Stops collecting both directions of a connection: nothing more is to be learnt.
fn finish_sides(flow: &mut Flow) {
    flow.stage = Stage::Done;
    // Recorded already, or never to be: a connection open for days keeps only its counts.
    flow.hello = None;
    flow.login = None;
    flow.to_server.stop();
    flow.to_client.stop();
}

/// The same key for both directions of a connection.
fn flow_key(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// The buffer length at which the next TLS record in `buffer` is complete, so an incomplete
/// hello is not parsed again for every small segment.
fn next_record_end(buffer: &[u8]) -> usize {
    let mut end = 0;
    while let Some(header) = buffer.get(end..end + 5) {
        end += 5 + usize::from(u16::from_be_bytes([header[3], header[4]]));
    }
    if buffer.first().is_some_and(|&b| b & 0x80 != 0) {
        // An SSLv2-format hello has another header: parse at every new byte.
        return buffer.len() + 1;
    }
    if end > buffer.len() {
        end
    } else {
        buffer.len() + 1
    }
}

#[cfg(test)]
mod tests;
