//! Prometheus metrics: what the gateway counts, and the `/metrics` endpoint that serves them.
//!
//! The gateway emits through the `metrics` facade, which costs next to nothing until
//! [`MetricsEndpoint::bind`] installs the Prometheus recorder (only when `[metrics]` is
//! configured). Session figures are derived in one place, [`session_ended`], from the record
//! the session hands to the store, so the metrics and the records always agree.
//!
//! Label values come only from the config (listener and upstream names) and from closed sets
//! (protocols, TLS versions, outcomes): never from what a client sends (SNI, user names, IMAP
//! ID), which would give an attacker one time series per value.

use std::net::SocketAddr;
use std::time::Duration;

use ::metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use store::{Outcome, SessionRecord};
use wire::TlsVersion;

use crate::error::SetupError;
use crate::settings::ListenerSettings;

/// Counter: sessions ended, by `listener`, `protocol`, negotiated client `tls_version` (`none`
/// when no TLS handshake completed) and `outcome` (the session record's outcome).
pub const SESSIONS: &str = "mailtls_sessions_total";
/// Counter: client TLS handshakes that failed, by `listener` and `offered_max_tls`, the highest
/// version the ClientHello offered (`unknown` when none could be read). On a TLS 1.2 listener,
/// `TLSv1.0` and `TLSv1.1` here are the legacy clients its floor turns away.
pub const HANDSHAKES_REFUSED: &str = "mailtls_client_handshakes_refused_total";
/// Gauge: sessions in progress, by `listener`, from accept to the end of the session.
pub const ACTIVE_SESSIONS: &str = "mailtls_active_sessions";
/// Counter: connections refused before authentication because their client address already
/// held its share of unauthenticated connections, by `listener`.
pub const REFUSED_BY_CLIENT_LIMIT: &str = "mailtls_preauth_refused_by_client_limit_total";
/// Counter: logins the gateway refused itself because their client address failed too many
/// logins recently, by `listener`.
pub const LOGINS_THROTTLED: &str = "mailtls_logins_throttled_total";
/// Histogram: seconds from connecting to the upstream to its answer to the login (connect, TLS
/// and the login dialogue), by `upstream` and `outcome` (`ok` or why it failed).
pub const UPSTREAM_LOGIN_SECONDS: &str = "mailtls_upstream_login_seconds";
/// Counter: application bytes received from clients, by `listener`, counted when a session ends.
pub const BYTES_FROM_CLIENTS: &str = "mailtls_client_received_bytes_total";
/// Counter: application bytes sent to clients, by `listener`, counted when a session ends.
pub const BYTES_TO_CLIENTS: &str = "mailtls_client_sent_bytes_total";

/// Counter: config reloads (SIGHUP, `mailtls reload`), by `result`: `applied`, or `refused`
/// when the new config had a problem and the running one stayed.
pub const CONFIG_RELOADS: &str = "mailtls_config_reloads_total";
/// Gauge: the exception register's warnings, by `kind`: `expiring` (live exceptions that
/// expire within 30 days), `unused` (live exceptions that matched no client for 30 days) and
/// `unexcepted` (clients below a policy's floor that no exception covers, seen in 30 days).
/// Judged at start and hourly.
pub const REGISTER_WARNINGS: &str = "mailtls_exception_register_warnings";

/// The kinds of [`REGISTER_WARNINGS`], each set (to 0 when there is none) at every judgement.
const REGISTER_WARNING_KINDS: [&str; 3] = ["expiring", "unused", "unexcepted"];

/// Upper bounds of the login latency buckets: a LAN Dovecot answers in milliseconds, Exchange
/// Online in a few hundred; the upstream time limit defaults to 20 s.
const LOGIN_SECONDS_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0,
];

