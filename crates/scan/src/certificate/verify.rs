//! Chain and host name verification with rustls: the platform verifier (system roots plus
//! `--ca-file`, from the `trust` crate), and webpki for the name alone so that a bad chain still says whether the
//! name fits.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
pub use trust::TrustError;

/// Verifies chains; built once per scan.
#[derive(Debug)]
pub(crate) struct ChainVerifier {
    verifier: Arc<rustls_platform_verifier::Verifier>,
}

pub(super) struct Verification {
    pub(super) error: Option<String>,
    pub(super) host_name_matches: Option<bool>,
}

impl ChainVerifier {
    /// A verifier trusting the system roots plus the certificates in `ca_file`.
    pub(crate) fn new(ca_file: Option<&Path>) -> Result<ChainVerifier, TrustError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = trust::verifier(ca_file, provider)?;
        Ok(ChainVerifier {
            verifier: Arc::new(verifier),
        })
    }

    pub(super) fn verify(&self, chain: &[Vec<u8>], host: &str) -> Verification {
        let Ok(name) = ServerName::try_from(host.to_string()) else {
            return Verification {
                error: Some(format!("'{host}' is not a host name or IP address")),
                host_name_matches: None,
            };
        };
        let leaf = CertificateDer::from(chain[0].as_slice());
        let intermediates: Vec<CertificateDer> = chain[1..]
            .iter()
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        let error = self
            .verifier
            .verify_server_cert(&leaf, &intermediates, &name, &[], UnixTime::now())
            .err()
            .map(|e| e.to_string());
        let host_name_matches = webpki::EndEntityCert::try_from(&leaf)
            .ok()
            .map(|cert| cert.verify_is_valid_for_subject_name(&name).is_ok());
        Verification {
            error,
            host_name_matches,
        }
    }
}
