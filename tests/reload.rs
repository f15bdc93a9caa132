//! Config reload of a running gateway (SIGHUP and `mailtls reload`), with real TLS clients and
//! the lab Dovecot: 100 logged-in IMAP sessions (Python's ssl, TLS 1.2) live through a reload
//! that adds an exception and a listener and removes another, each still answering NOOP and
//! LOGOUT; new sessions get the new config (the exception lets a TLS 1.0 client in that the
//! policy refused before, the new listener accepts, the removed one refuses connections); a
//! listener whose settings change applies them to new sessions, on a new socket if it moved. A
//! config with a problem is refused with its key in the log and the old one keeps serving;
//! `mailtls reload` checks the file first and signals only a valid one, and only the gateway
//! that serves it (found by its pid file or `--pid`).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use e2e::legacy_client::{legacy_connector, Client};
use e2e::scrape::{scrape, value};
use e2e::{
    free_port, mailtls_bin, repo_root, start_gateway, Dovecot, DovecotOptions, Gateway,
    ListenerSpec, Scratch, UpstreamTls,
};
use store::Outcome;

const REFUSAL: &str = "TLS 1.0 and 1.1 are no longer accepted. Ask IT for an exception.";

/// An enforce policy whose window has ended: TLS 1.0 refused, TLS 1.2 meets the floor.
fn ended_policy() -> String {
    format!(
        r#"
[policy.ended]
mode = "enforce"
start = "2025-01-01"
end = "2025-06-30"
message = "{REFUSAL}"
"#
    )
}

/// An exception for every client on 127.0.0.1, where the tests' clients come from.
const LOOPBACK_EXCEPTION: &str = r#"
[[exception]]
client = "127.0.0.1/32"
owner = "facilities@lab.example"
reason = "the lab's old devices"
expires = "2099-01-01"
plan = "replace them"
"#;

/// `[gateway]` lines that let 100 sessions from one address log in at once.
const ROOM_FOR_100: &str = "pre_auth_timeout_secs = 20\nmax_unauthenticated_per_client = 200\n";

fn many_sessions_dovecot(scratch: &Scratch) -> Dovecot {
    Dovecot::start(
        &scratch.path().join("dovecot"),
        &DovecotOptions {
            extra_args: vec!["--many".into()],
            ..DovecotOptions::default()
        },
    )
}

/// alice's IMAP login over TLS 1.0 on `port`: the tagged reply to LOGIN, after LOGOUT.
fn tls10_login(port: u16, ca: &Path) -> String {
    let mut imap = Client::tls(port, ca);
    imap.expect_greeting_imap();
    imap.send(b"a LOGIN alice secret\r\n");
    let reply = imap.tagged("a");
    imap.send(b"b LOGOUT\r\n");
    imap.tagged("b");
    reply
}

/// alice logged in over TLS 1.0 on `port`, the session left open.
fn logged_in(port: u16, ca: &Path) -> Client {
    let mut imap = Client::tls(port, ca);
    imap.expect_greeting_imap();
    imap.send(b"a LOGIN alice secret\r\n");
    assert!(imap.tagged("a").starts_with("a OK "));
    imap
}

fn connection_refused(port: u16) -> bool {
    matches!(
        TcpStream::connect(("127.0.0.1", port)),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

/// `tests/clients/imap_idle_sessions.py`: `n` logged-in TLS 1.2 IMAP sessions of alice on
/// `port`, held until [`IdleSessions::stop`], when each must answer NOOP and LOGOUT.
struct IdleSessions {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl IdleSessions {
    fn open(port: u16, ca: &Path, n: usize) -> IdleSessions {
        let script = repo_root().join("tests/clients/imap_idle_sessions.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--port", &port.to_string(), "--tls-version", "1.2"])
            .arg("--cafile")
            .arg(ca)
            .args(["--user", "alice", "--password", "secret"])
            .args(["--sessions", &n.to_string(), "--concurrency", "20"])
            .arg("--answer-on-stop")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start imap_idle_sessions.py");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let sessions = IdleSessions {
            child,
            stdin,
            lines,
        };
        let ready = sessions.line_starting(&["ready", "failed", "interrupted"]);
        assert!(
            ready.starts_with(&format!("ready sessions={n} ")),
            "{ready}"
        );
        sessions
    }

    fn line_starting(&self, prefixes: &[&str]) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(120))
                .expect("a line from imap_idle_sessions.py");
            if prefixes.iter().any(|p| line.starts_with(p)) {
                return line;
            }
        }
    }

    /// Closes stdin: every session sends NOOP and LOGOUT. Returns the `stopped` line and
    /// whether the script exited 0 (every session answered both, none was lost).
    fn stop(mut self) -> (String, bool) {
        drop(self.stdin.take());
        let stopped = self.line_starting(&["stopped"]);
        let status = self.child.wait().expect("imap_idle_sessions.py exits");
        (stopped, status.success())
    }
}

