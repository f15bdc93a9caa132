//! `mailtls reload --config F`: checks F as `check-config` does (every problem printed with its
//! key and fix, exit 2, nothing signalled), then sends SIGHUP to the gateway that serves F,
//! found through `[gateway] pid_file`. The gateway re-reads F itself and logs what changed.

use std::path::Path;
use std::process::ExitCode;

use nix::sys::signal::{kill, Signal};

use super::check_config::prepare_or_report;
use crate::pid_file::serving_gateway;

pub fn run(path: &Path) -> ExitCode {
    let config = match prepare_or_report(path) {
        Ok((config, _)) => config,
        Err(code) => return code,
    };
    let Some(pid_file) = &config.pid_file else {
        eprintln!(
            "mailtls reload: {} sets no gateway.pid_file, so the running gateway cannot be found; \
             set it (the gateway writes it from its next start), or send the gateway SIGHUP \
             yourself (systemctl reload mailtls)",
            path.display()
        );
        return ExitCode::from(2);
    };
    let pid = match serving_gateway(pid_file, path) {
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
