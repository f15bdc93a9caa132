//! `mailtls reload --config F`: checks F as `check-config` does (every problem printed with its
//! key and fix, exit 2, nothing signalled), then sends SIGHUP to the gateway that serves F,
//! given by `--pid` or found through `[gateway] pid_file`. The gateway re-reads F itself and logs what changed.

use std::path::Path;
use std::process::ExitCode;

use nix::sys::signal::{kill, Signal};

use super::check_config::prepare_or_report;
use crate::pid_file;

/// `pid`: the gateway's process id when known (systemd's $MAINPID), else the pid file's.
pub fn run(path: &Path, pid: Option<i32>) -> ExitCode {
    let config = match prepare_or_report(path) {
        Ok((config, _)) => config,
        Err(code) => return code,
    };
    let found = match (pid, &config.pid_file) {
        (Some(pid), _) => Ok((pid, "--pid".to_string())),
        (None, Some(file)) => {
            pid_file::read(file).map(|pid| (pid, format!("named by {}", file.display())))
        }
        (None, None) => {
            eprintln!(
                "mailtls reload: {} sets no gateway.pid_file, so the running gateway cannot be \
                 found; set it (the gateway writes it from its next start), or give --pid",
                path.display()
            );
            return ExitCode::from(2);
        }
    };
    let pid =
        match found.and_then(|(pid, named_by)| pid_file::serving_gateway(pid, &named_by, path)) {
            Ok(pid) => pid,
            Err(e) => {
                eprintln!("mailtls reload: {e:#}");
                return ExitCode::from(2);
            }
        };
    if let Err(e) = kill(pid, Signal::SIGHUP) {
        eprintln!(
            "mailtls reload: cannot signal the gateway (process {pid}): {e}; run this as the gateway's user or root"
        );
        return ExitCode::from(2);
    }
    println!(
        "{}: OK; asked the gateway (process {pid}) to reload it: its log says what changed",
        path.display()
    );
    ExitCode::SUCCESS
}
