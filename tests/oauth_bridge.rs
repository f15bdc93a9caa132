//! The double upgrade end to end: a device that speaks only TLS 1.0 logs in to the gateway
//! with a local password, and the gateway opens a mailbox that takes no password at all (the
//! lab Dovecot's `oauthonly`, validated by its oauth2 passdb) with an access token from a
//! real local token endpoint: XOAUTH2 over IMAP, OAUTHBEARER over POP3.
//!
//! Evidence comes from the real server and endpoint: Dovecot's log says which mechanism and
//! TLS version each upstream login used (and shows none for a refused local password); the
//! endpoint counts the token requests; the fetched mail is compared byte for byte with the
//! maildir. A reload replaces a local password for new logins while a session logged in with
//! the old one goes on.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::clients::python_driver_fetch;
use e2e::evidence::{assert_no_secret_in_gateway_files, assert_same_messages, stored_inbox};
use e2e::legacy_client::Client;
use e2e::{
    mailtls_bin, oauth_dovecot, run_ok, Dovecot, Gateway, ListenerSpec, Scratch, TokenEndpoint,
    TokenEndpointOptions,
};
use store::{Outcome, SessionRecord};

const APP_SECRET: &str = "app-secret-Zq8-oauth-bridge";
/// The device's local password: spaces, quotes and a backslash, as printers are set up.
const DEVICE_PASSWORD: &str = "pr1nter \"pass\\ wörd";
/// A second account whose app's tokens name another subject: Dovecot refuses them.
const STRANGER_PASSWORD: &str = "str4nger-pw";
/// The secret of an app that only a reload adds, and the password of its device.
const LATER_SECRET: &str = "later-secret-Vb3-oauth-bridge";
const HELPDESK_PASSWORD: &str = "h3lpdesk-pw";

/// The oauth Dovecot, a token endpoint, and a gateway whose IMAP upstream logs in with
/// XOAUTH2 and POP3 upstream with OAUTHBEARER for two local accounts.
struct Lab {
    gateway: Gateway,
    endpoint: TokenEndpoint,
    dovecot: Dovecot,
    mailbox: String,
    scratch: Scratch,
}

/// The Argon2id hash `mailtls passwd` prints for `password` read from standard input.
fn password_hash(password: &str) -> String {
    let mut child = Command::new(mailtls_bin())
        .arg("passwd")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailtls passwd");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("password to mailtls passwd");
    let out = child.wait_with_output().expect("mailtls passwd ran");
    assert!(out.status.success(), "{out:?}");
    let hash = String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    hash
}

