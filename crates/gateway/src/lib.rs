//! The bridge: accepts legacy mail clients on the LAN with whatever TLS they speak, holds the
//! pre-auth dialogue itself (sans-I/O machines from `proto`), logs in to the real server over
//! verified TLS 1.2+, then copies bytes both ways and records the session.
//!
//! Two TLS stacks on purpose: OpenSSL towards clients (the one maintained stack that still
//! speaks TLS 1.0/1.1, switched on per listener), rustls towards the upstream (which cannot
//! speak below TLS 1.2).

mod buffer_pool;
mod client_limits;
mod client_tls;
mod error;
mod gateway;
mod listener;
pub mod metrics;
mod proxy_header;
mod register_watch;
mod running;
mod session;
pub mod settings;
mod stream;
mod token_logins;
mod upstream_tls;

pub use error::SetupError;
pub use gateway::{BoundGateway, Gateway, ListenerSuites};
pub use register_watch::{watch_register, WATCH_INTERVAL};
pub use running::{ListenerChanges, RunningGateway};
pub use token_logins::TokenLogins;
