//! Arbitrary bytes as the JSON data a report embeds, rendered into a page as `mailtls report`
//! does and checked as `mailtls report verify` does. `report_file` rarely gets a file past its
//! SHA-256 check; here the digest is always right, so every data the JSON can hold reaches the
//! renderer (the timeline's "today" is the data's own `generated_at`). Rendering must not
//! panic, and what it renders must verify with the same data.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(report) = serde_json::from_slice::<report::ReportData>(data) else {
        return;
    };
    let Ok(html) = report::render_html(&report, None) else {
        return;
    };
    let checked = report::verify(&html).expect("a rendered page verifies");
    assert_eq!(checked.data, report);
});
