//! Every way a client can log in, through the mailtls gateway, against a real Dovecot, with a
//! password that has spaces, a double quote, a backslash and non-ASCII (the lab's `tricky`
//! user). The gateway holds the pre-auth dialogue itself and re-sends the credentials upstream,
//! so each form must be parsed exactly: one byte off and Dovecot says no.
//!
//! IMAP: atoms, quoted strings with escapes, synchronising `{n}` literals (the client waits for
//! the gateway's `+`), non-synchronising `{n+}` literals, user and password both as literals,
//! AUTHENTICATE PLAIN with SASL-IR and without (the client waits for `+ `), AUTHENTICATE LOGIN
//! with and without the user up front. POP3: USER/PASS, AUTH PLAIN and AUTH LOGIN with and
//! without an initial response. Raw bytes over a plaintext listener (what a test can control
//! to the byte), plus Python's imaplib/poplib and curl's SASL LOGIN over TLS 1.0 on a legacy
//! listener. Each login must end in Dovecot's own `OK`/`+OK` (and the session must then work
//! as that user); a wrong password must end in `NO`/`-ERR`, and a retry on the same connection
//! must still work.
//!
//! Afterwards: each session record names the user, never the password, and neither the
//! password nor its quoted or base64 forms appear anywhere in the gateway's log or database
//! files, byte for byte.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use e2e::clients::{
    curl_tls10_fetch, find, last_line, python_driver_fetch, sasl_plain, Conversation,
};
use e2e::evidence::{
    assert_no_secret_in_gateway_files, assert_same_messages, stored_inbox, upstream_logins,
};
use e2e::{post_cutoff_dovecot, start_gateway, Dovecot, Gateway, ListenerSpec, Scratch};
use store::{Outcome, SessionRecord};
use wire::TlsVersion;

/// A wrong password as tricky as the right one, so refusals exercise the same quoting.
const WRONG_PASSWORD: &str = "n0t th\u{e9} \"pass\\word\"";

/// Fields drop in order: the gateway stops first, then Dovecot, then the folder goes.
struct Lab {
    gateway: Gateway,
    dovecot: Dovecot,
    /// The tricky user's password, as bytes.
    password: Vec<u8>,
    // Dropped last: the folder stays for inspection when the test failed.
    scratch: Scratch,
}

/// Dovecot at TLS 1.2 minimum, and a gateway with a plaintext listener (raw bytes from the
/// test) and a TLS 1.0 listener (Python's clients) for `protocol`.
fn lab(label: &str, protocol: &str) -> Lab {
    let scratch = Scratch::new(label);
    let dovecot = post_cutoff_dovecot(&scratch);
    let gateway = start_gateway(
        &scratch,
        &dovecot,
        vec![
            ListenerSpec::new("plain", protocol, "none", None),
            ListenerSpec::new("legacy-tls", protocol, "implicit", Some("1.0")),
        ],
        "pre_auth_timeout_secs = 20",
    );
    let password = std::fs::read(dovecot.var("TRICKY_PASSWORD_FILE")).expect("tricky password");
    // The point of the user: if the lab ever simplifies it, these tests would prove less.
    for (what, present) in [
        ("a space", password.contains(&b' ')),
        ("a double quote", password.contains(&b'"')),
        ("a backslash", password.contains(&b'\\')),
        ("non-ASCII", !password.is_ascii()),
    ] {
        assert!(present, "the tricky password has no {what}");
    }
    Lab {
        dovecot,
        gateway,
        password,
        scratch,
    }
}

