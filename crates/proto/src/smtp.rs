//! SMTP submission pre-auth dialogues (RFC 5321, with STARTTLS from RFC 3207 and AUTH from
//! RFC 4954).
//!
//! [`ClientSession`] serves the legacy device until it has authenticated with `AUTH PLAIN` or
//! `AUTH LOGIN`; [`UpstreamLogin`] logs in to the real submission server and learns which
//! [`SmtpExtensions`] it honours, so that the client can be shown the same ones;
//! [`FirstSender`] reads the envelope sender of the first transaction after the hand-over, and
//! [`AcceptedMessages`] counts the messages the upstream accepted.

mod client;
mod command;
mod envelope;
mod extensions;
mod messages;
mod reply;
mod upstream;

pub use client::ClientSession;
pub use envelope::{FirstSender, SenderWatch};
pub use extensions::SmtpExtensions;
pub use messages::AcceptedMessages;
pub(crate) use reply::{Reply, ReplyError, ReplyReader};
pub(crate) use upstream::ehlo_command;
pub use upstream::UpstreamLogin;
