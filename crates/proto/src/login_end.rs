//! How an upstream login machine's dialogue ended, kept so that every later `next` repeats it.
//! Shared by the line-based machines (POP3, SMTP), which end the same four ways.

use crate::UpstreamStep;

/// The end of an upstream login dialogue.
#[derive(Debug)]
pub(crate) enum LoginEnd {
    Authenticated {
        text: String,
        leftover: Vec<u8>,
    },
    Rejected(String),
    TokenRefused {
        text: String,
        oauth_error: Option<String>,
    },
    Failed(String),
}

impl LoginEnd {
    /// The step that reports this end. The leftover is handed over once: a repeated call must
    /// not duplicate bytes that belong to the client.
    pub(crate) fn step(&mut self) -> UpstreamStep {
        match self {
            LoginEnd::Authenticated { text, leftover } => UpstreamStep::Authenticated {
                text: text.clone(),
                leftover: std::mem::take(leftover),
            },
            LoginEnd::Rejected(text) => UpstreamStep::Rejected { text: text.clone() },
            LoginEnd::TokenRefused { text, oauth_error } => UpstreamStep::TokenRefused {
                text: text.clone(),
                oauth_error: oauth_error.clone(),
            },
            LoginEnd::Failed(reason) => UpstreamStep::Failed {
                reason: reason.clone(),
            },
        }
    }
}
