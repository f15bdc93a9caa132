//! `mailtls scan` against private Dovecot instances whose TLS settings are known, plus fault
//! servers: the reported versions, suites and plaintext-login findings must match the
//! configuration, and bad targets must give clear per-target results without hanging.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use e2e::{free_port, mailtls_bin as mailtls, run, Dovecot, DovecotOptions, Postfix, Scratch};
use serde_json::Value;

fn dovecot(scratch: &Scratch, min_tls: &str, plaintext_auth: bool, extra: &[&str]) -> Dovecot {
    Dovecot::start(
        &scratch.path().join("dovecot"),
        &DovecotOptions {
            min_tls: min_tls.into(),
            plaintext_auth,
            messages: 1,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
        },
    )
}

/// The four endpoints of a lab Dovecot.
fn endpoints(d: &Dovecot) -> Vec<String> {
    let host = d.var("LISTEN_ADDR");
    vec![
        format!("imaps://{host}:{}", d.port("IMAPS_PORT")),
        format!("imap://{host}:{}", d.port("IMAP_PORT")),
        format!("pop3s://{host}:{}", d.port("POP3S_PORT")),
        format!("pop3://{host}:{}", d.port("POP3_PORT")),
    ]
}

fn scan(args: &[String]) -> (Output, Vec<Value>) {
    let output = run(Command::new(mailtls()).arg("scan").args(args));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let reports = serde_json::from_str::<Value>(&stdout)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    (output, reports)
}

