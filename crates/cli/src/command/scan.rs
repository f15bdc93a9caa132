//! `mailtls scan`: which TLS versions (and suites) mail servers accept, with a verdict.
//! Exit 0 when every target passes, 1 when any fails, 2 on usage errors or when no version
//! of any target got an answer.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use scan::{
    output, parse_target_list, Preset, Progress, ScanSettings, Scanner, Target, MAX_TIMEOUT,
};

/// Options of `mailtls scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// imaps://host[:port], imap:// (STARTTLS), pop3s://, pop3://, smtps://, smtp://, or
    /// host:port with a well-known port (993, 143, 995, 110, 465, 587, 25).
    #[arg(value_name = "TARGET")]
    targets: Vec<String>,
    /// Read targets from FILE, one a line (# starts a comment).
    #[arg(long, value_name = "FILE")]
    from_file: Option<PathBuf>,
    /// Also list the accepted cipher suites of every accepted version.
    #[arg(long)]
    ciphers: bool,
    /// Verdict preset: min-tls12, mozilla-intermediate, mozilla-modern, nist-800-52r2.
    #[arg(long, default_value = "min-tls12", value_name = "PRESET")]
    policy: Preset,
    /// Extra trust anchors (PEM), added to the system roots.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Print one JSON document (an array of results).
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV.
    #[arg(long)]
    csv: bool,
    /// Seconds allowed for each connection, from connect to the server's answer.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    timeout: f64,
    /// Addresses scanned at once.
    #[arg(long, default_value_t = 64, value_name = "N")]
    concurrency: usize,
    /// Connections open at once to one IP address.
    #[arg(long, default_value_t = 16, value_name = "N")]
    per_host: usize,
    /// For servers that rate-limit: one connection per host at a time, spaced out, retried.
    #[arg(long)]
    slow: bool,
    /// The name sent in SMTP EHLO.
    #[arg(long, default_value = "mailtls-scanner.invalid", value_name = "NAME")]
    ehlo_name: String,
}

/// Runs the scan and prints the results.
pub fn run(args: ScanArgs) -> ExitCode {
    match scan(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mailtls scan: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn scan(args: ScanArgs) -> Result<ExitCode> {
    let targets = targets(&args)?;
    // try_from refuses what from_secs_f64 panics on (NaN, infinity, negative, overflow); the
    // cap keeps every deadline computed from it within what Instant can hold.
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|t| !t.is_zero() && *t <= MAX_TIMEOUT)
        .with_context(|| {
            format!(
                "--timeout must be a positive number of seconds, at most {}",
                MAX_TIMEOUT.as_secs()
            )
        })?;
    let settings = ScanSettings {
        timeout,
        // The scanner raises 0 to 1 for both.
        concurrency: args.concurrency,
        per_host: args.per_host,
        slow: args.slow,
        ciphers: args.ciphers,
        preset: args.policy,
        ca_file: args.ca_file.clone(),
        client_name: args.ehlo_name.clone(),
    };
    let scanner = Scanner::new(settings)?;
    let bar = progress_bar(targets.len());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let reports = runtime.block_on(scanner.scan(&targets, &|event| match event {
        Progress::Planned(n) => bar.set_length(n as u64),
        Progress::Finished(report) => {
            bar.set_message(report.target.clone());
            bar.inc(1);
        }
    }));
    bar.finish_and_clear();

    let text = if args.json {
        output::json(&reports) + "\n"
    } else if args.csv {
        output::csv(&reports)
    } else {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        output::table(&reports, colour)
    };
    print!("{text}");

    if !reports.iter().any(|r| r.concluded()) {
        return Ok(ExitCode::from(2));
    }
    Ok(if reports.iter().all(|r| r.verdict.pass) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn targets(args: &ScanArgs) -> Result<Vec<Target>> {
    let mut targets = Vec::new();
    for text in &args.targets {
        targets.push(text.parse::<Target>()?);
    }
    if let Some(path) = &args.from_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read target file {}", path.display()))?;
        match parse_target_list(&text) {
            Ok(list) => targets.extend(list),
            Err(errors) => {
                let lines: Vec<String> = errors
                    .iter()
                    .map(|(line, e)| format!("  {}:{line}: {e}", path.display()))
                    .collect();
                bail!("bad targets in {}:\n{}", path.display(), lines.join("\n"));
            }
        }
    }
    if targets.is_empty() {
        bail!("no targets: give TARGET arguments or --from-file FILE");
    }
    Ok(targets)
}

/// A bar on a terminal when more than a few targets are scanned; hidden otherwise.
fn progress_bar(targets: usize) -> ProgressBar {
    if targets <= 4 || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(targets as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {wide_msg}") {
        bar.set_style(style);
    }
    bar
}
