//! Fields of a leaf certificate, read with x509-parser (a parser, not a validator).

use time::format_description::well_known::Rfc3339;
use x509_parser::extensions::GeneralName;
use x509_parser::objects::{oid2sn, oid_registry};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use super::CertificateError;

pub(super) struct Facts {
    pub(super) subject: String,
    pub(super) subject_alt_names: Vec<String>,
    pub(super) issuer: String,
    pub(super) not_before: String,
    pub(super) not_after: String,
    pub(super) lifetime_days: i64,
    pub(super) key_type: String,
    pub(super) key_bits: Option<u32>,
    pub(super) signature_algorithm: String,
}

impl Facts {
    pub(super) fn read(der: &[u8]) -> Result<Facts, CertificateError> {
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|e| CertificateError::Unparsable(e.to_string()))?;
        let validity = cert.validity();
        let subject_alt_names = match cert.subject_alternative_name() {
            Ok(Some(ext)) => ext.value.general_names.iter().filter_map(name).collect(),
            _ => Vec::new(),
        };
        let (key_type, key_bits) = key(&cert);
        let signature_algorithm = oid2sn(&cert.signature_algorithm.algorithm, oid_registry())
            .map(str::to_string)
            .unwrap_or_else(|_| cert.signature_algorithm.algorithm.to_id_string());
        Ok(Facts {
            subject: cert.subject().to_string(),
            subject_alt_names,
            issuer: cert.issuer().to_string(),
            not_before: rfc3339(validity.not_before.to_datetime()),
            not_after: rfc3339(validity.not_after.to_datetime()),
            lifetime_days: (validity.not_after.timestamp() - validity.not_before.timestamp())
                / 86_400,
            key_type,
            key_bits,
            signature_algorithm,
        })
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn name(general: &GeneralName) -> Option<String> {
    match general {
        GeneralName::DNSName(dns) => Some(dns.to_string()),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*bytes).ok()?).to_string()),
            16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).ok()?).to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// The key's type (with the curve for EC keys) and size.
fn key(cert: &X509Certificate) -> (String, Option<u32>) {
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => ("RSA".into(), Some(rsa.key_size() as u32)),
        Ok(PublicKey::EC(point)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| match oid.to_id_string().as_str() {
                    "1.2.840.10045.3.1.7" => "P-256".to_string(),
                    "1.3.132.0.34" => "P-384".to_string(),
                    "1.3.132.0.35" => "P-521".to_string(),
                    other => other.to_string(),
                })
                .unwrap_or_else(|| "unknown curve".into());
            (format!("EC {curve}"), Some(point.key_size() as u32))
        }
        Ok(PublicKey::DSA(_)) => ("DSA".into(), None),
        _ => match spki.algorithm.algorithm.to_id_string().as_str() {
            "1.3.101.112" => ("Ed25519".into(), Some(256)),
            "1.3.101.113" => ("Ed448".into(), Some(456)),
            other => (other.to_string(), None),
        },
    }
}
