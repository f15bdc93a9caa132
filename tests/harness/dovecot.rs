//! A private Dovecot started by `lab/dovecot.sh`, stopped when dropped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::{lab_script, Scratch};

/// How the lab Dovecot is configured.
#[derive(Debug, Clone)]
pub struct DovecotOptions {
    /// `ssl_min_protocol`, e.g. "TLSv1.2" (Exchange Online after the cutoff).
    pub min_tls: String,
    /// Allow logins without TLS (`disable_plaintext_auth = no`).
    pub plaintext_auth: bool,
    /// Number of small test messages in each mailbox.
    pub messages: usize,
    /// Extra arguments passed to `lab/dovecot.sh start`.
    pub extra_args: Vec<String>,
}

impl Default for DovecotOptions {
    fn default() -> Self {
        DovecotOptions {
            min_tls: "TLSv1.2".into(),
            plaintext_auth: false,
            messages: 3,
            extra_args: Vec::new(),
        }
    }
}

/// A running lab Dovecot and the facts its start script wrote down.
pub struct Dovecot {
    dir: PathBuf,
    env: HashMap<String, String>,
}

impl Dovecot {
    /// Starts Dovecot with its state in `dir`.
    pub fn start(dir: &Path, options: &DovecotOptions) -> Dovecot {
        let mut args: Vec<String> = [
            "--min-tls",
            &options.min_tls,
            "--plaintext-auth",
            if options.plaintext_auth { "yes" } else { "no" },
            "--messages",
            &options.messages.to_string(),
        ]
        .map(str::to_string)
        .to_vec();
        args.extend(options.extra_args.iter().cloned());
        Dovecot {
            dir: dir.to_path_buf(),
            env: lab_script::start("dovecot.sh", dir, &args),
        }
    }

    /// A value from `ports.env`, e.g. `IMAPS_PORT`.
    pub fn var(&self, name: &str) -> &str {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("ports.env has no {name}: {:?}", self.env))
    }

    pub fn port(&self, name: &str) -> u16 {
        self.var(name).parse().expect("a port number")
    }

    /// The test CA that signed Dovecot's certificate.
    pub fn ca_file(&self) -> PathBuf {
        PathBuf::from(self.var("CA_FILE"))
    }

    /// Everything Dovecot has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.var("DOVECOT_LOG")).unwrap_or_default()
    }

    /// The maildir files of a user's INBOX, sorted by name (the order Dovecot numbers them).
    pub fn stored_messages(&self, user: &str) -> Vec<Vec<u8>> {
        let mut files: Vec<PathBuf> = ["cur", "new"]
            .iter()
            .flat_map(|sub| {
                std::fs::read_dir(self.dir.join("mail").join(user).join(sub))
                    .into_iter()
                    .flatten()
                    .map(|e| e.expect("maildir entry").path())
            })
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| std::fs::read(f).expect("read message"))
            .collect()
    }
}

/// Dovecot as Exchange Online after the cutoff (`ssl_min_protocol = TLSv1.2`), in `scratch`.
/// The version is spelled out rather than left to the default: the bridge tests prove the
/// gateway is what lets a TLS 1.0 client in, which only holds while Dovecot refuses it.
pub fn post_cutoff_dovecot(scratch: &Scratch) -> Dovecot {
    Dovecot::start(
        &scratch.path().join("dovecot"),
        &DovecotOptions {
            min_tls: "TLSv1.2".into(),
            ..DovecotOptions::default()
        },
    )
}

/// Dovecot validating XOAUTH2/OAUTHBEARER bearer tokens itself (`lab/dovecot.sh --oauth2`),
/// with the mailbox `OAUTH_ONLY_USER` that no password opens. Its HS256 key is
/// `OAUTH2_KEY_FILE`: give it to [`crate::TokenEndpoint`].
pub fn oauth_dovecot(scratch: &Scratch) -> Dovecot {
    Dovecot::start(
        &scratch.path().join("dovecot"),
        &DovecotOptions {
            extra_args: vec!["--oauth2".into()],
            ..DovecotOptions::default()
        },
    )
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        lab_script::stop("dovecot.sh", &self.dir);
    }
}
