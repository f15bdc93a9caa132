//! Arbitrary bytes as a token cache file: reading must never panic, and anything that opens
//! must have been sealed under the key, which a fuzzer cannot forge. Then the same bytes as the
//! text of cached tokens: what is written reads back the same.
//!
//! Input layout: the whole input is the file; its lines, split on 0xFF, make tokens for the
//! round trip.

#![no_main]

use std::path::Path;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use oauth::{CacheKey, CachedToken, Lifetime, RefreshFailure, Secret, TokenCacheFile, TokenKey};

fuzz_target!(|data: &[u8]| {
    let key = CacheKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").expect("key");
    let file = TokenCacheFile::new(Path::new("fuzz.enc"), &key);
    assert!(file.decode(data).is_err(), "forged a sealed cache");

    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let parts: Vec<&[u8]> = data.split(|&b| b == 0xFF).collect();
    let tokens: Vec<CachedToken> = parts
        .chunks(3)
        .map(|chunk| {
            let field = |i: usize| chunk.get(i).copied().unwrap_or_default();
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs(field(0).len() as u64 * 1000);
            CachedToken {
                key: TokenKey {
                    app: text(field(0)),
                    mailbox: text(field(1)),
                    scope: text(field(2)),
                },
                access: (!field(1).is_empty()).then(|| {
                    (
                        Secret::new(text(field(1))),
                        Lifetime::starting(at, Some(Duration::from_secs(3600))),
                    )
                }),
                refresh: (!field(2).is_empty()).then(|| Secret::new(text(field(2)))),
                last_error: (!field(0).is_empty()).then(|| RefreshFailure {
                    at,
                    message: text(field(0)),
                }),
                updated_at: at,
            }
        })
        .collect();
    let sealed = file.encode(&tokens).expect("encode");
    assert_eq!(file.decode(&sealed).expect("decode"), tokens);
});
