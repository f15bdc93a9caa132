//! Bad input and faults (issue 2): what a broken or hostile client and a failing upstream get
//! from the gateway.
//!
//! Each case proves three things: the client sees an exact, clear protocol reply (`BAD`, `BYE`,
//! `-ERR`, a TLS alert) or a close, within a bounded time; the session is recorded with the right
//! [`Outcome`]; and the gateway goes on serving a normal login afterwards. Every run also checks
//! that the store holds exactly one record per connection made. The shutdown case proves
//! instead that sessions still in the splice when the gateway stops are recorded in full. One
//! test proves that no password used in a run (right, wrong, the lab's tricky one) appears in
//! the gateway's log at trace level or in the raw bytes of its SQLite files.
//!
//! Everything runs through the real `mailtls` binary to a real Dovecot from `lab/`, in the
//! harness's [`Lab`]. The one stand-in is a fault injector, [`SilentUpstream`]: a TCP listener
//! that accepts and never says a word, playing an upstream that hangs. It is not a mail server.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use e2e::clients::{find, sasl_plain, REPLY_TIMEOUT};
use e2e::evidence::{assert_no_secret_in, gateway_files};
use e2e::fault_lab::{listener, log_line, record_of, standard_listeners, Lab, UpstreamSpec};
use e2e::legacy_client::{legacy_connector, read_to_close, Tee};
use e2e::secrets::leaked;
use e2e::silent_upstream::SilentUpstream;
use e2e::xorshift::XorShift;
use e2e::{free_port, Dovecot, DovecotOptions, Scratch};
use openssl::ssl::HandshakeError;
use store::{Outcome, SessionRecord};

/// Slack on top of a configured time limit before "bounded time" counts as broken: two shared
/// cores, a debug build and Dovecot beside the gateway.
const SLACK: Duration = Duration::from_millis(2500);

const ALICE_PASSWORD: &str = "secret";

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

/// A command line over the 8 KiB pre-login limit ends the session with `* BYE` (IMAP) or `-ERR`
/// (POP3), over TLS 1.0 and over plaintext, recorded as a protocol error.
#[test]
fn command_line_over_the_limit_is_refused() {
    let mut lab = Lab::start("long-line", "", Vec::new(), standard_listeners());
    let long = "x".repeat(9000);
    let mut ports = Vec::new();
    for listener in ["imap-tls", "imap-plain"] {
        let mut c = lab.connect(listener);
        c.expect_greeting_imap();
        c.send(format!("a1 LOGIN alice {long}\r\n").as_bytes());
        assert_eq!(
            c.rest_until_closed(REPLY_TIMEOUT),
            "* BYE Command line too long\r\n",
            "{listener}"
        );
        ports.push((c.port, listener));
        lab.imap_login_works(listener);
    }
    for listener in ["pop3-tls", "pop3-plain"] {
        let mut c = lab.connect(listener);
        c.expect_line_starting("+OK ");
        c.send(format!("USER {long}\r\n").as_bytes());
        assert_eq!(
            c.rest_until_closed(REPLY_TIMEOUT),
            "-ERR line too long\r\n",
            "{listener}"
        );
        ports.push((c.port, listener));
        lab.pop3_login_works(listener);
    }
    let (records, _) = lab.finish();
    for (port, listener) in ports {
        let r = record_of(&records, port);
        assert_eq!(r.outcome, Outcome::ProtocolError, "{listener}: {r:?}");
        assert_eq!(r.listener, listener);
        let detail = match listener.starts_with("imap") {
            true => "Command line too long",
            false => "line too long",
        };
        assert_eq!(r.detail.as_deref(), Some(detail), "{r:?}");
        assert_eq!(r.login, None);
    }
}

/// A LOGIN literal over the limit: announced as synchronising (`{n}`), the client is told `BAD`
/// before it sends a byte and the same connection goes on to log in; non-synchronising
/// (`{n+}`), its bytes are already on the wire, so the session ends with `* BYE`.
#[test]
fn literal_over_the_limit_in_login() {
    let mut lab = Lab::start("literal", "", Vec::new(), standard_listeners());
    let mut kept_serving = Vec::new();
    let mut ended = Vec::new();
    for listener in ["imap-tls", "imap-plain"] {
        // Synchronising: refused up front, the connection keeps serving.
        let mut c = lab.connect(listener);
        c.expect_greeting_imap();
        c.send(b"a1 LOGIN alice {9000}\r\n");
        assert_eq!(
            c.line(),
            "a1 BAD Literal too large (the limit is 8192 bytes)\r\n",
            "{listener}"
        );
        c.send(b"a2 NOOP\r\n");
        assert_eq!(c.line(), "a2 OK NOOP completed\r\n");
        c.send(b"a3 LOGIN alice {6}\r\n");
        assert!(c.line().starts_with("+ "), "{listener}: no continuation");
        c.send(b"secret\r\n");
        assert!(c.tagged("a3").ends_with("Logged in\r\n"), "{listener}");
        c.send(b"a4 LOGOUT\r\n");
        assert!(c.tagged("a4").starts_with("* BYE"), "{listener}");
        kept_serving.push(c.port);

        // Non-synchronising: the oversized bytes come anyway; nothing can be framed after.
        let mut c = lab.connect(listener);
        c.expect_greeting_imap();
        let mut command = b"b1 LOGIN alice {9000+}\r\n".to_vec();
        command.extend(std::iter::repeat_n(b'p', 9000));
        command.extend_from_slice(b"\r\n");
        c.send(&command);
        assert_eq!(
            c.rest_until_closed(REPLY_TIMEOUT),
            "* BYE Literal too large\r\n",
            "{listener}"
        );
        ended.push(c.port);
        lab.imap_login_works(listener);
    }
    let (records, _) = lab.finish();
    for port in kept_serving {
        let r = record_of(&records, port);
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        assert_eq!(r.login.as_deref(), Some("alice"));
    }
    for port in ended {
        let r = record_of(&records, port);
        assert_eq!(r.outcome, Outcome::ProtocolError, "{r:?}");
        assert_eq!(r.detail.as_deref(), Some("Literal too large"));
        assert_eq!(r.login, None);
    }
}

