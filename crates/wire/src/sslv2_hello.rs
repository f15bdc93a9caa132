//! SSLv2-compatible ClientHellos (RFC 5246 appendix E.2): the format clients of the early
//! 2000s used to offer SSLv3 or TLS 1.0 while still reaching SSLv2-only servers.

use crate::client_hello::{ClientHello, HelloError, CLIENT_HELLO};
use crate::reader::Reader;

/// The record "version" [`ClientHello::record_version`] reports for this format.
pub(crate) const SSLV2_VERSION: u16 = 0x0002;
/// Message type, version and the three lengths.
const MIN_LEN: usize = 9;

/// Parses a hello whose first byte has the high bit set: a two-byte SSLv2 record header
/// (15-bit length) and a CLIENT-HELLO message.
pub(crate) fn parse(buf: &[u8]) -> Result<ClientHello, HelloError> {
    // Byte 2 is the message type and byte 3 the major version (0 for SSLv2, 3 beyond):
    // anything else is not an SSLv2 hello, whatever the first byte looked like.
    if buf.get(2).is_some_and(|&kind| kind != CLIENT_HELLO)
        || buf.get(3).is_some_and(|&major| major != 0 && major != 3)
    {
        return Err(HelloError::NotTls);
    }
    let [first, second, ..] = *buf else {
        return Err(HelloError::Incomplete);
    };
    let len = usize::from(u16::from_be_bytes([first & 0x7f, second]));
    // Shorter than the fixed fields, it is no hello; deciding this from the length alone
    // keeps the answer the same however many bytes have arrived.
    if len < MIN_LEN {
        return Err(HelloError::NotTls);
    }
    let Some(message) = buf.get(2..2 + len) else {
        return Err(HelloError::Incomplete);
    };
    decode(message).map_err(HelloError::Malformed)
}

fn decode(message: &[u8]) -> Result<ClientHello, String> {
    let mut r = Reader::new(message);
    r.u8("SSLv2 msg_type")?;
    let legacy_version = r.u16("SSLv2 version")?;
    let specs_len = r.u16("cipher_spec_length")?;
    let session_id_len = r.u16("session_id_length")?;
    let challenge_len = r.u16("challenge_length")?;
    let specs = r.take(usize::from(specs_len), "cipher_specs")?;
    let session_id = r.take(usize::from(session_id_len), "session_id")?;
    let challenge = r.take(usize::from(challenge_len), "challenge")?;
    r.finish("challenge")?;
    if !specs.len().is_multiple_of(3) {
        return Err(format!(
            "SSLv2 cipher_specs of {} bytes is not whole 3-byte specs",
            specs.len()
        ));
    }
    if session_id.len() > 32 {
        return Err(format!(
            "SSLv2 session_id of {} bytes exceeds 32",
            session_id.len()
        ));
    }
    if !(16..=32).contains(&challenge.len()) {
        return Err(format!(
            "SSLv2 challenge of {} bytes is outside 16 to 32",
            challenge.len()
        ));
    }
    // Specs with a zero first byte are TLS suites; the others exist only in SSLv2.
    let cipher_suites = specs
        .chunks_exact(3)
        .filter(|spec| spec[0] == 0)
        .map(|spec| u16::from_be_bytes([spec[1], spec[2]]))
        .collect();
    let mut random = [0; 32];
    random[32 - challenge.len()..].copy_from_slice(challenge);
    Ok(ClientHello {
        record_version: SSLV2_VERSION,
        legacy_version,
        random,
        session_id: session_id.to_vec(),
        cipher_suites,
        compression: vec![0],
        extensions: Vec::new(),
    })
}
