use super::*;

fn parse(s: &str) -> Target {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn schemes_give_protocol_mode_and_default_port() {
    let cases = [
        (
            "imaps://mail.example.com",
            Protocol::Imap,
            TlsMode::Implicit,
            993,
        ),
        (
            "imap://mail.example.com",
            Protocol::Imap,
            TlsMode::Starttls,
            143,
        ),
        (
            "pop3s://mail.example.com",
            Protocol::Pop3,
            TlsMode::Implicit,
            995,
        ),
        (
            "pop3://mail.example.com",
            Protocol::Pop3,
            TlsMode::Starttls,
            110,
        ),
        (
            "smtps://mail.example.com",
            Protocol::Smtp,
            TlsMode::Implicit,
            465,
        ),
        (
            "smtp://mail.example.com",
            Protocol::Smtp,
            TlsMode::Starttls,
            25,
        ),
        (
            "IMAPS://mail.example.com:10993/",
            Protocol::Imap,
            TlsMode::Implicit,
            10993,
        ),
    ];
    for (input, protocol, mode, port) in cases {
        let t = parse(input);
        assert_eq!(
            (t.protocol, t.tls_mode, t.port),
            (protocol, mode, port),
            "{input}"
        );
        assert_eq!(t.host, "mail.example.com");
    }
}

#[test]
fn bare_host_port_infers_the_protocol() {
    let t = parse("mail.example.com:587");
    assert_eq!(
        (t.protocol, t.tls_mode),
        (Protocol::Smtp, TlsMode::Starttls)
    );
    let t = parse("127.0.0.1:995");
    assert_eq!(
        (t.protocol, t.tls_mode),
        (Protocol::Pop3, TlsMode::Implicit)
    );
    let t = parse("[::1]:143");
    assert_eq!(t.host, "::1");
    assert_eq!(t.to_string(), "imap://[::1]:143");
}

#[test]
fn canonical_display_round_trips() {
    for s in [
        "imaps://a.example:993",
        "smtp://10.0.0.1:2525",
        "pop3s://[2001:db8::1]:995",
    ] {
        assert_eq!(parse(s).to_string(), s);
        assert_eq!(parse(&parse(s).to_string()), parse(s));
    }
}

#[test]
fn bad_targets_name_themselves_and_say_what_to_write() {
    let cases = [
        ("mail.example.com", "no port"),
        ("mail.example.com:8080", "does not name a protocol"),
        ("http://mail.example.com", "unknown scheme"),
        ("imap://mail.example.com:0", "1 to 65535"),
        ("imap://mail.example.com:99999", "1 to 65535"),
        ("imap://user@mail.example.com", "no user"),
        ("imap://", "no user"),
        ("imaps://[::1", "closing ']'"),
        ("::1:993", "brackets"),
        ("imaps://:993", "no host"),
    ];
    for (input, why) in cases {
        let err = input.parse::<Target>().unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(input) && text.contains(why),
            "{input}: {text}"
        );
    }
}

#[test]
fn target_files_skip_comments_and_report_every_bad_line() {
    let ok = parse_target_list("# lab\nimaps://a:993\n\n  pop3://b  # old box\n").unwrap();
    assert_eq!(ok.len(), 2);
    let errors = parse_target_list("imaps://a:993\nnonsense\nx:1\n").unwrap_err();
    let lines: Vec<usize> = errors.iter().map(|(n, _)| *n).collect();
    assert_eq!(lines, [2, 3]);
}
