//! `mailtls exceptions list|expiring` read the exception register; `add|remove|renew` edit it
//! in place (comments and formatting kept) after checking the edited config exactly as
//! `check-config` does: an edit that would leave the config invalid is not written.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use policy::Exception;
use store::{Store, StoreLocation};
use time::{Duration, OffsetDateTime};

use super::check_config;
use super::terminal::shown;
use crate::command::store::named_store;
use crate::config::{self, NewException, RegisterEdit};

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
    /// What needs someone's attention: exceptions expiring within 30 days, exceptions that
    /// matched no client for 30 days, and legacy clients no exception covers (from the
    /// session store). Exits 1 when there is any.
    Warnings {
        #[command(flatten)]
        register: RegisterArgs,
        /// The session store, a SQLite file or a postgres:// URL (password from
        /// MAILTLS_STORE_PASSWORD); default: the config's `[store]`.
        #[arg(long, value_name = "PATH|URL")]
        store: Option<String>,
        /// With a postgres:// --store, the CA file the server's certificate must chain to.
        #[arg(long, value_name = "FILE", requires = "store")]
        store_ca: Option<PathBuf>,
    },
    /// Add an exception to the register, with an id never given before (the register's
    /// next_exception_id); owner, reason, expires and plan are required, and at least one of
    /// client, user and ja4.
    Add(AddArgs),
    /// Remove the exception with this id; the other exceptions keep their ids, and this one
    /// is never given to another exception.
    Remove {
        /// The mailtls config (the register is in it, or in the file it names).
        #[arg(long, short)]
        config: PathBuf,
        /// The exception's id, as `list` shows it.
        id: u32,
    },
    /// Give the exception with this id a new expiry (and plan).
    Renew {
        /// The mailtls config (the register is in it, or in the file it names).
        #[arg(long, short)]
        config: PathBuf,
        /// The exception's id, as `list` shows it.
        id: u32,
        /// The new expiry: a date (it stops matching at its first instant, UTC) or RFC 3339.
        #[arg(long)]
        expires: String,
        /// A new migration plan.
        #[arg(long)]
        plan: Option<String>,
    },
}

