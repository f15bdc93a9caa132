//! Limits per client address (issue 10, items 2 and 3): one host on the LAN must not be able
//! to lock the others out, neither by holding unauthenticated connections nor by guessing
//! passwords through the gateway.
//!
//! Each case shows the attacker's view (the exact bytes it gets back), the bystander's view (a
//! normal client from another loopback address, which the gateway sees as another host, logs
//! in within a second), and what is left afterwards: the gateway's descriptors and memory back
//! at their baseline, a bounded number of rows for a flood of refused connections, no attempt
//! in Dovecot's log for a throttled login, and both counted on the metrics endpoint (scraped
//! with curl).
//!
//! Everything runs through the real `mailtls` binary to a real Dovecot from `lab/`, with the
//! harness's in-process clients (OpenSSL TLS 1.0, plain sockets) bound to chosen source
//! addresses in 127.0.0.0/8.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use e2e::clients::REPLY_TIMEOUT;
use e2e::evidence::upstream_logins;
use e2e::fault_lab::{record_of, standard_listeners, Lab};
use e2e::free_port;
use e2e::legacy_client::{connect_tcp_from, Client, LOOPBACK};
use e2e::process::{fd_listing, settled_fd_count, vm_rss_kib};
use e2e::scrape::{scrape_until, value};
use store::{Outcome, RefusalReason, SessionRecord, SqliteStore};

/// What a bystander's login may take, from connect to the login's OK.
const BYSTANDER_LOGIN: Duration = Duration::from_secs(1);
/// What a refused connection may take, from connect to the gateway's close.
const AT_ONCE: Duration = Duration::from_secs(1);
/// Descriptors the gateway may hold above its baseline once everything has gone.
const FD_SLACK: usize = 3;
/// Resident memory the gateway may hold above its baseline once everything has gone: the
/// allocator keeps some freed pages, but a leak of 10,000 connections would be far more.
const RSS_SLACK_KIB: u64 = 4 * 1024;

const IMAP_TOO_MANY: &str =
    "* BYE [UNAVAILABLE] Too many connections from your address; try again later\r\n";
const POP3_TOO_MANY: &str =
    "-ERR [SYS/TEMP] Too many connections from your address; try again later\r\n";

fn addr(text: &str) -> Ipv4Addr {
    text.parse().expect("an address")
}

/// Connects from `source` and reads until the gateway closes, which it must do at once;
/// returns what it sent.
fn refused_bytes(source: Ipv4Addr, port: u16) -> Vec<u8> {
    let started = Instant::now();
    let mut tcp: TcpStream = connect_tcp_from(source, port);
    let mut got = Vec::new();
    if let Err(e) = tcp.read_to_end(&mut got) {
        // A reset also ends the connection; a timeout does not.
        assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "port {port}: not closed within {REPLY_TIMEOUT:?}, got {got:?}"
        );
    }
    assert!(
        started.elapsed() < AT_ONCE,
        "port {port}: the refusal took {:?}",
        started.elapsed()
    );
    got
}

/// Runs `login` (a whole session from another address) and checks it took under a second.
fn within_a_second(who: &str, login: impl FnOnce()) -> Duration {
    let started = Instant::now();
    login();
    let took = started.elapsed();
    assert!(took < BYSTANDER_LOGIN, "{who}: the login took {took:?}");
    took
}

