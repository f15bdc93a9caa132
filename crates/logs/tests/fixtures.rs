//! The readers on files in their real formats: logs the lab's Dovecot and Postfix wrote (see
//! `testdata/`), and Microsoft 365 exports laid out as Microsoft documents them, one with
//! extra and reordered columns and one lacking a required column.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use logs::{
    read_entra_sign_ins_csv, read_entra_sign_ins_json, read_smtp_auth_report, DovecotLog, Evidence,
    LineKind, LogClock, LogReader, PostfixLog,
};
use store::Outcome;
use time::UtcOffset;
use wire::TlsVersion;

fn testdata(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_log(reader: &mut dyn LogReader, name: &str) -> (Vec<Evidence>, usize) {
    let mut out = Vec::new();
    let mut not_understood = 0;
    for line in testdata(name)
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
    {
        not_understood += usize::from(reader.read_line(line, &mut out) == LineKind::NotUnderstood);
    }
    (out, not_understood)
}

fn clock() -> LogClock {
    LogClock::new(2026, UtcOffset::UTC)
}

#[test]
fn the_lab_dovecot_log_gives_every_login_and_refusal() {
    let mut reader = DovecotLog::new(clock(), TlsVersion::Tls12);
    let (out, not_understood) = read_log(&mut reader, "dovecot.log");
    assert_eq!(not_understood, 0);
    let seen: Vec<(&str, Option<TlsVersion>, Outcome, Option<&str>)> = out
        .iter()
        .map(|e| {
            let r = &e.record;
            (
                r.protocol.as_str(),
                r.tls_version,
                r.outcome,
                r.detail.as_deref(),
            )
        })
        .collect();
    use TlsVersion::*;
    assert_eq!(
        seen,
        [
            ("imap", Some(Tls10), Outcome::Ok, None),
            ("imap", Some(Tls11), Outcome::Ok, None),
            ("imap", Some(Tls13), Outcome::Ok, None),
            ("imap", None, Outcome::Ok, None),
            ("pop3", Some(Tls10), Outcome::Ok, None),
            (
                "imap",
                Some(Tls13),
                Outcome::AuthFailed,
                Some("Disconnected: Aborted login by logging out (auth failed, 1 attempts in 0 secs)")
            ),
            ("imap", None, Outcome::ClientTlsFailed, Some("unsupported protocol")),
            ("pop3", None, Outcome::ClientTlsFailed, Some("no shared cipher")),
        ]
    );
}

#[test]
fn the_lab_postfix_log_joins_tls_and_login() {
    let mut reader = PostfixLog::new(clock(), TlsVersion::Tls12);
    let (out, not_understood) = read_log(&mut reader, "postfix.log");
    // Two lines of the lab's log are no log lines: the shell's `Terminated` when Postfix was
    // stopped, and one cut at its start where two writers met.
    assert_eq!(not_understood, 2);
    let seen: Vec<(Option<&str>, Option<TlsVersion>, Outcome)> = out
        .iter()
        .map(|e| {
            (
                e.record.login.as_deref(),
                e.record.tls_version,
                e.record.outcome,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (Some("alice"), Some(TlsVersion::Tls13), Outcome::Ok),
            (Some("alice"), Some(TlsVersion::Tls13), Outcome::AuthFailed),
            (None, None, Outcome::ClientTlsFailed),
            (None, None, Outcome::ClientTlsFailed),
        ]
    );
    assert_eq!(out[2].record.offered_max_tls, Some(TlsVersion::Tls11));
    assert_eq!(reader.open_connections(), 0);
}

/// (login, address, protocol, outcome) of each record.
fn sign_ins(out: &[Evidence]) -> Vec<(String, IpAddr, String, Outcome)> {
    out.iter()
        .map(|e| {
            let r = &e.record;
            (
                r.login.clone().unwrap(),
                r.client_addr,
                r.protocol.clone(),
                r.outcome,
            )
        })
        .collect()
}

#[test]
fn an_entra_download_keeps_the_mail_protocols_sign_ins() {
    let rows = read_entra_sign_ins_csv(&testdata("entra-interactive.csv")[..]).unwrap();
    assert_eq!((rows.rows, rows.other, rows.not_understood), (6, 2, 0));
    let addr = |text: &str| text.parse::<IpAddr>().unwrap();
    assert_eq!(
        sign_ins(&rows.records),
        [
            (
                "scanner@contoso.com".into(),
                addr("192.0.2.7"),
                "imap".into(),
                Outcome::Ok
            ),
            (
                "bob@contoso.com".into(),
                addr("198.51.100.23"),
                "pop3".into(),
                Outcome::AuthFailed
            ),
            (
                "printer@contoso.com".into(),
                addr("192.0.2.40"),
                "smtp".into(),
                Outcome::Ok
            ),
            (
                "scanner@contoso.com".into(),
                addr("2001:db8::17"),
                "imap".into(),
                Outcome::ClientClosed
            ),
        ]
    );
    assert!(rows.records.iter().all(|e| e.record.tls_version.is_none()));
    assert_eq!(
        rows.records[0].record.started_at,
        UNIX_EPOCH + Duration::from_secs(1_796_026_781)
    );

    // The same sign-ins with extra columns, in another order: the same records.
    let reordered = read_entra_sign_ins_csv(&testdata("entra-reordered-extra.csv")[..]).unwrap();
    assert_eq!(reordered.records, rows.records);

    // Graph's JSON names the same sign-ins (an interrupted one is a failure code there).
    let json = read_entra_sign_ins_json(&testdata("entra-signins-graph.json")[..]).unwrap();
    let mut expected = sign_ins(&rows.records);
    expected[3].3 = Outcome::AuthFailed;
    assert_eq!(sign_ins(&json.records), expected);
}

#[test]
fn an_entra_download_without_the_client_app_column_is_refused_by_name() {
    let error = read_entra_sign_ins_csv(&testdata("entra-missing-client-app.csv")[..]).unwrap_err();
    let text = error.to_string();
    assert!(text.contains("no column \"Client app\""), "{text}");
}

#[test]
fn smtp_auth_reports_in_both_spellings_and_any_column_order() {
    let date = UNIX_EPOCH + Duration::from_secs(1_796_256_000);
    let shares = |name: &str| -> Vec<(String, TlsVersion)> {
        read_smtp_auth_report(&testdata(name)[..], date)
            .unwrap()
            .records
            .iter()
            .map(|e| {
                (
                    e.record.login.clone().unwrap(),
                    e.record.tls_version.unwrap(),
                )
            })
            .collect()
    };
    use TlsVersion::*;
    assert_eq!(
        shares("smtp-auth-report.csv"),
        [
            ("scanner@contoso.com".into(), Tls10),
            ("printer@contoso.com".into(), Tls10),
            ("printer@contoso.com".into(), Tls11),
            ("printer@contoso.com".into(), Tls12),
            ("app@contoso.com".into(), Tls12),
        ]
    );
    assert_eq!(
        shares("smtp-auth-report-legacy.csv"),
        [
            ("scanner@contoso.com".into(), Tls10),
            ("app@contoso.com".into(), Tls12)
        ]
    );
    assert_eq!(
        shares("smtp-auth-report-reordered-extra.csv"),
        [
            ("printer@contoso.com".into(), Tls10),
            ("printer@contoso.com".into(), Tls11),
            ("printer@contoso.com".into(), Tls12),
        ]
    );
    let error =
        read_smtp_auth_report(&testdata("smtp-auth-report-missing-tls.csv")[..], date).unwrap_err();
    assert!(
        error.to_string().contains("no column \"TLS 1.1\""),
        "{error}"
    );
}
