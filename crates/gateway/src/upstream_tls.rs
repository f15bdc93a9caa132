//! Upstream-side TLS through rustls: TLS 1.2 and 1.3 only, chain and host name always verified
//! against the system roots plus the upstream's `ca_file`. rustls cannot speak below TLS 1.2,
//! so no configuration can downgrade this leg.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{CipherSuite, ClientConfig};
use tokio_rustls::TlsConnector;

use crate::error::SetupError;
use crate::settings::UpstreamSettings;

const AES_128_GCM: [CipherSuite; 3] = [
    CipherSuite::TLS13_AES_128_GCM_SHA256,
    CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
];

/// A verified TLS connector for one upstream, with the name its certificate must carry.
#[derive(Clone)]
pub struct UpstreamTls {
    pub connector: TlsConnector,
    pub server_name: ServerName<'static>,
}

/// Builds the rustls connector for an upstream.
pub fn connector_for(upstream: &UpstreamSettings) -> Result<UpstreamTls, SetupError> {
    let key = |field: &str| format!("upstream[{}].{field}", upstream.name);
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    // Offer AES-128-GCM first (servers follow the client's order by default): as safe as the
    // link needs, and cheaper per byte than AES-256 for both the gateway and the server on a
    // bulk mailbox fetch.
    provider
        .cipher_suites
        .sort_by_key(|suite| !AES_128_GCM.contains(&suite.suite()));
    let provider = Arc::new(provider);
    let verifier = trust::verifier(upstream.ca_file.as_deref(), provider.clone())
        .map_err(|e| SetupError::new(key("ca_file"), e.to_string()))?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| SetupError::new(key("tls"), format!("rustls refused TLS 1.2/1.3: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let server_name = ServerName::try_from(upstream.server_name.clone()).map_err(|e| {
        SetupError::new(
            key("server_name"),
            format!(
                "'{}' is not a host name or IP address: {e}",
                upstream.server_name
            ),
        )
    })?;
    Ok(UpstreamTls {
        connector: TlsConnector::from(Arc::new(config)),
        server_name,
    })
}
