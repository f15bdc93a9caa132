//! The server's certificate: taken from a TLS 1.0-1.2 probe's reply (sent in the clear) or,
//! for TLS 1.3-only servers, from a rustls handshake stopped once the chain arrives; then
//! verified with rustls and described with x509-parser.

mod facts;
mod fetch;
mod verify;

use serde::Serialize;

pub(crate) use fetch::fetch_tls13_chain;
pub(crate) use verify::ChainVerifier;
pub use verify::TrustError;

/// What the scan says about a certificate chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertificateReport {
    /// The leaf's subject, e.g. "CN=mail.example.com".
    pub subject: String,
    /// DNS names and IP addresses of the subjectAltName extension.
    pub subject_alt_names: Vec<String>,
    /// The leaf's issuer.
    pub issuer: String,
    /// Start of validity, RFC 3339.
    pub not_before: String,
    /// End of validity, RFC 3339.
    pub not_after: String,
    /// Days from not_before to not_after.
    pub lifetime_days: i64,
    /// "RSA", "EC P-256", "Ed25519", ...
    pub key_type: String,
    /// Key size in bits, where the type has one.
    pub key_bits: Option<u32>,
    /// E.g. "sha256WithRSAEncryption".
    pub signature_algorithm: String,
    /// Certificates the server sent, leaf included.
    pub chain_length: usize,
    /// Whether the chain verifies against the trust anchors for the target's host name.
    pub verified: bool,
    /// Why it does not, in rustls's words.
    pub verify_error: Option<String>,
    /// Whether the leaf names the target host; `None` when that could not be checked.
    pub host_name_matches: Option<bool>,
    /// Which handshake gave the chain, e.g. "tls1.2".
    pub fetched_with: String,
}

/// A chain that cannot be described.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CertificateError {
    /// The server sent an empty Certificate message.
    #[error("the server sent no certificate")]
    Empty,
    /// The leaf is not valid DER X.509.
    #[error("the server's certificate cannot be parsed: {0}")]
    Unparsable(String),
    /// The TLS 1.3 handshake ended before the certificate.
    #[error("no certificate from the TLS 1.3 handshake: {0}")]
    Handshake(String),
}

/// Describes and verifies `chain` (DER, leaf first) for `host`.
pub(crate) fn inspect(
    chain: &[Vec<u8>],
    host: &str,
    verifier: &ChainVerifier,
    fetched_with: &str,
) -> Result<CertificateReport, CertificateError> {
    let leaf = chain.first().ok_or(CertificateError::Empty)?;
    let facts = facts::Facts::read(leaf)?;
    let verification = verifier.verify(chain, host);
    Ok(CertificateReport {
        subject: facts.subject,
        subject_alt_names: facts.subject_alt_names,
        issuer: facts.issuer,
        not_before: facts.not_before,
        not_after: facts.not_after,
        lifetime_days: facts.lifetime_days,
        key_type: facts.key_type,
        key_bits: facts.key_bits,
        signature_algorithm: facts.signature_algorithm,
        chain_length: chain.len(),
        verified: verification.error.is_none(),
        verify_error: verification.error,
        host_name_matches: verification.host_name_matches,
        fetched_with: fetched_with.to_string(),
    })
}
