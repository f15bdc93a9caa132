//! Measures the session store's write rate with the client inventory's rollups (as the gateway
//! writes) against the same session rows written without them, and the time to read the
//! inventory back. Run by `bench/inventory.sh`; not part of CI.
//!
//! Usage: `inventory_bench DIR [RECORDS] [CLIENTS]` (defaults 1,000,000 and 1,000; RECORDS 0
//! measures PostgreSQL alone). Writes
//! `DIR/with-rollup.db` and `DIR/sessions-only.db`, prints one `key=value` line per figure.
//! With `POSTGRES_URL`, `POSTGRES_PASSWORD_FILE` and `POSTGRES_CA_FILE` set (a
//! `lab/postgres.sh` ports.env), also writes `POSTGRES_RECORDS` (default 200,000) of the same
//! records with rollups into that PostgreSQL, by one writer and then by two at once, as two
//! gateways would.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;

use store::{
    OfferedHello, Outcome, PostgresStore, PostgresTarget, SessionRecord, SessionStore, SqliteStore,
};
use wire::TlsVersion;

/// The writer's transaction size (the recorder's MAX_BATCH).
const BATCH: usize = 1_000;

/// The store's own session INSERT, repeated here so the baseline writes the same rows in the
/// same transactions without the rollups; the store offers no way to skip them.
const SESSIONS_ONLY: &str = "INSERT INTO sessions (
        started_at, ended_at, listener, protocol, client_addr, client_port, tls_version,
        tls_cipher, offered_max_tls, sni, ja4, client_id, login, upstream, upstream_tls_version,
        outcome, detail, bytes_from_client, bytes_to_client, offered_versions, offered_suites,
        offered_groups, offered_signature_algorithms, offered_alpn, ja3
    ) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
        ?20, ?21, ?22, ?23, ?24, ?25)";

/// Session `i` of `clients` devices polling over a year: a quarter at TLS 1.0, the rest at 1.2
/// or 1.3, with realistic offered lists.
fn record(i: u64, clients: u64) -> SessionRecord {
    let client = i % clients;
    let start = UNIX_EPOCH + Duration::from_secs(1_767_225_600 + i * 31_536_000 / 1_000_000);
    let legacy = client.is_multiple_of(4);
    let (tls, ja4) = if legacy {
        (TlsVersion::Tls10, "t10i090500_c491f621fb4c_195413a0cc0f")
    } else {
        (TlsVersion::Tls13, "t13i311000_e8f1e7e78f70_b26ce05bbdd6")
    };
    SessionRecord {
        source: store::Source::Gateway,
        started_at: start,
        ended_at: start + Duration::from_secs(3),
        listener: "imaps-legacy".into(),
        protocol: "imap".into(),
        client_addr: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + client as u32)),
        client_port: (40_000 + i % 20_000) as u16,
        tls_version: Some(tls),
        tls_cipher: Some("ECDHE-RSA-AES128-SHA".into()),
        offered_max_tls: Some(tls),
        sni: Some("mail.example.org".into()),
        ja4: Some(ja4.into()),
        client_id: vec![("name".into(), Some(format!("device-{}", client % 50)))],
        login: Some(format!("user{client}@example.org")),
        upstream: "outlook.office365.com:993".into(),
        upstream_tls_version: Some(TlsVersion::Tls13),
        outcome: Outcome::Ok,
        detail: None,
        bytes_from_client: 1_200,
        bytes_to_client: 64_000,
        offered: OfferedHello {
            versions: vec![tls.wire()],
            cipher_suites: (0xc000..0xc01f).collect(),
            groups: vec![29, 23, 30, 25, 24],
            signature_algorithms: vec![0x0403, 0x0503, 0x0603, 0x0804, 0x0805],
            alpn: Vec::new(),
            ja3: Some("6c6901c12bdffa0feda1b4bbaa890a72".into()),
        },
        policy: None,
        envelope_sender: None,
        messages_submitted: None,
    }
}

fn rfc3339(time: SystemTime) -> String {
    time::OffsetDateTime::from(time).format(&Rfc3339).unwrap()
}

