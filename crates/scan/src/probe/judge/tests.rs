//! Hand-made server replies: each rule of the judge, split reads, and hostile lengths.

use super::*;

const OFFERED: [u16; 3] = [0xc02f, 0x002f, 0x1301];

fn record(kind: u8, version: u16, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = (body.len() as u32).to_be_bytes();
    let mut out = vec![kind, len[1], len[2], len[3]];
    out.extend_from_slice(body);
    out
}

/// A ServerHello body: version, random, empty session id, suite, null compression, and a
/// supported_versions extension when `selected` is given.
fn server_hello(version: u16, suite: u16, selected: Option<u16>) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    body.extend_from_slice(&[7; 32]);
    body.push(0);
    body.extend_from_slice(&suite.to_be_bytes());
    body.push(0);
    if let Some(v) = selected {
        let mut ext = vec![0, 43, 0, 2];
        ext.extend_from_slice(&v.to_be_bytes());
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
    }
    handshake(2, &body)
}

fn certificate(certs: &[&[u8]]) -> Vec<u8> {
    let mut list = Vec::new();
    for c in certs {
        list.extend_from_slice(&(c.len() as u32).to_be_bytes()[1..]);
        list.extend_from_slice(c);
    }
    let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
    body.extend_from_slice(&list);
    handshake(11, &body)
}

fn tls12_flight() -> Vec<u8> {
    let mut messages = server_hello(0x0303, 0xc02f, None);
    messages.extend(certificate(&[b"leaf", b"ca"]));
    record(22, 0x0303, &messages)
}

#[test]
fn hello_at_the_probed_version_is_accepted_with_its_chain() {
    let reply = tls12_flight();
    let answer = judge(TlsVersion::Tls12, &OFFERED, &reply, true);
    assert_eq!(
        answer,
        Some(Answer::Accepted {
            suite: 0xc02f,
            chain: Some(vec![b"leaf".to_vec(), b"ca".to_vec()])
        })
    );
}

#[test]
fn every_prefix_waits_and_the_chain_is_waited_for_only_when_wanted() {
    // The hello and the chain in records of their own: a record is read whole.
    let mut reply = record(22, 0x0303, &server_hello(0x0303, 0xc02f, None));
    let hello_end = reply.len();
    reply.extend(record(22, 0x0303, &certificate(&[b"leaf"])));
    assert!(judge(TlsVersion::Tls12, &OFFERED, &reply, true).is_some());
    for cut in 0..reply.len() {
        let wanted = judge(TlsVersion::Tls12, &OFFERED, &reply[..cut], true);
        assert_eq!(wanted, None, "cut at {cut}");
        let unwanted = judge(TlsVersion::Tls12, &OFFERED, &reply[..cut], false);
        assert_eq!(unwanted.is_some(), cut >= hello_end, "cut at {cut}");
    }
}

#[test]
fn handshake_messages_split_across_records_are_joined() {
    let mut messages = server_hello(0x0301, 0x002f, None);
    messages.extend(certificate(&[b"leaf"]));
    let (a, b) = messages.split_at(10);
    let mut reply = record(22, 0x0301, a);
    reply.extend(record(22, 0x0301, b));
    let answer = judge(TlsVersion::Tls10, &OFFERED, &reply, true);
    assert!(matches!(
        answer,
        Some(Answer::Accepted {
            suite: 0x002f,
            chain: Some(_)
        })
    ));
}

#[test]
fn alerts_closes_and_downgrades_are_refusals() {
    let protocol_version = record(21, 0x0301, &[2, 70]);
    assert_eq!(
        judge(TlsVersion::Tls10, &OFFERED, &protocol_version, true),
        Some(Answer::Rejected {
            reason: "fatal alert protocol_version (70)".into(),
            try_other_suites: false,
            silent: false,
        })
    );
    let handshake_failure = record(21, 0x0303, &[2, 40]);
    assert!(matches!(
        judge(TlsVersion::Tls12, &OFFERED, &handshake_failure, false),
        Some(Answer::Rejected {
            try_other_suites: true,
            ..
        })
    ));
    let downgrade = record(22, 0x0301, &server_hello(0x0301, 0x002f, None));
    assert!(matches!(
        judge(TlsVersion::Tls12, &OFFERED, &downgrade, false),
        Some(Answer::Rejected { try_other_suites: false, silent: false, ref reason }) if reason.contains("TLSv1.0")
    ));
    assert!(matches!(
        judge_end(TlsVersion::Tls11, &OFFERED, &[]),
        Answer::Rejected {
            try_other_suites: false,
            ..
        }
    ));
}

#[test]
fn a_warning_alert_before_the_hello_is_skipped() {
    let mut reply = record(21, 0x0303, &[1, 112]);
    reply.extend(tls12_flight());
    assert!(matches!(
        judge(TlsVersion::Tls12, &OFFERED, &reply, true),
        Some(Answer::Accepted { .. })
    ));
}

