//! Decision tables over time, exceptions, opt-in listeners and rollout cohorts.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use wire::TlsVersion;

use crate::*;

const MESSAGE: &str = "TLS 1.0 and 1.1 are no longer accepted.";
const START: OffsetDateTime = datetime!(2026-08-01 00:00 UTC);
const END: OffsetDateTime = datetime!(2026-12-31 00:00 UTC);

fn policy(name: &str, mode: Mode) -> Policy {
    Policy::new(
        name,
        TlsVersion::Tls12,
        mode,
        Window::new(START, END).unwrap(),
        MESSAGE,
        CohortKey::from_policy_name(name),
    )
}

fn exception(
    id: u32,
    client: Option<&str>,
    user: Option<&str>,
    ja4: Option<&str>,
    expires: OffsetDateTime,
) -> Exception {
    Exception {
        id: ExceptionId(id),
        matches: ExceptionMatch::new(client.map(|c| c.parse().unwrap()), user, ja4, false).unwrap(),
        owner: "it@contoso.com".into(),
        reason: "old firmware".into(),
        expires,
        plan: "replace it".into(),
        added: None,
    }
}

/// Listeners "legacy" (policy `sunset` in `mode`), "opt-in" (same policy, opt-in) and
/// "plain" (no policy).
fn set(mode: Mode, exceptions: Vec<Exception>) -> PolicySet {
    let listeners = HashMap::from([
        (
            "legacy".to_string(),
            ListenerPolicy {
                policy: "sunset".into(),
                opt_in: false,
            },
        ),
        (
            "opt-in".to_string(),
            ListenerPolicy {
                policy: "sunset".into(),
                opt_in: true,
            },
        ),
    ]);
    PolicySet::new(
        vec![policy("sunset", mode)],
        listeners,
        ExceptionRegister::new(exceptions),
    )
    .unwrap()
}

fn client(address: &str, version: TlsVersion) -> Client<'static> {
    Client {
        negotiated: Some(version),
        ..Client::new(address.parse().unwrap())
    }
}

fn verdict_and_rule(
    set: &PolicySet,
    listener: &str,
    c: &Client<'_>,
    at: OffsetDateTime,
) -> (Verdict, String) {
    let d = set.decide(listener, c, at);
    (d.verdict, d.rule.to_string())
}

#[test]
fn enforce_over_time_for_a_legacy_client_without_exception() {
    let set = set(Mode::Enforce, vec![]);
    let legacy = client("192.0.2.10", TlsVersion::Tls10);
    let before = set.decide("legacy", &legacy, START - Duration::seconds(1));
    assert_eq!(before.verdict, Verdict::Warn);
    assert_eq!(before.rule.to_string(), "sunset/before-start");
    assert_eq!(before.message, Some(MESSAGE));
    assert_eq!(before.exception, None);

    // Inside the window the client is warned until its cohort is reached, then refused.
    let at_start = set.decide("legacy", &legacy, START);
    assert_eq!(
        (at_start.verdict, at_start.rule.to_string().as_str()),
        (Verdict::Warn, "sunset/window")
    );
    let mut refused_from = None;
    for hour in 0..(END - START).whole_hours() {
        let at = START + Duration::hours(hour);
        let d = set.decide("legacy", &legacy, at);
        assert_eq!(d.rule.to_string(), "sunset/window");
        match (d.verdict, refused_from) {
            (Verdict::Refuse, None) => refused_from = Some(at),
            (Verdict::Refuse, Some(_)) | (Verdict::Warn, None) => {}
            other => panic!("flipped back at {at}: {other:?}"),
        }
        let Why::BelowFloor {
            rollout: Some(r), ..
        } = d.why
        else {
            panic!("{:?}", d.why)
        };
        assert_eq!(r.in_refused_cohort, d.verdict == Verdict::Refuse);
    }
    assert!(
        refused_from.is_some(),
        "refused at some point inside the window"
    );

    for at in [END, END + Duration::days(400)] {
        let d = set.decide("legacy", &legacy, at);
        assert_eq!(
            (d.verdict, d.rule.to_string().as_str()),
            (Verdict::Refuse, "sunset/ended")
        );
        assert_eq!(d.message, Some(MESSAGE));
    }
    // The last instant of the window is still the window.
    assert_eq!(
        set.decide("legacy", &legacy, END - Duration::nanoseconds(1))
            .rule
            .to_string(),
        "sunset/window"
    );
}