fn rate(records: u64, took: Duration) -> u64 {
    (records as f64 / took.as_secs_f64()) as u64
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .expect("usage: inventory_bench DIR [RECORDS] [CLIENTS]"),
    );
    let records: u64 = args
        .next()
        .map_or(1_000_000, |n| n.parse().expect("RECORDS"));
    let clients: u64 = args.next().map_or(1_000, |n| n.parse().expect("CLIENTS"));
    std::fs::create_dir_all(&dir).expect("bench directory");
    if records == 0 {
        // PostgreSQL alone (bench/inventory.sh with RECORDS=0).
        if let Ok(url) = std::env::var("POSTGRES_URL") {
            postgres(&url, clients);
        }
        return;
    }
    let batches = || {
        (0..records).step_by(BATCH).map(move |first| {
            (first..(first + BATCH as u64).min(records))
                .map(|i| record(i, clients))
                .collect::<Vec<_>>()
        })
    };

    // The rows as the gateway's writer stores them: sessions and rollups in one transaction.
    let with_path = dir.join("with-rollup.db");
    let mut store = SqliteStore::open(&with_path).expect("open");
    let mut writing = Duration::ZERO;
    for batch in batches() {
        let started = Instant::now();
        store.insert_batch(&batch).expect("insert");
        writing += started.elapsed();
    }
    println!("records={records} clients={clients}");
    println!("with_rollup_rows_per_s={}", rate(records, writing));

    // The same rows without rollups, on a store created by the same code.
    let only_path = dir.join("sessions-only.db");
    drop(SqliteStore::open(&only_path).expect("create"));
    let mut conn = rusqlite::Connection::open(&only_path).expect("open");
    conn.pragma_update(None, "journal_mode", "wal")
        .expect("wal");
    conn.pragma_update(None, "synchronous", "NORMAL")
        .expect("sync");
    let mut writing = Duration::ZERO;
    for batch in batches() {
        let started = Instant::now();
        let tx = conn.transaction().expect("begin");
        {
            let mut insert = tx.prepare_cached(SESSIONS_ONLY).expect("prepare");
            for r in &batch {
                let json = |codes: &[u16]| serde_json::to_string(codes).unwrap();
                insert
                    .execute(rusqlite::params![
                        rfc3339(r.started_at),
                        rfc3339(r.ended_at),
                        r.listener,
                        r.protocol,
                        r.client_addr.to_string(),
                        r.client_port,
                        r.tls_version.map(|v| v.to_string()),
                        r.tls_cipher,
                        r.offered_max_tls.map(|v| v.to_string()),
                        r.sni,
                        r.ja4,
                        serde_json::to_string(&r.client_id).unwrap(),
                        r.login,
                        r.upstream,
                        r.upstream_tls_version.map(|v| v.to_string()),
                        r.outcome.as_str(),
                        r.detail,
                        r.bytes_from_client as i64,
                        r.bytes_to_client as i64,
                        json(&r.offered.versions),
                        json(&r.offered.cipher_suites),
                        json(&r.offered.groups),
                        json(&r.offered.signature_algorithms),
                        serde_json::to_string(&r.offered.alpn).unwrap(),
                        r.offered.ja3,
                    ])
                    .expect("insert");
            }
        }
        tx.commit().expect("commit");
        writing += started.elapsed();
    }
    println!("sessions_only_rows_per_s={}", rate(records, writing));

    // Reading the inventory, as `mailtls clients` does, from a fresh connection.
    let reader = SqliteStore::open(&with_path).expect("open");
    let started = Instant::now();
    let listed = reader.clients().expect("clients");
    println!(
        "clients_listed={} clients_read_ms={}",
        listed.len(),
        started.elapsed().as_millis()
    );
    if let Ok(url) = std::env::var("POSTGRES_URL") {
        postgres(&url, clients);
    }
}

/// CPU time (user and system) of this process and of the PostgreSQL server, for the cost per
/// session on a machine whose other load makes wall time a poor measure.
#[derive(Clone, Copy)]
struct CpuTimes {
    bench: Duration,
    server: Option<Duration>,
}

