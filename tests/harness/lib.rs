//! The whole-system test harness: a private Dovecot (and Postfix) from `lab/`, the real `mailtls` binary
//! with a config written for the test, and helpers to drive real clients against them.
//! Nothing here imitates a mail server.

pub mod chromium;
pub mod clients;
mod dovecot;
pub mod evidence;
pub mod fault_lab;
mod gateway;
pub mod haproxy;
mod lab_script;
pub mod legacy_client;
mod postfix;
mod postgres;
pub mod process;
pub mod scrape;
mod scratch;
pub mod secrets;
pub mod silent_upstream;
pub mod submission;
pub mod tls_socket;
mod token_endpoint;
pub mod xorshift;

pub use dovecot::{oauth_dovecot, post_cutoff_dovecot, Dovecot, DovecotOptions};
pub use gateway::{
    free_port, free_port_on, mailtls_bin, run_mailtls, start_gateway, start_gateway_upstream,
    Gateway, ListenerSpec, UpstreamTls,
};
pub use postfix::{submission_lab, Postfix, SubmissionLab};
pub use postgres::Postgres;
pub use scratch::Scratch;
pub use token_endpoint::{app_certificate, AppCertificate, TokenEndpoint, TokenEndpointOptions};

use std::path::PathBuf;
use std::process::{Command, Output};

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository root")
        .to_path_buf()
}

/// Runs a command to completion, panicking with its output when it cannot be started.
pub fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// Runs a command, panicking with its stdout and stderr unless it succeeds.
pub fn run_ok(command: &mut Command) -> Output {
    let output = run(command);
    assert!(
        output.status.success(),
        "{command:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `date -u -d OFFSET +FORMAT`: the e2e tests have no date library, and the instants only need
/// to be near now.
pub fn utc_date(offset: &str, format: &str) -> String {
    let out = run_ok(Command::new("date").args(["-u", "-d", offset, &format!("+{format}")]));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The `[store]` table a test gateway gets (`sessions.db` in its folder), unless the test's
/// `[gateway]` text goes on with a `[store]` table of its own (e.g. a PostgreSQL `url`).
pub(crate) fn default_store_table(gateway_section: &str) -> &'static str {
    if gateway_section.lines().any(|line| line.trim() == "[store]") {
        ""
    } else {
        "[store]\npath = \"sessions.db\"\n"
    }
}
