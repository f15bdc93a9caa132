//! What the Microsoft 365 export readers share: columns found by their header names, the
//! error for a file that lacks some, and the tally of rows read.

use std::io::Read;
use std::time::SystemTime;

use time::UtcOffset;

use crate::{Evidence, LogClock};
use store::EvidenceDigester;

/// Why an export file could not be read at all. A row it cannot read is counted instead (see
/// [`ExportRows::not_understood`]).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The header lacks columns the reader needs.
    #[error("the {export} export has no column {}: export it again with every column (found: {})", quoted(.missing), quoted(.found))]
    MissingColumns {
        /// Which export, e.g. `Entra sign-in log`.
        export: &'static str,
        /// The documented names of the columns not found.
        missing: Vec<String>,
        /// The header names the file has.
        found: Vec<String>,
    },
    /// The CSV could not be read (e.g. a row with an unterminated quote).
    #[error("cannot read the {export} CSV: {source}")]
    Csv {
        /// Which export.
        export: &'static str,
        /// What the CSV reader reported.
        source: csv::Error,
    },
    /// The JSON is not an array of sign-ins nor Graph's `{"value": [...]}`.
    #[error("cannot read the {export} JSON: {reason}")]
    Json {
        /// Which export.
        export: &'static str,
        /// What was wrong.
        reason: String,
    },
}

fn quoted(names: &[String]) -> String {
    let shown: Vec<String> = names.iter().take(60).map(|n| format!("{n:?}")).collect();
    shown.join(", ")
}

/// What reading an export found.
#[derive(Debug, Default, PartialEq)]
pub struct ExportRows {
    /// Rows read (the header not counted).
    pub rows: u64,
    /// The records made from them.
    pub records: Vec<Evidence>,
    /// Rows about something else, e.g. sign-ins by a browser rather than IMAP4.
    pub other: u64,
    /// Rows whose required cells could not be read (a bad time or address).
    pub not_understood: u64,
}

/// A column a reader looks for: its documented name and other spellings seen in exports.
pub(crate) struct Wanted {
    pub(crate) names: &'static [&'static str],
    pub(crate) required: bool,
}

/// The index of each wanted column in `header`, matched by name with surrounding spaces
/// removed and case ignored (exports have had `Application ID ` with a trailing space, and
/// the same name twice: the first is taken). Unknown columns are ignored, the order is free.
fn find_columns<'h>(
    export: &'static str,
    header: impl IntoIterator<Item = &'h str>,
    wanted: &[Wanted],
) -> Result<Vec<Option<usize>>, ExportError> {
    let found: Vec<String> = header
        .into_iter()
        .enumerate()
        // The first header may carry the UTF-8 byte order mark Excel-friendly exports write.
        .map(|(i, name)| {
            let name = if i == 0 {
                name.trim_start_matches('\u{feff}')
            } else {
                name
            };
            name.trim().to_string()
        })
        .collect();
    let indexes: Vec<Option<usize>> = wanted
        .iter()
        .map(|column| {
            found.iter().position(|name| {
                column
                    .names
                    .iter()
                    .any(|wanted| name.eq_ignore_ascii_case(wanted))
            })
        })
        .collect();
    let missing: Vec<String> = wanted
        .iter()
        .zip(&indexes)
        .filter(|(column, index)| column.required && index.is_none())
        .map(|(column, _)| column.names[0].to_string())
        .collect();
    if missing.is_empty() {
        Ok(indexes)
    } else {
        Err(ExportError::MissingColumns {
            export,
            missing,
            found,
        })
    }
}

/// One row of a CSV export, its cells looked up by the wanted columns' order.
pub(crate) struct CsvRow<'r> {
    record: &'r csv::StringRecord,
    columns: &'r [Option<usize>],
}

impl CsvRow<'_> {
    /// The cell of wanted column `i`, spaces trimmed; `None` when the file lacks that
    /// (optional) column or the row is short.
    pub(crate) fn cell(&self, i: usize) -> Option<&str> {
        self.columns[i]
            .and_then(|c| self.record.get(c))
            .map(str::trim)
    }

    /// Every cell of the row as written, for its digest.
    pub(crate) fn texts(&self) -> impl Iterator<Item = &str> {
        self.record.iter()
    }
}

/// Reads the CSV export named `export`: finds the `wanted` columns in its header, then hands
/// each row to `each` with the tally and a digester tagged `tag`.
pub(crate) fn read_csv(
    export: &'static str,
    input: impl Read,
    wanted: &[Wanted],
    tag: &'static str,
    mut each: impl FnMut(&CsvRow<'_>, &mut ExportRows, &mut EvidenceDigester),
) -> Result<ExportRows, ExportError> {
    let csv_error = |source| ExportError::Csv { export, source };
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let header = reader.headers().map_err(csv_error)?.clone();
    let columns = find_columns(export, header.iter(), wanted)?;
    let mut rows = ExportRows::default();
    let mut digests = EvidenceDigester::new(tag);
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(csv_error)? {
        rows.rows += 1;
        let row = CsvRow {
            record: &record,
            columns: &columns,
        };
        each(&row, &mut rows, &mut digests);
    }
    Ok(rows)
}

/// An ISO 8601 time with its zone (`2025-12-04T08:19:41Z`), as both exports write it.
pub(crate) fn iso_time(text: &str) -> Option<SystemTime> {
    let (at, rest) = LogClock::new(1970, UtcOffset::UTC).read(text.trim())?;
    rest.is_empty().then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WANTED: [Wanted; 2] = [
        Wanted {
            names: &["IP address"],
            required: true,
        },
        Wanted {
            names: &["Request ID"],
            required: false,
        },
    ];

    #[test]
    fn columns_are_found_by_trimmed_name_in_any_order() {
        let found = find_columns("test", ["\u{feff}x", " request id ", "IP Address"], &WANTED);
        assert_eq!(found.unwrap(), [Some(2), Some(1)]);
    }

    #[test]
    fn a_missing_required_column_is_named() {
        let error = find_columns("test", ["Request ID", "User"], &WANTED).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("no column \"IP address\""), "{text}");
        assert!(text.contains("\"User\""), "{text}");
    }
}
