//! Readers of what mail servers and Microsoft 365 already record about their clients: Dovecot
//! and Postfix logs, Entra ID sign-in logs and the Exchange admin center's SMTP AUTH clients
//! report. Each turns its input into the store's session records, marked with their source,
//! so they join the gateway's sessions in one client inventory.
//!
//! Sans I/O: the readers are fed lines or a reader by the caller, and never look at a clock
//! (a line's own timestamp is its time).

#![warn(missing_docs)]

mod clock;
mod dovecot;
mod entra;
mod evidence;
mod export;
mod postfix;
mod smtp_auth_report;

pub use clock::LogClock;
pub use dovecot::{DovecotLog, DOVECOT_LISTENER};
pub use entra::{read_entra_sign_ins_csv, read_entra_sign_ins_json, ENTRA_LISTENER};
pub use evidence::{Evidence, LineKind, LogReader, MAX_TEXT_BYTES};
pub use export::{ExportError, ExportRows};
pub use postfix::{PostfixLog, POSTFIX_LISTENER};
pub use smtp_auth_report::{read_smtp_auth_report, SMTP_AUTH_REPORT_LISTENER};
