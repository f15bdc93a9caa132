//! The rules of each preset.

use wire::{suite_name, TlsVersion};

use super::Preset;
use crate::report::{version_key, ScanReport, Status};
use proto::starttls::quote;

const LEGACY: [TlsVersion; 3] = [TlsVersion::Ssl3, TlsVersion::Tls10, TlsVersion::Tls11];

/// Mozilla intermediate v5.7, TLS 1.2: ECDHE/DHE with AES-GCM or ChaCha20-Poly1305.
const MOZILLA_TLS12: [u16; 9] = [
    0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0x009E, 0x009F, 0xCCAA,
];
/// Mozilla v5.7, TLS 1.3: the three mandatory AEAD suites.
const MOZILLA_TLS13: [u16; 3] = [0x1301, 0x1302, 0x1303];
/// SP 800-52r2 3.3.1.2, TLS 1.3: AES-GCM and AES-CCM only.
const NIST_TLS13: [u16; 4] = [0x1301, 0x1302, 0x1304, 0x1305];
/// Mozilla and NIST both cap certificate lifetimes at about a year (Mozilla: 366 days).
const MAX_LIFETIME_DAYS: i64 = 366;

pub(super) fn check(preset: Preset, report: &ScanReport, reasons: &mut Vec<String>) {
    match preset {
        Preset::MinTls12 => {
            refuse_versions(report, &LEGACY, "below TLS 1.2", reasons);
            require_any(report, &[TlsVersion::Tls12, TlsVersion::Tls13], reasons);
        }
        Preset::MozillaIntermediate => {
            refuse_versions(
                report,
                &LEGACY,
                "Mozilla intermediate allows TLS 1.2 and 1.3 only",
                reasons,
            );
            require_any(report, &[TlsVersion::Tls12, TlsVersion::Tls13], reasons);
            allow_suites(
                report,
                TlsVersion::Tls12,
                &|c| MOZILLA_TLS12.contains(&c),
                "Mozilla intermediate",
                reasons,
            );
            allow_suites(
                report,
                TlsVersion::Tls13,
                &|c| MOZILLA_TLS13.contains(&c),
                "Mozilla intermediate",
                reasons,
            );
            certificate(report, &rsa2048_or_p256_p384, RSA2048_OR_P256_P384, reasons);
        }
        Preset::MozillaModern => {
            refuse_versions(
                report,
                &[
                    TlsVersion::Ssl3,
                    TlsVersion::Tls10,
                    TlsVersion::Tls11,
                    TlsVersion::Tls12,
                ],
                "Mozilla modern allows TLS 1.3 only",
                reasons,
            );
            require_any(report, &[TlsVersion::Tls13], reasons);
            allow_suites(
                report,
                TlsVersion::Tls13,
                &|c| MOZILLA_TLS13.contains(&c),
                "Mozilla modern",
                reasons,
            );
            certificate(
                report,
                &|kind, _| kind == "EC P-256",
                "ECDSA P-256",
                reasons,
            );
        }
        Preset::Nist80052r2 => {
            refuse_versions(
                report,
                &LEGACY,
                "SP 800-52r2 forbids versions below TLS 1.2",
                reasons,
            );
            for required in [TlsVersion::Tls12, TlsVersion::Tls13] {
                if report.status(required) != Status::Accepted {
                    reasons.push(format!(
                        "{required} is not accepted; SP 800-52r2 requires it"
                    ));
                }
            }
            allow_suites(
                report,
                TlsVersion::Tls12,
                &nist_tls12,
                "SP 800-52r2",
                reasons,
            );
            allow_suites(
                report,
                TlsVersion::Tls13,
                &|c| NIST_TLS13.contains(&c),
                "SP 800-52r2",
                reasons,
            );
            certificate(report, &rsa2048_or_p256_p384, RSA2048_OR_P256_P384, reasons);
        }
    }
}

