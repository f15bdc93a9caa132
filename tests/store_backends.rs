//! The session store's behaviour, run against both databases: SQLite (a file) and PostgreSQL
//! (a private server from `lab/postgres.sh`, over verified TLS with a scram-sha-256 password).
//! Each behaviour gets a fresh database. PostgreSQL is not optional here: without the Debian
//! package the lab script fails and so does the test, it never skips.
//!
//! Behaviours: records read back equal; the inventory's rollups and verdicts; the cap on
//! values kept per client; annotations;
//! refusal counts; an empty database migrated and reopened; retention (pruning in batches
//! while the rollups stay, by the background pruner and through `mailtls store prune`); and two writers at once
//! adding to the same clients without losing an update.

use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use e2e::{mailtls_bin, Postgres, Scratch};
use store::{
    Annotation, AnnotationSubject, AttributeKind, OfferedHello, Outcome, PostgresTarget, Pruned,
    RefusalReason, RefusalSummary, SessionPruner, SessionRecord, SessionStore, Source, Store,
    StoreAccess, StoreLocation, Verdict,
};
use wire::TlsVersion;

/// A fresh, empty store per call, named after the behaviour.
type FreshStore<'a> = &'a dyn Fn(&str) -> StoreLocation;

const DAY: Duration = Duration::from_secs(86_400);

/// A session of the client at `addr` logged in as `login`, `offered` its highest version and
/// `negotiated` (None for plaintext), starting `n` seconds after a fixed July 2026 morning.
fn session(
    n: u64,
    addr: &str,
    login: &str,
    offered: Option<TlsVersion>,
    negotiated: Option<TlsVersion>,
) -> SessionRecord {
    let started_at = UNIX_EPOCH + Duration::from_millis(1_784_448_000_000 + n * 1_000);
    SessionRecord {
        source: Source::Gateway,
        started_at,
        ended_at: started_at + Duration::from_millis(1_250),
        listener: "imaps-legacy".into(),
        protocol: "imap".into(),
        client_addr: addr.parse().unwrap(),
        client_port: 40_000 + (n % 20_000) as u16,
        tls_version: negotiated,
        tls_cipher: negotiated.map(|_| "ECDHE-RSA-AES128-SHA".into()),
        offered_max_tls: offered,
        sni: offered.map(|_| "mail.example.org".into()),
        ja4: offered.map(|v| format!("t{}d1305h1_c866b44c5a26_e8a9a4eba7c6", v.wire() - 0x300 + 9)),
        offered: OfferedHello {
            versions: offered.map(|v| vec![v.wire()]).unwrap_or_default(),
            cipher_suites: vec![0xc013, 0xc014, 0x002f],
            groups: vec![29, 23],
            signature_algorithms: Vec::new(),
            alpn: vec!["imap".into()],
            ja3: offered.map(|_| "c6dbf3152a545382a95425e390e2d2e8".into()),
        },
        client_id: vec![
            ("name".into(), Some("Outlook".into())),
            ("version".into(), Some("12.0".into())),
            ("vendor".into(), None),
        ],
        login: Some(login.into()),
        upstream: "imap.example.org:993".into(),
        upstream_tls_version: Some(TlsVersion::Tls13),
        outcome: Outcome::Ok,
        detail: None,
        bytes_from_client: 1_000 + n,
        bytes_to_client: 250_000 + n,
        envelope_sender: None,
        messages_submitted: n.is_multiple_of(3).then_some(u32::try_from(n).unwrap()),
        policy: None,
    }
}

fn legacy(n: u64) -> SessionRecord {
    session(
        n,
        "192.0.2.17",
        "alice",
        Some(TlsVersion::Tls10),
        Some(TlsVersion::Tls10),
    )
}

fn open(location: &StoreLocation) -> Store {
    Store::open(location).unwrap_or_else(|e| panic!("open {location}: {e}"))
}

