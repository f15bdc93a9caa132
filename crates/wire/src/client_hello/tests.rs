//! ClientHello parsing against hellos captured from real clients (see `crate::fixtures`),
//! plus hand-made hostile input.

use super::*;

use crate::fixtures::{
    foxio_vectors, CURL_DEFAULT, CURL_TLS10, HELLOS, OPENSSL_TLS10, OPENSSL_TLS13,
    OPENSSL_TWO_RECORDS,
};

fn kinds(hello: &ClientHello) -> Vec<u16> {
    hello.extensions.iter().map(|e| e.kind).collect()
}

#[test]
fn tls10_hello_from_openssl() {
    let hello = parse_client_hello(OPENSSL_TLS10).unwrap();
    assert_eq!(hello.record_version, 0x0301);
    assert_eq!(hello.legacy_version, 0x0301);
    assert!(!hello.is_sslv2_format());
    assert_eq!(hello.random[..4], [0xad, 0x61, 0xc9, 0x5a]);
    assert!(hello.session_id.is_empty());
    assert_eq!(
        hello.cipher_suites,
        [0xc00a, 0xc014, 0x0039, 0xc009, 0xc013, 0x0033, 0x0035, 0x002f, 0x00ff]
    );
    assert_eq!(hello.compression, [0]);
    assert_eq!(
        kinds(&hello),
        [0x0000, 0x000b, 0x000a, 0x0023, 0x0016, 0x0017]
    );
    assert_eq!(hello.server_name().as_deref(), Some("printer.example"));
    assert_eq!(hello.supported_versions(), Vec::<u16>::new());
    assert_eq!(hello.highest_offered(), Some(TlsVersion::Tls10));
    assert_eq!(
        hello.supported_groups(),
        [0x001d, 0x0017, 0x001e, 0x0019, 0x0018]
    );
    assert_eq!(hello.ec_point_formats(), [0, 1, 2]);
    assert_eq!(hello.signature_algorithms(), Vec::<u16>::new());
    assert_eq!(hello.alpn(), Vec::<Vec<u8>>::new());
}

#[test]
fn tls13_hello_from_openssl() {
    let hello = parse_client_hello(OPENSSL_TLS13).unwrap();
    assert_eq!(hello.legacy_version, 0x0303);
    assert_eq!(hello.session_id.len(), 32);
    assert_eq!(hello.cipher_suites, [0x1302, 0x1303, 0x1301, 0x00ff]);
    assert_eq!(hello.supported_versions(), [0x0304]);
    assert_eq!(hello.highest_offered(), Some(TlsVersion::Tls13));
    assert_eq!(hello.server_name().as_deref(), Some("mail.example.org"));
    assert_eq!(hello.alpn(), [b"imap".to_vec()]);
    assert!(hello.extension(Extension::KEY_SHARE).is_some());
    assert!(hello.extension(Extension::PSK_KEY_EXCHANGE_MODES).is_some());
    assert!(hello.signature_algorithms().contains(&0x0804));
}

#[test]
fn curl_hellos() {
    let tls10 = parse_client_hello(CURL_TLS10).unwrap();
    assert_eq!(tls10.highest_offered(), Some(TlsVersion::Tls10));
    assert_eq!(tls10.server_name().as_deref(), Some("localhost.example"));
    assert_eq!(tls10.alpn(), [b"h2".to_vec(), b"http/1.1".to_vec()]);

    let default = parse_client_hello(CURL_DEFAULT).unwrap();
    assert_eq!(default.highest_offered(), Some(TlsVersion::Tls13));
    assert_eq!(
        default.supported_versions(),
        [0x0304, 0x0303, 0x0302, 0x0301]
    );
    assert_eq!(default.server_name().as_deref(), Some("mail.example.com"));
    assert_eq!(kinds(&default).last(), Some(&Extension::PADDING));
}

#[test]
fn hello_spanning_two_records() {
    assert_eq!(record_lengths(OPENSSL_TWO_RECORDS), [512, 88]);
    let hello = parse_client_hello(OPENSSL_TWO_RECORDS).unwrap();
    assert_eq!(
        hello.server_name().as_deref(),
        Some("imap.long-hostname-for-a-multi-record-hello.example")
    );
    assert_eq!(hello.alpn().len(), 7);
    // The same handshake bytes in a single record parse to the same hello.
    let single = one_record(&handshake_bytes(OPENSSL_TWO_RECORDS));
    assert_eq!(parse_client_hello(&single), Ok(hello));
}

