//! TLS floor policies in the running gateway, with real TLS 1.0 clients and the lab Dovecot:
//! a `warn` policy lets a legacy client in and tells it why (an IMAP `[ALERT]`, the POP3
//! `+OK` text); an `enforce` policy whose window has ended refuses it in its own protocol
//! (`NO [ALERT]`, `-ERR [SYS/PERM]`) before anything goes upstream; an exception lets exactly
//! the client it names through; a TLS 1.2 client meets the floor. Every decision is in the
//! session's record with its rule and exception.

use std::net::Ipv4Addr;

use e2e::legacy_client::Client;
use e2e::{start_gateway, utc_date, Dovecot, DovecotOptions, ListenerSpec, Scratch};
use store::{Outcome, SessionRecord};

const WARNING: &str = "TLS 1.0 ends here on 2027-01-31: update the client";
const REFUSAL: &str = "TLS 1.0 and 1.1 are no longer accepted. Ask IT for an exception.";
/// The address the exception names; every other test client comes from 127.0.0.1.
const EXCEPTED: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 5);

fn policies() -> String {
    format!(
        r#"
[policy.warned]
mode = "warn"
start = "2026-01-01"
end = "2027-01-31"
message = "{WARNING}"
{}
{}"#,
        ended_policy(),
        printer_exception("2099-01-01")
    )
}

/// `[policy.ended]`: enforce, its window over, so every legacy client without an exception is
/// refused.
fn ended_policy() -> String {
    format!(
        "\n[policy.ended]\nmode = \"enforce\"\nstart = \"2025-01-01\"\nend = \"2025-06-30\"\nmessage = \"{REFUSAL}\"\n"
    )
}

/// An `[[exception]]` for the [`EXCEPTED`] address, expiring at `expires`.
fn printer_exception(expires: &str) -> String {
    format!(
        "\n[[exception]]\nclient = \"{EXCEPTED}/32\"\nowner = \"facilities@lab.example\"\nreason = \"the lab's old printer\"\nexpires = \"{expires}\"\nplan = \"replace it\"\n"
    )
}

/// alice's POP3 login over TLS 1.0 on `port`, whose PASS reply must start with `reply`.
fn pop3_login(port: u16, ca: &std::path::Path, reply: &str) {
    let mut pop3 = Client::tls(port, ca);
    pop3.expect_line_starting("+OK");
    pop3.send(b"USER alice\r\n");
    pop3.expect_line_starting("+OK");
    pop3.send(b"PASS secret\r\n");
    pop3.expect_line_starting(reply);
    pop3.send(b"QUIT\r\n");
}