/// Plaintext commands, random binary, and random binary followed by a real ClientHello on an
/// implicit-TLS port: the gateway answers in plaintext that the port expects TLS and closes,
/// recorded as a protocol error. Bytes that start like a TLS record but are not a ClientHello
/// get a TLS alert, recorded as a client TLS failure.
#[test]
fn plaintext_or_garbage_on_an_implicit_tls_port() {
    let mut lab = Lab::start("not-tls", "", Vec::new(), standard_listeners());
    let mut protocol_errors = Vec::new();
    let mut rng = XorShift(0x5eed_f00d_fa17);

    // A device set to plaintext: it sends its command without waiting for a greeting.
    let mut c = lab.connect_plain("imap-tls");
    c.send(b"a1 LOGIN alice secret\r\n");
    assert_eq!(
        c.rest_until_closed(REPLY_TIMEOUT),
        "* BYE this port expects TLS: set the client to SSL/TLS\r\n"
    );
    protocol_errors.push((c.port, "imap-tls"));
    lab.imap_login_works("imap-tls");

    let mut c = lab.connect_plain("pop3-tls");
    c.send(b"USER alice\r\n");
    assert_eq!(
        c.rest_until_closed(REPLY_TIMEOUT),
        "-ERR this port expects TLS: set the client to SSL/TLS\r\n"
    );
    protocol_errors.push((c.port, "pop3-tls"));
    lab.pop3_login_works("pop3-tls");

    // Random binary that does not start like TLS.
    let mut garbage = rng.bytes(512);
    garbage[0] = 0x07;
    let mut c = lab.connect_plain("imap-tls");
    c.send(&garbage);
    assert_eq!(
        c.rest_until_closed(REPLY_TIMEOUT),
        "* BYE this port expects TLS: set the client to SSL/TLS\r\n"
    );
    protocol_errors.push((c.port, "imap-tls"));
    lab.imap_login_works("imap-tls");

    // Random binary, then at once a real TLS 1.0 ClientHello on the same connection: the
    // handshake must fail, and what the client got back is the plaintext BYE.
    let mut garbage = rng.bytes(300);
    garbage[0] = b'*';
    let mut tcp = lab.connect_tcp("imap-tls");
    let port = tcp.local_addr().expect("local address").port();
    tcp.write_all(&garbage).expect("send garbage");
    let tee = Tee {
        inner: tcp,
        seen: Vec::new(),
    };
    let mut failed = match legacy_connector(&lab.ca).connect("localhost", tee) {
        Ok(_) => panic!("a TLS handshake after garbage succeeded"),
        Err(HandshakeError::Failure(mid)) => mid,
        Err(HandshakeError::WouldBlock(mid)) => panic!(
            "the gateway neither answered nor closed within {REPLY_TIMEOUT:?}: {:?}",
            String::from_utf8_lossy(&mid.get_ref().seen)
        ),
        Err(HandshakeError::SetupFailure(e)) => panic!("client TLS setup: {e}"),
    };
    read_to_close(failed.get_mut());
    assert_eq!(
        String::from_utf8_lossy(&failed.get_ref().seen),
        "* BYE this port expects TLS: set the client to SSL/TLS\r\n"
    );
    protocol_errors.push((port, "imap-tls"));
    lab.imap_login_works("imap-tls");

    // A TLS handshake record whose message is not a ClientHello: OpenSSL's fatal alert.
    let mut record = vec![0x16, 0x03, 0x01, 0x00, 0x40, 0x02];
    record.extend(rng.bytes(0x3f));
    let mut c = lab.connect_plain("imap-tls");
    c.send(&record);
    let alert = c.raw_until_closed(REPLY_TIMEOUT);
    assert_eq!(alert.len(), 7, "one alert record: {alert:02x?}");
    assert_eq!(&alert[..2], &[0x15, 0x03], "an alert record: {alert:02x?}");
    assert_eq!(
        &alert[3..6],
        &[0x00, 0x02, 0x02],
        "a fatal alert: {alert:02x?}"
    );
    let tls_failed = c.port;
    lab.imap_login_works("imap-tls");

    let (records, _) = lab.finish();
    for (port, listener) in protocol_errors {
        let r = record_of(&records, port);
        assert_eq!(r.outcome, Outcome::ProtocolError, "{r:?}");
        assert_eq!(r.listener, listener);
        assert_eq!(r.login, None, "nothing was logged in: {r:?}");
        assert_eq!(r.tls_version, None);
    }
    let r = record_of(&records, tls_failed);
    assert_eq!(r.outcome, Outcome::ClientTlsFailed, "{r:?}");
}

