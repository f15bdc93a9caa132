//! `mailtls exceptions list|expiring`: the exception register, read-only.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use policy::Exception;
use time::{Duration, OffsetDateTime};

use super::terminal::shown;
use crate::config;

/// The subcommands of `mailtls exceptions`.
#[derive(Subcommand)]
pub enum ExceptionsCommand {
    /// Every exception: id, match, owner, reason, expires, plan, live or expired.
    List(RegisterArgs),
    /// Live exceptions that expire within the next N days, soonest first.
    Expiring {
        #[command(flatten)]
        register: RegisterArgs,
        /// How many days ahead to look.
        #[arg(long)]
        days: u32,
    },
}

/// Which register, as of when.
#[derive(Args)]
pub struct RegisterArgs {
    /// The mailtls config holding the policies and the exception register.
    #[arg(long, short)]
    config: PathBuf,
    /// The instant to judge live/expired at: a date (its first instant in UTC) or RFC 3339;
    /// default now.
    #[arg(long, value_parser = config::parse_instant)]
    at: Option<OffsetDateTime>,
}

pub fn run(command: ExceptionsCommand) -> ExitCode {
    let (args, days) = match command {
        ExceptionsCommand::List(args) => (args, None),
        ExceptionsCommand::Expiring { register, days } => (register, Some(days)),
    };
    let config = match super::check_config::load_or_report(&args.config) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let at = args.at.unwrap_or_else(OffsetDateTime::now_utc);
    let register = config.policy.exceptions();
    let shown_exceptions: Vec<&Exception> = match days {
        None => register.iter().collect(),
        Some(days) => register.expiring(at, at + Duration::days(i64::from(days))),
    };
    print_table(&shown_exceptions, at);
    if let Some(days) = days {
        println!(
            "{} exception(s) expire within {days} day(s) of {}",
            shown_exceptions.len(),
            at.date()
        );
    }
    ExitCode::SUCCESS
}

fn print_table(exceptions: &[&Exception], at: OffsetDateTime) {
    let header = ["id", "match", "owner", "reason", "expires", "plan", "state"].map(String::from);
    let rows: Vec<[String; 7]> = exceptions
        .iter()
        .map(|e| {
            [
                e.id.to_string(),
                shown(&e.matches.to_string()),
                shown(&e.owner),
                shown(&e.reason),
                e.expires.date().to_string(),
                shown(&e.plan),
                if e.is_live(at) { "live" } else { "expired" }.to_string(),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}
