//! Reports rendered for people (a table, coloured on a terminal) and for programs (JSON,
//! CSV). Pure functions from reports to text.

mod csv;
mod table;

pub use csv::{csv, csv_field};
pub use table::table;

use crate::report::ScanReport;

/// One JSON document: an array of reports.
pub fn json(reports: &[ScanReport]) -> String {
    serde_json::to_string_pretty(reports).expect("reports always serialise")
}

#[cfg(test)]
mod tests;
