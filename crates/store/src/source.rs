//! Where a session record came from: the gateway itself, or a discovery source that saw the
//! client without bridging it (a packet capture, a mail server's log, a Microsoft 365 export).

use std::fmt;
use std::str::FromStr;

/// The origin of a session record, kept with the record and with every client it counts for.
///
/// The labels from [`Source::as_str`] are what the store writes: never rename one, only add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// A session bridged by `mailtls gateway`.
    Gateway,
    /// A handshake found in a packet capture file (`mailtls import pcap`).
    Capture,
    /// A handshake seen live on an interface (`mailtls sensor`).
    Sensor,
    /// A login or failed handshake in a Dovecot log (`mailtls import dovecot`).
    DovecotLog,
    /// A connection or login in a Postfix log (`mailtls import postfix`).
    PostfixLog,
    /// A sign-in in a Microsoft Entra ID sign-in log export.
    EntraSignIns,
    /// A sender in Exchange Online's SMTP AUTH clients report export.
    SmtpAuthReport,
}

impl Source {
    /// Every source, in declaration order.
    pub const ALL: [Source; 7] = [
        Source::Gateway,
        Source::Capture,
        Source::Sensor,
        Source::DovecotLog,
        Source::PostfixLog,
        Source::EntraSignIns,
        Source::SmtpAuthReport,
    ];

    /// Whether records from this source say if TLS was used. An Entra sign-in does not (no
    /// property of a sign-in holds it), so its missing TLS version is not a plaintext login.
    pub fn knows_tls(self) -> bool {
        self != Source::EntraSignIns
    }

    /// The stable label the store writes, e.g. `dovecot_log`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Gateway => "gateway",
            Source::Capture => "capture",
            Source::Sensor => "sensor",
            Source::DovecotLog => "dovecot_log",
            Source::PostfixLog => "postfix_log",
            Source::EntraSignIns => "entra_sign_ins",
            Source::SmtpAuthReport => "smtp_auth_report",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A label that names no [`Source`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSource(pub String);

impl fmt::Display for UnknownSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown record source {:?}", self.0)
    }
}

impl std::error::Error for UnknownSource {}

impl FromStr for Source {
    type Err = UnknownSource;

    fn from_str(label: &str) -> Result<Source, UnknownSource> {
        Source::ALL
            .into_iter()
            .find(|s| s.as_str() == label)
            .ok_or_else(|| UnknownSource(label.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_reads_back_as_its_source() {
        for source in Source::ALL {
            assert_eq!(source.as_str().parse::<Source>(), Ok(source));
        }
        assert!("pcap".parse::<Source>().is_err());
    }
}