fn records_read_back_equal(fresh: FreshStore<'_>) {
    let mut store = open(&fresh("read_back"));
    let mut bare = legacy(2);
    bare.client_addr = "2001:db8::1".parse().unwrap();
    bare.tls_version = None;
    bare.tls_cipher = None;
    bare.offered_max_tls = None;
    bare.sni = None;
    bare.ja4 = None;
    bare.client_id = Vec::new();
    bare.login = None;
    bare.upstream_tls_version = None;
    bare.outcome = Outcome::ClientTlsFailed;
    bare.detail = Some("no shared protocol version: client offered at most TLSv1.0".into());
    bare.bytes_from_client = u64::from(u32::MAX) * 4;
    let mut unicode = legacy(3);
    unicode.listener = "Zürich ✉".into();
    unicode.login = Some("josé.müller@exämple.org".into());
    unicode.client_id = vec![
        ("名前".into(), Some("メール 📧".into())),
        ("\"q\"\n".into(), None),
    ];
    unicode.source = Source::Capture;
    let mut submission = legacy(4);
    submission.protocol = "smtp".into();
    submission.envelope_sender = Some(String::new());
    submission.policy = Some(store::PolicyDecision {
        verdict: "warn".into(),
        rule: "sunset/window".into(),
        exception: Some(7),
    });
    let mut sub_ms = legacy(5);
    sub_ms.started_at += Duration::from_nanos(123_456_789);
    let records = vec![legacy(1), bare, unicode, submission, sub_ms.clone()];

    store.insert_batch(&records).unwrap();
    store.insert_batch(&[]).unwrap();

    let mut expected = records;
    // Both databases keep times to the millisecond.
    expected[4].started_at = sub_ms.started_at - Duration::from_nanos(456_789);
    assert_eq!(store.sessions().unwrap(), expected);
    assert_eq!(store.count().unwrap(), 5);
    // The exception that let the submission through, with its one session.
    let matched = store.policy_use(UNIX_EPOCH).unwrap().exception_matches;
    assert_eq!(
        matched,
        [store::ExceptionMatches {
            id: 7,
            last_matched: expected[3].started_at,
            sessions: 1
        }]
    );
}

fn rollups_give_each_client_its_totals_and_verdict(fresh: FreshStore<'_>) {
    let mut store = open(&fresh("rollups"));
    let tls10 = Some(TlsVersion::Tls10);
    let tls12 = Some(TlsVersion::Tls12);
    let tls13 = Some(TlsVersion::Tls13);
    store
        .insert_batch(&[
            session(10, "192.0.2.10", "old-printer", tls10, tls10),
            session(11, "192.0.2.10", "old-printer", tls10, tls10),
            session(12, "192.0.2.11", "misconfigured", tls12, tls10),
            session(13, "192.0.2.12", "modern", tls13, tls13),
            session(14, "192.0.2.13", "plaintext", None, None),
        ])
        .unwrap();
    // A later batch, and one older than anything stored, from another source.
    let mut earlier = session(1, "192.0.2.12", "modern", tls13, tls12);
    earlier.source = Source::DovecotLog;
    earlier.listener = "imaps-modern".into();
    store
        .insert_batch(&[
            session(20, "192.0.2.10", "old-printer", tls10, tls10),
            earlier,
        ])
        .unwrap();

    let clients = store.clients().unwrap();
    assert_eq!(clients.len(), 4, "{clients:#?}");
    let by_login = |login: &str| {
        clients
            .iter()
            .find(|c| c.identity.login.as_deref() == Some(login))
            .unwrap_or_else(|| panic!("no client {login}: {clients:#?}"))
    };
    let printer = by_login("old-printer");
    assert_eq!(printer.verdict, Verdict::Breaks);
    assert_eq!(printer.sessions, 3);
    assert_eq!(printer.highest_offered, Some(TlsVersion::Tls10));
    assert_eq!(printer.negotiated, [TlsVersion::Tls10]);
    assert_eq!(printer.first_seen, legacy(10).started_at);
    assert_eq!(printer.last_seen, legacy(20).started_at);
    assert_eq!(
        printer.identity.reported_software.as_deref(),
        Some("Outlook 12.0")
    );
    assert_eq!(printer.values(AttributeKind::Sni), ["mail.example.org"]);
    assert_eq!(by_login("misconfigured").verdict, Verdict::AtRisk);
    assert_eq!(by_login("plaintext").verdict, Verdict::NoTls);
    let modern = by_login("modern");
    assert_eq!(modern.verdict, Verdict::Ok);
    assert_eq!(modern.sessions, 2);
    assert_eq!(modern.negotiated, [TlsVersion::Tls12, TlsVersion::Tls13]);
    assert_eq!(
        modern.first_seen,
        legacy(1).started_at,
        "the older batch moved first_seen"
    );
    assert_eq!(
        modern.source,
        Source::DovecotLog,
        "the earliest session's source"
    );
    assert_eq!(
        modern.values(AttributeKind::Source),
        ["dovecot_log", "gateway"]
    );
    assert_eq!(
        modern.values(AttributeKind::Listener),
        ["imaps-modern", "imaps-legacy"]
    );
}

