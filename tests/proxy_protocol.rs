//! PROXY protocol end to end: a real HAProxy (Debian's, started by `lab/haproxy.sh`) in TCP
//! mode relays legacy TLS 1.0 clients (`openssl s_client -tls1`) to gateway listeners with
//! `proxy_protocol = true`, and the gateway logs them in to a real Dovecot that refuses
//! anything below TLS 1.2.
//!
//! HAProxy listens on 127.0.0.1 and reaches the gateway from 127.0.0.1; every client binds
//! 127.0.0.3, so the address the gateway's socket sees and the one the header names differ.
//!
//! What it proves:
//! - with `send-proxy-v2` (implicit TLS) and `send-proxy` (v1, STARTTLS) the session record
//!   holds the client's address and port exactly as HAProxy logged them, never HAProxy's own,
//!   and the mail fetched is byte for byte Dovecot's;
//! - a host outside `proxy_from` that forges a header is closed without a byte back and
//!   recorded under its own socket address as `refused_by_policy`;
//! - a trusted sender without a header (HAProxy with no `send-proxy`, or silence) is closed and
//!   recorded (`protocol_error`, `timeout`), each refusal logged with a running count;
//! - a legacy client behind HAProxy still logs in after all of that, and every connection made
//!   left exactly one record.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use e2e::clients::{s_client_command, s_client_fetch_all, LEGACY_CIPHERS};
use e2e::evidence::{assert_bridged, assert_same_messages, stored_inbox, upstream_logins};
use e2e::fault_lab::record_of;
use e2e::haproxy::{HaProxy, ProxyHeaderKind};
use e2e::legacy_client::{connect_tcp_from, read_to_close, Client, Tee};
use e2e::{free_port_on, post_cutoff_dovecot, run, start_gateway, Gateway, ListenerSpec, Scratch};
use store::{Outcome, RefusalReason, SessionRecord, SqliteStore};

const GATEWAY_SECTION: &str = "pre_auth_timeout_secs = 20";

/// HAProxy, and only HAProxy, may send headers.
const TRUSTED: &[&str] = &["127.0.0.1/32"];

/// Where the legacy clients connect from: not HAProxy's address.
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// The gateway waits this long for a header (`HEADER_TIMEOUT` in the gateway).
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Slack on top of a time limit: two shared cores, a debug build, Dovecot and HAProxy beside.
const SLACK: Duration = Duration::from_millis(2500);

/// A source address for one client: 127.0.0.3 with a port free right now, so the test knows
/// the port before `s_client` binds it.
fn client_source() -> SocketAddr {
    SocketAddr::from((CLIENT_IP, free_port_on(&CLIENT_IP.to_string())))
}

/// A TLS 1.0 `s_client` from `source` through HAProxy's frontend `port` fetches alice's whole
/// INBOX; `extra` adds e.g. `-starttls imap`.
fn legacy_fetch_from(
    source: SocketAddr,
    port: u16,
    ca: &std::path::Path,
    extra: &[&str],
) -> Vec<(u32, Vec<u8>)> {
    let bind = source.to_string();
    let mut args = vec!["-bind", &bind, "-tls1", "-cipher", LEGACY_CIPHERS];
    args.extend_from_slice(extra);
    s_client_fetch_all(port, ca, &args, false)
}

fn start_gateway_behind_haproxy(scratch: &Scratch, dovecot: &e2e::Dovecot) -> Gateway {
    let listeners = vec![
        ListenerSpec::new("imaps-lb", "imap", "implicit", Some("1.0")).behind_proxy(TRUSTED),
        ListenerSpec::new("imap-starttls-lb", "imap", "starttls", Some("1.0"))
            .behind_proxy(TRUSTED),
    ];
    start_gateway(scratch, dovecot, listeners, GATEWAY_SECTION)
}

fn assert_client_is(record: &SessionRecord, client: SocketAddr) {
    assert_eq!(
        SocketAddr::new(record.client_addr, record.client_port),
        client,
        "{record:#?}"
    );
}

