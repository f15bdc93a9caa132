//! Verdicts against named policies: each failing check gives one reason in plain words.

mod presets;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::report::ScanReport;

/// A named policy to judge a server against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// Nothing below TLS 1.2 accepted (the default; the Exchange Online cutoff).
    MinTls12,
    /// Mozilla's "intermediate" server configuration (v5.7).
    MozillaIntermediate,
    /// Mozilla's "modern" server configuration (v5.7): TLS 1.3 only.
    MozillaModern,
    /// NIST SP 800-52 Rev. 2 for government servers.
    Nist80052r2,
}

/// Whether a scanned address passes its preset, and every reason it does not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The preset's name, e.g. "min-tls12".
    pub preset: String,
    /// True when no check failed.
    pub pass: bool,
    /// One line per failed check.
    pub reasons: Vec<String>,
}

/// A preset name that is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown policy '{0}': use min-tls12, mozilla-intermediate, mozilla-modern or nist-800-52r2"
)]
pub struct UnknownPreset(pub String);

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 4] = [
        Preset::MinTls12,
        Preset::MozillaIntermediate,
        Preset::MozillaModern,
        Preset::Nist80052r2,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Preset::MinTls12 => "min-tls12",
            Preset::MozillaIntermediate => "mozilla-intermediate",
            Preset::MozillaModern => "mozilla-modern",
            Preset::Nist80052r2 => "nist-800-52r2",
        }
    }

    /// Whether the preset has rules on cipher suites, so the scan must enumerate them.
    pub fn needs_ciphers(self) -> bool {
        self != Preset::MinTls12
    }

    /// Judges `report` (its own `verdict` field is ignored).
    pub fn judge(self, report: &ScanReport) -> Verdict {
        let mut reasons = Vec::new();
        if let Some(error) = &report.error {
            reasons.push(format!("not scanned: {error}"));
        } else {
            presets::check(self, report, &mut reasons);
        }
        Verdict {
            preset: self.name().to_string(),
            pass: reasons.is_empty(),
            reasons,
        }
    }
}

impl FromStr for Preset {
    type Err = UnknownPreset;

    fn from_str(s: &str) -> Result<Preset, UnknownPreset> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownPreset(s.to_string()))
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests;
