//! The search for a password in what the gateway wrote: not only its raw bytes, but every form
//! a log line or a stored record could carry it in (escaped as Rust's `Debug` or JSON writes
//! strings, a list of bytes, hex, base64, a SASL PLAIN response). A search for the raw bytes
//! alone would pass a log that holds the password base64-encoded.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;

use crate::clients::{find, sasl_plain};

/// The lab's users: a password may sit inside a SASL PLAIN response for any of them.
const LAB_USERS: [&str; 2] = ["alice", "tricky"];

/// The encoding in which `password` occurs in `haystack`, if it does: as is; escaped as Rust's
/// `Debug` and JSON write strings; as a `Debug` list of bytes; hex; base64 alone and inside a
/// SASL PLAIN response of a lab user. An occurrence inside a longer identifier
/// (`extended_master_secret` in rustls' trace output, for the password `secret`) is a word,
/// not the password.
pub fn leaked(haystack: &[u8], password: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(password).into_owned();
    let debug = format!("{text:?}");
    let mut forms: Vec<(String, Vec<u8>)> = vec![
        ("raw bytes".into(), password.to_vec()),
        (
            "Debug-escaped".into(),
            debug.as_bytes()[1..debug.len() - 1].to_vec(),
        ),
        (
            "escape_default".into(),
            text.escape_default().to_string().into_bytes(),
        ),
        (
            "JSON-escaped".into(),
            text.replace('\\', "\\\\").replace('"', "\\\"").into_bytes(),
        ),
        (
            "a list of bytes".into(),
            password
                .iter()
                .map(|b| b.to_string())
                .collect::<Vec<_>>()
                .join(", ")
                .into_bytes(),
        ),
        (
            "hex".into(),
            password
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into_bytes(),
        ),
        // Unpadded: the padding depends on what follows the password in a longer blob.
        (
            "base64".into(),
            STANDARD_NO_PAD.encode(password).into_bytes(),
        ),
    ];
    for user in LAB_USERS {
        forms.push((
            format!("SASL PLAIN for {user}"),
            sasl_plain(user, password).into_bytes(),
        ));
    }
    let mut seen = Vec::new();
    for (form, needle) in forms {
        if seen.contains(&needle) {
            continue;
        }
        seen.push(needle.clone());
        let mut from = 0;
        while let Some(at) = find(&haystack[from..], &needle) {
            let start = from + at;
            let end = start + needle.len();
            let word = |b: Option<&u8>| b.is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_');
            let inside_identifier = form == "raw bytes"
                && password.iter().all(|b| b.is_ascii_alphanumeric())
                && (word(start.checked_sub(1).and_then(|i| haystack.get(i)))
                    || word(haystack.get(end)));
            if !inside_identifier {
                return Some(form);
            }
            from = start + 1;
        }
    }
    None
}
