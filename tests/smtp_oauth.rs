//! The SMTP bridge with OAuth 2.0 upstream: a printer pinned to TLS 1.0 submits with its local
//! password, and the gateway authenticates to a TLS 1.2-only Postfix with `AUTH XOAUTH2` and a
//! token from the local token endpoint, for the mailbox `oauthonly`, which has no password.
//! Postfix asks the lab Dovecot, whose oauth2 passdb validates the token: the server, not the
//! test, decides. Evidence: the message in Postfix's Maildir byte for byte, and Postfix's log
//! naming the mechanism, the SASL user and the TLS version of the gateway's connection.
//! A device that cannot authenticate at all relays through a `[listener.relay]` whose account
//! is the same local account: the gateway logs in with the account's token, no password asked.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use e2e::clients::smtp_submit;
use e2e::evidence::upstream_is_modern;
use e2e::submission::{assert_delivered_exactly, scan_message, tls_line, wait_for_delivery};
use e2e::{
    mailtls_bin, run_ok, Dovecot, DovecotOptions, Gateway, ListenerSpec, Postfix, Scratch,
    TokenEndpoint, TokenEndpointOptions,
};
use store::Outcome;

const APP_SECRET: &str = "smtp-app-secret-7Qx";
const DEVICE_PASSWORD: &str = "printer pass 42";