/// A client naming a new server each session keeps at most 64 of them, the same 64 in both
/// databases (the first by value), whether they came in one batch or several.
fn attribute_values_are_capped_per_kind(fresh: FreshStore<'_>) {
    let mut store = open(&fresh("attribute_cap"));
    let with_sni = |n: u64| {
        let mut r = legacy(n);
        r.sni = Some(format!("host{n:03}.example.org"));
        r
    };
    store
        .insert_batch(&(0..70).rev().map(with_sni).collect::<Vec<_>>())
        .unwrap();
    store
        .insert_batch(&(70..75).map(with_sni).collect::<Vec<_>>())
        .unwrap();
    let clients = store.clients().unwrap();
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0].sessions, 75);
    let mut sni = clients[0].values(AttributeKind::Sni).to_vec();
    sni.sort();
    let expected: Vec<String> = (0..64).map(|n| format!("host{n:03}.example.org")).collect();
    assert_eq!(sni, expected);
}

fn annotations_show_with_their_clients(fresh: FreshStore<'_>) {
    let mut store = open(&fresh("annotations"));
    store
        .insert_batch(&[
            session(
                1,
                "192.0.2.17",
                "alice",
                Some(TlsVersion::Tls10),
                Some(TlsVersion::Tls10),
            ),
            session(
                2,
                "198.51.100.4",
                "scanner",
                Some(TlsVersion::Tls12),
                Some(TlsVersion::Tls12),
            ),
        ])
        .unwrap();
    let now = SystemTime::now();
    let note = |owner: Option<&str>, device: Option<&str>, note: Option<&str>| Annotation {
        owner: owner.map(Into::into),
        device: device.map(Into::into),
        note: note.map(Into::into),
    };
    let alice_id = store
        .clients()
        .unwrap()
        .iter()
        .find(|c| c.identity.login.as_deref() == Some("alice"))
        .unwrap()
        .id;
    store
        .annotate(
            &AnnotationSubject::Client(alice_id),
            &note(Some("Facilities"), Some("Lobby printer"), None),
            now,
        )
        .unwrap();
    // A later annotation of the same subject keeps the fields it does not give.
    store
        .annotate(
            &AnnotationSubject::Client(alice_id),
            &note(None, None, Some("replace in Q3")),
            now,
        )
        .unwrap();
    store
        .annotate(
            &AnnotationSubject::parse("198.51.100.0/24"),
            &note(Some("Security"), None, None),
            now,
        )
        .unwrap();

    let clients = store.clients().unwrap();
    let alice = clients.iter().find(|c| c.id == alice_id).unwrap();
    assert_eq!(
        alice.annotation,
        Some(note(
            Some("Facilities"),
            Some("Lobby printer"),
            Some("replace in Q3")
        ))
    );
    let scanner = clients.iter().find(|c| c.id != alice_id).unwrap();
    assert_eq!(
        scanner.annotation.as_ref().and_then(|a| a.owner.as_deref()),
        Some("Security")
    );
    assert_eq!(store.annotations().unwrap().len(), 2);

    // Field by field: a note on the scanner itself and a device on a narrower network keep
    // the owner its /24 gives it (the client's own annotation used to hide it whole).
    let write = |store: &mut Store, subject: AnnotationSubject, annotation: Annotation| {
        store.annotate(&subject, &annotation, now).unwrap();
    };
    let annotation_of = |store: &mut Store, id: i64| {
        let clients = store.clients().unwrap();
        clients.into_iter().find(|c| c.id == id).unwrap().annotation
    };
    let scanner_id = AnnotationSubject::Client(scanner.id);
    write(
        &mut store,
        scanner_id.clone(),
        note(None, None, Some("printer")),
    );
    write(
        &mut store,
        AnnotationSubject::parse("198.51.100.0/28"),
        note(None, Some("MFP"), None),
    );
    assert_eq!(
        annotation_of(&mut store, scanner.id),
        Some(note(Some("Security"), Some("MFP"), Some("printer")))
    );
    // A field given blank is cleared on that subject: the scanner's note goes, the wider
    // owner stays; alice's own owner goes, with nothing wider to show instead.
    write(&mut store, scanner_id, note(None, None, Some("")));
    assert_eq!(
        annotation_of(&mut store, scanner.id),
        Some(note(Some("Security"), Some("MFP"), None))
    );
    let alice = AnnotationSubject::Client(alice_id);
    write(&mut store, alice, note(Some(" "), Some(""), Some("")));
    assert_eq!(annotation_of(&mut store, alice_id), None);

    let missing = store
        .annotate(
            &AnnotationSubject::Client(9_999),
            &note(Some("x"), None, None),
            now,
        )
        .unwrap_err();
    assert!(missing.to_string().contains("no client c9999"), "{missing}");
    let long = "o".repeat(1_025);
    let too_long = store
        .annotate(
            &AnnotationSubject::parse("alice"),
            &note(Some(&long), None, None),
            now,
        )
        .unwrap_err();
    assert!(
        too_long.to_string().contains("longer than 1024"),
        "{too_long}"
    );
}

