//! A private PostgreSQL started by `lab/postgres.sh` (TLS and scram-sha-256 on loopback), for
//! the fleet store's tests; stopped and removed when dropped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use store::{PostgresTarget, StoreLocation};
use zeroize::Zeroizing;

use crate::lab_script;

/// A running lab PostgreSQL with a database and role `mailtls`.
pub struct Postgres {
    dir: PathBuf,
    env: HashMap<String, String>,
}

impl Postgres {
    /// Starts PostgreSQL in `dir`; panics with the script's output when it cannot.
    pub fn start(dir: &Path) -> Postgres {
        Postgres {
            dir: dir.to_path_buf(),
            env: lab_script::start("postgres.sh", dir, &[]),
        }
    }

    fn value(&self, name: &str) -> &str {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in ports.env: {:?}", self.env))
    }

    /// `postgres://mailtls@127.0.0.1:PORT/mailtls?sslmode=require`.
    pub fn url(&self) -> &str {
        self.value("POSTGRES_URL")
    }

    /// The file holding the role's password.
    pub fn password_file(&self) -> PathBuf {
        PathBuf::from(self.value("POSTGRES_PASSWORD_FILE"))
    }

    /// The role's password.
    pub fn password(&self) -> String {
        std::fs::read_to_string(self.password_file())
            .expect("read the lab PostgreSQL password")
            .trim_end()
            .to_string()
    }

    /// The CA that signed the server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        PathBuf::from(self.value("POSTGRES_CA_FILE"))
    }

    /// Where the store is, with the password and CA to reach it.
    pub fn location(&self) -> StoreLocation {
        StoreLocation::Postgres(
            PostgresTarget::parse(self.url())
                .expect("the lab's URL is a valid store URL")
                .with_password(Zeroizing::new(self.password()))
                .with_ca_file(self.ca_file()),
        )
    }

    /// The `[store]` table of a gateway config writing to the `mailtls` database.
    pub fn store_toml(&self) -> String {
        format!(
            "[store]\nurl = \"{}\"\npassword_file = \"{}\"\nca_file = \"{}\"\n",
            self.url(),
            self.password_file().display(),
            self.ca_file().display()
        )
    }

    /// A new empty database `name` (lower case, digits, `_`) owned by `mailtls`, and where
    /// it is as a store.
    pub fn database(&self, name: &str) -> StoreLocation {
        self.run(&["createdb", name]);
        let url = self.url().replace("/mailtls?", &format!("/{name}?"));
        StoreLocation::Postgres(
            PostgresTarget::parse(&url)
                .expect("a valid store URL")
                .with_password(Zeroizing::new(self.password()))
                .with_ca_file(self.ca_file()),
        )
    }

    /// Runs `sql` in database `name` as the server's superuser (a test staging a fault).
    pub fn sql(&self, name: &str, sql: &str) {
        use std::io::Write;
        let mut child = std::process::Command::new("bash")
            .arg(crate::repo_root().join("lab/postgres.sh"))
            .args(["psql"])
            .arg(&self.dir)
            .arg(name)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("run lab/postgres.sh psql");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(sql.as_bytes())
            .expect("SQL to psql");
        assert!(
            child.wait().expect("psql ran").success(),
            "psql failed on {sql}"
        );
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.value("POSTGRES_LOG")).unwrap_or_default()
    }

    /// Stops the server (an outage); its data and port stay for [`resume`](Postgres::resume).
    pub fn pause(&self) {
        self.run(&["pause"]);
    }

    /// Starts the paused server again on the same port.
    pub fn resume(&self) {
        self.run(&["resume"]);
    }

    fn run(&self, args: &[&str]) {
        let (command, rest) = args.split_first().expect("a command");
        let output = crate::run(
            std::process::Command::new("bash")
                .arg(crate::repo_root().join("lab/postgres.sh"))
                .arg(command)
                .arg(&self.dir)
                .args(rest),
        );
        assert!(
            output.status.success(),
            "lab/postgres.sh {command} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        lab_script::stop("postgres.sh", &self.dir);
    }
}
