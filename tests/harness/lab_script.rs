//! The lab's server scripts (`lab/dovecot.sh`, `lab/haproxy.sh`) run from a test: started
//! with a watchdog on the test process, their `ports.env` read back, stopped when done.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use crate::{repo_root, run};

/// Runs `lab/SCRIPT start DIR ARGS... --stop-with <this process>` and returns the values it
/// wrote to `DIR/ports.env`. The watchdog stops the server if the test process dies without
/// running its Drop (a nextest timeout). On failure whatever the script started is stopped and
/// the test panics with the script's output.
pub(crate) fn start(script: &str, dir: &Path, args: &[String]) -> HashMap<String, String> {
    let path = repo_root().join("lab").join(script);
    let output = run(Command::new("bash")
        .arg(&path)
        .arg("start")
        .arg(dir)
        .args(args)
        .args(["--stop-with", &std::process::id().to_string()]));
    if !output.status.success() {
        // The script may fail after the server is up; no value exists yet to stop it.
        stop(script, dir);
        panic!(
            "lab/{script} start failed with {}:\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let env_text = std::fs::read_to_string(dir.join("ports.env"))
        .unwrap_or_else(|e| panic!("lab/{script} wrote no ports.env: {e}"));
    parse_env(&env_text)
}

/// Runs `lab/SCRIPT stop DIR`; safe to repeat, and its outcome is not the test's business.
pub(crate) fn stop(script: &str, dir: &Path) {
    let _ = Command::new("bash")
        .arg(repo_root().join("lab").join(script))
        .arg("stop")
        .arg(dir)
        .output();
}

/// The `NAME=value` lines of a `ports.env` (quotes around values dropped).
pub(crate) fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim().trim_start_matches("export ");
            let (k, v) = line.split_once('=')?;
            Some((
                k.to_string(),
                v.trim_matches(|c| c == '"' || c == '\'').to_string(),
            ))
        })
        .collect()
}
