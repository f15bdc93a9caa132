//! `mailtls dashboard`: the report live from the store in a browser, with the client list
//! filterable and owners, devices and notes editable. Loopback by default; any other address
//! needs `[dashboard] token_file` in the config.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use report::{check_exposure, DashboardToken};

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
    // With the gateway's config, its exception register is shown too.
    let (settings, register) = match args.store.config_file() {
        Some(path) => {
            let config = config::load_or_explain(path)?;
            (config.dashboard, Some(config.policy))
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
