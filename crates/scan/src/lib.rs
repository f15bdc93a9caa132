//! Active TLS probes of mail servers: which protocol versions and cipher suites an IMAP, POP3
//! or SMTP endpoint really accepts, its certificate, whether it lets clients log in before
//! STARTTLS, and a verdict against a named policy.
//!
//! The data flow, one module per step:
//! ```text
//! target ─► scanner (resolve, concurrency) ─► connect (per-host gate, proto's STARTTLS dialogue)
//!        ─► probe (wire hellos, judge) ─► ciphers (removal) ─► certificate (chain, verify, facts)
//!        ─► verdict (preset rules) ─► report ─► output (table, JSON, CSV)
//! ```
//! `target`, `probe::judge`, `verdict` and `output` do no I/O and are tested with
//! bytes and values; `connect`, the probe exchange, the TLS 1.3 certificate fetch and
//! `scanner` are the thin tokio shell around them.

#![warn(missing_docs)]

pub mod certificate;
mod ciphers;
pub(crate) mod connect;
#[cfg(test)]
mod fixtures;
pub mod output;
pub(crate) mod probe;
pub mod report;
pub mod scanner;
pub mod target;
pub mod verdict;

pub use report::{ScanReport, Status};
pub use scanner::{Progress, ScanSettings, Scanner, MAX_TIMEOUT};
pub use target::{parse_target_list, Protocol, Target, TargetError, TlsMode};
pub use verdict::{Preset, Verdict};
