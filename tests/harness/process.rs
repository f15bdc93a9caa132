//! The gateway process seen from outside, through /proc: its descriptors and its memory, to
//! show that a load or an attack left nothing behind.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Descriptors the process holds now.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| entries.count())
        .unwrap_or_else(|e| panic!("cannot list /proc/{pid}/fd: {e}"))
}

/// The descriptor count once it has stopped changing (three equal readings 200 ms apart), or
/// as soon as it is at most `enough`; gives up after 20 s and returns the last reading.
pub fn settled_fd_count(pid: u32, enough: Option<usize>) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut readings = vec![fd_count(pid)];
    loop {
        let last = *readings.last().expect("a reading");
        if enough.is_some_and(|enough| last <= enough) {
            return last;
        }
        if readings.len() >= 3 && readings[readings.len() - 3..].iter().all(|&r| r == last) {
            return last;
        }
        if Instant::now() > deadline {
            return last;
        }
        std::thread::sleep(Duration::from_millis(200));
        readings.push(fd_count(pid));
    }
}

/// What the process's descriptors point at, for a failure message.
pub fn fd_listing(pid: u32) -> String {
    let mut kinds: HashMap<String, usize> = HashMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
    {
        let target = entry
            .ok()
            .and_then(|e| std::fs::read_link(e.path()).ok())
            .map(|t| t.display().to_string())
            .unwrap_or_default();
        let kind = target.split(':').next().unwrap_or("").to_string();
        *kinds.entry(kind).or_default() += 1;
    }
    format!("descriptors by kind: {kinds:?}")
}

/// The process's resident memory (VmRSS) in KiB.
pub fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// Reads `child`'s standard error (piped) until a line containing `needle`, e.g. tcpdump's
/// or the sensor's "listening on", and returns what it said; the rest is drained in a thread
/// so the child never blocks on a full pipe.
pub fn await_stderr_line(child: &mut std::process::Child, needle: &str) -> String {
    use std::io::{BufRead, BufReader};
    let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
    let mut said = String::new();
    while !said.contains(needle) {
        let read = stderr.read_line(&mut said).expect("read standard error");
        assert!(read > 0, "ended before saying {needle:?}: {said}");
    }
    std::thread::spawn(move || {
        let mut rest = String::new();
        while stderr.read_line(&mut rest).is_ok_and(|n| n > 0) {
            rest.clear();
        }
    });
    said
}