#[test]
fn every_prefix_is_incomplete() {
    for fixture in HELLOS {
        for end in 0..fixture.len() {
            assert_eq!(
                parse_client_hello(&fixture[..end]),
                Err(HelloError::Incomplete),
                "prefix of {end} of {} bytes",
                fixture.len()
            );
        }
        assert!(parse_client_hello(fixture).is_ok());
    }
}

#[test]
fn bytes_after_the_hello_are_ignored() {
    let mut stream = OPENSSL_TLS13.to_vec();
    stream.extend_from_slice(&[0x14, 0x03, 0x03, 0x00, 0x01, 0x01]);
    assert_eq!(
        parse_client_hello(&stream),
        parse_client_hello(OPENSSL_TLS13)
    );
}

#[test]
fn plaintext_is_not_tls() {
    for text in [
        &b"a1 LOGIN x y\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"USER alice\r\n",
        b"EHLO client.example\r\n",
        b"\r\n",
    ] {
        for end in 1..=text.len() {
            assert_eq!(parse_client_hello(&text[..end]), Err(HelloError::NotTls));
        }
    }
    // A handshake byte followed by an impossible record version.
    assert_eq!(parse_client_hello(&[0x16, 0x04]), Err(HelloError::NotTls));
    assert_eq!(
        parse_client_hello(&[0x16, 0x03, 0x05]),
        Err(HelloError::NotTls)
    );
    // An alert or application data record cannot open a client's stream.
    assert_eq!(
        parse_client_hello(&[0x15, 0x03, 0x01]),
        Err(HelloError::NotTls)
    );
}

#[test]
fn other_handshake_messages_are_malformed() {
    let server_hello = [0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00];
    assert!(matches!(
        parse_client_hello(&server_hello[..6]),
        Err(HelloError::Malformed(_))
    ));
}

/// Offsets of the length fields in the captured TLS 1.0 hello, and what each must be.
const TLS10_LENGTHS: [(usize, usize, &str); 8] = [
    (3, 2, "record"),
    (6, 3, "handshake"),
    (43, 1, "session id"),
    (44, 2, "cipher suites"),
    (64, 1, "compression"),
    (66, 2, "extensions"),
    (70, 2, "server_name extension"),
    (72, 2, "server_name list"),
];

