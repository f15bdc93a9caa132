//! Server replies captured from `openssl s_server` (OpenSSL 3.0, a throwaway CA and leaf
//! made for the capture) answering this crate's probe hellos, plus hand-made hostile input.

use sha2::{Digest, Sha256};

use super::*;

/// `s_server -tls1 -cipher 'DEFAULT:@SECLEVEL=0'` to a TLS 1.0 probe: ServerHello,
/// Certificate (leaf 702 bytes, CA 787 bytes), ServerKeyExchange, ServerHelloDone.
const TLS10: &[u8] = include_bytes!("../testdata/openssl_reply_tls10.bin");
/// The same server to a TLS 1.2 probe: it answers TLS 1.0.
const TLS10_TO_TLS12_PROBE: &[u8] =
    include_bytes!("../testdata/openssl_reply_tls10_to_tls12_probe.bin");
/// A default `s_server` (TLS 1.2 and 1.3) to a TLS 1.2 probe.
const TLS12: &[u8] = include_bytes!("../testdata/openssl_reply_tls12.bin");
/// As [`TLS12`] with `-max_send_frag 512`: the Certificate message spans three records.
const TLS12_FRAGMENTED: &[u8] = include_bytes!("../testdata/openssl_reply_tls12_fragmented.bin");
/// A default `s_server` to a TLS 1.3 probe: ServerHello, ChangeCipherSpec, encrypted records.
const TLS13: &[u8] = include_bytes!("../testdata/openssl_reply_tls13.bin");
/// `s_server -groups P-256` to a TLS 1.3 probe with an x25519 key share.
const HELLO_RETRY: &[u8] = include_bytes!("../testdata/openssl_reply_hello_retry.bin");
/// A default `s_server` to a TLS 1.0 probe: a fatal internal_error alert.
const ALERT: &[u8] = include_bytes!("../testdata/openssl_reply_alert.bin");

const ALL: [&[u8]; 7] = [
    TLS10,
    TLS10_TO_TLS12_PROBE,
    TLS12,
    TLS12_FRAGMENTED,
    TLS13,
    HELLO_RETRY,
    ALERT,
];

fn hello(bytes: &[u8]) -> ServerHello {
    match parse_server_reply(bytes) {
        Ok(ServerReply::Hello(hello)) => hello,
        other => panic!("no ServerHello: {other:?}"),
    }
}

fn chain(hello: &ServerHello) -> &[Vec<u8>] {
    match &hello.certificates {
        Certificates::Chain(chain) => chain,
        other => panic!("no chain: {other:?}"),
    }
}

#[test]
fn tls10_hello_and_chain() {
    let hello = hello(TLS10);
    assert_eq!(hello.record_version, 0x0301);
    assert_eq!(hello.version(), Some(TlsVersion::Tls10));
    assert!([0xc013, 0xc014, 0x002f, 0x0035, 0x000a].contains(&hello.cipher_suite));
    assert_eq!(hello.compression, 0);
    assert!(!hello.is_hello_retry_request());
    assert!(!hello.signals_downgrade());
    let chain = chain(&hello);
    let lengths: Vec<usize> = chain.iter().map(Vec::len).collect();
    assert_eq!(lengths, [702, 787]);
    assert!(chain.iter().all(|der| der.starts_with(&[0x30, 0x82])));
    let leaf_names_host = chain[0]
        .windows(b"imap.example.test".len())
        .any(|w| w == b"imap.example.test");
    assert!(leaf_names_host);
}

#[test]
fn a_tls10_server_answers_a_tls12_probe_with_tls10() {
    let hello = hello(TLS10_TO_TLS12_PROBE);
    assert_eq!(hello.version(), Some(TlsVersion::Tls10));
    assert_eq!(hello.cipher_suite, 0x002f);
    assert_eq!(chain(&hello).len(), 2);
}

#[test]
fn tls12_from_a_tls13_server_carries_the_downgrade_sentinel() {
    let hello = hello(TLS12);
    assert_eq!(hello.version(), Some(TlsVersion::Tls12));
    assert!(hello.signals_downgrade());
    assert_eq!(hello.random[24..], *b"DOWNGRD\x01");
}

#[test]
fn certificate_message_spanning_records() {
    let whole = hello(TLS12);
    let fragmented = hello(TLS12_FRAGMENTED);
    assert_eq!(chain(&fragmented), chain(&whole));
}

