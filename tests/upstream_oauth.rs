//! The upstream login machines' OAuth 2.0 bytes against a Dovecot that validates bearer tokens
//! itself: its oauth2 passdb checks HS256 JWTs locally, so Dovecot, not this test, decides
//! whether a token is good. XOAUTH2 and OAUTHBEARER over IMAP and POP3 (implicit TLS) log in
//! with a good token, both with the response on the command line and after a go-ahead; a forged
//! or expired token ends as `TokenRefused` with Dovecot's JSON status.
//!
//! The oauth2 passdb is added by this test to the lab Dovecot's config (appended, then a
//! reload), so nothing in `lab/` has to know about it.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use e2e::evidence::upstream_logins;
use e2e::{run_ok, Dovecot, DovecotOptions, Scratch};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use openssl::ssl::{SslConnector, SslMethod};
use proto::BearerMechanism::{self, OAuthBearer, XOAuth2};
use proto::{BearerToken, Secret, UpstreamAuth, UpstreamDialogue, UpstreamStep};

/// The HS256 key Dovecot validates tokens with.
const KEY: &[u8] = b"mailtls-e2e-hs256-key-0123456789abcdef";

/// A lab Dovecot whose oauth2 passdb accepts HS256 JWTs signed with [`KEY`] whose `sub` names
/// the user, next to the lab's passwd-file passdb.
fn oauth_dovecot(scratch: &Scratch) -> Dovecot {
    let dovecot = Dovecot::start(&scratch.path().join("dovecot"), &DovecotOptions::default());
    let dir = Path::new(dovecot.var("LAB_DIR")).to_path_buf();
    // Dovecot reads the key as base64 from <azp or default>/<alg>/<kid or default>.
    let key_dir = dir.join("keys/default/HS256");
    fs::create_dir_all(&key_dir).expect("key dir");
    fs::write(key_dir.join("default"), STANDARD.encode(KEY)).expect("key");
    let ext = dir.join("oauth2.conf.ext");
    fs::write(
        &ext,
        format!(
            "introspection_mode = local\nlocal_validation_key_dict = fs:posix:prefix={}/keys/\nusername_attribute = sub\n",
            dir.display()
        ),
    )
    .expect("oauth2 config");
    // A later auth_mechanisms replaces the lab's; passdbs are tried in order, so a token
    // passes the passwd-file one (no password matches it) and is decided by the oauth2 one.
    let conf = dovecot.var("DOVECOT_CONF").to_string();
    let mut text = fs::read_to_string(&conf).expect("dovecot.conf");
    text.push_str(&format!(
        "\n# Added by tests/upstream_oauth.rs\nauth_mechanisms = plain login xoauth2 oauthbearer\n\
         passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {}\n}}\n",
        ext.display()
    ));
    fs::write(&conf, text).expect("dovecot.conf");
    run_ok(std::process::Command::new("dovecot").args(["-c", &conf, "reload"]));
    wait_for_mechanisms(&dovecot);
    dovecot
}

/// Waits until a fresh IMAP greeting lists the token mechanisms: the reload has taken.
fn wait_for_mechanisms(dovecot: &Dovecot) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut tls = connect(dovecot, "IMAPS_PORT");
        let mut greeting = vec![0u8; 4096];
        let n = tls.read(&mut greeting).unwrap_or(0);
        let greeting = String::from_utf8_lossy(&greeting[..n]).into_owned();
        if greeting.contains("AUTH=XOAUTH2") && greeting.contains("AUTH=OAUTHBEARER") {
            return;
        }
        assert!(Instant::now() < deadline, "reload not taken: {greeting}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn connect(dovecot: &Dovecot, port: &str) -> openssl::ssl::SslStream<TcpStream> {
    let tcp = TcpStream::connect(("127.0.0.1", dovecot.port(port))).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut connector = SslConnector::builder(SslMethod::tls_client()).expect("TLS client");
    connector.set_ca_file(dovecot.ca_file()).expect("lab CA");
    connector
        .build()
        .connect("localhost", tcp)
        .expect("TLS with Dovecot")
}

/// An HS256 JWT for `sub` that expires `lifetime` seconds from now, signed with `key`;
/// `padding` claim bytes make it as long as a real Entra ID token.
fn jwt(sub: &str, lifetime: i64, key: &[u8], padding: usize) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = format!(
        r#"{{"sub":"{sub}","exp":{},"pad":"{}"}}"#,
        now + lifetime,
        "x".repeat(padding)
    );
    let signed = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims));
    let key = PKey::hmac(key).expect("HMAC key");
    let mut signer = Signer::new(MessageDigest::sha256(), &key).expect("signer");
    signer.update(signed.as_bytes()).expect("sign");
    let signature = URL_SAFE_NO_PAD.encode(signer.sign_to_vec().expect("sign"));
    format!("{signed}.{signature}")
}

/// What one login did: the commands and responses written (each cut to its first line's
/// verb, never the token), and how it ended.
struct Login {
    writes: Vec<String>,
    end: UpstreamStep,
}

