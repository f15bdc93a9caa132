//! Errors raised while preparing the gateway, before any client is served.

/// A setting that cannot be put to use; `key` names it as in the config file.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SetupError {
    pub key: String,
    pub message: String,
}

impl SetupError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        SetupError {
            key: key.into(),
            message: message.into(),
        }
    }
}
