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

/// Where the dashboard reads the gateway's policies, and so the exception register, from.
/// Asked at every page load and poll: it should be cheap while nothing changed (compare the
/// files' times) and hand back the same `Arc` then, since a new one has the register judged
/// again at once (`mailtls exceptions add` shows without a restart).
pub trait PolicySource: Send + Sync {
    /// The policies as they are now.
    fn current(&self) -> Arc<PolicySet>;
}

/// Policies that never change (a register given once, as in tests).
impl PolicySource for Arc<PolicySet> {
    fn current(&self) -> Arc<PolicySet> {
        self.clone()
    }
}

/// How long a judged register is shown before it is judged again, while its policies stay
/// the same.
const REGISTER_JUDGED_FOR: Duration = Duration::from_secs(60);

/// The gateway's policies and their register as last judged. Judged again when the policies
/// change, else at most once a minute rather than at every 2-second poll: the warnings read
/// the last 30 days of raw sessions, which on a busy store is far more than the rollups the
/// rest of the page reads, and they move in days.
struct RegisterView {
    source: Box<dyn PolicySource>,
    judged: Mutex<Option<JudgedRegister>>,
}

/// A register section, when it was judged and of which policies.
struct JudgedRegister {
    at: Instant,
    set: Arc<PolicySet>,
    section: Option<RegisterSection>,
}

impl RegisterView {
    fn section(
        &self,
        store: &mut Store,
        now: SystemTime,
    ) -> Result<Option<RegisterSection>, store::StoreError> {
        let set = self.source.current();
        let mut judged = self.judged.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(last) = judged.as_ref() {
            if Arc::ptr_eq(&last.set, &set) && last.at.elapsed() < REGISTER_JUDGED_FOR {
                return Ok(last.section.clone());
            }
        }
        let section = RegisterSection::judge(store, Some(&set), now)?;
        *judged = Some(JudgedRegister {
            at: Instant::now(),
            set,
            section: section.clone(),
        });
        Ok(section)
    }
}

/// How long session counts alone leave the live state as it was: a busy gateway changes them
/// every second, and each change reloads every open tab. New clients, verdicts, owners and
/// the register change it at once.
const COUNTS_FOLLOWED_EVERY: Duration = Duration::from_secs(60);

/// The state the page's script polls for, coarser than the inventory itself.
#[derive(Default)]
struct LiveState {
    /// The counts' digest last published, and when it was taken.
    counts: Mutex<Option<(Instant, String)>>,
}

impl LiveState {
    /// The state to publish for an inventory whose clients, verdicts, owners and register
    /// digest to `structure` and whose session counts and times digest to `counts`, at `now`.
    fn publish(&self, structure: &str, counts: &str, now: Instant) -> String {
        let mut published = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let stale = published.as_ref().is_none_or(|(at, _)| {
            now.checked_duration_since(*at)
                .is_none_or(|age| age >= COUNTS_FOLLOWED_EVERY)
        });
        if stale {
            *published = Some((now, counts.to_string()));
        }
        let counts = published.as_ref().map_or(counts, |(_, c)| c.as_str());
        sha256_hex(format!("{structure}:{counts}").as_bytes())
    }
}

struct Dashboard {
    store: Mutex<Store>,
    /// The exception register the page shows; none without a config.
    register: Option<RegisterView>,
    live_state: LiveState,
    token: Option<DashboardToken>,
    csrf: String,
    port: u16,
}