#[test]
fn modern_clients_meet_the_floor_at_every_instant() {
    for mode in [Mode::Monitor, Mode::Warn, Mode::Enforce] {
        let set = set(mode, vec![]);
        for version in [TlsVersion::Tls12, TlsVersion::Tls13] {
            for at in [
                START - Duration::days(1),
                START + Duration::days(60),
                END,
                END + Duration::days(1),
            ] {
                let d = set.decide("legacy", &client("2001:db8::1", version), at);
                assert_eq!(
                    (d.verdict, d.rule.to_string().as_str()),
                    (Verdict::Allow, "sunset/floor")
                );
                assert_eq!(d.message, None);
            }
        }
    }
}

#[test]
fn monitor_and_warn_modes_never_refuse() {
    let legacy = client("192.0.2.10", TlsVersion::Tls11);
    for (mode, expected) in [(Mode::Monitor, Verdict::Allow), (Mode::Warn, Verdict::Warn)] {
        let set = set(mode, vec![]);
        for (at, phase) in [
            (START - Duration::days(1), "before-start"),
            (START + Duration::days(75), "window"),
            (END, "ended"),
            (END + Duration::days(365), "ended"),
        ] {
            let (verdict, rule) = verdict_and_rule(&set, "legacy", &legacy, at);
            assert_eq!(
                (verdict, rule),
                (expected, format!("sunset/{phase}")),
                "{mode} at {at}"
            );
        }
    }
}

#[test]
fn no_client_tls_is_below_every_floor_and_offered_counts_before_the_handshake() {
    let set = set(Mode::Enforce, vec![]);
    let plain = Client::new("192.0.2.7".parse().unwrap());
    assert_eq!(
        verdict_and_rule(&set, "legacy", &plain, END),
        (Verdict::Refuse, "sunset/ended".into())
    );
    let offered = Client {
        offered_max: Some(TlsVersion::Tls13),
        ..plain
    };
    assert_eq!(
        verdict_and_rule(&set, "legacy", &offered, END),
        (Verdict::Allow, "sunset/floor".into())
    );
    // Once negotiated, the negotiated version counts.
    let negotiated = Client {
        negotiated: Some(TlsVersion::Tls10),
        ..offered
    };
    assert_eq!(
        verdict_and_rule(&set, "legacy", &negotiated, END),
        (Verdict::Refuse, "sunset/ended".into())
    );
}

#[test]
fn a_listener_without_policy_allows_everyone() {
    let set = set(Mode::Enforce, vec![]);
    let d = set.decide("plain", &client("192.0.2.10", TlsVersion::Tls10), END);
    assert_eq!((d.verdict, d.rule), (Verdict::Allow, Rule::NoPolicy));
}

