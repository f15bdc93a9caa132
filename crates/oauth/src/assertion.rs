//! The signed JWT client assertion (RFC 7523, `private_key_jwt`) an app sends instead of a
//! client secret when it holds a certificate. Microsoft Entra ID finds the certificate by the
//! `x5t#S256` header: the base64url SHA-256 of its DER form.

use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::SetupError;

/// How long an assertion is valid: long enough for one request, short enough that a captured
/// one is soon useless.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(300);

/// The form value of `client_assertion_type` for a JWT assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A certificate and its private key, ready to sign assertions.
pub struct ClientCertificate {
    thumbprint_s256: String,
    key: EncodingKey,
}

// The key must never show; the thumbprint is public (it is sent in every assertion).
impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.thumbprint_s256)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: &'a str,
    nbf: u64,
    iat: u64,
    exp: u64,
}

impl ClientCertificate {
    /// Reads the PEM certificate (its first block) and PEM RSA private key.
    pub fn load(certificate: &Path, private_key: &Path) -> Result<Self, SetupError> {
        let der = CertificateDer::from_pem_file(certificate).map_err(|e| {
            SetupError::new(
                "certificate",
                format!(
                    "cannot read a PEM certificate from {}: {e}",
                    certificate.display()
                ),
            )
        })?;
        let pem = std::fs::read(private_key).map_err(|e| {
            SetupError::new(
                "private_key",
                format!("cannot read {}: {e}", private_key.display()),
            )
        })?;
        let key = EncodingKey::from_rsa_pem(&pem).map_err(|e| {
            SetupError::new(
                "private_key",
                format!(
                    "{} is not a PEM RSA private key: {e}",
                    private_key.display()
                ),
            )
        })?;
        Ok(Self::from_parts(&der, key))
    }

    fn from_parts(certificate_der: &[u8], key: EncodingKey) -> Self {
        ClientCertificate {
            thumbprint_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(certificate_der)),
            key,
        }
    }

    /// The `x5t#S256` header value.
    pub fn thumbprint_s256(&self) -> &str {
        &self.thumbprint_s256
    }

    /// A signed assertion for `client_id` at `token_url`, valid from `now` for five minutes.
    /// `jti` must be unique per assertion (the endpoint may refuse a replay).
    pub fn assertion(
        &self,
        client_id: &str,
        token_url: &str,
        now: SystemTime,
        jti: &str,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now_secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut header = Header::new(Algorithm::RS256);
        header.x5t_s256 = Some(self.thumbprint_s256.clone());
        let claims = AssertionClaims {
            aud: token_url,
            iss: client_id,
            sub: client_id,
            jti,
            nbf: now_secs,
            iat: now_secs,
            exp: now_secs + ASSERTION_LIFETIME.as_secs(),
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};
    use std::process::Command;

    /// A throwaway RSA certificate made by the openssl tool (as an admin would).
    fn certificate(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
        std::fs::create_dir_all(dir).unwrap();
        let (cert, key) = (dir.join("app.pem"), dir.join("app.key"));
        let status = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=mailtls-test-app", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(status.status.success());
        (cert, key)
    }

    #[test]
    fn the_assertion_is_rs256_with_the_certificate_thumbprint_and_verifies_with_its_key() {
        let dir = std::env::temp_dir().join(format!("mailtls-assertion-{}", std::process::id()));
        let (cert, key) = certificate(&dir);
        let signer = ClientCertificate::load(&cert, &key).unwrap();
        let der = CertificateDer::from_pem_file(&cert).unwrap();
        assert_eq!(
            signer.thumbprint_s256(),
            URL_SAFE_NO_PAD.encode(Sha256::digest(&der))
        );
        let now = SystemTime::now();
        let url = "https://login.example/tenant/oauth2/v2.0/token";
        let jwt = signer.assertion("app-id", url, now, "jti-1").unwrap();

        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.x5t_s256.as_deref(), Some(signer.thumbprint_s256()));
        let public = Command::new("openssl")
            .args(["x509", "-pubkey", "-noout", "-in"])
            .arg(&cert)
            .output()
            .unwrap()
            .stdout;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[url]);
        validation.set_issuer(&["app-id"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &jwt,
            &DecodingKey::from_rsa_pem(&public).unwrap(),
            &validation,
        )
        .unwrap();
        assert_eq!(data.claims["sub"], "app-id");
        assert_eq!(data.claims["jti"], "jti-1");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_key_file_is_a_setup_error_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("mailtls-assertion-m-{}", std::process::id()));
        let (cert, _) = certificate(&dir);
        let err = ClientCertificate::load(&cert, &dir.join("absent.key")).unwrap_err();
        assert!(err.to_string().contains("absent.key"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
