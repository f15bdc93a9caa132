//! Which cipher suites a probe offers for each version, most widely deployed first, so the
//! first hello of at most 128 suites finds nearly every real server.

use std::sync::LazyLock;

use wire::{is_grease, suite_name, TlsVersion, MAX_PROBE_SUITES};

/// Suites never offered as choices: the renegotiation and fallback signals.
const SIGNALS: [u16; 2] = [0x00FF, 0x5600];
/// TLS_EMPTY_RENEGOTIATION_INFO_SCSV: SSLv3 hellos carry no extensions, so they signal
/// secure renegotiation this way, as browsers of the time did.
pub(crate) const RENEGOTIATION_SCSV: u16 = 0x00FF;

/// The bundles of [`TlsVersion::ALL`], in its order. Built on first use: walking the whole
/// code space through the name table and sorting is too slow to repeat for every probe,
/// and the result never changes.
static BUNDLES: LazyLock<[Vec<Vec<u16>>; 5]> = LazyLock::new(|| {
    TlsVersion::ALL.map(|version| {
        // SSLv3 hellos also carry the renegotiation signal.
        let size = if version == TlsVersion::Ssl3 {
            MAX_PROBE_SUITES - 1
        } else {
            MAX_PROBE_SUITES
        };
        suites_for(version)
            .chunks(size)
            .map(<[u16]>::to_vec)
            .collect()
    })
});

/// Every assigned suite a hello at `version` can offer, most widely deployed first. Slow:
/// probes take [`bundles`], computed from it once.
fn suites_for(version: TlsVersion) -> Vec<u16> {
    let mut suites: Vec<(u16, &str)> = (1..=u16::MAX)
        .filter(|&c| !SIGNALS.contains(&c) && !is_grease(c))
        .filter_map(|c| suite_name(c).map(|n| (c, n)))
        .filter(|(_, name)| fits(version, name))
        .collect();
    suites.sort_by_key(|&(code, name)| (rank(name), code));
    suites.into_iter().map(|(c, _)| c).collect()
}

/// [`suites_for`] cut into hellos of at most [`MAX_PROBE_SUITES`] suites (one fewer for
/// SSLv3, which also carries the renegotiation signal).
pub(crate) fn bundles(version: TlsVersion) -> &'static [Vec<u16>] {
    let index = TlsVersion::ALL
        .iter()
        .position(|&v| v == version)
        .expect("ALL holds every version");
    &BUNDLES[index]
}

/// Whether a suite named `name` can be negotiated at `version`.
fn fits(version: TlsVersion, name: &str) -> bool {
    // TLS 1.3 suites name only the AEAD and hash, never a key exchange.
    let tls13_suite = !name.contains("_WITH_");
    let needs_tls12 = ["SHA256", "SHA384", "GCM", "CCM", "CHACHA20", "_ARIA_"]
        .iter()
        .any(|w| name.contains(w));
    match version {
        TlsVersion::Tls13 => tls13_suite,
        TlsVersion::Tls12 => !tls13_suite,
        TlsVersion::Tls10 | TlsVersion::Tls11 => !tls13_suite && !needs_tls12,
        // Elliptic curves need extensions, which SSLv3 hellos do not carry.
        TlsVersion::Ssl3 => !tls13_suite && !needs_tls12 && !name.contains("_ECDH"),
    }
}

/// Sort key: mainstream key exchanges and ciphers first, exotic and broken ones last.
fn rank(name: &str) -> (u8, u8, u8) {
    let exotic = [
        "_anon_", "_NULL_", "EXPORT", "_PSK_", "_SRP_", "_KRB5_", "ECCPWD", "GOST", "_SM4_",
    ]
    .iter()
    .any(|w| name.contains(w));
    let exchange = [
        "TLS_ECDHE_ECDSA_",
        "TLS_ECDHE_RSA_",
        "TLS_DHE_RSA_",
        "TLS_RSA_WITH_",
        "TLS_DHE_DSS_",
        "TLS_ECDH_",
        "TLS_DH_",
    ]
    .iter()
    .position(|p| name.starts_with(p))
    .unwrap_or(7) as u8;
    let cipher = [
        ["_GCM_", "CHACHA20"],
        ["_AES_", "_AES_"],
        ["_CAMELLIA_", "_CAMELLIA_"],
        ["_3DES_", "_3DES_"],
        ["_ARIA_", "_SEED_"],
        ["_RC4_", "_IDEA_"],
    ]
    .iter()
    .position(|ws| ws.iter().any(|w| name.contains(w)))
    .unwrap_or(6) as u8;
    (u8::from(exotic), exchange, cipher)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(codes: &[u16]) -> Vec<&'static str> {
        codes.iter().map(|&c| suite_name(c).unwrap()).collect()
    }

    #[test]
    fn tls13_offers_only_tls13_suites() {
        let suites = names(&suites_for(TlsVersion::Tls13));
        assert!(suites.contains(&"TLS_AES_128_GCM_SHA256"));
        assert!(suites.iter().all(|n| !n.contains("_WITH_")));
        assert_eq!(bundles(TlsVersion::Tls13).len(), 1);
    }

    #[test]
    fn legacy_versions_leave_out_tls12_only_suites_and_signals() {
        for v in [TlsVersion::Ssl3, TlsVersion::Tls10, TlsVersion::Tls11] {
            let suites = suites_for(v);
            assert!(!suites.contains(&0x00FF) && !suites.contains(&0x5600));
            for n in names(&suites) {
                assert!(!n.contains("GCM") && !n.contains("SHA256"), "{v}: {n}");
            }
            assert!(suites.contains(&0x002F), "AES128-SHA at {v}");
            assert!(suites.contains(&0x000A), "DES-CBC3-SHA at {v}");
        }
        assert!(names(&suites_for(TlsVersion::Ssl3))
            .iter()
            .all(|n| !n.contains("ECDH")));
        assert!(suites_for(TlsVersion::Tls10).contains(&0xC014));
    }

    #[test]
    fn the_first_bundle_holds_every_mainstream_suite() {
        for v in [TlsVersion::Tls10, TlsVersion::Tls12] {
            let bundles = bundles(v);
            assert!(bundles.iter().all(|b| b.len() <= MAX_PROBE_SUITES));
            let first = names(&bundles[0]);
            assert!(first[0].starts_with("TLS_ECDHE_ECDSA_"), "{first:?}");
            for mainstream in [
                "TLS_RSA_WITH_AES_128_CBC_SHA",
                "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
            ] {
                assert!(first.contains(&mainstream), "{v} {mainstream}");
            }
            let all: usize = bundles.iter().map(Vec::len).sum();
            assert_eq!(all, suites_for(v).len());
        }
        assert!(bundles(TlsVersion::Ssl3)[0].len() < MAX_PROBE_SUITES);
    }

    #[test]
    fn bundles_are_built_once() {
        for v in TlsVersion::ALL {
            assert!(std::ptr::eq(bundles(v), bundles(v)), "{v}");
            assert_eq!(bundles(v).concat(), suites_for(v), "{v}");
        }
    }
}