impl Lab {
    fn start(label: &str, max_connections: u32) -> Lab {
        let scratch = Scratch::new(label);
        let dovecot = oauth_dovecot(&scratch);
        let mailbox = dovecot.var("OAUTH_ONLY_USER").to_string();
        let mut options = TokenEndpointOptions::new(Path::new(dovecot.var("OAUTH2_KEY_FILE")));
        options
            .secret_clients
            .push(("bridge-app".into(), APP_SECRET.into(), mailbox.clone()));
        // Tokens for `alice` presented as `oauthonly`: Dovecot checks the subject.
        options
            .secret_clients
            .push(("stranger-app".into(), APP_SECRET.into(), "alice".into()));
        // An app registered later, which a reload brings in.
        options
            .secret_clients
            .push(("later-app".into(), LATER_SECRET.into(), mailbox.clone()));
        let endpoint = TokenEndpoint::start(&options);

        let dir = scratch.path().join("gateway");
        std::fs::create_dir_all(&dir).expect("gateway dir");
        // The operator's files sit outside the gateway's folder, whose every file the secret
        // search reads.
        let secret_file = scratch.path().join("app.secret");
        std::fs::write(&secret_file, format!("{APP_SECRET}\n")).expect("secret");
        let key = run_ok(Command::new("openssl").args(["rand", "-base64", "32"])).stdout;
        let key_file = scratch.path().join("token.key");
        std::fs::write(&key_file, key).expect("token key");

        let listeners = vec![
            ListenerSpec::new("imaps-legacy", "imap", "implicit", Some("1.0")),
            ListenerSpec::new("pop3s-legacy", "pop3", "implicit", Some("1.0")),
        ];
        let certs = dovecot.ca_file().parent().expect("certs").to_path_buf();
        let app = |name: &str| {
            format!(
                "[[oauth]]\nname = \"{name}\"\ntoken_url = \"{url}\"\nclient_id = \"{name}\"\n\
                 client_secret_file = \"{secret}\"\nscope = \"https://outlook.office365.com/.default\"\n\
                 grant = \"client_credentials\"\n\n",
                url = endpoint.token_url(),
                secret = secret_file.display(),
            )
        };
        let upstream = |name: &str, protocol: &str, port: &str, sasl: &str| {
            format!(
                "[[upstream]]\nname = \"{name}\"\naddress = \"localhost:{port}\"\nprotocol = \"{protocol}\"\n\
                 tls = \"implicit\"\nca_file = \"{ca}\"\nauth = \"oauth\"\nsasl = \"{sasl}\"\n\n",
                port = dovecot.port(port),
                ca = dovecot.ca_file().display(),
            )
        };
        let listener = |l: &ListenerSpec| {
            format!(
                "[[listener]]\nname = \"{name}\"\nprotocol = \"{protocol}\"\nbind = \"127.0.0.1:{port}\"\n\
                 tls = \"implicit\"\nmin_tls = \"1.0\"\ncertificate = \"{certs}/server.pem\"\n\
                 key = \"{certs}/server.key\"\nupstream = \"dovecot-{protocol}\"\n\n",
                name = l.name,
                protocol = l.protocol,
                port = l.port,
                certs = certs.display(),
            )
        };
        let config = format!(
            "[gateway]\npre_auth_timeout_secs = 30\n\n[store]\npath = \"sessions.db\"\n\n\
             [token_cache]\npath = \"tokens.enc\"\nkey_file = \"{key}\"\n\n{apps}\
             [[account]]\nlogin = \"scanner\"\npassword_hash = '{scanner}'\nmailbox = \"{mailbox}\"\n\
             oauth = \"bridge-app\"\nmax_connections = {max_connections}\n\n\
             [[account]]\nlogin = \"stranger\"\npassword_hash = '{stranger}'\nmailbox = \"{mailbox}\"\n\
             oauth = \"stranger-app\"\n\n{imap}{pop3}{listeners}",
            key = key_file.display(),
            apps = app("bridge-app") + &app("stranger-app"),
            scanner = password_hash(DEVICE_PASSWORD),
            stranger = password_hash(STRANGER_PASSWORD),
            imap = upstream("dovecot-imap", "imap", "IMAPS_PORT", "xoauth2"),
            pop3 = upstream("dovecot-pop3", "pop3", "POP3S_PORT", "oauthbearer"),
            listeners = listeners.iter().map(listener).collect::<String>(),
        );
        let gateway = Gateway::start_with_config_and_log(&dir, &config, listeners, "trace");
        Lab {
            gateway,
            endpoint,
            dovecot,
            mailbox,
            scratch,
        }
    }

    fn ca(&self) -> PathBuf {
        self.dovecot.ca_file()
    }

    /// Dovecot's upstream login lines for the token-only mailbox.
    fn upstream_logins(&self) -> Vec<String> {
        let marker = format!("Login: user=<{}>", self.mailbox);
        self.dovecot
            .log()
            .lines()
            .filter(|l| l.contains(&marker))
            .map(str::to_string)
            .collect()
    }

    /// A TLS 1.0 IMAP client that has read the gateway's greeting.
    fn imap(&self) -> Client {
        let mut client = Client::tls(self.gateway.port("imaps-legacy"), &self.ca());
        client.expect_greeting_imap();
        client
    }