#[test]
fn warnings_before_the_hello_are_skipped_at_every_split() {
    // Two warnings in records of their own, then the flight: every prefix waits.
    let mut reply = record(21, 0x0303, &[1, 112]);
    reply.extend(record(21, 0x0303, &[1, 112]));
    let warnings_end = reply.len();
    reply.extend(tls12_flight());
    for cut in 0..reply.len() {
        assert_eq!(
            judge(TlsVersion::Tls12, &OFFERED, &reply[..cut], true),
            None,
            "cut at {cut}"
        );
        // A close at a record boundary after warnings is a refusal; inside a record, a
        // reply cut short.
        let end = judge_end(TlsVersion::Tls12, &OFFERED, &reply[..cut]);
        match cut {
            0 => assert!(matches!(end, Answer::Rejected { silent: true, .. })),
            7 | 14 => assert!(
                matches!(end, Answer::Rejected { silent: false, .. }),
                "cut at {cut}: {end:?}"
            ),
            _ if cut < warnings_end => {
                assert!(
                    matches!(end, Answer::Unknown { .. }),
                    "cut at {cut}: {end:?}"
                )
            }
            _ => {}
        }
    }
    assert!(matches!(
        judge(TlsVersion::Tls12, &OFFERED, &reply, true),
        Some(Answer::Accepted { .. })
    ));
}

#[test]
fn a_warning_alert_then_close_is_a_refusal() {
    let reply = record(21, 0x0301, &[1, 112]);
    assert_eq!(judge(TlsVersion::Tls10, &OFFERED, &reply, true), None);
    assert_eq!(
        judge_end(TlsVersion::Tls10, &OFFERED, &reply),
        Answer::Rejected {
            reason: "warning alert unrecognized_name (112), then the server closed the connection"
                .into(),
            try_other_suites: false,
            silent: false,
        }
    );
}

#[test]
fn a_warning_then_a_fatal_alert_is_the_fatal_one() {
    let mut reply = record(21, 0x0303, &[1, 112]);
    reply.extend(record(21, 0x0303, &[2, 40]));
    assert_eq!(
        judge(TlsVersion::Tls12, &OFFERED, &reply, true),
        Some(Answer::Rejected {
            reason: "fatal alert handshake_failure (40)".into(),
            try_other_suites: true,
            silent: false,
        })
    );
    // Junk after a warning is junk, not a refusal.
    let mut junk = record(21, 0x0303, &[1, 112]);
    junk.extend_from_slice(b"-ERR no\r\n");
    assert!(matches!(
        judge_end(TlsVersion::Tls12, &OFFERED, &junk),
        Answer::Unknown { ref reason } if reason.contains("-ERR no")
    ));
}

#[test]
fn tls13_is_read_from_supported_versions_and_hello_retry_counts() {
    let reply = record(22, 0x0303, &server_hello(0x0303, 0x1301, Some(0x0304)));
    assert_eq!(
        judge(TlsVersion::Tls13, &OFFERED, &reply, true),
        Some(Answer::Accepted {
            suite: 0x1301,
            chain: None
        })
    );
    // A 1.3-only hello answered with TLS 1.2: refused, not accepted.
    let reply = record(22, 0x0303, &server_hello(0x0303, 0xc02f, None));
    assert!(matches!(
        judge(TlsVersion::Tls13, &OFFERED, &reply, false),
        Some(Answer::Rejected { .. })
    ));
}

#[test]
fn broken_servers_and_junk_are_unknown_not_accepted() {
    let unoffered = record(22, 0x0303, &server_hello(0x0303, 0x0005, None));
    assert!(matches!(
        judge(TlsVersion::Tls12, &OFFERED, &unoffered, false),
        Some(Answer::Unknown { ref reason }) if reason.contains("did not offer")
    ));
    let upgrade = record(22, 0x0303, &server_hello(0x0303, 0x002f, None));
    assert!(matches!(
        judge(TlsVersion::Tls10, &OFFERED, &upgrade, false),
        Some(Answer::Unknown { .. })
    ));
    let plaintext = b"-ERR [SYS/TEMP] try later\r\n";
    assert_eq!(
        judge(TlsVersion::Tls12, &OFFERED, plaintext, false),
        Some(Answer::Unknown {
            reason: "the server answered without TLS: \"-ERR [SYS/TEMP] try later\"".into()
        })
    );
    // A handshake length that lies beyond its record, and a truncated reply at EOF.
    let mut lying = server_hello(0x0303, 0xc02f, None);
    lying[1] = 0xff;
    let reply = record(22, 0x0303, &lying[..20]);
    assert!(matches!(
        judge_end(TlsVersion::Tls12, &OFFERED, &reply),
        Answer::Unknown { .. }
    ));
    let truncated = &tls12_flight()[..9];
    assert!(matches!(
        judge_end(TlsVersion::Tls12, &OFFERED, truncated),
        Answer::Unknown { ref reason } if reason.contains("middle")
    ));
}
