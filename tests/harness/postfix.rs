//! A private Postfix started by `lab/postfix.sh`, stopped when dropped: the scanner's SMTP
//! target, or a submission server that authenticates through a lab Dovecot and delivers into
//! Maildirs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::lab_script::parse_env;
use crate::{repo_root, run_ok, Dovecot, DovecotOptions, Scratch};

/// A running lab Postfix and the facts its start script wrote down.
pub struct Postfix {
    dir: PathBuf,
    env: HashMap<String, String>,
}

impl Postfix {
    /// Starts Postfix with its state in `dir`, passing `args` to `lab/postfix.sh start`.
    pub fn start(dir: &Path, args: &[&str]) -> Postfix {
        assert!(
            Path::new("/usr/sbin/postfix").exists(),
            "postfix is not installed: apt-get install postfix libsasl2-modules (lab/install.sh)"
        );
        let script = repo_root().join("lab/postfix.sh");
        run_ok(
            Command::new("bash")
                .arg(&script)
                .arg("start")
                .arg(dir)
                .args(args),
        );
        let env_text = std::fs::read_to_string(dir.join("ports.env")).expect("lab wrote ports.env");
        Postfix {
            dir: dir.to_path_buf(),
            env: parse_env(&env_text),
        }
    }

    /// A value from `ports.env`, e.g. `SMTP_PORT`.
    pub fn var(&self, name: &str) -> &str {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("ports.env has no {name}: {:?}", self.env))
    }

    pub fn port(&self, name: &str) -> u16 {
        self.var(name).parse().expect("a port number")
    }

    /// The test CA that signed Postfix's certificate.
    pub fn ca_file(&self) -> PathBuf {
        PathBuf::from(self.var("CA_FILE"))
    }

    /// Everything Postfix has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.var("POSTFIX_LOG")).unwrap_or_default()
    }

    /// The messages delivered to `user`'s Maildir (submission mode), sorted by file name.
    pub fn delivered(&self, user: &str) -> Vec<Vec<u8>> {
        let maildir = Path::new(self.var("MAIL_DIR")).join(user);
        let mut files: Vec<PathBuf> = ["new", "cur"]
            .iter()
            .flat_map(|sub| std::fs::read_dir(maildir.join(sub)).into_iter().flatten())
            .map(|entry| entry.expect("maildir entry").path())
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| std::fs::read(f).expect("read message"))
            .collect()
    }

    /// The address that delivers into `user`'s Maildir (submission mode).
    pub fn address(&self, user: &str) -> String {
        format!("{user}@{}", self.var("MAIL_DOMAIN"))
    }

    /// The `count` smtpd sessions (see [`Postfix::smtpd_sessions`]) that have a line ending
    /// with `line_end`, once they have all ended. Postfix writes its log through postlogd, a
    /// moment after the client has seen the replies, so this waits up to 10 s; more than
    /// `count` such sessions fail the test.
    pub fn ended_sessions_with(&self, line_end: &str, count: usize) -> Vec<Vec<String>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let sessions: Vec<Vec<String>> = self
                .smtpd_sessions()
                .into_iter()
                .filter(|s| s.iter().any(|l| l.ends_with(line_end)))
                .collect();
            assert!(sessions.len() <= count, "{sessions:#?}");
            if sessions.len() == count {
                return sessions;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} sessions with {line_end:?} logged within 10 s; log:\n{}",
                sessions.len(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The log once it contains `text`, waiting up to 10 s as
    /// [`Postfix::ended_sessions_with`] does.
    pub fn log_with(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(text) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "no {text:?} logged within 10 s:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The smtpd sessions in the log so far, each the lines of one client connection from
    /// `connect from` to `disconnect from`. smtpd processes serve one client at a time but
    /// several in turn, so lines are grouped by process id and cut at each disconnect: the TLS
    /// version and the SASL user of one connection are on separate lines.
    pub fn smtpd_sessions(&self) -> Vec<Vec<String>> {
        let mut open: HashMap<String, Vec<String>> = HashMap::new();
        let mut sessions = Vec::new();
        for line in self.log().lines() {
            let Some(pid) = line
                .split_once("postfix/smtpd[")
                .and_then(|(_, rest)| rest.split_once(']'))
                .map(|(pid, _)| pid.to_string())
            else {
                continue;
            };
            let session = open.entry(pid.clone()).or_default();
            session.push(line.to_string());
            if line.contains(": disconnect from ") {
                sessions.extend(open.remove(&pid));
            }
        }
        sessions
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo_root().join("lab/postfix.sh"))
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

/// A submission server and the Dovecot whose auth service it asks.
pub struct SubmissionLab {
    /// Declared first so that it stops first: Dovecot's auth processes wait for connected
    /// smtpd processes to leave, which makes stopping Dovecot first take seconds.
    pub postfix: Postfix,
    pub dovecot: Dovecot,
}

/// A submission server as Exchange Online is after the TLS cutoff: a lab Postfix that takes
/// only TLS `min_tls` or newer, on a STARTTLS port (`SMTP_PORT`) and an implicit-TLS port
/// (`SMTPS_PORT`), authenticates through the lab Dovecot's auth service (users `alice` and
/// `tricky`) and delivers mail for `alice` and `tricky` into Maildirs. Both live in `scratch`.
pub fn submission_lab(scratch: &Scratch, min_tls: &str) -> SubmissionLab {
    let dovecot_dir = scratch.path().join("dovecot");
    let auth_socket = dovecot_dir.join("sasl/auth-postfix");
    let dovecot = Dovecot::start(
        &dovecot_dir,
        &DovecotOptions {
            messages: 0,
            extra_args: vec!["--auth-listener".into(), auth_socket.display().to_string()],
            ..DovecotOptions::default()
        },
    );
    let postfix = Postfix::start(
        &scratch.path().join("postfix"),
        &[
            "--min-tls",
            min_tls,
            "--submission",
            &auth_socket.display().to_string(),
            "--certs",
            &dovecot_dir.join("certs").display().to_string(),
        ],
    );
    SubmissionLab { postfix, dovecot }
}
