use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::fixture::{sample_record, TempDir};
use crate::{Annotation, AnnotationSubject, SessionStore, SqliteStore};

/// A small deterministic generator, so a failure replays.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Sessions of a dozen clients over ten days: TLS 1.0-only devices, modern ones, ones that
/// offer 1.2 but got 1.0, plaintext logins, failed handshakes.
fn synthetic_records(count: usize) -> Vec<SessionRecord> {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let day0 = 1_784_448_000_000u64; // 2026-07-19T08:00:00Z
    (0..count)
        .map(|i| {
            let mut rec = sample_record(i as u16);
            let client = rng.below(12);
            rec.client_addr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10 + (client % 4) as u8));
            rec.started_at = UNIX_EPOCH + Duration::from_millis(day0 + rng.below(10 * 86_400_000));
            rec.login = Some(format!("user{}", client % 3));
            rec.listener = ["imaps-legacy", "pop3s-legacy"][rng.below(2) as usize].into();
            rec.sni = Some(format!("mail{}.example.org", rng.below(3)));
            rec.client_id = Vec::new();
            match client % 4 {
                0 => {
                    rec.offered_max_tls = Some(TlsVersion::Tls10);
                    rec.tls_version = Some(TlsVersion::Tls10);
                    rec.ja4 = Some("t10i090500_c491f621fb4c_195413a0cc0f".into());
                }
                1 => {
                    rec.offered_max_tls = Some(TlsVersion::Tls13);
                    rec.tls_version = Some(TlsVersion::Tls13);
                    rec.tls_cipher = Some("TLS_AES_256_GCM_SHA384".into());
                    rec.ja4 = Some("t13i311000_e8f1e7e78f70_b26ce05bbdd6".into());
                    rec.client_id = vec![("Name".into(), Some("Thunderbird".into()))];
                }
                2 => {
                    rec.offered_max_tls = Some(TlsVersion::Tls12);
                    rec.tls_version =
                        Some([TlsVersion::Tls10, TlsVersion::Tls12][rng.below(2) as usize]);
                    rec.ja4 = Some("t12i280600_d943125447b4_e7e480e5a997".into());
                }
                _ => {
                    rec.offered_max_tls = None;
                    rec.tls_version = None;
                    rec.tls_cipher = None;
                    rec.ja4 = None;
                    rec.sni = None;
                    rec.offered = OfferedHello::default();
                }
            }
            if rng.below(10) == 0 {
                rec.outcome = Outcome::AuthFailed;
            }
            rec
        })
        .collect()
}

use crate::OfferedHello;

/// What one client should look like, recomputed straight from its sessions.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    sessions: u64,
    first: Option<SystemTime>,
    last: Option<SystemTime>,
    highest_offered: Option<TlsVersion>,
    negotiated: BTreeSet<TlsVersion>,
    listeners: BTreeSet<String>,
    snis: BTreeSet<String>,
    days: BTreeMap<String, (u64, u64, u64)>,
    any_plaintext_login: bool,
    any_downgrade: bool,
}

fn recompute(records: &[SessionRecord]) -> BTreeMap<String, Expected> {
    let mut clients: BTreeMap<String, Expected> = BTreeMap::new();
    for rec in records {
        let software = rec
            .client_id
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("name"))
            .and_then(|(_, v)| v.clone());
        let key = format!(
            "{}|{:?}|{:?}|{:?}",
            rec.client_addr, rec.login, rec.ja4, software
        );
        let e = clients.entry(key).or_default();
        e.sessions += 1;
        e.first = Some(e.first.map_or(rec.started_at, |f| f.min(rec.started_at)));
        e.last = Some(e.last.map_or(rec.started_at, |l| l.max(rec.started_at)));
        e.highest_offered = e.highest_offered.max(rec.offered_max_tls);
        e.negotiated.extend(rec.tls_version);
        e.listeners.insert(rec.listener.clone());
        e.snis.extend(rec.sni.clone());
        let day = crate::timestamp::format(rec.started_at)[..10].to_string();
        let d = e.days.entry(day).or_default();
        d.0 += 1;
        d.1 += u64::from(rec.tls_version.is_some_and(|v| v < TlsVersion::Tls12));
        d.2 += u64::from(rec.outcome != Outcome::Ok);
        e.any_plaintext_login |= rec.login.is_some() && rec.tls_version.is_none();
        e.any_downgrade |= rec.offered_max_tls >= Some(TlsVersion::Tls12)
            && rec.tls_version.is_some_and(|v| v < TlsVersion::Tls12);
    }
    clients
}