impl CpuTimes {
    /// Now. The server's time is its postmaster's (`POSTGRES_PID` from ports.env), the
    /// backends it has reaped, and those still running.
    fn now() -> CpuTimes {
        let server = std::env::var("POSTGRES_PID").ok().map(|pid| {
            let mut total = proc_cpu(&pid, true).unwrap_or_default();
            for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.bytes().all(|b| b.is_ascii_digit())
                    && proc_field(&name, 1).as_deref() == Some(pid.as_str())
                {
                    total += proc_cpu(&name, false).unwrap_or_default();
                }
            }
            total
        });
        CpuTimes {
            bench: proc_cpu("self", false).unwrap_or_default(),
            server,
        }
    }

    /// Microseconds per session since `earlier`, as `name_bench_cpu_us_per_session=..` and
    /// `name_server_cpu_us_per_session=..`.
    fn report(&self, earlier: &CpuTimes, name: &str, sessions: u64) {
        let per = |d: Duration| d.as_secs_f64() * 1e6 / sessions as f64;
        print!(
            "{name}_bench_cpu_us_per_session={:.1}",
            per(self.bench - earlier.bench)
        );
        if let (Some(now), Some(then)) = (self.server, earlier.server) {
            print!(" {name}_server_cpu_us_per_session={:.1}", per(now - then));
        }
        println!();
    }
}

/// Field `index` (0 = state, after the command) of /proc/PID/stat.
fn proc_field(pid: &str, index: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command may hold spaces; the fields start after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(index).map(str::to_string)
}

/// User and system time of a process, with its reaped children's when `children`.
fn proc_cpu(pid: &str, children: bool) -> Option<Duration> {
    // utime, stime, cutime, cstime are fields 14-17 of stat, 11-14 after the command.
    let ticks: Vec<u64> = (11..if children { 15 } else { 13 })
        .map(|i| proc_field(pid, i).and_then(|f| f.parse().ok()))
        .collect::<Option<_>>()?;
    // The kernel's USER_HZ is 100 on every Linux this runs on.
    Some(Duration::from_millis(ticks.iter().sum::<u64>() * 10))
}

/// The PostgreSQL figures: one writer, then two at once into a fresh set of tables.
fn postgres(url: &str, clients: u64) {
    let records: u64 =
        std::env::var("POSTGRES_RECORDS").map_or(200_000, |n| n.parse().expect("POSTGRES_RECORDS"));
    let env = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let password = std::fs::read_to_string(env("POSTGRES_PASSWORD_FILE")).expect("password");
    let target = PostgresTarget::parse(url)
        .expect("POSTGRES_URL")
        .with_password(password.trim_end().to_string().into())
        .with_ca_file(env("POSTGRES_CA_FILE").into());
    // The batches are made before the clock starts, so only the store's work is timed.
    let batches = |first: u64, count: u64| -> Vec<Vec<SessionRecord>> {
        (first..first + count)
            .step_by(BATCH)
            .map(|start| {
                (start..(start + BATCH as u64).min(first + count))
                    .map(|i| record(i, clients))
                    .collect()
            })
            .collect()
    };
    let write = |batches: Vec<Vec<SessionRecord>>| {
        let mut store = PostgresStore::open(&target).expect("open PostgreSQL");
        let started = Instant::now();
        for batch in &batches {
            store.insert_batch(batch).expect("insert");
        }
        started.elapsed()
    };
    let one = batches(0, records);
    let before = CpuTimes::now();
    let took = write(one);
    println!(
        "postgres_records={records} postgres_with_rollup_rows_per_s={}",
        rate(records, took)
    );
    CpuTimes::now().report(&before, "postgres_one_writer", records);
    // Two writers at once, each with half, into the same clients.
    let half = records / 2;
    let (a, b) = (batches(records, half), batches(records + half, half));
    let before = CpuTimes::now();
    let started = Instant::now();
    let write = &write;
    std::thread::scope(|scope| {
        let a = scope.spawn(move || write(a));
        let b = scope.spawn(move || write(b));
        a.join().expect("writer a");
        b.join().expect("writer b");
    });
    println!(
        "postgres_two_writers_rows_per_s={}",
        rate(half * 2, started.elapsed())
    );
    CpuTimes::now().report(&before, "postgres_two_writers", half * 2);
    let mut reader = PostgresStore::open(&target).expect("open PostgreSQL");
    let started = Instant::now();
    let listed = reader.clients().expect("clients");
    println!(
        "postgres_clients_listed={} postgres_clients_read_ms={}",
        listed.len(),
        started.elapsed().as_millis()
    );
    // Two writers adding to the same client rows at once must lose no update.
    let counted: u64 = listed.iter().map(|client| client.sessions).sum();
    assert_eq!(counted, records + half * 2, "sessions in the inventory");
}
