//! The TOML config file: read, then validated into the gateway's typed settings. Every problem
//! is reported with its key and what to do, all at once.

mod dashboard;
mod enforcement;
mod file;
mod oauth;
mod register;
mod relay;
mod restart;
mod store_section;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ::store::StoreLocation;
use gateway::settings::GatewaySettings;
use gateway::TokenLogins;

use crate::run_as::RunAs;
use policy::PolicySet;

pub use dashboard::{DashboardSettings, DEFAULT_BIND as DEFAULT_DASHBOARD_BIND};
pub use enforcement::parse_instant;
pub use register::{NewException, RegisterEdit};
pub use store_section::{parse_age, PASSWORD_ENV};
pub use validate::ConfigProblem;

/// A config that passed validation.
#[derive(Debug)]
pub struct Config {
    pub gateway: GatewaySettings,
    /// Where session records go: `[store] path` (SQLite, relative paths taken from the
    /// config's folder; owned by `[gateway] user`, readable by `[gateway] group`) or `url`.
    pub store: StoreLocation,
    /// `[store] keep_sessions`: raw sessions older than this are pruned.
    pub keep_sessions: Option<Duration>,
    /// `[[oauth]]`, `[[account]]` and `[token_cache]`.
    pub oauth: ::oauth::settings::OAuthSettings,
    pub log_json: bool,
    /// Where `/metrics` is served; `None` without a `[metrics]` section.
    pub metrics_bind: Option<SocketAddr>,
    /// `[dashboard]`: where `mailtls dashboard` listens and its token.
    pub dashboard: DashboardSettings,
    /// The TLS floor policies, which listener applies which, and the exception register.
    pub policy: Arc<PolicySet>,
    /// What is allowed but probably a mistake, e.g. a cleartext listener on a public address;
    /// `check-config` prints these and the gateway logs them at start.
    pub warnings: Vec<ConfigProblem>,
    /// `[gateway] user`/`group`: whom to serve as when started as root.
    pub run_as: Option<RunAs>,
    /// `[gateway] pid_file`: written while the gateway serves, so `mailtls reload` finds it.
    pub pid_file: Option<PathBuf>,
}

impl Config {
    /// Opens what OAuth logins need: the apps' secrets and certificates, the token cache
    /// with its key (a missing or wrong key is an error here, never an empty cache), and the
    /// local accounts, whose passwords are checked `parallel_checks` at a time. `None` when
    /// the config has no `[[oauth]]` app.
    pub fn open_token_logins(
        &self,
        parallel_checks: usize,
    ) -> Result<Option<Arc<TokenLogins>>, String> {
        if self.oauth.apps.is_empty() {
            return Ok(None);
        }
        let broker = ::oauth::TokenBroker::open(&self.oauth).map_err(|e| e.to_string())?;
        let accounts = ::oauth::LocalAccounts::new(&self.oauth.accounts, parallel_checks)
            .map_err(|e| e.to_string())?;
        Ok(Some(Arc::new(TokenLogins::new(accounts, broker))))
    }
}

/// Reads and validates the config at `path`.
pub fn load(path: &Path) -> Result<Config, Vec<ConfigProblem>> {
    load_edited(path, None)
}

/// [`load`], with `edited` = `(file, text)` read as the text of `file` (the config or its
/// exception register file) instead of what is on disk: an edit is validated exactly as
/// `check-config` would validate it once written.
pub fn load_edited(
    path: &Path,
    edited: Option<(&Path, &str)>,
) -> Result<Config, Vec<ConfigProblem>> {
    let read = |file: &Path| match edited {
        Some((edited, text)) if edited == file => Ok(text.to_owned()),
        _ => std::fs::read_to_string(file),
    };
    let mut raw = config_file(path, read(path))?;
    let base = path.parent().unwrap_or(Path::new("."));
    if let Some(register) = register_file(&raw, base)? {
        let text = read(&register).map_err(|e| {
            vec![ConfigProblem::new(
                "exception_register.file",
                format!("cannot read {}: {e}", register.display()),
                "give the path of the exception register (relative paths start at the config's folder)",
            )]
        })?;
        let included: file::ExceptionFile = parse_toml(
            &text,
            "exception_register.file",
            "the file holds only next_exception_id and [[exception]] entries; fix its TOML",
        )?;
        if raw.next_exception_id.is_some() {
            return Err(vec![ConfigProblem::new(
                "next_exception_id",
                format!(
                    "is in the config, but the register is in {}",
                    register.display()
                ),
                "move the line to the top of the register's file, beside its [[exception]] entries",
            )]);
        }
        raw.exception = included.exception;
        raw.next_exception_id = included.next_exception_id;
    }
    validate::validate(raw, base)
}

/// The file holding the exception register: `[exception_register] file`, else the config.
pub fn register_path(config: &Path) -> Result<PathBuf, Vec<ConfigProblem>> {
    let raw = config_file(config, std::fs::read_to_string(config))?;
    let base = config.parent().unwrap_or(Path::new("."));
    Ok(register_file(&raw, base)?.unwrap_or_else(|| config.to_owned()))
}

/// `[exception_register] file`, resolved against the config's folder. The register lives in
/// one place: a config with both the section and `[[exception]]` entries is refused.
fn register_file(
    raw: &file::ConfigFile,
    base: &Path,
) -> Result<Option<PathBuf>, Vec<ConfigProblem>> {
    let Some(section) = &raw.exception_register else {
        return Ok(None);
    };
    let Some(file) = section.file.as_deref().filter(|f| !f.trim().is_empty()) else {
        return Err(vec![ConfigProblem::new(
            "exception_register.file",
            "is missing",
            "set it, e.g. exception_register.file = \"exceptions.toml\", or remove [exception_register] to keep [[exception]] entries in the config",
        )]);
    };
    if !raw.exception.is_empty() {
        return Err(vec![ConfigProblem::new(
            "exception",
            format!("the config has [[exception]] entries and [exception_register] names {file}"),
            "keep the register in one place: move the entries into that file, or remove [exception_register]",
        )]);
    }
    Ok(Some(base.join(file)))
}

/// The config at `path`, read as `text`, parsed (not yet validated).
fn config_file(
    path: &Path,
    text: std::io::Result<String>,
) -> Result<file::ConfigFile, Vec<ConfigProblem>> {
    let text = text.map_err(|e| {
        vec![ConfigProblem::new(
            "(file)",
            format!("cannot read {}: {e}", path.display()),
            "check the path given to --config",
        )]
    })?;
    parse_toml(
        &text,
        "(syntax)",
        "fix the TOML; examples/ has complete configs",
    )
}

/// `text` parsed as TOML into `T`, a syntax or shape error reported under `key`.
fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    key: &str,
    fix: &str,
) -> Result<T, Vec<ConfigProblem>> {
    toml::from_str(text).map_err(|e| {
        vec![ConfigProblem::new(
            key,
            e.message().to_string()
                + &e.span()
                    .map(|s| format!(" (at line {})", line_of(text, s.start)))
                    .unwrap_or_default(),
            fix,
        )]
    })
}

/// [`load`], its problems made into one error that lists them, for commands that stop on them.
pub fn load_or_explain(path: &Path) -> anyhow::Result<Config> {
    load(path).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
        anyhow::anyhow!(
            "{} has {} problem(s):\n{}",
            path.display(),
            lines.len(),
            lines.join("\n")
        )
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests;
