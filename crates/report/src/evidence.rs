//! The data of a report: every number and client the page shows, built from the inventory's
//! rollups. The page is a function of this alone (see `page`), and this is what the page
//! embeds and its digest covers.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use policy::PolicySet;
use serde::{Deserialize, Serialize};
use store::{ClientSummary, DayRange, SessionCounts, Verdict};
use time::Date;

use crate::client_row::{rfc3339, sort_by_risk, ClientRow};
use crate::register::RegisterSection;

/// Everything a report shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportData {
    /// What made it: `mailtls 0.1.0`.
    pub generator: String,
    /// When it was made (RFC 3339, UTC): "today" on the timeline.
    pub generated_at: String,
    /// The days asked for and the days with sessions.
    pub range: CoveredRange,
    /// Totals over the range.
    pub totals: Totals,
    /// Clients per oldest TLS version negotiated.
    pub by_tls_version: Vec<Count>,
    /// Sessions per day.
    pub days: Vec<DayRow>,
    /// Clients per source that saw them (gateway, capture, logs...).
    pub sources: Vec<Count>,
    /// Clients with owner and without, per verdict.
    pub ownership: Vec<Ownership>,
    /// Every client with sessions in the range, by risk; `sessions` counts those in the range.
    pub clients: Vec<ClientRow>,
    /// The exception register and its warnings when the report was made; `None` when it was
    /// made without the gateway's config (the page says so). Absent in reports made before
    /// the register was part of them.
    #[serde(default)]
    pub register: Option<RegisterSection>,
}

/// The time a report covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoveredRange {
    /// First day asked for (`YYYY-MM-DD`), none for the beginning.
    pub since: Option<String>,
    /// Last day asked for, none for up to now.
    pub until: Option<String>,
    /// First day with a session in the range.
    pub first_day: Option<String>,
    /// Last day with a session in the range.
    pub last_day: Option<String>,
}

/// Totals over the range.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Clients with sessions in the range.
    pub clients: u64,
    /// Their sessions.
    pub sessions: u64,
    /// Sessions that negotiated TLS 1.0 or 1.1.
    pub legacy_sessions: u64,
    /// Sessions that logged in without TLS.
    pub plaintext_sessions: u64,
    /// Clients that break.
    pub breaks: u64,
    /// Clients at risk.
    pub at_risk: u64,
    /// Clients without TLS.
    pub no_tls: u64,
    /// Clients never seen to finish a handshake.
    pub unknown: u64,
    /// Clients that are fine.
    pub ok: u64,
    /// Clients without an owner.
    pub unowned: u64,
    /// Clients that break or are at risk and have no owner.
    pub unowned_needing_action: u64,
}

/// A label and how many clients it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    /// What is counted.
    pub label: String,
    /// How many clients.
    pub clients: u64,
}

/// One day's sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayRow {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Every session.
    pub sessions: u64,
    /// Sessions on TLS 1.0 or 1.1.
    pub legacy_sessions: u64,
    /// Sessions without TLS.
    pub plaintext_sessions: u64,
}

/// Owned and unowned clients of one verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    /// The verdict.
    pub verdict: String,
    /// Clients with an owner.
    pub owned: u64,
    /// Clients without.
    pub unowned: u64,
}

