//! Client-side TLS through OpenSSL: the one maintained stack that still speaks TLS 1.0/1.1.
//! Legacy versions are switched on per listener, never by default.

use std::sync::Arc;

use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod, SslOptions, SslVersion};
use wire::TlsVersion;

use crate::error::SetupError;
use crate::settings::ListenerSettings;

/// Suites for listeners that accept TLS 1.0/1.1. OpenSSL 3 offers the legacy versions only at
/// security level 0; the list keeps the RSA-key-exchange AES-CBC suites old printers offer.
const LEGACY_CIPHERS: &str =
    "ECDHE+AESGCM:ECDHE+CHACHA20:DEFAULT:AES128-SHA:AES256-SHA:@SECLEVEL=0";

/// Builds the OpenSSL acceptor for a TLS listener.
pub fn acceptor_for(listener: &ListenerSettings) -> Result<Arc<SslAcceptor>, SetupError> {
    let key = |field: &str| format!("listener[{}].{field}", listener.name);
    let tls_err = |field: &str, what: &str, e: openssl::error::ErrorStack| {
        SetupError::new(key(field), format!("{what}: {e}"))
    };

    if listener.min_tls < TlsVersion::Tls10 {
        return Err(SetupError::new(
            key("min_tls"),
            "SSLv3 is broken and never offered; use 1.0 or later",
        ));
    }
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .map_err(|e| tls_err("min_tls", "cannot create an OpenSSL context", e))?;
    if listener.min_tls < TlsVersion::Tls12 {
        // The v5 profile turns TLS 1.0/1.1 off through options and offers AEAD suites only;
        // undo both on this listener alone. TLS 1.2 and 1.3 clients still get the modern
        // suites first.
        builder.clear_options(SslOptions::NO_TLSV1 | SslOptions::NO_TLSV1_1);
        builder.set_security_level(0);
        builder
            .set_cipher_list(LEGACY_CIPHERS)
            .map_err(|e| tls_err("min_tls", "OpenSSL refused the legacy cipher list", e))?;
    }
    builder
        .set_min_proto_version(Some(openssl_version(listener.min_tls)))
        .map_err(|e| tls_err("min_tls", "OpenSSL cannot use this minimum version", e))?;
    // The openssl crate's acceptor profiles already set SSL_MODE_RELEASE_BUFFERS, so idle
    // sessions hold no TLS record buffers.

    let cert = listener
        .certificate
        .as_ref()
        .ok_or_else(|| SetupError::new(key("certificate"), "a TLS listener needs a certificate"))?;
    let private_key = listener
        .key
        .as_ref()
        .ok_or_else(|| SetupError::new(key("key"), "a TLS listener needs a private key"))?;
    builder.set_certificate_chain_file(cert).map_err(|e| {
        tls_err(
            "certificate",
            &format!("cannot load the PEM chain {}", cert.display()),
            e,
        )
    })?;
    builder
        .set_private_key_file(private_key, SslFiletype::PEM)
        .map_err(|e| {
            tls_err(
                "key",
                &format!("cannot load the PEM key {}", private_key.display()),
                e,
            )
        })?;
    builder
        .check_private_key()
        .map_err(|e| tls_err("key", "the key does not match the certificate", e))?;
    Ok(Arc::new(builder.build()))
}

fn openssl_version(version: TlsVersion) -> SslVersion {
    match version {
        TlsVersion::Ssl3 | TlsVersion::Tls10 => SslVersion::TLS1,
        TlsVersion::Tls11 => SslVersion::TLS1_1,
        TlsVersion::Tls12 => SslVersion::TLS1_2,
        TlsVersion::Tls13 => SslVersion::TLS1_3,
    }
}