    fn records(mut self) -> (Vec<SessionRecord>, Lab) {
        let records = self.gateway.stop_and_read_sessions();
        (records, self)
    }
}

fn imap_quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Waits until `condition` holds, for at most 10 s.
fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_tls10_device_reads_a_token_only_mailbox_with_its_local_password() {
    let lab = Lab::start("oauth-bridge-read", 50);
    let stored = stored_inbox(&lab.dovecot, &lab.mailbox);

    // Python's imaplib and poplib pinned to TLS 1.0, as an old device would be.
    for (driver, listener) in [
        ("imap_fetch.py", "imaps-legacy"),
        ("pop3_fetch.py", "pop3s-legacy"),
    ] {
        let args = [
            format!("--port={}", lab.gateway.port(listener)),
            "--mode=implicit".to_string(),
            "--tls-version=1.0".to_string(),
            format!("--cafile={}", lab.ca().display()),
            "--user=scanner".to_string(),
            format!("--password={DEVICE_PASSWORD}"),
        ];
        let out = lab.scratch.path().join(driver);
        let fetched = python_driver_fetch(driver, &args, "TLSv1", out, stored.len());
        assert_same_messages(driver, &fetched, &stored);
    }

    // 20 more IMAP logins on the same cached token: 22 logins, one token request.
    for i in 0..20 {
        let mut client = lab.imap();
        client.send(format!("a{i} LOGIN scanner {}\r\n", imap_quoted(DEVICE_PASSWORD)).as_bytes());
        let reply = client.tagged(&format!("a{i}"));
        assert!(reply.contains(&format!("a{i} OK")), "{reply}");
        client.send(b"z LOGOUT\r\n");
        client.tagged("z");
    }
    assert_eq!(
        lab.endpoint.count("client_credentials"),
        1,
        "{}",
        lab.endpoint.stats()
    );

    // Dovecot, not the test, accepted the tokens: XOAUTH2 for IMAP, OAUTHBEARER for POP3,
    // each over TLS 1.2 or 1.3.
    let logins = lab.upstream_logins();
    assert_eq!(logins.len(), 22, "{logins:#?}");
    let imap = logins.iter().filter(|l| l.contains("imap-login")).count();
    assert_eq!(imap, 21, "{logins:#?}");
    for line in &logins {
        let mechanism = match line.contains("imap-login") {
            true => "method=XOAUTH2",
            false => "method=OAUTHBEARER",
        };
        assert!(line.contains(mechanism), "{line}");
        assert!(
            line.contains("TLSv1.2 with cipher") || line.contains("TLSv1.3 with cipher"),
            "{line}"
        );
    }

    let (records, lab) = lab.records();
    assert_eq!(records.len(), 22);
    for record in &records {
        assert_eq!(record.outcome, Outcome::Ok, "{record:#?}");
        assert_eq!(record.login.as_deref(), Some("scanner"));
        assert_eq!(record.tls_version, Some(wire::TlsVersion::Tls10));
    }
    // No token, app secret or device password in the trace-level log or the store; the
    // tokens are JWTs, whose every form starts "eyJ" (base64 of `{"`).
    assert_no_secret_in_gateway_files(
        &lab.gateway,
        &[APP_SECRET.as_bytes(), DEVICE_PASSWORD.as_bytes(), b"eyJ"],
    );
}

