//! The local OAuth 2.0 token endpoint (`tests/token_endpoint/`), started for one test and
//! stopped when dropped. Its tokens are HS256 JWTs under the lab Dovecot's key, so Dovecot's
//! oauth2 passdb is what accepts or refuses them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use crate::gateway::built_binary;
use crate::run_ok;

/// Who the endpoint knows and how it answers.
#[derive(Debug, Clone)]
pub struct TokenEndpointOptions {
    /// The base64 HS256 key file (the lab Dovecot's `OAUTH2_KEY_FILE`).
    pub key_file: PathBuf,
    /// Access token lifetime in seconds.
    pub lifetime_secs: u64,
    /// Device code polls answered `authorization_pending` before the sign-in "happens".
    pub approve_after: u32,
    /// `(client_id, secret, subject)` of clients with a client secret.
    pub secret_clients: Vec<(String, String, String)>,
    /// `(client_id, certificate, subject)` of clients signing assertions with a certificate.
    pub cert_clients: Vec<(String, AppCertificate, String)>,
    /// `(client_id, subject)` of public device-code clients.
    pub device_clients: Vec<(String, String)>,
}

impl TokenEndpointOptions {
    pub fn new(key_file: &Path) -> Self {
        TokenEndpointOptions {
            key_file: key_file.to_path_buf(),
            lifetime_secs: 3600,
            approve_after: 2,
            secret_clients: Vec::new(),
            cert_clients: Vec::new(),
            device_clients: Vec::new(),
        }
    }
}

/// An app's certificate, its RSA key and public key, made by the openssl tool.
#[derive(Debug, Clone)]
pub struct AppCertificate {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    pub public_key: PathBuf,
}

/// A self-signed RSA certificate for an app, in `dir`.
pub fn app_certificate(dir: &Path, name: &str) -> AppCertificate {
    std::fs::create_dir_all(dir).expect("certificate dir");
    let cert = AppCertificate {
        certificate: dir.join(format!("{name}.pem")),
        private_key: dir.join(format!("{name}.key")),
        public_key: dir.join(format!("{name}.pub.pem")),
    };
    run_ok(
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", &format!("/CN={name}"), "-keyout"])
            .arg(&cert.private_key)
            .arg("-out")
            .arg(&cert.certificate),
    );
    let public = run_ok(
        Command::new("openssl")
            .args(["x509", "-pubkey", "-noout", "-in"])
            .arg(&cert.certificate),
    );
    std::fs::write(&cert.public_key, public.stdout).expect("write public key");
    cert
}

/// A running token endpoint.
pub struct TokenEndpoint {
    child: Child,
    base_url: String,
}

impl TokenEndpoint {
    pub fn start(options: &TokenEndpointOptions) -> TokenEndpoint {
        static BIN: OnceLock<PathBuf> = OnceLock::new();
        let bin = BIN.get_or_init(|| built_binary("e2e", "token-endpoint"));
        let mut command = Command::new(bin);
        command
            .arg("--hs256-key")
            .arg(&options.key_file)
            .args(["--lifetime", &options.lifetime_secs.to_string()])
            .args(["--approve-after", &options.approve_after.to_string()]);
        for (id, secret, subject) in &options.secret_clients {
            command.args(["--secret-client", &format!("{id},{secret},{subject}")]);
        }
        for (id, cert, subject) in &options.cert_clients {
            command.args([
                "--cert-client",
                &format!(
                    "{id},{},{},{subject}",
                    cert.certificate.display(),
                    cert.public_key.display()
                ),
            ]);
        }
        for (id, subject) in &options.device_clients {
            command.args(["--device-client", &format!("{id},{subject}")]);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the token endpoint");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("read the endpoint's address");
        let base_url = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_string();
        TokenEndpoint { child, base_url }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url)
    }

    pub fn device_url(&self) -> String {
        format!("{}/devicecode", self.base_url)
    }

    /// The request counts (`token_requests`, `client_credentials`, `refresh_token`,
    /// `device_authorization`, `device_polls`, `refused`), read with curl.
    pub fn stats(&self) -> serde_json::Value {
        let out = run_ok(Command::new("curl").args(["-sf", &format!("{}/stats", self.base_url)]));
        serde_json::from_slice(&out.stdout).expect("stats JSON")
    }

    /// One count from [`TokenEndpoint::stats`].
    pub fn count(&self, name: &str) -> u64 {
        self.stats()[name].as_u64().expect("a count")
    }

    /// From now on: `"error"` (refuse with `invalid_client`), `"unavailable"` (503) or
    /// `"none"`.
    pub fn fail(&self, mode: &str) {
        self.post(&format!("fail/{mode}"));
    }

    /// From now on, answer token requests `ms` milliseconds late.
    pub fn delay(&self, ms: u64) {
        self.post(&format!("delay/{ms}"));
    }

    fn post(&self, path: &str) {
        run_ok(Command::new("curl").args([
            "-sf",
            "-X",
            "POST",
            &format!("{}/{path}", self.base_url),
        ]));
    }
}

impl Drop for TokenEndpoint {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