/// Each version in `versions` must be refused; an unknown result cannot prove it.
fn refuse_versions(
    report: &ScanReport,
    versions: &[TlsVersion],
    why: &str,
    reasons: &mut Vec<String>,
) {
    for &version in versions {
        match report.status(version) {
            Status::Rejected => {}
            Status::Accepted => reasons.push(format!("{version} accepted ({why})")),
            Status::Unknown => reasons.push(format!(
                "{version} could not be tested: {}",
                report.reason(version).unwrap_or("no result")
            )),
        }
    }
}

fn require_any(report: &ScanReport, versions: &[TlsVersion], reasons: &mut Vec<String>) {
    if !versions
        .iter()
        .any(|&v| report.status(v) == Status::Accepted)
    {
        let names: Vec<String> = versions.iter().map(ToString::to_string).collect();
        reasons.push(format!("none of {} is accepted", names.join(", ")));
    }
}

/// Every accepted suite of `version` must pass `allowed`.
fn allow_suites(
    report: &ScanReport,
    version: TlsVersion,
    allowed: &dyn Fn(u16) -> bool,
    preset: &str,
    reasons: &mut Vec<String>,
) {
    if report.status(version) != Status::Accepted {
        return;
    }
    let Some(list) = report
        .ciphers
        .as_ref()
        .and_then(|c| c.get(version_key(version)))
    else {
        reasons.push(format!("{version} suites were not enumerated"));
        return;
    };
    let bad: Vec<&str> = list
        .codes
        .iter()
        .zip(&list.suites)
        .filter(|(&code, _)| !allowed(code))
        .map(|(_, name)| name.as_str())
        .collect();
    if !bad.is_empty() {
        reasons.push(format!(
            "{version} suites not allowed by {preset}: {}",
            bad.join(", ")
        ));
    }
}

fn certificate(
    report: &ScanReport,
    key_ok: &dyn Fn(&str, Option<u32>) -> bool,
    key_rule: &str,
    reasons: &mut Vec<String>,
) {
    let Some(cert) = &report.certificate else {
        reasons.push("no certificate could be read".into());
        return;
    };
    if let Some(error) = &cert.verify_error {
        // The verifier's error can repeat names from the certificate: escaped for the table.
        reasons.push(format!("certificate not trusted: {}", quote(error)));
    }
    if !key_ok(&cert.key_type, cert.key_bits) {
        let bits = cert.key_bits.map(|b| format!(" {b}")).unwrap_or_default();
        reasons.push(format!(
            "certificate key {}{bits} is not {key_rule}",
            cert.key_type
        ));
    }
    if cert.lifetime_days > MAX_LIFETIME_DAYS {
        reasons.push(format!(
            "certificate lifetime {} days exceeds {MAX_LIFETIME_DAYS}",
            cert.lifetime_days
        ));
    }
}

/// The key rule Mozilla intermediate and SP 800-52r2 share, and its wording.
const RSA2048_OR_P256_P384: &str = "RSA 2048+ or ECDSA P-256/P-384";

fn rsa2048_or_p256_p384(kind: &str, bits: Option<u32>) -> bool {
    rsa_at_least(kind, bits, 2048) || kind == "EC P-256" || kind == "EC P-384"
}

fn rsa_at_least(kind: &str, bits: Option<u32>, min: u32) -> bool {
    kind == "RSA" && bits.is_some_and(|b| b >= min)
}

/// SP 800-52r2 3.3.1.1 (approximated by name): ephemeral ECDHE/DHE key exchange with AES in
/// GCM, CCM or CBC mode and a SHA-1/SHA-2 MAC.
fn nist_tls12(code: u16) -> bool {
    let Some(name) = suite_name(code) else {
        return false;
    };
    let exchange = [
        "TLS_ECDHE_ECDSA_",
        "TLS_ECDHE_RSA_",
        "TLS_DHE_RSA_",
        "TLS_DHE_DSS_",
    ]
    .iter()
    .any(|p| name.starts_with(p));
    let cipher = name.contains("_WITH_AES_128_") || name.contains("_WITH_AES_256_");
    exchange && cipher
}