#[test]
fn warned_refused_and_excepted_clients_each_hear_why_and_are_recorded() {
    let scratch = Scratch::new("policy-enforcement");
    let dovecot = Dovecot::start(&scratch.path().join("dovecot"), &DovecotOptions::default());
    let listeners = vec![
        ListenerSpec::new("imaps-warned", "imap", "implicit", Some("1.0")).with_policy("warned"),
        ListenerSpec::new("imaps-ended", "imap", "implicit", Some("1.0")).with_policy("ended"),
        ListenerSpec::new("pop3s-warned", "pop3", "implicit", Some("1.0")).with_policy("warned"),
        ListenerSpec::new("pop3s-ended", "pop3", "implicit", Some("1.0")).with_policy("ended"),
    ];
    let mut gateway = start_gateway(&scratch, &dovecot, listeners, &policies());
    let ca = dovecot.ca_file();
    let alice_logins = || dovecot.log().matches("Login: user=<alice>").count();

    // warn: an IMAP client sees the ALERT, then its login succeeds.
    let mut imap = Client::tls(gateway.port("imaps-warned"), &ca);
    imap.expect_greeting_imap();
    imap.send(b"a LOGIN alice secret\r\n");
    let reply = imap.tagged("a");
    assert!(
        reply.starts_with(&format!("* OK [ALERT] {WARNING}\r\na OK ")),
        "{reply:?}"
    );
    // Its mail is still served.
    imap.select_lab_inbox("s");
    imap.send(b"b LOGOUT\r\n");
    imap.tagged("b");

    // warn: a POP3 client reads it in the +OK of PASS.
    pop3_login(
        gateway.port("pop3s-warned"),
        &ca,
        &format!("+OK {WARNING} ("),
    );
    let logins_before_refusals = {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while alice_logins() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        alice_logins()
    };
    assert_eq!(logins_before_refusals, 2, "{}", dovecot.log());

    // enforce, window ended: refused in each protocol's words, nothing sent upstream.
    let mut imap = Client::tls(gateway.port("imaps-ended"), &ca);
    imap.expect_greeting_imap();
    imap.send(b"a LOGIN alice secret\r\n");
    assert_eq!(imap.tagged("a"), format!("a NO [ALERT] {REFUSAL}\r\n"));
    imap.send(b"b LOGOUT\r\n");
    imap.tagged("b");
    pop3_login(
        gateway.port("pop3s-ended"),
        &ca,
        &format!("-ERR [SYS/PERM] {REFUSAL}"),
    );

    // The exception's address gets through the ended window.
    let mut excepted = Client::tls_from(EXCEPTED, gateway.port("imaps-ended"), &ca);
    excepted.expect_greeting_imap();
    excepted.send(b"a LOGIN alice secret\r\n");
    let reply = excepted.tagged("a");
    assert!(reply.starts_with("a OK "), "{reply:?}");
    excepted.send(b"b LOGOUT\r\n");
    excepted.tagged("b");

    let records = gateway.stop_and_read_sessions();
    // The refused logins never reached Dovecot: only the two warned and the excepted one did.
    assert_eq!(alice_logins(), 3, "{}", dovecot.log());
    let on = |listener: &str| -> Vec<&SessionRecord> {
        records.iter().filter(|r| r.listener == listener).collect()
    };
    for listener in ["imaps-warned", "pop3s-warned"] {
        let [record] = on(listener)[..] else {
            panic!("{listener}: {records:#?}")
        };
        assert_eq!(record.outcome, Outcome::Ok);
        let policy = record.policy.as_ref().expect("a decision");
        assert_eq!(
            (
                policy.verdict.as_str(),
                policy.rule.as_str(),
                policy.exception
            ),
            ("warn", "warned/window", None)
        );
    }
    let refused: Vec<_> = records
        .iter()
        .filter(|r| r.outcome == Outcome::RefusedByPolicy)
        .collect();
    assert_eq!(refused.len(), 2, "{records:#?}");
    for record in refused {
        let policy = record.policy.as_ref().expect("a decision");
        assert_eq!(
            (policy.verdict.as_str(), policy.rule.as_str()),
            ("refuse", "ended/ended")
        );
        assert!(
            record
                .detail
                .as_deref()
                .unwrap_or("")
                .contains("ended/ended"),
            "{record:#?}"
        );
    }
    let excepted: Vec<_> = records
        .iter()
        .filter(|r| r.client_addr == std::net::IpAddr::V4(EXCEPTED))
        .collect();
    let [record] = excepted[..] else {
        panic!("{records:#?}")
    };
    assert_eq!(record.outcome, Outcome::Ok);
    let policy = record.policy.as_ref().expect("a decision");
    assert_eq!(
        (
            policy.verdict.as_str(),
            policy.rule.as_str(),
            policy.exception
        ),
        ("allow", "exception:1", Some(1))
    );
}

/// An IMAP LOGIN as alice over TLS 1.0 from `source` on `port`; returns the tagged reply
/// (with any untagged lines before it) and logs out.
fn imap_login_from(source: Ipv4Addr, port: u16, ca: &std::path::Path) -> String {
    let mut imap = Client::tls_from(source, port, ca);
    imap.expect_greeting_imap();
    imap.send(b"a LOGIN alice secret\r\n");
    let reply = imap.tagged("a");
    imap.send(b"b LOGOUT\r\n");
    imap.tagged("b");
    reply
}

/// The decision recorded for each session from `source`, in the order they started.
fn decisions_from(
    records: &[SessionRecord],
    source: Ipv4Addr,
) -> Vec<(String, String, Option<u32>)> {
    let mut mine: Vec<&SessionRecord> = records
        .iter()
        .filter(|r| r.client_addr == std::net::IpAddr::V4(source))
        .collect();
    mine.sort_by_key(|r| r.started_at);
    mine.iter()
        .map(|r| {
            let p = r.policy.as_ref().expect("a decision");
            (p.verdict.clone(), p.rule.clone(), p.exception)
        })
        .collect()
}

