//! `mailtls gateway`: serves until SIGINT/SIGTERM, then lets sessions record themselves and
//! flushes the session store. SIGHUP reads the config again: new sessions get it, running
//! sessions keep the one they started with, and a config with a problem is refused (logged
//! with its key and fix) while the running one stays.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use gateway::metrics::MetricsEndpoint;
use gateway::{Gateway, RunningGateway, SetupError, TokenLogins};
use oauth::settings::OAuthSettings;
use oauth::{LocalAccounts, TokenBroker};
use policy::PolicySet;
use store::{SessionPruner, SessionRecorder, Store};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;

use crate::config::{self, Config, ConfigProblem};
use crate::pid_file::PidFile;
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
    let prepared = Gateway::prepare(&config.gateway, config.policy.clone(), tokens.clone())
        .map_err(|errors| {
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
        // Every token fetched is written to the cache as whoever serves now.
        if let Some(cache) = &config.oauth.token_cache {
            oauth::TokenCacheFile::check_writable(&cache.path).map_err(|e| {
                anyhow!("cannot start: the token cache is not writable by the serving user: {e}")
            })?;
        }
        // As the serving user, who removes it again at exit.
        let pid_file = config.pid_file.as_deref().map(PidFile::write).transpose()?;
        // Before the first "listening": SIGHUP's default action would end the process.
        let mut signals = Signals::new()?;
        let mut running = bound.start(recorder.clone());
        // Stale and missing exceptions are logged now and hourly, judged against the policy
        // set in force, which a reload replaces.
        let (policy_in_force, policy_watched) = watch::channel(config.policy.clone());
        let register_watch = tokio::spawn(gateway::watch_register(
            policy_watched,
            config.store.clone(),
            gateway::WATCH_INTERVAL,
        ));
        let mut reloads = Reloads {
            path,
            started: &config,
            tokens,
            oauth_in_force: config.oauth.clone(),
            policy_in_force,
        };
        while signals.next().await == Wanted::Reload {
            reloads.reload(&mut running);
        }
        register_watch.abort();
        running.shutdown().await;
        if let Some(task) = metrics {
            task.abort();
        }
        drop(pid_file);
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

/// What a signal asks of the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    /// SIGHUP: read the config again.
    Reload,
    /// SIGTERM or SIGINT.
    Stop,
}

/// The signals the gateway acts on, their handlers installed for the life of the process.
struct Signals {
    hangup: Signal,
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    fn new() -> Result<Signals> {
        let handler = |kind| signal(kind).context("cannot install a signal handler");
        Ok(Signals {
            hangup: handler(SignalKind::hangup())?,
            terminate: handler(SignalKind::terminate())?,
            interrupt: handler(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) -> Wanted {
        tokio::select! {
            _ = self.hangup.recv() => Wanted::Reload,
            _ = self.terminate.recv() => Wanted::Stop,
            _ = self.interrupt.recv() => Wanted::Stop,
        }
    }
}

/// Config reloads of a running gateway: the file it was started with, read again at each
/// SIGHUP, and what was opened at start for good (the config of the settings a reload cannot
/// change, and the OAuth token logins, whose accounts, apps and cache a reload may replace).
struct Reloads<'a> {
    path: &'a Path,
    started: &'a Config,
    tokens: Option<Arc<TokenLogins>>,
    /// The `[[oauth]]`, `[[account]]` and `[token_cache]` entries in force.
    oauth_in_force: OAuthSettings,
    /// The policy set in force, for the exception register's watch.
    policy_in_force: watch::Sender<Arc<PolicySet>>,
}

impl Reloads<'_> {
    /// Puts the file's config in place for new sessions, or, when it has a problem, logs
    /// each with its key and fix and keeps the running config. Counted by result either way.
    fn reload(&mut self, running: &mut RunningGateway) {
        tracing::info!(config = %self.path.display(), "reloading the config");
        match self.apply(running) {
            Ok(()) => gateway::metrics::config_reloaded(true),
            Err(problems) => {
                for problem in &problems {
                    tracing::error!(key = %problem.key, fix = %problem.fix, "reload refused: {}", problem.problem);
                }
                tracing::error!(
                    problems = problems.len(),
                    "reload refused: the running config stays in force"
                );
                gateway::metrics::config_reloaded(false);
            }
        }
    }

    fn apply(&mut self, running: &mut RunningGateway) -> Result<(), Vec<ConfigProblem>> {
        self.readable()?;
        let next = config::load(self.path)?;
        for warning in &next.warnings {
            tracing::warn!(key = %warning.key, fix = %warning.fix, "{}", warning.problem);
        }
        let prepared = Gateway::prepare(&next.gateway, next.policy.clone(), self.tokens.clone())
            .map_err(setup_problems)?;
        let oauth = self.changed_oauth(&next)?;
        let changes = running.reload(prepared).map_err(setup_problems)?;
        if let (Some((accounts, broker)), Some(tokens)) = (oauth, &self.tokens) {
            if broker.is_some() {
                tracing::info!(
                    apps = next.oauth.apps.len(),
                    "OAuth apps and token cache reloaded: new logins use them"
                );
            }
            tokens.replace(accounts, broker);
            self.oauth_in_force = next.oauth.clone();
            tracing::info!(
                accounts = self.oauth_in_force.accounts.len(),
                "local accounts reloaded"
            );
        }
        for key in self.started.restart_only_changes(&next) {
            tracing::warn!(
                key,
                "changed in the config but needs a restart: the gateway keeps the value it started with"
            );
        }
        self.policy_in_force.send_replace(next.policy.clone());
        tracing::info!(
            added = ?changes.added,
            removed = ?changes.removed,
            changed = ?changes.changed,
            exceptions = next.policy.exceptions().len(),
            "config reloaded: new sessions use it, running sessions keep theirs"
        );
        Ok(())
    }

    /// What of `next`'s OAuth settings is to be put in place, when they differ from those in
    /// force: its local accounts, and a broker opened on its apps and token cache when those
    /// changed (a rotated client secret or certificate, a new app). The broker is opened here,
    /// before anything changes, so a secret or cache key that cannot be read refuses the
    /// reload. A gateway started without OAuth needs a restart for it, which the log says.
    fn changed_oauth(
        &self,
        next: &Config,
    ) -> Result<Option<(LocalAccounts, Option<TokenBroker>)>, Vec<ConfigProblem>> {
        let in_force = &self.oauth_in_force;
        if self.tokens.is_none() || next.oauth == *in_force {
            return Ok(None);
        }
        let broker =
            if next.oauth.apps != in_force.apps || next.oauth.token_cache != in_force.token_cache {
                let broker = TokenBroker::open(&next.oauth).map_err(|e| {
                    vec![ConfigProblem::new(
                    e.field,
                    e.problem,
                    "correct it and reload again; the running apps and token cache stay in force",
                )]
                })?;
                Some(broker)
            } else {
                None
            };
        let accounts =
            LocalAccounts::new(&next.oauth.accounts, password_checks()).map_err(|e| {
                vec![ConfigProblem::new(
                    e.field,
                    e.problem,
                    "correct the account and reload again",
                )]
            })?;
        Ok(Some((accounts, broker)))
    }

    /// A gateway that gave root up may no longer read a root-only config: said plainly, with
    /// what to do, rather than as a bare "permission denied".
    fn readable(&self) -> Result<(), Vec<ConfigProblem>> {
        let Err(e) = std::fs::File::open(self.path) else {
            return Ok(());
        };
        if e.kind() != std::io::ErrorKind::PermissionDenied {
            return Ok(()); // config::load reports it
        }
        let fix = match &self.started.run_as {
            Some(run_as) => {
                let group = nix::unistd::Group::from_gid(run_as.gid)
                    .ok()
                    .flatten()
                    .map_or_else(|| run_as.gid.to_string(), |g| g.name);
                format!(
                    "the gateway serves as {} since it started and reloads as that user: let its group read the config and the files it names (chgrp {group} FILE; chmod 0640 FILE), or restart the gateway to apply the change",
                    run_as.user,
                )
            }
            None => "let the gateway's user read the config and the files it names, or restart the gateway to apply the change".to_string(),
        };
        Err(vec![ConfigProblem::new(
            "(file)",
            format!("cannot read {}: {e}", self.path.display()),
            fix,
        )])
    }
}

/// Problems found while putting a config to use, in the shape of the config's own problems.
fn setup_problems(errors: Vec<SetupError>) -> Vec<ConfigProblem> {
    errors
        .into_iter()
        .map(|e| {
            ConfigProblem::new(
                e.key,
                e.message,
                "correct it (or do what the problem says) and reload again",
            )
        })
        .collect()
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