#[test]
fn exceptions_match_by_network_user_and_ja4_in_both_address_families() {
    let expires = datetime!(2027-03-31 00:00 UTC);
    let set = set(
        Mode::Enforce,
        vec![
            exception(1, Some("10.20.0.0/24"), None, None, expires),
            exception(2, None, Some("Scanner@Contoso.com"), None, expires),
            exception(
                3,
                None,
                None,
                Some("t10i0707h1_aaaaaaaaaaaa_bbbbbbbbbbbb"),
                expires,
            ),
            exception(4, Some("2001:db8:7::/48"), None, None, expires),
            // Several keys narrow: this user only from this network.
            exception(
                5,
                Some("10.30.0.0/16"),
                Some("printer@contoso.com"),
                None,
                expires,
            ),
            exception(6, Some("192.0.2.55/32"), None, None, expires),
        ],
    );
    let at = END + Duration::days(10);
    let cases: Vec<(Client, Option<u32>)> = vec![
        (client("10.20.0.9", TlsVersion::Tls10), Some(1)),
        (client("10.20.1.9", TlsVersion::Tls10), None),
        (
            Client {
                login: Some("scanner@contoso.com"),
                ..client("198.51.100.1", TlsVersion::Tls10)
            },
            Some(2),
        ),
        (
            Client {
                login: Some("SCANNER@CONTOSO.COM"),
                ..client("2001:db8::9", TlsVersion::Tls11)
            },
            Some(2),
        ),
        (
            Client {
                login: Some("other@contoso.com"),
                ..client("198.51.100.1", TlsVersion::Tls10)
            },
            None,
        ),
        (
            Client {
                ja4: Some("t10i0707h1_aaaaaaaaaaaa_bbbbbbbbbbbb"),
                ..client("198.51.100.2", TlsVersion::Tls10)
            },
            Some(3),
        ),
        (
            Client {
                ja4: Some("t10i0707h1_aaaaaaaaaaaa_cccccccccccc"),
                ..client("198.51.100.2", TlsVersion::Tls10)
            },
            None,
        ),
        (client("2001:db8:7:ffff::1", TlsVersion::Tls10), Some(4)),
        (client("2001:db8:8::1", TlsVersion::Tls10), None),
        (
            Client {
                login: Some("printer@contoso.com"),
                ..client("10.30.4.4", TlsVersion::Tls10)
            },
            Some(5),
        ),
        (
            Client {
                login: Some("printer@contoso.com"),
                ..client("10.31.4.4", TlsVersion::Tls10)
            },
            None,
        ),
        (client("10.30.4.4", TlsVersion::Tls10), None),
        (client("192.0.2.55", TlsVersion::Tls10), Some(6)),
        (client("192.0.2.56", TlsVersion::Tls10), None),
        // An IPv4 client never matches an IPv6 network and the other way round.
        (client("::ffff:10.20.0.9", TlsVersion::Tls10), None),
    ];
    for (c, expected) in cases {
        let d = set.decide("legacy", &c, at);
        match expected {
            Some(id) => {
                assert_eq!(d.verdict, Verdict::Allow, "{c:?}");
                assert_eq!(d.rule.to_string(), format!("exception:{id}"));
                assert_eq!(d.exception, Some(ExceptionId(id)));
                assert_eq!(d.message, None);
            }
            None => {
                assert_eq!((d.verdict, d.exception), (Verdict::Refuse, None), "{c:?}");
                assert_eq!(d.rule.to_string(), "sunset/ended");
            }
        }
    }
}

#[test]
fn an_exception_stops_matching_at_its_expiry_instant() {
    let expires = datetime!(2027-01-15 00:00 UTC);
    let set = set(
        Mode::Enforce,
        vec![exception(1, Some("10.20.0.0/24"), None, None, expires)],
    );
    let c = client("10.20.0.9", TlsVersion::Tls10);
    let live = set.decide("legacy", &c, expires - Duration::nanoseconds(1));
    assert_eq!(
        (live.verdict, live.exception),
        (Verdict::Allow, Some(ExceptionId(1)))
    );
    let Why::Excepted { expires: until } = live.why else {
        panic!()
    };
    assert_eq!(until, expires);
    for at in [expires, expires + Duration::days(30)] {
        let gone = set.decide("legacy", &c, at);
        assert_eq!((gone.verdict, gone.exception), (Verdict::Refuse, None));
        assert_eq!(
            gone.expired_exception,
            Some(ExceptionId(1)),
            "the expired one is named"
        );
    }
    assert_eq!(
        set.exceptions()
            .expiring(expires - Duration::days(10), expires - Duration::days(1))
            .len(),
        0
    );
    assert_eq!(
        set.exceptions()
            .expiring(expires - Duration::days(10), expires + Duration::days(1))
            .len(),
        1
    );
    assert_eq!(
        set.exceptions()
            .expiring(expires, expires + Duration::days(1))
            .len(),
        0,
        "expired is not expiring"
    );
}