fn refusal_counts_add_up(fresh: FreshStore<'_>) {
    let mut store = open(&fresh("refusals"));
    let minute = UNIX_EPOCH + Duration::from_secs(1_784_448_000);
    let summary = |addr: &str, reason, count| RefusalSummary {
        minute,
        listener: "imaps".into(),
        client_addr: addr.parse::<IpAddr>().unwrap(),
        reason,
        count,
    };
    store
        .add_refusals(&[
            summary("192.0.2.7", RefusalReason::ClientLimit, 5_000),
            summary("2001:db8::7", RefusalReason::PreAuthBudget, 1),
        ])
        .unwrap();
    store
        .add_refusals(&[summary("192.0.2.7", RefusalReason::ClientLimit, 5_000)])
        .unwrap();
    assert_eq!(
        store.refusals().unwrap(),
        [
            summary("192.0.2.7", RefusalReason::ClientLimit, 10_000),
            summary("2001:db8::7", RefusalReason::PreAuthBudget, 1),
        ]
    );
}

fn an_empty_database_is_migrated_and_reopened(fresh: FreshStore<'_>) {
    let location = fresh("migrations");
    let mut first = open(&location);
    assert_eq!(first.count().unwrap(), 0);
    assert!(first.clients().unwrap().is_empty());
    first.insert_batch(&[legacy(1)]).unwrap();
    drop(first);
    // Opening again finds the schema current and the data kept.
    let mut second = open(&location);
    second.insert_batch(&[legacy(2)]).unwrap();
    assert_eq!(second.sessions().unwrap(), [legacy(1), legacy(2)]);
    assert_eq!(second.clients().unwrap()[0].sessions, 2);
}

