//! The exception register's warnings while the gateway runs: judged at start and then every
//! hour from the session store, logged, and exported as a gauge so an alert can fire on them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use policy::{DecidedClient, ExceptionId, PolicySet, RegisterUse, RegisterWarning, WARNING_WINDOW};
use store::{Store, StoreError, StoreLocation};
use time::OffsetDateTime;

/// How often the warnings are judged again: expiries are in days, so an hour is prompt enough,
/// and the store's queries cost little at that rate.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(3600);

/// The register's warnings at `at`, from what `store` recorded.
pub fn register_warnings<'s>(
    store: &mut Store,
    set: &'s PolicySet,
    at: OffsetDateTime,
) -> Result<Vec<RegisterWarning<'s>>, StoreError> {
    let recorded = store.policy_use((at - WARNING_WINDOW).into())?;
    let usage = RegisterUse {
        observed_since: recorded.first_session.map(OffsetDateTime::from),
        last_matched: recorded
            .exception_last_matched
            .iter()
            .map(|&(id, at)| (ExceptionId(id), at.into()))
            .collect::<HashMap<_, _>>(),
        unexcepted: recorded
            .unexcepted
            .iter()
            .map(|c| DecidedClient {
                address: c.client_addr,
                login: c.login.as_deref(),
                ja4: c.ja4.as_deref(),
                version: c.tls_version,
                rule: &c.policy_rule,
                last_seen: c.last_seen.into(),
                sessions: c.sessions,
            })
            .collect(),
    };
    Ok(set.register_warnings(&usage, at))
}

/// Judges the warnings of the set in force (`in_force`, which a reload replaces) against the
/// store at `location`: now, every `every`, and at once when a reload puts a new register
/// in force; until dropped.
pub async fn watch_register(
    mut in_force: tokio::sync::watch::Receiver<Arc<PolicySet>>,
    location: StoreLocation,
    every: Duration,
) {
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            changed = in_force.changed() => {
                if changed.is_err() {
                    // The sender is gone: the gateway is stopping.
                    return;
                }
            }
        }
        let set = in_force.borrow_and_update().clone();
        let location = location.clone();
        let judged = tokio::task::spawn_blocking(move || {
            let mut store = Store::open(&location)?;
            let warnings = register_warnings(&mut store, &set, OffsetDateTime::now_utc())?;
            Ok::<_, StoreError>(
                warnings
                    .iter()
                    .map(|w| (w.kind(), w.to_string()))
                    .collect::<Vec<_>>(),
            )
        })
        .await;
        match judged {
            Ok(Ok(warnings)) => {
                for (kind, text) in &warnings {
                    tracing::warn!(kind, "exception register: {text}");
                }
                crate::metrics::register_warnings(warnings.iter().map(|(kind, _)| *kind));
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot judge the exception register's warnings")
            }
            Err(e) => tracing::error!(error = %e, "the exception register's check stopped"),
        }
    }
}