/// The keys of a new exception. None is required here: a missing one is reported by the
/// config's own check, with its key and what to write.
#[derive(Args)]
pub struct AddArgs {
    /// The mailtls config (the register is in it, or in the file it names).
    #[arg(long, short)]
    config: PathBuf,
    /// The clients' network ("10.20.0.0/24") or address.
    #[arg(long)]
    client: Option<String>,
    /// The clients' login.
    #[arg(long)]
    user: Option<String>,
    /// The JA4 fingerprint of the clients' ClientHello.
    #[arg(long)]
    ja4: Option<String>,
    /// Who answers for it.
    #[arg(long)]
    owner: Option<String>,
    /// Why the clients cannot meet the floor yet.
    #[arg(long)]
    reason: Option<String>,
    /// When it stops matching: a date (its first instant, UTC) or an RFC 3339 instant.
    #[arg(long)]
    expires: Option<String>,
    /// How the clients will stop needing it.
    #[arg(long)]
    plan: Option<String>,
    /// Accept a network that holds every address (0.0.0.0/0, ::/0).
    #[arg(long)]
    allow_broad: bool,
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
        ExceptionsCommand::Add(args) => return add(&args),
        ExceptionsCommand::Warnings {
            register,
            store,
            store_ca,
        } => return warnings(&register, store.as_deref(), store_ca),
        ExceptionsCommand::Remove { config, id } => {
            return edit(&config, "removed", |register| {
                register.remove(id).map(|()| id).map_err(|e| e.to_string())
            })
        }
        ExceptionsCommand::Renew {
            config,
            id,
            expires,
            plan,
        } => {
            return edit(&config, "renewed", |register| {
                future_expiry(&expires)?;
                register
                    .renew(id, &expires, plan.as_deref())
                    .map(|()| id)
                    .map_err(|e| e.to_string())
            })
        }
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

fn warnings(args: &RegisterArgs, store: Option<&str>, store_ca: Option<PathBuf>) -> ExitCode {
    let config = match check_config::load_or_report(&args.config) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let at = args.at.unwrap_or_else(OffsetDateTime::now_utc);
    // As the gateway opens it: run as root, the -wal/-shm files stay the gateway user's.
    let location = match store.map(|text| named_store(text, store_ca, false)) {
        Some(Ok(location)) => location,
        Some(Err(e)) => {
            eprintln!("mailtls exceptions warnings: {e:#}");
            return ExitCode::from(2);
        }
        None => config.store.clone(),
    };
    // Opening would create a missing SQLite file; without one only expiries can be judged.
    let missing = matches!(&location, StoreLocation::Sqlite { path, .. } if !path.exists());
    let warnings = if !missing {
        let judged =
            Store::open(&location).and_then(|mut store| store.judge_register(&config.policy, at));
        match judged {
            Ok(judged) => judged.warnings,
            Err(e) => {
                eprintln!("mailtls exceptions warnings: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        eprintln!(
            "mailtls exceptions warnings: no session store at {location}: only expiries are judged"
        );
        config
            .policy
            .register_warnings(&policy::RegisterUse::default(), at)
    };
    for warning in &warnings {
        // Whole: the warning quotes logins and register texts escaped (and logins cut).
        println!("{}: {warning}", warning.kind());
    }
    println!("{} warning(s) at {}", warnings.len(), at.date());
    if warnings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn add(args: &AddArgs) -> ExitCode {
    edit(&args.config, "added", |register| {
        if let Some(expires) = &args.expires {
            future_expiry(expires)?;
        }
        let today = OffsetDateTime::now_utc().date().to_string();
        register
            .add(&NewException {
                client: args.client.as_deref(),
                user: args.user.as_deref(),
                ja4: args.ja4.as_deref(),
                owner: args.owner.as_deref(),
                reason: args.reason.as_deref(),
                expires: args.expires.as_deref(),
                plan: args.plan.as_deref(),
                allow_broad: args.allow_broad,
                added: &today,
            })
            .map_err(|e| e.to_string())
    })
}

/// An exception is added or renewed to last: an expiry already past would be a no-op that
/// looks like permission.
fn future_expiry(expires: &str) -> Result<(), String> {
    // A date that does not parse is left to the config's check, which names the key.
    match config::parse_instant(expires) {
        Ok(at) if at <= OffsetDateTime::now_utc() => Err(format!(
            "--expires {} is not in the future; give the date the exception should stop matching",
            shown(expires)
        )),
        _ => Ok(()),
    }
}

/// Opens the register the config uses, applies `change` (which returns the exception's id),
/// validates the whole config as edited, and writes the register only if it is valid.
fn edit(
    config_path: &Path,
    done: &str,
    change: impl FnOnce(&mut RegisterEdit) -> Result<u32, String>,
) -> ExitCode {
    let command = "mailtls exceptions";
    let register_path = match config::register_path(config_path) {
        Ok(path) => path,
        Err(problems) => {
            return check_config::report(config_path, problems.iter().map(|p| p.to_string()))
        }
    };
    let mut register = match RegisterEdit::open(&register_path) {
        Ok(register) => register,
        Err(e) => {
            eprintln!("{command}: {e}");
            return ExitCode::from(2);
        }
    };
    let id = match change(&mut register) {
        Ok(id) => id,
        Err(problem) => {
            eprintln!("{command}: {problem}");
            return ExitCode::from(2);
        }
    };
    let text = register.text();
    if let Err(problems) = config::load_edited(config_path, Some((register.path(), &text))) {
        eprintln!("{command}: not written: the edited register would leave the config invalid");
        return check_config::report(config_path, problems.iter().map(|p| p.to_string()));
    }
    if let Err(e) = register.write() {
        eprintln!("{command}: {e}");
        return ExitCode::from(1);
    }
    println!("{done} exception {id} in {}", register.path().display());
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
