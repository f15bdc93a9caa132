//! The JA4 TLS client fingerprint (FoxIO, BSD-3-Clause), as specified in
//! `technical_details/JA4.md` of the FoxIO ja4 repository (January 2026 revision).
//!
//! Only JA4 itself lives here: the other JA4+ methods (JA4S, JA4X, JA4H, ...) are under a
//! licence that does not allow our use.

use sha2::{Digest, Sha256};

use crate::{is_grease, ClientHello, Extension};

/// The JA4 fingerprint of a ClientHello received over TCP, e.g.
/// `t13d1516h2_8daaf6152771_e5627efa2ab1`.
///
/// GREASE values are ignored in cipher suites, extensions and supported_versions.
/// Signature algorithms are hashed as sent, as FoxIO's reference implementations do.
/// An SSLv2-format hello is fingerprinted from its version and TLS suites (no extensions).
pub fn ja4(hello: &ClientHello) -> String {
    let ciphers: Vec<u16> = hello
        .cipher_suites
        .iter()
        .copied()
        .filter(|&c| !is_grease(c))
        .collect();
    let extensions: Vec<u16> = hello
        .extensions
        .iter()
        .map(|e| e.kind)
        .filter(|&k| !is_grease(k))
        .collect();
    let sni = if hello.extension(Extension::SERVER_NAME).is_some() {
        'd'
    } else {
        'i'
    };
    let a = format!(
        "t{}{sni}{:02}{:02}{}",
        version_code(hello),
        ciphers.len().min(99),
        extensions.len().min(99),
        alpn_code(hello.alpn().first().map(Vec::as_slice)),
    );

    let mut sorted_ciphers = ciphers;
    sorted_ciphers.sort_unstable();
    let b = truncated_hash(&hex_list(&sorted_ciphers));

    // SNI and ALPN already show in part a; leaving them out keeps part c stable across
    // destinations and protocols.
    let mut hashed_extensions: Vec<u16> = extensions
        .into_iter()
        .filter(|&k| k != Extension::SERVER_NAME && k != Extension::ALPN)
        .collect();
    hashed_extensions.sort_unstable();
    let c = if hashed_extensions.is_empty() {
        truncated_hash("")
    } else {
        let mut input = hex_list(&hashed_extensions);
        let signature_algorithms = hello.signature_algorithms();
        if !signature_algorithms.is_empty() {
            input.push('_');
            input.push_str(&hex_list(&signature_algorithms));
        }
        truncated_hash(&input)
    };
    format!("{a}_{b}_{c}")
}

/// Two characters for the highest non-GREASE supported_versions entry, else the hello version.
fn version_code(hello: &ClientHello) -> &'static str {
    let version = hello
        .supported_versions()
        .into_iter()
        .filter(|&v| !is_grease(v))
        .max()
        .unwrap_or(hello.legacy_version);
    match version {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// First and last character of the first ALPN value; when either end is not an ASCII letter
/// or digit, the first and last character of the value's hex form instead.
fn alpn_code(first: Option<&[u8]>) -> String {
    let Some((&head, &tail)) = first.and_then(|v| v.first().zip(v.last())) else {
        return "00".to_string();
    };
    if head.is_ascii_alphanumeric() && tail.is_ascii_alphanumeric() {
        [char::from(head), char::from(tail)].iter().collect()
    } else {
        let hex = format!("{head:02x}{tail:02x}");
        [&hex[..1], &hex[3..]].concat()
    }
}

fn hex_list(values: &[u16]) -> String {
    values
        .iter()
        .map(|v| format!("{v:04x}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The first 12 hex digits of SHA-256; twelve zeros for an empty list, so "nothing
/// offered" stands out rather than hiding behind the hash of an empty string.
fn truncated_hash(input: &str) -> String {
    if input.is_empty() {
        return "000000000000".to_string();
    }
    let digest = Sha256::digest(input.as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
