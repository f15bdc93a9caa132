//! The TOML config file: read, then validated into the gateway's typed settings. Every problem
//! is reported with its key and what to do, all at once.

mod enforcement;
mod file;
mod oauth;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gateway::settings::GatewaySettings;
use gateway::TokenLogins;
use store::StoreAccess;

use crate::run_as::RunAs;
use policy::PolicySet;

pub use enforcement::parse_instant;
pub use validate::ConfigProblem;

/// A config that passed validation.
#[derive(Debug)]
pub struct Config {
    pub gateway: GatewaySettings,
    /// The SQLite file for session records, relative paths taken from the config's folder.
    pub store_path: PathBuf,
    /// `[[oauth]]`, `[[account]]` and `[token_cache]`.
    pub oauth: ::oauth::settings::OAuthSettings,
    pub log_json: bool,
    /// Where `/metrics` is served; `None` without a `[metrics]` section.
    pub metrics_bind: Option<SocketAddr>,
    /// The TLS floor policies, which listener applies which, and the exception register.
    pub policy: Arc<PolicySet>,
    /// What is allowed but probably a mistake, e.g. a cleartext listener on a public address;
    /// `check-config` prints these and the gateway logs them at start.
    pub warnings: Vec<ConfigProblem>,
    /// `[gateway] user`/`group`: whom to serve as when started as root.
    pub run_as: Option<RunAs>,
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

    /// How the session store's files are made: owned by `[gateway] user` when one is set,
    /// readable by `[gateway] group` when that is set, by nobody else.
    pub fn store_access(&self) -> StoreAccess {
        self.run_as
            .as_ref()
            .map_or(StoreAccess::default(), RunAs::store_access)
    }
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

/// The session store a command reads or writes: `--store PATH`, or the store of the config
/// given with `--config FILE` (exactly one of them).
pub fn store_path(store: Option<&Path>, config: Option<&Path>) -> anyhow::Result<PathBuf> {
    match (store, config) {
        (Some(path), None) => Ok(path.to_path_buf()),
        (None, Some(config)) => Ok(load(config)
            .map_err(|problems| {
                let listed: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                anyhow::anyhow!("{}: {}", config.display(), listed.join("; "))
            })?
            .store_path),
        _ => anyhow::bail!("give the store with --store PATH or --config FILE"),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests;