/// Histograms are folded into their buckets on this schedule as well as at each scrape, so a
/// gateway nobody scrapes does not keep every sample.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Counts a finished session: called once per session, where its record goes to the store.
pub(crate) fn session_ended(listener: &ListenerSettings, record: &SessionRecord) {
    let name = listener.name.clone();
    counter!(
        SESSIONS,
        "listener" => name.clone(),
        "protocol" => listener.protocol.as_str(),
        "tls_version" => record.tls_version.map_or("none", TlsVersion::as_str),
        "outcome" => record.outcome.as_str(),
    )
    .increment(1);
    if record.outcome == Outcome::ClientTlsFailed {
        counter!(
            HANDSHAKES_REFUSED,
            "listener" => name.clone(),
            "offered_max_tls" => record.offered_max_tls.map_or("unknown", TlsVersion::as_str),
        )
        .increment(1);
    }
    counter!(BYTES_FROM_CLIENTS, "listener" => name.clone()).increment(record.bytes_from_client);
    counter!(BYTES_TO_CLIENTS, "listener" => name).increment(record.bytes_to_client);
}

/// Counts one upstream login attempt that took `elapsed` and ended as `outcome`.
pub(crate) fn upstream_login_took(upstream: &str, outcome: Outcome, elapsed: Duration) {
    histogram!(
        UPSTREAM_LOGIN_SECONDS,
        "upstream" => upstream.to_string(),
        "outcome" => outcome.as_str(),
    )
    .record(elapsed.as_secs_f64());
}

/// Counts a connection on `listener` refused before authentication by the per-client limit.
pub fn refused_by_client_limit(listener: &str) {
    counter!(REFUSED_BY_CLIENT_LIMIT, "listener" => listener.to_string()).increment(1);
}

/// Counts a login on `listener` that the failed-login throttle refused.
pub fn login_throttled(listener: &str) {
    counter!(LOGINS_THROTTLED, "listener" => listener.to_string()).increment(1);
}

/// Counts a config reload, applied or refused.
pub fn config_reloaded(applied: bool) {
    let result = if applied { "applied" } else { "refused" };
    counter!(CONFIG_RELOADS, "result" => result).increment(1);
}

/// A session in progress on one listener: counted in [`ACTIVE_SESSIONS`] until dropped, so a
/// session that panics or is cancelled at shutdown is still taken off.
pub(crate) struct ActiveSession(::metrics::Gauge);

impl ActiveSession {
    pub fn start(listener: &str) -> ActiveSession {
        let active = gauge!(ACTIVE_SESSIONS, "listener" => listener.to_string());
        active.increment(1.0);
        ActiveSession(active)
    }
}

impl Drop for ActiveSession {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Puts the per-listener series at 0 when the listener starts, so dashboards and alerts see
/// them before their first event (Prometheus cannot take the rate of a series that is absent).
pub(crate) fn listener_started(listener: &str) {
    gauge!(ACTIVE_SESSIONS, "listener" => listener.to_string()).increment(0.0);
    counter!(REFUSED_BY_CLIENT_LIMIT, "listener" => listener.to_string()).increment(0);
    counter!(LOGINS_THROTTLED, "listener" => listener.to_string()).increment(0);
}

/// Sets [`REGISTER_WARNINGS`] from the kinds of the warnings just judged.
pub(crate) fn register_warnings<'k>(kinds: impl Iterator<Item = &'k str>) {
    let mut counts = [0_u32; REGISTER_WARNING_KINDS.len()];
    for kind in kinds {
        if let Some(slot) = REGISTER_WARNING_KINDS.iter().position(|k| *k == kind) {
            counts[slot] += 1;
        }
    }
    for (kind, count) in REGISTER_WARNING_KINDS.iter().zip(counts) {
        gauge!(REGISTER_WARNINGS, "kind" => *kind).set(f64::from(count));
    }
}