#[test]
fn the_lowest_live_exception_wins_and_expired_ones_are_skipped() {
    let set = set(
        Mode::Enforce,
        vec![
            exception(
                1,
                Some("10.0.0.0/8"),
                None,
                None,
                datetime!(2026-01-01 00:00 UTC),
            ),
            exception(
                2,
                None,
                Some("a@contoso.com"),
                None,
                datetime!(2028-01-01 00:00 UTC),
            ),
            exception(
                3,
                Some("10.1.0.0/16"),
                None,
                None,
                datetime!(2028-01-01 00:00 UTC),
            ),
        ],
    );
    let c = Client {
        login: Some("a@contoso.com"),
        ..client("10.1.2.3", TlsVersion::Tls10)
    };
    let d = set.decide("legacy", &c, END);
    assert_eq!(d.exception, Some(ExceptionId(2)));
    assert_eq!(d.expired_exception, None);
}

#[test]
fn an_opt_in_listener_lets_through_only_clients_with_a_live_exception() {
    let expires = datetime!(2027-03-31 00:00 UTC);
    let set = set(
        Mode::Enforce,
        vec![exception(1, Some("10.20.0.0/24"), None, None, expires)],
    );
    for at in [
        START - Duration::days(30),
        START + Duration::days(30),
        END + Duration::days(30),
    ] {
        let covered = set.decide("opt-in", &client("10.20.0.9", TlsVersion::Tls10), at);
        assert_eq!(
            (covered.verdict, covered.rule.to_string().as_str()),
            (Verdict::Allow, "exception:1")
        );
        for version in [TlsVersion::Tls10, TlsVersion::Tls13] {
            let other = set.decide("opt-in", &client("10.21.0.9", version), at);
            assert_eq!(
                (other.verdict, other.rule.to_string().as_str()),
                (Verdict::Refuse, "sunset/opt-in")
            );
            assert_eq!(other.message, Some(MESSAGE));
        }
    }
    let after_expiry = set.decide("opt-in", &client("10.20.0.9", TlsVersion::Tls10), expires);
    assert_eq!(after_expiry.verdict, Verdict::Refuse);
    let warn = self::set(Mode::Warn, vec![]);
    assert_eq!(
        verdict_and_rule(
            &warn,
            "opt-in",
            &client("10.21.0.9", TlsVersion::Tls10),
            END
        ),
        (Verdict::Warn, "sunset/opt-in".into())
    );
}

#[test]
fn broad_and_keyless_exceptions_are_refused() {
    let everyone: IpNet = "0.0.0.0/0".parse().unwrap();
    assert_eq!(
        ExceptionMatch::new(Some(everyone), None, None, false),
        Err(ExceptionError::Broad(everyone))
    );
    assert!(ExceptionMatch::new(Some("::/0".parse().unwrap()), None, None, false).is_err());
    assert!(ExceptionMatch::new(Some(everyone), None, None, true).is_ok());
    assert_eq!(
        ExceptionMatch::new(None, None, None, true),
        Err(ExceptionError::NoKey)
    );
    // Host bits are dropped, so the network is what is shown and matched.
    let m = ExceptionMatch::new(
        Some("10.20.0.77/24".parse().unwrap()),
        Some("A@B"),
        None,
        false,
    )
    .unwrap();
    assert_eq!(m.to_string(), "client=10.20.0.0/24 user=a@b");
}

#[test]
fn a_window_must_end_after_it_starts() {
    assert!(Window::new(END, START).is_err());
    assert!(Window::new(START, START).is_err());
}

