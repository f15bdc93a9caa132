use wire::TlsVersion;

use super::*;
use crate::fixtures::{report, with_suites};
use crate::report::Status::{Accepted as A, Rejected as R};
use proto::starttls::PlaintextAuth;

fn sample() -> Vec<ScanReport> {
    let mut r = with_suites(
        report([R, A, R, A, A]),
        TlsVersion::Tls12,
        &[0xC02F, 0x002F],
    );
    r.plaintext_auth = Some(PlaintextAuth {
        offered: true,
        evidence: "CAPABILITY lacks LOGINDISABLED before STARTTLS".into(),
    });
    r.verdict = crate::verdict::Preset::MinTls12.judge(&r);
    vec![r]
}

#[test]
fn json_has_the_documented_fields() {
    let value: serde_json::Value = serde_json::from_str(&json(&sample())).unwrap();
    let first = &value[0];
    for field in [
        "target",
        "address",
        "protocol",
        "tls_mode",
        "versions",
        "ciphers",
        "certificate",
        "starttls",
        "plaintext_auth",
        "verdict",
    ] {
        assert!(first.get(field).is_some(), "missing {field}");
    }
    assert_eq!(first["versions"]["tls1.0"], "accepted");
    assert_eq!(first["versions"]["ssl3"], "rejected");
    assert_eq!(first["tls_mode"], "starttls");
    assert_eq!(first["verdict"]["pass"], false);
    assert_eq!(first["verdict"]["preset"], "min-tls12");
    assert_eq!(
        first["ciphers"]["tls1.2"]["suites"][1],
        "TLS_RSA_WITH_AES_128_CBC_SHA"
    );
    assert_eq!(first["plaintext_auth"]["offered"], true);
}

#[test]
fn csv_quotes_fields_and_defuses_formulas() {
    let mut reports = sample();
    reports[0].error = Some("=HYPERLINK(\"x\")".into());
    let text = csv(&reports);
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert!(lines[0].starts_with("target,address,protocol,tls_mode,ssl3,tls1.0"));
    assert!(lines[1].starts_with(
        "imap://mail.example.com:143,192.0.2.1:143,imap,starttls,rejected,accepted,rejected,accepted,accepted"
    ));
    assert!(lines[1]
        .contains("tls1.2:TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256|TLS_RSA_WITH_AES_128_CBC_SHA"));
    assert!(
        lines[1].ends_with("\"'=HYPERLINK(\"\"x\"\")\""),
        "{}",
        lines[1]
    );
}

#[test]
fn table_colours_only_when_asked() {
    let plain = table(&sample(), false);
    assert!(!plain.contains('\x1b'));
    assert!(plain.contains("FAIL min-tls12"));
    assert!(plain.contains("TLSv1.0   accepted"));
    assert!(plain.contains("login before TLS possible"));
    assert!(plain.contains("TLSv1.2 (server order)"));
    let coloured = table(&sample(), true);
    assert!(coloured.contains("\x1b[31mFAIL"));
}

/// Certificate fields come from the server: an escape sequence in them must reach the
/// terminal as text, in the table and the CSV alike.
#[test]
fn certificate_text_cannot_drive_the_terminal() {
    let mut reports = sample();
    let cert = reports[0].certificate.as_mut().unwrap();
    cert.subject = "CN=evil\x1b]2;pwned\x07\x1b[2J".into();
    cert.issuer = "CN=\x1b[31missuer".into();
    cert.subject_alt_names = vec!["a\x1bb.example".into()];
    cert.verify_error = Some("not valid for \x1b[1mname".into());
    reports[0].verdict = crate::verdict::Preset::MinTls12.judge(&reports[0]);
    let plain = table(&reports, false);
    assert!(!plain.contains('\x1b'), "{plain}");
    assert!(!plain.contains('\x07'), "{plain}");
    assert!(
        plain.contains("CN=evil\\u{1b}]2;pwned\\u{7}\\u{1b}[2J"),
        "{plain}"
    );
    assert!(plain.contains("SAN a\\u{1b}b.example"), "{plain}");
    assert!(plain.contains("issuer CN=\\u{1b}[31missuer"), "{plain}");
    assert!(
        plain.contains("not verified: not valid for \\u{1b}[1mname"),
        "{plain}"
    );
    // With colour on, only the table's own escapes remain.
    let coloured = table(&reports, true);
    assert!(!coloured.contains("\x1b]"), "{coloured}");
    assert!(!coloured.contains("\x1b[2J") && !coloured.contains("\x1b[1mname"));
    assert!(!csv(&reports).contains('\x1b'));
}
