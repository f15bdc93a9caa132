//! Session counts over a range of UTC days, from the rollups (never from `sessions`): per day
//! from `daily_sessions`, per client from `client_days`. What the report's charts and its time
//! range need.

use std::collections::HashMap;

use rusqlite::Connection;
use time::{Date, Month};

/// Sessions counted by what they negotiated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionCounts {
    /// Every session.
    pub sessions: u64,
    /// Sessions that negotiated TLS 1.0 or 1.1 (or older).
    pub legacy_sessions: u64,
    /// Sessions that logged in without TLS.
    pub plaintext_sessions: u64,
    /// Sessions that did not end well (refused login, upstream failure, fault).
    pub failed_sessions: u64,
}

/// Inclusive range of UTC days; an open end is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayRange {
    /// First day counted.
    pub since: Option<Date>,
    /// Last day counted.
    pub until: Option<Date>,
}

impl DayRange {
    /// The bounds as `YYYY-MM-DD`, `None` where open (PostgreSQL's `date` takes these).
    pub(crate) fn dates(self) -> (Option<String>, Option<String>) {
        (self.since.map(spell_day), self.until.map(spell_day))
    }

    /// The bounds as the `day` column spells days (`YYYY-MM-DD`, which sorts as text).
    fn bounds(self) -> (String, String) {
        (
            self.since
                .map_or_else(|| "0000-00-00".to_string(), spell_day),
            self.until
                .map_or_else(|| "9999-99-99".to_string(), spell_day),
        )
    }
}

/// A day as the rollups spell it, `YYYY-MM-DD`.
fn spell_day(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

const SUMS: &str =
    "sum(sessions), sum(legacy_sessions), sum(plaintext_sessions), sum(failed_sessions)";

fn counts(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<SessionCounts> {
    // Sums of counters are never negative.
    let at = |i: usize| row.get::<_, i64>(first + i).map(i64::unsigned_abs);
    Ok(SessionCounts {
        sessions: at(0)?,
        legacy_sessions: at(1)?,
        plaintext_sessions: at(2)?,
        failed_sessions: at(3)?,
    })
}

/// Why an activity row could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ActivityRowError {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error("invalid day {0:?} in client_days")]
    Day(String),
}

/// Counts per day within `range`, summed over clients, oldest day first.
pub(crate) fn daily(
    conn: &Connection,
    range: DayRange,
) -> Result<Vec<(Date, SessionCounts)>, ActivityRowError> {
    let (since, until) = range.bounds();
    let mut stmt = conn.prepare_cached(
        "SELECT day, sessions, legacy_sessions, plaintext_sessions, failed_sessions
         FROM daily_sessions WHERE day >= ?1 AND day <= ?2 ORDER BY day",
    )?;
    let mut rows = stmt.query([since, until])?;
    let mut days = Vec::new();
    while let Some(row) = rows.next()? {
        let text: String = row.get(0)?;
        let day = parse_day(&text).ok_or(ActivityRowError::Day(text))?;
        days.push((day, counts(row, 1)?));
    }
    Ok(days)
}

/// Counts per client id within `range`; a client without sessions in it is absent.
pub(crate) fn per_client(
    conn: &Connection,
    range: DayRange,
) -> rusqlite::Result<HashMap<i64, SessionCounts>> {
    let (since, until) = range.bounds();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT client_id, {SUMS} FROM client_days WHERE day >= ?1 AND day <= ?2
         GROUP BY client_id"
    ))?;
    let mut rows = stmt.query([since, until])?;
    let mut clients = HashMap::new();
    while let Some(row) = rows.next()? {
        clients.insert(row.get(0)?, counts(row, 1)?);
    }
    Ok(clients)
}

/// A `YYYY-MM-DD` day.
pub(crate) fn parse_day(text: &str) -> Option<Date> {
    let mut parts = text.splitn(3, '-');
    let year = parts.next()?.parse().ok()?;
    let month = Month::try_from(parts.next()?.parse::<u8>().ok()?).ok()?;
    let day = parts.next()?.parse().ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::macros::date;

    use crate::fixture::{sample_record, TempDir};
    use crate::{SessionStore, SqliteStore};

    use super::*;

    #[test]
    fn days_and_clients_are_summed_within_the_range() {
        let dir = TempDir::new("activity");
        let mut store = SqliteStore::open(&dir.db_path()).unwrap();
        // Two sessions of one client on its first day, one a day later, one on the third day
        // from another address.
        let mut records: Vec<_> = (0..4).map(sample_record).collect();
        records[2].started_at += Duration::from_secs(86_400);
        records[3].started_at += Duration::from_secs(2 * 86_400);
        records[3].client_addr = "192.0.2.99".parse().unwrap();
        store.insert_batch(&records).unwrap();
        let first = time::OffsetDateTime::from(records[0].started_at).date();

        let all = store.daily_sessions(DayRange::default()).unwrap();
        let per_day: Vec<u64> = all.iter().map(|(_, c)| c.sessions).collect();
        assert_eq!(per_day, [2, 1, 1]);
        assert_eq!(all[0].0, first);
        assert_eq!(
            all[0].1.legacy_sessions, 2,
            "the sample sessions are TLS 1.0"
        );

        let later = DayRange {
            since: first.next_day(),
            until: None,
        };
        assert_eq!(store.daily_sessions(later).unwrap().len(), 2);
        let clients = store.client_sessions(later).unwrap();
        let mut counts: Vec<u64> = clients.values().map(|c| c.sessions).collect();
        counts.sort_unstable();
        assert_eq!(counts, [1, 1]);
        let none = DayRange {
            since: Some(date!(2000 - 01 - 01)),
            until: Some(date!(2000 - 01 - 02)),
        };
        assert!(store.client_sessions(none).unwrap().is_empty());
        assert_eq!(parse_day("2026-02-30"), None);
    }

    #[test]
    fn a_store_from_before_the_daily_rollup_gets_it_filled_from_client_days() {
        let dir = TempDir::new("activity-migrate");
        let mut records: Vec<_> = (0..5).map(sample_record).collect();
        records[4].started_at += Duration::from_secs(86_400);
        let before = {
            let mut store = SqliteStore::open(&dir.db_path()).unwrap();
            store.insert_batch(&records).unwrap();
            let before = store.daily_sessions(DayRange::default()).unwrap();
            // As the schema before this rollup left it.
            store
                .conn()
                .execute_batch(
                    "DROP TABLE retention; DROP INDEX imported_evidence_by_age; DROP TABLE daily_sessions;
                     PRAGMA user_version = 9;",
                )
                .unwrap();
            before
        };
        assert_eq!(before.len(), 2);
        let store = SqliteStore::open(&dir.db_path()).unwrap();
        assert_eq!(store.daily_sessions(DayRange::default()).unwrap(), before);
    }
}
