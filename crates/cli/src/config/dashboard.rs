//! `[dashboard]`: the address `mailtls dashboard` binds (loopback unless told otherwise) and
//! the file holding the token it asks for, which any address beyond loopback requires.

use std::net::SocketAddr;
use std::path::PathBuf;

use gateway::settings::ListenerSettings;

use super::file::DashboardSection;
use super::validate::Checker;

/// Shortest token accepted: 128 bits as hex or base64 are longer.
pub const MIN_TOKEN_CHARS: usize = 20;

/// Where the dashboard listens when neither `--bind` nor `[dashboard] bind` says.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// A validated `[dashboard]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DashboardSettings {
    /// `bind`, when given.
    pub bind: Option<SocketAddr>,
    /// `token_file`: a file whose first line is the token (checked to be long enough).
    pub token_file: Option<PathBuf>,
}

pub(super) fn validate(
    c: &mut Checker,
    section: &DashboardSection,
    listeners: &[ListenerSettings],
    metrics_bind: Option<SocketAddr>,
) -> DashboardSettings {
    let bind = section.bind.as_deref().and_then(|text| {
        let Ok(addr) = text.parse::<SocketAddr>() else {
            c.report(
                "dashboard.bind",
                format!("\"{text}\" is not an IP:port"),
                format!("write e.g. \"{DEFAULT_BIND}\""),
            );
            return None;
        };
        if listeners.iter().any(|l| l.bind == addr) || metrics_bind == Some(addr) {
            c.report(
                "dashboard.bind",
                format!("{addr} is already a listener's or the metrics endpoint's"),
                "give the dashboard a port of its own, e.g. 8080",
            );
            return None;
        }
        Some(addr)
    });
    let token_file = section.token_file.as_deref().and_then(|file| {
        let path = c.existing(
            "dashboard.token_file",
            file,
            "a file holding the dashboard's token",
        )?;
        match std::fs::read_to_string(&path) {
            Ok(text)
                if text.lines().next().unwrap_or("").trim().chars().count() >= MIN_TOKEN_CHARS =>
            {
                Some(path)
            }
            // The token itself is never repeated in a problem.
            Ok(_) => {
                c.report(
                    "dashboard.token_file",
                    format!(
                        "the first line of {} is shorter than {MIN_TOKEN_CHARS} characters",
                        path.display()
                    ),
                    "write a long random token, e.g. openssl rand -hex 32 > FILE",
                );
                None
            }
            Err(e) => {
                c.report(
                    "dashboard.token_file",
                    format!("cannot read {}: {e}", path.display()),
                    "make it readable by the user running mailtls dashboard",
                );
                None
            }
        }
    });
    if let Some(addr) = bind {
        if !addr.ip().to_canonical().is_loopback() && token_file.is_none() {
            c.report(
                "dashboard.bind",
                format!("{addr} is beyond loopback and no token_file protects it"),
                "set dashboard.token_file (openssl rand -hex 32 > FILE), or bind to 127.0.0.1",
            );
        }
    }
    DashboardSettings { bind, token_file }
}