#[test]
fn tls13_version_comes_from_supported_versions() {
    let hello = hello(TLS13);
    assert_eq!(hello.legacy_version, 0x0303);
    assert_eq!(hello.selected_version(), 0x0304);
    assert_eq!(hello.version(), Some(TlsVersion::Tls13));
    assert!([0x1301, 0x1302, 0x1303].contains(&hello.cipher_suite));
    assert_eq!(hello.certificates, Certificates::NotInClear);
    assert!(hello.extension(Extension::KEY_SHARE).is_some());
}

#[test]
fn hello_retry_request_proves_tls13() {
    assert_eq!(
        HELLO_RETRY_RANDOM[..],
        Sha256::digest(b"HelloRetryRequest")[..]
    );
    let hello = hello(HELLO_RETRY);
    assert!(hello.is_hello_retry_request());
    assert_eq!(hello.version(), Some(TlsVersion::Tls13));
    assert_eq!(hello.certificates, Certificates::NotInClear);
}

#[test]
fn alert_reply() {
    assert_eq!(
        parse_server_reply(ALERT),
        Ok(ServerReply::Alert(Alert {
            level: 2,
            description: 80
        }))
    );
}

/// Every prefix is `Incomplete` until the ServerHello is whole, then the same hello with
/// certificates `Pending` until the Certificate message is whole.
#[test]
fn every_prefix_is_incomplete_or_pending() {
    for reply in ALL {
        let full = parse_server_reply(reply).unwrap();
        let mut answered = false;
        for end in 0..reply.len() {
            match parse_server_reply(&reply[..end]) {
                Err(ReplyError::Incomplete) => assert!(!answered, "answer lost at {end}"),
                Ok(ServerReply::Hello(partial)) => {
                    answered = true;
                    let ServerReply::Hello(ref whole) = full else {
                        panic!("hello in a prefix of an alert");
                    };
                    if partial.certificates == Certificates::Pending {
                        let mut completed = partial.clone();
                        completed.certificates = whole.certificates.clone();
                        assert_eq!(&completed, whole);
                    } else {
                        assert_eq!(&partial, whole, "prefix of {end}");
                    }
                }
                other => panic!("prefix of {end}: {other:?}"),
            }
        }
    }
}

#[test]
fn plaintext_is_not_tls() {
    for text in [
        &b"* BAD [CLIENTBUG] unknown command\r\n"[..],
        b"-ERR unknown command\r\n",
        b"554 5.7.0 Too many errors\r\n",
        b"HTTP/1.1 400 Bad Request\r\n",
    ] {
        assert_eq!(parse_server_reply(text), Err(ReplyError::NotTls));
        assert_eq!(parse_server_reply(&text[..1]), Err(ReplyError::NotTls));
    }
    assert_eq!(parse_server_reply(&[0x16, 0x02]), Err(ReplyError::NotTls));
    assert_eq!(parse_server_reply(&[]), Err(ReplyError::Incomplete));
}

fn is_malformed(bytes: &[u8]) -> bool {
    matches!(parse_server_reply(bytes), Err(ReplyError::Malformed(_)))
}

#[test]
fn lying_lengths_are_malformed() {
    // ServerHello: the session id claims one byte more.
    let mut bytes = TLS10.to_vec();
    assert_eq!(bytes[43], 0x20);
    bytes[43] = 0x21;
    assert!(is_malformed(&bytes));

    // ServerHello: the extension block claims one byte more.
    let mut bytes = TLS10.to_vec();
    let ext_len_at = 44 + 32 + 3;
    assert_eq!(
        usize::from(bytes[ext_len_at + 1]),
        93 - 4 - (ext_len_at - 9 + 2)
    );
    bytes[ext_len_at + 1] += 1;
    assert!(is_malformed(&bytes));

    // Certificate: the list, then the leaf, claim one byte more than the message holds.
    let cert_message = 5 + 93 + 5;
    assert_eq!(bytes[cert_message], CERTIFICATE);
    for at in [cert_message + 4 + 2, cert_message + 7 + 2] {
        let mut bytes = TLS10.to_vec();
        bytes[at] = bytes[at].wrapping_add(1);
        assert!(is_malformed(&bytes), "length at {at}");
    }
}

/// Builds records of `content_type` holding `data`.
fn record(content_type: u8, data: &[u8]) -> Vec<u8> {
    let mut out = vec![content_type, 0x03, 0x03];
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
    out
}

fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = (body.len() as u32).to_be_bytes();
    let mut out = vec![kind, len[1], len[2], len[3]];
    out.extend_from_slice(body);
    out
}

