//! `mailtls dashboard`: the report served live from the store (axum), with the client list
//! filterable and an annotate form per client.
//!
//! Who may use it: on loopback without a token anyone local, with the `Host` header checked
//! (a web page elsewhere cannot reach it through DNS rebinding); with a token, only requests
//! carrying it (`Authorization: Bearer TOKEN`, or basic auth with the token as password, which
//! a browser asks for). Forms carry a per-process token and a cross-site `Origin` is refused,
//! so another site cannot post annotations through the admin's browser.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use base64::Engine;
use policy::PolicySet;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use store::{Annotation, AnnotationSubject, DayRange, Store, Verdict};

use crate::client_row::{sort_by_risk, ClientRow};
use crate::evidence::ReportData;
use crate::filter::{parse_time, ClientFilter};
use crate::page::{render_html, sha256_hex, LiveView, MAX_LIVE_ROWS};
use crate::register::RegisterSection;

const SCRIPT: &str = include_str!("../templates/dashboard.js");

/// What the browser may load: this server's own script, inline styles, data: images.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'unsafe-inline'; img-src data:; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// The secret the dashboard asks for. Its Debug output never shows it.
#[derive(Clone)]
pub struct DashboardToken(String);

impl DashboardToken {
    /// The token: the first line of its file, trimmed.
    pub fn from_file_text(text: &str) -> DashboardToken {
        DashboardToken(text.lines().next().unwrap_or("").trim().to_string())
    }

    /// Whether `offered` is the token, comparing digests so the time taken does not tell how
    /// much of it matched.
    fn matches(&self, offered: &str) -> bool {
        Sha256::digest(offered.as_bytes()) == Sha256::digest(self.0.as_bytes())
    }
}

impl std::fmt::Debug for DashboardToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DashboardToken(..)")
    }
}

/// Why the dashboard could not start.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// The address is beyond loopback and no token protects it.
    #[error("refusing to serve the dashboard on {0} without a token: set [dashboard] token_file in the config, or bind to 127.0.0.1")]
    Unprotected(SocketAddr),
    /// No randomness for the form token.
    #[error("no randomness for the form token: {0}")]
    Random(String),
    /// The listener failed.
    #[error("serving the dashboard: {0}")]
    Io(#[from] std::io::Error),
}

/// Refuses an address beyond loopback without a token; call before binding.
pub fn check_exposure(
    bind: SocketAddr,
    token: Option<&DashboardToken>,
) -> Result<(), DashboardError> {
    if bind.ip().to_canonical().is_loopback() || token.is_some() {
        Ok(())
    } else {
        Err(DashboardError::Unprotected(bind))
    }
}

/// How long a judged register is shown before it is judged again.
const REGISTER_JUDGED_FOR: Duration = Duration::from_secs(60);

/// The gateway's policies and their register as last judged. Judged at most once a minute
/// rather than at every 2-second poll: the warnings read the last 30 days of raw sessions,
/// which on a busy store is far more than the rollups the rest of the page reads, and they
/// move in days.
struct RegisterView {
    set: Arc<PolicySet>,
    judged: Mutex<Option<(Instant, Option<RegisterSection>)>>,
}

impl RegisterView {
    fn section(
        &self,
        store: &mut Store,
        now: SystemTime,
    ) -> Result<Option<RegisterSection>, store::StoreError> {
        let mut judged = self.judged.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, section)) = judged.as_ref() {
            if at.elapsed() < REGISTER_JUDGED_FOR {
                return Ok(section.clone());
            }
        }
        let section = RegisterSection::judge(store, Some(&self.set), now)?;
        *judged = Some((Instant::now(), section.clone()));
        Ok(section)
    }
}

struct Dashboard {
    store: Mutex<Store>,
    /// The exception register the page shows; none without a config.
    register: Option<RegisterView>,
    token: Option<DashboardToken>,
    csrf: String,
    port: u16,
}

/// Serves the dashboard on `listener` until the process ends; with `register` (the gateway's
/// policies), the page shows its exception register and warnings, judged at each request.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Store,
    token: Option<DashboardToken>,
    register: Option<Arc<PolicySet>>,
) -> Result<(), DashboardError> {
    let local = listener.local_addr()?;
    check_exposure(local, token.as_ref())?;
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|e| DashboardError::Random(e.to_string()))?;
    let state = Arc::new(Dashboard {
        store: Mutex::new(store),
        register: register.map(|set| RegisterView {
            set,
            judged: Mutex::new(None),
        }),
        token,
        csrf: random.iter().map(|b| format!("{b:02x}")).collect(),
        port: local.port(),
    });
    let app = Router::new()
        .route("/", get(page))
        .route("/api/state", get(live_state))
        .route("/dashboard.js", get(script))
        .route("/annotate", post(annotate))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state);
    axum::serve(listener, app).await?;
    Ok(())
}

/// Admits a request (token or loopback `Host`), then adds the security headers.
async fn guard(State(app): State<Arc<Dashboard>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let admitted = match &app.token {
        Some(token) => offered_token(headers).is_some_and(|t| token.matches(&t)),
        None => loopback_host(headers, app.port),
    };
    let mut response = if admitted {
        next.run(request).await
    } else if app.token.is_some() {
        (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Basic realm=\"mailtls dashboard\"",
            )],
            "the dashboard's token is needed (as the password, or Authorization: Bearer)\n",
        )
            .into_response()
    } else {
        (
            StatusCode::MISDIRECTED_REQUEST,
            "use http://127.0.0.1 or http://localhost with the dashboard's port\n",
        )
            .into_response()
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // Not no-referrer: under it a browser sends `Origin: null` with the forms' posts,
        // which the origin check must refuse.
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The token from `Authorization: Bearer T` or basic auth's password.
fn offered_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Some(token.trim().to_string());
    }
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split_once(':')?.1.to_string())
}

