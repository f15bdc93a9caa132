//! Decision time with 10,000 exceptions of mixed kinds (issue 15, Performance: under 1 µs per
//! decision). `cargo bench -p policy --bench decide`; the figures are in bench/README.md.

use std::collections::HashMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{criterion_group, criterion_main, Criterion};
use ipnet::IpNet;
use policy::{
    Client, CohortKey, Exception, ExceptionId, ExceptionMatch, ExceptionRegister, ListenerPolicy,
    Mode, Policy, PolicySet, Verdict, Window,
};
use time::macros::datetime;
use wire::TlsVersion;

/// A fixed pseudo-random sequence (xorshift64), so every run indexes the same register.
struct Sequence(u64);

impl Sequence {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn ja4(n: u64) -> String {
    format!("t10i0707h1_{:012x}_{:012x}", n, n.wrapping_mul(0x9e37_79b9))
}

/// 10,000 exceptions: 3,000 IPv4 networks (/16 to /32), 2,000 IPv6 (/48 to /128), 2,500
/// users, 1,500 JA4 fingerprints, 1,000 user-on-network pairs; a tenth of them expired.
fn register() -> ExceptionRegister {
    let mut seq = Sequence(0x5eed_1234_abcd_ef01);
    let mut exceptions = Vec::new();
    for i in 0..10_000u32 {
        let r = seq.next();
        let (client, user, ja4_key): (Option<IpNet>, Option<String>, Option<String>) = match i % 10
        {
            0..=2 => {
                let len = [16u8, 20, 24, 28, 32][(r % 5) as usize];
                let net = IpNet::new(IpAddr::V4(Ipv4Addr::from((r >> 8) as u32)), len).unwrap();
                (Some(net), None, None)
            }
            3 | 4 => {
                let len = [48u8, 56, 64, 128][(r % 4) as usize];
                let addr = Ipv6Addr::from(((0x2001_0db8u128) << 96) | u128::from(r) << 32);
                (Some(IpNet::new(IpAddr::V6(addr), len).unwrap()), None, None)
            }
            5 | 6 => (None, Some(format!("user{i}@contoso.com")), None),
            7 => {
                if i % 20 == 7 {
                    (None, Some(format!("device{i}@contoso.com")), None)
                } else {
                    (None, None, Some(ja4(u64::from(i))))
                }
            }
            8 => (None, None, Some(ja4(u64::from(i)))),
            _ => {
                let net = IpNet::new(IpAddr::V4(Ipv4Addr::from((r >> 8) as u32)), 24).unwrap();
                (Some(net), Some(format!("printer{i}@contoso.com")), None)
            }
        };
        exceptions.push(Exception {
            id: ExceptionId(i + 1),
            matches: ExceptionMatch::new(client, user.as_deref(), ja4_key.as_deref(), false)
                .unwrap(),
            owner: "it@contoso.com".into(),
            reason: "legacy firmware".into(),
            expires: if i % 10 == 4 {
                datetime!(2026-09-01 00:00 UTC)
            } else {
                datetime!(2027-06-30 00:00 UTC)
            },
            plan: "replace".into(),
            added: None,
        });
    }
    ExceptionRegister::new(exceptions)
}

fn policy_set() -> PolicySet {
    let sunset = Policy::new(
        "sunset",
        TlsVersion::Tls12,
        Mode::Enforce,
        Window::new(
            datetime!(2026-08-01 00:00 UTC),
            datetime!(2026-12-31 00:00 UTC),
        )
        .unwrap(),
        "TLS 1.0 and 1.1 are no longer accepted.",
        CohortKey::from_policy_name("sunset"),
    );
    let listeners = HashMap::from([(
        "legacy".to_string(),
        ListenerPolicy {
            policy: "sunset".into(),
            opt_in: false,
        },
    )]);
    PolicySet::new(vec![sunset], listeners, register()).unwrap()
}

fn decide(c: &mut Criterion) {
    let set = policy_set();
    assert_eq!(set.exceptions().len(), 10_000);
    let at = datetime!(2026-10-15 12:00 UTC);
    // 1,024 legacy clients with logins, addresses and JA4s drawn like the register's, so some
    // hit an exception (by network, user or JA4) and most go on to the rollout cohort.
    let mut seq = Sequence(0x5eed_1234_abcd_ef01);
    let clients: Vec<(IpAddr, String, String)> = (0..1024u64)
        .map(|n| {
            let r = seq.next();
            let address = if n % 3 == 0 {
                IpAddr::V6(Ipv6Addr::from(
                    ((0x2001_0db8u128) << 96) | u128::from(r) << 32 | 7,
                ))
            } else {
                IpAddr::V4(Ipv4Addr::from((r >> 8) as u32 | 5))
            };
            (address, format!("User{}@Contoso.com", n * 7), ja4(n * 13))
        })
        .collect();
    let allowed = clients
        .iter()
        .filter(|(address, login, ja4)| {
            let client = Client {
                login: Some(login),
                ja4: Some(ja4),
                negotiated: Some(TlsVersion::Tls10),
                ..Client::new(*address)
            };
            set.decide("legacy", &client, at).verdict == Verdict::Allow
        })
        .count();
    eprintln!(
        "{allowed} of {} benchmark clients hold a live exception",
        clients.len()
    );

    let mut next = 0usize;
    c.bench_function("decide/legacy client, 10k exceptions, mixed", |b| {
        b.iter(|| {
            let (address, login, ja4) = &clients[next % clients.len()];
            next += 1;
            let client = Client {
                login: Some(login),
                ja4: Some(ja4),
                negotiated: Some(TlsVersion::Tls10),
                ..Client::new(*address)
            };
            black_box(
                set.decide(black_box("legacy"), black_box(&client), at)
                    .verdict,
            )
        })
    });
    let excepted = Client {
        login: Some("user5@contoso.com"),
        negotiated: Some(TlsVersion::Tls10),
        ..Client::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
    };
    assert_eq!(set.decide("legacy", &excepted, at).verdict, Verdict::Allow);
    c.bench_function("decide/user exception hit, 10k exceptions", |b| {
        b.iter(|| {
            black_box(
                set.decide(black_box("legacy"), black_box(&excepted), at)
                    .verdict,
            )
        })
    });
    let modern = Client {
        negotiated: Some(TlsVersion::Tls13),
        ..Client::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
    };
    c.bench_function("decide/TLS 1.3 client meets the floor", |b| {
        b.iter(|| {
            black_box(
                set.decide(black_box("legacy"), black_box(&modern), at)
                    .verdict,
            )
        })
    });
}

criterion_group!(benches, decide);
criterion_main!(benches);
