//! `mailtls import entra-signins FILE`: an Entra ID sign-in log download (CSV or JSON), kept
//! to IMAP4, POP3 and Authenticated SMTP sign-ins.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::{shown_name, ExportInput, ImportSummary, SummaryArgs};
use crate::command::store::StoreChoice;

/// Options of `mailtls import entra-signins`.
#[derive(Debug, Args)]
pub struct EntraArgs {
    /// The downloaded file (CSV or JSON, found by its first character); `-` reads standard
    /// input.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    store: StoreChoice,
    #[command(flatten)]
    summary: SummaryArgs,
}

/// Imports the download, then prints the summary.
pub fn run(args: EntraArgs) -> Result<()> {
    let (mut store, _) = args.store.open_to_add()?;
    let mut summary = ImportSummary::new("rows");
    let input = ExportInput::open(&args.file)?;
    let mut buffered = BufReader::new(input.reader);
    let json = first_character(&mut buffered)?.is_some_and(|c| c == b'[' || c == b'{');
    let rows = if json {
        logs::read_entra_sign_ins_json(&mut buffered)
    } else {
        logs::read_entra_sign_ins_csv(&mut buffered)
    }
    .with_context(|| format!("reading {}", shown_name(&args.file)))?;
    summary.add_bytes(input.read.get());
    super::store_rows(&mut summary, &mut store, rows)?;
    summary.print(&mut store, args.summary.json)
}

/// The first byte that is not white space or a byte order mark, left unread.
fn first_character(input: &mut BufReader<impl Read>) -> Result<Option<u8>> {
    loop {
        let buf = input.fill_buf().context("reading")?;
        if buf.is_empty() {
            return Ok(None);
        }
        let skip = if buf.starts_with("\u{feff}".as_bytes()) {
            3
        } else {
            match buf.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(0) => return Ok(Some(buf[0])),
                Some(n) => n,
                None => buf.len(),
            }
        };
        input.consume(skip);
    }
}
