//! How a gateway session ended, as a closed set of stable labels.

use std::fmt;
use std::str::FromStr;

/// How one gateway session ended.
///
/// The snake_case labels from [`Outcome::as_str`] are what the store writes, so they are part of the
/// on-disk format: never rename one, only add new variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The client logged in and the session ran until one side closed it.
    Ok,
    /// The upstream server rejected the client's credentials.
    AuthFailed,
    /// The gateway's policy refused the client (for example a TLS version below the listener's floor
    /// with no exception).
    RefusedByPolicy,
    /// The upstream server could not be reached (DNS, refused or reset connection).
    UpstreamUnreachable,
    /// The upstream server's certificate failed verification.
    UpstreamCertificateRejected,
    /// The upstream server answered with something the gateway could not follow.
    UpstreamProtocolError,
    /// A step of the session took longer than its configured limit.
    Timeout,
    /// The client sent something the pre-auth dialogue could not follow.
    ProtocolError,
    /// The client's TLS handshake failed, for example a TLS 1.0 client on a listener whose floor is
    /// TLS 1.2. These rows are how legacy clients are discovered.
    ClientTlsFailed,
    /// The client went away before logging in.
    ClientClosed,
    /// The gateway refused the login itself, without asking the upstream, because the client's
    /// address failed too many logins recently.
    Throttled,
    /// No access token could be had for the account's mailbox: the token endpoint was
    /// unreachable or refused to issue one (the detail says which). Not the device's fault.
    TokenUnavailable,
    /// The upstream refused the gateway's access token (the detail keeps the upstream's JSON
    /// status, e.g. a missing mailbox permission). Not the device's fault.
    TokenRefused,
    /// The account's mailbox already had as many sessions as its `max_connections` allows.
    MailboxBusy,
}

impl Outcome {
    /// Every outcome, in declaration order.
    pub const ALL: [Outcome; 14] = [
        Outcome::Ok,
        Outcome::AuthFailed,
        Outcome::RefusedByPolicy,
        Outcome::UpstreamUnreachable,
        Outcome::UpstreamCertificateRejected,
        Outcome::UpstreamProtocolError,
        Outcome::Timeout,
        Outcome::ProtocolError,
        Outcome::ClientTlsFailed,
        Outcome::ClientClosed,
        Outcome::Throttled,
        Outcome::TokenUnavailable,
        Outcome::TokenRefused,
        Outcome::MailboxBusy,
    ];

    /// The stable snake_case label stored in the database, e.g. `"auth_failed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::AuthFailed => "auth_failed",
            Outcome::RefusedByPolicy => "refused_by_policy",
            Outcome::UpstreamUnreachable => "upstream_unreachable",
            Outcome::UpstreamCertificateRejected => "upstream_certificate_rejected",
            Outcome::UpstreamProtocolError => "upstream_protocol_error",
            Outcome::Timeout => "timeout",
            Outcome::ProtocolError => "protocol_error",
            Outcome::ClientTlsFailed => "client_tls_failed",
            Outcome::ClientClosed => "client_closed",
            Outcome::Throttled => "throttled",
            Outcome::TokenUnavailable => "token_unavailable",
            Outcome::TokenRefused => "token_refused",
            Outcome::MailboxBusy => "mailbox_busy",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A label that names no [`Outcome`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown session outcome {0:?}; expected one of: ok, auth_failed, refused_by_policy, upstream_unreachable, upstream_certificate_rejected, upstream_protocol_error, timeout, protocol_error, client_tls_failed, client_closed, throttled, token_unavailable, token_refused, mailbox_busy")]
pub struct UnknownOutcome(pub String);

impl FromStr for Outcome {
    type Err = UnknownOutcome;

    /// Parses a label produced by [`Outcome::as_str`]; exact match only.
    fn from_str(label: &str) -> Result<Self, Self::Err> {
        Outcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == label)
            .ok_or_else(|| UnknownOutcome(label.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_parses_back_to_its_outcome() {
        for outcome in Outcome::ALL {
            assert_eq!(outcome.as_str().parse::<Outcome>(), Ok(outcome));
            assert_eq!(outcome.to_string(), outcome.as_str());
        }
    }

    #[test]
    fn labels_are_the_documented_ones() {
        let labels: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(
            labels,
            [
                "ok",
                "auth_failed",
                "refused_by_policy",
                "upstream_unreachable",
                "upstream_certificate_rejected",
                "upstream_protocol_error",
                "timeout",
                "protocol_error",
                "client_tls_failed",
                "client_closed",
                "throttled",
                "token_unavailable",
                "token_refused",
                "mailbox_busy",
            ]
        );
    }

    #[test]
    fn unknown_label_is_rejected_with_the_valid_ones_listed() {
        let err = "Ok".parse::<Outcome>().unwrap_err();
        assert_eq!(err, UnknownOutcome("Ok".to_owned()));
        assert!(err.to_string().contains("client_tls_failed"));
    }
}
