//! TLS alerts as a server sends them in the clear to refuse a hello.

use std::fmt;

/// One alert: its level and description code (RFC 8446 section 6, RFC 5246 section 7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Alert {
    /// 1 is warning, 2 is fatal.
    pub level: u8,
    /// The alert description code, e.g. 40 for handshake_failure.
    pub description: u8,
}

impl Alert {
    /// Whether the level is fatal (2).
    pub fn is_fatal(&self) -> bool {
        self.level == 2
    }

    /// The registry name of the description, e.g. "protocol_version" for 70.
    pub fn description_name(&self) -> Option<&'static str> {
        Some(match self.description {
            0 => "close_notify",
            10 => "unexpected_message",
            20 => "bad_record_mac",
            21 => "decryption_failed",
            22 => "record_overflow",
            30 => "decompression_failure",
            40 => "handshake_failure",
            41 => "no_certificate",
            42 => "bad_certificate",
            43 => "unsupported_certificate",
            44 => "certificate_revoked",
            45 => "certificate_expired",
            46 => "certificate_unknown",
            47 => "illegal_parameter",
            48 => "unknown_ca",
            49 => "access_denied",
            50 => "decode_error",
            51 => "decrypt_error",
            60 => "export_restriction",
            70 => "protocol_version",
            71 => "insufficient_security",
            80 => "internal_error",
            86 => "inappropriate_fallback",
            90 => "user_canceled",
            100 => "no_renegotiation",
            109 => "missing_extension",
            110 => "unsupported_extension",
            111 => "certificate_unobtainable",
            112 => "unrecognized_name",
            113 => "bad_certificate_status_response",
            114 => "bad_certificate_hash_value",
            115 => "unknown_psk_identity",
            116 => "certificate_required",
            120 => "no_application_protocol",
            _ => return None,
        })
    }
}

impl fmt::Display for Alert {
    /// E.g. "fatal alert handshake_failure (40)".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            1 => "warning",
            2 => "fatal",
            _ => "unknown-level",
        };
        match self.description_name() {
            Some(name) => write!(f, "{level} alert {name} ({})", self.description),
            None => write!(f, "{level} alert {}", self.description),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_display() {
        let alert = Alert {
            level: 2,
            description: 70,
        };
        assert!(alert.is_fatal());
        assert_eq!(alert.to_string(), "fatal alert protocol_version (70)");
        let odd = Alert {
            level: 1,
            description: 200,
        };
        assert_eq!(odd.description_name(), None);
        assert_eq!(odd.to_string(), "warning alert 200");
    }
}
