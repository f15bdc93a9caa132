//! POP3 pre-auth dialogues (RFC 1939, with CAPA from RFC 2449, STLS from RFC 2595 and AUTH
//! from RFC 5034).
//!
//! [`ClientSession`] serves the legacy client until it has sent `USER`/`PASS` or `AUTH PLAIN`;
//! [`UpstreamLogin`] logs in to the real server with the credentials the gateway chose.

mod client;
mod command;
mod status;
mod upstream;

pub use client::ClientSession;
pub use upstream::UpstreamLogin;