/// Runs the upstream machine of `protocol` ("imap" or "pop3") against Dovecot's implicit-TLS
/// port with `token`.
fn login(dovecot: &Dovecot, protocol: &str, mechanism: BearerMechanism, token: &str) -> Login {
    let token = BearerToken::new("alice", Secret::new(token), mechanism).expect("a token");
    let auth = UpstreamAuth::Bearer(token);
    let (mut machine, port): (Box<dyn UpstreamDialogue>, _) = match protocol {
        "imap" => (
            Box::new(proto::imap::UpstreamLogin::new(auth, false)),
            "IMAPS_PORT",
        ),
        _ => (
            Box::new(proto::pop3::UpstreamLogin::new(auth, false)),
            "POP3S_PORT",
        ),
    };
    let mut tls = connect(dovecot, port);
    let mut writes = Vec::new();
    let mut chunk = vec![0u8; 4096];
    loop {
        match machine.next() {
            UpstreamStep::NeedInput => {
                let n = tls.read(&mut chunk).expect("read from Dovecot");
                assert!(n > 0, "Dovecot closed the connection during login");
                machine.feed(&chunk[..n]);
            }
            UpstreamStep::Write(bytes) => {
                tls.write_all(&bytes).expect("write to Dovecot");
                writes.push(shape(&bytes));
            }
            UpstreamStep::StartTls => panic!("no STARTTLS on an implicit-TLS port"),
            end => return Login { writes, end },
        }
    }
}

/// A write as the test compares it: a command with its arguments that are not base64, or
/// `<base64 N bytes>` for a response line.
fn shape(bytes: &[u8]) -> String {
    let line = String::from_utf8_lossy(bytes).trim_end().to_string();
    let words: Vec<&str> = line.split(' ').collect();
    let is_b64 = |w: &str| w.len() > 16 && STANDARD.decode(w).is_ok();
    match words.last() {
        Some(last) if is_b64(last) => {
            let head = words[..words.len() - 1].join(" ");
            format!("{head} <base64>").trim_start().to_string()
        }
        _ => line,
    }
}

#[test]
fn good_tokens_log_in_with_both_mechanisms_over_imap_and_pop3() {
    let scratch = Scratch::new("upstream-oauth-good");
    let dovecot = oauth_dovecot(&scratch);
    let short = jwt("alice", 600, KEY, 0);
    let long = jwt("alice", 600, KEY, 1500);
    let mut logins = 0;
    for mechanism in [XOAuth2, OAuthBearer] {
        let name = mechanism.name();
        let imap = login(&dovecot, "imap", mechanism, &long);
        assert!(
            matches!(imap.end, UpstreamStep::Authenticated { .. }),
            "{:?}",
            imap.end
        );
        // Dovecot offers SASL-IR: the token rides on the command.
        assert_eq!(imap.writes, [format!("m1 AUTHENTICATE {name} <base64>")]);
        // A short token fits the 255-octet POP3 AUTH line; a long one follows the go-ahead.
        for (token, writes) in [
            (&short, vec!["CAPA".into(), format!("AUTH {name} <base64>")]),
            (
                &long,
                vec!["CAPA".into(), format!("AUTH {name}"), "<base64>".into()],
            ),
        ] {
            let pop3 = login(&dovecot, "pop3", mechanism, token);
            assert!(
                matches!(pop3.end, UpstreamStep::Authenticated { .. }),
                "{:?}",
                pop3.end
            );
            assert_eq!(pop3.writes, writes);
        }
        logins += 3;
    }
    let lines = upstream_logins(&dovecot, "alice", logins);
    for (service, method, count) in [
        ("imap-login", "XOAUTH2", 1),
        ("imap-login", "OAUTHBEARER", 1),
        ("pop3-login", "XOAUTH2", 2),
        ("pop3-login", "OAUTHBEARER", 2),
    ] {
        let seen = lines
            .iter()
            .filter(|l| l.contains(service) && l.contains(&format!("method={method},")))
            .count();
        assert_eq!(seen, count, "{service} {method}: {lines:#?}");
    }
}

#[test]
fn forged_and_expired_tokens_are_refused_with_dovecots_json_status() {
    let scratch = Scratch::new("upstream-oauth-refused");
    let dovecot = oauth_dovecot(&scratch);
    let forged = jwt("alice", 600, b"not-the-key", 1500);
    let expired = jwt("alice", -60, KEY, 0);
    // Dovecot 2.3 words the status differently for each mechanism.
    for (mechanism, answer, status) in [
        (
            XOAuth2,
            "",
            r#"{"status":"401","schemes":"bearer","scope":"mail"}"#,
        ),
        (OAuthBearer, "AQ==", r#"{"status":"invalid_token"}"#),
    ] {
        for (protocol, text) in [
            ("imap", "[AUTHENTICATIONFAILED] Authentication failed."),
            ("pop3", "[AUTH] Authentication failed."),
        ] {
            for token in [&forged, &expired] {
                let refused = login(&dovecot, protocol, mechanism, token);
                assert_eq!(
                    refused.end,
                    UpstreamStep::TokenRefused {
                        text: text.into(),
                        oauth_error: Some(status.into()),
                    },
                    "{protocol} {}",
                    mechanism.name()
                );
                // The failure challenge was answered as the mechanism wants.
                assert_eq!(refused.writes.last().map(String::as_str), Some(answer));
            }
        }
    }
    let log = dovecot.log();
    assert!(!log.contains("Login: user=<alice>"), "{log}");
    for reason in ["Incorrect JWT signature", "Token has expired"] {
        let lines = log
            .lines()
            .filter(|l| l.contains("oauth2 failed") && l.contains(reason))
            .count();
        assert_eq!(lines, 4, "{reason}: {log}");
    }
}
