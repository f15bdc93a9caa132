//! Credentials as they travel from the client dialogue to the upstream login, and the rules
//! every dialogue applies to them before anything goes upstream.

use std::fmt;

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Longest user name accepted, in bytes of UTF-8. Real account names (mailbox addresses,
/// `DOMAIN\user`) fit with room to spare; the name goes into logs and session records.
pub const MAX_USER_BYTES: usize = 255;

/// A secret (password, token or key) that never shows itself in `Debug` or `Display` output, so
/// it cannot leak through a log line, an error or a panic message, and whose bytes are wiped
/// from memory when it is dropped. The one secret type of mailtls: passwords from clients and
/// OAuth tokens alike.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    /// The secret's bytes, for the one place that must send them on.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Why the gateway refuses credentials itself, before asking the upstream. The text is what
/// the client is told; it never quotes the user name or the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsRefused {
    /// Over [`MAX_USER_BYTES`].
    #[error("the user name is longer than {MAX_USER_BYTES} bytes")]
    UserTooLong,
    /// Unicode general categories Cc, Cf, Zl or Zp: C0/C1 controls, and invisible characters
    /// such as U+202E (right-to-left override) or U+200B (zero-width space) that would make a
    /// name in a log or report read as another.
    #[error("the user name contains control or invisible formatting characters")]
    UserHasControlCharacters,
    /// Upstreams cut a password at a NUL (or SASL PLAIN splits it there): the login would be
    /// tried with another password than the client's.
    #[error("the password contains a NUL byte")]
    PasswordHasNul,
}

/// A login name and its password, as the client presented them and as the gateway accepted
/// them: only [`Credentials::new`] makes one, so every value obeys its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: Secret,
}

impl Credentials {
    /// Credentials for `user` and `password`, unless the gateway must refuse them: a user name
    /// over [`MAX_USER_BYTES`] or holding a control or format character, or a password with a
    /// NUL. Every client dialogue (IMAP, POP3, SMTP) builds its credentials here.
    pub fn new(user: String, password: Secret) -> Result<Credentials, CredentialsRefused> {
        if user.len() > MAX_USER_BYTES {
            return Err(CredentialsRefused::UserTooLong);
        }
        if user.chars().any(is_control_or_format) {
            return Err(CredentialsRefused::UserHasControlCharacters);
        }
        if password.expose().contains(&0) {
            return Err(CredentialsRefused::PasswordHasNul);
        }
        Ok(Credentials { user, password })
    }

    /// The login name, recorded in the session store.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The password, to send on upstream and nowhere else.
    pub fn password(&self) -> &Secret {
        &self.password
    }
}

