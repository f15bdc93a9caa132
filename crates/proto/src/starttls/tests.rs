//! Scripted dialogues against the server replies real servers send, each also fed one byte
//! at a time.

use super::*;

/// Plays `turns` (the greeting, then the reply to each command) against a dialogue, feeding
/// `chunk` bytes per read. Returns the commands sent and the end: StartTls or an error.
fn play(
    protocol: Protocol,
    turns: &[&str],
    chunk: usize,
) -> (Vec<String>, Result<Vec<u8>, DialogueError>, Findings) {
    let mut dialogue = Dialogue::new(protocol, "scanner.example");
    let mut sent = Vec::new();
    let mut turn = 0;
    let mut pending: &[u8] = turns[0].as_bytes();
    loop {
        match dialogue.step() {
            Ok(Action::Read) => {
                if pending.is_empty() {
                    panic!("dialogue wants more after {sent:?}");
                }
                let n = chunk.min(pending.len());
                dialogue.receive(&pending[..n]);
                pending = &pending[n..];
            }
            Ok(Action::Send(bytes)) => {
                assert!(
                    pending.is_empty(),
                    "sent {bytes:?} before the reply was read: pipelining"
                );
                sent.push(String::from_utf8(bytes).unwrap());
                turn += 1;
                pending = turns.get(turn).map_or(&[][..], |t| t.as_bytes());
            }
            Ok(Action::StartTls { leftover }) => {
                let mut rest = leftover;
                rest.extend_from_slice(pending);
                return (sent, Ok(rest), dialogue.findings().clone());
            }
            Err(e) => return (sent, Err(e), dialogue.findings().clone()),
        }
    }
}

fn both_ways(
    protocol: Protocol,
    turns: &[&str],
) -> (Vec<String>, Result<Vec<u8>, DialogueError>, Findings) {
    let whole = play(protocol, turns, usize::MAX);
    let bytewise = play(protocol, turns, 1);
    assert_eq!(
        whole, bytewise,
        "one byte at a time must give the same result"
    );
    whole
}

#[test]
fn imap_dovecot_greeting_with_capabilities_skips_capability() {
    let (sent, end, findings) = both_ways(
        Protocol::Imap,
        &[
            "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED] Dovecot ready.\r\n",
            "a2 OK Begin TLS negotiation now.\r\n",
        ],
    );
    assert_eq!(sent, ["a2 STARTTLS\r\n"]);
    assert_eq!(end, Ok(vec![]));
    assert_eq!(findings.starttls_advertised, Some(true));
    assert!(!findings.plaintext_auth.unwrap().offered);
}

#[test]
fn imap_capability_command_and_plaintext_login_allowed() {
    let (sent, end, findings) = both_ways(
        Protocol::Imap,
        &[
            "* OK IMAP4rev1 server ready\r\n",
            "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n* CAPABILITY STARTTLS\r\na1 OK done\r\n",
            "* NOTE something untagged\r\na2 OK go ahead\r\n\x16\x03\x03",
        ],
    );
    assert_eq!(sent, ["a1 CAPABILITY\r\n", "a2 STARTTLS\r\n"]);
    // Bytes after the go-ahead belong to TLS.
    assert_eq!(end, Ok(vec![0x16, 0x03, 0x03]));
    assert_eq!(
        findings.starttls_advertised,
        Some(true),
        "STARTTLS as the last item counts"
    );
    let auth = findings.plaintext_auth.unwrap();
    assert!(auth.offered && auth.evidence.contains("LOGINDISABLED"));
}

#[test]
fn imap_starttls_refused_and_bye_reported_in_the_servers_words() {
    let (_, end, findings) = both_ways(
        Protocol::Imap,
        &[
            "* OK ready\r\n",
            "a1 OK no caps\r\n",
            "a2 BAD STARTTLS not available\r\n",
        ],
    );
    assert_eq!(
        end,
        Err(DialogueError::StartTlsRefused(
            "a2 BAD STARTTLS not available".into()
        ))
    );
    assert_eq!(findings.starttls_advertised, Some(false));

    let (_, end, _) = both_ways(
        Protocol::Imap,
        &["* BYE Maximum number of connections from user+IP exceeded\r\n"],
    );
    assert!(matches!(end, Err(DialogueError::RateLimited(_))), "{end:?}");
    let (_, end, _) = both_ways(Protocol::Imap, &["* PREAUTH welcome\r\n"]);
    assert!(
        matches!(end, Err(DialogueError::Unexpected { .. })),
        "{end:?}"
    );
}

#[test]
fn imap_http_server_and_tls_port_are_told_apart() {
    let (_, end, _) = both_ways(Protocol::Imap, &["HTTP/1.1 400 Bad Request\r\n"]);
    assert!(matches!(
        end,
        Err(DialogueError::Unexpected {
            during: "the greeting",
            ..
        })
    ));
    let (_, end, _) = both_ways(Protocol::Imap, &["\x15\x03\x01\x00\x02\x02\x46"]);
    assert_eq!(end, Err(DialogueError::NotPlaintext));
}

#[test]
fn pop3_capa_stls_and_user_before_tls() {
    let (sent, end, findings) = both_ways(
        Protocol::Pop3,
        &[
            "+OK Dovecot ready.\r\n",
            "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nSTLS\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n",
            "+OK Begin TLS negotiation now.\r\n",
        ],
    );
    assert_eq!(sent, ["CAPA\r\n", "STLS\r\n"]);
    assert_eq!(end, Ok(vec![]));
    assert_eq!(findings.starttls_advertised, Some(true));
    let auth = findings.plaintext_auth.unwrap();
    assert!(auth.offered);
    assert!(auth.evidence.contains("USER"), "{}", auth.evidence);
}

