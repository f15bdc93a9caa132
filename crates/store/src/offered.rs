//! What a client offered in its ClientHello, kept per session in bounded form.

use wire::{is_grease, ClientHello};

/// Most entries a record keeps of each offered list: real clients send under 50 suites and a
/// dozen groups, while a hostile hello may carry thousands.
pub const MAX_OFFERED_ENTRIES: usize = 64;

/// Longest ALPN protocol name kept, in bytes (RFC 7301 allows 255).
const MAX_ALPN_BYTES: usize = 64;

/// The lists of a client's ClientHello as the gateway saw them, GREASE values left out, each
/// cut to [`MAX_OFFERED_ENTRIES`] in the client's order. Empty when no hello was read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfferedHello {
    /// Offered versions as wire codes (0x0301 is TLS 1.0): supported_versions when sent, else
    /// the hello's own version.
    pub versions: Vec<u16>,
    /// Offered cipher suites (IANA codes).
    pub cipher_suites: Vec<u16>,
    /// supported_groups (IANA codes).
    pub groups: Vec<u16>,
    /// signature_algorithms (IANA codes).
    pub signature_algorithms: Vec<u16>,
    /// ALPN protocol names, non-UTF-8 bytes replaced, each at most 64 bytes.
    pub alpn: Vec<String>,
    /// The JA3 fingerprint (MD5 hex) of the hello.
    pub ja3: Option<String>,
}

impl OfferedHello {
    /// The bounded lists and JA3 of `hello`.
    pub fn from_hello(hello: &ClientHello) -> OfferedHello {
        let mut versions = hello.supported_versions();
        if versions.is_empty() {
            versions.push(hello.legacy_version);
        }
        OfferedHello {
            versions: bounded(&versions),
            cipher_suites: bounded(&hello.cipher_suites),
            groups: bounded(&hello.supported_groups()),
            signature_algorithms: bounded(&hello.signature_algorithms()),
            alpn: hello
                .alpn()
                .iter()
                .take(MAX_OFFERED_ENTRIES)
                .map(|name| {
                    String::from_utf8_lossy(&name[..name.len().min(MAX_ALPN_BYTES)]).into_owned()
                })
                .collect(),
            ja3: Some(wire::ja3(hello).hash),
        }
    }

    /// Bytes of text held, for [`crate::SessionRecord::estimated_bytes`].
    pub(crate) fn estimated_bytes(&self) -> usize {
        let lists = self.versions.len()
            + self.cipher_suites.len()
            + self.groups.len()
            + self.signature_algorithms.len();
        lists * 2
            + self.alpn.iter().map(|a| a.len() + 24).sum::<usize>()
            + self.ja3.as_ref().map_or(0, String::len)
    }
}

fn bounded(values: &[u16]) -> Vec<u16> {
    values
        .iter()
        .copied()
        .filter(|&v| !is_grease(v))
        .take(MAX_OFFERED_ENTRIES)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::Extension;

    const CURL_DEFAULT: &[u8] = include_bytes!("testdata/known_hellos/curl_default.bin");

    #[test]
    fn lists_come_from_the_hello_without_grease_and_capped() {
        let mut hello = wire::parse_client_hello(CURL_DEFAULT).unwrap();
        let offered = OfferedHello::from_hello(&hello);
        assert_eq!(offered.versions, vec![0x0304, 0x0303, 0x0302, 0x0301]);
        assert_eq!(offered.cipher_suites.len(), 31);
        assert_eq!(offered.groups[0], 0x001d);
        assert!(offered.alpn.is_empty());
        assert_eq!(
            offered.ja3.as_deref(),
            Some("0732e7ae1e82c99f17258ef97e868d4e")
        );

        hello.cipher_suites = (0..1000)
            .map(|i| if i % 2 == 0 { 0x0a0a } else { i })
            .collect();
        hello.extensions.push(Extension {
            kind: Extension::ALPN,
            data: {
                let name = [b'x'; 200];
                let mut body = vec![0, 201, 200];
                body.extend_from_slice(&name);
                body
            },
        });
        let capped = OfferedHello::from_hello(&hello);
        assert_eq!(capped.cipher_suites.len(), MAX_OFFERED_ENTRIES);
        assert!(capped.cipher_suites.iter().all(|&c| !is_grease(c)));
        assert_eq!(capped.alpn, vec!["x".repeat(MAX_ALPN_BYTES)]);
    }

    #[test]
    fn a_hello_without_supported_versions_offers_its_own_version() {
        let tls10 = include_bytes!("testdata/known_hellos/s_client_tls1.bin");
        let offered = OfferedHello::from_hello(&wire::parse_client_hello(tls10).unwrap());
        assert_eq!(offered.versions, vec![0x0301]);
    }
}
