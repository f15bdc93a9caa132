//! OAuth 2.0 tokens from a real local token endpoint, through the `oauth` crate and the
//! `mailtls oauth` commands, into a real Dovecot that validates them itself (its oauth2
//! passdb): the mailbox `oauthonly` has no password, so only a good token opens it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use e2e::secrets::leaked;
use e2e::{
    app_certificate, mailtls_bin, oauth_dovecot, repo_root, run, run_ok, Dovecot, Scratch,
    TokenEndpoint, TokenEndpointOptions,
};
use oauth::settings::{
    AccountSettings, AppSettings, CacheKeySource, ClientAuth, Grant, OAuthSettings,
    TokenCacheSettings,
};
use oauth::{Secret, TokenBroker, TokenError};

const SECRET: &str = "app-secret-Zq8";

/// Logs in to Dovecot as `user` with `token` over `mechanism`, from Python's imaplib; saves the
/// INBOX in `out` and returns the client's output when Dovecot accepted the token.
fn bearer_login(
    dovecot: &Dovecot,
    user: &str,
    token: &Secret,
    mechanism: &str,
    out: &Path,
) -> Result<String, String> {
    let mut child = Command::new("python3")
        .arg(repo_root().join("tests/clients/imap_bearer_login.py"))
        .arg(dovecot.port("IMAPS_PORT").to_string())
        .arg(dovecot.ca_file())
        .args([user, mechanism])
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(token.expose())
        .expect("token to the client");
    let output = child.wait_with_output().expect("client ran");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The messages the client saved, in order.
fn saved(out: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(out)
        .expect("saved messages")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read(f).expect("read"))
        .collect()
}

fn key_file(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let key = run_ok(Command::new("openssl").args(["rand", "-base64", "32"])).stdout;
    std::fs::write(&path, key).expect("write key");
    path
}

/// The oauth Dovecot, a token endpoint that knows the client `secret-client` (its tokens open
/// the token-only mailbox), a cache key and where the cache goes.
struct Lab {
    endpoint: TokenEndpoint,
    dovecot: Dovecot,
    /// The mailbox no password opens.
    user: String,
    key: PathBuf,
    cache: PathBuf,
    scratch: Scratch,
}

impl Lab {
    /// `adjust` may add clients and change the endpoint's answers before it starts.
    fn start(label: &str, adjust: impl FnOnce(&mut TokenEndpointOptions, &Path, &str)) -> Lab {
        let scratch = Scratch::new(label);
        let dovecot = oauth_dovecot(&scratch);
        let user = dovecot.var("OAUTH_ONLY_USER").to_string();
        let mut options = TokenEndpointOptions::new(Path::new(dovecot.var("OAUTH2_KEY_FILE")));
        options
            .secret_clients
            .push(("secret-client".into(), SECRET.into(), user.clone()));
        adjust(&mut options, scratch.path(), &user);
        Lab {
            endpoint: TokenEndpoint::start(&options),
            key: key_file(scratch.path(), "token.key"),
            cache: scratch.path().join("tokens.enc"),
            dovecot,
            user,
            scratch,
        }
    }

    fn path(&self) -> &Path {
        self.scratch.path()
    }

    /// The client-credentials app with the client secret.
    fn secret_app(&self) -> AppSettings {
        let secret_file = self.path().join("app.secret");
        std::fs::write(&secret_file, format!("{SECRET}\n")).expect("write secret");
        AppSettings {
            name: "secret-app".into(),
            token_url: self.endpoint.token_url(),
            device_url: None,
            client_id: "secret-client".into(),
            client_auth: ClientAuth::SecretFile(secret_file),
            scope: "https://outlook.office365.com/.default".into(),
            grant: Grant::ClientCredentials,
            ca_file: None,
        }
    }

    fn settings(&self, apps: Vec<AppSettings>) -> OAuthSettings {
        OAuthSettings {
            apps,
            accounts: Vec::new(),
            token_cache: Some(TokenCacheSettings {
                path: self.cache.clone(),
                key: CacheKeySource::File(self.key.clone()),
            }),
        }
    }

    fn broker(&self, apps: Vec<AppSettings>) -> TokenBroker {
        TokenBroker::open(&self.settings(apps)).expect("broker")
    }

