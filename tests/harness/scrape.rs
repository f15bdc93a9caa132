//! Reading the gateway's Prometheus endpoint as a monitoring system does: `GET /metrics` with
//! curl, and the samples of the text format looked up by name and labels.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::run;

/// How long a metric may take to show what happened: sessions are counted when the gateway
/// hands their records to its store, right after they end.
const SETTLE: Duration = Duration::from_secs(10);

/// `GET /metrics` with curl; panics unless it answers 200 in the text format.
pub fn scrape(port: u16) -> String {
    let output = run(Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--max-time", "10"])
        .args(["--write-out", "\n%{content_type}"])
        .arg(format!("http://127.0.0.1:{port}/metrics")));
    let text = String::from_utf8(output.stdout).expect("UTF-8 exposition");
    assert!(
        output.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (body, content_type) = text.rsplit_once('\n').expect("content type line");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    body.to_string()
}

/// The value of the sample `name{labels}` (labels in any order, no others), if served.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    wanted.sort();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, number) = line.rsplit_once(' ')?;
            let (sample, label_text) = match series.split_once('{') {
                Some((sample, rest)) => (sample, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            let mut found: Vec<String> = match label_text {
                "" => Vec::new(),
                text => text.split(',').map(str::to_string).collect(),
            };
            found.sort();
            (sample == name && found == wanted).then(|| number.parse().expect("a number"))
        })
}

/// How many labelled series of metric `name` the output holds.
pub fn series(text: &str, name: &str) -> usize {
    let start = format!("{name}{{");
    text.lines().filter(|l| l.starts_with(&start)).count()
}

/// Scrapes until `ready` holds for the output, or panics with the last one after [`SETTLE`].
pub fn scrape_until(port: u16, what: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + SETTLE;
    loop {
        let text = scrape(port);
        if ready(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "never {what}:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