/// A ServerHello body choosing `suite`, with `extensions` as the raw extension block
/// (without its length) or none at all.
fn server_hello_body(version: u16, suite: u16, extensions: Option<&[u8]>) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    body.extend_from_slice(&[0x11; 32]);
    body.push(0);
    body.extend_from_slice(&suite.to_be_bytes());
    body.push(0);
    if let Some(extensions) = extensions {
        body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
        body.extend_from_slice(extensions);
    }
    body
}

#[test]
fn hello_without_extensions_then_no_certificate() {
    let messages = [
        handshake(SERVER_HELLO, &server_hello_body(0x0300, 0x0018, None)),
        handshake(14, &[]),
    ]
    .concat();
    let hello = hello(&record(22, &messages));
    assert_eq!(hello.version(), Some(TlsVersion::Ssl3));
    assert!(hello.extensions.is_empty());
    assert_eq!(hello.certificates, Certificates::Absent);
}

#[test]
fn messages_out_of_place_are_malformed() {
    assert!(is_malformed(&record(
        22,
        &handshake(CERTIFICATE, &[0, 0, 0])
    )));
    assert!(is_malformed(&record(20, &[1])));
    assert!(is_malformed(&record(23, &[1, 2, 3])));
    // A ServerHello interrupted by an alert.
    let sh = handshake(SERVER_HELLO, &server_hello_body(0x0303, 0x002f, None));
    let split = [record(22, &sh[..10]), record(21, &[2, 40])].concat();
    assert!(is_malformed(&split));
}

#[test]
fn supported_versions_must_hold_one_version() {
    let two = [0x00, 0x2b, 0x00, 0x04, 0x03, 0x04, 0x03, 0x03];
    let sh = handshake(SERVER_HELLO, &server_hello_body(0x0303, 0x1301, Some(&two)));
    assert!(is_malformed(&record(22, &sh)));
    let one = [0x00, 0x2b, 0x00, 0x02, 0x03, 0x04];
    let sh = handshake(SERVER_HELLO, &server_hello_body(0x0303, 0x1301, Some(&one)));
    assert_eq!(hello(&record(22, &sh)).version(), Some(TlsVersion::Tls13));
}

#[test]
fn oversized_messages_are_refused() {
    let sh = handshake(SERVER_HELLO, &server_hello_body(0x0303, 0x002f, None));
    let huge_certificate = [CERTIFICATE, 0x02, 0x00, 0x01];
    let bytes = [record(22, &sh), record(22, &huge_certificate)].concat();
    assert_eq!(parse_server_reply(&bytes), Err(ReplyError::TooLarge));
}

/// tls-parser reads the same ServerHello fields from the first record.
#[test]
fn agrees_with_tls_parser() {
    use tls_parser::{
        parse_tls_extensions, parse_tls_plaintext, TlsExtensionType, TlsMessage,
        TlsMessageHandshake,
    };
    for reply in [TLS10, TLS10_TO_TLS12_PROBE, TLS12, TLS13, HELLO_RETRY] {
        let ours = hello(reply);
        let (_, record) = parse_tls_plaintext(reply).unwrap();
        let Some(TlsMessage::Handshake(message)) = record.msg.first() else {
            panic!("tls-parser saw no handshake");
        };
        let (version, random, cipher, ext) = match message {
            TlsMessageHandshake::ServerHello(sh) => (sh.version.0, sh.random, sh.cipher.0, sh.ext),
            TlsMessageHandshake::HelloRetryRequest(hrr) => (
                hrr.version.0,
                &HELLO_RETRY_RANDOM[..],
                hrr.cipher.0,
                hrr.ext,
            ),
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(ours.legacy_version, version);
        assert_eq!(ours.random[..], *random);
        assert_eq!(ours.cipher_suite, cipher);
        let (_, extensions) = parse_tls_extensions(ext.unwrap_or_default()).unwrap();
        let kinds: Vec<u16> = extensions
            .iter()
            .map(|e| TlsExtensionType::from(e).0)
            .collect();
        let ours: Vec<u16> = ours.extensions.iter().map(|e| e.kind).collect();
        assert_eq!(ours, kinds);
    }
}

/// Every single-byte change to the captured replies parses or fails cleanly.
#[test]
fn single_byte_mutations_never_panic() {
    for reply in [TLS10, HELLO_RETRY, TLS13] {
        for at in 0..reply.len().min(400) {
            for value in [0, 1, 0x7f, 0x80, 0xff, reply[at] ^ 1] {
                let mut bytes = reply.to_vec();
                bytes[at] = value;
                let _ = parse_server_reply(&bytes);
                let _ = parse_server_reply(&bytes[..at + 1]);
            }
        }
    }
}
