//! `mailtls check-config`: validates the file and builds every TLS context without binding.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use gateway::admission::ListenerFloorOnly;
use gateway::Gateway;
use store::SqliteStore;

use crate::config;

pub fn run(path: &Path) -> ExitCode {
    let config = match load_or_report(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    if let Err(errors) = Gateway::prepare(&config.gateway, Arc::new(ListenerFloorOnly)) {
        return report(path, errors.iter().map(|e| e.to_string()));
    }
    // Opening creates the file and schema if missing: the same thing the gateway does first.
    if let Err(e) = SqliteStore::open(&config.store_path) {
        return report(path, std::iter::once(format!("store.path: {e}")));
    }
    println!(
        "{}: OK ({} listener(s), {} with a policy, {} upstream(s), {} exception(s), store {})",
        path.display(),
        config.gateway.listeners.len(),
        config.policy.listeners_with_policy().len(),
        config.gateway.upstreams.len(),
        config.policy.exceptions().len(),
        config.store_path.display()
    );
    ExitCode::SUCCESS
}

/// The config at `path`, or its problems printed and the exit code to end with.
pub(crate) fn load_or_report(path: &Path) -> Result<config::Config, ExitCode> {
    config::load(path).map_err(|problems| report(path, problems.iter().map(|p| p.to_string())))
}

fn report(path: &Path, problems: impl Iterator<Item = String>) -> ExitCode {
    let problems: Vec<String> = problems.collect();
    eprintln!("{}: {} problem(s)", path.display(), problems.len());
    for problem in problems {
        eprintln!("  {problem}");
    }
    ExitCode::from(2)
}