fn pruning_deletes_old_sessions_in_batches_and_keeps_the_rollups(fresh: FreshStore<'_>) {
    let location = fresh("retention");
    let mut store = open(&location);
    let now = SystemTime::now();
    // Two and a half batches of sessions older than 400 days, and a recent one.
    let old: Vec<SessionRecord> = (0..12_500)
        .map(|n| {
            let mut r = legacy(n);
            r.started_at = now - 500 * DAY + Duration::from_secs(n);
            r
        })
        .collect();
    for chunk in old.chunks(1_000) {
        store.insert_batch(chunk).unwrap();
    }
    let mut recent = legacy(1);
    recent.started_at = now - DAY;
    store.insert_batch(std::slice::from_ref(&recent)).unwrap();

    // Counts of refused connections and digests of imported evidence, old and recent.
    let refusal = |minute| RefusalSummary {
        minute,
        listener: "imaps".into(),
        client_addr: "192.0.2.9".parse::<IpAddr>().unwrap(),
        reason: RefusalReason::ClientLimit,
        count: 3,
    };
    let whole_minute = |at: SystemTime| {
        let since = at.duration_since(UNIX_EPOCH).unwrap().as_secs();
        UNIX_EPOCH + Duration::from_secs(since / 60 * 60)
    };
    let (old_minute, recent_minute) = (whole_minute(now - 401 * DAY), whole_minute(now - DAY));
    store
        .add_refusals(&[refusal(old_minute), refusal(recent_minute)])
        .unwrap();
    let mut imported = legacy(7);
    imported.started_at = now - 500 * DAY;
    let old_evidence = [([7u8; 16], imported.clone())];
    store
        .insert_imported(&old_evidence, now - 401 * DAY)
        .unwrap();
    let recent_evidence = [([8u8; 16], recent.clone())];
    store.insert_imported(&recent_evidence, now - DAY).unwrap();

    let pruned = store.prune(400 * DAY, now).unwrap();
    assert_eq!(
        pruned,
        Pruned {
            sessions: 12_501,
            refusal_counts: 1,
            evidence_digests: 1
        }
    );
    assert_eq!(store.refusals().unwrap(), [refusal(recent_minute)]);
    let again = store.insert_imported(&recent_evidence, now).unwrap();
    assert!(
        again.stored.is_empty() && again.older_than_kept == 0,
        "recent evidence is still known as imported: {again:?}"
    );
    // Its digest is gone, but evidence older than what the store keeps is not stored again:
    // the rollups count it already.
    let again = store.insert_imported(&old_evidence, now).unwrap();
    assert!(
        again.stored.is_empty() && again.older_than_kept == 1,
        "{again:?}"
    );
    assert_eq!(store.count().unwrap(), 2);
    assert_eq!(store.sessions().unwrap()[0].client_port, recent.client_port);
    let clients = store.clients().unwrap();
    assert_eq!(clients.len(), 1);
    assert_eq!(
        clients[0].sessions, 12_503,
        "the rollup still counts the pruned sessions, each once"
    );
    assert_eq!(
        store.prune(400 * DAY, now).unwrap().total(),
        0,
        "nothing left to prune"
    );
}

/// The gateway's background pruner (`[store] keep_sessions`) runs at once when started, on a
/// connection of its own beside the writer's.
fn the_background_pruner_runs_at_start(fresh: FreshStore<'_>) {
    let location = fresh("pruner");
    let mut store = open(&location);
    let now = SystemTime::now();
    let mut old = legacy(1);
    old.started_at = now - 401 * DAY;
    let mut recent = legacy(2);
    recent.started_at = now - DAY;
    store.insert_batch(&[old, recent]).unwrap();

    let pruner = SessionPruner::spawn(open(&location), 400 * DAY);
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.count().unwrap() > 1 {
        assert!(Instant::now() < deadline, "the pruner did not run");
        std::thread::sleep(Duration::from_millis(50));
    }
    pruner.stop();
    assert_eq!(store.clients().unwrap()[0].sessions, 2);
}

