//! The result of scanning one address of one target: what `--json` prints, and what the
//! table and CSV are made from.

use std::collections::BTreeMap;

use serde::Serialize;
use wire::TlsVersion;

use crate::certificate::CertificateReport;
use crate::target::{Protocol, TlsMode};
use crate::verdict::Verdict;
use proto::starttls::PlaintextAuth;

/// Whether a server accepts one protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It answered a hello offering only this version with a ServerHello at this version.
    Accepted,
    /// It refused: an alert, a close, or a lower version.
    Rejected,
    /// No conclusion: timeout, rate limit, network error, a broken answer.
    Unknown,
}

impl Status {
    /// The word for the status, as in the JSON: `accepted`, `rejected`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Accepted => "accepted",
            Status::Rejected => "rejected",
            Status::Unknown => "unknown",
        }
    }
}

/// One target at one address.
#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    /// The target in canonical form, e.g. `imap://mail.example.com:143`.
    pub target: String,
    /// The address scanned; `None` when the name did not resolve.
    pub address: Option<String>,
    /// The mail protocol.
    pub protocol: Protocol,
    /// Implicit TLS or STARTTLS.
    pub tls_mode: TlsMode,
    /// `ssl3`, `tls1.0`, `tls1.1`, `tls1.2`, `tls1.3` to their status.
    pub versions: BTreeMap<String, Status>,
    /// Why each version got its status: the alert, the downgrade, the timeout.
    pub version_reasons: BTreeMap<String, String>,
    /// Accepted suites per accepted version, when enumerated (`--ciphers`).
    pub ciphers: Option<BTreeMap<String, CipherList>>,
    /// The server's certificate, when one was fetched.
    pub certificate: Option<CertificateReport>,
    /// The plaintext part, for STARTTLS targets.
    pub starttls: Option<StartTlsReport>,
    /// Whether a client may authenticate before TLS (STARTTLS targets).
    pub plaintext_auth: Option<PlaintextAuth>,
    /// The policy verdict.
    pub verdict: Verdict,
    /// Why the address could not be scanned at all.
    pub error: Option<String>,
    /// Problems in single steps that did not stop the scan.
    pub notes: Vec<String>,
    /// Wall time spent on this address.
    pub duration_ms: u64,
}

/// The suites one version accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CipherList {
    /// IANA names (hex code for unnamed ones), in the server's order of preference when
    /// it has one, else in the order found.
    pub suites: Vec<String>,
    /// The same suites as codes, for the verdict rules.
    #[serde(skip)]
    pub codes: Vec<u16>,
    /// Whether the server picks by its own order; `None` with fewer than two suites or
    /// when it could not be told.
    pub server_preference: Option<bool>,
    /// Set when the enumeration stopped early (timeout, error): the list may be short.
    pub incomplete: Option<String>,
}

/// The STARTTLS dialogue as the server played it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StartTlsReport {
    /// Whether STARTTLS (POP3: STLS) was advertised; `None` when capabilities were not listed.
    pub advertised: Option<bool>,
    /// Whether the server said go-ahead to STARTTLS.
    pub accepted: bool,
    /// The server's greeting.
    pub greeting: Option<String>,
    /// Capabilities listed before TLS.
    pub capabilities: Option<Vec<String>>,
    /// What went wrong, in the server's words where possible.
    pub error: Option<String>,
}

/// The JSON key of a version: `ssl3`, `tls1.0`, ... `tls1.3`.
pub(crate) fn version_key(version: TlsVersion) -> &'static str {
    match version {
        TlsVersion::Ssl3 => "ssl3",
        TlsVersion::Tls10 => "tls1.0",
        TlsVersion::Tls11 => "tls1.1",
        TlsVersion::Tls12 => "tls1.2",
        TlsVersion::Tls13 => "tls1.3",
    }
}

impl ScanReport {
    /// The status of `version` (unknown when it was not probed).
    pub fn status(&self, version: TlsVersion) -> Status {
        self.versions
            .get(version_key(version))
            .copied()
            .unwrap_or(Status::Unknown)
    }

    /// Whether any version got an answer: false when nothing could be learnt.
    pub fn concluded(&self) -> bool {
        self.versions.values().any(|s| *s != Status::Unknown)
    }

    /// Why `version` got its status.
    pub fn reason(&self, version: TlsVersion) -> Option<&str> {
        self.version_reasons
            .get(version_key(version))
            .map(String::as_str)
    }
}

/// The IANA name of a suite, or its hex code.
pub(crate) fn suite_label(code: u16) -> String {
    wire::suite_name(code).map_or_else(|| format!("0x{code:04X}"), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_match_the_json() {
        for status in [Status::Accepted, Status::Rejected, Status::Unknown] {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, status.as_str());
        }
    }
}
