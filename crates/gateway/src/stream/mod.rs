//! Stream adapters the session task stacks on its sockets.

mod counted;
mod maybe_tls;
mod rewind;

pub use counted::{ByteCounts, Counted};
pub use maybe_tls::MaybeTls;
pub use rewind::Rewind;
