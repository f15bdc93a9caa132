//! The JA3 TLS client fingerprint (Salesforce, BSD-3-Clause), for tools that still match on it.
//!
//! JA3 is `SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats`: decimal
//! values, each list joined with `-` in the client's order, GREASE values left out; the
//! fingerprint is the MD5 of that string in lowercase hex.

use md5::{Digest, Md5};

use crate::{is_grease, ClientHello};

/// A ClientHello's JA3 string and its MD5 hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ja3 {
    /// The fingerprint's input, e.g. `769,49162-49172-53,0-11-10-35-22-23,29-23-30,0-1-2`.
    pub text: String,
    /// MD5 of `text`, 32 lowercase hex digits: what JA3 databases list.
    pub hash: String,
}

/// The JA3 fingerprint of a ClientHello. The version field is the hello's own version
/// (`legacy_version`), not supported_versions, as the JA3 reference implementation reads it.
pub fn ja3(hello: &ClientHello) -> Ja3 {
    let extensions: Vec<u16> = hello.extensions.iter().map(|e| e.kind).collect();
    let point_formats: Vec<u16> = hello
        .ec_point_formats()
        .into_iter()
        .map(u16::from)
        .collect();
    let text = [
        hello.legacy_version.to_string(),
        decimal_list(&hello.cipher_suites),
        decimal_list(&extensions),
        decimal_list(&hello.supported_groups()),
        decimal_list(&point_formats),
    ]
    .join(",");
    let hash = Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ja3 { text, hash }
}

/// Non-GREASE values in decimal, joined with `-`; empty for an empty list.
fn decimal_list(values: &[u16]) -> String {
    values
        .iter()
        .filter(|&&v| !is_grease(v))
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests;