/// One host holds its whole share of unauthenticated connections; every further connection
/// of that host is closed at once (`* BYE` / `-ERR` on plaintext listeners, nothing on
/// implicit TLS), also through a flood of 10,000, while clients of other addresses log in
/// within a second. The flood leaves one row per listener and minute, and the gateway's
/// descriptors and memory return to their baseline.
#[test]
fn a_host_over_its_share_is_refused_at_once_and_others_still_log_in() {
    let metrics = free_port();
    let mut lab = Lab::start(
        "client-share",
        &format!(
            "max_unauthenticated = 40\nmax_unauthenticated_per_client = 8\n\n\
             [metrics]\nbind = \"127.0.0.1:{metrics}\""
        ),
        Vec::new(),
        standard_listeners(),
    );
    let pid = lab.gateway.pid();
    // Baseline after whole sessions on both protocols, so lazily made things exist.
    lab.imap_login_works("imap-tls");
    lab.pop3_login_works("pop3-plain");
    let baseline_fds = settled_fd_count(pid, None);
    let baseline_rss = vm_rss_kib(pid);

    // The attacker, 127.0.0.1, holds its share: eight greeted, silent connections.
    let held: Vec<Client> = (0..8)
        .map(|n| {
            let listener = ["imap-plain", "pop3-plain"][n % 2];
            let mut c = lab.connect(listener);
            c.line();
            c
        })
        .collect();

    // Its ninth, on each kind of listener.
    let imap_plain = lab.gateway.port("imap-plain");
    let pop3_plain = lab.gateway.port("pop3-plain");
    let imap_tls = lab.gateway.port("imap-tls");
    assert_eq!(
        String::from_utf8_lossy(&refused_bytes(LOOPBACK, imap_plain)),
        IMAP_TOO_MANY
    );
    assert_eq!(
        String::from_utf8_lossy(&refused_bytes(LOOPBACK, pop3_plain)),
        POP3_TOO_MANY
    );
    // No TLS yet on an implicit-TLS port, so no line it could read: closed without a byte.
    assert_eq!(refused_bytes(LOOPBACK, imap_tls), b"");

    // Bystanders: other hosts log in at once, over TLS 1.0 and in plaintext.
    within_a_second("127.0.0.2 imap-tls", || {
        lab.imap_login_works_from("imap-tls", addr("127.0.0.2"))
    });
    within_a_second("127.0.0.3 pop3-plain", || {
        lab.pop3_login_works_from("pop3-plain", addr("127.0.0.3"))
    });

    // The flood: 10,000 more connections from the attacker, on three listeners at once,
    // while a bystander logs in again and again.
    const FLOOD: usize = 10_000;
    let ports = [imap_plain, pop3_plain, imap_tls];
    let expected = [IMAP_TOO_MANY.as_bytes(), POP3_TOO_MANY.as_bytes(), b""];
    let flood_started = Instant::now();
    let flooding = AtomicBool::new(true);
    let bystander_times = thread::scope(|s| {
        let floods: Vec<_> = ports
            .into_iter()
            .zip(expected)
            .map(|(port, bytes)| {
                s.spawn(move || {
                    for n in 0..FLOOD / 3 + usize::from(port == imap_plain) {
                        let got = refused_bytes(LOOPBACK, port);
                        assert_eq!(got, bytes, "flood connection {n} to port {port}");
                    }
                })
            })
            .collect();
        let bystander = s.spawn(|| {
            let mut times = Vec::new();
            for n in 0.. {
                thread::sleep(Duration::from_millis(100));
                if !flooding.load(Ordering::SeqCst) {
                    break;
                }
                let source = addr(&format!("127.0.1.{}", n % 250));
                times.push(within_a_second("a bystander during the flood", || {
                    lab.imap_login_works_from("imap-tls", source)
                }));
            }
            times
        });
        for flood in floods {
            flood.join().expect("flood");
        }
        flooding.store(false, Ordering::SeqCst);
        bystander.join().expect("bystander")
    });
    assert!(
        bystander_times.len() >= 2,
        "only {} bystander logins during the flood",
        bystander_times.len()
    );
    let flood_took = flood_started.elapsed();
    eprintln!(
        "{FLOOD} refused connections in {flood_took:.1?}; bystander logins during the flood \
         took {bystander_times:?}"
    );

    // The attacker leaves; its place is free again.
    drop(held);
    let settled = settled_fd_count(pid, Some(baseline_fds));
    assert!(
        settled <= baseline_fds + FD_SLACK,
        "the gateway holds {settled} descriptors after the flood, baseline {baseline_fds}\n{}",
        fd_listing(pid)
    );
    let rss = vm_rss_kib(pid);
    eprintln!("gateway memory: {baseline_rss} KiB before, {rss} KiB after the flood");
    assert!(
        rss <= baseline_rss + RSS_SLACK_KIB,
        "the gateway's memory grew from {baseline_rss} to {rss} KiB over the flood"
    );
    lab.imap_login_works("imap-plain");

    // The refusals as the metrics endpoint counts them, per listener.
    let counted = [
        ("imap-plain", 3_335.0),
        ("pop3-plain", 3_334.0),
        ("imap-tls", 3_334.0),
    ];
    scrape_until(metrics, "every refusal counted", |text| {
        counted.iter().all(|&(listener, n)| {
            value(
                text,
                "mailtls_preauth_refused_by_client_limit_total",
                &[("listener", listener)],
            ) == Some(n)
        })
    });

    // One session record per connection that was served (Lab::finish checks), and the
    // refusals as counts: per listener and minute, however many connections.
    let db = lab.gateway.db_path();
    lab.finish();
    let refusals = SqliteStore::open(&db)
        .and_then(|s| s.refusals())
        .expect("read the refusals");
    let total: u64 = refusals.iter().map(|r| r.count).sum();
    assert_eq!(
        total,
        (3 + FLOOD) as u64,
        "every refusal counted: {refusals:#?}"
    );
    eprintln!("{} rows for {total} refused connections", refusals.len());
    let minutes = 2 + flood_took.as_secs() as usize / 60;
    assert!(
        refusals.len() <= 3 * minutes,
        "{} rows for {FLOOD} refusals over {minutes} minutes: {refusals:#?}",
        refusals.len()
    );
    for row in &refusals {
        assert_eq!(
            (row.client_addr, row.reason),
            (IpAddr::V4(LOOPBACK), RefusalReason::ClientLimit),
            "{row:?}"
        );
    }
}

