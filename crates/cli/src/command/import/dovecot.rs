//! `mailtls import dovecot FILE...`: Dovecot's login lines into the inventory.

use anyhow::Result;
use logs::DovecotLog;

use super::log_file::{import, LogArgs};

/// Imports the logs, then prints the summary.
pub fn run(args: LogArgs) -> Result<()> {
    let mut reader = DovecotLog::new(args.clock(), args.server_floor());
    let (summary, mut store) = import(&args, &mut reader)?;
    summary.print(&mut store, args.json())
}
