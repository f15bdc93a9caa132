//! SASL as IMAP `AUTHENTICATE` and POP3 `AUTH` carry it: PLAIN (RFC 4616) on both sides of the
//! gateway, and towards clients also LOGIN, the older two-step mechanism many devices that grew
//! up with SMTP AUTH still use.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::{Credentials, CredentialsRefused, Secret};

/// Why a SASL response (PLAIN, or a LOGIN step) could not be used.
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
    #[error("the user name is empty")]
    EmptyUser,
    /// Well-formed, but credentials the gateway refuses (see [`Credentials::new`]).
    #[error(transparent)]
    Refused(#[from] CredentialsRefused),
}

/// The mechanisms served to clients, in the order capability lists name them.
pub const CLIENT_MECHANISMS: [&str; 2] = ["PLAIN", "LOGIN"];

/// The base64 challenges of the LOGIN mechanism, "Username:" and "Password:": the exact
/// prompts Microsoft servers send, which some devices check.
const USERNAME_PROMPT: &str = "VXNlcm5hbWU6";
const PASSWORD_PROMPT: &str = "UGFzc3dvcmQ6";

/// A client's SASL exchange as the gateway serves it, waiting for the client's next response.
#[derive(Debug)]
pub enum SaslExchange {
    /// PLAIN: one response carries user and password.
    Plain,
    /// LOGIN, first step: the response is the user name.
    LoginUser,
    /// LOGIN, second step: the response is the password of `user`.
    LoginPassword { user: String },
}

/// What one client response leads to.
#[derive(Debug)]
pub enum SaslStep {
    /// Send the exchange's [`challenge`](SaslExchange::challenge), then feed the client's next
    /// response to it.
    Challenge(SaslExchange),
    /// The exchange is complete.
    Done(Credentials),
    /// The exchange is complete, but the gateway refuses these credentials itself; the
    /// exchange is over and nothing goes upstream.
    Refused(CredentialsRefused),
    /// The response was unusable; the exchange is over.
    Failed(SaslError),
}

impl SaslExchange {
    /// The exchange for `mechanism` (any case), if the gateway serves it.
    pub fn start(mechanism: &str) -> Option<SaslExchange> {
        match mechanism.to_ascii_uppercase().as_str() {
            "PLAIN" => Some(SaslExchange::Plain),
            "LOGIN" => Some(SaslExchange::LoginUser),
            _ => None,
        }
    }

    /// The challenge that asks for this step's response (PLAIN's is empty).
    pub fn challenge(&self) -> &'static str {
        match self {
            SaslExchange::Plain => "",
            SaslExchange::LoginUser => USERNAME_PROMPT,
            SaslExchange::LoginPassword { .. } => PASSWORD_PROMPT,
        }
    }

    /// The mechanism's name, for error texts.
    pub fn mechanism(&self) -> &'static str {
        match self {
            SaslExchange::Plain => "PLAIN",
            SaslExchange::LoginUser | SaslExchange::LoginPassword { .. } => "LOGIN",
        }
    }

    /// Takes the client's base64 `response` to this step.
    pub fn respond(self, response: &[u8]) -> SaslStep {
        match self {
            SaslExchange::Plain => match decode_plain(response) {
                Ok(credentials) => SaslStep::Done(credentials),
                Err(SaslError::Refused(why)) => SaslStep::Refused(why),
                Err(error) => SaslStep::Failed(error),
            },
            SaslExchange::LoginUser => {
                let Ok(raw) = STANDARD.decode(response) else {
                    return SaslStep::Failed(SaslError::Base64);
                };
                match String::from_utf8(raw) {
                    Ok(user) if user.is_empty() => SaslStep::Failed(SaslError::EmptyUser),
                    Ok(user) => SaslStep::Challenge(SaslExchange::LoginPassword { user }),
                    Err(_) => SaslStep::Failed(SaslError::UserNotUtf8),
                }
            }
            SaslExchange::LoginPassword { user } => match STANDARD.decode(response) {
                Ok(password) => match Credentials::new(user, Secret::new(password)) {
                    Ok(credentials) => SaslStep::Done(credentials),
                    Err(why) => SaslStep::Refused(why),
                },
                Err(_) => SaslStep::Failed(SaslError::Base64),
            },
        }
    }
}

/// Decodes the base64 SASL PLAIN message `[authzid] NUL authcid NUL passwd`.
/// An authorization identity is accepted only when empty or equal to the user name, because
/// the gateway logs in upstream as exactly the user the client named. A further NUL is taken
/// as part of the password, so that [`Credentials::new`] refuses it as every dialogue does.
pub fn decode_plain(b64: &[u8]) -> Result<Credentials, SaslError> {
    let raw = STANDARD.decode(b64).map_err(|_| SaslError::Base64)?;
    let mut parts = raw.splitn(3, |&b| b == 0);
    let (authzid, authcid, passwd) = match (parts.next(), parts.next(), parts.next()) {
        (Some(z), Some(c), Some(p)) => (z, c, p),
        _ => return Err(SaslError::Shape),
    };
    if authcid.is_empty() {
        return Err(SaslError::Shape);
    }
    if !authzid.is_empty() && authzid != authcid {
        return Err(SaslError::Authzid);
    }
    let user = String::from_utf8(authcid.to_vec()).map_err(|_| SaslError::UserNotUtf8)?;
    Ok(Credentials::new(user, Secret::new(passwd))?)
}

