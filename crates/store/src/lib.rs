//! Session records of the mailtls gateway: one row per client session, written off the hot path,
//! and counts of the connections it refused before any dialogue, per client address and minute.
//!
//! The gateway hands each finished session to a [`SessionRecorder`], which queues it for a writer
//! thread; the writer stores batches through a [`SessionStore`]: a [`Store`], which is a
//! [`SqliteStore`] (the embedded default) or a [`PostgresStore`] (one inventory for a fleet).

#![warn(missing_docs)]

mod activity;
mod annotation;
mod backend;
mod error;
mod evidence_digest;
#[cfg(test)]
mod fixture;
mod inventory;
mod known_software;
mod offered;
mod outcome;
mod policy_use;
mod postgres;
mod postgres_schema;
mod pruner;
mod record;
mod recorder;
mod refusal;
mod schema;
mod session_row;
mod source;
mod sqlite;
mod stored_row;
mod timestamp;

pub use activity::{DayRange, SessionCounts};
pub use annotation::{Annotation, AnnotationSubject, MAX_ANNOTATION_BYTES};
pub use backend::{Imported, Store, StoreLocation, PRUNE_BATCH};
pub use error::StoreError;
pub use evidence_digest::{EvidenceDigest, EvidenceDigester};
pub use inventory::{
    AttributeKind, ClientIdentity, ClientSummary, UnknownVerdict, Verdict, MAX_VALUES_PER_KIND,
};
pub use known_software::software_for_ja4;
pub use offered::{OfferedHello, MAX_OFFERED_ENTRIES};
pub use outcome::{Outcome, UnknownOutcome};
pub use policy_use::{ExceptionMatches, JudgedRegister, PolicyUse, UnexceptedClient};
pub use postgres::{PostgresStore, PostgresTarget};
pub use pruner::{Pruned, RetainedTable, SessionPruner};
pub use record::{cut_to, PolicyDecision, SessionRecord, CUT_MARKER, MAX_SNI_BYTES};
pub use recorder::{
    describe_metrics, SessionRecorder, WriterGone, QUEUED_RECORDS_METRIC, WRITE_FAILURES_METRIC,
};
pub use refusal::{RefusalReason, RefusalSummary, RefusedConnection, UnknownRefusalReason};
pub use source::{Source, UnknownSource};
pub use sqlite::{SqliteStore, StoreAccess};

/// Where session records are kept: the seam between the recorder and a database.
pub trait SessionStore: Send {
    /// Stores `records` atomically: when this returns an error, none of them was stored, so the
    /// caller may retry the whole batch.
    fn insert_batch(&mut self, records: &[SessionRecord]) -> Result<(), StoreError>;

    /// Adds each summary's count to the stored count of its minute, listener, client address
    /// and reason, atomically like [`insert_batch`](SessionStore::insert_batch).
    fn add_refusals(&mut self, summaries: &[RefusalSummary]) -> Result<(), StoreError>;
}
