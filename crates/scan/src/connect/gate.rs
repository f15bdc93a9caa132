//! The per-host connection cap, and the pacing of `--slow` mode: mail servers rate-limit
//! scanners (SMTP 421, resets), so connections to one address are counted and spaced.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Limits on connections to each IP address.
#[derive(Debug)]
pub(crate) struct Gates {
    per_host: usize,
    pace: Duration,
    hosts: Mutex<HashMap<IpAddr, Arc<Gate>>>,
}

#[derive(Debug)]
struct Gate {
    permits: Arc<Semaphore>,
    next_start: tokio::sync::Mutex<Instant>,
}

/// Held while a connection is open; dropping it lets the next one start.
#[derive(Debug)]
pub(crate) struct Pass {
    _permit: OwnedSemaphorePermit,
}

impl Gates {
    /// At most `per_host` open connections per address, each started at least `pace` after
    /// the one before.
    pub(crate) fn new(per_host: usize, pace: Duration) -> Gates {
        Gates {
            per_host: per_host.max(1),
            pace,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// Waits until a connection to `ip` may start.
    pub(crate) async fn enter(&self, ip: IpAddr) -> Pass {
        let gate = {
            let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
            hosts
                .entry(ip)
                .or_insert_with(|| {
                    Arc::new(Gate {
                        permits: Arc::new(Semaphore::new(self.per_host)),
                        next_start: tokio::sync::Mutex::new(Instant::now()),
                    })
                })
                .clone()
        };
        let permit = gate
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        if !self.pace.is_zero() {
            let mut next = gate.next_start.lock().await;
            tokio::time::sleep_until(*next).await;
            *next = Instant::now() + self.pace;
        }
        Pass { _permit: permit }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn caps_connections_per_host_and_paces_them() {
        let gates = Gates::new(2, Duration::from_secs(1));
        let ip: IpAddr = [127, 0, 0, 1].into();
        let start = Instant::now();
        let a = gates.enter(ip).await;
        let _b = gates.enter(ip).await;
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(1),
            "second start is paced"
        );
        let other = gates.enter([127, 0, 0, 2].into()).await;
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(1),
            "other hosts are not held up"
        );
        drop(other);
        let third = tokio::time::timeout(Duration::from_secs(5), gates.enter(ip)).await;
        assert!(third.is_err(), "a third connection waits for a free slot");
        drop(a);
        let _c = gates.enter(ip).await;
    }
}