fn loopback_host(headers: &HeaderMap, port: u16) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|name| host == format!("{name}:{port}"))
}

/// A form's or query's text field: empty is not given.
fn given(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

#[derive(Debug, Default, Deserialize)]
struct FilterQuery {
    verdict: Option<String>,
    owner: Option<String>,
    listener: Option<String>,
    since: Option<String>,
    unowned: Option<String>,
}

fn bad_request(message: impl std::fmt::Display) -> Response {
    (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response()
}

/// Runs `work` on the store (and the register) off the async threads.
async fn with_store<T: Send + 'static>(
    app: &Arc<Dashboard>,
    work: impl FnOnce(&mut Store, Option<&RegisterView>) -> Result<T, store::StoreError>
        + Send
        + 'static,
) -> Result<T, Response> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || {
        let mut store = app.store.lock().unwrap_or_else(|p| p.into_inner());
        work(&mut store, app.register.as_ref())
    })
    .await
    .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())?
    .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response())
}

/// The report data with the live state digest.
fn live_data(
    store: &mut Store,
    register: Option<&RegisterView>,
) -> Result<(ReportData, Vec<store::ClientSummary>, String), store::StoreError> {
    let clients = store.clients()?;
    let range = DayRange::default();
    let per_client = store.client_sessions(range)?;
    let days = store.daily_sessions(range)?;
    let now = SystemTime::now();
    let mut data = ReportData::build(clients.clone(), &per_client, &days, range, now);
    data.register = match register {
        Some(view) => view.section(store, now)?,
        None => None,
    };
    let state =
        serde_json::to_string(&(&data.totals, &data.clients, &data.register)).unwrap_or_default();
    Ok((data, clients, sha256_hex(state.as_bytes())))
}

async fn page(State(app): State<Arc<Dashboard>>, Query(query): Query<FilterQuery>) -> Response {
    let verdict = match given(query.verdict.clone()).map(|v| v.parse::<Verdict>()) {
        Some(Err(e)) => return bad_request(e),
        Some(Ok(v)) => Some(v),
        None => None,
    };
    let since = match given(query.since.clone()).map(|t| parse_time(&t, SystemTime::now())) {
        Some(Err(e)) => return bad_request(e),
        Some(Ok(t)) => Some(t),
        None => None,
    };
    let unowned = given(query.unowned.clone()).is_some();
    let filter = ClientFilter {
        verdict,
        since,
        listener: given(query.listener.clone()),
        owner: given(query.owner.clone()),
        unowned,
    };
    let (data, mut clients, state) = match with_store(&app, live_data).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    clients.retain(|c| filter.admits(c));
    sort_by_risk(&mut clients);
    let not_listed = clients.len().saturating_sub(MAX_LIVE_ROWS);
    clients.truncate(MAX_LIVE_ROWS);
    let live = LiveView {
        csrf: app.csrf.clone(),
        verdict: query.verdict.unwrap_or_default(),
        owner: query.owner.unwrap_or_default(),
        listener: query.listener.unwrap_or_default(),
        since: query.since.unwrap_or_default(),
        unowned,
        clients: clients.iter().map(ClientRow::of).collect(),
        not_listed,
        verdicts: Verdict::ALL.iter().map(|v| v.as_str()).collect(),
        state,
    };
    match render_html(&data, Some(&live)) {
        Ok(html) => Html(html).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

async fn live_state(State(app): State<Arc<Dashboard>>) -> Response {
    match with_store(&app, live_data).await {
        Ok((_, _, state)) => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "state": state }).to_string(),
        )
            .into_response(),
        Err(response) => response,
    }
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct AnnotateForm {
    csrf: Option<String>,
    client: String,
    owner: Option<String>,
    device: Option<String>,
    note: Option<String>,
}

/// Whether the request comes from this dashboard's own pages: no cross-site `Origin` or
/// `Sec-Fetch-Site`.
fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let host = text(header::HOST);
    let origin_ok = match text(header::ORIGIN) {
        None => true,
        Some(origin) => host
            .is_some_and(|h| origin == format!("http://{h}") || origin == format!("https://{h}")),
    };
    let fetch_site_ok = text(axum::http::HeaderName::from_static("sec-fetch-site"))
        .is_none_or(|site| site == "same-origin" || site == "none");
    origin_ok && fetch_site_ok
}

async fn annotate(
    State(app): State<Arc<Dashboard>>,
    headers: HeaderMap,
    Form(form): Form<AnnotateForm>,
) -> Response {
    let offered = form.csrf.unwrap_or_default();
    let csrf_ok = Sha256::digest(offered.as_bytes()) == Sha256::digest(app.csrf.as_bytes());
    if !csrf_ok || !same_origin(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "refused: not posted from this dashboard's page\n",
        )
            .into_response();
    }
    let annotation = Annotation {
        owner: given(form.owner),
        device: given(form.device),
        note: given(form.note),
    };
    if annotation == Annotation::default() {
        return bad_request("give an owner, a device or a note");
    }
    let subject = AnnotationSubject::parse(form.client.trim());
    match with_store(&app, move |store, _| {
        store.annotate(&subject, &annotation, SystemTime::now())
    })
    .await
    {
        Ok(()) => Redirect::to("/").into_response(),
        Err(response) => response,
    }
}