#[test]
fn reload_with_a_new_exception_under_100_live_sessions_drops_none_of_them() {
    let scratch = Scratch::new("reload-live");
    let dovecot = many_sessions_dovecot(&scratch);
    let ca = dovecot.ca_file();
    let imaps = ListenerSpec::new("imaps", "imap", "implicit", Some("1.0")).with_policy("ended");
    let retired =
        ListenerSpec::new("imaps-retired", "imap", "implicit", Some("1.0")).with_policy("ended");
    let gateway_section = format!("{ROOM_FOR_100}{}", ended_policy());
    let listeners = vec![imaps.clone(), retired.clone()];
    let mut gateway = start_gateway(&scratch, &dovecot, listeners, &gateway_section);

    // Before: the ended policy refuses a TLS 1.0 client.
    assert_eq!(
        tls10_login(imaps.port, &ca),
        format!("a NO [ALERT] {REFUSAL}\r\n")
    );
    // 100 live sessions, 60 on a listener that stays, 40 on one the reload removes.
    let staying = IdleSessions::open(imaps.port, &ca, 60);
    let on_retired = IdleSessions::open(retired.port, &ca, 40);

    // The new config: an exception for the tests' address, a new listener, one removed.
    let added = ListenerSpec::new("imaps-added", "imap", "implicit", Some("1.0"));
    gateway.rewrite_config(
        &dovecot,
        &[imaps.clone(), added.clone()],
        &format!("{gateway_section}{LOOPBACK_EXCEPTION}"),
    );
    gateway.hang_up();
    let log = gateway.wait_for_log("config reloaded", 1);
    assert!(log.contains("listener=imaps-added"), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("stopped listening") && l.contains("listener=imaps-retired")),
        "{log}"
    );

    // New sessions get the new config: the exception lets the TLS 1.0 client in, the added
    // listener accepts, the removed one refuses connections.
    assert!(tls10_login(imaps.port, &ca).starts_with("a OK "));
    assert!(tls10_login(added.port, &ca).starts_with("a OK "));
    assert!(connection_refused(retired.port));

    // None of the 100 was dropped: each answers NOOP and LOGOUT.
    for (sessions, n) in [(staying, 60), (on_retired, 40)] {
        let (stopped, clean) = sessions.stop();
        assert_eq!(stopped, format!("stopped sessions={n} lost=0 answered={n}"));
        assert!(clean, "{stopped}");
    }

    let records = gateway.stop_and_read_sessions();
    let live: Vec<_> = records
        .iter()
        .filter(|r| r.tls_version == Some(wire::TlsVersion::Tls12))
        .collect();
    assert_eq!(live.len(), 100, "{records:#?}");
    for record in &live {
        // Ended by the client's LOGOUT, before the gateway stopped.
        assert_eq!(record.outcome, Outcome::Ok, "{record:?}");
        assert_ne!(
            record.detail.as_deref(),
            Some("the gateway shut down"),
            "{record:?}"
        );
    }
    let on = |name: &str| live.iter().filter(|r| r.listener == name).count();
    assert_eq!((on("imaps"), on("imaps-retired")), (60, 40));
    // The TLS 1.0 logins: refused before the reload, let through by exception 1 after it.
    let legacy: Vec<_> = records
        .iter()
        .filter(|r| r.tls_version == Some(wire::TlsVersion::Tls10))
        .collect();
    assert_eq!(legacy.len(), 3, "{records:#?}");
    let imaps_legacy: Vec<_> = legacy.iter().filter(|r| r.listener == "imaps").collect();
    assert_eq!(imaps_legacy[0].outcome, Outcome::RefusedByPolicy);
    assert_eq!(imaps_legacy[1].outcome, Outcome::Ok);
    let policy = imaps_legacy[1].policy.as_ref().expect("a policy decision");
    assert_eq!(policy.exception, Some(1), "{policy:?}");
}