/// Whether `c` is a control or format character (Unicode categories Cc, Cf, Zl and Zp: escape
/// sequences, U+202E right-to-left override, zero-width characters), which could reorder or
/// hide text wherever a client's string is shown. From the Unicode tables of a maintained crate
/// rather than a list kept here: new format characters arrive with new Unicode versions.
pub fn is_control_or_format(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(user: &str, password: &[u8]) -> Option<CredentialsRefused> {
        Credentials::new(user.into(), Secret::new(password)).err()
    }

    #[test]
    fn user_names_up_to_255_bytes_are_accepted() {
        assert_eq!(refusal(&"a".repeat(255), b"pw"), None);
        // 127 two-byte characters and one byte: 255 bytes, though only 128 characters.
        assert_eq!(refusal(&("ü".repeat(127) + "a"), b"pw"), None);
        assert_eq!(
            refusal(&"a".repeat(256), b"pw"),
            Some(CredentialsRefused::UserTooLong)
        );
        assert_eq!(
            refusal(&"ü".repeat(128), b"pw"),
            Some(CredentialsRefused::UserTooLong)
        );
    }

    #[test]
    fn control_and_format_characters_are_refused_anywhere_in_the_name() {
        for bad in [
            "\0",
            "\t",
            "\r",
            "\n",
            "\u{7f}",
            "\u{85}",
            "\u{9b}", // Cc
            "\u{202e}",
            "\u{202d}",
            "\u{200b}",
            "\u{200d}",
            "\u{2066}",
            "\u{feff}",
            "\u{ad}",
            "\u{e0001}", // Cf
            "\u{2028}",  // Zl
            "\u{2029}",  // Zp
        ] {
            for user in [
                format!("{bad}alice"),
                format!("al{bad}ice"),
                format!("alice{bad}"),
            ] {
                assert_eq!(
                    refusal(&user, b"pw"),
                    Some(CredentialsRefused::UserHasControlCharacters),
                    "{user:?}"
                );
            }
        }
    }

    #[test]
    fn ordinary_names_pass() {
        for user in [
            "alice",
            "alice@example.org",
            "CORP\\scanner 3",
            "jörg",
            "名前@例え.jp",
            "a b", // space is Zs, not a separator of lines
            "",
        ] {
            assert_eq!(
                refusal(user, "pässwörd €\"\\ ".as_bytes()),
                None,
                "{user:?}"
            );
        }
    }

    #[test]
    fn a_nul_anywhere_in_the_password_is_refused() {
        for password in [&b"\0"[..], b"\0pw", b"p\0w", b"pw\0"] {
            assert_eq!(
                refusal("alice", password),
                Some(CredentialsRefused::PasswordHasNul),
                "{password:?}"
            );
        }
        assert_eq!(refusal("alice", b"\x01\x7f\xff"), None);
    }

    #[test]
    fn the_refusal_never_quotes_the_password() {
        let error = Credentials::new("alice".into(), Secret::new(&b"hunter\x002"[..])).unwrap_err();
        assert!(!error.to_string().contains("hunter"));
    }
}

/// The SASL mechanism that carries an OAuth 2.0 access token to the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerMechanism {
    /// XOAUTH2, the form Exchange Online and Gmail document.
    XOAuth2,
    /// OAUTHBEARER (RFC 7628), the standard form; some servers accept only this one.
    OAuthBearer,
}

impl BearerMechanism {
    /// The mechanism's name as capability lists and `AUTHENTICATE` / `AUTH` spell it.
    pub fn name(self) -> &'static str {
        match self {
            BearerMechanism::XOAuth2 => "XOAUTH2",
            BearerMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// An OAuth 2.0 access token and the mailbox it opens: XOAUTH2's `user=`, OAUTHBEARER's
/// authorization identity. The mailbox may be a shared one the token's owner was granted.
/// Checked when made, so every upstream machine can frame it without a second look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerToken {
    mailbox: String,
    access_token: Secret,
    mechanism: BearerMechanism,
}

/// Why a mailbox and token cannot travel in a SASL bearer response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BearerTokenError {
    /// Empty, or with a control character, which would end a field (XOAUTH2 and OAUTHBEARER
    /// separate fields with 0x01) or forge a line in logs.
    #[error("the mailbox name is empty or holds a control character")]
    Mailbox,
    /// Empty, or with a byte that is not printable ASCII: RFC 6750 bearer tokens are base64-ish
    /// text, so anything else is a broken token endpoint, never worth sending.
    #[error("the access token is empty or holds a byte that is not printable ASCII")]
    AccessToken,
}

impl BearerToken {
    /// A token for `mailbox`, sent with `mechanism`.
    pub fn new(
        mailbox: impl Into<String>,
        access_token: Secret,
        mechanism: BearerMechanism,
    ) -> Result<Self, BearerTokenError> {
        let mailbox = mailbox.into();
        if mailbox.is_empty() || mailbox.chars().any(char::is_control) {
            return Err(BearerTokenError::Mailbox);
        }
        let token = access_token.expose();
        if token.is_empty() || !token.iter().all(u8::is_ascii_graphic) {
            return Err(BearerTokenError::AccessToken);
        }
        Ok(BearerToken {
            mailbox,
            access_token,
            mechanism,
        })
    }

    /// The mailbox the login opens.
    pub fn mailbox(&self) -> &str {
        &self.mailbox
    }

    /// The access token, for the one place that frames it into a SASL response.
    pub(crate) fn access_token(&self) -> &Secret {
        &self.access_token
    }

    /// The SASL mechanism that carries the token.
    pub fn mechanism(&self) -> BearerMechanism {
        self.mechanism
    }
}