#[test]
fn pop3_without_plaintext_login_and_without_capa() {
    let (_, _, findings) = both_ways(
        Protocol::Pop3,
        &[
            "+OK ready\r\n",
            "+OK\r\nSTLS\r\nSASL SCRAM-SHA-256\r\n..odd\r\n.\r\n",
            "+OK\r\n",
        ],
    );
    assert!(!findings.plaintext_auth.clone().unwrap().offered);
    assert_eq!(
        findings.capabilities.unwrap().last().unwrap(),
        ".odd",
        "dot unstuffed"
    );

    let (sent, end, findings) = both_ways(
        Protocol::Pop3,
        &[
            "+OK ready\r\n",
            "-ERR unknown command\r\n",
            "-ERR not now\r\n",
        ],
    );
    assert_eq!(sent, ["CAPA\r\n", "STLS\r\n"]);
    assert_eq!(
        end,
        Err(DialogueError::StartTlsRefused("-ERR not now".into()))
    );
    assert_eq!(
        findings.plaintext_auth, None,
        "unknown without CAPA, not guessed"
    );
}

#[test]
fn smtp_multiline_banner_ehlo_and_auth_before_starttls() {
    let (sent, end, findings) = both_ways(
        Protocol::Smtp,
        &[
            "220-mail.example.com ESMTP\r\n220-second line\r\n220 ready\r\n",
            "250-mail.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n250 STARTTLS\r\n",
            "220 2.0.0 Ready to start TLS\r\n",
        ],
    );
    assert_eq!(sent, ["EHLO scanner.example\r\n", "STARTTLS\r\n"]);
    assert_eq!(end, Ok(vec![]));
    assert_eq!(findings.greeting.as_deref(), Some("220 ready"));
    assert_eq!(findings.starttls_advertised, Some(true));
    let auth = findings.plaintext_auth.unwrap();
    assert_eq!(
        auth.evidence,
        "EHLO offers AUTH PLAIN LOGIN before STARTTLS"
    );
}

#[test]
fn smtp_refusals_rate_limits_and_garbage() {
    let (_, end, _) = both_ways(Protocol::Smtp, &["554 5.7.1 no early talkers\r\n"]);
    assert_eq!(
        end,
        Err(DialogueError::Refused("554 5.7.1 no early talkers".into()))
    );
    let (_, end, _) = both_ways(Protocol::Smtp, &["421 4.7.0 too many connections\r\n"]);
    assert!(matches!(end, Err(DialogueError::RateLimited(_))));
    let (_, end, findings) = both_ways(
        Protocol::Smtp,
        &[
            "220 hi\r\n",
            "250 mx.example\r\n",
            "454 4.7.0 TLS not available\r\n",
        ],
    );
    assert_eq!(
        end,
        Err(DialogueError::StartTlsRefused(
            "454 4.7.0 TLS not available".into()
        ))
    );
    assert_eq!(findings.starttls_advertised, Some(false));
    assert!(!findings.plaintext_auth.unwrap().offered);
    let (_, end, _) = both_ways(Protocol::Smtp, &["220-a\r\n250 b\r\n"]);
    assert!(matches!(end, Err(DialogueError::Unexpected { .. })));
    let (_, end, _) = both_ways(Protocol::Smtp, &["SSH-2.0-OpenSSH_9.2\r\n"]);
    assert!(matches!(end, Err(DialogueError::Unexpected { .. })));
}

#[test]
fn smtp_client_name_cannot_inject_commands() {
    let (sent, _, _) = play(
        Protocol::Smtp,
        &["220 hi\r\n", "250 ok\r\n", "220 go\r\n"],
        usize::MAX,
    );
    assert_eq!(sent[0], "EHLO scanner.example\r\n");
    let mut d = Dialogue::new(Protocol::Smtp, "evil\r\nRSET");
    d.receive(b"220 hi\r\n");
    assert_eq!(d.step(), Ok(Action::Send(b"EHLO evilRSET\r\n".to_vec())));
}

#[test]
fn limits_on_line_length_and_count() {
    let long = format!("* OK {}\r\n", "x".repeat(MAX_LINE + 10));
    let (_, end, _) = both_ways(Protocol::Imap, &[&long]);
    assert_eq!(end, Err(DialogueError::LineTooLong));
    let many = format!("+OK\r\n{}", "X\r\n".repeat(MAX_REPLY_LINES + 1));
    let (_, end, _) = both_ways(Protocol::Pop3, &["+OK\r\n", &many]);
    assert_eq!(end, Err(DialogueError::TooManyLines));
}

#[test]
fn errors_stick_and_goodbye_only_before_tls() {
    let mut d = Dialogue::new(Protocol::Pop3, "x");
    assert_eq!(d.goodbye(), Some(&b"QUIT\r\n"[..]));
    d.receive(b"-ERR go away\r\n");
    let first = d.step();
    assert!(first.is_err());
    assert_eq!(d.step(), first);
    let mut d = Dialogue::new(Protocol::Imap, "x");
    d.receive(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\na2 OK go\r\n");
    assert!(matches!(d.step(), Ok(Action::Send(_))));
    assert!(matches!(d.step(), Ok(Action::StartTls { .. })));
    assert_eq!(d.goodbye(), None);
    assert_eq!(d.phase(), "STARTTLS");
}
