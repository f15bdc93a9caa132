//! What mailtls trusts when it verifies a mail server's certificate: the platform's roots
//! plus the certificates of an optional CA file (a private CA, a lab CA). The gateway's
//! upstream leg and the scanner build their verifiers here, so both trust the same things.

#![warn(missing_docs)]

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls_platform_verifier::Verifier;

/// A CA file that cannot be used, or a verifier that cannot be built, with what to do.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The file cannot be read or holds a bad PEM block.
    #[error("cannot read CA file {path}: {reason}; give a readable PEM file of CA certificates")]
    Unreadable {
        /// The file.
        path: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The file holds no certificate.
    #[error("CA file {0} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)")]
    Empty(String),
    /// rustls refused to build the verifier.
    #[error("cannot build the certificate verifier: {0}")]
    Verifier(String),
}

/// A verifier of chains and host names against the system roots plus `ca_file`.
pub fn verifier(
    ca_file: Option<&Path>,
    provider: Arc<CryptoProvider>,
) -> Result<Verifier, TrustError> {
    let extra = match ca_file {
        Some(path) => ca_certificates(path)?,
        None => Vec::new(),
    };
    Verifier::new_with_extra_roots(extra, provider).map_err(|e| TrustError::Verifier(e.to_string()))
}

/// Every certificate in a PEM file; an empty file is an error, as it is surely a mistake.
fn ca_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let unreadable = |reason: String| TrustError::Unreadable {
        path: path.display().to_string(),
        reason,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| unreadable(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(e.to_string()))?;
    if certificates.is_empty() {
        return Err(TrustError::Empty(path.display().to_string()));
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }

    fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("mailtls-trust-{name}-{}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_system_roots_alone_make_a_verifier() {
        assert!(verifier(None, provider()).is_ok());
    }

    #[test]
    fn a_missing_file_is_unreadable() {
        let missing = Path::new("/nonexistent/mailtls-ca.pem");
        let err = verifier(Some(missing), provider()).unwrap_err();
        assert!(matches!(err, TrustError::Unreadable { .. }), "{err}");
        assert!(err.to_string().contains("mailtls-ca.pem"));
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let path = temp_file("empty", "no certificates here\n");
        let err = verifier(Some(&path), provider()).unwrap_err();
        let _ = std::fs::remove_file(&path);
        assert!(matches!(err, TrustError::Empty(_)), "{err}");
    }
}
