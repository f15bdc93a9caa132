//! The session store as the CLI commands name it (`--store PATH|URL` or `--config FILE`), and
//! `mailtls store prune`: old raw sessions deleted on demand, the inventory kept.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use store::{PostgresTarget, Store, StoreLocation};
use zeroize::Zeroizing;

use crate::config::{self, PASSWORD_ENV};

/// Which store a command reads or changes.
#[derive(Debug, Args)]
pub struct StoreChoice {
    /// The session store: a SQLite file, or a postgres://USER@HOST:PORT/DB?sslmode=require URL
    /// (its password from the environment variable MAILTLS_STORE_PASSWORD).
    #[arg(
        long,
        global = true,
        value_name = "PATH|URL",
        conflicts_with = "config"
    )]
    store: Option<String>,
    /// With a postgres:// --store, the CA file the server's certificate must chain to.
    #[arg(long, global = true, value_name = "FILE", requires = "store")]
    store_ca: Option<PathBuf>,
    /// Take the store from this gateway config's [store] section.
    #[arg(long, short, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl StoreChoice {
    /// The gateway config given with `--config`, if any.
    pub fn config_file(&self) -> Option<&std::path::Path> {
        self.config.as_deref()
    }

    /// Where the store is, and `keep_sessions` when a config gives it.
    pub fn location(&self) -> Result<(StoreLocation, Option<Duration>)> {
        self.locate(true)
    }

    /// [`StoreChoice::location`]; a SQLite file that does not exist yet is an error when
    /// `must_exist`, else it is created when opened.
    fn locate(&self, must_exist: bool) -> Result<(StoreLocation, Option<Duration>)> {
        match (&self.store, &self.config) {
            (Some(text), None) => Ok((named_store(text, self.store_ca.clone(), must_exist)?, None)),
            (None, Some(file)) => {
                let config = config::load(file).map_err(|problems| {
                    let listed: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                    anyhow::anyhow!("{}: {}", file.display(), listed.join("; "))
                })?;
                if let StoreLocation::Sqlite { path, .. } = &config.store {
                    if must_exist && !path.exists() {
                        bail!(
                            "no session store at {} (has the gateway run?)",
                            path.display()
                        );
                    }
                }
                Ok((config.store, config.keep_sessions))
            }
            _ => bail!("give the store with --store PATH|URL or --config FILE"),
        }
    }

    /// Opens the store to add records to (`mailtls import`): a SQLite file is created when
    /// missing.
    pub fn open_to_add(&self) -> Result<(Store, StoreLocation)> {
        let (location, _) = self.locate(false)?;
        let store = Store::open(&location)
            .with_context(|| format!("opening the session store {location}"))?;
        Ok((store, location))
    }

    /// Opens the store.
    pub fn open(&self) -> Result<(Store, StoreLocation, Option<Duration>)> {
        let (location, keep) = self.location()?;
        let store = Store::open(&location)?;
        Ok((store, location, keep))
    }
}

/// `mailtls store ...`.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Delete raw sessions older than --older-than (or the config's keep_sessions), 5,000 per
    /// transaction; the client inventory keeps counting them. Prints how many went.
    Prune {
        #[command(flatten)]
        store: StoreChoice,
        /// How old a session must be to go, e.g. 400d (also h, m, s).
        #[arg(long, value_name = "AGE", value_parser = config::parse_age)]
        older_than: Option<Duration>,
    },
}

/// Runs `mailtls store ...`.
pub fn run(command: StoreCommand) -> ExitCode {
    let StoreCommand::Prune { store, older_than } = command;
    match prune(&store, older_than) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mailtls store prune: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn prune(choice: &StoreChoice, older_than: Option<Duration>) -> Result<()> {
    let (mut store, location, keep) = choice.open()?;
    let Some(age) = older_than.or(keep) else {
        bail!("give --older-than AGE (e.g. 400d), or a config with [store] keep_sessions");
    };
    let pruned = store.prune(age, SystemTime::now())?;
    println!(
        "pruned {} session(s) older than {} days from {location}; the inventory keeps them counted",
        pruned.sessions,
        age.as_secs() / 86_400
    );
    println!(
        "pruned {} count(s) of refused connections and {} digest(s) of imported evidence of that age",
        pruned.refusal_counts, pruned.evidence_digests
    );
    Ok(())
}

/// The store `--store` names: a postgres:// URL (its password from MAILTLS_STORE_PASSWORD, its
/// server's CA from `ca`), or a SQLite file, which must exist when `must_exist` (reading must
/// not leave an empty database behind a mistyped path).
pub fn named_store(text: &str, ca: Option<PathBuf>, must_exist: bool) -> Result<StoreLocation> {
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        let mut target =
            PostgresTarget::parse(text).map_err(|e| anyhow::anyhow!("--store: {e}"))?;
        if let Ok(password) = std::env::var(PASSWORD_ENV) {
            target = target.with_password(Zeroizing::new(password));
        }
        if let Some(ca) = ca {
            target = target.with_ca_file(ca);
        }
        return Ok(StoreLocation::Postgres(target));
    }
    if ca.is_some() {
        bail!("--store-ca goes with a postgres:// --store only");
    }
    let path = PathBuf::from(text);
    if must_exist && !path.exists() {
        bail!(
            "no session store at {} (has the gateway run?)",
            path.display()
        );
    }
    Ok(StoreLocation::Sqlite {
        path,
        access: store::StoreAccess::default(),
    })
}