fn describe() {
    describe_counter!(
        SESSIONS,
        "Sessions ended, by listener, protocol, negotiated client TLS version and outcome"
    );
    describe_counter!(
        HANDSHAKES_REFUSED,
        "Client TLS handshakes that failed, by the highest version the client offered"
    );
    describe_gauge!(ACTIVE_SESSIONS, "Sessions in progress");
    describe_counter!(
        REFUSED_BY_CLIENT_LIMIT,
        "Connections refused before authentication by the per-client-address limit"
    );
    describe_counter!(
        LOGINS_THROTTLED,
        "Logins refused by the gateway after too many failed logins from the client address"
    );
    describe_histogram!(
        UPSTREAM_LOGIN_SECONDS,
        ::metrics::Unit::Seconds,
        "Time from connecting to the upstream to its answer to the login"
    );
    describe_counter!(
        BYTES_FROM_CLIENTS,
        ::metrics::Unit::Bytes,
        "Application bytes received from clients, counted when each session ends"
    );
    describe_counter!(
        BYTES_TO_CLIENTS,
        ::metrics::Unit::Bytes,
        "Application bytes sent to clients, counted when each session ends"
    );
    describe_counter!(
        CONFIG_RELOADS,
        "Config reloads, by result: applied, or refused with the running config kept"
    );
    // Both results from the start, so an alert on refused reloads sees the series.
    for result in ["applied", "refused"] {
        counter!(CONFIG_RELOADS, "result" => result).increment(0);
    }
    describe_gauge!(
        REGISTER_WARNINGS,
        "Exception register warnings by kind: expiring within 30 days, unused for 30 days, legacy clients no exception covers"
    );
    store::describe_metrics();
}

/// The Prometheus recorder, installed for the whole process, and the socket `/metrics` is
/// served on.
pub struct MetricsEndpoint {
    handle: PrometheusHandle,
    socket: std::net::TcpListener,
}

impl MetricsEndpoint {
    /// Binds `addr` (before anything else, so a taken port stops the start) and installs the
    /// Prometheus recorder for the whole process. Call at most once per process.
    pub fn bind(addr: SocketAddr) -> Result<MetricsEndpoint, SetupError> {
        let problem = |message: String| SetupError::new("metrics.bind", message);
        let socket = std::net::TcpListener::bind(addr)
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| problem(format!("cannot listen on {addr}: {e}")))?;
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(UPSTREAM_LOGIN_SECONDS.to_string()),
                &LOGIN_SECONDS_BUCKETS,
            )
            .map_err(|e| problem(e.to_string()))?
            .install_recorder()
            .map_err(|e| problem(format!("cannot install the metrics recorder: {e}")))?;
        describe();
        Ok(MetricsEndpoint { handle, socket })
    }

    /// The address `/metrics` is served on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Serves `GET /metrics` until the task is dropped. Other paths get 404.
    pub async fn serve(self) -> std::io::Result<()> {
        let listener = tokio::net::TcpListener::from_std(self.socket)?;
        let upkeep = self.handle.clone();
        let _upkeep = AbortOnDrop(tokio::spawn(async move {
            let mut every = tokio::time::interval(UPKEEP_INTERVAL);
            loop {
                every.tick().await;
                upkeep.run_upkeep();
            }
        }));
        let handle = self.handle;
        let app = Router::new().route(
            "/metrics",
            get(move || {
                let text = handle.render();
                // The text exposition format, version 0.0.4, is what Prometheus asks for.
                async move {
                    (
                        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                        text,
                    )
                }
            }),
        );
        axum::serve(listener, app).await
    }
}

