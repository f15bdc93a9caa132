//! The pair of proto machines for each protocol, so the session code is written once.

use proto::{imap, pop3, ClientDialogue, DialogueOptions, UpstreamAuth, UpstreamDialogue};

/// A mail protocol the gateway bridges: its client-facing and upstream-facing machines.
pub(crate) trait Bridge {
    type Client: ClientDialogue + Send;
    type Upstream: UpstreamDialogue + Send;

    fn client(options: DialogueOptions) -> Self::Client;
    fn upstream(auth: UpstreamAuth, starttls: bool) -> Self::Upstream;
}

pub(crate) struct ImapBridge;

impl Bridge for ImapBridge {
    type Client = imap::ClientSession;
    type Upstream = imap::UpstreamLogin;

    fn client(options: DialogueOptions) -> Self::Client {
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

    fn client(options: DialogueOptions) -> Self::Client {
        pop3::ClientSession::new(options)
    }

    fn upstream(auth: UpstreamAuth, starttls: bool) -> Self::Upstream {
        pop3::UpstreamLogin::new(auth, starttls)
    }
}
