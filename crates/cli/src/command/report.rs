//! `mailtls report`: the readiness and evidence report of the inventory as one self-contained
//! HTML file, JSON or CSV, and `mailtls report verify FILE` to check a copy's embedded data.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use report::{clients_csv, parse_time, render_html, utc_day, verify, PageError, ReportData};
use store::DayRange;

use super::store::StoreChoice;
use crate::config;

/// Options of `mailtls report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    action: Option<ReportAction>,
    #[command(flatten)]
    store: StoreChoice,
    /// Write the report as one self-contained HTML file (opens offline, prints to PDF).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["json", "csv"])]
    html: Option<PathBuf>,
    /// Print the report's data as JSON.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print the report's clients as CSV.
    #[arg(long)]
    csv: bool,
    /// First day covered: a day (2026-07-01), an RFC 3339 time or an age (30d).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Last day covered (inclusive), spelled like --since.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
}

#[derive(Debug, Subcommand)]
enum ReportAction {
    /// Check that a report file's embedded data is what its SHA-256 says and, for a report of
    /// this version, that the page is what the data renders to. Exit 1 when it is not.
    Verify {
        /// The HTML report.
        file: PathBuf,
    },
}

/// Runs `mailtls report` or `mailtls report verify`: exit 0, 1 when a verified file was
/// changed, 2 on usage or store errors.
pub fn run(args: ReportArgs) -> ExitCode {
    match run_inner(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mailtls report: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run_inner(args: ReportArgs) -> Result<ExitCode> {
    if let Some(ReportAction::Verify { file }) = &args.action {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        return Ok(match verify(&text) {
            Ok(checked) => {
                println!(
                    "{}: data intact, SHA-256 {}; {}",
                    file.display(),
                    checked.digest,
                    if checked.page_checked {
                        "the page is what its data renders to"
                    } else {
                        "the page was made by another version and is not re-rendered"
                    }
                );
                ExitCode::SUCCESS
            }
            Err(e @ (PageError::DataChanged { .. } | PageError::PageChanged)) => {
                println!("{}: CHANGED: {e}", file.display());
                ExitCode::from(1)
            }
            Err(e) => bail!("{}: {e}", file.display()),
        });
    }
    if args.html.is_none() && !args.json && !args.csv {
        bail!("give --html FILE, --json or --csv");
    }
    let now = SystemTime::now();
    let day = |text: &Option<String>| -> Result<_> {
        Ok(text
            .as_deref()
            .map(|t| parse_time(t, now))
            .transpose()?
            .map(utc_day))
    };
    let range = DayRange {
        since: day(&args.since)?,
        until: day(&args.until)?,
    };
    // The register comes with the gateway's config; from --store alone the page says so.
    let register = args
        .store
        .config_file()
        .map(config::load_or_explain)
        .transpose()?
        .map(|config| config.policy);
    let (mut store, location, _) = args.store.open()?;
    let data = ReportData::from_store(&mut store, range, now, register.as_deref())
        .with_context(|| format!("reading the inventory in {location}"))?;
    if let Some(file) = &args.html {
        let html = render_html(&data, None)?;
        std::fs::write(file, html).with_context(|| format!("writing {}", file.display()))?;
        eprintln!(
            "wrote {}: {} clients, {} break, {} at risk",
            file.display(),
            data.totals.clients,
            data.totals.breaks,
            data.totals.at_risk
        );
    } else if args.json {
        println!("{}", serde_json::to_string_pretty(&data)?);
    } else {
        print!("{}", clients_csv(&data.clients));
    }
    Ok(ExitCode::SUCCESS)
}
