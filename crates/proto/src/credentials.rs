//! Credentials as they travel from the client dialogue to the upstream login.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

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