#[test]
fn a_wrong_local_password_goes_nowhere_and_the_connection_stays_usable() {
    let lab = Lab::start("oauth-bridge-wrong", 50);
    let mut client = lab.imap();
    client.send(b"a LOGIN scanner wrong-password\r\n");
    let refused = client.tagged("a");
    assert!(
        refused.starts_with("a NO [AUTHENTICATIONFAILED] Authentication failed"),
        "{refused}"
    );
    // An unknown login is answered the same way.
    client.send(b"b LOGIN nobody-here wrong-password\r\n");
    let unknown = client.tagged("b");
    assert!(
        unknown.starts_with("b NO [AUTHENTICATIONFAILED] Authentication failed"),
        "{unknown}"
    );
    // Nothing went upstream: no token was asked for and Dovecot saw no attempt.
    assert_eq!(lab.endpoint.count("client_credentials"), 0);
    assert!(
        !lab.dovecot
            .log()
            .contains(&format!("user=<{}>", lab.mailbox)),
        "{}",
        lab.dovecot.log()
    );
    // The same connection then logs in with the right password.
    client.send(format!("c LOGIN scanner {}\r\n", imap_quoted(DEVICE_PASSWORD)).as_bytes());
    let accepted = client.tagged("c");
    assert!(accepted.contains("c OK"), "{accepted}");
    client.send(b"d LOGOUT\r\n");
    client.tagged("d");
    eventually("the upstream login", || lab.upstream_logins().len() == 1);

    let (records, _lab) = lab.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, Outcome::Ok, "{:#?}", records[0]);
}