fn key_of(client: &ClientSummary) -> String {
    let id = &client.identity;
    format!(
        "{}|{:?}|{:?}|{:?}",
        id.address, id.login, id.ja4, id.reported_software
    )
}

fn day_counts(store: &SqliteStore, id: i64) -> BTreeMap<String, (u64, u64, u64)> {
    let mut stmt = store
        .conn()
        .prepare("SELECT day, sessions, legacy_sessions, failed_sessions FROM client_days WHERE client_id = ?1")
        .unwrap();
    stmt.query_map([id], |row| {
        Ok((
            row.get::<_, String>(0)?,
            (
                row.get::<_, i64>(1)?.unsigned_abs(),
                row.get::<_, i64>(2)?.unsigned_abs(),
                row.get::<_, i64>(3)?.unsigned_abs(),
            ),
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn rollups_equal_a_recompute_from_the_sessions() {
    let dir = TempDir::new("rollup");
    let mut store = SqliteStore::open(&dir.db_path()).unwrap();
    let records = synthetic_records(600);
    // Batches of uneven sizes, as the writer forms them.
    let mut rest = &records[..];
    let mut rng = XorShift(7);
    while !rest.is_empty() {
        let n = (1 + rng.below(90) as usize).min(rest.len());
        store.insert_batch(&rest[..n]).unwrap();
        rest = &rest[n..];
    }

    let expected = recompute(&store.sessions().unwrap());
    let clients = store.clients().unwrap();
    assert_eq!(clients.len(), expected.len());
    let mut verdicts = BTreeSet::new();
    for client in &clients {
        let e = &expected[&key_of(client)];
        assert_eq!(client.sessions, e.sessions, "{client:?}");
        assert_eq!(Some(client.first_seen), e.first);
        assert_eq!(Some(client.last_seen), e.last);
        assert_eq!(client.highest_offered, e.highest_offered);
        assert_eq!(
            client.negotiated.iter().copied().collect::<BTreeSet<_>>(),
            e.negotiated
        );
        let listeners: BTreeSet<String> = client
            .values(AttributeKind::Listener)
            .iter()
            .cloned()
            .collect();
        assert_eq!(listeners, e.listeners);
        let snis: BTreeSet<String> = client.values(AttributeKind::Sni).iter().cloned().collect();
        assert_eq!(snis, e.snis);
        assert_eq!(day_counts(&store, client.id), e.days);
        // The verdict read straight from the definitions.
        let verdict = if e.highest_offered.is_some_and(|v| v < TlsVersion::Tls12) {
            Verdict::Breaks
        } else if e.any_plaintext_login {
            Verdict::NoTls
        } else if e.any_downgrade {
            Verdict::AtRisk
        } else {
            Verdict::Ok
        };
        assert_eq!(client.verdict, verdict, "{client:?}");
        verdicts.insert(verdict);
    }
    assert_eq!(
        verdicts.len(),
        4,
        "the data covers every verdict: {verdicts:?}"
    );
    let total: u64 = clients.iter().map(|c| c.sessions).sum();
    assert_eq!(total, 600);
}

#[test]
fn software_is_reported_else_recognised_else_unknown() {
    let dir = TempDir::new("software");
    let mut store = SqliteStore::open(&dir.db_path()).unwrap();
    let reported = sample_record(1);
    let mut recognised = sample_record(2);
    recognised.client_id = Vec::new();
    recognised.ja4 = Some("t10d090600_c491f621fb4c_195413a0cc0f".into());
    let mut unknown = recognised.clone();
    unknown.ja4 = Some("t13d1516h2_8daaf6152771_e5627efa2ab1".into());
    store
        .insert_batch(&[reported, recognised, unknown])
        .unwrap();

    let clients = store.clients().unwrap();
    let software_of = |ja4: &str, reported: bool| {
        clients
            .iter()
            .find(|c| {
                c.identity.ja4.as_deref() == Some(ja4)
                    && c.identity.reported_software.is_some() == reported
            })
            .unwrap()
            .software()
    };
    assert_eq!(
        software_of("t10d1305h1_c866b44c5a26_e8a9a4eba7c6", true).as_deref(),
        Some("Outlook 12.0")
    );
    let recognised = software_of("t10d090600_c491f621fb4c_195413a0cc0f", false).unwrap();
    assert!(
        recognised.starts_with("OpenSSL 3.0 at TLS 1.0"),
        "{recognised}"
    );
    assert_eq!(
        software_of("t13d1516h2_8daaf6152771_e5627efa2ab1", false),
        None
    );
}

#[test]
fn values_per_kind_stop_at_the_cap() {
    let dir = TempDir::new("cap");
    let mut store = SqliteStore::open(&dir.db_path()).unwrap();
    let records: Vec<SessionRecord> = (0..200)
        .map(|i| {
            let mut rec = sample_record(i);
            rec.sni = Some(format!("host{i}.example"));
            rec
        })
        .collect();
    for batch in records.chunks(30) {
        store.insert_batch(batch).unwrap();
    }
    let clients = store.clients().unwrap();
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0].sessions, 200);
    assert_eq!(
        clients[0].values(AttributeKind::Sni).len(),
        MAX_VALUES_PER_KIND
    );
}

#[test]
fn the_most_specific_annotation_shows_and_fields_keep_their_values() {
    let dir = TempDir::new("annotate");
    let mut store = SqliteStore::open(&dir.db_path()).unwrap();
    let alice = sample_record(1);
    let mut bob = sample_record(2);
    bob.login = Some("bob".into());
    let mut elsewhere = sample_record(3);
    elsewhere.client_addr = "198.51.100.4".parse().unwrap();
    store.insert_batch(&[alice, bob, elsewhere]).unwrap();
    let now = UNIX_EPOCH + Duration::from_secs(1_790_000_000);
    let set = |owner: &str| Annotation {
        owner: Some(owner.into()),
        ..Annotation::default()
    };
    store
        .annotate(
            &AnnotationSubject::parse("192.0.2.0/24"),
            &set("it-net"),
            now,
        )
        .unwrap();
    store
        .annotate(&AnnotationSubject::parse("bob"), &set("bob's team"), now)
        .unwrap();
    store
        .annotate(&AnnotationSubject::parse("c1"), &set("front desk"), now)
        .unwrap();
    let device = Annotation {
        device: Some("scanner \u{1b}[31m 3F".into()),
        ..Annotation::default()
    };
    store
        .annotate(&AnnotationSubject::parse("c1"), &device, now)
        .unwrap();

    let clients = store.clients().unwrap();
    let owner = |i: usize| clients[i].annotation.as_ref().and_then(|a| a.owner.clone());
    assert_eq!(owner(0).as_deref(), Some("front desk"));
    assert_eq!(
        clients[0].annotation.as_ref().unwrap().device.as_deref(),
        Some("scanner \u{1b}[31m 3F")
    );
    assert_eq!(owner(1).as_deref(), Some("bob's team"));
    assert_eq!(clients[2].annotation, None);

    let missing = store.annotate(&AnnotationSubject::Client(99), &set("x"), now);
    assert!(missing.unwrap_err().to_string().contains("no client c99"));
    let long = store.annotate(
        &AnnotationSubject::parse("bob"),
        &set(&"x".repeat(1025)),
        now,
    );
    assert!(long
        .unwrap_err()
        .to_string()
        .contains("longer than 1024 bytes"));
}
