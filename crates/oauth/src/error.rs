//! The errors of this crate. None of them carries a token, secret, password or key: they end
//! up in logs, session records and terminal output.

use std::fmt;

/// A setting that cannot be put to use (a file missing, a key malformed), with the key of the
/// config entry it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct SetupError {
    /// The config field, e.g. `private_key` or `token_cache.key_file`.
    pub field: String,
    /// What is wrong and what to do.
    pub problem: String,
}

impl SetupError {
    pub(crate) fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        SetupError {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// The same problem, its field prefixed with the config entry, e.g. `oauth[contoso]`.
    pub fn within(self, entry: &str) -> Self {
        SetupError {
            field: format!("{entry}.{}", self.field),
            problem: self.problem,
        }
    }
}

/// Why no access token could be had. `Unreachable` and `Refused` are what the gateway tells
/// apart: the first is transient (retry later), the second needs an admin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No answer: connection refused, TLS or certificate failure, timeout, or a 5xx answer.
    #[error("token endpoint {endpoint} unreachable: {reason}")]
    Unreachable {
        /// The token endpoint's URL.
        endpoint: String,
        /// What failed.
        reason: String,
    },
    /// The endpoint answered with an OAuth error (`invalid_client`, `invalid_grant`, ...).
    #[error("token endpoint {endpoint} refused: {}", Described(error, description))]
    Refused {
        /// The token endpoint's URL.
        endpoint: String,
        /// The OAuth `error` code.
        error: String,
        /// The endpoint's `error_description`, bounded and stripped of control characters.
        description: Option<String>,
    },
    /// An answer that is no OAuth token response.
    #[error("token endpoint {endpoint} gave an answer that is not an OAuth 2.0 token response: {reason}")]
    Malformed {
        /// The token endpoint's URL.
        endpoint: String,
        /// What was wrong with it (never the body: it may hold a token).
        reason: String,
    },
    /// A device-code account that no one has signed in yet (or whose refresh token was refused
    /// and removed).
    #[error("no refresh token for mailbox {mailbox}; run `mailtls oauth login` for its account")]
    NotSignedIn {
        /// The mailbox.
        mailbox: String,
    },
    /// The account names an app that does not exist (a config the CLI would have refused).
    #[error("no [[oauth]] entry is named {0}")]
    UnknownApp(String),
}

struct Described<'a>(&'a String, &'a Option<String>);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(d) => write!(f, "{} ({d})", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

/// The token cache file cannot be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// The key is missing or malformed.
    #[error("token cache key: {0}")]
    Key(String),
    /// The file exists but this key does not open it (wrong key, or the file was altered).
    #[error("token cache {path} cannot be decrypted with the configured key: wrong key or a damaged file. Give the key it was written with; to start over, remove the file and sign in again with `mailtls oauth login`")]
    WrongKey {
        /// The cache file.
        path: String,
    },
    /// The file is not a mailtls token cache.
    #[error("token cache {path} is not a mailtls token cache ({reason})")]
    NotACache {
        /// The cache file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// An I/O error.
    #[error("token cache {path}: {reason}")]
    Io {
        /// The cache file.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
}

/// Bounds a string that came from the token endpoint before it goes into a log or record.
pub(crate) fn bounded(text: &str) -> String {
    const MAX: usize = 300;
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX)
        .collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    out
}
