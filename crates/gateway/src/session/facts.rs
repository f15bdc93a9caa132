//! What the stages of a session learn, and the one place it enters the session's record.
//!
//! Stages never write record fields themselves: they report a [`Fact`] and [`Facts::note`]
//! merges it, so every field of a record has one writer and one spelling.

use std::net::SocketAddr;

use store::{OfferedHello, Outcome, PolicyDecision, SessionRecord};
use wire::TlsVersion;

/// One thing a stage learned about the session.
#[derive(Debug)]
pub(crate) enum Fact {
    /// Where the client connects from: the socket's peer, or the client a trusted load
    /// balancer's PROXY protocol header names.
    ClientAddress(SocketAddr),
    /// Read from the client's ClientHello, whether or not the handshake then succeeds.
    ClientHello {
        offered_max_tls: Option<TlsVersion>,
        sni: Option<String>,
        ja4: String,
        offered: OfferedHello,
    },
    /// The client's TLS handshake completed.
    ClientTls {
        version: Option<TlsVersion>,
        cipher: Option<String>,
    },
    /// The client identified its software (IMAP ID).
    ClientId(Vec<(String, Option<String>)>),
    /// The user name of the client's latest login attempt.
    Login(String),
    /// The TLS floor policy's decision on the latest login attempt.
    Policy(PolicyDecision),
    /// The upstream accepted the login over this TLS version: the session is bridged.
    LoggedIn { upstream_tls: Option<TlsVersion> },
    /// SMTP: the envelope sender (MAIL FROM) of the session's first transaction.
    EnvelopeSender(String),
    /// SMTP: the messages the upstream has accepted so far in the session.
    MessagesSubmitted(u32),
}

/// The session's record, open to the stages only through [`Facts::note`].
pub(crate) struct Facts<'r> {
    record: &'r mut SessionRecord,
}

impl<'r> Facts<'r> {
    pub fn new(record: &'r mut SessionRecord) -> Self {
        Facts { record }
    }

    /// Merges what a stage learned into the record.
    pub fn note(&mut self, fact: Fact) {
        let record = &mut *self.record;
        match fact {
            Fact::ClientAddress(client) => {
                // An IPv4 client of a dual-stack socket arrives as ::ffff:a.b.c.d; policy
                // exceptions, cohorts and the inventory must see the one address it is.
                record.client_addr = client.ip().to_canonical();
                record.client_port = client.port();
            }
            Fact::ClientHello {
                offered_max_tls,
                sni,
                ja4,
                offered,
            } => {
                record.offered_max_tls = offered_max_tls;
                record.set_sni(sni);
                record.ja4 = Some(ja4);
                record.offered = offered;
            }
            Fact::ClientTls { version, cipher } => {
                record.tls_version = version;
                record.tls_cipher = cipher;
            }
            Fact::ClientId(fields) => record.client_id = fields,
            Fact::Login(user) => record.login = Some(user),
            Fact::Policy(decision) => record.policy = Some(decision),
            Fact::LoggedIn { upstream_tls } => {
                record.upstream_tls_version = upstream_tls;
                // From here a close or a shutdown ends a session that succeeded.
                record.outcome = Outcome::Ok;
            }
            Fact::EnvelopeSender(sender) => record.envelope_sender = Some(sender),
            Fact::MessagesSubmitted(count) => record.messages_submitted = Some(count),
        }
    }

    /// The record so far, for stages that decide on what is already known.
    pub fn record(&self) -> &SessionRecord {
        self.record
    }
}
