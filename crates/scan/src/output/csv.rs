//! CSV: one row per target and address, the columns a spreadsheet needs.

use wire::TlsVersion;

use crate::report::{version_key, ScanReport};
use proto::starttls::quote;

const HEADER: &str = "target,address,protocol,tls_mode,ssl3,tls1.0,tls1.1,tls1.2,tls1.3,\
starttls_advertised,plaintext_auth,cert_subject,cert_not_after,cert_verified,ciphers,\
preset,pass,reasons,error";

/// The reports as CSV (RFC 4180) with a header row.
pub fn csv(reports: &[ScanReport]) -> String {
    let mut out = String::from(HEADER);
    out.push_str("\r\n");
    for r in reports {
        let mut row: Vec<String> = vec![
            r.target.clone(),
            r.address.clone().unwrap_or_default(),
            r.protocol.to_string(),
            r.tls_mode.to_string(),
        ];
        row.extend(TlsVersion::ALL.map(|v| r.status(v).as_str().to_string()));
        let flag = |b: Option<bool>| b.map(|b| b.to_string()).unwrap_or_default();
        row.push(flag(r.starttls.as_ref().and_then(|s| s.advertised)));
        row.push(flag(r.plaintext_auth.as_ref().map(|p| p.offered)));
        let cert = r.certificate.as_ref();
        // The server wrote the subject; CSV often lands on a terminal too.
        row.push(cert.map(|c| quote(&c.subject)).unwrap_or_default());
        row.push(cert.map(|c| c.not_after.clone()).unwrap_or_default());
        row.push(flag(cert.map(|c| c.verified)));
        // "tls1.2:A|B;tls1.0:C" keeps every suite in one cell.
        row.push(
            r.ciphers
                .as_ref()
                .map(|all| {
                    TlsVersion::ALL
                        .iter()
                        .filter_map(|v| {
                            all.get(version_key(*v))
                                .map(|l| format!("{}:{}", version_key(*v), l.suites.join("|")))
                        })
                        .collect::<Vec<_>>()
                        .join(";")
                })
                .unwrap_or_default(),
        );
        row.push(r.verdict.preset.clone());
        row.push(r.verdict.pass.to_string());
        row.push(r.verdict.reasons.join("; "));
        row.push(r.error.clone().unwrap_or_default());
        let cells: Vec<String> = row.iter().map(|c| csv_field(c)).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

/// A CSV field, quoted when it holds a comma, quote or line break. A leading =, +, -, @, tab
/// or carriage return is prefixed with ' so spreadsheets do not run a server's or client's
/// words as a formula (OWASP's list).
pub fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}