/// A client that says nothing (or half a command) is logged out when `pre_auth_timeout_secs`
/// (2 s) runs out: `* BYE`/`-ERR` after the greeting, a close on an implicit-TLS port where it
/// never sent a ClientHello (the pre-auth limit bounds the TLS handshake too, not only the
/// longer `client_handshake_timeout_secs`), also after STARTTLS. Recorded as a timeout; the
/// gateway serves on.
#[test]
fn a_silent_client_is_logged_out_at_the_pre_auth_limit() {
    let limit = Duration::from_secs(2);
    let mut lab = Lab::start(
        "silent",
        "pre_auth_timeout_secs = 2\nclient_handshake_timeout_secs = 15\nupstream_timeout_secs = 3",
        Vec::new(),
        standard_listeners()
            .into_iter()
            .chain([listener(
                "imap-starttls",
                "imap",
                "starttls",
                "dovecot-imap",
            )])
            .collect(),
    );
    struct Case {
        name: &'static str,
        listener: &'static str,
        greeting: Option<&'static str>,
        says: &'static [u8],
        then: &'static str,
    }
    let cases = [
        Case {
            name: "imap plaintext, silent after the greeting",
            listener: "imap-plain",
            greeting: Some("* OK "),
            says: b"",
            then: "* BYE Autologout: no login in time\r\n",
        },
        Case {
            name: "imap TLS 1.0, silent after the greeting",
            listener: "imap-tls",
            greeting: Some("* OK "),
            says: b"",
            then: "* BYE Autologout: no login in time\r\n",
        },
        Case {
            name: "imap plaintext, half a command",
            listener: "imap-plain",
            greeting: Some("* OK "),
            says: b"a1 LOGIN alice sec",
            then: "* BYE Autologout: no login in time\r\n",
        },
        Case {
            name: "pop3 plaintext, silent after the greeting",
            listener: "pop3-plain",
            greeting: Some("+OK "),
            says: b"",
            then: "-ERR Autologout: no login in time\r\n",
        },
        Case {
            name: "imap implicit TLS, no ClientHello at all",
            listener: "imap-tls",
            greeting: None,
            says: b"",
            then: "",
        },
        Case {
            name: "imap STARTTLS, no ClientHello after the OK",
            listener: "imap-starttls",
            greeting: Some("* OK "),
            says: b"a1 STARTTLS\r\n",
            then: "a1 OK Begin TLS negotiation now\r\n",
        },
    ];
    let outcomes: Vec<(u16, &str)> = thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|case| {
                let lab = &lab;
                s.spawn(move || {
                    let started = Instant::now();
                    let mut c = match case.greeting {
                        Some(_) => lab.connect(case.listener),
                        None => lab.connect_plain(case.listener),
                    };
                    if let Some(greeting) = case.greeting {
                        c.expect_line_starting(greeting);
                    }
                    c.send(case.says);
                    let rest = c.rest_until_closed(limit + SLACK);
                    let took = started.elapsed();
                    assert_eq!(rest, case.then, "{}", case.name);
                    assert!(
                        took >= limit - Duration::from_millis(100),
                        "{}: closed after {took:?}, before the {limit:?} limit",
                        case.name
                    );
                    (c.port, case.name)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("case thread"))
            .collect()
    });
    lab.imap_login_works("imap-tls");
    lab.imap_login_works("imap-plain");
    lab.pop3_login_works("pop3-plain");
    let (records, _) = lab.finish();
    for (port, name) in outcomes {
        let r = record_of(&records, port);
        assert_eq!(r.outcome, Outcome::Timeout, "{name}: {r:?}");
        assert!(
            r.detail
                .as_deref()
                .is_some_and(|d| d.starts_with("no login within 2 s")),
            "{name}: the pre-auth limit is the one named: {r:?}"
        );
    }
}

/// A client that talks before the greeting (it sends its login the moment it connects) is
/// served as if it had waited: greeting first, then the replies to what it pipelined.
#[test]
fn a_client_talking_before_the_greeting_is_served() {
    let mut lab = Lab::start("eager", "", Vec::new(), standard_listeners());
    let mut ports = Vec::new();

    let mut c = lab.connect("imap-plain");
    c.send(b"a1 LOGIN alice secret\r\na2 LOGOUT\r\n");
    assert_eq!(
        c.line(),
        "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN AUTH=LOGIN] mailtls ready\r\n"
    );
    let login = c.line();
    assert!(
        login.starts_with("a1 OK ") && login.ends_with("Logged in\r\n"),
        "{login:?}"
    );
    assert_eq!(c.line(), "* BYE Logging out\r\n");
    assert!(c.line().starts_with("a2 OK Logout completed"));
    ports.push(c.port);

    // The same over TLS 1.0: LOGIN right after the handshake, before reading the greeting.
    let mut c = lab.connect("imap-tls");
    c.send(b"a1 LOGIN alice secret\r\n");
    c.expect_greeting_imap();
    assert!(c.line().starts_with("a1 OK "));
    c.send(b"a2 LOGOUT\r\n");
    assert!(c.tagged("a2").contains("a2 OK Logout completed"));
    ports.push(c.port);

    let mut c = lab.connect("pop3-plain");
    c.send(b"USER alice\r\nPASS secret\r\nSTAT\r\nQUIT\r\n");
    assert_eq!(c.line(), "+OK mailtls ready\r\n");
    assert_eq!(c.line(), "+OK send PASS\r\n");
    assert_eq!(c.line(), "+OK Logged in.\r\n");
    assert!(
        c.line().starts_with("+OK 3 "),
        "STAT counts the lab's 3 messages"
    );
    assert_eq!(c.rest_until_closed(REPLY_TIMEOUT), "+OK Logging out.\r\n");
    ports.push(c.port);

    lab.imap_login_works("imap-plain");
    let (records, _) = lab.finish();
    for port in ports {
        let r = record_of(&records, port);
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        assert_eq!(r.login.as_deref(), Some("alice"));
    }
}

