//! `--store PATH` / `--config FILE`: how `clients`, `report` and `dashboard` find the session
//! store that holds the inventory.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use store::SqliteStore;

use crate::config;

/// Where the inventory is.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The session store (SQLite file) to read.
    #[arg(long, global = true, value_name = "PATH", conflicts_with = "config")]
    pub store: Option<PathBuf>,
    /// Read the store's path from this gateway config.
    #[arg(long, short, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl StoreArgs {
    /// The store's path, from `--store` or the config's `[store]`.
    pub fn path(&self) -> Result<PathBuf> {
        match (&self.store, &self.config) {
            (Some(path), None) => Ok(path.clone()),
            (None, Some(config)) => Ok(config::load_or_explain(config)?.store_path),
            _ => bail!("give the store with --store PATH or --config FILE"),
        }
    }

    /// Opens the store, which must exist.
    pub fn open(&self) -> Result<(PathBuf, SqliteStore)> {
        let path = self.path()?;
        if !path.exists() {
            bail!(
                "no session store at {} (has the gateway run?)",
                path.display()
            );
        }
        let store = SqliteStore::open(&path)?;
        Ok((path, store))
    }
}