/// 10,000 synthetic clients: at 25/50/75% of the window the refused share is within one
/// percentage point of the target, and no client refused earlier is allowed later.
#[test]
fn cohorts_grow_linearly_and_never_flip_back() {
    let set = set(Mode::Enforce, vec![]);
    let logins: Vec<String> = (0..10_000)
        .map(|i| format!("user{i}@contoso.com"))
        .collect();
    let span = END - START;
    let mut refused_before = vec![false; logins.len()];
    let mut checkpoints = Vec::new();
    for step in 0..=100 {
        let at = START + span * (f64::from(step) / 100.0);
        let mut refused = 0;
        for (i, login) in logins.iter().enumerate() {
            // Half by login, half by address, so both identities are exercised.
            let address: IpAddr = if i % 2 == 0 {
                IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8])
            } else {
                IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, (i >> 16) as u16, i as u16])
            };
            let c = Client {
                login: (i % 4 < 2).then_some(login.as_str()),
                ..client(&address.to_string(), TlsVersion::Tls10)
            };
            let is_refused = set.decide("legacy", &c, at).verdict == Verdict::Refuse;
            assert!(
                !refused_before[i] || is_refused,
                "client {i} flipped back at step {step}"
            );
            refused_before[i] = is_refused;
            refused += usize::from(is_refused);
        }
        if [25, 50, 75].contains(&step) {
            checkpoints.push((step, refused));
        }
        if step == 0 {
            assert_eq!(refused, 0, "nobody is refused at the start");
        }
    }
    for (step, refused) in checkpoints {
        let share = refused as f64 / 100.0;
        assert!(
            (share - f64::from(step)).abs() <= 1.0,
            "{share}% refused at {step}% of the window"
        );
    }
}

#[test]
fn cohorts_depend_on_the_key() {
    let mid = START + (END - START) / 2;
    let other = Policy::new(
        "sunset",
        TlsVersion::Tls12,
        Mode::Enforce,
        Window::new(START, END).unwrap(),
        MESSAGE,
        CohortKey::from_secret("deployment secret"),
    );
    let listeners = HashMap::from([(
        "legacy".to_string(),
        ListenerPolicy {
            policy: "sunset".into(),
            opt_in: false,
        },
    )]);
    let keyed = PolicySet::new(vec![other], listeners, ExceptionRegister::default()).unwrap();
    let named = set(Mode::Enforce, vec![]);
    let differ = (0..200)
        .filter(|i| {
            let login = format!("u{i}");
            let c = Client {
                login: Some(&login),
                ..client("192.0.2.1", TlsVersion::Tls10)
            };
            keyed.decide("legacy", &c, mid).verdict != named.decide("legacy", &c, mid).verdict
        })
        .count();
    assert!(differ > 50, "{differ} of 200 differ");
    assert_eq!(
        format!("{:?}", CohortKey::from_secret("deployment secret")),
        "CohortKey(..)"
    );
}

#[test]
fn a_listener_naming_a_missing_policy_is_refused() {
    let listeners = HashMap::from([(
        "l".to_string(),
        ListenerPolicy {
            policy: "nope".into(),
            opt_in: false,
        },
    )]);
    let err = PolicySet::new(vec![], listeners, ExceptionRegister::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "listener l names policy nope, which is not defined"
    );
}

#[test]
fn why_reads_as_a_sentence() {
    let set = set(Mode::Enforce, vec![]);
    let d = set.decide(
        "legacy",
        &client("192.0.2.1", TlsVersion::Tls10),
        START + (END - START) / 2,
    );
    let why = d.why.to_string();
    assert!(
        why.starts_with(
            "TLSv1.0 is below the floor TLSv1.2; mode enforce; 50.00% of clients are refused now"
        ),
        "{why}"
    );
}