#[test]
fn a_broken_config_on_reload_keeps_the_old_one_and_the_log_names_the_key() {
    let scratch = Scratch::new("reload-broken");
    let dovecot = many_sessions_dovecot(&scratch);
    let ca = dovecot.ca_file();
    let imaps = ListenerSpec::new("imaps", "imap", "implicit", Some("1.0"));
    let metrics_port = free_port();
    let gateway_section =
        format!("pre_auth_timeout_secs = 10\n\n[metrics]\nbind = \"127.0.0.1:{metrics_port}\"\n");
    let gateway = start_gateway(&scratch, &dovecot, vec![imaps.clone()], &gateway_section);

    // A session logged in before the broken reloads.
    let mut live = logged_in(imaps.port, &ca);

    let added = ListenerSpec::new("imaps-added", "imap", "implicit", Some("1.0"));
    let with_added = |gateway_lines: &str| {
        Gateway::config_text(
            &dovecot,
            &[imaps.clone(), added.clone()],
            &format!("{gateway_lines}{gateway_section}"),
            UpstreamTls::Implicit,
        )
    };
    // 1. An unknown key; 2. a listener naming an upstream that does not exist.
    let unknown_key = with_added("max_sesions = 10\n");
    let missing_upstream = {
        // The added listener is the last table: point it at an upstream nobody defined.
        let text = with_added("");
        let line = "upstream = \"dovecot-imap\"";
        let at = text.rfind(line).expect("the added listener's upstream");
        format!(
            "{}upstream = \"exchange\"{}",
            &text[..at],
            &text[at + line.len()..]
        )
    };
    for (n, (broken, key)) in [
        (unknown_key, "max_sesions"),
        (missing_upstream, "listener[imaps-added].upstream"),
    ]
    .into_iter()
    .enumerate()
    {
        std::fs::write(gateway.config_path(), broken).expect("write the broken config");
        gateway.hang_up();
        gateway.reload_refusal(n + 1, key);
        // The old config serves on: the added listener was never opened, the old one accepts,
        // the live session answers.
        assert!(connection_refused(added.port));
        assert!(tls10_login(imaps.port, &ca).starts_with("a OK "));
        live.send(format!("n{n} NOOP\r\n").as_bytes());
        assert!(live
            .tagged(&format!("n{n}"))
            .starts_with(&format!("n{n} OK")));
    }
    let metrics = scrape(metrics_port);
    let reloads = |result| {
        value(
            &metrics,
            "mailtls_config_reloads_total",
            &[("result", result)],
        )
    };
    assert_eq!(reloads("refused"), Some(2.0), "{metrics}");
    assert_eq!(reloads("applied"), Some(0.0), "{metrics}");

    // Fixed, the same change applies.
    std::fs::write(gateway.config_path(), with_added("")).expect("write the fixed config");
    gateway.hang_up();
    gateway.wait_for_log("config reloaded", 1);
    assert!(tls10_login(added.port, &ca).starts_with("a OK "));
    live.send(b"z LOGOUT\r\n");
    let bye = live.tagged("z");
    assert!(
        bye.starts_with("* BYE") && bye.contains("\r\nz OK"),
        "{bye:?}"
    );
    let metrics = scrape(metrics_port);
    assert_eq!(
        value(
            &metrics,
            "mailtls_config_reloads_total",
            &[("result", "applied")]
        ),
        Some(1.0),
        "{metrics}"
    );
}

