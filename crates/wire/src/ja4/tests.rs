//! JA4 against the worked example and the vectors of FoxIO's specification, and against
//! hellos captured here.

use super::*;
use crate::fixtures::{foxio_vectors, CURL_DEFAULT, CURL_TLS10, OPENSSL_TLS10, OPENSSL_TLS13};
use crate::parse_client_hello;

#[test]
fn worked_example_hashes() {
    assert_eq!(
        truncated_hash(
            "002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9"
        ),
        "8daaf6152771"
    );
    let extensions = "0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01";
    assert_eq!(truncated_hash(extensions), "6d807ffa2a79");
    assert_eq!(
        truncated_hash(&format!(
            "{extensions}_0403,0804,0401,0503,0805,0501,0806,0601"
        )),
        "e5627efa2ab1"
    );
    assert_eq!(truncated_hash(""), "000000000000");
}

#[test]
fn alpn_codes_from_the_specification() {
    let cases: [(&[u8], &str); 11] = [
        (b"h2", "h2"),
        (b"http/1.1", "h1"),
        (b"i", "ii"),
        (&[0xab], "ab"),
        (&[0x20], "20"),
        (&[0xab, 0xcd], "ad"),
        (&[0x20, 0x61], "21"),
        (&[0x30, 0xab], "3b"),
        (&[0x61, 0x20], "60"),
        (&[0x30, 0x31, 0xab, 0xcd], "3d"),
        (&[0x30, 0xab, 0xcd, 0x31], "01"),
    ];
    for (value, code) in cases {
        assert_eq!(alpn_code(Some(value)), code, "{value:02x?}");
    }
    assert_eq!(alpn_code(Some(b"")), "00");
    assert_eq!(alpn_code(None), "00");
}

#[test]
fn foxio_vectors_match() {
    let vectors = foxio_vectors();
    assert!(vectors.len() >= 10);
    for vector in vectors {
        let hello = parse_client_hello(&vector.hello).unwrap();
        assert_eq!(ja4(&hello), vector.ja4, "{}", vector.source);
    }
}

#[test]
fn captured_hellos() {
    // Expected values computed from the raw bytes by a separate script written from the
    // specification. The TLS 1.0 hellos carry no signature_algorithms, so their part c
    // hashes the extension list alone.
    let cases = [
        (OPENSSL_TLS10, "t10d090600_c491f621fb4c_195413a0cc0f"),
        (CURL_TLS10, "t10d0906h2_c491f621fb4c_d4d584b446d3"),
        (OPENSSL_TLS13, "t13d0411ip_16476d049b0b_78f1d400d464"),
        (CURL_DEFAULT, "t13d3112h2_e8f1e7e78f70_b26ce05bbdd6"),
    ];
    for (bytes, expected) in cases {
        assert_eq!(ja4(&parse_client_hello(bytes).unwrap()), expected);
    }
}

#[test]
fn grease_sni_and_empty_lists() {
    let mut hello = parse_client_hello(OPENSSL_TLS10).unwrap();
    let plain = ja4(&hello);
    // GREASE anywhere changes nothing.
    hello.cipher_suites.insert(0, 0x2a2a);
    hello.extensions.insert(
        0,
        Extension {
            kind: 0xdada,
            data: vec![],
        },
    );
    assert_eq!(ja4(&hello), plain);

    // Without SNI the destination is an IP: "i", one extension fewer, same part c.
    hello
        .extensions
        .retain(|e| e.kind != Extension::SERVER_NAME);
    let no_sni = ja4(&hello);
    assert_eq!(&no_sni[..10], "t10i090500");
    assert_eq!(no_sni[11..], plain[11..]);

    hello.cipher_suites.clear();
    hello.extensions.clear();
    assert_eq!(ja4(&hello), "t10i000000_000000000000_000000000000");

    // A hello whose only extensions are SNI and ALPN hashes an empty list for part c.
    let mut only_sni = parse_client_hello(OPENSSL_TLS10).unwrap();
    only_sni.extensions.truncate(1);
    assert!(ja4(&only_sni).ends_with("_000000000000"));
}

#[test]
fn counts_cap_at_99_and_versions_map() {
    let mut hello = parse_client_hello(OPENSSL_TLS10).unwrap();
    hello.cipher_suites = (0x0100..0x0200).collect();
    assert_eq!(&ja4(&hello)[4..8], "9906");
    for (version, code) in [(0x0300, "s3"), (0x0002, "s2"), (0x0305, "00")] {
        hello.legacy_version = version;
        assert_eq!(&ja4(&hello)[1..3], code);
    }
}