/// Serves the dashboard on `listener` until the process ends; with `register` (where the
/// gateway's policies are read), the page shows its exception register and warnings, judged
/// again when the policies change and at least once a minute.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Store,
    token: Option<DashboardToken>,
    register: Option<Box<dyn PolicySource>>,
) -> Result<(), DashboardError> {
    let local = listener.local_addr()?;
    check_exposure(local, token.as_ref())?;
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|e| DashboardError::Random(e.to_string()))?;
    let state = Arc::new(Dashboard {
        store: Mutex::new(store),
        register: register.map(|source| RegisterView {
            source,
            judged: Mutex::new(None),
        }),
        live_state: LiveState::default(),
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

/// A filter field of the query: empty is not given.
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
    .map_err(store_failure)
}

/// The answer to a store error: the request's own fault (an unknown client, a field too long)
/// is 422 with the reason; the store failing is 503, worth retrying.
fn store_failure(error: store::StoreError) -> Response {
    let status = match error {
        store::StoreError::AnnotationRefused(_) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, format!("{error}\n")).into_response()
}

/// The report data with the digests of its structure (clients, verdicts, owners, register)
/// and of its session counts and times, for [`LiveState::publish`].
fn live_data(
    store: &mut Store,
    register: Option<&RegisterView>,
) -> Result<(ReportData, Vec<store::ClientSummary>, [String; 2]), store::StoreError> {
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
    let counts = serde_json::to_string(&(&data.totals, &data.clients)).unwrap_or_default();
    let mut totals = data.totals.clone();
    (
        totals.sessions,
        totals.legacy_sessions,
        totals.plaintext_sessions,
    ) = (0, 0, 0);
    let rows: Vec<ClientRow> = data
        .clients
        .iter()
        .map(|row| ClientRow {
            sessions: 0,
            last_seen: String::new(),
            ..row.clone()
        })
        .collect();
    let structure = serde_json::to_string(&(&totals, &rows, &data.register)).unwrap_or_default();
    let digests = [
        sha256_hex(structure.as_bytes()),
        sha256_hex(counts.as_bytes()),
    ];
    Ok((data, clients, digests))
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
    let (data, mut clients, [structure, counts]) = match with_store(&app, live_data).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let state = app.live_state.publish(&structure, &counts, Instant::now());
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
        Ok((_, _, [structure, counts])) => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({
                "state": app.live_state.publish(&structure, &counts, Instant::now())
            })
            .to_string(),
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

/// The annotate form: the three fields, and the values the page showed in them. A field equal
/// to what was shown is left as it is (so an owner the client has from its network is not
/// copied onto the client); one emptied is cleared; a field not posted is kept.
#[derive(Debug, Deserialize)]
struct AnnotateForm {
    csrf: Option<String>,
    client: String,
    owner: Option<String>,
    device: Option<String>,
    note: Option<String>,
    shown_owner: Option<String>,
    shown_device: Option<String>,
    shown_note: Option<String>,
}

impl AnnotateForm {
    /// What to write: the fields changed from what the page showed (blank clears).
    fn changes(&self) -> Annotation {
        let changed = |value: &Option<String>, shown: &Option<String>| {
            value.clone().filter(|value| Some(value) != shown.as_ref())
        };
        Annotation {
            owner: changed(&self.owner, &self.shown_owner),
            device: changed(&self.device, &self.shown_device),
            note: changed(&self.note, &self.shown_note),
        }
    }

    /// Whether the form posted any field at all.
    fn posted_any(&self) -> bool {
        self.owner.is_some() || self.device.is_some() || self.note.is_some()
    }
}

/// The fields `asked` cleared that `shown` (the client's annotation once written) still has,
/// because a wider subject sets them.
fn still_inherited(asked: &Annotation, shown: Option<&Annotation>) -> Vec<String> {
    let cleared = |field: &Option<String>| field.as_deref().is_some_and(|f| f.trim().is_empty());
    let Some(shown) = shown else {
        return Vec::new();
    };
    [
        ("owner", &asked.owner, &shown.owner),
        ("device", &asked.device, &shown.device),
        ("note", &asked.note, &shown.note),
    ]
    .into_iter()
    .filter(|(_, asked, _)| cleared(asked))
    .filter_map(|(name, _, shown)| shown.as_ref().map(|value| format!("{name} {value:?}")))
    .collect()
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
    let offered = form.csrf.as_deref().unwrap_or_default();
    let csrf_ok = Sha256::digest(offered.as_bytes()) == Sha256::digest(app.csrf.as_bytes());
    if !csrf_ok || !same_origin(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "refused: not posted from this dashboard's page\n",
        )
            .into_response();
    }
    if !form.posted_any() {
        return bad_request("give an owner, a device or a note");
    }
    let annotation = form.changes();
    if annotation == Annotation::default() {
        // Saved unchanged: nothing to write.
        return Redirect::to("/").into_response();
    }
    let subject = AnnotationSubject::parse(form.client.trim());
    let written = with_store(&app, move |store, _| {
        store.annotate(&subject, &annotation, SystemTime::now())?;
        // A field cleared on the client that a wider subject (its network, say) also sets
        // still shows; say where to clear it rather than appear to ignore the form.
        let AnnotationSubject::Client(id) = subject else {
            return Ok(Vec::new());
        };
        let clients = store.clients()?;
        let shown = clients.iter().find(|c| c.id == id);
        Ok(still_inherited(
            &annotation,
            shown.and_then(|c| c.annotation.as_ref()),
        ))
    })
    .await;
    match written {
        Ok(inherited) if inherited.is_empty() => Redirect::to("/").into_response(),
        Ok(inherited) => (
            StatusCode::CONFLICT,
            format!(
                "cleared on {}, but it still shows {}, set on its login, address or network: \
                 clear it there (mailtls clients annotate 192.0.2.0/24 --owner \"\")\n",
                form.client.trim(),
                inherited.join(" and ")
            ),
        )
            .into_response(),
        Err(response) => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_counts_move_the_live_state_once_a_minute_the_rest_at_once() {
        let live = LiveState::default();
        let start = Instant::now();
        let first = live.publish("clients", "7 sessions", start);
        // Sessions arriving on a busy gateway: the tabs are not reloaded every poll.
        let later = start + Duration::from_secs(2);
        assert_eq!(live.publish("clients", "8 sessions", later), first);
        // A new client, verdict, owner or register change: at once.
        let changed = live.publish("clients and one more", "8 sessions", later);
        assert_ne!(changed, first);
        // A minute on, the counts show.
        let minute = start + COUNTS_FOLLOWED_EVERY;
        let counted = live.publish("clients and one more", "9 sessions", minute);
        assert_ne!(counted, changed);
        assert_eq!(
            live.publish("clients and one more", "10 sessions", minute),
            counted
        );
    }

    #[test]
    fn a_refused_annotation_is_the_requests_fault_a_failing_store_is_not() {
        let refused = store_failure(store::StoreError::AnnotationRefused(
            "no client c9 in the inventory".into(),
        ));
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let failing = store_failure(store::StoreError::SchemaTooNew {
            path: "mailtls.db".into(),
            found: 99,
            supported: 1,
        });
        assert_eq!(failing.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    fn form(fields: [Option<&str>; 6]) -> AnnotateForm {
        let text = |i: usize| fields[i].map(str::to_string);
        AnnotateForm {
            csrf: None,
            client: "c1".into(),
            owner: text(0),
            device: text(1),
            note: text(2),
            shown_owner: text(3),
            shown_device: text(4),
            shown_note: text(5),
        }
    }

    #[test]
    fn the_form_writes_what_changed_and_an_emptied_field_clears() {
        // Shown owner "Facilities" (maybe from the network), device "Printer", no note; the
        // admin empties the device and writes a note.
        let edited = form([
            Some("Facilities"),
            Some(""),
            Some("3rd floor"),
            Some("Facilities"),
            Some("Printer"),
            Some(""),
        ]);
        let changes = edited.changes();
        assert_eq!(changes.owner, None, "unchanged: not copied onto the client");
        assert_eq!(changes.device.as_deref(), Some(""), "emptied: cleared");
        assert_eq!(changes.note.as_deref(), Some("3rd floor"));
        // Posted without the shown values (curl): every field posted is written.
        let bare = form([Some(""), None, None, None, None, None]);
        assert_eq!(bare.changes().owner.as_deref(), Some(""));
        assert!(!form([None; 6]).posted_any());

        let shown = Annotation {
            owner: Some("Facilities".into()),
            device: None,
            note: Some("kept".into()),
        };
        assert_eq!(
            still_inherited(&changes, Some(&shown)),
            Vec::<String>::new()
        );
        let cleared_owner = Annotation {
            owner: Some(String::new()),
            ..Annotation::default()
        };
        assert_eq!(
            still_inherited(&cleared_owner, Some(&shown)),
            ["owner \"Facilities\""]
        );
    }
}