/// An upstream that refuses the connection, and one whose name does not resolve: the client
/// gets `* BYE`/`-ERR` naming the upstream at once, the log names the upstream and why, the
/// record says upstream_unreachable, and other listeners keep serving.
#[test]
fn an_unreachable_upstream_is_reported_at_once() {
    let refused_imap = free_port();
    let refused_pop3 = free_port();
    let upstreams = vec![
        UpstreamSpec::new("refused-imap", &format!("127.0.0.1:{refused_imap}"), "imap"),
        UpstreamSpec::new("refused-pop3", &format!("127.0.0.1:{refused_pop3}"), "pop3"),
        UpstreamSpec::new("nxdomain-imap", "mailtls-no-such-host.invalid:993", "imap"),
    ];
    let mut listeners = standard_listeners();
    listeners.push(listener(
        "to-refused-imap",
        "imap",
        "implicit",
        "refused-imap",
    ));
    listeners.push(listener("to-refused-pop3", "pop3", "none", "refused-pop3"));
    listeners.push(listener(
        "to-nxdomain-imap",
        "imap",
        "none",
        "nxdomain-imap",
    ));
    let mut lab = Lab::start(
        "unreachable",
        "pre_auth_timeout_secs = 30\nupstream_timeout_secs = 5",
        upstreams,
        listeners,
    );
    let bound = Duration::from_secs(2);

    let mut cases = Vec::new();
    for (listener, upstream) in [
        ("to-refused-imap", "refused-imap"),
        ("to-nxdomain-imap", "nxdomain-imap"),
    ] {
        let mut c = lab.connect(listener);
        c.expect_greeting_imap();
        let asked = Instant::now();
        c.send(b"a1 LOGIN alice secret\r\n");
        assert_eq!(
            c.rest_until_closed(REPLY_TIMEOUT),
            format!("* BYE Upstream server {upstream} is unreachable\r\n")
        );
        assert!(
            asked.elapsed() < bound,
            "{listener}: took {:?}",
            asked.elapsed()
        );
        cases.push((c.port, upstream));
        lab.imap_login_works("imap-tls");
    }
    let mut c = lab.connect("to-refused-pop3");
    c.expect_line_starting("+OK ");
    c.send(b"USER alice\r\n");
    assert_eq!(c.line(), "+OK send PASS\r\n");
    let asked = Instant::now();
    c.send(b"PASS secret\r\n");
    assert_eq!(
        c.rest_until_closed(REPLY_TIMEOUT),
        "-ERR Upstream server refused-pop3 is unreachable\r\n"
    );
    assert!(asked.elapsed() < bound, "pop3: took {:?}", asked.elapsed());
    cases.push((c.port, "refused-pop3"));
    lab.pop3_login_works("pop3-plain");

    let (records, log) = lab.finish();
    let why = [
        (
            "refused-imap",
            format!("127.0.0.1:{refused_imap}"),
            "Connection refused",
        ),
        (
            "refused-pop3",
            format!("127.0.0.1:{refused_pop3}"),
            "Connection refused",
        ),
        (
            "nxdomain-imap",
            "mailtls-no-such-host.invalid:993".to_string(),
            "lookup",
        ),
    ];
    for (upstream, address, reason) in why {
        let line = log_line(
            &log,
            &[&format!("upstream={upstream} "), "upstream login failed"],
        );
        assert!(
            line.contains(&address) && line.contains(reason),
            "the log line does not say which address failed and why: {line}"
        );
    }
    for (port, upstream) in cases {
        let r = record_of(&records, port);
        assert_eq!(r.outcome, Outcome::UpstreamUnreachable, "{r:?}");
        assert_eq!(r.upstream, upstream);
        assert_eq!(r.login.as_deref(), Some("alice"));
    }
}

/// An upstream that accepts TCP and then never answers (fault injector): the client gets
/// `* BYE`/`-ERR` once `upstream_timeout_secs` runs out, not later, recorded as a timeout.
#[test]
fn a_silent_upstream_times_out_within_the_upstream_limit() {
    let silent = SilentUpstream::start();
    let address = format!("127.0.0.1:{}", silent.port);
    let upstreams = vec![
        UpstreamSpec::new("silent-imap", &address, "imap"),
        UpstreamSpec::new("silent-pop3", &address, "pop3"),
    ];
    let mut listeners = standard_listeners();
    listeners.push(listener(
        "to-silent-imap",
        "imap",
        "implicit",
        "silent-imap",
    ));
    listeners.push(listener("to-silent-pop3", "pop3", "none", "silent-pop3"));
    let mut lab = Lab::start(
        "slow-upstream",
        "pre_auth_timeout_secs = 30\nupstream_timeout_secs = 2",
        upstreams,
        listeners,
    );
    let limit = Duration::from_secs(2);
    let ports: Vec<(u16, &str)> = thread::scope(|s| {
        let imap = s.spawn(|| {
            let mut c = lab.connect("to-silent-imap");
            c.expect_greeting_imap();
            let asked = Instant::now();
            c.send(b"a1 LOGIN alice secret\r\n");
            assert_eq!(
                c.rest_until_closed(limit + SLACK),
                "* BYE Upstream server silent-imap did not answer in time\r\n"
            );
            assert!(asked.elapsed() >= limit - Duration::from_millis(100));
            (c.port, "silent-imap")
        });
        let pop3 = s.spawn(|| {
            let mut c = lab.connect("to-silent-pop3");
            c.expect_line_starting("+OK ");
            c.send(b"USER alice\r\n");
            assert_eq!(c.line(), "+OK send PASS\r\n");
            let asked = Instant::now();
            c.send(b"PASS secret\r\n");
            assert_eq!(
                c.rest_until_closed(limit + SLACK),
                "-ERR Upstream server silent-pop3 did not answer in time\r\n"
            );
            assert!(asked.elapsed() >= limit - Duration::from_millis(100));
            (c.port, "silent-pop3")
        });
        vec![imap.join().expect("imap"), pop3.join().expect("pop3")]
    });
    assert_eq!(
        silent.accepted.load(Ordering::SeqCst),
        2,
        "the gateway connected to the silent upstream once per login"
    );
    lab.imap_login_works("imap-tls");
    lab.pop3_login_works("pop3-plain");
    let (records, log) = lab.finish();
    for (port, upstream) in ports {
        let r = record_of(&records, port);
        assert_eq!(r.outcome, Outcome::Timeout, "{r:?}");
        assert_eq!(r.upstream, upstream);
        let line = log_line(
            &log,
            &[&format!("upstream={upstream} "), "upstream login failed"],
        );
        assert!(
            line.contains(&address) && line.contains("in time"),
            "{line}"
        );
    }
}

