use super::*;
use crate::fixtures::{
    foxio_vectors, CURL_DEFAULT, CURL_TLS10, OPENSSL_TLS10, OPENSSL_TLS13, OPENSSL_TWO_RECORDS,
};
use crate::{parse_client_hello, Extension};

/// `(name, md5, ja3 string)` from `testdata/tshark_ja3.txt`, TShark's own JA3 of each hello.
fn tshark_values() -> Vec<(String, String, String)> {
    include_str!("../testdata/tshark_ja3.txt")
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let [name, hash, text] = fields[..] else {
                panic!("bad line {line:?}");
            };
            (name.to_string(), hash.to_string(), text.to_string())
        })
        .collect()
}

fn tshark_value(name: &str) -> Ja3 {
    let (_, hash, text) = tshark_values()
        .into_iter()
        .find(|(n, _, _)| n == name)
        .unwrap_or_else(|| panic!("{name} not in tshark_ja3.txt"));
    Ja3 { text, hash }
}

#[test]
fn the_spec_by_hand_for_openssl_at_tls10() {
    // Read off the hello by hand: version 0x0301 = 769; suites c00a c014 0039 c009 c013 0033
    // 0035 002f 00ff; extensions SNI, ec_point_formats, supported_groups, session_ticket,
    // encrypt_then_mac, extended_master_secret; groups x25519 secp256r1 x448 secp521r1
    // secp384r1; point formats uncompressed and the two compressed ones.
    let by_hand =
        "769,49162-49172-57-49161-49171-51-53-47-255,0-11-10-35-22-23,29-23-30-25-24,0-1-2";
    let got = ja3(&parse_client_hello(OPENSSL_TLS10).unwrap());
    assert_eq!(got.text, by_hand);
    // MD5 of the string as `printf %s ... | md5sum` prints it.
    assert_eq!(got.hash, "c6dbf3152a545382a95425e390e2d2e8");
}

#[test]
fn captured_hellos_match_tshark() {
    let cases: [(&[u8], &str); 5] = [
        (OPENSSL_TLS10, "openssl_tls10_hello"),
        (OPENSSL_TLS13, "openssl_tls13_hello"),
        (OPENSSL_TWO_RECORDS, "openssl_two_record_hello"),
        (CURL_TLS10, "curl_tls10_hello"),
        (CURL_DEFAULT, "curl_default_hello"),
    ];
    for (bytes, name) in cases {
        assert_eq!(
            ja3(&parse_client_hello(bytes).unwrap()),
            tshark_value(name),
            "{name}"
        );
    }
}

#[test]
fn foxio_vectors_with_grease_match_tshark() {
    let vectors = foxio_vectors();
    let mut with_grease = 0;
    for (i, vector) in vectors.iter().enumerate() {
        let hello = parse_client_hello(&vector.hello).unwrap();
        with_grease += usize::from(hello.cipher_suites.iter().any(|&c| is_grease(c)));
        let name = format!("foxio:{i}");
        assert_eq!(
            ja3(&hello),
            tshark_value(&name),
            "{name} ({})",
            vector.source
        );
    }
    assert!(with_grease > 0, "no vector exercises GREASE");
}

#[test]
fn grease_changes_nothing_and_empty_fields_stay_empty() {
    let mut hello = parse_client_hello(OPENSSL_TLS10).unwrap();
    let plain = ja3(&hello);
    hello.cipher_suites.insert(0, 0x2a2a);
    hello.extensions.insert(
        0,
        Extension {
            kind: 0xdada,
            data: vec![],
        },
    );
    assert_eq!(ja3(&hello), plain);

    hello.cipher_suites.clear();
    hello.extensions.clear();
    assert_eq!(ja3(&hello).text, "769,,,,");
}