/// The Argon2id hash `mailtls passwd` prints for `password`.
fn password_hash(password: &str) -> String {
    let mut child = Command::new(mailtls_bin())
        .arg("passwd")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("mailtls passwd");
    writeln!(child.stdin.take().expect("stdin"), "{password}").expect("password");
    let out = child.wait_with_output().expect("mailtls passwd ran");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

#[test]
fn a_tls10_printer_submits_through_xoauth2_to_a_token_only_account() {
    let scratch = Scratch::new("smtp-oauth");
    let dovecot_dir = scratch.path().join("dovecot");
    let auth_socket = dovecot_dir.join("sasl/auth-postfix");
    let dovecot = Dovecot::start(
        &dovecot_dir,
        &DovecotOptions {
            messages: 0,
            extra_args: vec![
                "--oauth2".into(),
                "--auth-listener".into(),
                auth_socket.display().to_string(),
            ],
            ..DovecotOptions::default()
        },
    );
    let postfix = Postfix::start(
        &scratch.path().join("postfix"),
        &[
            "--min-tls",
            "TLSv1.2",
            "--submission",
            &auth_socket.display().to_string(),
            "--certs",
            &dovecot_dir.join("certs").display().to_string(),
        ],
    );
    let mailbox = dovecot.var("OAUTH_ONLY_USER").to_string();
    let mut options = TokenEndpointOptions::new(Path::new(dovecot.var("OAUTH2_KEY_FILE")));
    options
        .secret_clients
        .push(("printer-app".into(), APP_SECRET.into(), mailbox.clone()));
    let endpoint = TokenEndpoint::start(&options);

    let secret_file = scratch.path().join("app.secret");
    std::fs::write(&secret_file, format!("{APP_SECRET}\n")).expect("secret");
    let key_file = scratch.path().join("token.key");
    let key = run_ok(Command::new("openssl").args(["rand", "-base64", "32"])).stdout;
    std::fs::write(&key_file, key).expect("key");
    let ca = dovecot.ca_file();
    let certs = ca.parent().expect("certs").to_path_buf();
    let listener = ListenerSpec::new("submission-legacy", "smtp", "starttls", Some("1.0"));
    let relay_listener = ListenerSpec::new("printers-relay", "smtp", "none", None);
    let scanner = postfix.address("scanner");
    let config = format!(
        "[gateway]\n\n[store]\npath = \"sessions.db\"\n\n\
         [token_cache]\npath = \"tokens.enc\"\nkey_file = \"{key}\"\n\n\
         [[oauth]]\nname = \"printer-app\"\ntoken_url = \"{url}\"\nclient_id = \"printer-app\"\n\
         client_secret_file = \"{secret}\"\nscope = \"https://outlook.office365.com/.default\"\n\
         grant = \"client_credentials\"\n\n\
         [[account]]\nlogin = \"scanner\"\npassword_hash = '{hash}'\nmailbox = \"{mailbox}\"\n\
         oauth = \"printer-app\"\n\n\
         [[upstream]]\nname = \"postfix\"\naddress = \"localhost:{port}\"\nprotocol = \"smtp\"\n\
         tls = \"starttls\"\nca_file = \"{ca}\"\nauth = \"oauth\"\nsasl = \"xoauth2\"\n\n{listener}\
         {relay_listener}[listener.relay]\nnetworks = [\"127.0.0.1\"]\nsenders = [\"{scanner}\"]\n\
         account = \"scanner\"\n",
        key = key_file.display(),
        url = endpoint.token_url(),
        secret = secret_file.display(),
        hash = password_hash(DEVICE_PASSWORD),
        port = postfix.port("SMTP_PORT"),
        ca = ca.display(),
        listener = listener.toml(&certs, "postfix"),
        relay_listener = relay_listener.toml(&certs, "postfix"),
    );
    let dir = scratch.path().join("gateway");
    std::fs::create_dir_all(&dir).expect("gateway dir");
    let port = listener.port.to_string();
    let relay_port = relay_listener.port.to_string();
    let mut gateway = Gateway::start_with_config(&dir, &config, vec![listener, relay_listener]);

    // Python smtplib as the printer: STARTTLS at TLS 1.0, AUTH PLAIN with the local password.
    let alice = postfix.address("alice");
    let message = scan_message("printer-oauth", &alice, &alice);
    let file = scratch.path().join("printer.eml");
    std::fs::write(&file, &message).expect("message file");
    let ca_text = ca.display().to_string();
    let (ok, report) = smtp_submit(
        &file,
        &[
            "--port",
            &port,
            "--mode",
            "starttls",
            "--tls-version",
            "1.0",
            "--cafile",
            &ca_text,
            "--user",
            "scanner",
            "--password",
            DEVICE_PASSWORD,
            "--from",
            &alice,
            "--to",
            &alice,
        ],
    );
    assert!(ok, "{report}");
    assert!(report.contains("tls_version=TLSv1 "), "{report}");

    let delivered = wait_for_delivery(&postfix, "alice", 1);
    assert_delivered_exactly(&delivered[0], &message);
    // Postfix (through Dovecot) accepted the token for the token-only mailbox, over TLS 1.2+.
    let session = postfix
        .ended_sessions_with(&format!("sasl_username={mailbox}"), 1)
        .remove(0);
    assert!(
        session
            .iter()
            .any(|l| l.contains("sasl_method=XOAUTH2") && l.contains("sasl_username=oauthonly")),
        "{session:#?}"
    );
    let tls = tls_line(&session);
    assert!(tls.contains("TLSv1.2") || tls.contains("TLSv1.3"), "{tls}");
    assert_eq!(endpoint.count("client_credentials"), 1);

    // A device without AUTH relays as the same account: its token, from the cache.
    let message = scan_message("printer-relay", &scanner, &alice);
    let file = scratch.path().join("relay.eml");
    std::fs::write(&file, &message).expect("message file");
    let (ok, report) = smtp_submit(
        &file,
        &[
            "--port",
            &relay_port,
            "--mode",
            "cleartext",
            "--no-auth",
            "--from",
            &scanner,
            "--to",
            &alice,
        ],
    );
    assert!(ok, "{report}");
    let delivered = wait_for_delivery(&postfix, "alice", 2);
    let relayed_copy = delivered
        .iter()
        .find(|d| String::from_utf8_lossy(d).contains("Subject: printer-relay"))
        .expect("the relayed message arrived");
    assert_delivered_exactly(relayed_copy, &message);
    let sessions = postfix.ended_sessions_with(&format!("sasl_username={mailbox}"), 2);
    assert!(
        sessions[1]
            .iter()
            .any(|l| l.contains("sasl_method=XOAUTH2")),
        "{sessions:#?}"
    );
    assert_eq!(endpoint.count("client_credentials"), 1);

    let records = gateway.stop_and_read_sessions();
    let [record, relayed] = &records[..] else {
        panic!("{records:#?}")
    };
    assert_eq!(record.outcome, Outcome::Ok, "{record:#?}");
    assert_eq!(record.login.as_deref(), Some("scanner"));
    assert!(upstream_is_modern(
        record.upstream_tls_version.map(|v| v.as_str())
    ));
    assert_eq!(record.envelope_sender.as_deref(), Some(alice.as_str()));
    assert_eq!(record.messages_submitted, Some(1));
    assert_eq!(relayed.outcome, Outcome::Ok, "{relayed:#?}");
    assert_eq!(relayed.listener, "printers-relay");
    assert_eq!(relayed.login.as_deref(), Some("scanner"));
    assert_eq!(relayed.envelope_sender.as_deref(), Some(scanner.as_str()));
    assert_eq!(relayed.messages_submitted, Some(1));
}
