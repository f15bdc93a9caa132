//! The one interface the gateway and the CLI use, whichever database holds the store: a
//! [`StoreLocation`] says where, [`Store::open`] opens it.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::{
    Annotation, AnnotationSubject, ClientSummary, PostgresStore, PostgresTarget, Pruned,
    RefusalSummary, RetainedTable, SessionRecord, SessionStore, SqliteStore, StoreAccess,
    StoreError,
};

/// What [`Store::insert_imported`] did with a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported<'b> {
    /// The records stored: their evidence was new.
    pub stored: Vec<&'b SessionRecord>,
    /// Records not stored because they started before what retention keeps.
    pub older_than_kept: usize,
}

/// Sessions deleted per transaction when pruning: small enough that the gateway's writer never
/// waits long for the lock, large enough that a year of a busy site goes in minutes.
pub const PRUNE_BATCH: u32 = 5_000;

/// Where the session store is.
#[derive(Debug, Clone)]
pub enum StoreLocation {
    /// A SQLite file, made with `access` when new.
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// Owner and mode of its files.
        access: StoreAccess,
    },
    /// A PostgreSQL database several gateways may share.
    Postgres(PostgresTarget),
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Sqlite { path, .. } => write!(f, "{}", path.display()),
            StoreLocation::Postgres(target) => f.write_str(target.url()),
        }
    }
}

/// An open session store: SQLite or PostgreSQL behind the same reads and writes.
#[derive(Debug)]
pub enum Store {
    /// One SQLite file.
    Sqlite(SqliteStore),
    /// A PostgreSQL database.
    Postgres(PostgresStore),
}

/// Runs `$call` on whichever store it is.
macro_rules! on_either {
    ($store:expr, $s:ident => $call:expr) => {
        match $store {
            Store::Sqlite($s) => $call,
            Store::Postgres($s) => $call,
        }
    };
}

impl Store {
    /// Opens the store at `location`, creating its tables or upgrading them.
    pub fn open(location: &StoreLocation) -> Result<Store, StoreError> {
        Ok(match location {
            StoreLocation::Sqlite { path, access } => {
                Store::Sqlite(SqliteStore::open_with_access(path, *access)?)
            }
            StoreLocation::Postgres(target) => Store::Postgres(PostgresStore::open(target)?),
        })
    }

    /// [`Store::open`] for a writer that must not wait for the database: a PostgreSQL store
    /// that cannot be reached now (or refuses the login) is returned unconnected, with a
    /// warning, and connects at a later write; the recorder keeps records queued meanwhile.
    /// A SQLite file must open now.
    pub fn open_for_writing(location: &StoreLocation) -> Result<Store, StoreError> {
        match location {
            StoreLocation::Postgres(target) => Ok(Store::Postgres(
                PostgresStore::open(target).unwrap_or_else(|error| {
                    tracing::warn!(
                        %error,
                        "the PostgreSQL session store cannot be reached; serving anyway, session records wait in memory until it answers"
                    );
                    PostgresStore::unconnected(target)
                }),
            )),
            StoreLocation::Sqlite { .. } => Store::open(location),
        }
    }

    /// Every stored session, oldest insert first.
    pub fn sessions(&mut self) -> Result<Vec<SessionRecord>, StoreError> {
        on_either!(self, s => s.sessions())
    }

    /// Every client of the inventory with its annotation, in id order.
    pub fn clients(&mut self) -> Result<Vec<ClientSummary>, StoreError> {
        on_either!(self, s => s.clients())
    }

    /// Every annotation, oldest first.
    pub fn annotations(&mut self) -> Result<Vec<(AnnotationSubject, Annotation)>, StoreError> {
        on_either!(self, s => s.annotations())
    }

    /// Sets the owner, device and note of `subject`; fields given as `None` keep their value.
    /// A client id must exist; a field longer than 1024 bytes is refused.
    pub fn annotate(
        &mut self,
        subject: &AnnotationSubject,
        annotation: &Annotation,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        on_either!(self, s => s.annotate(subject, annotation, now))
    }

    /// Number of stored sessions.
    pub fn count(&mut self) -> Result<u64, StoreError> {
        on_either!(self, s => s.count())
    }

    /// Every stored count of refused connections.
    pub fn refusals(&mut self) -> Result<Vec<RefusalSummary>, StoreError> {
        on_either!(self, s => s.refusals())
    }

    /// Stores the records of `batch` whose digest was never imported before, and remembers
    /// the digests, in one transaction. Records older than what retention keeps are not
    /// stored: their digests may have been pruned, and the inventory's rollups still count
    /// them, so storing them again would count them twice.
    pub fn insert_imported<'b>(
        &mut self,
        batch: &'b [(crate::EvidenceDigest, SessionRecord)],
        now: SystemTime,
    ) -> Result<Imported<'b>, StoreError> {
        let kept_from = on_either!(self, s => s.pruned_before())?;
        let kept: Vec<&'b (crate::EvidenceDigest, SessionRecord)> = batch
            .iter()
            .filter(|(_, record)| kept_from.is_none_or(|from| record.started_at >= from))
            .collect();
        let stored = on_either!(self, s => s.insert_imported(&kept, now))?;
        Ok(Imported {
            stored,
            older_than_kept: batch.len() - kept.len(),
        })
    }

    /// Sessions per UTC day within `range`, summed over every client, oldest day first.
    pub fn daily_sessions(
        &mut self,
        range: crate::DayRange,
    ) -> Result<Vec<(time::Date, crate::SessionCounts)>, StoreError> {
        on_either!(self, s => s.daily_sessions(range))
    }

    /// Sessions per client id within `range`; clients without sessions in it are absent.
    pub fn client_sessions(
        &mut self,
        range: crate::DayRange,
    ) -> Result<std::collections::HashMap<i64, crate::SessionCounts>, StoreError> {
        on_either!(self, s => s.client_sessions(range))
    }

    /// What the exception register's warnings are judged from, for sessions since `since`.
    pub fn policy_use(&mut self, since: SystemTime) -> Result<crate::PolicyUse, StoreError> {
        on_either!(self, s => s.policy_use(since))
    }

    /// Deletes what is older than `keep` before `now` (sessions, counts of refused
    /// connections, digests of imported evidence), [`PRUNE_BATCH`] rows per transaction, and
    /// says how many rows went. The inventory's rollups keep counting the pruned sessions.
    pub fn prune(&mut self, keep: Duration, now: SystemTime) -> Result<Pruned, StoreError> {
        let cutoff = now.checked_sub(keep).unwrap_or(SystemTime::UNIX_EPOCH);
        let mut pruned = Pruned::default();
        for table in RetainedTable::ALL {
            if table == RetainedTable::Sessions {
                // First, so an import meanwhile stores nothing this pruning would miss.
                on_either!(self, s => s.raise_pruned_before(cutoff))?;
            }
            loop {
                let batch = on_either!(self, s => s.prune(table, cutoff, PRUNE_BATCH))?;
                *pruned.count_mut(table) += batch;
                if batch < u64::from(PRUNE_BATCH) {
                    break;
                }
            }
        }
        Ok(pruned)
    }
}

impl SessionStore for Store {
    fn insert_batch(&mut self, records: &[SessionRecord]) -> Result<(), StoreError> {
        on_either!(self, s => s.insert_batch(records))
    }

    fn add_refusals(&mut self, summaries: &[RefusalSummary]) -> Result<(), StoreError> {
        on_either!(self, s => s.add_refusals(summaries))
    }
}
