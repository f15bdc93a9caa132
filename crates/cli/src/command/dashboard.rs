//! `mailtls dashboard`: the report live from the store in a browser, with the client list
//! filterable and owners, devices and notes editable. Loopback by default; any other address
//! needs `[dashboard] token_file` in the config.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::{Context, Result};
use clap::Args;
use policy::PolicySet;
use report::{check_exposure, DashboardToken, PolicySource};

use super::store::StoreChoice;
use crate::config::{self, DashboardSettings};

/// Options of `mailtls dashboard`.
#[derive(Debug, Args)]
pub struct DashboardArgs {
    #[command(flatten)]
    store: StoreChoice,
    /// Address to serve on; default `[dashboard] bind`, else 127.0.0.1:8080. Beyond loopback
    /// the config's `[dashboard] token_file` is required.
    #[arg(long, value_name = "IP:PORT")]
    bind: Option<SocketAddr>,
}

/// Runs the dashboard until interrupted; exit 2 when it cannot start.
pub fn run(args: DashboardArgs) -> ExitCode {
    match run_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mailtls dashboard: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run_inner(args: DashboardArgs) -> Result<()> {
    // With the gateway's config, its exception register is shown too, read again as the
    // config or the register's file changes.
    let (settings, register) = match args.store.config_file() {
        Some(path) => {
            let config = config::load_or_explain(path)?;
            let source: Box<dyn PolicySource> =
                Box::new(ConfigPolicies::new(path.to_owned(), config.policy));
            (config.dashboard, Some(source))
        }
        None => (DashboardSettings::default(), None),
    };
    let bind = args.bind.or(settings.bind).unwrap_or_else(|| {
        config::DEFAULT_DASHBOARD_BIND
            .parse()
            .expect("the default is an address")
    });
    let token = settings
        .token_file
        .as_ref()
        .map(|path| {
            std::fs::read_to_string(path)
                .map(|text| DashboardToken::from_file_text(&text))
                .with_context(|| format!("reading the token file {}", path.display()))
        })
        .transpose()?;
    // Before opening anything: an exposed address without a token is refused outright.
    check_exposure(bind, token.as_ref())?;
    let (store, _, _) = args.store.open()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("binding {bind}"))?;
        let local = listener.local_addr()?;
        eprintln!(
            "mailtls dashboard on http://{local}/{}",
            if token.is_some() {
                " (token required)"
            } else {
                ""
            }
        );
        report::serve(listener, store, token, register).await?;
        Ok(())
    })
}

/// The policies of the config at `config`, loaded again when the config or its exception
/// register file changes (by modification time and size), so `mailtls exceptions add` shows on
/// the dashboard without a restart. A config that no longer loads keeps the last good
/// policies, and says why once per change.
struct ConfigPolicies {
    config: PathBuf,
    loaded: Mutex<(Vec<FileStamp>, Arc<PolicySet>)>,
}

/// What tells a file changed: its modification time and size (none when unreadable).
type FileStamp = Option<(SystemTime, u64)>;

impl ConfigPolicies {
    fn new(config: PathBuf, policies: Arc<PolicySet>) -> ConfigPolicies {
        let stamps = stamps(&config);
        ConfigPolicies {
            config,
            loaded: Mutex::new((stamps, policies)),
        }
    }
}

/// The stamps of the config and of its register's file (the config again when it holds the
/// register).
fn stamps(config: &std::path::Path) -> Vec<FileStamp> {
    let stamp = |path: &std::path::Path| {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    };
    let register = config::register_path(config).ok();
    vec![stamp(config), register.as_deref().and_then(stamp)]
}

impl PolicySource for ConfigPolicies {
    fn current(&self) -> Arc<PolicySet> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let now = stamps(&self.config);
        if now != loaded.0 {
            match config::load(&self.config) {
                Ok(config) => loaded.1 = config.policy,
                Err(problems) => eprintln!(
                    "mailtls dashboard: {} has {} problem(s), still showing the register as it was: {}",
                    self.config.display(),
                    problems.len(),
                    problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ")
                ),
            }
            loaded.0 = now;
        }
        loaded.1.clone()
    }
}