/// Stops a background task when its owner ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::SystemTime;

    use super::*;
    use crate::settings::{ClientTlsMode, Protocol};

    fn listener() -> ListenerSettings {
        ListenerSettings {
            name: "legacy-imaps".into(),
            protocol: Protocol::Imap,
            bind: "127.0.0.1:993".parse().unwrap(),
            tls: ClientTlsMode::Implicit,
            min_tls: TlsVersion::Tls12,
            certificate: None,
            key: None,
            upstream: "exchange".into(),
            greeting: "hi".into(),
            proxy_protocol: None,
            relay: None,
        }
    }

    fn record(outcome: Outcome) -> SessionRecord {
        let now = SystemTime::now();
        SessionRecord {
            source: store::Source::Gateway,
            started_at: now,
            ended_at: now,
            listener: "legacy-imaps".into(),
            protocol: "imap".into(),
            client_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            client_port: 40000,
            tls_version: None,
            tls_cipher: None,
            offered_max_tls: None,
            sni: Some("attacker-chosen.example".into()),
            ja4: None,
            offered: store::OfferedHello::default(),
            client_id: vec![("name".into(), Some("evil".into()))],
            login: Some("someone@example.com".into()),
            upstream: "exchange".into(),
            upstream_tls_version: None,
            outcome,
            detail: Some("whatever".into()),
            bytes_from_client: 10,
            bytes_to_client: 20,
            policy: None,
            envelope_sender: None,
            messages_submitted: None,
        }
    }

    /// Renders what `events` recorded into a recorder of their own, while what they returned
    /// (a session guard, say) is still alive.
    fn rendered<T>(events: impl FnOnce() -> T) -> String {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(UPSTREAM_LOGIN_SECONDS.to_string()),
                &LOGIN_SECONDS_BUCKETS,
            )
            .unwrap()
            .build_recorder();
        let handle = recorder.handle();
        let alive = ::metrics::with_local_recorder(&recorder, events);
        let text = handle.render();
        drop(alive);
        text
    }

    #[test]
    fn a_session_is_counted_by_closed_labels_only() {
        let text = rendered(|| {
            let mut ok = record(Outcome::Ok);
            ok.tls_version = Some(TlsVersion::Tls10);
            session_ended(&listener(), &ok);
            let mut refused = record(Outcome::ClientTlsFailed);
            refused.offered_max_tls = Some(TlsVersion::Tls11);
            session_ended(&listener(), &refused);
            // A ClientHello too broken to name a version.
            session_ended(&listener(), &record(Outcome::ClientTlsFailed));
        });
        let has = |line: &str| text.lines().any(|l| l == line);
        assert!(
            has(
                r#"mailtls_sessions_total{listener="legacy-imaps",protocol="imap",tls_version="TLSv1.0",outcome="ok"} 1"#
            ),
            "{text}"
        );
        assert!(
            has(
                r#"mailtls_sessions_total{listener="legacy-imaps",protocol="imap",tls_version="none",outcome="client_tls_failed"} 2"#
            ),
            "{text}"
        );
        assert!(
            has(
                r#"mailtls_client_handshakes_refused_total{listener="legacy-imaps",offered_max_tls="TLSv1.1"} 1"#
            ),
            "{text}"
        );
        assert!(
            has(
                r#"mailtls_client_handshakes_refused_total{listener="legacy-imaps",offered_max_tls="unknown"} 1"#
            ),
            "{text}"
        );
        assert!(
            has(r#"mailtls_client_received_bytes_total{listener="legacy-imaps"} 30"#),
            "{text}"
        );
        assert!(
            has(r#"mailtls_client_sent_bytes_total{listener="legacy-imaps"} 60"#),
            "{text}"
        );
        for client_controlled in ["attacker-chosen", "someone@", "evil", "whatever"] {
            assert!(
                !text.contains(client_controlled),
                "{client_controlled} in\n{text}"
            );
        }
    }

    #[test]
    fn upstream_login_latency_is_a_histogram_by_upstream_and_outcome() {
        let text = rendered(|| {
            upstream_login_took("exchange", Outcome::Ok, Duration::from_millis(30));
            upstream_login_took("exchange", Outcome::AuthFailed, Duration::from_secs(2));
        });
        let has = |line: &str| text.lines().any(|l| l == line);
        assert!(
            has(
                r#"mailtls_upstream_login_seconds_bucket{upstream="exchange",outcome="ok",le="0.025"} 0"#
            ),
            "{text}"
        );
        assert!(
            has(
                r#"mailtls_upstream_login_seconds_bucket{upstream="exchange",outcome="ok",le="0.05"} 1"#
            ),
            "{text}"
        );
        assert!(
            has(
                r#"mailtls_upstream_login_seconds_bucket{upstream="exchange",outcome="auth_failed",le="1"} 0"#
            ),
            "{text}"
        );
        assert!(
            has(
                r#"mailtls_upstream_login_seconds_count{upstream="exchange",outcome="auth_failed"} 1"#
            ),
            "{text}"
        );
    }

    #[test]
    fn active_sessions_go_back_down_when_the_session_ends() {
        let text = rendered(|| {
            listener_started("legacy-imaps");
            let first = ActiveSession::start("legacy-imaps");
            let second = ActiveSession::start("legacy-imaps");
            drop(first);
            second
        });
        assert!(
            text.lines()
                .any(|l| l == r#"mailtls_active_sessions{listener="legacy-imaps"} 1"#),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l == r#"mailtls_logins_throttled_total{listener="legacy-imaps"} 0"#),
            "{text}"
        );
    }
}