#[test]
fn lying_lengths_never_parse() {
    assert_eq!(OPENSSL_TLS10[44..46], [0x00, 0x12]);
    for (offset, width, what) in TLS10_LENGTHS {
        for delta in [1u8, 2, 0x10, 0x80] {
            for bump in [u8::wrapping_add, u8::wrapping_sub] {
                let mut bytes = OPENSSL_TLS10.to_vec();
                let last = offset + width - 1;
                bytes[last] = bump(bytes[last], delta);
                let result = parse_client_hello(&bytes);
                // A record or handshake length that grows just waits for bytes that never
                // come; every other lie is caught.
                assert!(
                    matches!(
                        result,
                        Err(HelloError::Malformed(_) | HelloError::Incomplete)
                    ),
                    "{what} {delta}: {result:?}"
                );
                if !matches!(what, "record" | "handshake") {
                    assert!(
                        matches!(result, Err(HelloError::Malformed(_))),
                        "{what} {delta}: {result:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn lying_inner_extension_lengths_are_malformed() {
    // SNI: server_name_list claims one byte more than the extension holds.
    let mut bytes = OPENSSL_TLS10.to_vec();
    assert_eq!(bytes[72..74], [0x00, 0x12]);
    bytes[73] = 0x13;
    let Err(HelloError::Malformed(reason)) = parse_client_hello(&bytes) else {
        panic!("accepted a lying server_name_list");
    };
    assert!(reason.contains("server_name"), "{reason}");

    // ec_point_formats: the list claims four formats but the extension holds three.
    let mut bytes = OPENSSL_TLS10.to_vec();
    assert_eq!(bytes[94..97], [0x00, 0x04, 0x03]);
    bytes[96] = 0x04;
    assert!(matches!(
        parse_client_hello(&bytes),
        Err(HelloError::Malformed(_))
    ));
}

#[test]
fn oversized_hellos_are_refused_early() {
    // A handshake header announcing 64 KiB: refused before the body arrives.
    let header = [0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x01, 0x00, 0x00];
    assert_eq!(parse_client_hello(&header), Err(HelloError::TooLarge));
    // A small hello dribbled out in one-byte records still may not outgrow the cap.
    let big_message = [0x01, 0x00, 0xff, 0xff];
    let mut stream = Vec::new();
    for i in 0..MAX_CLIENT_HELLO_BYTES / 6 + 1 {
        let byte = big_message.get(i).copied().unwrap_or(0);
        stream.extend_from_slice(&[0x16, 0x03, 0x01, 0x00, 0x01, byte]);
    }
    assert_eq!(parse_client_hello(&stream), Err(HelloError::TooLarge));
}

#[test]
fn extension_block_is_optional() {
    // A minimal TLS 1.0 hello without extensions, as Windows XP-era clients send.
    let mut body = vec![0x03, 0x01];
    body.extend_from_slice(&[0x42; 32]);
    body.extend_from_slice(&[0x00, 0x00, 0x04, 0x00, 0x2f, 0x00, 0x0a, 0x01, 0x00]);
    let hello = parse_client_hello(&one_record(&handshake(1, &body))).unwrap();
    assert_eq!(hello.cipher_suites, [0x002f, 0x000a]);
    assert!(hello.extensions.is_empty());
    assert_eq!(hello.server_name(), None);
    assert_eq!(hello.highest_offered(), Some(TlsVersion::Tls10));

    // Trailing bytes after the extension block are a lie in the handshake length.
    let mut with_junk = body.clone();
    with_junk.extend_from_slice(&[0x00, 0x00, 0xee]);
    assert!(matches!(
        parse_client_hello(&one_record(&handshake(1, &with_junk))),
        Err(HelloError::Malformed(_))
    ));
}

#[test]
fn highest_offered_ignores_grease_and_clamps_legacy_versions() {
    let mut hello = parse_client_hello(OPENSSL_TLS13).unwrap();
    hello
        .extensions
        .retain(|e| e.kind != Extension::SUPPORTED_VERSIONS);
    hello.extensions.push(Extension {
        kind: Extension::SUPPORTED_VERSIONS,
        data: vec![6, 0x3a, 0x3a, 0x03, 0x03, 0x03, 0x02],
    });
    assert_eq!(hello.highest_offered(), Some(TlsVersion::Tls12));

    hello
        .extensions
        .retain(|e| e.kind != Extension::SUPPORTED_VERSIONS);
    hello.legacy_version = 0x0304;
    assert_eq!(hello.highest_offered(), Some(TlsVersion::Tls12));
    hello.legacy_version = 0x0002;
    assert_eq!(hello.highest_offered(), None);
}

#[test]
fn server_name_must_be_printable_ascii() {
    let mut hello = parse_client_hello(OPENSSL_TLS10).unwrap();
    hello.extensions[0].data = vec![0, 5, 0, 0, 2, b'a', 0];
    assert_eq!(hello.server_name(), None);
    hello.extensions[0].data = vec![0, 6, 0, 0, 3, b'a', 0xc3, 0xa9];
    assert_eq!(hello.server_name(), None);
}

/// An SSLv2-format hello offering TLS 1.0, shaped like those of Windows 2000-era clients:
/// three TLS suites, one SSLv2-only spec, no session id, a 16-byte challenge.
fn sslv2_hello() -> Vec<u8> {
    let mut hello = vec![
        0x80, 0x00, 0x01, 0x03, 0x01, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x10,
    ];
    hello.extend_from_slice(&[0x00, 0x00, 0x04, 0x07, 0x00, 0xc0, 0x00, 0x00, 0x0a]);
    hello.extend_from_slice(&[0x00, 0x00, 0xff]);
    hello.extend_from_slice(&[0x5a; 16]);
    hello[1] = (hello.len() - 2) as u8;
    hello
}

#[test]
fn sslv2_format_hello() {
    let bytes = sslv2_hello();
    let hello = parse_client_hello(&bytes).unwrap();
    assert!(hello.is_sslv2_format());
    assert_eq!(hello.legacy_version, 0x0301);
    assert_eq!(hello.cipher_suites, [0x0004, 0x000a, 0x00ff]);
    assert_eq!(hello.random[..16], [0; 16]);
    assert_eq!(hello.random[16..], [0x5a; 16]);
    assert_eq!(hello.highest_offered(), Some(TlsVersion::Tls10));
    for end in 0..bytes.len() {
        assert_eq!(
            parse_client_hello(&bytes[..end]),
            Err(HelloError::Incomplete)
        );
    }
    // A high first byte alone does not make an SSLv2 hello.
    assert_eq!(
        parse_client_hello(&[0x80, 0x2e, 0x02]),
        Err(HelloError::NotTls)
    );
    assert_eq!(
        parse_client_hello(&[0x80, 0x2e, 0x01, 0x07]),
        Err(HelloError::NotTls)
    );
    // A length too short for the fixed fields: no hello, whatever follows (found by fuzzing:
    // the two-byte prefix used to be Malformed and the whole stream NotTls).
    assert_eq!(parse_client_hello(&[0x80, 0x00]), Err(HelloError::NotTls));
    assert_eq!(
        parse_client_hello(&[0x80, 0x00, 0x00, 0x00]),
        Err(HelloError::NotTls)
    );
    // A cipher_spec_length that is not whole specs.
    let mut lying = bytes.clone();
    lying[6] = 0x0b;
    assert!(matches!(
        parse_client_hello(&lying),
        Err(HelloError::Malformed(_))
    ));
}

/// tls-parser as an independent reader of the same bytes: both must agree on every field.
#[test]
fn agrees_with_tls_parser() {
    use tls_parser::{
        parse_tls_extensions, parse_tls_message_handshake, SNIType, TlsExtension, TlsExtensionType,
        TlsMessage, TlsMessageHandshake,
    };
    let all = HELLOS
        .iter()
        .map(|f| f.to_vec())
        .chain(foxio_vectors().into_iter().map(|v| v.hello));
    for bytes in all {
        let ours = parse_client_hello(&bytes).unwrap();
        let handshake = handshake_bytes(&bytes);
        let (_, message) = parse_tls_message_handshake(&handshake).unwrap();
        let TlsMessage::Handshake(TlsMessageHandshake::ClientHello(theirs)) = message else {
            panic!("tls-parser saw no ClientHello");
        };
        assert_eq!(ours.legacy_version, theirs.version.0);
        assert_eq!(ours.random[..], *theirs.random);
        assert_eq!(ours.session_id, theirs.session_id.unwrap_or_default());
        let suites: Vec<u16> = theirs.ciphers.iter().map(|c| c.0).collect();
        assert_eq!(ours.cipher_suites, suites);
        let compression: Vec<u8> = theirs.comp.iter().map(|c| c.0).collect();
        assert_eq!(ours.compression, compression);

        let (_, extensions) = parse_tls_extensions(theirs.ext.unwrap_or_default()).unwrap();
        let their_kinds: Vec<u16> = extensions
            .iter()
            .map(|e| TlsExtensionType::from(e).0)
            .collect();
        // tls-parser reports every GREASE extension as 0xfafa.
        let our_kinds: Vec<u16> = kinds(&ours)
            .into_iter()
            .map(|k| if crate::is_grease(k) { 0xfafa } else { k })
            .collect();
        assert_eq!(our_kinds, their_kinds);
        let their_sni = extensions.iter().find_map(|e| match e {
            TlsExtension::SNI(names) => names
                .iter()
                .find(|(kind, _)| *kind == SNIType::HostName)
                .map(|(_, name)| String::from_utf8_lossy(name).into_owned()),
            _ => None,
        });
        assert_eq!(ours.server_name(), their_sni);
    }
}

/// Record body lengths, in order.
fn record_lengths(mut stream: &[u8]) -> Vec<usize> {
    let mut lengths = Vec::new();
    while stream.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([stream[3], stream[4]]));
        lengths.push(len);
        stream = &stream[5 + len..];
    }
    lengths
}

/// The handshake bytes carried by a stream of handshake records.
fn handshake_bytes(mut stream: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while stream.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([stream[3], stream[4]]));
        out.extend_from_slice(&stream[5..5 + len]);
        stream = &stream[5 + len..];
    }
    out
}

fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = (body.len() as u32).to_be_bytes();
    let mut out = vec![kind, len[1], len[2], len[3]];
    out.extend_from_slice(body);
    out
}

fn one_record(handshake: &[u8]) -> Vec<u8> {
    let len = (handshake.len() as u16).to_be_bytes();
    let mut out = vec![0x16, 0x03, 0x01, len[0], len[1]];
    out.extend_from_slice(handshake);
    out
}

/// Every single-byte change to the captured hellos parses or fails cleanly, and a cut
/// stream never answers differently from the whole one (the fuzz target's property, run
/// on a deterministic corpus).
#[test]
fn single_byte_mutations_never_panic() {
    for fixture in [OPENSSL_TLS10, OPENSSL_TWO_RECORDS] {
        for at in 0..fixture.len() {
            let original = fixture[at];
            for value in [
                0,
                1,
                0x7f,
                0x80,
                0xff,
                original ^ 1,
                original.wrapping_add(1),
            ] {
                let mut bytes = fixture.to_vec();
                bytes[at] = value;
                let whole = parse_client_hello(&bytes);
                if let Ok(hello) = &whole {
                    assert_eq!(crate::ja4(hello).len(), 36);
                }
                let early = parse_client_hello(&bytes[..at + 1]);
                if early != Err(HelloError::Incomplete) {
                    assert_eq!(early, whole, "byte {at} set to {value:#04x}");
                }
            }
        }
    }
}