#[test]
fn an_exception_stops_matching_at_its_expiry_instant_without_a_restart() {
    let scratch = Scratch::new("policy-expiry");
    let dovecot = Dovecot::start(&scratch.path().join("dovecot"), &DovecotOptions::default());
    let listeners = vec![
        ListenerSpec::new("imaps-ended", "imap", "implicit", Some("1.0")).with_policy("ended"),
    ];
    let mut gateway = start_gateway(
        &scratch,
        &dovecot,
        listeners.clone(),
        &(ended_policy() + &printer_exception("2099-01-01")),
    );
    let ca = dovecot.ca_file();
    let port = gateway.port("imaps-ended");
    // The exception is moved to expire shortly, timed from now rather than from before the
    // gateway's start, which takes long on a loaded machine. Nothing is done at the expiry.
    let expires = utc_date("+15 seconds", "%Y-%m-%dT%H:%M:%SZ");
    gateway.rewrite_config(
        &dovecot,
        &listeners,
        &(ended_policy() + &printer_exception(&expires)),
    );
    gateway.hang_up();
    gateway.wait_for_log("config reloaded", 1);

    let before = imap_login_from(EXCEPTED, port, &ca);
    assert!(before.starts_with("a OK "), "before {expires}: {before:?}");
    // Wait for the expiry instant (the gateway's clock is this machine's).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while utc_date("now", "%Y-%m-%dT%H:%M:%SZ") <= expires {
        assert!(
            std::time::Instant::now() < deadline,
            "the clock did not pass {expires}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let after = imap_login_from(EXCEPTED, port, &ca);
    assert_eq!(
        after,
        format!("a NO [ALERT] {REFUSAL}\r\n"),
        "after {expires}"
    );

    let records = gateway.stop_and_read_sessions();
    assert_eq!(
        decisions_from(&records, EXCEPTED),
        [
            ("allow".into(), "exception:1".into(), Some(1)),
            ("refuse".into(), "ended/ended".into(), None)
        ]
    );
    assert!(
        gateway.log().contains("exception register: exception 1"),
        "{}",
        gateway.log()
    );
}

#[test]
fn an_exception_added_with_the_command_lets_exactly_its_client_through() {
    let scratch = Scratch::new("policy-added");
    let dovecot = Dovecot::start(&scratch.path().join("dovecot"), &DovecotOptions::default());
    let config = ended_policy();
    let listeners = vec![
        ListenerSpec::new("imaps-ended", "imap", "implicit", Some("1.0")).with_policy("ended"),
    ];
    // The first gateway writes the config; the exception is added while none runs.
    let mut gateway = start_gateway(&scratch, &dovecot, listeners.clone(), &config);
    gateway.stop();
    let dir = scratch.path().join("gateway");
    let config_path = dir.join("mailtls.toml");
    let added = e2e::run_ok(
        std::process::Command::new(e2e::mailtls_bin())
            .args(["exceptions", "add", "--config"])
            .arg(&config_path)
            .args([
                "--client",
                &EXCEPTED.to_string(),
                "--owner",
                "facilities@lab.example",
                "--reason",
                "the lab's old printer",
                "--expires",
                "2099-01-01",
                "--plan",
                "replace it",
            ]),
    );
    assert!(String::from_utf8_lossy(&added.stdout).starts_with("added exception 1 in "));
    let edited = std::fs::read_to_string(&config_path).unwrap();
    let mut gateway = e2e::Gateway::start_with_config(&dir, &edited, listeners);
    let ca = dovecot.ca_file();
    let port = gateway.port("imaps-ended");

    let excepted = imap_login_from(EXCEPTED, port, &ca);
    assert!(excepted.starts_with("a OK "), "{excepted:?}");
    let neighbour = Ipv4Addr::new(127, 0, 0, 6);
    for source in [Ipv4Addr::LOCALHOST, neighbour] {
        let refused = imap_login_from(source, port, &ca);
        assert_eq!(refused, format!("a NO [ALERT] {REFUSAL}\r\n"), "{source}");
    }

    let records = gateway.stop_and_read_sessions();
    assert_eq!(
        decisions_from(&records, EXCEPTED),
        [("allow".into(), "exception:1".into(), Some(1))]
    );
    for source in [Ipv4Addr::LOCALHOST, neighbour] {
        assert_eq!(
            decisions_from(&records, source),
            [("refuse".into(), "ended/ended".into(), None)],
            "{source}"
        );
    }
}

/// A gateway session `days` ago that exception `exception` let through.
fn old_session(days: u64, exception: u32) -> SessionRecord {
    let start = std::time::SystemTime::now() - std::time::Duration::from_secs(days * 86_400);
    SessionRecord {
        source: store::Source::Gateway,
        started_at: start,
        ended_at: start + std::time::Duration::from_secs(5),
        listener: "imaps-warned".into(),
        protocol: "imap".into(),
        client_addr: "192.0.2.44".parse().unwrap(),
        client_port: 40_000,
        tls_version: Some(wire::TlsVersion::Tls10),
        tls_cipher: None,
        offered_max_tls: Some(wire::TlsVersion::Tls10),
        sni: None,
        ja4: None,
        offered: store::OfferedHello::default(),
        client_id: Vec::new(),
        login: Some("retired@lab.example".into()),
        upstream: "dovecot-imap".into(),
        upstream_tls_version: Some(wire::TlsVersion::Tls13),
        outcome: Outcome::Ok,
        detail: None,
        bytes_from_client: 0,
        bytes_to_client: 0,
        envelope_sender: None,
        messages_submitted: None,
        policy: Some(store::PolicyDecision {
            verdict: "allow".into(),
            rule: format!("exception:{exception}"),
            exception: Some(exception),
        }),
    }
}

#[test]
fn register_warnings_are_logged_exported_and_listed() {
    use store::SessionStore;

    let scratch = Scratch::new("policy-warnings");
    let dovecot = Dovecot::start(&scratch.path().join("dovecot"), &DovecotOptions::default());
    // The store has watched for 40 days; exception 2 last let a client through then.
    let dir = scratch.path().join("gateway");
    std::fs::create_dir_all(&dir).unwrap();
    store::SqliteStore::open(&dir.join("sessions.db"))
        .unwrap()
        .insert_batch(&[old_session(40, 2)])
        .unwrap();
    let soon = utc_date("+10 days", "%Y-%m-%d");
    let today = utc_date("now", "%Y-%m-%d");
    let metrics_port = e2e::free_port();
    let config = format!(
        r#"
[metrics]
bind = "127.0.0.1:{metrics_port}"

[policy.warned]
mode = "warn"
start = "2026-01-01"
end = "2099-01-31"
message = "{WARNING}"

{}# Added today: too new to be called unused.
added = "{today}"

[[exception]]
user = "retired@lab.example"
owner = "it@lab.example"
reason = "a scanner since retired"
expires = "2099-01-01"
plan = "remove it"
"#,
        printer_exception(&soon)
    );
    let listeners = vec![
        ListenerSpec::new("imaps-warned", "imap", "implicit", Some("1.0")).with_policy("warned"),
    ];
    let mut gateway = start_gateway(&scratch, &dovecot, listeners, &config);

    // Judged at start: logged, and the gauge says one of each kind the register alone shows.
    let text = e2e::scrape::scrape_until(metrics_port, "register warnings", |t| {
        e2e::scrape::value(
            t,
            "mailtls_exception_register_warnings",
            &[("kind", "expiring")],
        ) == Some(1.0)
    });
    let gauge = |kind| {
        e2e::scrape::value(
            &text,
            "mailtls_exception_register_warnings",
            &[("kind", kind)],
        )
    };
    assert_eq!(
        (gauge("expiring"), gauge("unused"), gauge("unexcepted")),
        (Some(1.0), Some(1.0), Some(0.0)),
        "{text}"
    );
    let log = gateway.log();
    assert!(
        log.contains(&format!(
            "exception register: exception 1 (client={EXCEPTED}/32) expires at {soon}"
        )),
        "{log}"
    );
    assert!(
        log.contains("exception register: exception 2 (user=retired@lab.example) matched no client for 30 days (last on"),
        "{log}"
    );

    // A legacy client no exception covers, warned with an ALERT, its login still served.
    let reply = imap_login_from(
        Ipv4Addr::LOCALHOST,
        gateway.port("imaps-warned"),
        &dovecot.ca_file(),
    );
    assert!(
        reply.starts_with(&format!("* OK [ALERT] {WARNING}\r\na OK ")),
        "{reply:?}"
    );
    gateway.stop_and_read_sessions();

    // The command lists all three kinds, and exits 1.
    let output = e2e::run(
        std::process::Command::new(e2e::mailtls_bin())
            .args(["exceptions", "warnings", "--config"])
            .arg(dir.join("mailtls.toml")),
    );
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{out}");
    let kinds: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(kind, _)| kind))
        .collect();
    assert_eq!(kinds, ["expiring", "unused", "unexcepted"], "{out}");
    assert!(
        out.contains("unexcepted: legacy client 127.0.0.1 (login \"alice\") negotiated TLSv1.0 below the floor TLSv1.2 and no exception covers it (1 session(s)"),
        "{out}"
    );
    assert!(
        out.ends_with(" 3 warning(s) at ".trim_start()) || out.contains("3 warning(s) at "),
        "{out}"
    );

    // The same sessions in a PostgreSQL store, named by URL: the same three warnings.
    let postgres = e2e::Postgres::start(&scratch.path().join("postgres"));
    let sessions = store::SqliteStore::open(&gateway.db_path())
        .and_then(|s| s.sessions())
        .expect("the gateway's sessions");
    store::Store::open(&postgres.location())
        .and_then(|mut s| store::SessionStore::insert_batch(&mut s, &sessions))
        .expect("the sessions copied into PostgreSQL");
    let output = e2e::run(
        std::process::Command::new(e2e::mailtls_bin())
            .args(["exceptions", "warnings", "--config"])
            .arg(dir.join("mailtls.toml"))
            .args(["--store", postgres.url(), "--store-ca"])
            .arg(postgres.ca_file())
            .env("MAILTLS_STORE_PASSWORD", postgres.password()),
    );
    let from_postgres = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{from_postgres}");
    assert_eq!(from_postgres, out, "the same warnings from either store");
}