/// Encodes credentials as a base64 SASL PLAIN message with an empty authorization identity.
pub fn encode_plain(credentials: &Credentials) -> String {
    let (user, password) = (credentials.user(), credentials.password().expose());
    let mut raw = Vec::with_capacity(user.len() + password.len() + 2);
    raw.push(0);
    raw.extend_from_slice(user.as_bytes());
    raw.push(0);
    raw.extend_from_slice(password);
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

    /// Feeds `responses` to a fresh exchange of `mechanism`; the challenges sent and the end.
    fn exchange(mechanism: &str, responses: &[&[u8]]) -> (Vec<&'static str>, SaslStep) {
        let mut current = SaslExchange::start(mechanism).expect("a served mechanism");
        let mut challenges = vec![current.challenge()];
        for (i, response) in responses.iter().enumerate() {
            match current.respond(response) {
                SaslStep::Challenge(next) if i + 1 < responses.len() => {
                    challenges.push(next.challenge());
                    current = next;
                }
                end => return (challenges, end),
            }
        }
        unreachable!("responses ran out before the exchange ended")
    }

    #[test]
    fn login_asks_for_the_user_then_the_password_with_microsofts_prompts() {
        let user = STANDARD.encode("alice");
        let password = STANDARD.encode("s p\"a\\ss ü".as_bytes());
        let (challenges, end) = exchange("login", &[user.as_bytes(), password.as_bytes()]);
        assert_eq!(challenges, ["VXNlcm5hbWU6", "UGFzc3dvcmQ6"]);
        assert_eq!(STANDARD.decode(challenges[0]).unwrap(), b"Username:");
        assert_eq!(STANDARD.decode(challenges[1]).unwrap(), b"Password:");
        let SaslStep::Done(credentials) = end else {
            panic!("{end:?}");
        };
        assert_eq!(credentials, creds("alice", "s p\"a\\ss ü".as_bytes()));
    }

    #[test]
    fn login_refuses_bad_user_names_and_base64() {
        let failure = |responses: &[&[u8]]| match exchange("LOGIN", responses).1 {
            SaslStep::Failed(error) => error,
            other => panic!("{other:?}"),
        };
        assert_eq!(failure(&[b"", b"cHc="]), SaslError::EmptyUser);
        assert_eq!(failure(&[b"!!", b"cHc="]), SaslError::Base64);
        assert_eq!(failure(&[b"/w==", b"cHc="]), SaslError::UserNotUtf8);
        assert_eq!(failure(&[b"Ym9i", b"!!"]), SaslError::Base64);
    }

    #[test]
    fn plain_takes_one_response_and_other_mechanisms_are_not_served() {
        let (challenges, end) = exchange("Plain", &[b"AGJvYgBwdw=="]);
        assert_eq!(challenges, [""]);
        assert!(matches!(end, SaslStep::Done(c) if c == creds("bob", b"pw")));
        assert!(SaslExchange::start("CRAM-MD5").is_none());
        assert!(SaslExchange::start("XOAUTH2").is_none());
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

    /// The gateway's own rules on credentials apply to both mechanisms, as to every dialogue.
    #[test]
    fn refuses_what_credentials_refuse() {
        let refused = |mechanism: &str, responses: &[&[u8]]| match exchange(mechanism, responses).1
        {
            SaslStep::Refused(why) => why,
            other => panic!("{other:?}"),
        };
        let nul_in_password = STANDARD.encode(b"\0bob\0p\0w");
        assert_eq!(
            refused("PLAIN", &[nul_in_password.as_bytes()]),
            CredentialsRefused::PasswordHasNul
        );
        let (user, password) = (STANDARD.encode("bob"), STANDARD.encode(b"pw\0"));
        assert_eq!(
            refused("LOGIN", &[user.as_bytes(), password.as_bytes()]),
            CredentialsRefused::PasswordHasNul
        );
        let rlo = STANDARD.encode("\0bob\u{202e}gpj.exe\0pw");
        assert_eq!(
            refused("PLAIN", &[rlo.as_bytes()]),
            CredentialsRefused::UserHasControlCharacters
        );
        let (long, password) = (STANDARD.encode("b".repeat(256)), STANDARD.encode("pw"));
        assert_eq!(
            refused("LOGIN", &[long.as_bytes(), password.as_bytes()]),
            CredentialsRefused::UserTooLong
        );
    }
}
