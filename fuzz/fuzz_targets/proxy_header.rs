//! Arbitrary bytes as the start of a connection on a PROXY protocol listener. Parsing must
//! never panic; a header is never longer than the bytes given nor than the cap; and reading
//! more bytes may only turn `Incomplete` into an answer, never change an answer already given
//! (an `Invalid` reason may differ).
//!
//! Input layout: two bytes (big-endian) choosing where to cut the stream, then the stream.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wire::{parse_proxy_header, ProxyHeader, ProxyHeaderError, MAX_PROXY_HEADER_BYTES};

fuzz_target!(|data: &[u8]| {
    let [high, low, ref stream @ ..] = *data else {
        return;
    };
    let cut = usize::from(u16::from_be_bytes([high, low]));
    let whole = parse_proxy_header(stream);
    if let Ok(header) = &whole {
        assert!(header.len <= stream.len(), "{header:?}");
        assert!(header.len <= MAX_PROXY_HEADER_BYTES, "{header:?}");
    }
    let prefix = &stream[..cut.min(stream.len())];
    let early = parse_proxy_header(prefix);
    if early != Err(ProxyHeaderError::Incomplete) {
        assert_eq!(
            verdict(early),
            verdict(whole),
            "a prefix of {} bytes answered differently",
            prefix.len()
        );
    }
});

fn verdict(result: Result<ProxyHeader, ProxyHeaderError>) -> Result<ProxyHeader, ProxyHeaderError> {
    result.map_err(|e| match e {
        ProxyHeaderError::Invalid(_) => ProxyHeaderError::Invalid(String::new()),
        other => other,
    })
}
