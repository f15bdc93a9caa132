//! Hand-built ClientHellos for version and cipher probes: maintained TLS stacks no longer
//! offer SSLv3 to TLS 1.1 on request, so the scanner writes the hello itself.
//!
//! The shape follows what testssl.sh and sslyze learned about real servers (see
//! `research/probing.md`): extensions only where a version knows them, curves whenever
//! ECDHE is offered, a padded length, and a non-empty last extension.

use sha2::{Digest, Sha256};

use crate::client_hello::CLIENT_HELLO;
use crate::record::HANDSHAKE;
use crate::{suite_name, Extension, TlsVersion};

/// Most cipher suites one probe offers: some load balancers answer illegal_parameter to more.
pub const MAX_PROBE_SUITES: usize = 128;

/// What one probe hello offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec {
    /// The one version the hello offers (TLS 1.3 through supported_versions).
    pub version: TlsVersion,
    /// Suites in order of preference; only the first [`MAX_PROBE_SUITES`] are sent. Add
    /// 0x00FF yourself for SSLv3 if wanted; never add TLS_FALLBACK_SCSV (0x5600), which
    /// makes servers refuse every version below their best.
    pub cipher_suites: Vec<u16>,
    /// The server's DNS name for SNI; ignored when it is an IP literal or not a DNS name
    /// in ASCII (A-label) form.
    pub server_name: Option<String>,
    /// Random bytes from the caller: the client random, and the seed of the TLS 1.3
    /// session id and x25519 key share, so this crate needs no random source.
    pub random: [u8; 32],
}

/// Groups offered with ECDHE suites below TLS 1.3: the modern curves first, then the older
/// NIST and binary curves that servers of the TLS 1.0 era may be limited to.
const LEGACY_GROUPS: [u16; 15] = [
    0x001d, 0x0017, 0x0018, 0x0019, 0x001e, 0x0016, 0x0015, 0x0014, 0x0013, 0x000e, 0x000d, 0x000c,
    0x000b, 0x000a, 0x0009,
];
/// Groups offered with TLS 1.3: x25519 carries the key share; any other choice gets a
/// HelloRetryRequest, which still proves TLS 1.3.
const TLS13_GROUPS: [u16; 8] = [
    0x001d, 0x0017, 0x0018, 0x0019, 0x001e, 0x0100, 0x0101, 0x0102,
];
const X25519: u16 = 0x001d;
/// ECDSA, EdDSA, RSA-PSS, RSA PKCS#1 and the SHA-1/SHA-224 variants old servers still use.
const SIGNATURE_ALGORITHMS: [u16; 20] = [
    0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806, 0x0809, 0x080a, 0x080b, 0x0401,
    0x0501, 0x0601, 0x0303, 0x0301, 0x0302, 0x0203, 0x0201, 0x0202,
];
/// extended_master_secret (RFC 7627): some servers insist on it.
const EXTENDED_MASTER_SECRET: u16 = 23;
/// renegotiation_info (RFC 5746), empty: the initial-handshake form.
const RENEGOTIATION_INFO: u16 = 0xff01;

/// The bytes of one TLS record holding a ClientHello that offers exactly `spec`.
///
/// - SSLv3: no extensions at all, as SSLv3 servers may reject them.
/// - TLS 1.0 and up: SNI for DNS names, extended_master_secret, and renegotiation_info,
///   which is never empty and goes last; supported_groups and ec_point_formats when an
///   ECDH(E) suite is offered.
/// - TLS 1.2 and up: signature_algorithms.
/// - TLS 1.3: hello version 0x0303, supported_versions listing only 0x0304, supported_groups,
///   key_share (x25519), psk_key_exchange_modes, and a 32-byte session id (middlebox
///   compatibility mode).
/// - A padding extension keeps the handshake message out of 256-511 bytes and off lengths
///   of 10 or 14 mod 256, which some servers cannot read.
pub fn build_probe_hello(spec: &ProbeSpec) -> Vec<u8> {
    let suites = &spec.cipher_suites[..spec.cipher_suites.len().min(MAX_PROBE_SUITES)];
    let tls13 = spec.version == TlsVersion::Tls13;

    let mut body = Vec::new();
    let legacy_version = spec.version.min(TlsVersion::Tls12).wire();
    body.extend_from_slice(&legacy_version.to_be_bytes());
    body.extend_from_slice(&spec.random);
    if tls13 {
        put_vec8(&mut body, &derive(&spec.random, b"session id"));
    } else {
        put_vec8(&mut body, &[]);
    }
    let suite_bytes: Vec<u8> = suites.iter().flat_map(|s| s.to_be_bytes()).collect();
    put_vec16(&mut body, &suite_bytes);
    put_vec8(&mut body, &[0]);

    if spec.version > TlsVersion::Ssl3 {
        let mut extensions = extensions(spec, suites);
        pad(&mut extensions, HANDSHAKE_HEADER + body.len() + 2);
        put_vec16(&mut body, &extensions);
    }

    let mut message = vec![CLIENT_HELLO];
    message.extend_from_slice(&u24(body.len()));
    message.extend_from_slice(&body);

    // Record version 3.1 even for TLS 1.2 and 1.3, as browsers send: some servers reject more.
    let record_version = spec.version.min(TlsVersion::Tls10).wire();
    let mut record = vec![HANDSHAKE];
    record.extend_from_slice(&record_version.to_be_bytes());
    put_vec16(&mut record, &message);
    record
}