/// Unauthenticated connections from many hosts fill their budget: the next host is refused
/// with its own reason, while logged-in sessions, which have a budget of their own, go on
/// working. A login past `max_sessions` is refused as temporary, without a word upstream.
#[test]
fn a_full_unauthenticated_budget_leaves_logged_in_sessions_alone() {
    let mut lab = Lab::start(
        "client-budget",
        "max_unauthenticated = 8\nmax_unauthenticated_per_client = 4\nmax_sessions = 2",
        Vec::new(),
        standard_listeners(),
    );
    // A logged-in session from 127.0.0.9, kept open.
    let mut logged_in = lab.connect_from("imap-plain", addr("127.0.0.9"));
    logged_in.expect_greeting_imap();
    logged_in.send(b"l1 LOGIN alice secret\r\n");
    assert!(logged_in.tagged("l1").starts_with("l1 OK "));

    // Two hosts hold four unauthenticated connections each: the budget of eight is full.
    let mut held: Vec<Client> = ["127.0.0.1", "127.0.0.2"]
        .iter()
        .flat_map(|host| (0..4).map(move |_| addr(host)))
        .map(|source| {
            let mut c = lab.connect_from("imap-plain", source);
            c.expect_greeting_imap();
            c
        })
        .collect();
    let imap_plain = lab.gateway.port("imap-plain");
    assert_eq!(
        String::from_utf8_lossy(&refused_bytes(addr("127.0.0.3"), imap_plain)),
        "* BYE [UNAVAILABLE] Too many connections; try again later\r\n"
    );

    // The logged-in session is not starved.
    logged_in.select_lab_inbox("l2");

    // One held connection leaves (its record is written once its place is free): the
    // refused host gets in at once.
    held.pop();
    lab.wait_for_records(1);
    within_a_second("127.0.0.3 after a slot freed", || {
        lab.imap_login_works_from("imap-plain", addr("127.0.0.3"))
    });

    // max_sessions = 2: with one logged in, a second session may log in (once the
    // bystander's session has ended and been recorded); a third is refused.
    lab.wait_for_records(2);
    let mut second = held.pop().expect("a held connection");
    second.send(b"s1 LOGIN alice secret\r\n");
    let login = second.tagged("s1");
    assert!(login.starts_with("s1 OK "), "{login:?}");
    let mut third = held.pop().expect("a held connection");
    third.send(b"t1 LOGIN alice secret\r\n");
    assert_eq!(
        third.line(),
        "t1 NO [UNAVAILABLE] The gateway is serving all the sessions it may; try again later\r\n"
    );
    let third_port = third.port;
    third.send(b"t2 LOGOUT\r\n");
    third.tagged("t2");
    drop((second, third, held));
    logged_in.send(b"l3 LOGOUT\r\n");
    logged_in.tagged("l3");
    drop(logged_in);

    let db = lab.gateway.db_path();
    let (records, _) = lab.finish();
    let third = record_of(&records, third_port);
    assert_eq!(third.outcome, Outcome::RefusedByPolicy, "{third:?}");
    // Dovecot saw the first three logins of alice (the held one, the bystander and the
    // second), not the refused one.
    upstream_logins(lab.dovecot(), "alice", 3);
    let refusals = SqliteStore::open(&db)
        .and_then(|s| s.refusals())
        .expect("read the refusals");
    assert_eq!(
        refusals
            .iter()
            .map(|r| (r.client_addr, r.reason, r.count))
            .collect::<Vec<_>>(),
        [(
            IpAddr::V4(addr("127.0.0.3")),
            RefusalReason::PreAuthBudget,
            1
        )],
        "{refusals:#?}"
    );
}

