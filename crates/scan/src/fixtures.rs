//! Reports built by hand for the verdict and output tests.

use std::collections::BTreeMap;

use wire::TlsVersion;

use crate::certificate::CertificateReport;
use crate::report::{version_key, CipherList, ScanReport, Status};
use crate::target::{Protocol, TlsMode};
use crate::verdict::Verdict;

/// A STARTTLS IMAP report with `statuses` for SSLv3 ... TLS 1.3 and a good RSA certificate.
pub(crate) fn report(statuses: [Status; 5]) -> ScanReport {
    let mut versions = BTreeMap::new();
    let mut version_reasons = BTreeMap::new();
    for (v, s) in TlsVersion::ALL.into_iter().zip(statuses) {
        versions.insert(version_key(v).to_string(), s);
        let why = match s {
            Status::Accepted => "negotiated TLS_RSA_WITH_AES_128_CBC_SHA",
            Status::Rejected => "fatal alert protocol_version (70)",
            Status::Unknown => "no answer to the hello within 1.0 s",
        };
        version_reasons.insert(version_key(v).to_string(), why.to_string());
    }
    ScanReport {
        target: "imap://mail.example.com:143".into(),
        address: Some("192.0.2.1:143".into()),
        protocol: Protocol::Imap,
        tls_mode: TlsMode::Starttls,
        versions,
        version_reasons,
        ciphers: None,
        certificate: Some(CertificateReport {
            subject: "CN=mail.example.com".into(),
            subject_alt_names: vec!["mail.example.com".into()],
            issuer: "CN=Example CA".into(),
            not_before: "2026-01-01T00:00:00Z".into(),
            not_after: "2026-12-01T00:00:00Z".into(),
            lifetime_days: 334,
            key_type: "RSA".into(),
            key_bits: Some(2048),
            signature_algorithm: "sha256WithRSAEncryption".into(),
            chain_length: 2,
            verified: true,
            verify_error: None,
            host_name_matches: Some(true),
            fetched_with: "tls1.2".into(),
        }),
        starttls: None,
        plaintext_auth: None,
        verdict: Verdict {
            preset: "min-tls12".into(),
            pass: true,
            reasons: Vec::new(),
        },
        error: None,
        notes: Vec::new(),
        duration_ms: 12,
    }
}

/// `codes` as the accepted suites of `version`.
pub(crate) fn with_suites(
    mut report: ScanReport,
    version: TlsVersion,
    codes: &[u16],
) -> ScanReport {
    let list = CipherList {
        suites: codes
            .iter()
            .map(|&c| crate::report::suite_label(c))
            .collect(),
        codes: codes.to_vec(),
        server_preference: Some(true),
        incomplete: None,
    };
    report
        .ciphers
        .get_or_insert_with(BTreeMap::new)
        .insert(version_key(version).to_string(), list);
    report
}