    /// [`bearer_login`] as the token-only user, saving the INBOX under `name`.
    fn login(&self, token: &Secret, mechanism: &str, name: &str) -> Result<String, String> {
        bearer_login(
            &self.dovecot,
            &self.user,
            token,
            mechanism,
            &self.path().join(name),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_tokens_from_a_secret_and_a_certificate_open_a_token_only_mailbox() {
    let mut cert = None;
    let lab = Lab::start("oauth-cc", |options, dir, user| {
        let made = app_certificate(&dir.join("app-cert"), "cert-app");
        options
            .cert_clients
            .push(("cert-client".into(), made.clone(), user.into()));
        cert = Some(made);
    });
    let cert = cert.expect("certificate made");
    let cert_app = AppSettings {
        name: "cert-app".into(),
        client_id: "cert-client".into(),
        client_auth: ClientAuth::Certificate {
            certificate: cert.certificate.clone(),
            private_key: cert.private_key.clone(),
        },
        ..lab.secret_app()
    };
    let broker = lab.broker(vec![lab.secret_app(), cert_app]);

    let by_secret = broker
        .token("secret-app", &lab.user)
        .await
        .expect("secret grant");
    let by_certificate = broker
        .token("cert-app", &lab.user)
        .await
        .expect("certificate grant");
    assert_eq!(lab.endpoint.count("client_credentials"), 2);
    assert_eq!(
        lab.endpoint.count("refused"),
        0,
        "the assertion was accepted"
    );

    let answer = lab
        .login(&by_secret.token, "xoauth2", "xoauth2")
        .expect("Dovecot accepts the client-secret token over XOAUTH2");
    assert!(answer.starts_with("LOGGED-IN"), "{answer}");
    assert_eq!(
        saved(&lab.path().join("xoauth2")),
        lab.dovecot.stored_messages(&lab.user),
        "byte for byte"
    );
    lab.login(&by_certificate.token, "oauthbearer", "oauthbearer")
        .expect("Dovecot accepts the certificate-assertion token over OAUTHBEARER");
    let log = lab.dovecot.log();
    for method in ["XOAUTH2", "OAUTHBEARER"] {
        assert!(
            log.contains(&format!("Login: user=<{}>, method={method}", lab.user)),
            "no {method} login in Dovecot's log:\n{log}"
        );
    }

    // Dovecot checks the signature: the same token with its signature altered is refused.
    let mut forged = by_secret.token.expose().to_vec();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let refused = lab
        .login(&Secret::new(forged), "xoauth2", "forged")
        .expect_err("a forged token is refused");
    assert!(refused.contains("REFUSED"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_token_request_serves_22_logins_and_1000_concurrent_ones() {
    let lab = Lab::start("oauth-flight", |_, _, _| {});
    let broker = Arc::new(lab.broker(vec![lab.secret_app()]));

    let first = broker.token("secret-app", &lab.user).await.expect("token");
    for _ in 1..22 {
        let again = broker.token("secret-app", &lab.user).await.expect("token");
        assert_eq!(again.token, first.token, "the cached token is reused");
    }
    assert_eq!(
        lab.endpoint.count("token_requests"),
        1,
        "22 logins, one request"
    );

    // A thousand logins for another mailbox, all at once, before any token exists for it,
    // while the endpoint takes its time to answer.
    lab.endpoint.delay(300);
    let logins: Vec<_> = (0..1000)
        .map(|_| {
            let broker = broker.clone();
            tokio::spawn(async move { broker.token("secret-app", "shared@contoso.com").await })
        })
        .collect();
    let mut tokens = Vec::new();
    for login in logins {
        tokens.push(login.await.expect("task").expect("token"));
    }
    assert!(tokens.iter().all(|t| t.token == tokens[0].token));
    assert_ne!(tokens[0].token, first.token, "one token per mailbox");
    assert_eq!(
        lab.endpoint.count("token_requests"),
        2,
        "1000 concurrent logins made one request"
    );
    assert_eq!(broker.requests_made(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_survives_a_restart_without_a_request_and_holds_no_token_in_clear() {
    let lab = Lab::start("oauth-cache", |_, _, _| {});
    let before = lab
        .broker(vec![lab.secret_app()])
        .token("secret-app", &lab.user)
        .await
        .expect("token");
    assert_eq!(lab.endpoint.count("token_requests"), 1);

    let bytes = std::fs::read(&lab.cache).expect("cache written");
    for secret in [before.token.expose(), SECRET.as_bytes()] {
        assert_eq!(
            leaked(&bytes, secret),
            None,
            "the cache file holds a secret"
        );
    }
    let mode = std::fs::metadata(&lab.cache)
        .expect("cache")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "cache mode {mode:o}");

    // A restart: a new broker from the same file, then a login.
    let broker = lab.broker(vec![lab.secret_app()]);
    let after = broker
        .token("secret-app", &lab.user)
        .await
        .expect("cached token");
    assert_eq!(after.token, before.token);
    assert_eq!(
        lab.endpoint.count("token_requests"),
        1,
        "no request after the restart"
    );
    lab.login(&after.token, "xoauth2", "m")
        .expect("the cached token still opens the mailbox");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_certificate_is_verified() {
    let lab = Lab::start("oauth-tls", |_, _, _| {});
    // An HTTPS endpoint whose certificate comes from the lab CA: Dovecot's IMAPS port.
    let https = |ca_file: Option<PathBuf>| AppSettings {
        token_url: format!("https://localhost:{}/token", lab.dovecot.port("IMAPS_PORT")),
        ca_file,
        ..lab.secret_app()
    };
    let untrusted = lab.broker(vec![https(None)]);
    let error = untrusted
        .token("secret-app", &lab.user)
        .await
        .expect_err("an unknown CA is refused");
    assert!(matches!(error, TokenError::Unreachable { .. }), "{error}");
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");

    // With the lab CA the TLS handshake succeeds; the failure is now Dovecot not speaking HTTP.
    let trusted = lab.broker(vec![https(Some(lab.dovecot.ca_file()))]);
    let error = trusted
        .token("secret-app", &lab.user)
        .await
        .expect_err("IMAP is no token endpoint");
    assert!(!error.to_string().contains("certificate"), "{error}");
    assert!(!error.to_string().contains("UnknownIssuer"), "{error}");
}

/// A config with one device-code app and one account, for the `mailtls oauth` commands.
fn device_config(dir: &Path, endpoint: &TokenEndpoint, key: &Path, mailbox: &str) -> PathBuf {
    let hash = passwd(b"device password");
    let path = dir.join("mailtls.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[token_cache]
path = "tokens.enc"
key_file = "{key}"

[[oauth]]
name = "delegated"
token_url = "{token_url}"
device_url = "{device_url}"
client_id = "device-client"
scope = "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"
grant = "device_code"

[[account]]
login = "scanner"
password_hash = "{hash}"
mailbox = "{mailbox}"
oauth = "delegated"

[[upstream]]
name = "up"
address = "127.0.0.1:993"
protocol = "imap"
auth = "oauth"

[[listener]]
name = "legacy"
protocol = "imap"
bind = "127.0.0.1:0"
tls = "none"
upstream = "up"
"#,
            key = key.display(),
            token_url = endpoint.token_url(),
            device_url = endpoint.device_url(),
        ),
    )
    .expect("write config");
    path
}

/// `mailtls passwd` fed `password` on standard input.
fn passwd(password: &[u8]) -> String {
    let mut child = Command::new(mailtls_bin())
        .arg("passwd")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("mailtls passwd");
    use std::io::Write;
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(password).expect("password");
    stdin.write_all(b"\n").expect("newline");
    drop(stdin);
    let output = child.wait_with_output().expect("passwd ran");
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

fn mailtls(args: &[&str], config: &Path) -> Output {
    run(Command::new(mailtls_bin())
        .args(args)
        .arg("--config")
        .arg(config))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_login_stores_a_refresh_token_that_keeps_tokens_coming() {
    let lab = Lab::start("oauth-device", |options, _, user| {
        options
            .device_clients
            .push(("device-client".into(), user.into()));
        options.approve_after = 2;
        options.lifetime_secs = 8;
    });
    let config = device_config(lab.path(), &lab.endpoint, &lab.key, &lab.user);

    let login = mailtls(&["oauth", "login", "scanner"], &config);
    let said = text(&login);
    assert!(login.status.success(), "{said}");
    assert!(said.contains("enter the code MTLS-TEST"), "{said}");
    assert!(
        said.contains(&format!("{}/device", lab.endpoint.base_url())),
        "{said}"
    );
    assert!(said.contains("refresh token stored"), "{said}");
    assert_eq!(lab.endpoint.count("device_authorization"), 1);
    assert!(
        lab.endpoint.count("device_polls") >= 2,
        "polled until approved"
    );

    let status = mailtls(&["oauth", "status"], &config);
    let shown = text(&status);
    assert!(status.status.success(), "{shown}");
    let line = shown
        .lines()
        .find(|l| l.starts_with("scanner\t"))
        .unwrap_or_else(|| panic!("no scanner line in\n{shown}"));
    assert!(line.contains("device_code\tvalid until"), "{line}");
    assert!(line.contains("\tyes\t-"), "{line}");

    // The gateway's side: the signed-in token comes from the cache, no request.
    let broker = lab.broker(vec![AppSettings {
        name: "delegated".into(),
        token_url: lab.endpoint.token_url(),
        device_url: Some(lab.endpoint.device_url()),
        client_id: "device-client".into(),
        client_auth: ClientAuth::Public,
        scope: "https://outlook.office.com/IMAP.AccessAsUser.All offline_access".into(),
        grant: Grant::DeviceCode,
        ca_file: None,
    }]);
    let requests = lab.endpoint.count("token_requests");
    let signed_in = broker
        .token("delegated", &lab.user)
        .await
        .expect("cached token");
    assert_eq!(lab.endpoint.count("token_requests"), requests);
    lab.login(&signed_in.token, "xoauth2", "a")
        .expect("the device-code token opens the mailbox");
    for output in [&login, &status] {
        assert_eq!(
            leaked(&text(output).into_bytes(), signed_in.token.expose()),
            None
        );
    }

    // In the last quarter of its 8 s life the token is refreshed before use.
    tokio::time::sleep(Duration::from_millis(6300)).await;
    let refreshed = broker
        .token("delegated", &lab.user)
        .await
        .expect("refreshed token");
    assert_ne!(refreshed.token, signed_in.token);
    assert_eq!(lab.endpoint.count("refresh_token"), 1);
    lab.login(&refreshed.token, "xoauth2", "b")
        .expect("the refreshed token opens the mailbox");
}

/// The running gateway and `mailtls oauth login` share the cache file: a mailbox signed in
/// while the gateway runs is used without a restart, and the gateway's later writes keep it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_while_the_gateway_runs_is_picked_up_and_kept() {
    let lab = Lab::start("oauth-device-live", |options, _, user| {
        options
            .device_clients
            .push(("device-client".into(), user.into()));
        options.approve_after = 1;
        options.lifetime_secs = 8;
    });
    let config = device_config(lab.path(), &lab.endpoint, &lab.key, &lab.user);
    let app = AppSettings {
        name: "delegated".into(),
        token_url: lab.endpoint.token_url(),
        device_url: Some(lab.endpoint.device_url()),
        client_id: "device-client".into(),
        client_auth: ClientAuth::Public,
        scope: "https://outlook.office.com/IMAP.AccessAsUser.All offline_access".into(),
        grant: Grant::DeviceCode,
        ca_file: None,
    };
    // The gateway's broker starts before anyone signed in, and records the failure.
    let broker = lab.broker(vec![app]);
    let before = broker.token("delegated", &lab.user).await;
    assert!(before.is_err(), "no sign-in yet: {before:?}");

    let login = mailtls(&["oauth", "login", "scanner"], &config);
    assert!(login.status.success(), "{}", text(&login));

    // The next login through the gateway uses the new sign-in, from the file.
    let requests = lab.endpoint.count("token_requests");
    let signed_in = broker
        .token("delegated", &lab.user)
        .await
        .expect("the sign-in made while the gateway ran");
    assert_eq!(
        lab.endpoint.count("token_requests"),
        requests,
        "read, not fetched"
    );
    lab.login(&signed_in.token, "xoauth2", "a")
        .expect("the device-code token opens the mailbox");

    // The gateway refreshes and writes the cache: the refresh token survives in the file.
    tokio::time::sleep(Duration::from_millis(6300)).await;
    let refreshed = broker
        .token("delegated", &lab.user)
        .await
        .expect("refreshed token");
    assert_ne!(refreshed.token, signed_in.token);
    let status = mailtls(&["oauth", "status"], &config);
    let shown = text(&status);
    let line = shown
        .lines()
        .find(|l| l.starts_with("scanner\t"))
        .unwrap_or_else(|| panic!("no scanner line in\n{shown}"));
    assert!(
        line.contains("\tyes\t-"),
        "refresh token kept, no error: {line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_faults_are_told_apart_and_recovered_from() {
    let lab = Lab::start("oauth-faults", |_, _, _| {});
    let broker = Arc::new(lab.broker(vec![lab.secret_app()]));

    lab.endpoint.fail("unavailable");
    lab.endpoint.delay(300);
    // Logins arriving together while the endpoint is down share one failed request.
    let logins: Vec<_> = (0..200)
        .map(|_| {
            let broker = broker.clone();
            let user = lab.user.clone();
            tokio::spawn(async move { broker.token("secret-app", &user).await })
        })
        .collect();
    let mut failures = Vec::new();
    for login in logins {
        failures.push(login.await.expect("task").expect_err("503"));
    }
    assert_eq!(
        lab.endpoint.count("token_requests"),
        1,
        "one request for 200 logins"
    );
    let down = failures.pop().expect("a failure");
    assert!(failures.iter().all(|f| *f == down));
    lab.endpoint.delay(0);
    assert!(matches!(down, TokenError::Unreachable { .. }), "{down}");
    assert!(down.to_string().contains("503"), "{down}");

    lab.endpoint.fail("error");
    let refused = broker
        .token("secret-app", &lab.user)
        .await
        .expect_err("refused");
    match &refused {
        TokenError::Refused {
            error, description, ..
        } => {
            assert_eq!(error, "invalid_client");
            assert!(description.as_deref().unwrap_or("").contains("refuses"));
        }
        other => panic!("expected Refused, got {other}"),
    }
    let status = broker.status().await;
    let last = status[0].last_error.as_ref().expect("last error kept");
    assert!(last.message.contains("invalid_client"), "{}", last.message);
    for error in [&down, &refused] {
        assert_eq!(
            leaked(error.to_string().as_bytes(), SECRET.as_bytes()),
            None
        );
        assert_eq!(
            leaked(format!("{error:?}").as_bytes(), SECRET.as_bytes()),
            None
        );
    }

    lab.endpoint.fail("none");
    let token = broker
        .token("secret-app", &lab.user)
        .await
        .expect("recovered");
    assert!(broker.status().await[0].last_error.is_none());
    lab.login(&token.token, "xoauth2", "m")
        .expect("the token after recovery opens the mailbox");

    // Endpoint gone: nothing listens on its port any more.
    let port_gone = lab.endpoint.base_url().to_string();
    drop(lab.endpoint);
    let gone = broker
        .token("secret-app", "other@contoso.com")
        .await
        .expect_err("endpoint stopped");
    assert!(matches!(gone, TokenError::Unreachable { .. }), "{gone}");
    assert!(gone.to_string().contains(&port_gone), "{gone}");
}

#[test]
fn a_wrong_or_missing_cache_key_is_a_clear_startup_error() {
    let lab = Lab::start("oauth-key", |options, _, user| {
        options
            .device_clients
            .push(("device-client".into(), user.into()));
    });
    let config = device_config(lab.path(), &lab.endpoint, &lab.key, &lab.user);
    let login = mailtls(&["oauth", "login", "scanner"], &config);
    assert!(login.status.success(), "{}", text(&login));
    let written = std::fs::read(&lab.cache).expect("cache");

    // Another key: every command refuses to start, and the cache is left as it was.
    key_file(lab.path(), "token.key");
    for args in [&["check-config"][..], &["oauth", "status"], &["gateway"]] {
        let output = mailtls(args, &config);
        let said = text(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {said}");
        assert!(said.contains("wrong key"), "{args:?}: {said}");
        assert!(said.contains("tokens.enc"), "{args:?}: {said}");
    }
    assert_eq!(
        std::fs::read(&lab.cache).expect("cache"),
        written,
        "never reset"
    );

    std::fs::remove_file(&lab.key).expect("remove key");
    let output = mailtls(&["check-config"], &config);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(said.contains("token_cache.key_file"), "{said}");
    assert!(said.contains("openssl rand -base64 32"), "{said}");
}

#[test]
fn mailtls_passwd_prints_an_argon2id_hash_of_standard_input() {
    let hash = passwd("p a\"s\\s wörd".as_bytes());
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    assert!(!hash.contains("wörd"));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let accounts = oauth::LocalAccounts::new(
        &[AccountSettings {
            login: "scanner".into(),
            password_hash: hash,
            mailbox: "scanner@contoso.com".into(),
            oauth: "contoso".into(),
            max_connections: None,
        }],
        1,
    )
    .expect("accounts");
    runtime.block_on(async {
        let right = accounts
            .verify("scanner", &Secret::new("p a\"s\\s wörd"))
            .await
            .expect("check ran");
        assert!(right.is_some());
        let wrong = accounts
            .verify("scanner", &Secret::new("p a\"s\\s word"))
            .await
            .expect("check ran");
        assert!(wrong.is_none());
    });
    let empty = run(Command::new(mailtls_bin())
        .arg("passwd")
        .stdin(Stdio::null()));
    assert_eq!(empty.status.code(), Some(2));
    assert!(text(&empty).contains("empty"));
}
