//! Credentials as they travel from the client dialogue to the upstream login.

use std::fmt;

/// A secret (password or token) that never shows itself in `Debug` or `Display` output, so it
/// cannot leak through a log line, an error or a panic message.
#[derive(Clone, PartialEq, Eq)]
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

/// A login name and its password, as the client presented them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The login name, recorded in the session store.
    pub user: String,
    pub password: Secret,
}

impl Credentials {
    /// Whether the user name holds a control character. No real account has one, and it would
    /// end up in logs and records, so the client machines refuse such a login themselves.
    pub fn user_has_control_characters(&self) -> bool {
        self.user.chars().any(char::is_control)
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
