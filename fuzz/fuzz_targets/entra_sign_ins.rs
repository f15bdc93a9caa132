//! Arbitrary bytes as an Entra sign-in log download, read both as CSV and as JSON. Neither may
//! panic; what is read is either an error or rows whose counts add up, one record at most per
//! row, every login and detail bounded.
//!
//! Input layout: the file's bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use logs::{read_entra_sign_ins_csv, read_entra_sign_ins_json, ExportRows, MAX_TEXT_BYTES};

fuzz_target!(|data: &[u8]| {
    if let Ok(rows) = read_entra_sign_ins_csv(data) {
        check(&rows);
    }
    if let Ok(rows) = read_entra_sign_ins_json(data) {
        check(&rows);
    }
});

fn check(rows: &ExportRows) {
    assert_eq!(
        rows.records.len() as u64 + rows.other + rows.not_understood,
        rows.rows,
        "every row is a record, another app's or not understood"
    );
    for evidence in &rows.records {
        let record = &evidence.record;
        assert!(record.login.as_ref().is_none_or(|l| l.len() <= MAX_TEXT_BYTES));
        assert!(record.detail.as_ref().is_none_or(|d| d.len() <= MAX_TEXT_BYTES));
    }
}