/// Upstream certificates that do not verify: the lab Dovecot when its CA is not trusted, a
/// second Dovecot with a self-signed certificate, and the lab Dovecot under a name its
/// certificate does not carry. Each: `* BYE`/`-ERR` saying the certificate does not verify,
/// recorded as upstream_certificate_rejected, the log naming upstream and reason.
#[test]
fn an_upstream_certificate_that_does_not_verify_is_refused() {
    let scratch = Scratch::new("faults-cert");
    let dovecot = Dovecot::start(&scratch.path().join("dovecot"), &DovecotOptions::default());
    let certs = dovecot.ca_file().parent().expect("certs dir").to_path_buf();
    let untrusted = Dovecot::start(
        &scratch.path().join("dovecot-self-signed"),
        &DovecotOptions {
            extra_args: vec![
                "--cert".into(),
                certs.join("untrusted.pem").display().to_string(),
                "--key".into(),
                certs.join("untrusted.key").display().to_string(),
            ],
            ..DovecotOptions::default()
        },
    );
    let imaps = dovecot.port("IMAPS_PORT");
    let mut upstreams = vec![
        UpstreamSpec::new("no-ca-imap", &format!("localhost:{imaps}"), "imap"),
        UpstreamSpec::new(
            "no-ca-pop3",
            &format!("localhost:{}", dovecot.port("POP3S_PORT")),
            "pop3",
        ),
        UpstreamSpec::new(
            "self-signed-imap",
            &format!("localhost:{}", untrusted.port("IMAPS_PORT")),
            "imap",
        ),
        UpstreamSpec::new("wrong-name-imap", &format!("127.0.0.1:{imaps}"), "imap"),
    ];
    upstreams[2].ca_file = Some(dovecot.ca_file());
    upstreams[3].ca_file = Some(dovecot.ca_file());
    upstreams[3].server_name = Some("mail.example.test".into());
    let mut listeners = standard_listeners();
    for (name, protocol, tls, upstream) in [
        ("to-no-ca-imap", "imap", "implicit", "no-ca-imap"),
        ("to-no-ca-pop3", "pop3", "none", "no-ca-pop3"),
        ("to-self-signed-imap", "imap", "none", "self-signed-imap"),
        ("to-wrong-name-imap", "imap", "none", "wrong-name-imap"),
    ] {
        listeners.push(listener(name, protocol, tls, upstream));
    }
    let mut lab = Lab::start_with(scratch, dovecot, "", upstreams, listeners);

    let mut cases = Vec::new();
    for (listener, upstream, why) in [
        ("to-no-ca-imap", "no-ca-imap", "UnknownIssuer"),
        ("to-self-signed-imap", "self-signed-imap", "UnknownIssuer"),
        ("to-wrong-name-imap", "wrong-name-imap", "NotValidForName"),
    ] {
        let mut c = lab.connect(listener);
        c.expect_greeting_imap();
        c.send(b"a1 LOGIN alice secret\r\n");
        assert_eq!(
            c.rest_until_closed(REPLY_TIMEOUT),
            format!(
                "* BYE Upstream server {upstream} presented a certificate that does not verify\r\n"
            )
        );
        cases.push((c.port, upstream, why));
        lab.imap_login_works("imap-plain");
    }
    let mut c = lab.connect("to-no-ca-pop3");
    c.expect_line_starting("+OK ");
    c.send(b"USER alice\r\nPASS secret\r\n");
    assert_eq!(c.line(), "+OK send PASS\r\n");
    assert_eq!(
        c.rest_until_closed(REPLY_TIMEOUT),
        "-ERR Upstream server no-ca-pop3 presented a certificate that does not verify\r\n"
    );
    cases.push((c.port, "no-ca-pop3", "UnknownIssuer"));
    lab.pop3_login_works("pop3-plain");

    let (records, log) = lab.finish();
    drop(untrusted);
    assert_certificate_rejected(&records, &log, cases);
}

