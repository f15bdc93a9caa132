//! `mailtls gateway`: serves until SIGINT/SIGTERM, then lets sessions record themselves and
//! flushes the session store.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use gateway::metrics::MetricsEndpoint;
use gateway::Gateway;
use store::{SessionPruner, SessionRecorder, Store};
use tokio::signal::unix::{signal, SignalKind};

use crate::config;
use crate::run_as::started_as_root;

pub fn run(path: &Path) -> ExitCode {
    match serve(path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mailtls gateway: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn serve(path: &Path) -> Result<()> {
    let config = config::load_or_explain(path)?;
    init_logging(config.log_json);
    if started_as_root() && config.run_as.is_none() {
        tracing::warn!(
            "running as root: set [gateway] user = \"mailtls\" (a dedicated system user) so \
             the gateway gives root up once its ports are bound and its files open"
        );
    }
    for warning in &config.warnings {
        tracing::warn!(key = %warning.key, fix = %warning.fix, "{}", warning.problem);
    }
    // A missing or wrong token cache key stops the start here, before any client is accepted.
    let tokens = config
        .open_token_logins(password_checks())
        .map_err(|e| anyhow!("cannot start: {e}"))?;
    let prepared =
        Gateway::prepare(&config.gateway, config.policy.clone(), tokens).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
            anyhow!("cannot start:\n{}", lines.join("\n"))
        })?;
    // Before the store's writer starts, so its metrics are registered with the recorder.
    let metrics = config
        .metrics_bind
        .map(MetricsEndpoint::bind)
        .transpose()
        .map_err(|e| anyhow!("cannot start: {e}"))?;
    // A PostgreSQL store that cannot be reached does not stop the start: records wait for it.
    let store = Store::open_for_writing(&config.store)?;
    let recorder = SessionRecorder::spawn(Box::new(store));
    // Its own connection, opened here like the writer's (before root is given up).
    let pruner = config
        .keep_sessions
        .map(|keep| {
            Store::open_for_writing(&config.store).map(|store| SessionPruner::spawn(store, keep))
        })
        .transpose()?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let bound = prepared.bind().await?;
        let metrics = match metrics {
            Some(endpoint) => {
                tracing::info!(bind = %endpoint.local_addr()?, "serving metrics at /metrics");
                Some(tokio::spawn(endpoint.serve()))
            }
            None => None,
        };
        // Certificates, keys and the store are open, the ports bound: root is no longer
        // needed. Every thread of the process changes with it (glibc applies set*id to all).
        if let Some(run_as) = &config.run_as {
            run_as.enter()?;
            tracing::info!(
                user = %run_as.user,
                uid = %run_as.uid,
                gid = %run_as.gid,
                "serving as an unprivileged user"
            );
        }
        bound.serve(recorder.clone(), shutdown_signal()).await;
        if let Some(task) = metrics {
            task.abort();
        }
        anyhow::Ok(())
    })?;
    if let Some(pruner) = pruner {
        pruner.stop();
    }
    match recorder.shutdown() {
        Ok(unstored) if unstored.is_empty() => tracing::info!("stopped; every session recorded"),
        Ok(unstored) => tracing::error!(
            records = unstored.len(),
            "stopped; the store refused some session records: they are in the log above"
        ),
        Err(gone) => tracing::error!(error = %gone, "stopped; some session records may be lost"),
    }
    Ok(())
}

async fn shutdown_signal() {
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAILTLS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Argon2 checks of local passwords run at once: half the cores, so a burst of logins leaves
/// the other half to the sessions already running.
fn password_checks() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}