#[test]
fn token_trouble_is_told_to_try_later_recorded_apart_and_recovers() {
    let lab = Lab::start("oauth-bridge-faults", 2);

    // The token endpoint answers 503: the device is told to try later, the connection stays.
    lab.endpoint.fail("unavailable");
    let mut client = lab.imap();
    client.send(format!("a LOGIN scanner {}\r\n", imap_quoted(DEVICE_PASSWORD)).as_bytes());
    let refused = client.tagged("a");
    assert!(
        refused.starts_with("a NO [UNAVAILABLE] The mail service cannot sign this account in"),
        "{refused}"
    );
    // POP3 says the same with its own code.
    let mut pop3 = Client::tls(lab.gateway.port("pop3s-legacy"), &lab.ca());
    pop3.expect_line_starting("+OK");
    pop3.send(b"USER scanner\r\n");
    pop3.expect_line_starting("+OK");
    pop3.send(format!("PASS {DEVICE_PASSWORD}\r\n").as_bytes());
    pop3.expect_line_starting("-ERR [SYS/TEMP] The mail service cannot sign this account in");
    pop3.send(b"QUIT\r\n");
    drop(pop3);

    // The endpoint comes back: the same connection logs in.
    lab.endpoint.fail("none");
    client.send(format!("b LOGIN scanner {}\r\n", imap_quoted(DEVICE_PASSWORD)).as_bytes());
    let accepted = client.tagged("b");
    assert!(accepted.contains("b OK"), "{accepted}");

    // max_connections = 2: a second session fits, a third is told the mailbox is full.
    let mut second = lab.imap();
    second.send(format!("a LOGIN scanner {}\r\n", imap_quoted(DEVICE_PASSWORD)).as_bytes());
    assert!(second.tagged("a").contains("a OK"));
    let mut third = lab.imap();
    third.send(format!("a LOGIN scanner {}\r\n", imap_quoted(DEVICE_PASSWORD)).as_bytes());
    let busy = third.tagged("a");
    assert!(
        busy.starts_with("a NO [LIMIT] This mailbox has as many sessions open as it may"),
        "{busy}"
    );
    // One session ends: its place comes free.
    second.send(b"z LOGOUT\r\n");
    second.tagged("z");
    drop(second);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut tag = 0;
    loop {
        tag += 1;
        third.send(format!("b{tag} LOGIN scanner {}\r\n", imap_quoted(DEVICE_PASSWORD)).as_bytes());
        let reply = third.tagged(&format!("b{tag}"));
        if reply.contains(&format!("b{tag} OK")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the mailbox stayed full: {reply}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The upstream refuses the token (it names another subject): the device hears "try
    // later", the record keeps Dovecot's JSON status.
    let mut stranger = lab.imap();
    stranger.send(format!("a LOGIN stranger {STRANGER_PASSWORD}\r\n").as_bytes());
    let refused_token = stranger.tagged("a");
    assert!(
        refused_token.starts_with("a NO [UNAVAILABLE]"),
        "{refused_token}"
    );
    // The refused token was dropped: trying again fetches a new one rather than presenting
    // the same token until it expires.
    let requests = lab.endpoint.count("client_credentials");
    stranger.send(format!("b LOGIN stranger {STRANGER_PASSWORD}\r\n").as_bytes());
    let again = stranger.tagged("b");
    assert!(again.starts_with("b NO [UNAVAILABLE]"), "{again}");
    assert_eq!(lab.endpoint.count("client_credentials"), requests + 1);
    stranger.send(b"z LOGOUT\r\n");
    drop(stranger);
    for c in [&mut client, &mut third] {
        c.send(b"z LOGOUT\r\n");
        c.tagged("z");
    }
    drop((client, third));

    let (records, _lab) = lab.records();
    let with = |outcome: Outcome| -> Vec<&SessionRecord> {
        records.iter().filter(|r| r.outcome == outcome).collect()
    };
    let unavailable = with(Outcome::TokenUnavailable);
    assert_eq!(unavailable.len(), 1, "{records:#?}");
    let detail = unavailable[0].detail.as_deref().unwrap_or_default();
    assert!(detail.contains("unreachable"), "{detail}");
    // The stranger's session: both its logins refused for the token, recorded once.
    let refused = with(Outcome::TokenRefused);
    assert_eq!(refused.len(), 1, "{records:#?}");
    let detail = refused[0].detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains("refused the access token") && detail.contains("status"),
        "{detail}"
    );
    assert_eq!(with(Outcome::Ok).len(), 3, "{records:#?}");
}

#[test]
fn a_reload_replaces_a_local_password_while_a_session_with_the_old_one_goes_on() {
    const NEW_PASSWORD: &str = "n3w-printer-pw";
    let lab = Lab::start("oauth-bridge-reload", 50);
    let login = |client: &mut Client, tag: &str, password: &str| {
        client.send(format!("{tag} LOGIN scanner {}\r\n", imap_quoted(password)).as_bytes());
        client.tagged(tag)
    };
    let mut live = lab.imap();
    assert!(login(&mut live, "a", DEVICE_PASSWORD).contains("a OK"));

    // The scanner's password changed in the config; the apps and token cache did not.
    let path = lab.gateway.config_path();
    let config = std::fs::read_to_string(&path).expect("the config");
    let field = "login = \"scanner\"\npassword_hash = '";
    let start = config.find(field).expect("the scanner account") + field.len();
    let end = start + config[start..].find('\'').expect("the hash's end");
    let changed = format!(
        "{}{}{}",
        &config[..start],
        password_hash(NEW_PASSWORD),
        &config[end..]
    );
    std::fs::write(&path, changed).expect("write the config");
    lab.gateway.hang_up();
    let log = lab.gateway.wait_for_log("local accounts reloaded", 1);
    lab.gateway.wait_for_log("config reloaded", 1);
    assert!(!log.contains("needs a restart"), "{log}");

    // New logins: the old password is refused, the new one opens the mailbox.
    let mut client = lab.imap();
    let refused = login(&mut client, "b", DEVICE_PASSWORD);
    assert!(
        refused.starts_with("b NO [AUTHENTICATIONFAILED]"),
        "{refused}"
    );
    assert!(login(&mut client, "c", NEW_PASSWORD).contains("c OK"));
    // The session logged in with the old password goes on.
    for mut session in [live, client] {
        session.send(b"n NOOP\r\nz LOGOUT\r\n");
        assert!(session.tagged("n").starts_with("n OK"));
        assert!(session.tagged("z").contains("\r\nz OK"));
    }
    eventually("two upstream logins", || lab.upstream_logins().len() == 2);
    let (records, lab) = lab.records();
    assert_eq!(records.len(), 2, "{records:#?}");
    assert!(records.iter().all(|r| r.outcome == Outcome::Ok));
    assert_no_secret_in_gateway_files(
        &lab.gateway,
        &[DEVICE_PASSWORD.as_bytes(), NEW_PASSWORD.as_bytes(), b"eyJ"],
    );
}

/// A reload that adds an app (a new registration with its own secret) and an account on it:
/// the broker is opened anew on the token cache, so the new device logs in at once with a
/// token of the new app, while a session of the old app goes on and its cached token stays
/// in use.
#[test]
fn a_reload_adds_an_app_and_its_account_without_a_restart() {
    let lab = Lab::start("oauth-bridge-new-app", 50);
    let login = |client: &mut Client, tag: &str, user: &str, password: &str| {
        client.send(format!("{tag} LOGIN {user} {}\r\n", imap_quoted(password)).as_bytes());
        client.tagged(tag)
    };
    let mut live = lab.imap();
    assert!(login(&mut live, "a", "scanner", DEVICE_PASSWORD).contains("a OK"));
    assert_eq!(lab.endpoint.count("client_credentials"), 1);

    let secret_file = lab.scratch.path().join("later.secret");
    std::fs::write(&secret_file, format!("{LATER_SECRET}\n")).expect("secret");
    let path = lab.gateway.config_path();
    let config = std::fs::read_to_string(&path).expect("the config");
    let first_account = config.find("[[account]]").expect("an account");
    let app = format!(
        "[[oauth]]\nname = \"later-app\"\ntoken_url = \"{url}\"\nclient_id = \"later-app\"\n\
         client_secret_file = \"{secret}\"\nscope = \"https://outlook.office365.com/.default\"\n\
         grant = \"client_credentials\"\n\n\
         [[account]]\nlogin = \"helpdesk\"\npassword_hash = '{hash}'\nmailbox = \"{mailbox}\"\n\
         oauth = \"later-app\"\n\n",
        url = lab.endpoint.token_url(),
        secret = secret_file.display(),
        hash = password_hash(HELPDESK_PASSWORD),
        mailbox = lab.mailbox,
    );
    let changed = format!(
        "{}{app}{}",
        &config[..first_account],
        &config[first_account..]
    );
    std::fs::write(&path, changed).expect("write the config");
    lab.gateway.hang_up();
    let log = lab
        .gateway
        .wait_for_log("OAuth apps and token cache reloaded", 1);
    lab.gateway.wait_for_log("config reloaded", 1);
    assert!(!log.contains("needs a restart"), "{log}");

    // The new device, with a token of the new app; the scanner again, on its cached token.
    let mut helpdesk = lab.imap();
    let reply = login(&mut helpdesk, "b", "helpdesk", HELPDESK_PASSWORD);
    assert!(reply.contains("b OK"), "{reply}");
    let mut scanner = lab.imap();
    assert!(login(&mut scanner, "c", "scanner", DEVICE_PASSWORD).contains("c OK"));
    assert_eq!(
        lab.endpoint.count("client_credentials"),
        2,
        "one request for the new app, none for the cached token: {}",
        lab.endpoint.stats()
    );
    for mut session in [live, helpdesk, scanner] {
        session.send(b"n NOOP\r\nz LOGOUT\r\n");
        assert!(session.tagged("n").starts_with("n OK"));
        assert!(session.tagged("z").contains("\r\nz OK"));
    }
    eventually("three upstream logins", || lab.upstream_logins().len() == 3);
    let (records, lab) = lab.records();
    assert_eq!(records.len(), 3, "{records:#?}");
    assert!(
        records.iter().all(|r| r.outcome == Outcome::Ok),
        "{records:#?}"
    );
    assert_no_secret_in_gateway_files(
        &lab.gateway,
        &[
            LATER_SECRET.as_bytes(),
            HELPDESK_PASSWORD.as_bytes(),
            b"eyJ",
        ],
    );
}
