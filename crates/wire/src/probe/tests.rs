//! Probe hellos: read back by our parser and by tls-parser, and pinned to bytes that real
//! OpenSSL 3.0 servers accepted.

use super::*;
use crate::parse_client_hello;

/// `build_probe_hello` for TLS 1.0 (suites c013,c014,002f,0035,000a,00ff, SNI
/// mail.example.test, random 0x42 x 32); `openssl s_server -tls1 -cipher
/// 'DEFAULT:@SECLEVEL=0'` answered it with a TLS 1.0 ServerHello.
const GOLDEN_TLS10: &[u8] = include_bytes!("../testdata/probe_tls10.bin");
/// The same for TLS 1.3 (suites 1301,1302,1303); a default `openssl s_server` answered it
/// with a TLS 1.3 ServerHello, and one limited to P-256 with a HelloRetryRequest.
const GOLDEN_TLS13: &[u8] = include_bytes!("../testdata/probe_tls13.bin");

const ECDHE_AND_RSA: [u16; 6] = [0xc013, 0xc014, 0x002f, 0x0035, 0x000a, 0x00ff];
const TLS13_SUITES: [u16; 3] = [0x1301, 0x1302, 0x1303];

fn spec(version: TlsVersion, suites: &[u16], name: Option<&str>) -> ProbeSpec {
    ProbeSpec {
        version,
        cipher_suites: suites.to_vec(),
        server_name: name.map(str::to_string),
        random: [0x42; 32],
    }
}

fn kinds(hello: &crate::ClientHello) -> Vec<u16> {
    hello.extensions.iter().map(|e| e.kind).collect()
}

#[test]
fn golden_probes_that_openssl_accepted() {
    let name = Some("mail.example.test");
    assert_eq!(
        build_probe_hello(&spec(TlsVersion::Tls10, &ECDHE_AND_RSA, name)),
        GOLDEN_TLS10
    );
    assert_eq!(
        build_probe_hello(&spec(TlsVersion::Tls13, &TLS13_SUITES, name)),
        GOLDEN_TLS13
    );
}

#[test]
fn every_version_reads_back() {
    for version in TlsVersion::ALL {
        let suites: &[u16] = if version == TlsVersion::Tls13 {
            &TLS13_SUITES
        } else {
            &ECDHE_AND_RSA
        };
        let bytes = build_probe_hello(&spec(version, suites, Some("imap.example.org")));
        let hello = parse_client_hello(&bytes).unwrap();
        let expected_record = if version == TlsVersion::Ssl3 {
            0x0300
        } else {
            0x0301
        };
        assert_eq!(hello.record_version, expected_record, "{version}");
        assert_eq!(hello.legacy_version, version.min(TlsVersion::Tls12).wire());
        assert_eq!(hello.highest_offered(), Some(version));
        assert_eq!(hello.cipher_suites, suites);
        assert_eq!(hello.compression, [0]);
        assert_probe_length(&bytes);

        if version == TlsVersion::Ssl3 {
            assert!(hello.extensions.is_empty());
            continue;
        }
        assert!(!hello.extensions.last().unwrap().data.is_empty());
        assert_eq!(hello.server_name().as_deref(), Some("imap.example.org"));
        assert!(hello.supported_groups().contains(&0x001d));
        assert_eq!(hello.ec_point_formats(), [0]);
        let has_signature_algorithms = !hello.signature_algorithms().is_empty();
        assert_eq!(has_signature_algorithms, version >= TlsVersion::Tls12);
        if version == TlsVersion::Tls13 {
            assert_eq!(hello.session_id.len(), 32);
            assert_eq!(hello.supported_versions(), [0x0304]);
            let share = &hello.extension(Extension::KEY_SHARE).unwrap().data;
            assert_eq!(share[..6], [0x00, 0x24, 0x00, 0x1d, 0x00, 0x20]);
            assert_eq!(share.len(), 38);
            let modes = &hello.extension(Extension::PSK_KEY_EXCHANGE_MODES).unwrap();
            assert_eq!(modes.data, [1, 1]);
        } else {
            assert!(hello.session_id.is_empty());
            assert!(hello.supported_versions().is_empty());
            assert!(hello.extension(Extension::KEY_SHARE).is_none());
        }
    }
}