#[test]
fn haproxy_v2_and_v1_give_the_record_the_legacy_clients_own_address() {
    let scratch = Scratch::new("proxy-protocol-bridge");
    let dovecot = post_cutoff_dovecot(&scratch);
    let ca = dovecot.ca_file();
    let stored = stored_inbox(&dovecot, "alice");
    let mail_bytes: usize = stored.iter().map(Vec::len).sum();
    let mut gateway = start_gateway_behind_haproxy(&scratch, &dovecot);
    let haproxy = HaProxy::start(
        &scratch.path().join("haproxy"),
        &[
            (ProxyHeaderKind::V2, gateway.port("imaps-lb")),
            (ProxyHeaderKind::V1, gateway.port("imap-starttls-lb")),
        ],
    );

    let cases = [
        (ProxyHeaderKind::V2, "v2", "imaps-lb", &[][..]),
        (
            ProxyHeaderKind::V1,
            "v1",
            "imap-starttls-lb",
            &["-starttls", "imap"][..],
        ),
    ];
    let mut sources = Vec::new();
    for (kind, _, listener, extra) in cases {
        let source = client_source();
        let fetched = legacy_fetch_from(source, haproxy.port(kind), &ca, extra);
        assert_same_messages(&format!("{listener} via HAProxy"), &fetched, &stored);
        sources.push(source);
    }

    upstream_logins(&dovecot, "alice", cases.len());
    let records = gateway.stop_and_read_sessions();
    assert_eq!(records.len(), cases.len(), "{records:#?}");
    for ((_, frontend, listener, _), source) in cases.iter().zip(sources) {
        // HAProxy's own account: it saw the client at 127.0.0.3 and reached the gateway from
        // 127.0.0.1, so the gateway's socket never saw the client's address.
        let relayed = haproxy.relayed(source);
        assert_eq!(relayed.frontend, *frontend);
        assert_eq!(relayed.proxy_source.ip(), IpAddr::from([127, 0, 0, 1]));
        let record = record_of(&records, source.port());
        assert_bridged(
            record, "imap", listener, "TLSv1.0", "TLSv1.0", "alice", mail_bytes,
        );
        assert_client_is(record, relayed.client);
    }
    assert!(
        !records
            .iter()
            .any(|r| r.client_addr == IpAddr::from([127, 0, 0, 1])),
        "a record holds HAProxy's address: {records:#?}"
    );
    // The header stayed with the gateway: Dovecot heard nothing of it.
    assert!(!dovecot.log().contains("PROXY"), "{}", dovecot.log());
}

