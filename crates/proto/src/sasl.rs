//! SASL PLAIN (RFC 4616), shared by IMAP `AUTHENTICATE PLAIN` and POP3 `AUTH PLAIN`, on both
//! sides of the gateway.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::{Credentials, Secret};

/// Why a SASL PLAIN response could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("the response is not valid base64")]
    Base64,
    #[error("the response does not have the form authzid NUL authcid NUL password")]
    Shape,
    #[error("the user name is not UTF-8")]
    UserNotUtf8,
    #[error("the authorization identity differs from the user name, which is not supported")]
    Authzid,
}

/// Decodes the base64 SASL PLAIN message `[authzid] NUL authcid NUL passwd`.
/// An authorization identity is accepted only when empty or equal to the user name, because
/// the gateway logs in upstream as exactly the user the client named.
pub fn decode_plain(b64: &[u8]) -> Result<Credentials, SaslError> {
    let raw = STANDARD.decode(b64).map_err(|_| SaslError::Base64)?;
    let mut parts = raw.split(|&b| b == 0);
    let (authzid, authcid, passwd) = match (parts.next(), parts.next(), parts.next(), parts.next())
    {
        (Some(z), Some(c), Some(p), None) => (z, c, p),
        _ => return Err(SaslError::Shape),
    };
    if authcid.is_empty() {
        return Err(SaslError::Shape);
    }
    if !authzid.is_empty() && authzid != authcid {
        return Err(SaslError::Authzid);
    }
    let user = String::from_utf8(authcid.to_vec()).map_err(|_| SaslError::UserNotUtf8)?;
    Ok(Credentials {
        user,
        password: Secret::new(passwd.to_vec()),
    })
}

/// Encodes credentials as a base64 SASL PLAIN message with an empty authorization identity.
pub fn encode_plain(credentials: &Credentials) -> String {
    let mut raw =
        Vec::with_capacity(credentials.user.len() + credentials.password.expose().len() + 2);
    raw.push(0);
    raw.extend_from_slice(credentials.user.as_bytes());
    raw.push(0);
    raw.extend_from_slice(credentials.password.expose());
    STANDARD.encode(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::creds;

    #[test]
    fn round_trips_every_byte_of_a_password() {
        let c = creds("alice", "s p\"a\\ss ü".as_bytes());
        assert_eq!(decode_plain(encode_plain(&c).as_bytes()), Ok(c));
    }

    #[test]
    fn accepts_an_authzid_equal_to_the_user() {
        let b64 = STANDARD.encode(b"bob\0bob\0pw");
        assert_eq!(decode_plain(b64.as_bytes()), Ok(creds("bob", b"pw")));
    }

    #[test]
    fn rejects_malformed_messages() {
        assert_eq!(decode_plain(b"!!"), Err(SaslError::Base64));
        let two_parts = STANDARD.encode(b"bob\0pw");
        assert_eq!(decode_plain(two_parts.as_bytes()), Err(SaslError::Shape));
        let other = STANDARD.encode(b"admin\0bob\0pw");
        assert_eq!(decode_plain(other.as_bytes()), Err(SaslError::Authzid));
        let empty_user = STANDARD.encode(b"\0\0pw");
        assert_eq!(decode_plain(empty_user.as_bytes()), Err(SaslError::Shape));
    }
}
