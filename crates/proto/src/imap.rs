//! IMAP4 pre-auth dialogues.
//!
//! Client bytes go through `framer` (lines and literals, within the limits), `command` parses
//! each message with the RFC 3501 pieces in `grammar`, and [`ClientSession`] answers it.
//! Upstream lines, which carry no literals before login, go through the crate's line buffer and
//! `response` into [`UpstreamLogin`].

mod client;
mod command;
mod framer;
mod grammar;
mod response;
mod upstream;

pub use client::ClientSession;
pub use upstream::UpstreamLogin;