/// Two writers, each with its own connection, add to the same clients at once: every session
/// is counted once, every client is one row.
fn two_writers_at_once_make_one_inventory(fresh: FreshStore<'_>) {
    let location = fresh("concurrent");
    drop(open(&location));
    let writers: Vec<_> = (0..2u64)
        .map(|w| {
            let location = location.clone();
            std::thread::spawn(move || {
                let mut store = open(&location);
                for batch in 0..20u64 {
                    let records: Vec<SessionRecord> = (0..30u64)
                        .map(|i| {
                            let n = w * 100_000 + batch * 100 + i;
                            let tls = Some(TlsVersion::Tls10);
                            session(n, &format!("192.0.2.{}", i % 3), "shared", tls, tls)
                        })
                        .collect();
                    store.insert_batch(&records).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer");
    }
    let mut store = open(&location);
    assert_eq!(store.count().unwrap(), 1_200);
    let clients = store.clients().unwrap();
    assert_eq!(clients.len(), 3, "{clients:#?}");
    for client in &clients {
        assert_eq!(client.sessions, 400, "{client:?}");
    }
}

/// `mailtls import`'s writes: evidence seen before (in an earlier batch, or twice in one)
/// adds no record, and the new records reach the inventory and the per-day rollups.
fn imported_evidence_is_stored_once(fresh: FreshStore<'_>) {
    let mut store = open(&fresh("imported"));
    let now = std::time::SystemTime::now();
    let mut logged = legacy(1);
    logged.source = Source::DovecotLog;
    let mut other = legacy(2);
    other.source = Source::DovecotLog;
    other.client_addr = "192.0.2.77".parse().unwrap();
    let first = [([1u8; 16], logged.clone()), ([1u8; 16], logged.clone())];
    assert_eq!(
        store.insert_imported(&first, now).unwrap().stored,
        [&logged]
    );
    let again = [([1u8; 16], logged.clone()), ([2u8; 16], other.clone())];
    assert_eq!(store.insert_imported(&again, now).unwrap().stored, [&other]);
    assert_eq!(store.count().unwrap(), 2);
    let clients = store.clients().unwrap();
    assert_eq!(clients.len(), 2, "{clients:#?}");
    assert!(clients
        .iter()
        .all(|c| c.values(store::AttributeKind::Source) == ["dovecot_log"]));
    let days = store.daily_sessions(store::DayRange::default()).unwrap();
    let total: u64 = days.iter().map(|(_, counts)| counts.sessions).sum();
    assert_eq!(total, 2, "{days:?}");
}

/// Every behaviour, each against a fresh store from `fresh`.
fn the_store_suite(fresh: FreshStore<'_>) {
    imported_evidence_is_stored_once(fresh);
    records_read_back_equal(fresh);
    rollups_give_each_client_its_totals_and_verdict(fresh);
    attribute_values_are_capped_per_kind(fresh);
    annotations_show_with_their_clients(fresh);
    refusal_counts_add_up(fresh);
    an_empty_database_is_migrated_and_reopened(fresh);
    pruning_deletes_old_sessions_in_batches_and_keeps_the_rollups(fresh);
    the_background_pruner_runs_at_start(fresh);
    two_writers_at_once_make_one_inventory(fresh);
}

#[test]
fn the_store_suite_passes_on_sqlite() {
    let scratch = Scratch::new("store-sqlite");
    the_store_suite(&|name| StoreLocation::Sqlite {
        path: scratch.path().join(format!("{name}.db")),
        access: StoreAccess::default(),
    });
}

#[test]
fn the_store_suite_passes_on_postgres() {
    let scratch = Scratch::new("store-postgres");
    let postgres = Postgres::start(&scratch.path().join("postgres"));
    the_store_suite(&|name| postgres.database(name));
    // Every connection was TLS 1.2+ with the scram password: the server allows nothing else,
    // and its log says so for each one.
    let log = postgres.log();
    let connections: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("connection authorized: user=mailtls"))
        .collect();
    assert!(connections.len() >= 8, "{log}");
    for line in connections {
        assert!(
            line.contains("application_name=mailtls SSL enabled (protocol=TLSv1.3"),
            "{line}"
        );
    }
}

/// `mailtls store prune` on both databases, the PostgreSQL one named by URL with its password
/// in the environment and its CA on the command line; an unverified server or a wrong
/// password is a clear error.
#[test]
fn mailtls_store_prune_prints_how_many_sessions_went() {
    let scratch = Scratch::new("store-prune");
    let postgres = Postgres::start(&scratch.path().join("postgres"));
    let sqlite = scratch.path().join("prune.db");
    let sqlite_location = StoreLocation::Sqlite {
        path: sqlite.clone(),
        access: StoreAccess::default(),
    };
    let now = SystemTime::now();
    let mut old = legacy(1);
    old.started_at = now - 401 * DAY;
    let mut recent = legacy(2);
    recent.started_at = now - DAY;
    for location in [&sqlite_location, &postgres.location()] {
        open(location)
            .insert_batch(&[old.clone(), old.clone(), recent.clone()])
            .unwrap();
    }

    let sqlite_arg = sqlite.display().to_string();
    let ca = postgres.ca_file().display().to_string();
    for args in [
        vec!["--store", sqlite_arg.as_str()],
        vec!["--store", postgres.url(), "--store-ca", ca.as_str()],
    ] {
        let output = Command::new(mailtls_bin())
            .args(["store", "prune", "--older-than", "400d"])
            .args(&args)
            .env("MAILTLS_STORE_PASSWORD", postgres.password())
            .output()
            .expect("run mailtls");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?}: {stdout}{stderr}");
        assert!(
            stdout.starts_with("pruned 2 session(s) older than 400 days"),
            "{stdout}"
        );
        assert!(!format!("{stdout}{stderr}").contains(&postgres.password()));
    }
    for location in [&sqlite_location, &postgres.location()] {
        let mut store = open(location);
        assert_eq!(store.count().unwrap(), 1, "{location}");
        assert_eq!(store.clients().unwrap()[0].sessions, 3, "{location}");
    }

    // A server whose certificate does not chain to the CA given (here only the system's
    // roots) is refused before any password is sent.
    let output = Command::new(mailtls_bin())
        .args([
            "store",
            "prune",
            "--older-than",
            "400d",
            "--store",
            postgres.url(),
        ])
        .args(["--store-ca", "/etc/ssl/certs/ca-certificates.crt"])
        .env("MAILTLS_STORE_PASSWORD", postgres.password())
        .output()
        .expect("run mailtls");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("certificate verify failed"), "{stderr}");

    // A wrong password is a clear error that never shows the password.
    let output = Command::new(mailtls_bin())
        .args([
            "store",
            "prune",
            "--older-than",
            "400d",
            "--store",
            postgres.url(),
        ])
        .args(["--store-ca", ca.as_str()])
        .env("MAILTLS_STORE_PASSWORD", "wrong-password-123")
        .output()
        .expect("run mailtls");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert!(!stderr.contains("wrong-password-123"), "{stderr}");
}

/// A TCP relay in front of the lab PostgreSQL whose connections can all be cut at once, as a
/// network failure would: the bytes (TLS) pass untouched.
struct CuttableRelay {
    port: u16,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl CuttableRelay {
    fn start(to: u16) -> CuttableRelay {
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let port = listener.local_addr().unwrap().port();
        let open = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let tracked = open.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let server = TcpStream::connect(("127.0.0.1", to)).expect("reach PostgreSQL");
                let mut sockets = tracked.lock().unwrap();
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (mut from, mut to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
                sockets.extend([client, server]);
            }
        });
        CuttableRelay { port, open }
    }

    /// Breaks every connection made so far; new ones are relayed again.
    fn cut(&self) {
        for socket in self.open.lock().unwrap().drain(..) {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// The connection breaks while PostgreSQL commits a batch (a deferred trigger makes the commit
/// take two seconds): the writer cannot know from the broken connection whether the batch
/// was stored. It checks on a new connection, after the commit under way has ended, finds the
/// batch there and reports it written, so the recorder does not write it a second time.
#[test]
fn a_batch_whose_commit_answer_is_lost_is_found_stored_and_not_written_twice() {
    let scratch = Scratch::new("store-lost-commit");
    let postgres = Postgres::start(&scratch.path().join("postgres"));
    let direct = postgres.database("lost_commit");
    drop(open(&direct));
    postgres.sql(
        "lost_commit",
        "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$;
         CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON sessions
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.listener = 'slow')
             EXECUTE FUNCTION slow_commit();",
    );
    // postgres://mailtls@127.0.0.1:PORT/mailtls?sslmode=require
    let url = postgres.url();
    let server_port: u16 = url
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("a port in {url}"));
    let relay = CuttableRelay::start(server_port);
    let relayed_url = postgres.url().replace(
        &format!(":{server_port}/mailtls?"),
        &format!(":{}/lost_commit?", relay.port),
    );
    let relayed = StoreLocation::Postgres(
        PostgresTarget::parse(&relayed_url)
            .unwrap()
            .with_password(zeroize::Zeroizing::new(postgres.password()))
            .with_ca_file(postgres.ca_file()),
    );
    let mut store = open(&relayed);
    store.insert_batch(&[legacy(1)]).unwrap();

    let mut slow = legacy(3);
    slow.listener = "slow".into();
    let batch = vec![legacy(2), slow];
    let writer = std::thread::spawn(move || {
        let result = store.insert_batch(&batch);
        (result, store)
    });
    // The batch's rows are sent within this time; its commit then sleeps in the trigger.
    std::thread::sleep(Duration::from_millis(800));
    relay.cut();
    let (result, _store) = writer.join().expect("the writer");
    assert!(result.is_ok(), "the commit had happened: {result:?}");
    let mut check = open(&direct);
    assert_eq!(check.count().unwrap(), 3);
    assert_eq!(
        check.clients().unwrap()[0].sessions,
        3,
        "each session counted once"
    );
}
