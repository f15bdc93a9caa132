//! `mailtls check-config`: validates the file and builds every TLS context without binding;
//! `--verbose` also lists the suites each TLS listener negotiates.

use std::path::Path;
use std::process::ExitCode;

use gateway::settings::{ClientTlsMode, ListenerSettings};
use gateway::{Gateway, ListenerSuites};
use store::{Store, StoreLocation};

use crate::config;

pub fn run(path: &Path, verbose: bool) -> ExitCode {
    let (config, gateway) = match prepare_or_report(path) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    // Opening creates the file and schema if missing: the same thing the gateway does first.
    // With PostgreSQL: the server is reached, the password and certificate work, the tables
    // are made or upgraded.
    if let Err(e) = Store::open(&config.store) {
        let key = match config.store {
            StoreLocation::Sqlite { .. } => "store.path",
            StoreLocation::Postgres(_) => "store.url",
        };
        return report(path, std::iter::once(format!("{key}: {e}")));
    }
    for warning in &config.warnings {
        eprintln!("  warning: {warning}");
    }
    println!(
        "{}: OK ({} listener(s), {} with a policy, {} upstream(s), {} exception(s), {} oauth app(s), {} account(s), store {})",
        path.display(),
        config.gateway.listeners.len(),
        config.policy.listeners_with_policy().len(),
        config.gateway.upstreams.len(),
        config.policy.exceptions().len(),
        config.oauth.apps.len(),
        config.oauth.accounts.len(),
        config.store
    );
    if verbose {
        match gateway.client_suites() {
            Ok(suites) => print!("{}", suites_text(&config.gateway.listeners, &suites)),
            Err(e) => return report(path, std::iter::once(e.to_string())),
        }
    }
    ExitCode::SUCCESS
}

/// One block per listener: its TLS mode and floor, then each TLS version with the suites it
/// negotiates, most preferred first.
fn suites_text(listeners: &[ListenerSettings], suites: &[ListenerSuites]) -> String {
    let mut text = String::new();
    for listener in listeners {
        let Some(found) = suites.iter().find(|s| s.listener == listener.name) else {
            text += &format!("listener {}: no TLS\n", listener.name);
            continue;
        };
        let mode = match listener.tls {
            ClientTlsMode::Implicit => "implicit TLS",
            _ => "STARTTLS",
        };
        text += &format!(
            "listener {} ({mode}, min_tls {}): suites in order of preference\n",
            listener.name,
            listener.min_tls.config_str()
        );
        for (version, names) in &found.by_version {
            let names = if names.is_empty() {
                "(not offered)".to_string()
            } else {
                names.join(" ")
            };
            text += &format!("  {version}: {names}\n");
        }
    }
    text
}

/// The config at `path` and every TLS context and secret it names put to use (as the gateway
/// does at start and at a reload), or its problems printed and the exit code to end with.
pub(crate) fn prepare_or_report(path: &Path) -> Result<(config::Config, Gateway), ExitCode> {
    let config = load_or_report(path)?;
    // Loads the apps' secrets and certificates and opens the token cache with its key: a
    // missing or wrong key shows here, not at the first login.
    let tokens = config
        .open_token_logins(1)
        .map_err(|e| report(path, std::iter::once(e)))?;
    let gateway = Gateway::prepare(&config.gateway, config.policy.clone(), tokens)
        .map_err(|errors| report(path, errors.iter().map(|e| e.to_string())))?;
    Ok((config, gateway))
}

/// The config at `path`, or its problems printed and the exit code to end with.
pub(crate) fn load_or_report(path: &Path) -> Result<config::Config, ExitCode> {
    config::load(path).map_err(|problems| report(path, problems.iter().map(|p| p.to_string())))
}

pub(crate) fn report(path: &Path, problems: impl Iterator<Item = String>) -> ExitCode {
    let problems: Vec<String> = problems.collect();
    eprintln!("{}: {} problem(s)", path.display(), problems.len());
    for problem in problems {
        eprintln!("  {problem}");
    }
    ExitCode::from(2)
}
