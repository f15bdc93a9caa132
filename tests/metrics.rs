//! Prometheus metrics (issue 10, item 6): the real gateway with `[metrics]` in front of the lab
//! Dovecot, real TLS 1.0 clients (a login, a handshake a TLS 1.2 floor refuses, a wrong
//! password), `/metrics` scraped with curl and checked value by value against what the clients
//! did and what the store recorded, the whole output passed through Prometheus's own
//! `promtool check metrics`, and the Grafana dashboard in `examples/grafana/` checked against
//! the names the gateway really serves and by `promtool check rules`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use e2e::clients::REPLY_TIMEOUT;
use e2e::legacy_client::{connect_tcp, legacy_connector, Client};
use e2e::scrape::{scrape, scrape_until, series, value};
use e2e::{
    free_port, repo_root, run, start_gateway, Dovecot, DovecotOptions, ListenerSpec, Scratch,
};
use store::Outcome;

/// The metric families the output declares (`# TYPE name kind`).
fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn dashboard_path() -> PathBuf {
    repo_root().join("examples/grafana/mailtls-legacy-tls.json")
}

/// Every PromQL expression of the dashboard's panels.
fn dashboard_exprs() -> Vec<String> {
    let text = std::fs::read_to_string(dashboard_path()).expect("read the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let exprs: Vec<String> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().expect("targets").iter())
        .map(|t| t["expr"].as_str().expect("expr").to_string())
        .collect();
    assert!(exprs.len() >= 5, "{exprs:?}");
    exprs
}

/// The `mailtls_...` metric names an expression uses, with the `_bucket`, `_sum` and `_count`
/// series of a histogram named by their family.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("mailtls_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.push(family.to_string());
        rest = &tail[end..];
    }
    names
}

/// Runs `promtool` with `args`, `input` on its stdin; panics unless it passes with nothing to
/// say (it lists lint problems, such as a missing help text, and exits non-zero).
fn promtool(args: &[&str], input: &str) {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; lab/install.sh installs it)");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), input.as_bytes())
        .expect("feed promtool");
    let output = child.wait_with_output().expect("promtool ran");
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "promtool {args:?} failed ({}):\n{said}\ninput:\n{input}",
        output.status
    );
    if args.contains(&"metrics") {
        assert!(said.trim().is_empty(), "promtool lint: {said}");
    }
}

