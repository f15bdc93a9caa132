//! Arbitrary text as a report file given to `mailtls report verify`, and as the times the
//! dashboard's filter form sends. Neither may panic; a file that verifies must carry data
//! that renders back to exactly that file, and a time that parses must re-parse the same.

#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(checked) = report::verify(text) {
        if checked.page_checked {
            assert_eq!(report::render_html(&checked.data, None).unwrap(), text);
        }
    }
    let now = UNIX_EPOCH + Duration::from_secs(1_780_000_000);
    if let Ok(time) = report::parse_time(text, now) {
        let _ = report::utc_day(time);
    }
});