/// Wrong passwords: a tagged `NO` / `-ERR` the client may retry after (and a right password then
/// logs in on the same connection); the third failure ends the session with `* BYE` / `-ERR`,
/// recorded as auth_failed.
#[test]
fn wrong_passwords_may_be_retried_until_the_third() {
    let mut lab = Lab::start(
        "wrong-password",
        "pre_auth_timeout_secs = 60\nupstream_timeout_secs = 10",
        Vec::new(),
        standard_listeners(),
    );
    let (retried, refused) = thread::scope(|s| {
        let imap_retry = s.spawn(|| {
            let mut c = lab.connect("imap-tls");
            c.expect_greeting_imap();
            c.send(b"a1 LOGIN alice wrong-1\r\n");
            assert_eq!(
                c.line(),
                "a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
            );
            c.send(b"a2 LOGIN alice secret\r\n");
            assert!(c.line().starts_with("a2 OK "));
            c.send(b"a3 LOGOUT\r\n");
            c.tagged("a3");
            c.port
        });
        let imap_three = s.spawn(|| {
            let mut c = lab.connect("imap-plain");
            c.expect_greeting_imap();
            for tag in ["b1", "b2"] {
                c.send(format!("{tag} LOGIN alice wrong-{tag}\r\n").as_bytes());
                assert_eq!(
                    c.line(),
                    format!("{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
                );
            }
            c.send(b"b3 LOGIN alice wrong-b3\r\n");
            assert_eq!(
                c.rest_until_closed(REPLY_TIMEOUT),
                "* BYE Too many failed logins\r\n"
            );
            c.port
        });
        let pop3_retry = s.spawn(|| {
            let mut c = lab.connect("pop3-tls");
            c.expect_line_starting("+OK ");
            c.send(b"USER alice\r\nPASS wrong-3\r\n");
            assert_eq!(c.line(), "+OK send PASS\r\n");
            assert_eq!(c.line(), "-ERR [AUTH] Authentication failed.\r\n");
            c.send(b"USER alice\r\nPASS secret\r\n");
            assert_eq!(c.line(), "+OK send PASS\r\n");
            assert_eq!(c.line(), "+OK Logged in.\r\n");
            c.send(b"QUIT\r\n");
            c.rest_until_closed(REPLY_TIMEOUT);
            c.port
        });
        let pop3_three = s.spawn(|| {
            let mut c = lab.connect("pop3-plain");
            c.expect_line_starting("+OK ");
            for n in 1..=2 {
                c.send(format!("USER alice\r\nPASS wrong-p{n}\r\n").as_bytes());
                assert_eq!(c.line(), "+OK send PASS\r\n");
                assert_eq!(c.line(), "-ERR [AUTH] Authentication failed.\r\n");
            }
            c.send(b"USER alice\r\nPASS wrong-p3\r\n");
            assert_eq!(c.line(), "+OK send PASS\r\n");
            assert_eq!(
                c.rest_until_closed(REPLY_TIMEOUT),
                "-ERR Too many failed logins\r\n"
            );
            c.port
        });
        (
            [
                imap_retry.join().expect("imap"),
                pop3_retry.join().expect("pop3"),
            ],
            [
                imap_three.join().expect("imap"),
                pop3_three.join().expect("pop3"),
            ],
        )
    });
    lab.imap_login_works("imap-plain");
    lab.pop3_login_works("pop3-tls");
    let (records, _) = lab.finish();
    for port in retried {
        let r = record_of(&records, port);
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        assert_eq!(r.login.as_deref(), Some("alice"));
    }
    for port in refused {
        let r = record_of(&records, port);
        assert_eq!(r.outcome, Outcome::AuthFailed, "{r:?}");
        assert_eq!(r.login.as_deref(), Some("alice"));
    }
}

/// After logins with right and wrong passwords in every form (atoms, quoted, literals, SASL
/// PLAIN with and without initial response, POP3 USER/PASS and AUTH PLAIN, the lab's tricky
/// password), a password sent in plaintext to a TLS port, one in an over-long line and one for
/// an unreachable upstream: no password appears in the gateway's trace-level log nor in the raw
/// bytes of sessions.db and its -wal/-shm files, in any usual encoding.
#[test]
fn no_password_in_the_log_or_the_store() {
    let refused = free_port();
    let upstreams = vec![UpstreamSpec::new(
        "refused-imap",
        &format!("127.0.0.1:{refused}"),
        "imap",
    )];
    let mut listeners = standard_listeners();
    listeners.push(listener("to-refused-imap", "imap", "none", "refused-imap"));
    let scratch = Scratch::new("faults-secrets");
    let dovecot = Dovecot::start(&scratch.path().join("dovecot"), &DovecotOptions::default());
    let tricky = std::fs::read_to_string(dovecot.var("TRICKY_PASSWORD_FILE"))
        .expect("the lab's tricky password");
    let mut lab = Lab::start_with_log(
        scratch,
        dovecot,
        "pre_auth_timeout_secs = 60\nupstream_timeout_secs = 10",
        upstreams,
        listeners,
        "trace",
    );
    let tricky_b = tricky.as_bytes();
    let wrong = [
        "Wrong-Quoted-pw 1",
        "Wrong-Literal-pw-2",
        "Wrong-Sasl-pw-3",
        "Wrong-Pop3-pw-4",
        "Cleartext-On-Tls-pw-5",
        "Overlong-Line-pw-6",
        "Refused-Upstream-pw-7",
    ];
    thread::scope(|s| {
        s.spawn(|| {
            let mut c = lab.connect("imap-tls");
            c.expect_greeting_imap();
            c.send(format!("a1 LOGIN alice \"{}\"\r\n", wrong[0]).as_bytes());
            assert!(c.line().starts_with("a1 NO "));
            let ir = sasl_plain("alice", ALICE_PASSWORD.as_bytes());
            c.send(format!("a2 AUTHENTICATE PLAIN {ir}\r\n").as_bytes());
            assert!(c.line().starts_with("a2 OK "));
            c.send(b"a3 LOGOUT\r\n");
            c.tagged("a3");
        });
        s.spawn(|| {
            let mut c = lab.connect("imap-plain");
            c.expect_greeting_imap();
            c.send(format!("b1 LOGIN tricky {{{}}}\r\n", tricky_b.len()).as_bytes());
            assert!(c.line().starts_with("+ "));
            c.send(tricky_b);
            c.send(b"\r\n");
            assert!(
                c.line().starts_with("b1 OK "),
                "the tricky password logs in"
            );
            c.send(b"b2 LOGOUT\r\n");
            c.tagged("b2");
        });
        s.spawn(|| {
            let mut c = lab.connect("imap-plain");
            c.expect_greeting_imap();
            let pw = wrong[1];
            c.send(format!("c1 LOGIN tricky {{{}+}}\r\n{pw}\r\n", pw.len()).as_bytes());
            assert!(c.line().starts_with("c1 NO "));
            c.send(b"c2 AUTHENTICATE PLAIN\r\n");
            assert!(c.line().starts_with("+"));
            c.send(format!("{}\r\n", sasl_plain("alice", wrong[2].as_bytes())).as_bytes());
            assert!(c.line().starts_with("c2 NO "));
            c.send(b"c3 LOGOUT\r\n");
            c.rest_until_closed(REPLY_TIMEOUT);
        });
        s.spawn(|| {
            let mut c = lab.connect("pop3-plain");
            c.expect_line_starting("+OK ");
            c.send(format!("USER alice\r\nPASS {}\r\n", wrong[3]).as_bytes());
            assert_eq!(c.line(), "+OK send PASS\r\n");
            assert!(c.line().starts_with("-ERR "));
            c.send(b"USER alice\r\nPASS secret\r\n");
            assert_eq!(c.line(), "+OK send PASS\r\n");
            assert!(c.line().starts_with("+OK "));
            c.send(b"QUIT\r\n");
            c.rest_until_closed(REPLY_TIMEOUT);
        });
        s.spawn(|| {
            let mut c = lab.connect("pop3-tls");
            c.expect_line_starting("+OK ");
            let ir = sasl_plain("tricky", tricky_b);
            c.send(format!("AUTH PLAIN {ir}\r\n").as_bytes());
            assert!(c.line().starts_with("+OK "), "the tricky password logs in");
            c.send(b"QUIT\r\n");
            c.rest_until_closed(REPLY_TIMEOUT);
        });
        s.spawn(|| {
            let mut c = lab.connect_plain("imap-tls");
            c.send(format!("d1 LOGIN alice {}\r\n", wrong[4]).as_bytes());
            assert!(c.rest_until_closed(REPLY_TIMEOUT).starts_with("* BYE "));
        });
        s.spawn(|| {
            let mut c = lab.connect("imap-plain");
            c.expect_greeting_imap();
            let padding = " ".repeat(9000);
            c.send(format!("e1 LOGIN alice {}{padding}\r\n", wrong[5]).as_bytes());
            assert!(c.rest_until_closed(REPLY_TIMEOUT).starts_with("* BYE "));
        });
        s.spawn(|| {
            let mut c = lab.connect("to-refused-imap");
            c.expect_greeting_imap();
            c.send(format!("f1 LOGIN alice {}\r\n", wrong[6]).as_bytes());
            assert!(c.rest_until_closed(REPLY_TIMEOUT).starts_with("* BYE "));
        });
    });
    let sessions = 8;
    let mut passwords: Vec<&[u8]> = vec![ALICE_PASSWORD.as_bytes(), tricky_b];
    passwords.extend(wrong.iter().map(|w| w.as_bytes()));

    // While the gateway runs: the records are in the WAL, the -shm file exists.
    lab.wait_for_records(sessions);
    let running = gateway_files(&lab.gateway);
    assert!(
        running.iter().any(|(name, _)| name == "sessions.db-wal"),
        "the WAL file was not there to search: {:?}",
        running.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    let (records, _) = lab.finish();
    assert_eq!(records.len(), sessions, "one record per session");
    let stopped = gateway_files(&lab.gateway);

    for (when, files) in [("while running", &running), ("after stop", &stopped)] {
        let named = |name: &str| files.iter().find(|(n, _)| n == name).map(|(_, b)| b);
        let log = named("gateway.log").expect("the gateway log");
        let db = named("sessions.db").expect("the session store");
        // The search must be able to find things: the login names are there.
        assert!(
            find(log, b"login=\"tricky\"").is_some(),
            "{when}: log without logins?"
        );
        let store_bytes: Vec<u8> = [Some(db), named("sessions.db-wal")]
            .into_iter()
            .flatten()
            .flatten()
            .copied()
            .collect();
        assert!(
            find(&store_bytes, b"tricky").is_some(),
            "{when}: store without logins?"
        );
        assert_no_secret_in(files, &passwords, when);
    }
}

/// The secret search itself: it finds a password in each encoding a log or a record could use,
/// and excuses only a word that merely contains it.
#[test]
fn the_secret_search_finds_every_form() {
    let tricky = "p a\"s\\s wörd".as_bytes();
    let found = |haystack: &[u8], password: &[u8]| leaked(haystack, password);
    assert_eq!(
        found(b"pass=secret\n", b"secret").as_deref(),
        Some("raw bytes")
    );
    assert_eq!(
        found(b"LOGIN alice secret", b"secret").as_deref(),
        Some("raw bytes")
    );
    assert_eq!(
        found(b"extended_master_secret_request: ()", b"secret"),
        None
    );
    assert_eq!(found(b"secrets", b"secret"), None);
    assert_eq!(found(b"no password here", tricky), None);
    assert_eq!(found(tricky, tricky).as_deref(), Some("raw bytes"));
    assert_eq!(
        found(br#"detail="p a\"s\\s w\u{f6}rd""#, tricky).as_deref(),
        Some("escape_default")
    );
    assert_eq!(
        found(br#"password: "p a\"s\\s w"#, b"p a\"s\\s w").as_deref(),
        Some("Debug-escaped")
    );
    assert_eq!(
        found(b"[115, 101, 99, 114, 101, 116]", b"secret").as_deref(),
        Some("a list of bytes")
    );
    assert_eq!(found(b"736563726574", b"secret").as_deref(), Some("hex"));
    assert_eq!(found(b"c2VjcmV0", b"secret").as_deref(), Some("base64"));
    assert_eq!(
        found(b"a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==", b"secret").as_deref(),
        Some("SASL PLAIN for alice")
    );
}

/// Upstreams reached with STARTTLS (IMAP) and STLS (POP3) on the lab Dovecot's plaintext ports
/// whose certificate does not verify: the lab CA not trusted, and a name the certificate does
/// not carry. Each: `* BYE`/`-ERR` saying the certificate does not verify, recorded as
/// upstream_certificate_rejected with the reason, and no login in Dovecot's log: the password
/// never left the gateway.
#[test]
fn a_starttls_upstream_certificate_that_does_not_verify_is_refused() {
    let scratch = Scratch::new("faults-starttls-cert");
    let dovecot = Dovecot::start(&scratch.path().join("dovecot"), &DovecotOptions::default());
    let imap = dovecot.port("IMAP_PORT");
    let pop3 = dovecot.port("POP3_PORT");
    let mut upstreams = vec![
        UpstreamSpec::new("no-ca-imap", &format!("localhost:{imap}"), "imap"),
        UpstreamSpec::new("no-ca-pop3", &format!("localhost:{pop3}"), "pop3"),
        UpstreamSpec::new("wrong-name-imap", &format!("127.0.0.1:{imap}"), "imap"),
        UpstreamSpec::new("wrong-name-pop3", &format!("127.0.0.1:{pop3}"), "pop3"),
    ];
    for upstream in &mut upstreams {
        upstream.tls = "starttls";
        if upstream.name.starts_with("wrong-name") {
            // Trusted CA, wrong name: only the name check can fail.
            upstream.ca_file = Some(dovecot.ca_file());
            upstream.server_name = Some("mail.example.test".into());
        }
    }
    let mut listeners = standard_listeners();
    for (name, protocol, tls, upstream) in [
        ("to-no-ca-imap", "imap", "implicit", "no-ca-imap"),
        ("to-no-ca-pop3", "pop3", "none", "no-ca-pop3"),
        ("to-wrong-name-imap", "imap", "none", "wrong-name-imap"),
        ("to-wrong-name-pop3", "pop3", "implicit", "wrong-name-pop3"),
    ] {
        listeners.push(listener(name, protocol, tls, upstream));
    }
    let mut lab = Lab::start_with(scratch, dovecot, "", upstreams, listeners);

    let mut cases = Vec::new();
    for (listener, upstream, why) in [
        ("to-no-ca-imap", "no-ca-imap", "UnknownIssuer"),
        ("to-wrong-name-imap", "wrong-name-imap", "NotValidForName"),
    ] {
        let mut c = lab.connect(listener);
        c.expect_greeting_imap();
        c.send(b"a1 LOGIN alice secret\r\n");
        assert_eq!(
            c.rest_until_closed(REPLY_TIMEOUT),
            format!(
                "* BYE Upstream server {upstream} presented a certificate that does not verify\r\n"
            ),
            "{listener}"
        );
        cases.push((c.port, upstream, why));
    }
    for (listener, upstream, why) in [
        ("to-no-ca-pop3", "no-ca-pop3", "UnknownIssuer"),
        ("to-wrong-name-pop3", "wrong-name-pop3", "NotValidForName"),
    ] {
        let mut c = lab.connect(listener);
        c.expect_line_starting("+OK ");
        c.send(b"USER alice\r\nPASS secret\r\n");
        assert_eq!(c.line(), "+OK send PASS\r\n");
        assert_eq!(
            c.rest_until_closed(REPLY_TIMEOUT),
            format!(
                "-ERR Upstream server {upstream} presented a certificate that does not verify\r\n"
            ),
            "{listener}"
        );
        cases.push((c.port, upstream, why));
    }

    // Dovecot saw each STARTTLS handshake fail (so the gateway did ask for TLS there) ...
    let failed_handshakes = |log: &str| {
        log.lines()
            .filter(|l| l.contains("TLS handshaking"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while failed_handshakes(&lab.dovecot().log()) < cases.len() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    let log = lab.dovecot().log();
    assert_eq!(failed_handshakes(&log), cases.len(), "{log}");
    // ... and, those lines written, nobody logged in.
    assert!(!log.contains("Login: "), "{log}");

    lab.imap_login_works("imap-plain");
    lab.pop3_login_works("pop3-plain");
    let (records, log) = lab.finish();
    assert_certificate_rejected(&records, &log, cases);
}

/// Sessions in the splice when the gateway is stopped (SIGTERM): an IMAP client over TLS 1.0
/// and a POP3 client over plaintext each log in, fetch a message and stay connected. Each is
/// recorded as ok, the detail naming the shutdown, with exactly the bytes that crossed its
/// client leg. A regression test: a session ended by shutdown used to be recorded with 0 bytes
/// both ways, as if nothing had been carried.
#[test]
fn a_session_in_the_splice_at_shutdown_is_recorded_with_its_bytes() {
    let mut lab = Lab::start("shutdown-splice", "", Vec::new(), standard_listeners());
    let stored = lab.dovecot().stored_messages("alice");
    let first = stored.first().expect("the lab mailbox has messages").len();

    let mut imap = lab.connect("imap-tls");
    imap.expect_greeting_imap();
    imap.send(b"a1 LOGIN alice secret\r\n");
    assert!(imap.tagged("a1").starts_with("a1 OK "));
    imap.send(b"a2 EXAMINE INBOX\r\n");
    assert!(imap.tagged("a2").contains("a2 OK "));
    imap.send(b"a3 FETCH 1 BODY.PEEK[]\r\n");
    let fetched = imap.tagged("a3");
    assert!(
        fetched.starts_with(&format!("* 1 FETCH (BODY[] {{{first}}}\r\n"))
            && fetched.contains("a3 OK "),
        "{fetched:?}"
    );

    let mut pop3 = lab.connect("pop3-plain");
    pop3.expect_line_starting("+OK ");
    pop3.send(b"USER alice\r\nPASS secret\r\n");
    assert_eq!(pop3.line(), "+OK send PASS\r\n");
    assert_eq!(pop3.line(), "+OK Logged in.\r\n");
    pop3.send(b"RETR 1\r\n");
    pop3.expect_line_starting("+OK ");
    let mut retrieved = 0;
    while pop3.line() != ".\r\n" {
        retrieved += 1;
    }
    assert!(retrieved > 0, "RETR 1 carried no lines");

    // Both sessions are now idle in the splice, the clients still connected.
    let (records, log) = lab.finish();
    // The gateway closed them on its way out; whatever it sent last counts in the totals.
    imap.raw_until_closed(REPLY_TIMEOUT);
    pop3.raw_until_closed(REPLY_TIMEOUT);

    for (client, listener, mail) in [(&imap, "imap-tls", first), (&pop3, "pop3-plain", first)] {
        let r = record_of(&records, client.port);
        let context = format!("{listener}: {r:#?}\n{log}");
        assert_eq!(r.listener, listener, "{context}");
        assert_eq!(r.outcome, Outcome::Ok, "{context}");
        assert_eq!(r.login.as_deref(), Some("alice"), "{context}");
        assert!(
            r.detail.as_deref().is_some_and(|d| d.contains("shut down")),
            "the detail does not name the shutdown: {context}"
        );
        // Nothing is lost: the counts are the client's own, byte for byte (application
        // bytes, inside TLS on the TLS listener), and they include the message fetched.
        assert!(r.bytes_to_client > mail as u64, "{context}");
        assert_eq!(r.bytes_from_client, client.bytes_sent(), "{context}");
        assert_eq!(r.bytes_to_client, client.bytes_received(), "{context}");
    }
}

// ---------------------------------------------------------------------------------------------
// Shared checks
// ---------------------------------------------------------------------------------------------

/// Each `(client port, upstream, why)` session was refused for the upstream's certificate:
/// recorded as such with the reason, for alice, with no upstream TLS, and logged with the
/// upstream's name and the reason.
fn assert_certificate_rejected(
    records: &[SessionRecord],
    log: &str,
    cases: Vec<(u16, &str, &str)>,
) {
    for (port, upstream, why) in cases {
        let r = record_of(records, port);
        assert_eq!(r.outcome, Outcome::UpstreamCertificateRejected, "{r:?}");
        assert_eq!(r.upstream, upstream);
        assert_eq!(r.login.as_deref(), Some("alice"), "{r:?}");
        assert_eq!(r.upstream_tls_version, None, "{r:?}");
        assert!(r.detail.as_deref().unwrap_or("").contains(why), "{r:?}");
        let line = log_line(
            log,
            &[&format!("upstream={upstream} "), "upstream login failed"],
        );
        assert!(
            line.contains("certificate") && line.contains(why),
            "the log does not say why: {line}"
        );
    }
}
