//! Arbitrary bytes as an SMTP AUTH clients report export. It must never panic; a row gives at
//! most one record per TLS version (four), every sender bounded, every share read within
//! 0 to 100 percent.
//!
//! Input layout: the file's bytes.

#![no_main]

use std::time::UNIX_EPOCH;

use libfuzzer_sys::fuzz_target;
use logs::{read_smtp_auth_report, MAX_TEXT_BYTES};

fuzz_target!(|data: &[u8]| {
    let Ok(rows) = read_smtp_auth_report(data, UNIX_EPOCH) else {
        return;
    };
    assert!(rows.records.len() as u64 <= 4 * rows.rows);
    assert!(rows.not_understood <= rows.rows);
    for evidence in &rows.records {
        let record = &evidence.record;
        assert!(record.login.as_ref().is_some_and(|l| l.len() <= MAX_TEXT_BYTES));
        assert!(record.tls_version.is_some());
    }
});