/// A day as `YYYY-MM-DD`.
pub(crate) fn spell_day(day: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

impl ReportData {
    /// The report of the inventory in `store` over `range`, made at `now`: reads the rollups
    /// only ([`Store::clients`](store::Store::clients), `client_sessions`,
    /// `daily_sessions`), and with `register` (the gateway's policies), that register and its
    /// warnings at `now`.
    pub fn from_store(
        store: &mut store::Store,
        range: DayRange,
        now: SystemTime,
        register: Option<&PolicySet>,
    ) -> Result<ReportData, store::StoreError> {
        let clients = store.clients()?;
        let mut data = ReportData::from_store_clients(store, clients, range, now)?;
        data.register = RegisterSection::judge(store, register, now)?;
        Ok(data)
    }

    /// [`ReportData::from_store`] with the store's clients already read.
    pub fn from_store_clients(
        store: &mut store::Store,
        clients: Vec<ClientSummary>,
        range: DayRange,
        now: SystemTime,
    ) -> Result<ReportData, store::StoreError> {
        // Over the whole history the clients' own totals are the counts: no need to sum
        // every client's days.
        let per_client = if range == DayRange::default() {
            clients
                .iter()
                .map(|c| {
                    let counts = SessionCounts {
                        sessions: c.sessions,
                        ..SessionCounts::default()
                    };
                    (c.id, counts)
                })
                .collect()
        } else {
            store.client_sessions(range)?
        };
        let days = store.daily_sessions(range)?;
        Ok(ReportData::build(clients, &per_client, &days, range, now))
    }

    /// The report of `clients` over `range`: `per_client` and `days` are the store's
    /// [`client_sessions`](store::Store::client_sessions) and
    /// [`daily_sessions`](store::Store::daily_sessions) over the same range. Clients
    /// without sessions in the range are left out; verdicts are over each client's whole life.
    /// No register: [`ReportData::from_store`] adds it.
    pub fn build(
        mut clients: Vec<ClientSummary>,
        per_client: &HashMap<i64, SessionCounts>,
        days: &[(Date, SessionCounts)],
        range: DayRange,
        now: SystemTime,
    ) -> ReportData {
        clients.retain(|c| per_client.contains_key(&c.id));
        for client in &mut clients {
            client.sessions = per_client[&client.id].sessions;
        }
        sort_by_risk(&mut clients);

        let mut totals = Totals {
            clients: clients.len() as u64,
            ..Totals::default()
        };
        for (_, counts) in days {
            totals.sessions += counts.sessions;
            totals.legacy_sessions += counts.legacy_sessions;
            totals.plaintext_sessions += counts.plaintext_sessions;
        }
        let mut by_version: BTreeMap<u8, (String, u64)> = BTreeMap::new();
        let mut sources: BTreeMap<String, u64> = BTreeMap::new();
        let mut ownership: BTreeMap<Verdict, (u64, u64)> = BTreeMap::new();
        for client in &clients {
            let count = match client.verdict {
                Verdict::Breaks => &mut totals.breaks,
                Verdict::AtRisk => &mut totals.at_risk,
                Verdict::NoTls => &mut totals.no_tls,
                Verdict::Unknown => &mut totals.unknown,
                Verdict::Ok => &mut totals.ok,
            };
            *count += 1;
            let owned = client
                .annotation
                .as_ref()
                .and_then(|a| a.owner.as_deref())
                .is_some_and(|o| !o.trim().is_empty());
            let entry = ownership.entry(client.verdict).or_default();
            if owned {
                entry.0 += 1;
            } else {
                entry.1 += 1;
                totals.unowned += 1;
                if matches!(client.verdict, Verdict::Breaks | Verdict::AtRisk) {
                    totals.unowned_needing_action += 1;
                }
            }
            // Keyed so the bars read oldest version first, then no TLS, then no handshake.
            let (key, label) = match (client.negotiated.first(), client.verdict) {
                (Some(oldest), _) => (
                    u8::try_from(oldest.wire() & 0xff).unwrap_or(0),
                    oldest.as_str().to_string(),
                ),
                (None, Verdict::NoTls) => (200, "no TLS".to_string()),
                (None, _) => (201, "no handshake".to_string()),
            };
            by_version.entry(key).or_insert((label, 0)).1 += 1;
            for source in client.values(store::AttributeKind::Source) {
                *sources.entry(source.clone()).or_default() += 1;
            }
        }
        let rows: Vec<ClientRow> = clients.iter().map(ClientRow::of).collect();
        ReportData {
            generator: format!("mailtls {}", env!("CARGO_PKG_VERSION")),
            generated_at: rfc3339(now),
            range: CoveredRange {
                since: range.since.map(spell_day),
                until: range.until.map(spell_day),
                first_day: days.first().map(|(d, _)| spell_day(*d)),
                last_day: days.last().map(|(d, _)| spell_day(*d)),
            },
            totals,
            by_tls_version: by_version
                .into_values()
                .map(|(label, clients)| Count { label, clients })
                .collect(),
            days: days
                .iter()
                .map(|(day, c)| DayRow {
                    day: spell_day(*day),
                    sessions: c.sessions,
                    legacy_sessions: c.legacy_sessions,
                    plaintext_sessions: c.plaintext_sessions,
                })
                .collect(),
            sources: sources
                .into_iter()
                .map(|(label, clients)| Count { label, clients })
                .collect(),
            ownership: ownership
                .into_iter()
                .map(|(verdict, (owned, unowned))| Ownership {
                    verdict: verdict.as_str().to_string(),
                    owned,
                    unowned,
                })
                .collect(),
            clients: rows,
            register: None,
        }
    }
}