#[test]
fn register_warnings_name_expiring_unused_and_unexcepted() {
    let at = datetime!(2026-10-01 12:00 UTC);
    let soon = exception(1, Some("10.1.0.0/16"), None, None, at + Duration::days(10));
    let quiet = exception(
        2,
        None,
        Some("scanner@contoso.com"),
        None,
        at + Duration::days(200),
    );
    let busy = exception(3, Some("10.3.0.0/16"), None, None, at + Duration::days(200));
    let new = Exception {
        added: Some(at - Duration::days(3)),
        ..exception(4, Some("10.4.0.0/16"), None, None, at + Duration::days(200))
    };
    let gone = exception(5, Some("10.5.0.0/16"), None, None, at - Duration::days(1));
    let far = exception(6, Some("10.6.0.0/16"), None, None, at + Duration::days(31));
    let set = set(Mode::Enforce, vec![soon, quiet, busy, new, gone, far]);
    let seen = |address: &str, login, version, rule, days_ago: i64| DecidedClient {
        address: address.parse().unwrap(),
        login,
        ja4: None,
        version,
        rule,
        last_seen: at - Duration::days(days_ago),
        sessions: 2,
    };
    let usage = RegisterUse {
        observed_since: Some(at - Duration::days(90)),
        last_matched: HashMap::from([
            (ExceptionId(1), at - Duration::days(40)),
            (ExceptionId(2), at - Duration::days(31)),
            (ExceptionId(3), at - Duration::days(29)),
            (ExceptionId(6), at - Duration::days(1)),
        ]),
        unexcepted: vec![
            // Below the floor: warned once, lowest version, latest rule, sessions summed.
            seen(
                "192.0.2.7",
                Some("alice"),
                Some(TlsVersion::Tls11),
                "sunset/window",
                5,
            ),
            seen(
                "192.0.2.7",
                Some("alice"),
                Some(TlsVersion::Tls10),
                "sunset/before-start",
                20,
            ),
            // A plaintext login is below every floor.
            seen("192.0.2.8", None, None, "sunset/window", 1),
            // Meets the floor (an opt-in listener's rule): no warning.
            seen(
                "192.0.2.9",
                None,
                Some(TlsVersion::Tls12),
                "sunset/opt-in",
                1,
            ),
            // Covered by an exception added since: no warning.
            seen(
                "10.3.0.9",
                None,
                Some(TlsVersion::Tls10),
                "sunset/window",
                1,
            ),
            // Too long ago, or a policy no longer defined: no warning.
            seen(
                "192.0.2.10",
                None,
                Some(TlsVersion::Tls10),
                "sunset/window",
                31,
            ),
            seen(
                "192.0.2.11",
                None,
                Some(TlsVersion::Tls10),
                "gone/window",
                1,
            ),
        ],
    };
    let warnings = set.register_warnings(&usage, at);
    let kinds: Vec<String> = warnings
        .iter()
        .map(|w| match w {
            RegisterWarning::Expiring { exception } | RegisterWarning::Unused { exception, .. } => {
                format!("{} {}", w.kind(), exception.id)
            }
            RegisterWarning::Unexcepted { address, .. } => format!("{} {address}", w.kind()),
        })
        .collect();
    // 1 expires in 10 days (and is also unused); 2 went quiet 31 days ago; 4 is too new to
    // judge; 5 has expired; 6 expires in 31 days.
    assert_eq!(
        kinds,
        [
            "expiring 1",
            "unused 1",
            "unused 2",
            "unexcepted 192.0.2.7",
            "unexcepted 192.0.2.8"
        ]
    );
    assert_eq!(
        warnings[3],
        RegisterWarning::Unexcepted {
            address: "192.0.2.7".parse().unwrap(),
            login: Some("alice".into()),
            version: Some(TlsVersion::Tls10),
            floor: TlsVersion::Tls12,
            rule: "sunset/window".into(),
            last_seen: at - Duration::days(5),
            sessions: 4,
        }
    );
    assert_eq!(
        warnings[0].to_string(),
        "exception 1 (client=10.1.0.0/16) expires at 2026-10-11 (owner \"it@contoso.com\"): renew it (mailtls exceptions renew 1) or finish its plan: \"replace it\""
    );
    assert_eq!(
        warnings[2].to_string(),
        "exception 2 (user=scanner@contoso.com) matched no client for 30 days (last on 2026-08-31; owner \"it@contoso.com\"): remove it if its clients are gone (mailtls exceptions remove 2)"
    );
    assert_eq!(
        warnings[4].to_string(),
        "legacy client 192.0.2.8 negotiated no TLS below the floor TLSv1.2 and no exception covers it (2 session(s), last on 2026-09-30, rule sunset/window): upgrade it, or add an exception with an owner and a plan"
    );

    // A store that has not watched for 30 days calls nothing unused.
    let young = RegisterUse {
        observed_since: Some(at - Duration::days(29)),
        ..usage.clone()
    };
    assert!(set
        .register_warnings(&young, at)
        .iter()
        .all(|w| w.kind() != "unused"));
    let empty = RegisterUse::default();
    assert_eq!(
        set.register_warnings(&empty, at)
            .iter()
            .map(RegisterWarning::kind)
            .collect::<Vec<_>>(),
        ["expiring"]
    );
}
