//! The policy decision point: asked once per login attempt, after the client has presented its
//! credentials and before the gateway logs in upstream. The enforcement issue plugs its rules
//! (TLS floors with schedules, exceptions) in here; the TLS floor of each listener is already
//! enforced earlier, by its OpenSSL handshake.

use std::net::IpAddr;

use wire::TlsVersion;

/// What is known about a login attempt when it is decided.
#[derive(Debug, Clone, Copy)]
pub struct LoginAttempt<'a> {
    pub listener: &'a str,
    pub client_addr: IpAddr,
    /// Negotiated client-side TLS version, `None` on a plaintext listener.
    pub tls_version: Option<TlsVersion>,
    pub login: &'a str,
}

/// The answer of the decision point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Admit,
    /// Refuse the login; `reason` is shown to the client and recorded.
    Refuse {
        reason: String,
    },
}

/// Decides whether a login attempt may go on to the upstream.
pub trait Admission: Send + Sync {
    fn decide(&self, attempt: &LoginAttempt<'_>) -> Decision;
}

/// Admits every attempt that passed its listener's TLS floor: the gateway's behaviour until
/// policies and exceptions exist.
pub struct ListenerFloorOnly;

impl Admission for ListenerFloorOnly {
    fn decide(&self, _attempt: &LoginAttempt<'_>) -> Decision {
        Decision::Admit
    }
}
