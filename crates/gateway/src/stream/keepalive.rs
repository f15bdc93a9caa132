//! TCP keepalive on both legs. After login the gateway only copies bytes, so a device that
//! loses power without closing would otherwise hold its session (a descriptor, a session slot
//! and an unwritten record) until the gateway restarts.

use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

/// Idle time before the first probe; then probes every `INTERVAL`, `RETRIES` times.
const IDLE: Duration = Duration::from_secs(300);
const INTERVAL: Duration = Duration::from_secs(30);
const RETRIES: u32 = 4;

/// Turns keepalive on for `tcp`, so a silent dead peer is noticed within about 7 minutes.
/// A failure only costs that detection, so it is logged, not fatal.
pub(crate) fn enable_keepalive(tcp: &TcpStream) {
    let keepalive = TcpKeepalive::new()
        .with_time(IDLE)
        .with_interval(INTERVAL)
        .with_retries(RETRIES);
    if let Err(e) = SockRef::from(tcp).set_tcp_keepalive(&keepalive) {
        tracing::debug!(error = %e, "cannot enable TCP keepalive");
    }
}