#[test]
fn untrusted_senders_and_connections_without_a_header_are_refused() {
    let scratch = Scratch::new("proxy-protocol-refusals");
    let dovecot = post_cutoff_dovecot(&scratch);
    let ca = dovecot.ca_file();
    let stored = stored_inbox(&dovecot, "alice");
    let mut gateway = start_gateway_behind_haproxy(&scratch, &dovecot);
    let port = gateway.port("imaps-lb");
    let haproxy = HaProxy::start(
        &scratch.path().join("haproxy"),
        &[(ProxyHeaderKind::V2, port), (ProxyHeaderKind::None, port)],
    );

    // The attacker's view: a host outside proxy_from connects straight to the gateway and
    // claims to relay 203.0.113.9. It gets not one byte back, at once.
    let tcp = connect_tcp_from(CLIENT_IP, port);
    let attacker = tcp.local_addr().expect("local address");
    let started = Instant::now();
    let mut tee = Tee {
        inner: tcp,
        seen: Vec::new(),
    };
    // The gateway may already have closed: a failed write is part of being refused.
    let _ = tee
        .inner
        .write_all(b"PROXY TCP4 203.0.113.9 127.0.0.1 4444 993\r\na1 LOGIN alice secret\r\n");
    read_to_close(&mut tee);
    assert!(tee.seen.is_empty(), "the attacker got {:?}", tee.seen);
    assert!(started.elapsed() < SLACK, "took {:?}", started.elapsed());

    // HAProxy without send-proxy: a trusted sender whose first bytes are the client's
    // ClientHello. The handshake fails and the client learns nothing.
    let no_header = client_source();
    let output = run(&mut s_client_command(
        haproxy.port(ProxyHeaderKind::None),
        &ca,
        &[
            "-bind",
            &no_header.to_string(),
            "-tls1",
            "-cipher",
            LEGACY_CIPHERS,
        ],
    ));
    assert!(!output.status.success(), "a handshake without a header");
    let relayed_without_header = haproxy.relayed(no_header);

    // A trusted sender that says nothing is closed once the header's time is up, and hears
    // nothing before: on this STARTTLS listener even the greeting waits for the header.
    let mut silent = Client::plain(gateway.port("imap-starttls-lb"));
    let started = Instant::now();
    let said = silent.rest_until_closed(HEADER_TIMEOUT + SLACK);
    let waited = started.elapsed();
    assert_eq!(said, "");
    assert!(
        waited >= HEADER_TIMEOUT - Duration::from_millis(500),
        "closed after {waited:?}"
    );

    // The bystander: a legacy client behind HAProxy still fetches its mail.
    let bystander = client_source();
    let fetched = legacy_fetch_from(bystander, haproxy.port(ProxyHeaderKind::V2), &ca, &[]);
    assert_same_messages("the bystander", &fetched, &stored);

    upstream_logins(&dovecot, "alice", 1);
    let records = gateway.stop_and_read_sessions();
    let log = gateway.log();
    assert_eq!(
        records.len(),
        3,
        "one record per connection but the attacker's: {records:#?}"
    );

    // Anyone on the network can be an untrusted sender, so the attacker is counted per
    // address and minute, not recorded: a flood of them cannot fill the disk.
    assert!(
        !records.iter().any(|r| r.client_port == attacker.port()),
        "the attacker has no session record: {records:#?}"
    );
    let refusals = SqliteStore::open(&gateway.db_path())
        .and_then(|store| store.refusals())
        .expect("read the refusals");
    assert_eq!(refusals.len(), 1, "{refusals:#?}");
    assert_eq!(refusals[0].reason, RefusalReason::UntrustedProxy);
    assert_eq!(refusals[0].client_addr, attacker.ip());
    assert_eq!(refusals[0].listener, "imaps-lb");
    assert_eq!(refusals[0].count, 1);
    assert!(
        log.contains(
            "127.0.0.3 may not connect to a PROXY protocol listener: it is not in proxy_from"
        ),
        "{log}"
    );

    let headerless = record_of(&records, relayed_without_header.proxy_source.port());
    assert_client_is(headerless, relayed_without_header.proxy_source);
    assert_eq!(
        headerless.outcome,
        Outcome::ProtocolError,
        "{headerless:#?}"
    );
    assert_eq!(
        headerless.detail.as_deref(),
        Some("from 127.0.0.1: the connection does not start with a PROXY protocol header")
    );
    assert!(headerless.tls_version.is_none());

    let timed_out = record_of(&records, silent.port);
    assert_eq!(timed_out.listener, "imap-starttls-lb");
    assert_eq!(timed_out.outcome, Outcome::Timeout, "{timed_out:#?}");
    assert_eq!(
        timed_out.detail.as_deref(),
        Some("no PROXY protocol header from 127.0.0.1 within 5 s")
    );

    let served = record_of(&records, bystander.port());
    assert_client_is(served, bystander);
    assert_eq!(served.outcome, Outcome::Ok, "{served:#?}");
    assert!(
        !records
            .iter()
            .any(|r| r.client_addr == IpAddr::from([203, 0, 113, 9])),
        "a forged address reached a record"
    );

    // Each refusal is logged with its listener's running count.
    for (listener, refused) in [("imaps-lb", 2), ("imap-starttls-lb", 1)] {
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("PROXY protocol listener refused a connection"))
            .filter(|l| l.contains(&format!("listener={listener} ")))
            .collect();
        assert_eq!(lines.len(), refused, "{listener}:\n{log}");
        for (n, line) in lines.iter().enumerate() {
            assert!(
                line.contains(&format!("refused_so_far={}", n + 1)),
                "{line}"
            );
        }
    }
}
