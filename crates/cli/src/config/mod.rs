//! The TOML config file: read, then validated into the gateway's typed settings. Every problem
//! is reported with its key and what to do, all at once.

mod enforcement;
mod file;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use gateway::settings::GatewaySettings;
use policy::PolicySet;

pub use enforcement::parse_instant;
pub use validate::ConfigProblem;

/// A config that passed validation.
#[derive(Debug)]
pub struct Config {
    pub gateway: GatewaySettings,
    /// The SQLite file for session records, relative paths taken from the config's folder.
    pub store_path: PathBuf,
    pub log_json: bool,
    /// Where `/metrics` is served; `None` without a `[metrics]` section.
    pub metrics_bind: Option<SocketAddr>,
    /// The TLS floor policies, which listener applies which, and the exception register.
    pub policy: PolicySet,
}

/// Reads and validates the config at `path`.
pub fn load(path: &Path) -> Result<Config, Vec<ConfigProblem>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigProblem::new(
            "(file)",
            format!("cannot read {}: {e}", path.display()),
            "check the path given to --config",
        )]
    })?;
    let raw: file::ConfigFile = toml::from_str(&text).map_err(|e| {
        vec![ConfigProblem::new(
            "(syntax)",
            e.message().to_string()
                + &e.span()
                    .map(|s| format!(" (at line {})", line_of(&text, s.start)))
                    .unwrap_or_default(),
            "fix the TOML; examples/ has complete configs",
        )]
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    validate::validate(raw, base)
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests;
