//! The pair of proto machines for each protocol, so the session code is written once.

use proto::{imap, pop3, smtp, ClientDialogue, DialogueOptions, UpstreamAuth, UpstreamDialogue};

use super::submission_watch::SubmissionWatch;
use crate::listener::UpstreamContext;

/// A mail protocol the gateway bridges: its client-facing and upstream-facing machines.
pub(crate) trait Bridge {
    type Client: ClientDialogue + Send;
    type Upstream: UpstreamDialogue + Send;

    /// The client-facing machine for a session bridged to `upstream`; `relaying` on an SMTP
    /// listener that relays for devices that cannot authenticate.
    fn client(options: DialogueOptions, upstream: &UpstreamContext, relaying: bool)
        -> Self::Client;
    fn upstream(auth: UpstreamAuth, starttls: bool) -> Self::Upstream;

    /// Keeps what a successful upstream login learned for the next sessions' clients.
    fn logged_in(_login: &Self::Upstream, _upstream: &UpstreamContext) {}

    /// A watch over the bytes copied after login, for protocols whose record names the
    /// envelope sender and counts the messages submitted.
    fn submission_watch() -> Option<SubmissionWatch> {
        None
    }
}

pub(crate) struct ImapBridge;

impl Bridge for ImapBridge {
    type Client = imap::ClientSession;
    type Upstream = imap::UpstreamLogin;

    fn client(options: DialogueOptions, _upstream: &UpstreamContext, _: bool) -> Self::Client {
        imap::ClientSession::new(options)
    }

    fn upstream(auth: UpstreamAuth, starttls: bool) -> Self::Upstream {
        imap::UpstreamLogin::new(auth, starttls)
    }
}

pub(crate) struct Pop3Bridge;

impl Bridge for Pop3Bridge {
    type Client = pop3::ClientSession;
    type Upstream = pop3::UpstreamLogin;

    fn client(options: DialogueOptions, _upstream: &UpstreamContext, _: bool) -> Self::Client {
        pop3::ClientSession::new(options)
    }

    fn upstream(auth: UpstreamAuth, starttls: bool) -> Self::Upstream {
        pop3::UpstreamLogin::new(auth, starttls)
    }
}

pub(crate) struct SmtpBridge;

impl Bridge for SmtpBridge {
    type Client = smtp::ClientSession;
    type Upstream = smtp::UpstreamLogin;

    /// The client is shown the extensions the upstream advertised at the latest login: after
    /// the hand-over it talks to the upstream, which must honour what the client uses.
    fn client(
        options: DialogueOptions,
        upstream: &UpstreamContext,
        relaying: bool,
    ) -> Self::Client {
        let extensions = *upstream
            .smtp_extensions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let session = smtp::ClientSession::new(options, extensions);
        if relaying {
            session.relaying()
        } else {
            session
        }
    }

    fn upstream(auth: UpstreamAuth, starttls: bool) -> Self::Upstream {
        smtp::UpstreamLogin::new(auth, starttls)
    }

    fn logged_in(login: &Self::Upstream, upstream: &UpstreamContext) {
        if let Some(extensions) = login.extensions() {
            *upstream
                .smtp_extensions
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = extensions;
        }
    }

    fn submission_watch() -> Option<SubmissionWatch> {
        Some(SubmissionWatch::new())
    }
}