#[test]
fn metrics_count_real_sessions_and_pass_promtool() {
    let scratch = Scratch::new("metrics");
    // Dovecot's own 2 s delay on a failed login, so the latency histogram must show it.
    let dovecot = Dovecot::start(
        &scratch.path().join("dovecot"),
        &DovecotOptions {
            extra_args: vec!["--auth-delay".into(), "yes".into()],
            ..DovecotOptions::default()
        },
    );
    let metrics_port = free_port();
    let mut gateway = start_gateway(
        &scratch,
        &dovecot,
        vec![
            ListenerSpec::new("imaps-legacy", "imap", "implicit", Some("1.0")),
            ListenerSpec::new("imaps-modern", "imap", "implicit", None),
        ],
        &format!("\n[metrics]\nbind = \"127.0.0.1:{metrics_port}\""),
    );
    let ca = dovecot.ca_file();
    let legacy = gateway.port("imaps-legacy");
    let modern = gateway.port("imaps-modern");
    let listener = |name| [("listener", name)];

    // Before any client: every per-listener series is there, at 0.
    let text = scrape(metrics_port);
    for name in ["imaps-legacy", "imaps-modern"] {
        for metric in [
            "mailtls_active_sessions",
            "mailtls_preauth_refused_by_client_limit_total",
            "mailtls_logins_throttled_total",
        ] {
            assert_eq!(
                value(&text, metric, &listener(name)),
                Some(0.0),
                "{metric}\n{text}"
            );
        }
    }
    assert_eq!(
        value(&text, "mailtls_store_write_failures_total", &[]),
        Some(0.0),
        "{text}"
    );

    // 1. A TLS 1.0 device logs in; while it is logged in, it is an active session.
    let mut ok = Client::tls(legacy, &ca);
    ok.expect_greeting_imap();
    ok.send(b"a1 LOGIN alice secret\r\n");
    assert!(ok.tagged("a1").contains("a1 OK "));
    scrape_until(metrics_port, "one active session", |t| {
        value(t, "mailtls_active_sessions", &listener("imaps-legacy")) == Some(1.0)
    });
    ok.send(b"a2 SELECT INBOX\r\na3 FETCH 1 BODY.PEEK[]\r\n");
    assert!(ok.tagged("a3").contains("a3 OK "));
    ok.send(b"a4 LOGOUT\r\n");
    ok.raw_until_closed(REPLY_TIMEOUT);
    // The session ends once the client has closed its side too.
    let ok_bytes = (ok.bytes_sent(), ok.bytes_received());
    drop(ok);

    // 2. A TLS 1.0 device on the listener with the default TLS 1.2 floor: refused.
    let refused = legacy_connector(&ca).connect("localhost", connect_tcp(modern));
    assert!(
        refused.is_err(),
        "a TLS 1.0 handshake passed a TLS 1.2 floor"
    );

    // 3. A wrong password, last: Dovecot then slows every login from the gateway's address.
    let mut wrong = Client::tls(legacy, &ca);
    wrong.expect_greeting_imap();
    wrong.send(b"b1 LOGIN alice not-the-password\r\n");
    assert!(wrong.tagged("b1").contains("b1 NO "));
    wrong.send(b"b2 LOGOUT\r\n");
    wrong.raw_until_closed(REPLY_TIMEOUT);
    let wrong_bytes = (wrong.bytes_sent(), wrong.bytes_received());
    drop(wrong);

    let sessions = |name, version, outcome: Outcome| {
        [
            ("listener", name),
            ("protocol", "imap"),
            ("tls_version", version),
            ("outcome", outcome.as_str()),
        ]
    };
    let text = scrape_until(metrics_port, "three sessions counted", |t| {
        value(
            t,
            "mailtls_sessions_total",
            &sessions("imaps-legacy", "TLSv1.0", Outcome::AuthFailed),
        )
        .is_some()
            && value(t, "mailtls_active_sessions", &listener("imaps-legacy")) == Some(0.0)
    });
    let count = |name: &str, labels: &[(&str, &str)]| value(&text, name, labels).unwrap_or(0.0);
    // Each session counted once, under its own labels, and nothing else.
    for (name, version, outcome) in [
        ("imaps-legacy", "TLSv1.0", Outcome::Ok),
        ("imaps-legacy", "TLSv1.0", Outcome::AuthFailed),
        ("imaps-modern", "none", Outcome::ClientTlsFailed),
    ] {
        let labels = sessions(name, version, outcome);
        assert_eq!(
            count("mailtls_sessions_total", &labels),
            1.0,
            "{labels:?}\n{text}"
        );
    }
    assert_eq!(series(&text, "mailtls_sessions_total"), 3, "{text}");
    let refused = [("listener", "imaps-modern"), ("offered_max_tls", "TLSv1.0")];
    assert_eq!(
        count("mailtls_client_handshakes_refused_total", &refused),
        1.0,
        "{text}"
    );
    assert_eq!(
        series(&text, "mailtls_client_handshakes_refused_total"),
        1,
        "{text}"
    );
    assert_eq!(
        count("mailtls_active_sessions", &listener("imaps-modern")),
        0.0
    );

    // Upstream login latency: one quick login, one that waited out Dovecot's 2 s delay.
    let login = |outcome: Outcome, series| {
        count(
            &format!("mailtls_upstream_login_seconds_{series}"),
            &[("upstream", "dovecot-imap"), ("outcome", outcome.as_str())],
        )
    };
    assert_eq!(login(Outcome::Ok, "count"), 1.0, "{text}");
    assert_eq!(login(Outcome::AuthFailed, "count"), 1.0, "{text}");
    assert!(login(Outcome::AuthFailed, "sum") >= 1.5, "{text}");
    assert!(login(Outcome::Ok, "sum") < 1.5, "{text}");
    let failed_under_a_second = count(
        "mailtls_upstream_login_seconds_bucket",
        &[
            ("upstream", "dovecot-imap"),
            ("outcome", "auth_failed"),
            ("le", "1"),
        ],
    );
    assert_eq!(failed_under_a_second, 0.0, "{text}");

    // Bytes each way: what the two clients that got through TLS sent and received.
    let from_clients = count(
        "mailtls_client_received_bytes_total",
        &listener("imaps-legacy"),
    );
    let to_clients = count("mailtls_client_sent_bytes_total", &listener("imaps-legacy"));
    assert_eq!(from_clients, (ok_bytes.0 + wrong_bytes.0) as f64, "{text}");
    assert_eq!(to_clients, (ok_bytes.1 + wrong_bytes.1) as f64, "{text}");
    assert_eq!(count("mailtls_store_queued_records", &[]), 0.0, "{text}");
    assert_eq!(
        count("mailtls_store_write_failures_total", &[]),
        0.0,
        "{text}"
    );

    // No client-controlled string became a label: not the user name, not the SNI.
    for client_controlled in ["alice", "localhost"] {
        assert!(
            !text.contains(client_controlled),
            "{client_controlled} in\n{text}"
        );
    }
    assert_eq!(
        run(Command::new("curl")
            .args([
                "--silent",
                "--output",
                "/dev/null",
                "--write-out",
                "%{http_code}"
            ])
            .arg(format!("http://127.0.0.1:{metrics_port}/sessions")))
        .stdout,
        b"404"
    );

    promtool(&["check", "metrics"], &text);

    // Every metric the dashboard queries is one the gateway serves.
    let served = families(&text);
    for expr in dashboard_exprs() {
        let names = metric_names(&expr);
        assert!(!names.is_empty(), "{expr} queries no mailtls metric");
        for name in names {
            assert!(
                served.contains(&name),
                "the dashboard queries {name}, not served: {served:?}"
            );
        }
    }

    // The store agrees with the metrics.
    let records = gateway.stop_and_read_sessions();
    assert_eq!(records.len(), 3, "{records:#?}");
    let legacy_records = records.iter().filter(|r| r.listener == "imaps-legacy");
    let (up, down) = legacy_records.fold((0, 0), |(up, down), r| {
        (up + r.bytes_from_client, down + r.bytes_to_client)
    });
    assert_eq!((up as f64, down as f64), (from_clients, to_clients));
}

/// The dashboard's queries are valid PromQL: each becomes a recording rule that
/// `promtool check rules` parses.
#[test]
fn dashboard_queries_are_valid_promql() {
    let mut rules = String::from("groups:\n  - name: mailtls-dashboard\n    rules:\n");
    for (i, expr) in dashboard_exprs().iter().enumerate() {
        let quoted = serde_json::to_string(expr).expect("a JSON string is a YAML string");
        rules += &format!("      - record: mailtls:dashboard_query_{i}\n        expr: {quoted}\n");
    }
    let scratch = Scratch::new("dashboard-rules");
    let path = scratch.path().join("rules.yml");
    std::fs::write(&path, &rules).expect("write rules");
    promtool(&["check", "rules", path.to_str().expect("UTF-8 path")], "");
}
