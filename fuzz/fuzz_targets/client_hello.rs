//! Arbitrary bytes as the start of a client's TCP stream. Parsing must never panic, JA4 of any
//! hello must have the fixed a_b_c shape, JA3 five comma-separated fields and a 32-digit MD5,
//! and reading more bytes may only turn `Incomplete`
//! into an answer, never change an answer already given (a `Malformed` reason may name
//! another lie than the one a shorter read saw first).
//!
//! Input layout: two bytes (big-endian) choosing where to cut the stream, then the stream.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wire::{ja3, ja4, parse_client_hello, ClientHello, HelloError};

fuzz_target!(|data: &[u8]| {
    let [high, low, ref stream @ ..] = *data else {
        return;
    };
    let cut = usize::from(u16::from_be_bytes([high, low]));
    let whole = parse_client_hello(stream);
    if let Ok(hello) = &whole {
        let fingerprint = ja4(hello);
        assert_eq!(fingerprint.len(), 36, "{fingerprint}");
        assert_eq!(fingerprint.matches('_').count(), 2, "{fingerprint}");
        let ja3 = ja3(hello);
        assert_eq!(ja3.text.matches(',').count(), 4, "{}", ja3.text);
        assert!(ja3.hash.len() == 32 && ja3.hash.bytes().all(|b| b.is_ascii_hexdigit()));
        let _ = hello.server_name();
        let _ = hello.highest_offered();
    }
    let prefix = &stream[..cut.min(stream.len())];
    let early = parse_client_hello(prefix);
    if early != Err(HelloError::Incomplete) {
        assert_eq!(
            verdict(early),
            verdict(whole),
            "a prefix of {} bytes answered differently",
            prefix.len()
        );
    }
});

fn verdict(result: Result<ClientHello, HelloError>) -> Result<ClientHello, HelloError> {
    result.map_err(|e| match e {
        HelloError::Malformed(_) => HelloError::Malformed(String::new()),
        other => other,
    })
}
