//! `mailtls import postfix FILE...`: Postfix smtpd connections into the inventory.

use anyhow::Result;
use logs::PostfixLog;

use super::log_file::{import, LogArgs};

/// Imports the logs, then prints the summary, which tells how many connections the logs cut
/// off before their end (not recorded: a later import of the grown log records them).
pub fn run(args: LogArgs) -> Result<()> {
    let mut reader = PostfixLog::new(args.clock(), args.server_floor());
    let (mut summary, mut store) = import(&args, &mut reader)?;
    summary.note(
        "connections still open at the end of the log (not recorded)",
        reader.open_connections() as u64,
    );
    summary.print(&mut store, args.json())
}
