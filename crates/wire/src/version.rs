//! Protocol versions as they appear on the wire and in configuration.

use std::fmt;
use std::str::FromStr;

/// An SSL/TLS protocol version, ordered by age (`Ssl3 < Tls10 < ... < Tls13`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    /// SSL 3.0, wire value 0x0300.
    Ssl3,
    /// TLS 1.0, wire value 0x0301.
    Tls10,
    /// TLS 1.1, wire value 0x0302.
    Tls11,
    /// TLS 1.2, wire value 0x0303.
    Tls12,
    /// TLS 1.3, wire value 0x0304.
    Tls13,
}

impl TlsVersion {
    /// Every version, oldest first.
    pub const ALL: [TlsVersion; 5] = [
        TlsVersion::Ssl3,
        TlsVersion::Tls10,
        TlsVersion::Tls11,
        TlsVersion::Tls12,
        TlsVersion::Tls13,
    ];

    /// The version a 16-bit wire value names; `None` for SSLv2, DTLS, drafts and GREASE.
    pub fn from_wire(value: u16) -> Option<TlsVersion> {
        match value {
            0x0300 => Some(TlsVersion::Ssl3),
            0x0301 => Some(TlsVersion::Tls10),
            0x0302 => Some(TlsVersion::Tls11),
            0x0303 => Some(TlsVersion::Tls12),
            0x0304 => Some(TlsVersion::Tls13),
            _ => None,
        }
    }

    /// The 16-bit value this version has in hellos and record headers.
    pub fn wire(self) -> u16 {
        match self {
            TlsVersion::Ssl3 => 0x0300,
            TlsVersion::Tls10 => 0x0301,
            TlsVersion::Tls11 => 0x0302,
            TlsVersion::Tls12 => 0x0303,
            TlsVersion::Tls13 => 0x0304,
        }
    }

    /// The short label used in configuration files: "3.0", "1.0", "1.1", "1.2" or "1.3".
    pub fn config_str(self) -> &'static str {
        match self {
            TlsVersion::Ssl3 => "3.0",
            TlsVersion::Tls10 => "1.0",
            TlsVersion::Tls11 => "1.1",
            TlsVersion::Tls12 => "1.2",
            TlsVersion::Tls13 => "1.3",
        }
    }

    /// The one spelling records, logs and reports use: "SSLv3", "TLSv1.0" ... "TLSv1.3".
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Ssl3 => "SSLv3",
            TlsVersion::Tls10 => "TLSv1.0",
            TlsVersion::Tls11 => "TLSv1.1",
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        }
    }

    /// Reads a configuration label ("1.0" ... "1.3", "3.0" for SSLv3), also accepting the
    /// display form ("TLSv1.2", "SSLv3") in any case.
    pub fn from_config_str(label: &str) -> Option<TlsVersion> {
        let label = label.trim();
        TlsVersion::ALL
            .into_iter()
            .find(|v| label == v.config_str() || label.eq_ignore_ascii_case(&v.to_string()))
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A configuration value that names no TLS version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown TLS version {0:?}: use one of \"1.0\", \"1.1\", \"1.2\", \"1.3\" (or \"3.0\" for SSLv3)")]
pub struct UnknownVersion(pub String);

impl FromStr for TlsVersion {
    type Err = UnknownVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TlsVersion::from_config_str(s).ok_or_else(|| UnknownVersion(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_values_round_trip() {
        for v in TlsVersion::ALL {
            assert_eq!(TlsVersion::from_wire(v.wire()), Some(v));
        }
        for other in [0x0002, 0x0305, 0xfefd, 0x7f1c, 0x0a0a] {
            assert_eq!(TlsVersion::from_wire(other), None);
        }
    }

    #[test]
    fn ordered_by_age() {
        assert!(TlsVersion::Ssl3 < TlsVersion::Tls10);
        assert!(TlsVersion::Tls11 < TlsVersion::Tls12);
        assert_eq!(TlsVersion::ALL.iter().max(), Some(&TlsVersion::Tls13));
    }

    #[test]
    fn display_names() {
        let names: Vec<String> = TlsVersion::ALL.iter().map(|v| v.to_string()).collect();
        assert_eq!(names, ["SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]);
    }

    #[test]
    fn config_labels() {
        for v in TlsVersion::ALL {
            assert_eq!(v.config_str().parse::<TlsVersion>(), Ok(v));
            assert_eq!(TlsVersion::from_config_str(&v.to_string()), Some(v));
        }
        assert_eq!(
            TlsVersion::from_config_str(" 1.2 "),
            Some(TlsVersion::Tls12)
        );
        assert_eq!(
            TlsVersion::from_config_str("tlsv1.0"),
            Some(TlsVersion::Tls10)
        );
        let err = "1.4".parse::<TlsVersion>().unwrap_err();
        assert!(err.to_string().contains("\"1.2\""), "{err}");
        assert_eq!(TlsVersion::from_config_str("12"), None);
    }
}
