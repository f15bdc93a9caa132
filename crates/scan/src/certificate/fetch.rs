//! TLS 1.3 encrypts the Certificate message, so a hand-built hello cannot read it: a rustls
//! handshake is run instead, and stopped by its verifier as soon as the chain is recorded.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::time::timeout_at;
use tokio_rustls::TlsConnector;

use super::CertificateError;
use crate::connect::Ready;

/// Records the chain and refuses it, which ends the handshake before any key is confirmed.
#[derive(Debug)]
struct Recorder {
    chain: Mutex<Option<Vec<Vec<u8>>>>,
    provider: Arc<CryptoProvider>,
}

const STOPPED: &str = "chain recorded; handshake stopped on purpose";

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.to_vec())
            .collect();
        *self.chain.lock().unwrap_or_else(|e| e.into_inner()) = Some(chain);
        Err(rustls::Error::General(STOPPED.into()))
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(STOPPED.into()))
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(STOPPED.into()))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Runs a TLS 1.3 handshake on `ready` (after any STARTTLS) until the server's chain
/// arrives, and returns it (DER, leaf first).
pub(crate) async fn fetch_tls13_chain(
    ready: Ready,
    host: &str,
) -> Result<Vec<Vec<u8>>, CertificateError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let recorder = Arc::new(Recorder {
        chain: Mutex::new(None),
        provider: provider.clone(),
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| CertificateError::Handshake(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| CertificateError::Handshake(format!("'{host}': {e}")))?;
    let connector = TlsConnector::from(Arc::new(config));
    let outcome = timeout_at(ready.deadline, connector.connect(name, ready.stream)).await;
    if let Some(chain) = recorder
        .chain
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        return Ok(chain);
    }
    Err(CertificateError::Handshake(match outcome {
        Err(_) => "no certificate before the time limit".into(),
        Ok(Err(e)) => e.to_string(),
        Ok(Ok(_)) => "the handshake ended without a certificate".into(),
    }))
}
