//! `mailtls import`: clients found where no gateway stands, from packet captures, mail
//! server logs and Microsoft 365 exports, stored as session records marked with their source so they join
//! the inventory (`mailtls clients`). One module per source; they share the store options,
//! the progress bar and the summary. Exit 0 on success, 2 on usage, input or store errors
//! (records committed before a failure stay stored).

mod dovecot;
mod entra_sign_ins;
mod log_file;
mod pcap;
mod postfix;
mod smtp_auth_report;
mod summary;

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use store::Store;

pub use summary::{ImportProgress, ImportSummary};

/// The sources `mailtls import` reads.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// TLS handshakes and plaintext logins in pcap or pcapng captures (tcpdump, Wireshark).
    Pcap(pcap::PcapArgs),
    /// Dovecot logs: logins with their TLS version (needs `%k` in
    /// login_log_format_elements), failed logins, refused handshakes, plaintext logins.
    Dovecot(log_file::LogArgs),
    /// Postfix logs: smtpd connections that tried AUTH or failed their TLS handshake, with the
    /// TLS version (smtpd_tls_loglevel = 1) and the SASL login.
    Postfix(log_file::LogArgs),
    /// An Entra ID sign-in log download (CSV or JSON, or a Graph auditLogs/signIns page):
    /// sign-ins with IMAP4, POP3 and Authenticated SMTP.
    #[command(name = "entra-signins")]
    EntraSignIns(entra_sign_ins::EntraArgs),
    /// The Exchange admin center's SMTP AUTH clients report (CSV): TLS version shares per
    /// sender.
    SmtpAuthReport(smtp_auth_report::ReportArgs),
}

/// Output options every import shares.
#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Print the summary as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs one `mailtls import` command.
pub fn run(command: ImportCommand) -> ExitCode {
    let (name, result) = match command {
        // A corrupt capture exits 1 with what was found before it: its own exit codes.
        ImportCommand::Pcap(args) => return pcap::run(args),
        ImportCommand::Dovecot(args) => ("dovecot", dovecot::run(args)),
        ImportCommand::Postfix(args) => ("postfix", postfix::run(args)),
        ImportCommand::EntraSignIns(args) => ("entra-signins", entra_sign_ins::run(args)),
        ImportCommand::SmtpAuthReport(args) => ("smtp-auth-report", smtp_auth_report::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mailtls import {name}: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// A duration such as `30s`, `5m`, `2h`, `500ms` or a bare number of seconds (for clap).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 30s, 5m or 2h"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}: use ms, s, m or h"
            ))
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is out of range"))
}

/// An export file opened for reading (or standard input for `-`), counting the bytes read.
struct ExportInput {
    reader: Box<dyn std::io::Read>,
    read: std::rc::Rc<std::cell::Cell<u64>>,
    /// When the file was last modified.
    modified: Option<std::time::SystemTime>,
}

impl ExportInput {
    fn open(path: &Path) -> Result<ExportInput> {
        let (inner, modified): (Box<dyn std::io::Read>, _) = if path == Path::new("-") {
            (Box::new(std::io::stdin()), None)
        } else {
            let file =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            let modified = file.metadata().and_then(|m| m.modified()).ok();
            (Box::new(file), modified)
        };
        let read = std::rc::Rc::new(std::cell::Cell::new(0));
        let reader = Box::new(log_file::CountingReader {
            inner,
            read: read.clone(),
        });
        Ok(ExportInput {
            reader,
            read,
            modified,
        })
    }
}

/// Stores what an export reader found and counts it in `summary`.
fn store_rows(
    summary: &mut ImportSummary,
    store: &mut Store,
    rows: logs::ExportRows,
) -> Result<()> {
    summary.count_understood(rows.rows - rows.not_understood);
    summary.count_not_understood(rows.not_understood);
    summary.note("rows about other client apps or protocols", rows.other);
    let mut batch: Vec<_> = rows
        .records
        .into_iter()
        .map(|e| (e.digest, e.record))
        .collect();
    for chunk in batch.chunks_mut(2_000) {
        summary.store_batch(store, &mut chunk.to_vec())?;
    }
    Ok(())
}

/// The name a file is shown by in messages: `standard input` for `-`.
fn shown_name(path: &Path) -> String {
    if path == Path::new("-") {
        "standard input".to_string()
    } else {
        path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }
}
