//! Arbitrary bytes as a Dovecot or a Postfix log, line by line, into `logs::DovecotLog` or
//! `logs::PostfixLog` (which joins lines per smtpd process). It must never panic; a line
//! completes at most one record; every login and detail is bounded; and reading the same lines
//! again gives the same records and digests (what re-import relies on).
//!
//! Input layout: one byte whose low bit picks the reader (0 Dovecot, 1 Postfix), then the
//! bytes of a log, split at `\n`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use logs::{DovecotLog, Evidence, LogClock, LogReader, PostfixLog, MAX_TEXT_BYTES};
use time::UtcOffset;
use wire::TlsVersion;

fuzz_target!(|data: &[u8]| {
    let Some((&which, log)) = data.split_first() else {
        return;
    };
    let postfix = which & 1 == 1;
    let first = read(postfix, log);
    assert_eq!(first, read(postfix, log), "the same lines read differently");
    for evidence in &first {
        let record = &evidence.record;
        assert!(record.login.as_ref().is_none_or(|l| l.len() <= MAX_TEXT_BYTES));
        assert!(record.detail.as_ref().is_none_or(|d| d.len() <= MAX_TEXT_BYTES));
    }
});

fn read(postfix: bool, log: &[u8]) -> Vec<Evidence> {
    let clock = LogClock::new(2026, UtcOffset::UTC);
    let mut reader: Box<dyn LogReader> = if postfix {
        Box::new(PostfixLog::new(clock, TlsVersion::Tls12))
    } else {
        Box::new(DovecotLog::new(clock, TlsVersion::Tls12))
    };
    let mut out = Vec::new();
    for line in log.split(|&b| b == b'\n') {
        let before = out.len();
        reader.read_line(line, &mut out);
        assert!(out.len() <= before + 1, "one line, one record at most");
    }
    out
}