/// Bytes of the handshake message header (type and 24-bit length).
const HANDSHAKE_HEADER: usize = 4;

/// The extension block's contents (without its length) for TLS 1.0 and up.
fn extensions(spec: &ProbeSpec, suites: &[u16]) -> Vec<u8> {
    let tls13 = spec.version == TlsVersion::Tls13;
    let mut out = Vec::new();
    if let Some(name) = spec.server_name.as_deref().and_then(dns_name) {
        let mut entry = vec![0];
        put_vec16(&mut entry, name.as_bytes());
        let mut list = Vec::new();
        put_vec16(&mut list, &entry);
        put_extension(&mut out, Extension::SERVER_NAME, &list);
    }
    let ecdhe = suites
        .iter()
        .any(|&s| suite_name(s).is_some_and(|n| n.contains("_ECDH")));
    if tls13 || ecdhe {
        let groups: &[u16] = if tls13 { &TLS13_GROUPS } else { &LEGACY_GROUPS };
        put_extension(&mut out, Extension::SUPPORTED_GROUPS, &u16_list(groups));
        put_extension(&mut out, Extension::EC_POINT_FORMATS, &[1, 0]);
    }
    if spec.version >= TlsVersion::Tls12 {
        let algorithms = u16_list(&SIGNATURE_ALGORITHMS);
        put_extension(&mut out, Extension::SIGNATURE_ALGORITHMS, &algorithms);
    }
    if tls13 {
        put_extension(&mut out, Extension::SUPPORTED_VERSIONS, &[2, 0x03, 0x04]);
        put_extension(&mut out, Extension::PSK_KEY_EXCHANGE_MODES, &[1, 1]);
        let mut share = X25519.to_be_bytes().to_vec();
        put_vec16(&mut share, &derive(&spec.random, b"x25519 key share"));
        let mut shares = Vec::new();
        put_vec16(&mut shares, &share);
        put_extension(&mut out, Extension::KEY_SHARE, &shares);
    }
    put_extension(&mut out, EXTENDED_MASTER_SECRET, &[]);
    put_extension(&mut out, RENEGOTIATION_INFO, &[0]);
    out
}

/// Appends a padding extension when the handshake message, `before` bytes ahead of the
/// extensions plus `extensions`, would have a length servers are known to choke on.
fn pad(extensions: &mut Vec<u8>, before: usize) {
    let len = before + extensions.len();
    let data_len = if (256..=511).contains(&len) {
        // To 512 exactly; at 508 and up one byte is the least a non-empty last extension adds.
        512usize.saturating_sub(len + 4).max(1)
    } else if matches!(len % 256, 10 | 14) {
        1
    } else {
        return;
    };
    put_extension(extensions, Extension::PADDING, &vec![0; data_len]);
}

/// `name` without a trailing dot when it is an ASCII DNS name (not an IP literal).
fn dns_name(name: &str) -> Option<&str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let labels_ok = name.split('.').all(|label| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    // No top-level domain is all digits, so this also rules out IPv4 literals.
    let numeric_tld = name
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()));
    (name.len() <= 253 && labels_ok && !numeric_tld).then_some(name)
}

/// 32 bytes derived from the caller's random value, so each field looks random and
/// differs from the others without this crate holding a random source.
fn derive(random: &[u8; 32], purpose: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(random)
        .chain_update(purpose)
        .finalize()
        .into()
}

fn u24(len: usize) -> [u8; 3] {
    let b = (len as u32).to_be_bytes();
    [b[1], b[2], b[3]]
}

fn u16_list(values: &[u16]) -> Vec<u8> {
    let mut out = Vec::new();
    put_vec16(
        &mut out,
        &values
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect::<Vec<_>>(),
    );
    out
}

// Lengths below fit their prefixes by construction: at most 128 suites, a 253-byte name,
// fixed lists and a few hundred bytes of padding.
fn put_vec8(out: &mut Vec<u8>, data: &[u8]) {
    out.push(data.len() as u8);
    out.extend_from_slice(data);
}

fn put_vec16(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

fn put_extension(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    put_vec16(out, data);
}

#[cfg(test)]
mod tests;