/// The legacy opt-in endpoint (issue 15, item 5): a TLS 1.0 listener whose policy would only
/// warn (its window has not started) still lets through only the clients a live exception
/// covers; everyone else is refused with the message, over TLS 1.0 or TLS 1.2.
#[test]
fn the_opt_in_endpoint_admits_only_excepted_clients() {
    let scratch = Scratch::new("policy-opt-in");
    let dovecot = Dovecot::start(&scratch.path().join("dovecot"), &DovecotOptions::default());
    let config = format!(
        "\n[policy.later]\nmode = \"enforce\"\nstart = \"2098-01-01\"\nend = \"2099-01-01\"\nmessage = \"{REFUSAL}\"\n{}",
        printer_exception("2099-01-01")
    );
    let listeners =
        vec![ListenerSpec::new("imaps-opt-in", "imap", "implicit", Some("1.0")).opt_in_to("later")];
    let mut gateway = start_gateway(&scratch, &dovecot, listeners, &config);
    let ca = dovecot.ca_file();
    let port = gateway.port("imaps-opt-in");

    let excepted = imap_login_from(EXCEPTED, port, &ca);
    assert!(excepted.starts_with("a OK "), "{excepted:?}");
    let refused = imap_login_from(Ipv4Addr::LOCALHOST, port, &ca);
    assert_eq!(refused, format!("a NO [ALERT] {REFUSAL}\r\n"));
    // A TLS 1.2 client (openssl s_client) is refused too: the endpoint is for exceptions only.
    let modern = e2e::run(
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "(sleep 1; printf 'a LOGIN alice secret\\r\\n'; sleep 1; printf 'b LOGOUT\\r\\n'; sleep 1) | openssl s_client -quiet -tls1_2 -CAfile {} -connect 127.0.0.1:{port} -servername localhost 2>/dev/null",
                ca.display()
            )),
    );
    let out = String::from_utf8_lossy(&modern.stdout);
    assert!(
        out.contains(&format!("a NO [ALERT] {REFUSAL}\r\n")),
        "{out:?}"
    );

    let records = gateway.stop_and_read_sessions();
    assert_eq!(
        decisions_from(&records, EXCEPTED),
        [("allow".into(), "exception:1".into(), Some(1))]
    );
    let mut local: Vec<(Option<wire::TlsVersion>, String, String)> = records
        .iter()
        .filter(|r| r.client_addr == std::net::IpAddr::V4(Ipv4Addr::LOCALHOST))
        .map(|r| {
            let p = r.policy.as_ref().expect("a decision");
            (r.tls_version, p.verdict.clone(), p.rule.clone())
        })
        .collect();
    local.sort();
    assert_eq!(
        local,
        [
            (
                Some(wire::TlsVersion::Tls10),
                "refuse".into(),
                "later/opt-in".into()
            ),
            (
                Some(wire::TlsVersion::Tls12),
                "refuse".into(),
                "later/opt-in".into()
            ),
        ]
    );
}