#[test]
fn mailtls_reload_checks_the_file_first_and_signals_only_a_valid_one() {
    let scratch = Scratch::new("reload-command");
    let dovecot = many_sessions_dovecot(&scratch);
    let ca = dovecot.ca_file();
    let imaps = ListenerSpec::new("imaps", "imap", "implicit", Some("1.0"));
    let gateway_section = "pre_auth_timeout_secs = 10\npid_file = \"gateway.pid\"\n";
    let mut gateway = start_gateway(&scratch, &dovecot, vec![imaps.clone()], gateway_section);
    let pid_file = gateway.config_path().with_file_name("gateway.pid");
    assert_eq!(
        std::fs::read_to_string(&pid_file).expect("the pid file"),
        format!("{}\n", gateway.pid())
    );
    let reload = |config: &Path| {
        Command::new(mailtls_bin())
            .arg("reload")
            .arg("--config")
            .arg(config)
            .output()
            .expect("run mailtls reload")
    };

    // Invalid: exit 2, the key named, nothing signalled.
    let added = ListenerSpec::new("imaps-added", "imap", "implicit", Some("1.0"));
    let valid = Gateway::config_text(
        &dovecot,
        &[imaps.clone(), added.clone()],
        gateway_section,
        UpstreamTls::Implicit,
    );
    let invalid = valid.replace("[store]\n", "[store]\ncompress = true\n");
    std::fs::write(gateway.config_path(), &invalid).expect("write the invalid config");
    let output = reload(&gateway.config_path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("compress"), "{stderr}");
    std::thread::sleep(Duration::from_millis(500));
    let log = gateway.log();
    assert!(!log.contains("reloading the config"), "{log}");
    assert!(connection_refused(added.port));

    // A config that is valid but served by nobody: refused, nothing signalled.
    let elsewhere = scratch.path().join("elsewhere.toml");
    std::fs::write(
        &elsewhere,
        valid.replace("gateway.pid", &pid_file.display().to_string()),
    )
    .expect("write another config");
    let output = reload(&elsewhere);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("reload with --config"), "{stderr}");
    assert!(!gateway.log().contains("reloading the config"));

    // Valid: exit 0, the gateway reloads it.
    std::fs::write(gateway.config_path(), &valid).expect("write the valid config");
    let output = reload(&gateway.config_path());
    assert!(output.status.success(), "{output:?}");
    gateway.wait_for_log("config reloaded", 1);
    assert!(tls10_login(added.port, &ca).starts_with("a OK "));

    // With --pid (systemd's $MAINPID) the pid file is not needed; a process that is not the
    // gateway is not signalled.
    let with_pid = |pid: u32| {
        Command::new(mailtls_bin())
            .args(["reload", "--pid", &pid.to_string(), "--config"])
            .arg(gateway.config_path())
            .output()
            .expect("run mailtls reload --pid")
    };
    let output = with_pid(std::process::id());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not a running mailtls gateway"), "{stderr}");
    assert!(with_pid(gateway.pid()).status.success());
    gateway.wait_for_log("config reloaded", 2);

    // The pid file goes with the gateway.
    gateway.stop_and_read_sessions();
    assert!(!pid_file.exists());
    let mut stale = std::fs::File::create(&pid_file).expect("a stale pid file");
    writeln!(stale, "{}", std::process::id()).expect("write it");
    let output = reload(&gateway.config_path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not a running mailtls gateway"), "{stderr}");
}

#[test]
fn a_changed_listener_applies_to_new_sessions_and_a_moved_one_is_bound_anew() {
    let scratch = Scratch::new("reload-changed");
    let dovecot = many_sessions_dovecot(&scratch);
    let ca = dovecot.ca_file();
    let floor = ListenerSpec::new("imaps", "imap", "implicit", Some("1.0"));
    let moving = ListenerSpec::new("imaps-moving", "imap", "implicit", Some("1.0"));
    let section = "pre_auth_timeout_secs = 10\n";
    let listeners = vec![floor.clone(), moving.clone()];
    let mut gateway = start_gateway(&scratch, &dovecot, listeners, section);

    // A TLS 1.0 session logged in on each before the reload.
    let live: Vec<Client> = [floor.port, moving.port]
        .into_iter()
        .map(|port| logged_in(port, &ca))
        .collect();

    // The floor of one raised to TLS 1.2, the other moved to another port.
    let raised = ListenerSpec {
        min_tls: Some("1.2".into()),
        ..floor.clone()
    };
    let moved = ListenerSpec {
        port: free_port(),
        ..moving.clone()
    };
    gateway.rewrite_config(&dovecot, &[raised, moved.clone()], section);
    gateway.hang_up();
    let log = gateway.wait_for_log("config reloaded", 1);
    assert!(
        log.contains(r#"changed=["imaps", "imaps-moving"]"#),
        "{log}"
    );

    // New sessions: TLS 1.0 no longer completes a handshake on the raised listener; the moved
    // one listens on its new port only.
    let tcp = TcpStream::connect(("127.0.0.1", floor.port)).expect("connect");
    assert!(legacy_connector(&ca).connect("localhost", tcp).is_err());
    assert!(tls10_login(moved.port, &ca).starts_with("a OK "));
    assert!(connection_refused(moving.port));

    // The sessions of before go on with the config they started with.
    for mut client in live {
        client.send(b"n NOOP\r\nz LOGOUT\r\n");
        assert!(client.tagged("n").starts_with("n OK"));
        assert!(client.tagged("z").contains("\r\nz OK"));
    }
    let records = gateway.stop_and_read_sessions();
    let ended = |listener: &str, outcome: Outcome| {
        records
            .iter()
            .filter(|r| r.listener == listener && r.outcome == outcome)
            .count()
    };
    assert_eq!(ended("imaps", Outcome::Ok), 1, "{records:#?}");
    assert_eq!(ended("imaps", Outcome::ClientTlsFailed), 1, "{records:#?}");
    assert_eq!(ended("imaps-moving", Outcome::Ok), 2, "{records:#?}");
}
