//! Client software recognised by its TLS fingerprint, for clients that never say who they are
//! (no IMAP ID).
//!
//! Every entry comes from a ClientHello captured from the real program on Debian 12 (OpenSSL
//! 3.0.19, curl 7.88.1, Python 3.11.7, fetchmail 6.4.37) by `lab/capture_hellos.sh`; the
//! captures are in `testdata/known_hellos/` and a test checks each still maps to its entry.
//! Programs that share a TLS library and its defaults send the same hello, so an entry names
//! all of them rather than guess. A fingerprint not listed stays unknown.
//!
//! Entries match JA4's version and its parts b (suites) and c (extensions and signature
//! algorithms): part a's SNI flag, counts and ALPN change with how a program is pointed at a
//! server, while the library's offer does not.

/// `(JA4 version, JA4 part b, JA4 part c, software)`.
const KNOWN: &[(&str, &str, &str, &str)] = &[
    (
        "10",
        "c491f621fb4c",
        "195413a0cc0f",
        "OpenSSL 3.0 at TLS 1.0 (openssl s_client, Python ssl, fetchmail)",
    ),
    (
        "10",
        "c491f621fb4c",
        "d4d584b446d3",
        "curl 7.88 (OpenSSL 3.0) at TLS 1.0",
    ),
    (
        "12",
        "d943125447b4",
        "e7e480e5a997",
        "openssl s_client 3.0 at TLS 1.2",
    ),
    (
        "12",
        "d68b136fe8d9",
        "e7e480e5a997",
        "Python 3.11 ssl at TLS 1.2",
    ),
    ("13", "e8f1e7e78f70", "1f22a2ca17c4", "openssl s_client 3.0"),
    (
        "13",
        "e8f1e7e78f70",
        "b26ce05bbdd6",
        "curl 7.88 (OpenSSL 3.0)",
    ),
    (
        "13",
        "e8f1e7e78f70",
        "d41ae481755e",
        "fetchmail 6.4 (OpenSSL 3.0)",
    ),
    ("13", "85036bcba153", "d41ae481755e", "Python 3.11 ssl"),
];

/// The software whose ClientHello has this JA4, when it is one of the captured programs.
pub fn software_for_ja4(ja4: &str) -> Option<&'static str> {
    let mut parts = ja4.split('_');
    let (a, b, c) = (parts.next()?, parts.next()?, parts.next()?);
    let version = a.get(1..3)?;
    KNOWN
        .iter()
        .find(|(v, kb, kc, _)| *v == version && *kb == b && *kc == c)
        .map(|(_, _, _, software)| *software)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn software_of(capture: &[u8]) -> Option<&'static str> {
        software_for_ja4(&wire::ja4(&wire::parse_client_hello(capture).unwrap()))
    }

    #[test]
    fn every_capture_maps_to_its_program() {
        let cases: [(&[u8], &str); 11] = [
            (
                include_bytes!("testdata/known_hellos/s_client_tls1.bin"),
                "OpenSSL 3.0 at TLS 1.0",
            ),
            (
                include_bytes!("testdata/known_hellos/s_client_tls1_sni.bin"),
                "OpenSSL 3.0 at TLS 1.0",
            ),
            (
                include_bytes!("testdata/known_hellos/python_tls10.bin"),
                "OpenSSL 3.0 at TLS 1.0",
            ),
            (
                include_bytes!("testdata/known_hellos/fetchmail_tls1.bin"),
                "OpenSSL 3.0 at TLS 1.0",
            ),
            (
                include_bytes!("testdata/known_hellos/curl_tls10.bin"),
                "curl 7.88 (OpenSSL 3.0) at TLS 1.0",
            ),
            (
                include_bytes!("testdata/known_hellos/s_client_tls1_2.bin"),
                "openssl s_client 3.0 at TLS 1.2",
            ),
            (
                include_bytes!("testdata/known_hellos/python_tls12.bin"),
                "Python 3.11 ssl at TLS 1.2",
            ),
            (
                include_bytes!("testdata/known_hellos/s_client_default.bin"),
                "openssl s_client 3.0",
            ),
            (
                include_bytes!("testdata/known_hellos/curl_default.bin"),
                "curl 7.88 (OpenSSL 3.0)",
            ),
            (
                include_bytes!("testdata/known_hellos/fetchmail_default.bin"),
                "fetchmail 6.4 (OpenSSL 3.0)",
            ),
            (
                include_bytes!("testdata/known_hellos/python_default.bin"),
                "Python 3.11 ssl",
            ),
        ];
        for (capture, expected) in cases {
            let got = software_of(capture).unwrap_or("unknown");
            assert!(got.starts_with(expected), "{got:?} is not {expected:?}");
        }
    }

    #[test]
    fn an_unlisted_or_malformed_fingerprint_stays_unknown() {
        assert_eq!(
            software_for_ja4("t13d1516h2_8daaf6152771_e5627efa2ab1"),
            None
        );
        assert_eq!(software_for_ja4("t10d0906"), None);
        assert_eq!(software_for_ja4(""), None);
        // The library's offer at another version is another program's.
        assert_eq!(
            software_for_ja4("t12i090500_c491f621fb4c_195413a0cc0f"),
            None
        );
    }
}
