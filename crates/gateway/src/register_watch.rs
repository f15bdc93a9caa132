//! The exception register's warnings while the gateway runs: judged at start and then every
//! hour from the session store, logged, and exported as a gauge so an alert can fire on them.

use std::sync::Arc;
use std::time::Duration;

use policy::PolicySet;
use store::{Store, StoreError, StoreLocation};
use time::OffsetDateTime;

/// How often the warnings are judged again: expiries are in days, so an hour is prompt enough,
/// and the store's queries cost little at that rate.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(3600);

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
            let judged = store.judge_register(&set, OffsetDateTime::now_utc())?;
            Ok::<_, StoreError>(
                judged
                    .warnings
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
