use wire::TlsVersion;

use super::*;
use crate::fixtures::{report, with_suites};
use crate::report::Status::{Accepted as A, Rejected as R, Unknown as U};

#[test]
fn min_tls12_fails_on_each_legacy_version_and_on_unknowns() {
    let good = report([R, R, R, A, A]);
    assert_eq!(Preset::MinTls12.judge(&good).reasons, Vec::<String>::new());
    assert!(Preset::MinTls12.judge(&good).pass);

    let legacy = Preset::MinTls12.judge(&report([R, A, A, A, R]));
    assert!(!legacy.pass);
    assert_eq!(
        legacy.reasons,
        [
            "TLSv1.0 accepted (below TLS 1.2)",
            "TLSv1.1 accepted (below TLS 1.2)"
        ]
    );

    // A timeout proves nothing: the verdict cannot pass on it.
    let unknown = Preset::MinTls12.judge(&report([R, U, R, A, A]));
    assert!(!unknown.pass);
    assert!(unknown.reasons[0].starts_with("TLSv1.0 could not be tested: no answer"));

    let nothing = Preset::MinTls12.judge(&report([R, R, R, R, R]));
    assert_eq!(nothing.reasons, ["none of TLSv1.2, TLSv1.3 is accepted"]);
}

#[test]
fn an_unscanned_address_fails_with_its_error() {
    let mut r = report([U, U, U, U, U]);
    r.error = Some("cannot connect: Connection refused".into());
    let v = Preset::MinTls12.judge(&r);
    assert_eq!(
        v.reasons,
        ["not scanned: cannot connect: Connection refused"]
    );
}

#[test]
fn mozilla_intermediate_checks_suites_and_certificate() {
    let r = with_suites(
        report([R, R, R, A, A]),
        TlsVersion::Tls12,
        &[0xC02F, 0x002F],
    );
    let r = with_suites(r, TlsVersion::Tls13, &[0x1301]);
    let v = Preset::MozillaIntermediate.judge(&r);
    assert_eq!(
        v.reasons,
        ["TLSv1.2 suites not allowed by Mozilla intermediate: TLS_RSA_WITH_AES_128_CBC_SHA"]
    );

    let mut r = with_suites(report([R, R, R, A, R]), TlsVersion::Tls12, &[0xC02F]);
    let cert = r.certificate.as_mut().unwrap();
    cert.key_bits = Some(1024);
    cert.lifetime_days = 825;
    cert.verify_error = Some("invalid peer certificate: UnknownIssuer".into());
    let v = Preset::MozillaIntermediate.judge(&r);
    assert_eq!(v.reasons.len(), 3, "{:?}", v.reasons);
    assert!(v.reasons[0].contains("not trusted"));
    assert!(v.reasons[1].contains("RSA 1024"));
    assert!(v.reasons[2].contains("825 days"));
}

#[test]
fn presets_with_suite_rules_say_when_suites_were_not_enumerated() {
    assert!(Preset::MozillaModern.needs_ciphers() && !Preset::MinTls12.needs_ciphers());
    let v = Preset::MozillaIntermediate.judge(&report([R, R, R, A, R]));
    assert_eq!(v.reasons, ["TLSv1.2 suites were not enumerated"]);
}

#[test]
fn mozilla_modern_wants_tls13_only_and_ecdsa() {
    let r = with_suites(report([R, R, R, A, A]), TlsVersion::Tls13, &[0x1301]);
    let r = with_suites(r, TlsVersion::Tls12, &[0xC02F]);
    let v = Preset::MozillaModern.judge(&r);
    assert_eq!(
        v.reasons,
        [
            "TLSv1.2 accepted (Mozilla modern allows TLS 1.3 only)",
            "certificate key RSA 2048 is not ECDSA P-256"
        ]
    );
}

#[test]
fn nist_requires_tls13_and_approved_suites() {
    let r = with_suites(
        report([R, R, R, A, R]),
        TlsVersion::Tls12,
        &[0xC02F, 0xCCA8, 0xC013],
    );
    let v = Preset::Nist80052r2.judge(&r);
    assert_eq!(
        v.reasons,
        [
            "TLSv1.3 is not accepted; SP 800-52r2 requires it",
            "TLSv1.2 suites not allowed by SP 800-52r2: TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
        ]
    );
}

#[test]
fn preset_names_parse_and_print() {
    for p in Preset::ALL {
        assert_eq!(p.name().parse::<Preset>(), Ok(p));
        assert_eq!(p.to_string(), p.name());
    }
    let err = "pci".parse::<Preset>().unwrap_err().to_string();
    assert!(err.contains("mozilla-intermediate"), "{err}");
}