fn scan_json(targets: &[String], extra: &[&str]) -> (Output, Vec<Value>) {
    let mut args: Vec<String> = vec!["--json".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(targets.iter().cloned());
    let (output, reports) = scan(&args);
    assert_eq!(
        reports.len(),
        targets.len(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output, reports)
}

/// `ssl3 tls1.0 tls1.1 tls1.2 tls1.3` as A(ccepted), R(ejected), U(nknown).
fn versions(report: &Value) -> String {
    ["ssl3", "tls1.0", "tls1.1", "tls1.2", "tls1.3"]
        .iter()
        .map(|v| match report["versions"][v].as_str() {
            Some("accepted") => 'A',
            Some("rejected") => 'R',
            _ => 'U',
        })
        .collect()
}

fn check_versions(min_tls: &str, expected: &str, pass: bool) {
    let scratch = Scratch::new("scan-versions");
    let d = dovecot(&scratch, min_tls, true, &[]);
    let ca = d.ca_file().display().to_string();
    let (output, reports) = scan_json(&endpoints(&d), &["--ca-file", &ca]);
    for r in &reports {
        assert_eq!(versions(r), expected, "{min_tls} {}: {r:#}", r["target"]);
        assert_eq!(r["verdict"]["pass"], pass, "{r:#}");
        let cert = &r["certificate"];
        assert_eq!(cert["verified"], true, "{r:#}");
        assert_eq!(cert["host_name_matches"], true);
        assert_eq!(cert["key_type"], "RSA");
        assert_eq!(cert["key_bits"], 2048);
        assert!(cert["subject_alt_names"].to_string().contains("127.0.0.1"));
        if r["tls_mode"] == "starttls" {
            assert_eq!(r["starttls"]["advertised"], true, "{r:#}");
            assert_eq!(r["starttls"]["accepted"], true);
        } else {
            assert!(r["starttls"].is_null() && r["plaintext_auth"].is_null());
        }
    }
    assert_eq!(output.status.code(), Some(if pass { 0 } else { 1 }));
}

// OpenSSL 3 has no SSLv3 at all, so it is refused everywhere.
#[test]
fn tls10_minimum_accepts_tls10_and_up() {
    check_versions("TLSv1", "RAAAA", false);
}

#[test]
fn tls11_minimum_accepts_tls11_and_up() {
    check_versions("TLSv1.1", "RRAAA", false);
}

#[test]
fn tls12_minimum_accepts_tls12_and_up() {
    check_versions("TLSv1.2", "RRRAA", true);
}

#[test]
fn tls13_only_accepts_tls13_and_its_certificate_is_read_through_rustls() {
    let scratch = Scratch::new("scan-tls13");
    let d = dovecot(&scratch, "TLSv1.3", true, &[]);
    let ca = d.ca_file().display().to_string();
    let (_, reports) = scan_json(&endpoints(&d), &["--ca-file", &ca]);
    for r in &reports {
        assert_eq!(versions(r), "RRRRA", "{r:#}");
        assert_eq!(r["certificate"]["fetched_with"], "tls1.3");
        assert_eq!(r["certificate"]["verified"], true);
    }
}

/// Dovecot offering only RSA key exchange with AES-CBC: the suites found per version are
/// exactly those, and `openssl s_client` agrees suite by suite.
#[test]
fn rsa_cbc_only_server_suites_match_openssl() {
    let scratch = Scratch::new("scan-rsa-cbc");
    let d = dovecot(
        &scratch,
        "TLSv1",
        true,
        &["--ciphers", "AES128-SHA:AES256-SHA"],
    );
    let host = d.var("LISTEN_ADDR").to_string();
    let port = d.port("IMAPS_PORT");
    let (_, reports) = scan_json(&[format!("imaps://{host}:{port}")], &["--ciphers"]);
    let r = &reports[0];
    assert_eq!(versions(r), "RAAAA", "{r:#}");
    let expected = [
        "TLS_RSA_WITH_AES_128_CBC_SHA",
        "TLS_RSA_WITH_AES_256_CBC_SHA",
    ];
    for v in ["tls1.0", "tls1.1", "tls1.2"] {
        let mut found: Vec<String> = r["ciphers"][v]["suites"]
            .as_array()
            .unwrap_or_else(|| panic!("no {v} suites: {r:#}"))
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        found.sort();
        assert_eq!(found, expected, "{v}: {r:#}");
    }
    let openssl_accepts = |flag: &str, cipher: &str| {
        let out = run(Command::new("openssl")
            .args([
                "s_client",
                flag,
                "-cipher",
                &format!("{cipher}:@SECLEVEL=0"),
            ])
            .args(["-connect", &format!("{host}:{port}")])
            .stdin(std::process::Stdio::null()));
        String::from_utf8_lossy(&out.stdout).contains(&format!("Cipher is {cipher}"))
    };
    for cipher in ["AES128-SHA", "AES256-SHA"] {
        assert!(
            openssl_accepts("-tls1", cipher),
            "openssl cannot negotiate {cipher}"
        );
    }
    for cipher in ["ECDHE-RSA-AES128-SHA", "DES-CBC3-SHA"] {
        assert!(
            !openssl_accepts("-tls1", cipher),
            "openssl negotiates {cipher}"
        );
    }
}

/// Dovecot treats a client from its own address as secure, so it listens on 127.0.0.2 here
/// (see research/lab.md) and the scan connects from 127.0.0.1.
#[test]
fn plaintext_login_before_starttls_is_reported_only_when_allowed() {
    for (allowed, label) in [(true, "scan-plain-yes"), (false, "scan-plain-no")] {
        let scratch = Scratch::new(label);
        let d = dovecot(&scratch, "TLSv1.2", allowed, &["--listen", "127.0.0.2"]);
        let host = d.var("LISTEN_ADDR");
        let targets = [
            format!("imap://{host}:{}", d.port("IMAP_PORT")),
            format!("pop3://{host}:{}", d.port("POP3_PORT")),
        ];
        let (_, reports) = scan_json(&targets, &[]);
        for r in &reports {
            assert_eq!(r["plaintext_auth"]["offered"], allowed, "{r:#}");
        }
        // The evidence names what the server advertised, which differs between the cases.
        let (imap, pop3) = if allowed {
            (
                "CAPABILITY lacks LOGINDISABLED before STARTTLS: LOGIN works in plaintext",
                "CAPA lists USER before STLS",
            )
        } else {
            (
                "CAPABILITY lists LOGINDISABLED before STARTTLS",
                "CAPA lists neither USER nor SASL PLAIN/LOGIN before STLS",
            )
        };
        let evidence = |i: usize| reports[i]["plaintext_auth"]["evidence"].as_str();
        assert_eq!(evidence(0), Some(imap), "{:#}", reports[0]);
        assert_eq!(evidence(1), Some(pop3), "{:#}", reports[1]);
    }
}

/// Fault servers and a plaintext port: each answers wrongly in its own way, all in one scan.
#[test]
fn broken_targets_get_clear_results_without_hanging() {
    let silent = serve(|mut s| {
        std::thread::sleep(Duration::from_secs(20));
        let _ = s.flush();
    });
    let closer = serve(drop);
    let http = serve(|mut s| {
        let mut buf = [0; 512];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    let smtp_refuser = serve(|mut s| {
        let _ = s.write_all(b"554 5.7.1 no service for you\r\n");
        std::thread::sleep(Duration::from_millis(500));
    });
    // A real server's plaintext port scanned as implicit TLS: Dovecot greets first.
    let scratch = Scratch::new("scan-broken");
    let d = dovecot(&scratch, "TLSv1.2", true, &[]);
    let plaintext = format!("{}:{}", d.var("LISTEN_ADDR"), d.port("IMAP_PORT"));
    let nobody = free_port();
    let targets = [
        format!("imaps://127.0.0.1:{silent}"),
        format!("imap://127.0.0.1:{closer}"),
        format!("imaps://127.0.0.1:{http}"),
        format!("smtp://127.0.0.1:{smtp_refuser}"),
        format!("imaps://{plaintext}"),
        format!("pop3s://127.0.0.1:{nobody}"),
    ];
    mailtls(); // built before the clock starts
    let started = Instant::now();
    let (output, reports) = scan_json(&targets, &["--timeout", "1"]);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    let reason = |i: usize| {
        reports[i]["version_reasons"]["tls1.2"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    for r in &reports {
        assert_eq!(versions(r), "UUUUU", "{r:#}");
        assert_eq!(r["verdict"]["pass"], false);
    }
    assert!(reason(0).contains("no answer"), "{}", reason(0));
    assert!(reason(1).contains("closed"), "{}", reason(1));
    assert!(reason(2).contains("HTTP/1.1 400"), "{}", reason(2));
    assert!(
        reason(3).contains("554 5.7.1 no service for you"),
        "{}",
        reason(3)
    );
    // Dovecot greets with "Dovecot ready." or, while a fresh login process waits for its auth
    // process, with "Waiting for authentication process to respond..": either is quoted.
    assert!(
        reason(4).contains("the server answered without TLS: \"* OK "),
        "{}",
        reason(4)
    );
    assert!(reason(5).contains("cannot connect"), "{}", reason(5));
    // Nothing could be scanned at all: a total failure.
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn bad_target_syntax_and_unresolvable_names_name_the_target() {
    let (output, _) = scan(&["imap://[::1".into()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("imap://[::1"));

    let (output, reports) = scan(&["--json".into(), "imaps://no-such-host.invalid:993".into()]);
    assert_eq!(output.status.code(), Some(2));
    let error = reports[0]["error"].as_str().unwrap();
    assert!(error.contains("no-such-host.invalid"), "{error}");
}

/// Timeouts that Duration cannot hold, or that would push a deadline past what Instant can
/// hold, are usage errors (exit 2), not panics.
#[test]
fn out_of_range_timeouts_are_usage_errors() {
    for timeout in ["1e30", "3601", "0", "-1", "NaN", "inf", "1e-12"] {
        let (output, _) = scan(&[format!("--timeout={timeout}"), "imaps://127.0.0.1:1".into()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{timeout}: {stderr}");
        assert!(
            stderr.contains("--timeout must be a positive number of seconds, at most 3600"),
            "{timeout}: {stderr}"
        );
    }
}

#[test]
fn csv_and_table_outputs() {
    let scratch = Scratch::new("scan-output");
    let d = dovecot(&scratch, "TLSv1.2", true, &[]);
    let target = endpoints(&d)[0].clone();
    let csv = run(Command::new(mailtls()).args(["scan", "--csv", &target]));
    let text = String::from_utf8_lossy(&csv.stdout);
    assert!(text.starts_with("target,address,protocol,tls_mode,ssl3"));
    assert!(
        text.contains("rejected,rejected,rejected,accepted,accepted"),
        "{text}"
    );
    let table = run(Command::new(mailtls()).args(["scan", &target]));
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("PASS min-tls12") && !text.contains('\x1b'),
        "{text}"
    );
}

/// SMTP through a real Postfix: STARTTLS on submission and implicit TLS, and whether AUTH is
/// offered before STARTTLS (`smtpd_tls_auth_only`).
#[test]
fn smtp_versions_and_auth_before_starttls_with_postfix() {
    for (min_tls, auth_before_tls, expected) in
        [("TLSv1", true, "RAAAA"), ("TLSv1.2", false, "RRRAA")]
    {
        let scratch = Scratch::new("scan-postfix");
        let auth = if auth_before_tls { "yes" } else { "no" };
        let postfix = Postfix::start(
            &scratch.path().join("postfix"),
            &["--min-tls", min_tls, "--auth-before-tls", auth],
        );
        let ca = postfix.ca_file().display().to_string();
        let targets = [
            format!("smtp://127.0.0.1:{}", postfix.port("SMTP_PORT")),
            format!("smtps://127.0.0.1:{}", postfix.port("SMTPS_PORT")),
        ];
        let (_, reports) = scan_json(&targets, &["--ca-file", &ca]);
        for r in &reports {
            assert_eq!(versions(r), expected, "{min_tls}: {r:#}");
            assert_eq!(r["certificate"]["verified"], true, "{r:#}");
        }
        let starttls = &reports[0];
        assert_eq!(starttls["starttls"]["advertised"], true, "{starttls:#}");
        assert_eq!(
            starttls["plaintext_auth"]["offered"], auth_before_tls,
            "{starttls:#}"
        );
    }
}

/// A one-connection-at-a-time TCP server on loopback running `handle` per connection.
fn serve(handle: fn(std::net::TcpStream)) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || handle(stream));
        }
    });
    port
}