/// tls-parser must read every probe to its last byte, extensions included.
#[test]
fn tls_parser_reads_every_probe() {
    use tls_parser::{parse_tls_extensions, parse_tls_plaintext, TlsMessage, TlsMessageHandshake};
    for version in TlsVersion::ALL {
        let bytes = build_probe_hello(&spec(version, &ECDHE_AND_RSA, Some("a.example")));
        let (rest, record) = parse_tls_plaintext(&bytes).unwrap();
        assert!(rest.is_empty());
        let [TlsMessage::Handshake(TlsMessageHandshake::ClientHello(hello))] = &record.msg[..]
        else {
            panic!("{version}: not one ClientHello");
        };
        assert_eq!(hello.version.0, version.min(TlsVersion::Tls12).wire());
        let (rest, extensions) = parse_tls_extensions(hello.ext.unwrap_or_default()).unwrap();
        assert!(rest.is_empty());
        assert_eq!(extensions.is_empty(), version == TlsVersion::Ssl3);
    }
}

#[test]
fn curves_only_with_ecdhe_suites() {
    let rsa_only = build_probe_hello(&spec(TlsVersion::Tls10, &[0x002f, 0x0035], None));
    let hello = parse_client_hello(&rsa_only).unwrap();
    assert_eq!(kinds(&hello), [EXTENDED_MASTER_SECRET, RENEGOTIATION_INFO]);
    // Fixed-key ECDH suites need the curves as much as ECDHE ones.
    let ecdh = build_probe_hello(&spec(TlsVersion::Tls11, &[0xc004], None));
    let hello = parse_client_hello(&ecdh).unwrap();
    assert!(!hello.supported_groups().is_empty());
}

#[test]
fn sni_only_for_dns_names() {
    let name_of = |name: &str| {
        let bytes = build_probe_hello(&spec(TlsVersion::Tls12, &[0x002f], Some(name)));
        parse_client_hello(&bytes).unwrap().server_name()
    };
    assert_eq!(
        name_of("mail.example.com").as_deref(),
        Some("mail.example.com")
    );
    assert_eq!(
        name_of("Mail.Example.COM.").as_deref(),
        Some("Mail.Example.COM")
    );
    assert_eq!(name_of("localhost").as_deref(), Some("localhost"));
    assert_eq!(name_of("_imaps.example").as_deref(), Some("_imaps.example"));
    for not_dns in [
        "192.0.2.25",
        "10.1",
        "::1",
        "[2001:db8::1]",
        "",
        ".",
        "mail..example",
        "mäil.example",
        "mail example",
        &format!("{}.example", "a".repeat(64)),
        &format!("{}a.example", "abcdefgh.".repeat(31)),
    ] {
        assert_eq!(name_of(not_dns), None, "{not_dns:?}");
    }
}

#[test]
fn at_most_128_suites() {
    let many: Vec<u16> = (0x0001..=0x00c8).collect();
    let bytes = build_probe_hello(&spec(TlsVersion::Tls12, &many, None));
    let hello = parse_client_hello(&bytes).unwrap();
    assert_eq!(hello.cipher_suites, many[..MAX_PROBE_SUITES]);
}

#[test]
fn padding_avoids_lengths_servers_choke_on() {
    let mut padded = 0;
    for version in TlsVersion::ALL {
        for suite_count in [1, 7, 30, 61, 90, 128] {
            let suites: Vec<u16> = (0xc001..).take(suite_count).collect();
            for label in 1..=63 {
                for labels in 1..=4 {
                    let name = vec!["a".repeat(label); labels].join(".") + ".example";
                    let bytes = build_probe_hello(&spec(version, &suites, Some(&name)));
                    if version != TlsVersion::Ssl3 {
                        assert_probe_length(&bytes);
                    }
                    let hello = parse_client_hello(&bytes).unwrap();
                    padded += usize::from(hello.extension(Extension::PADDING).is_some());
                    if let Some(last) = hello.extensions.last() {
                        assert!(!last.data.is_empty());
                    }
                }
            }
        }
    }
    assert!(padded > 100, "the sweep should reach the padded sizes");
}

#[test]
fn caller_random_drives_every_random_field() {
    let mut one = spec(TlsVersion::Tls13, &TLS13_SUITES, None);
    assert_eq!(build_probe_hello(&one), build_probe_hello(&one));
    let first = parse_client_hello(&build_probe_hello(&one)).unwrap();
    one.random[0] ^= 1;
    let second = parse_client_hello(&build_probe_hello(&one)).unwrap();
    assert_eq!(second.random, one.random);
    assert_ne!(first.session_id, second.session_id);
    assert_ne!(
        first.extension(Extension::KEY_SHARE),
        second.extension(Extension::KEY_SHARE)
    );
    assert_ne!(
        first.session_id[..],
        first.extension(Extension::KEY_SHARE).unwrap().data[6..]
    );
}

/// The handshake message must avoid 256-511 bytes and lengths of 10 or 14 mod 256.
fn assert_probe_length(record: &[u8]) {
    let message_len = record.len() - 5;
    assert!(!(256..=511).contains(&message_len), "{message_len}");
    assert!(!matches!(message_len % 256, 10 | 14), "{message_len}");
}
