//! `mailtls import smtp-auth-report FILE`: the Exchange admin center's SMTP AUTH clients
//! report (CSV), TLS version shares per sender.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, Result};
use clap::Args;

use super::{shown_name, ExportInput, ImportSummary, SummaryArgs};
use crate::command::store::StoreChoice;

/// Options of `mailtls import smtp-auth-report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The exported CSV; `-` reads standard input.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The last day of the report's range (YYYY-MM-DD), which the export does not hold;
    /// default: the day the file was last modified (downloaded).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    date: Option<SystemTime>,
    #[command(flatten)]
    store: StoreChoice,
    #[command(flatten)]
    summary: SummaryArgs,
}

/// Imports the report, then prints the summary.
pub fn run(args: ReportArgs) -> Result<()> {
    let (mut store, _) = args.store.open_to_add()?;
    let mut summary = ImportSummary::new("rows");
    let input = ExportInput::open(&args.file)?;
    let date = match args.date {
        Some(date) => date,
        None => start_of_day(input.modified.unwrap_or_else(SystemTime::now)),
    };
    let rows = logs::read_smtp_auth_report(input.reader, date)
        .with_context(|| format!("reading {}", shown_name(&args.file)))?;
    summary.add_bytes(input.read.get());
    super::store_rows(&mut summary, &mut store, rows)?;
    summary.print(&mut store, args.summary.json)
}

fn parse_date(text: &str) -> Result<SystemTime, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format)
        .map(|date| date.midnight().assume_utc().into())
        .map_err(|_| format!("{text:?} is not a date such as 2026-12-01"))
}

/// Midnight UTC of `at`'s day, so every import of one download gives the same time.
fn start_of_day(at: SystemTime) -> SystemTime {
    time::OffsetDateTime::from(at)
        .date()
        .midnight()
        .assume_utc()
        .into()
}
