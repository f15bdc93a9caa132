//! SASL as IMAP `AUTHENTICATE` and POP3 `AUTH` carry it: PLAIN (RFC 4616) on both sides of the
//! gateway, towards clients also LOGIN, the older two-step mechanism many devices that grew up
//! with SMTP AUTH still use, and towards the upstream the OAuth 2.0 bearer mechanisms XOAUTH2
//! and OAUTHBEARER (RFC 7628).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::line::single_line;
use crate::{BearerMechanism, BearerToken, Credentials, CredentialsRefused, Secret};

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

/// The longest failure challenge a bearer exchange accepts, in bytes of base64. RFC 7628's
/// JSON status is a few short fields (a real one is under 200 bytes); the cap keeps what the
/// upstream can make the gateway decode and record small.
pub const MAX_FAILURE_CHALLENGE: usize = 4096;

/// The base64 initial response that carries a bearer token:
/// - XOAUTH2: `user=MAILBOX` 0x01 `auth=Bearer TOKEN` 0x01 0x01;
/// - OAUTHBEARER (RFC 7628 section 3.1): the GS2 header `n,a=MAILBOX,` (no channel binding;
///   `,` and `=` in the mailbox escaped as RFC 5801 wants), then 0x01 `auth=Bearer TOKEN`
///   0x01 0x01. The `host` and `port` pairs are optional and left out: the gateway's name for
///   the upstream may not be the one the server knows itself by.
pub fn encode_bearer(token: &BearerToken) -> String {
    let mut raw =
        Vec::with_capacity(token.mailbox().len() + token.access_token().expose().len() + 32);
    match token.mechanism() {
        BearerMechanism::XOAuth2 => {
            raw.extend_from_slice(b"user=");
            raw.extend_from_slice(token.mailbox().as_bytes());
        }
        BearerMechanism::OAuthBearer => {
            raw.extend_from_slice(b"n,a=");
            for byte in token.mailbox().bytes() {
                match byte {
                    b',' => raw.extend_from_slice(b"=2C"),
                    b'=' => raw.extend_from_slice(b"=3D"),
                    other => raw.push(other),
                }
            }
            raw.push(b',');
        }
    }
    raw.extend_from_slice(b"\x01auth=Bearer ");
    raw.extend_from_slice(token.access_token().expose());
    raw.extend_from_slice(b"\x01\x01");
    STANDARD.encode(raw)
}

/// What the client sends, base64-encoded, after the upstream's failure challenge so that the
/// server can end the exchange with its NO / -ERR: XOAUTH2 takes an empty response;
/// OAUTHBEARER a lone 0x01 (RFC 7628 section 3.2.3).
pub(crate) fn failure_challenge_answer(mechanism: BearerMechanism) -> &'static str {
    match mechanism {
        BearerMechanism::XOAuth2 => "",
        BearerMechanism::OAuthBearer => "AQ==",
    }
}

/// The failure challenge's base64 was longer than [`MAX_FAILURE_CHALLENGE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChallengeTooLong;

/// The upstream's failure challenge in a bearer exchange, decoded for the record: the JSON
/// status as one line, control characters made spaces; `None` for an empty challenge. A
/// challenge that is not base64 is kept as sent, since it is still the upstream's only word
/// on why.
pub(crate) fn decode_failure_challenge(
    challenge: &[u8],
) -> Result<Option<String>, ChallengeTooLong> {
    let challenge = challenge.trim_ascii();
    if challenge.len() > MAX_FAILURE_CHALLENGE {
        return Err(ChallengeTooLong);
    }
    if challenge.is_empty() {
        return Ok(None);
    }
    let decoded = STANDARD.decode(challenge);
    let text = String::from_utf8_lossy(decoded.as_deref().unwrap_or(challenge));
    Ok(Some(single_line(&text)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::creds;
    use crate::BearerTokenError;

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
    fn bearer_responses_have_the_rfc_shapes() {
        let token = |mechanism| {
            BearerToken::new("bob@example.com", Secret::new("ya29.a0-_~+/="), mechanism).unwrap()
        };
        let decoded = |mechanism| STANDARD.decode(encode_bearer(&token(mechanism))).unwrap();
        assert_eq!(
            decoded(BearerMechanism::XOAuth2),
            b"user=bob@example.com\x01auth=Bearer ya29.a0-_~+/=\x01\x01"
        );
        assert_eq!(
            decoded(BearerMechanism::OAuthBearer),
            b"n,a=bob@example.com,\x01auth=Bearer ya29.a0-_~+/=\x01\x01"
        );
        assert_eq!(failure_challenge_answer(BearerMechanism::XOAuth2), "");
        assert_eq!(
            STANDARD.decode(failure_challenge_answer(BearerMechanism::OAuthBearer)),
            Ok(vec![1])
        );
    }

    #[test]
    fn bearer_tokens_that_cannot_be_framed_are_refused_without_showing_them() {
        let make = |mailbox: &str, token: &[u8]| {
            BearerToken::new(mailbox, Secret::new(token), BearerMechanism::XOAuth2)
        };
        assert_eq!(make("", b"t"), Err(BearerTokenError::Mailbox));
        assert_eq!(make("a\u{1}b", b"t"), Err(BearerTokenError::Mailbox));
        assert_eq!(make("a\nb", b"t"), Err(BearerTokenError::Mailbox));
        for token in [&b""[..], b"a\x01b", b"a b", b"a\r\n", "tök".as_bytes()] {
            assert_eq!(make("bob", token), Err(BearerTokenError::AccessToken));
        }
        let shown = format!("{:?}", make("bob", b"hunter2hunter2").unwrap());
        assert!(
            shown.contains("bob") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn failure_challenges_decode_to_one_bounded_line() {
        let json = r#"{"status":"invalid_token","schemes":"bearer"}"#;
        let b64 = STANDARD.encode(json);
        assert_eq!(
            decode_failure_challenge(b64.as_bytes()),
            Ok(Some(json.into()))
        );
        assert_eq!(decode_failure_challenge(b" e30= "), Ok(Some("{}".into())));
        assert_eq!(
            decode_failure_challenge(b"no json"),
            Ok(Some("no json".into()))
        );
        assert_eq!(decode_failure_challenge(b" "), Ok(None));
        let long = vec![b'A'; MAX_FAILURE_CHALLENGE + 4];
        assert_eq!(decode_failure_challenge(&long), Err(ChallengeTooLong));
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
