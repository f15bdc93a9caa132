//! `[gateway] pid_file`: the serving gateway's process id, written once it serves (as the user
//! it serves as, so the same user removes it at exit), read by `mailtls reload` to find whom to
//! signal (`--pid`, e.g. systemd's $MAINPID, skips the file). A pid file can outlive its process (a crash, a kill -9) and its number be reused,
//! so the reader checks that the process is a `mailtls gateway` serving the same config.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::unistd::Pid;

/// The pid file of this process, removed when dropped if it still names this process.
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes this process's id to `path`.
    pub fn write(path: &Path) -> Result<PidFile> {
        std::fs::write(path, format!("{}\n", std::process::id())).with_context(|| {
            format!(
                "gateway.pid_file: cannot write {}; give a file in a folder the gateway's user may write",
                path.display()
            )
        })?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Another gateway started since may have written its own id there: leave that alone.
        let ours = std::fs::read_to_string(&self.path)
            .is_ok_and(|text| text.trim() == std::process::id().to_string());
        if ours {
            if let Err(e) = std::fs::remove_file(&self.path) {
                tracing::warn!(pid_file = %self.path.display(), error = %e, "cannot remove the pid file");
            }
        }
    }
}

/// The process id in the pid file at `path`.
pub fn read(path: &Path) -> Result<i32> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the pid file {} (gateway.pid_file): is the gateway running?",
            path.display()
        )
    })?;
    text.trim()
        .parse()
        .ok()
        .filter(|&pid| pid > 0)
        .ok_or_else(|| anyhow!("{} does not hold a process id", path.display()))
}

/// `pid` once its command line shows `mailtls gateway` serving `config`, else what is wrong
/// (`named_by` says where the id came from).
pub fn serving_gateway(pid: i32, named_by: &str, config: &Path) -> Result<Pid> {
    let stale = || {
        format!(
            "process {pid} ({named_by}) is not a running mailtls gateway (a stale pid file? start the gateway)"
        )
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).with_context(stale)?;
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let is_mailtls = args
        .first()
        .and_then(|bin| Path::new(bin).file_name())
        .is_some_and(|name| name.to_string_lossy().starts_with("mailtls"));
    if !is_mailtls || args.get(1).map(String::as_str) != Some("gateway") {
        bail!(stale());
    }
    // The gateway re-reads its own --config: reloading another file would check one config
    // and apply another.
    let served = args
        .windows(2)
        .find(|w| w[0] == "--config" || w[0] == "-c")
        .map(|w| PathBuf::from(&w[1]))
        .or_else(|| {
            args.iter()
                .find_map(|a| a.strip_prefix("--config=").map(PathBuf::from))
        })
        .ok_or_else(|| anyhow!("cannot tell which config process {pid} serves"))?;
    let served = if served.is_relative() {
        Path::new(&format!("/proc/{pid}/cwd")).join(served)
    } else {
        served
    };
    let same = match (served.canonicalize(), config.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same {
        bail!(
            "the gateway with process id {pid} serves {}, not {}: reload with --config {}",
            served.display(),
            config.display(),
            served.display()
        );
    }
    Ok(Pid::from_raw(pid))
}
