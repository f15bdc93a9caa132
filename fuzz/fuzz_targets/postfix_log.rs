//! Arbitrary bytes as a Postfix log, line by line, into `logs::PostfixLog`, which joins lines
//! per smtpd process. It must never panic; a line completes at most one record; every login
//! and detail is bounded; and reading the same lines again gives the same records and digests.
//!
//! Input layout: the bytes of a log, split at `\n`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use logs::{Evidence, LogClock, LogReader, PostfixLog, MAX_TEXT_BYTES};
use time::UtcOffset;
use wire::TlsVersion;

fuzz_target!(|data: &[u8]| {
    let first = read(data);
    assert_eq!(first, read(data), "the same lines read differently");
    for evidence in &first {
        let record = &evidence.record;
        assert!(record.login.as_ref().is_none_or(|l| l.len() <= MAX_TEXT_BYTES));
        assert!(record.detail.as_ref().is_none_or(|d| d.len() <= MAX_TEXT_BYTES));
    }
});

fn read(data: &[u8]) -> Vec<Evidence> {
    let mut reader = PostfixLog::new(LogClock::new(2026, UtcOffset::UTC), TlsVersion::Tls12);
    let mut out = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        let before = out.len();
        reader.read_line(line, &mut out);
        assert!(out.len() <= before + 1, "one line, one record at most");
    }
    out
}