/// An IMAP quoted string: `\` and `"` escaped, 8-bit bytes sent as they are (as Dovecot and
/// most clients accept).
fn quoted(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![b'"'];
    for &b in bytes {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    out
}

/// The SASL PLAIN response for `user` and `password`, as bytes to splice into a command.
fn plain_response(user: &str, password: &[u8]) -> Vec<u8> {
    sasl_plain(user, password).into_bytes()
}

/// `bytes` in base64, as a SASL LOGIN step sends the user name or the password.
fn base64(bytes: &[u8]) -> Vec<u8> {
    STANDARD.encode(bytes).into_bytes()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// One step of a login: bytes to send, or waiting for the server's continuation request.
enum Step {
    Send(Vec<u8>),
    AwaitContinuation,
}

/// A login form: its name, the user it logs in, and the steps that end in the tagged reply
/// for `tag`.
struct ImapForm {
    name: &'static str,
    user: &'static str,
    tag: &'static str,
    steps: Vec<Step>,
}

fn imap_forms(password: &[u8]) -> Vec<ImapForm> {
    use Step::{AwaitContinuation as Wait, Send};
    let n = password.len();
    let user_literal_sync = b"{6}\r\n".as_slice();
    vec![
        ImapForm {
            name: "atoms",
            user: "alice",
            tag: "a1",
            steps: vec![Send(b"a1 LOGIN alice secret\r\n".to_vec())],
        },
        ImapForm {
            name: "lower-case command name",
            user: "alice",
            tag: "a2",
            steps: vec![Send(b"a2 login alice secret\r\n".to_vec())],
        },
        ImapForm {
            name: "quoted strings with escapes",
            user: "tricky",
            tag: "a3",
            steps: vec![Send(cat(&[
                b"a3 LOGIN \"tricky\" ",
                &quoted(password),
                b"\r\n",
            ]))],
        },
        ImapForm {
            name: "password as a synchronising literal",
            user: "tricky",
            tag: "a4",
            steps: vec![
                Send(format!("a4 LOGIN tricky {{{n}}}\r\n").into_bytes()),
                Wait,
                Send(cat(&[password, b"\r\n"])),
            ],
        },
        ImapForm {
            name: "password as a non-synchronising literal",
            user: "tricky",
            tag: "a5",
            steps: vec![Send(cat(&[
                format!("a5 LOGIN tricky {{{n}+}}\r\n").as_bytes(),
                password,
                b"\r\n",
            ]))],
        },
        ImapForm {
            name: "user and password as synchronising literals",
            user: "tricky",
            tag: "a6",
            steps: vec![
                Send(cat(&[b"a6 LOGIN ", user_literal_sync])),
                Wait,
                Send(format!("tricky {{{n}}}\r\n").into_bytes()),
                Wait,
                Send(cat(&[password, b"\r\n"])),
            ],
        },
        ImapForm {
            name: "user and password as non-synchronising literals",
            user: "tricky",
            tag: "a7",
            steps: vec![Send(cat(&[
                b"a7 LOGIN {6+}\r\ntricky ",
                format!("{{{n}+}}\r\n").as_bytes(),
                password,
                b"\r\n",
            ]))],
        },
        ImapForm {
            name: "user as a literal, password quoted",
            user: "tricky",
            tag: "a8",
            steps: vec![Send(cat(&[
                b"a8 LOGIN {6+}\r\ntricky ",
                &quoted(password),
                b"\r\n",
            ]))],
        },
        ImapForm {
            name: "AUTHENTICATE PLAIN with SASL-IR",
            user: "tricky",
            tag: "a9",
            steps: vec![Send(cat(&[
                b"a9 AUTHENTICATE PLAIN ",
                &plain_response("tricky", password),
                b"\r\n",
            ]))],
        },
        ImapForm {
            name: "AUTHENTICATE PLAIN, response after the continuation",
            user: "tricky",
            tag: "a10",
            steps: vec![
                Send(b"a10 AUTHENTICATE PLAIN\r\n".to_vec()),
                Wait,
                Send(cat(&[&plain_response("tricky", password), b"\r\n"])),
            ],
        },
        ImapForm {
            name: "AUTHENTICATE LOGIN, user and password after the prompts",
            user: "tricky",
            tag: "a11",
            steps: vec![
                Send(b"a11 AUTHENTICATE LOGIN\r\n".to_vec()),
                Wait,
                Send(cat(&[&base64(b"tricky"), b"\r\n"])),
                Wait,
                Send(cat(&[&base64(password), b"\r\n"])),
            ],
        },
        ImapForm {
            name: "AUTHENTICATE LOGIN with the user as SASL-IR",
            user: "tricky",
            tag: "a12",
            steps: vec![
                Send(cat(&[
                    b"a12 AUTHENTICATE LOGIN ",
                    &base64(b"tricky"),
                    b"\r\n",
                ])),
                Wait,
                Send(cat(&[&base64(password), b"\r\n"])),
            ],
        },
    ]
}

/// Runs the steps of a login on `client` and returns the reply that ended it.
fn run_imap_steps(client: &mut Conversation, tag: &str, steps: &[Step]) -> Vec<u8> {
    for step in steps {
        match step {
            Step::Send(bytes) => client.send(bytes),
            Step::AwaitContinuation => {
                // A server that answers NO/BAD here instead would make this read fail with
                // the transcript, which is the diagnosis we want.
                client.read_continuation();
            }
        }
    }
    client.read_tagged(tag)
}

/// After an IMAP login: the session really is the user's (their INBOX opens with the lab's
/// messages), then LOGOUT.
fn imap_use_and_logout(mut client: Conversation, expected_messages: usize) {
    client.send(b"s1 EXAMINE INBOX\r\n");
    let reply = client.read_tagged("s1");
    let exists = format!("* {expected_messages} EXISTS\r\n");
    assert!(
        find(&reply, exists.as_bytes()).is_some() && last_line(&reply).starts_with("s1 OK"),
        "EXAMINE after login:\n{}",
        client.describe()
    );
    client.send(b"s2 LOGOUT\r\n");
    client.read_tagged("s2");
    client.finish();
}

fn record_for_port(records: &[SessionRecord], port: u16) -> &SessionRecord {
    records
        .iter()
        .find(|r| r.client_port == port)
        .unwrap_or_else(|| panic!("no record for client port {port}: {records:#?}"))
}

/// Secrets that must appear nowhere in the gateway's files, in any form the harness's search
/// knows: raw (alice's "secret" only as a word of its own: it is also an ordinary word inside
/// identifiers), escaped as a quoted string is, and inside a base64 SASL PLAIN response.
fn secrets(password: &[u8]) -> Vec<Vec<u8>> {
    let mut secrets = vec![
        password.to_vec(),
        WRONG_PASSWORD.as_bytes().to_vec(),
        b"secret".to_vec(),
    ];
    // An IMAP quoted string escapes `\` and `"` as JSON does, but the search derives its
    // escaped forms from text, and the lab's password file need not be UTF-8.
    secrets.extend([password, WRONG_PASSWORD.as_bytes()].map(quoted));
    secrets
}

/// The tricky user over TLS 1.0 on the legacy listener, from real clients: the Python driver
/// of `protocol` with each login it knows besides the raw forms, whose mail comes back byte for
/// byte, and curl with the SASL LOGIN mechanism (`--login-options AUTH=LOGIN`, which fails
/// unless the gateway offers and serves LOGIN) fetching the first message. Returns the number
/// of sessions.
fn legacy_tls_clients(lab: &Lab, protocol: &str, messages: &[Vec<u8>]) -> usize {
    let port = lab.gateway.port("legacy-tls");
    let ca = lab.dovecot.ca_file();
    let (driver, auths, url) = match protocol {
        "imap" => (
            "imap_fetch.py",
            ["login", "plain"],
            format!("imaps://127.0.0.1:{port}/INBOX;MAILINDEX=1"),
        ),
        _ => (
            "pop3_fetch.py",
            ["user", "plain"],
            format!("pop3s://127.0.0.1:{port}/1"),
        ),
    };
    for auth in auths {
        let args = [
            format!("--port={port}"),
            "--mode=implicit".to_string(),
            "--tls-version=1.0".to_string(),
            format!("--auth={auth}"),
            format!("--cafile={}", ca.display()),
            "--user=tricky".to_string(),
            format!(
                "--password-file={}",
                lab.dovecot.var("TRICKY_PASSWORD_FILE")
            ),
        ];
        let out = lab.scratch.path().join(format!("{driver}-{auth}"));
        // Python's own view of the connection, in its spelling ("TLSv1" is TLS 1.0).
        let fetched = python_driver_fetch(driver, &args, "TLSv1", out, messages.len());
        assert_same_messages(&format!("{driver} --auth {auth}"), &fetched, messages);
    }

    let mut login = OsString::from("tricky:");
    login.push(OsStr::from_bytes(&lab.password));
    let out = lab
        .scratch
        .path()
        .join(format!("curl-{protocol}-auth-login.eml"));
    let (first, trace) = curl_tls10_fetch(
        &ca,
        &url,
        &out,
        &login,
        None,
        &["--login-options", "AUTH=LOGIN"],
    );
    let command = match protocol {
        "imap" => " AUTHENTICATE LOGIN",
        _ => "> AUTH LOGIN",
    };
    assert!(
        trace
            .lines()
            .any(|l| l.starts_with("> ") && l.contains(command)),
        "curl did not use the LOGIN mechanism:\n{trace}"
    );
    assert_same_messages("curl AUTH=LOGIN", &[(1, first)], &messages[..1]);
    auths.len() + 1
}

/// The sessions of [`legacy_tls_clients`]: `count` of them, each the tricky user at TLS 1.0.
fn assert_legacy_tls_records(records: &[SessionRecord], count: usize) {
    let legacy: Vec<&SessionRecord> = records
        .iter()
        .filter(|r| r.listener == "legacy-tls")
        .collect();
    assert_eq!(legacy.len(), count, "{records:#?}");
    for record in legacy {
        assert_eq!(record.outcome, Outcome::Ok, "{record:#?}");
        assert_eq!(record.login.as_deref(), Some("tricky"), "{record:#?}");
        assert_eq!(
            record.tls_version.map(TlsVersion::as_str),
            Some("TLSv1.0"),
            "{record:#?}"
        );
    }
}

#[test]
fn every_imap_login_form_logs_in_to_dovecot_through_the_gateway() {
    let mut lab = lab("login-imap", "imap");
    let plain = lab.gateway.port("plain");
    let password = lab.password.clone();
    let messages = stored_inbox(&lab.dovecot, "tricky");

    // Dovecot answers a wrong password after 2 s: run those sessions alongside the others.
    let (wrong_only_port, retry_port, form_ports) = std::thread::scope(|s| {
        let wrong_only = s.spawn(|| {
            let mut client = Conversation::tcp(plain);
            client.read_line();
            client.send(&cat(&[
                b"w1 LOGIN tricky ",
                &quoted(WRONG_PASSWORD.as_bytes()),
                b"\r\n",
            ]));
            let reply = client.read_tagged("w1");
            assert!(
                last_line(&reply).starts_with("w1 NO"),
                "wrong password not refused:\n{}",
                client.describe()
            );
            client.send(b"w2 LOGOUT\r\n");
            client.read_tagged("w2");
            let port = client.local_port();
            client.finish();
            port
        });
        let retry = s.spawn(|| {
            let mut client = Conversation::tcp(plain);
            client.read_line();
            client.send(&cat(&[
                b"r1 AUTHENTICATE PLAIN ",
                &plain_response("tricky", WRONG_PASSWORD.as_bytes()),
                b"\r\n",
            ]));
            let reply = client.read_tagged("r1");
            assert!(
                last_line(&reply).starts_with("r1 NO"),
                "wrong password not refused:\n{}",
                client.describe()
            );
            // The device corrects itself on the same connection, as a person re-typing would.
            let n = password.len();
            client.send(&cat(&[
                format!("r2 LOGIN tricky {{{n}+}}\r\n").as_bytes(),
                &password,
                b"\r\n",
            ]));
            let reply = client.read_tagged("r2");
            assert!(
                last_line(&reply).starts_with("r2 OK"),
                "retry after a wrong password failed:\n{}",
                client.describe()
            );
            let port = client.local_port();
            imap_use_and_logout(client, messages.len());
            port
        });

        let mut form_ports = Vec::new();
        for form in imap_forms(&password) {
            let mut client = Conversation::tcp(plain);
            let greeting = client.read_line();
            assert!(greeting.starts_with(b"* OK"), "{}", client.describe());
            let reply = run_imap_steps(&mut client, form.tag, &form.steps);
            let last = last_line(&reply);
            // "Logged in" is Dovecot's text: the OK came from upstream, not from the gateway.
            assert!(
                last.starts_with(&format!("{} OK", form.tag)) && last.contains("Logged in"),
                "{}: not logged in upstream:\n{}",
                form.name,
                client.describe()
            );
            form_ports.push((form.name, form.user, client.local_port()));
            imap_use_and_logout(client, messages.len());
        }
        (
            wrong_only.join().expect("wrong-password session"),
            retry.join().expect("retry session"),
            form_ports,
        )
    });

    let legacy_sessions = legacy_tls_clients(&lab, "imap", &messages);

    let tricky_logins = form_ports.iter().filter(|f| f.1 == "tricky").count() + 1 + legacy_sessions;
    let alice_logins = form_ports.iter().filter(|f| f.1 == "alice").count();
    upstream_logins(&lab.dovecot, "tricky", tricky_logins);
    upstream_logins(&lab.dovecot, "alice", alice_logins);

    let records = lab.gateway.stop_and_read_sessions();
    assert_eq!(
        records.len(),
        form_ports.len() + 2 + legacy_sessions,
        "{records:#?}"
    );
    for (name, user, port) in &form_ports {
        let record = record_for_port(&records, *port);
        assert_eq!(record.outcome, Outcome::Ok, "{name}: {record:#?}");
        assert_eq!(record.login.as_deref(), Some(*user), "{name}: {record:#?}");
        assert_eq!(record.listener, "plain", "{name}: {record:#?}");
        assert_eq!(record.tls_version, None, "{name}: {record:#?}");
    }
    let wrong = record_for_port(&records, wrong_only_port);
    assert_eq!(wrong.outcome, Outcome::AuthFailed, "{wrong:#?}");
    assert_eq!(wrong.login.as_deref(), Some("tricky"), "{wrong:#?}");
    let retried = record_for_port(&records, retry_port);
    assert_eq!(retried.outcome, Outcome::Ok, "{retried:#?}");
    assert_eq!(retried.login.as_deref(), Some("tricky"), "{retried:#?}");
    assert_legacy_tls_records(&records, legacy_sessions);

    let secrets = secrets(&lab.password);
    let secrets: Vec<&[u8]> = secrets.iter().map(Vec::as_slice).collect();
    assert_no_secret_in_gateway_files(&lab.gateway, &secrets);
}

/// A POP3 login form: (bytes to send, what the reply line must start with) per exchange; the
/// last exchange is the one the upstream answers.
struct Pop3Form {
    name: &'static str,
    user: &'static str,
    exchanges: Vec<(Vec<u8>, &'static str)>,
}

fn pop3_forms(password: &[u8]) -> Vec<Pop3Form> {
    vec![
        Pop3Form {
            name: "USER/PASS (the password is the rest of the line)",
            user: "tricky",
            exchanges: vec![
                (b"USER tricky\r\n".to_vec(), "+OK"),
                (cat(&[b"PASS ", password, b"\r\n"]), "+OK"),
            ],
        },
        Pop3Form {
            name: "lower-case user/pass",
            user: "alice",
            exchanges: vec![
                (b"user alice\r\n".to_vec(), "+OK"),
                (b"pass secret\r\n".to_vec(), "+OK"),
            ],
        },
        Pop3Form {
            name: "AUTH PLAIN with an initial response",
            user: "tricky",
            exchanges: vec![(
                cat(&[b"AUTH PLAIN ", &plain_response("tricky", password), b"\r\n"]),
                "+OK",
            )],
        },
        Pop3Form {
            name: "AUTH PLAIN, response after the continuation",
            user: "tricky",
            exchanges: vec![
                (b"AUTH PLAIN\r\n".to_vec(), "+ "),
                (cat(&[&plain_response("tricky", password), b"\r\n"]), "+OK"),
            ],
        },
        Pop3Form {
            name: "AUTH LOGIN, user and password after the prompts",
            user: "tricky",
            exchanges: vec![
                (b"AUTH LOGIN\r\n".to_vec(), "+ VXNlcm5hbWU6"),
                (cat(&[&base64(b"tricky"), b"\r\n"]), "+ UGFzc3dvcmQ6"),
                (cat(&[&base64(password), b"\r\n"]), "+OK"),
            ],
        },
        Pop3Form {
            name: "AUTH LOGIN with the user as initial response",
            user: "tricky",
            exchanges: vec![
                (
                    cat(&[b"AUTH LOGIN ", &base64(b"tricky"), b"\r\n"]),
                    "+ UGFzc3dvcmQ6",
                ),
                (cat(&[&base64(password), b"\r\n"]), "+OK"),
            ],
        },
    ]
}

/// Sends each exchange and checks its one-line reply; returns the last reply line.
fn run_pop3_exchanges(client: &mut Conversation, exchanges: &[(Vec<u8>, &str)]) -> String {
    let mut last = String::new();
    for (send, expect) in exchanges {
        client.send(send);
        last = String::from_utf8_lossy(&client.read_line()).into_owned();
        assert!(
            last.starts_with(expect),
            "sent {:?}, expected {expect:?}:\n{}",
            String::from_utf8_lossy(send),
            client.describe()
        );
    }
    last
}

/// After a POP3 login: the maildrop is the user's (STAT counts the lab's messages), then QUIT.
fn pop3_use_and_quit(mut client: Conversation, expected_messages: usize) {
    client.send(b"STAT\r\n");
    let stat = String::from_utf8_lossy(&client.read_line()).into_owned();
    assert!(
        stat.starts_with(&format!("+OK {expected_messages} ")),
        "STAT after login:\n{}",
        client.describe()
    );
    client.send(b"QUIT\r\n");
    client.read_line();
    client.finish();
}

#[test]
fn every_pop3_login_form_logs_in_to_dovecot_through_the_gateway() {
    let mut lab = lab("login-pop3", "pop3");
    let plain = lab.gateway.port("plain");
    let password = lab.password.clone();
    let messages = stored_inbox(&lab.dovecot, "tricky");

    let (wrong_only_port, retry_port, form_ports) = std::thread::scope(|s| {
        let wrong_only = s.spawn(|| {
            let mut client = Conversation::tcp(plain);
            client.read_line();
            run_pop3_exchanges(
                &mut client,
                &[
                    (b"USER tricky\r\n".to_vec(), "+OK"),
                    (cat(&[b"PASS ", WRONG_PASSWORD.as_bytes(), b"\r\n"]), "-ERR"),
                ],
            );
            client.send(b"QUIT\r\n");
            client.read_line();
            let port = client.local_port();
            client.finish();
            port
        });
        let retry = s.spawn(|| {
            let mut client = Conversation::tcp(plain);
            client.read_line();
            run_pop3_exchanges(
                &mut client,
                &[(
                    cat(&[
                        b"AUTH PLAIN ",
                        &plain_response("tricky", WRONG_PASSWORD.as_bytes()),
                        b"\r\n",
                    ]),
                    "-ERR",
                )],
            );
            // Then the right password on the same connection.
            run_pop3_exchanges(
                &mut client,
                &[
                    (b"USER tricky\r\n".to_vec(), "+OK"),
                    (cat(&[b"PASS ", &password, b"\r\n"]), "+OK"),
                ],
            );
            let port = client.local_port();
            pop3_use_and_quit(client, messages.len());
            port
        });

        let mut form_ports = Vec::new();
        for form in pop3_forms(&password) {
            let mut client = Conversation::tcp(plain);
            let greeting = client.read_line();
            assert!(greeting.starts_with(b"+OK"), "{}", client.describe());
            let last = run_pop3_exchanges(&mut client, &form.exchanges);
            // "Logged in" is Dovecot's text: the +OK came from upstream.
            assert!(
                last.contains("Logged in"),
                "{}: not logged in upstream:\n{}",
                form.name,
                client.describe()
            );
            form_ports.push((form.name, form.user, client.local_port()));
            pop3_use_and_quit(client, messages.len());
        }
        (
            wrong_only.join().expect("wrong-password session"),
            retry.join().expect("retry session"),
            form_ports,
        )
    });

    let legacy_sessions = legacy_tls_clients(&lab, "pop3", &messages);

    let tricky_logins = form_ports.iter().filter(|f| f.1 == "tricky").count() + 1 + legacy_sessions;
    let alice_logins = form_ports.iter().filter(|f| f.1 == "alice").count();
    upstream_logins(&lab.dovecot, "tricky", tricky_logins);
    upstream_logins(&lab.dovecot, "alice", alice_logins);

    let records = lab.gateway.stop_and_read_sessions();
    assert_eq!(
        records.len(),
        form_ports.len() + 2 + legacy_sessions,
        "{records:#?}"
    );
    for (name, user, port) in &form_ports {
        let record = record_for_port(&records, *port);
        assert_eq!(record.outcome, Outcome::Ok, "{name}: {record:#?}");
        assert_eq!(record.login.as_deref(), Some(*user), "{name}: {record:#?}");
        assert_eq!(record.protocol, "pop3", "{name}: {record:#?}");
    }
    let wrong = record_for_port(&records, wrong_only_port);
    assert_eq!(wrong.outcome, Outcome::AuthFailed, "{wrong:#?}");
    assert_eq!(wrong.login.as_deref(), Some("tricky"), "{wrong:#?}");
    let retried = record_for_port(&records, retry_port);
    assert_eq!(retried.outcome, Outcome::Ok, "{retried:#?}");
    assert_eq!(retried.login.as_deref(), Some("tricky"), "{retried:#?}");
    assert_legacy_tls_records(&records, legacy_sessions);

    let secrets = secrets(&lab.password);
    let secrets: Vec<&[u8]> = secrets.iter().map(Vec::as_slice).collect();
    assert_no_secret_in_gateway_files(&lab.gateway, &secrets);
}
