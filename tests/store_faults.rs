//! The session store in trouble while the gateway serves: records wait and are retried, the
//! sessions themselves go on, and no record is lost.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use e2e::fault_lab::{standard_listeners, Lab};
use e2e::free_port;
use e2e::scrape::{scrape, scrape_until, value};

/// Another process holds the store's write lock through four failed writes of the gateway
/// (each waits out SQLite's 5 s busy timeout), as a long-running admin transaction would: the
/// sessions go on, their records stay queued, and a retry stores them all once the lock is
/// gone, while the gateway still runs. (A writer that gave up after three attempts lost them.)
/// The metrics endpoint shows it as it happens: failed writes counted, records queued, then none.
#[test]
fn a_locked_store_delays_records_and_loses_none() {
    let metrics = free_port();
    let mut lab = Lab::start(
        "locked-store",
        &format!("\n[metrics]\nbind = \"127.0.0.1:{metrics}\""),
        Vec::new(),
        standard_listeners(),
    );
    let db = lab.gateway.db_path();

    // Python's sqlite3 takes the write lock and holds it until its stdin closes.
    let mut locker = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys\n\
             db = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             db.execute('BEGIN EXCLUSIVE')\n\
             print('locked', flush=True)\n\
             sys.stdin.read()\n\
             db.rollback()\n",
        ])
        .arg(&db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut said = String::new();
    BufReader::new(locker.stdout.take().expect("stdout"))
        .read_line(&mut said)
        .expect("the locker's answer");
    assert_eq!(said, "locked\n");

    lab.imap_login_works("imap-tls");
    lab.pop3_login_works("pop3-plain");
    lab.imap_login_works("imap-plain");

    // Wait until the writer has reported four failed writes, then let the lock go.
    lab.wait_for_failed_writes(4);
    let text = scrape(metrics);
    let failures = value(&text, "mailtls_store_write_failures_total", &[]);
    assert!(failures.is_some_and(|n| n >= 4.0), "{text}");
    assert_eq!(
        value(&text, "mailtls_store_queued_records", &[]),
        Some(3.0),
        "{text}"
    );
    drop(locker.stdin.take());
    assert!(locker.wait().expect("locker exit").success());
    // Stored by a retry while the gateway runs, not only by the last attempts at shutdown.
    lab.wait_for_records(3);
    scrape_until(metrics, "an empty store queue", |text| {
        value(text, "mailtls_store_queued_records", &[]) == Some(0.0)
    });

    // One record per connection (checked by `finish`), each a normal login.
    let (records, log) = lab.finish();
    assert_eq!(records.len(), 3, "{records:#?}");
    assert!(
        !log.contains("session record not stored"),
        "records were given up:\n{log}"
    );
}
