//! Stream adapters the session task stacks on its sockets.

mod counted;
mod keepalive;
mod maybe_tls;
mod rewind;

pub(crate) use counted::{ByteTally, Counted};
pub(crate) use keepalive::enable_keepalive;
pub(crate) use maybe_tls::MaybeTls;
pub(crate) use rewind::Rewind;