/// Ten failed logins from one host, spread over connections and protocols, and the gateway
/// refuses that host's further logins itself, even with the right password, for the rest of
/// the window: Dovecot never sees them. Another host logs in at once all along.
#[test]
fn a_host_that_failed_ten_logins_is_throttled_without_asking_the_upstream() {
    let metrics = free_port();
    let mut lab = Lab::start(
        "throttle",
        &format!("[metrics]\nbind = \"127.0.0.1:{metrics}\""),
        Vec::new(),
        standard_listeners(),
    );
    let pid = lab.gateway.pid();
    lab.imap_login_works_from("imap-tls", addr("127.0.0.2"));
    let baseline_fds = settled_fd_count(pid, None);

    // Ten guesses from 127.0.0.1, unknown users guess01..guess10, three per connection at most
    // (the per-connection limit), on IMAP and POP3.
    let guesses: Vec<String> = (1..=10).map(|n| format!("guess{n:02}")).collect();
    let mut failed_ports = Vec::new();
    for (batch, users) in guesses.chunks(3).enumerate() {
        if batch % 2 == 0 {
            let mut c = lab.connect("imap-plain");
            c.expect_greeting_imap();
            for user in users {
                c.send(format!("g LOGIN {user} wrong\r\n").as_bytes());
                let reply = c.line();
                assert!(
                    reply.starts_with("g NO [AUTHENTICATIONFAILED]") || reply.starts_with("* BYE"),
                    "{reply:?}"
                );
            }
            failed_ports.push(c.port);
        } else {
            let mut c = lab.connect("pop3-plain");
            c.expect_line_starting("+OK ");
            for user in users {
                c.send(format!("USER {user}\r\nPASS wrong\r\n").as_bytes());
                assert_eq!(c.line(), "+OK send PASS\r\n");
                let reply = c.line();
                assert!(reply.starts_with("-ERR "), "{reply:?}");
            }
            failed_ports.push(c.port);
        }
    }
    // Dovecot's auth process logs each attempt with its user (`passwd-file(guess01,...)`),
    // a moment after it answered.
    let deadline = Instant::now() + Duration::from_secs(10);
    for user in &guesses {
        let marker = format!("passwd-file({user},");
        while !lab.dovecot().log().contains(&marker) {
            assert!(
                Instant::now() < deadline,
                "Dovecot never saw the failed login of {user}:\n{}",
                lab.dovecot().log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    // The attacker's view: refused by the gateway, even alice with her password.
    let mut imap = lab.connect("imap-plain");
    imap.expect_greeting_imap();
    imap.send(b"t1 LOGIN guess11 wrong\r\n");
    assert_eq!(
        imap.line(),
        "t1 NO [UNAVAILABLE] Too many failed logins from your address; try again later\r\n"
    );
    imap.send(b"t2 LOGIN alice secret\r\n");
    assert_eq!(
        imap.line(),
        "t2 NO [UNAVAILABLE] Too many failed logins from your address; try again later\r\n"
    );
    imap.send(b"t3 LOGOUT\r\n");
    imap.tagged("t3");
    let imap_port = imap.port;
    let mut pop3 = lab.connect("pop3-tls");
    pop3.expect_line_starting("+OK ");
    pop3.send(b"USER alice\r\nPASS secret\r\n");
    assert_eq!(pop3.line(), "+OK send PASS\r\n");
    assert_eq!(
        pop3.line(),
        "-ERR [SYS/TEMP] Too many failed logins from your address; try again later\r\n"
    );
    pop3.send(b"QUIT\r\n");
    pop3.rest_until_closed(REPLY_TIMEOUT);
    let pop3_port = pop3.port;

    // The bystander's view: another host's login is untouched.
    within_a_second("127.0.0.2 while 127.0.0.1 is throttled", || {
        lab.imap_login_works_from("imap-plain", addr("127.0.0.2"))
    });
    within_a_second("127.0.0.3 pop3 while 127.0.0.1 is throttled", || {
        lab.pop3_login_works_from("pop3-tls", addr("127.0.0.3"))
    });

    let settled = settled_fd_count(pid, Some(baseline_fds));
    assert!(
        settled <= baseline_fds + FD_SLACK,
        "the gateway holds {settled} descriptors, baseline {baseline_fds}\n{}",
        fd_listing(pid)
    );
    scrape_until(metrics, "the throttled logins counted", |text| {
        let throttled = |listener| {
            value(
                text,
                "mailtls_logins_throttled_total",
                &[("listener", listener)],
            )
        };
        throttled("imap-plain") == Some(2.0) && throttled("pop3-tls") == Some(1.0)
    });

    let (records, _) = lab.finish();
    // Dovecot's own evidence: the throttled attempts never reached it. Its alice logins are
    // exactly the bystanders' three.
    let dovecot_log = lab.dovecot().log();
    assert!(
        !dovecot_log.contains("guess11"),
        "a throttled login reached Dovecot:\n{dovecot_log}"
    );
    upstream_logins(lab.dovecot(), "alice", 3);
    // Ten connections from one address in a few seconds: a closed connection's port may come
    // round again, so each is found by its port and the outcome it must have.
    let with = |port: u16, outcome: Outcome| {
        let found: Vec<&SessionRecord> = records
            .iter()
            .filter(|r| r.client_port == port && r.outcome == outcome)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one {outcome:?} record from port {port}: {records:#?}"
        );
        found[0]
    };
    for port in [imap_port, pop3_port] {
        let r = with(port, Outcome::Throttled);
        assert_eq!(r.client_addr, IpAddr::V4(LOOPBACK));
    }
    for port in failed_ports {
        with(port, Outcome::AuthFailed);
    }
    let throttled = records.iter().filter(|r| r.outcome == Outcome::Throttled);
    assert_eq!(throttled.count(), 2, "{records:#?}");
}

/// A reload changes the limits while keeping what they count: lowered under what a host holds,
/// its connections stay served and its next one is refused at once; raised again, it is let in
/// without a restart.
#[test]
fn a_reload_lowers_and_raises_a_hosts_share_keeping_its_connections() {
    let lab = Lab::start(
        "reload-share",
        "max_unauthenticated_per_client = 8",
        Vec::new(),
        standard_listeners(),
    );
    let mut held: Vec<Client> = (0..3)
        .map(|_| {
            let mut c = lab.connect("imap-plain");
            c.expect_greeting_imap();
            c
        })
        .collect();
    let imap_plain = lab.gateway.port("imap-plain");
    let config = lab.gateway.config_path();
    let share = |n: u32| {
        let text = std::fs::read_to_string(&config).expect("read the config");
        let text = text
            .lines()
            .map(
                |line| match line.starts_with("max_unauthenticated_per_client") {
                    true => format!("max_unauthenticated_per_client = {n}"),
                    false => line.to_string(),
                },
            )
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&config, text).expect("write the config");
    };

    share(3);
    lab.gateway.hang_up();
    let log = lab.gateway.wait_for_log("config reloaded", 1);
    assert!(
        !log.contains("needs a restart"),
        "the limits change at a reload:\n{log}"
    );
    assert_eq!(
        String::from_utf8_lossy(&refused_bytes(LOOPBACK, imap_plain)),
        IMAP_TOO_MANY
    );
    // The connections held before the reload are served to the end.
    for (n, client) in held.iter_mut().enumerate() {
        client.send(format!("a{n} LOGIN alice secret\r\n").as_bytes());
        assert!(client
            .tagged(&format!("a{n}"))
            .starts_with(&format!("a{n} OK ")));
        client.send(format!("b{n} LOGOUT\r\n").as_bytes());
        client.tagged(&format!("b{n}"));
    }
    drop(held);

    // Three at once again fit; the fourth does not.
    let again: Vec<Client> = (0..3)
        .map(|_| {
            let mut c = lab.connect("imap-plain");
            c.expect_greeting_imap();
            c
        })
        .collect();
    assert_eq!(
        String::from_utf8_lossy(&refused_bytes(LOOPBACK, imap_plain)),
        IMAP_TOO_MANY
    );
    share(8);
    lab.gateway.hang_up();
    lab.gateway.wait_for_log("config reloaded", 2);
    lab.imap_login_works("imap-plain");
    drop(again);
}
