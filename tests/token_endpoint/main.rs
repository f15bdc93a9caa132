//! A real OAuth 2.0 token endpoint for the end-to-end tests: it speaks the standard grants over
//! HTTP on loopback and issues HS256 JWTs that the lab Dovecot's `oauth2` passdb validates with
//! the same key. Dovecot, not this program, decides whether a token opens a mailbox.
//!
//! ```text
//! token-endpoint --hs256-key FILE [--lifetime SECS] [--approve-after POLLS] [--interval SECS]
//!     [--secret-client ID,SECRET,SUBJECT]... [--cert-client ID,CERT_PEM,PUBLIC_KEY_PEM,SUBJECT]...
//!     [--device-client ID,SUBJECT]...
//! ```
//! `FILE` holds the base64 HMAC key (the form Dovecot's key dictionary stores). The first line
//! on stdout is `listening on http://ADDR`. Routes:
//! - `POST /token`: `client_credentials` (client secret, or a `private_key_jwt` assertion whose
//!   RS256 signature, `x5t#S256`, audience and issuer are checked), `refresh_token` (rotated on
//!   each use), `urn:ietf:params:oauth:grant-type:device_code` (pending until the N-th poll);
//! - `POST /devicecode`: the device authorization endpoint;
//! - `GET /stats`: request counts per grant, as JSON;
//! - `POST /fail/{mode}`: `error` (every token request refused with 400 `invalid_client`),
//!   `unavailable` (503) or `none`, for fault tests;
//! - `POST /delay/{ms}`: answer token requests that much later, so requests made "at once"
//!   by a test really overlap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

struct CertClient {
    thumbprint: String,
    key: DecodingKey,
    subject: String,
}

#[derive(Default)]
struct Stats {
    client_credentials: u64,
    refresh_token: u64,
    device_authorization: u64,
    device_polls: u64,
    refused: u64,
    token_requests: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Failure {
    None,
    Error,
    Unavailable,
}

struct Device {
    client_id: String,
    subject: String,
    polls: u32,
}

struct Endpoint {
    signing_key: EncodingKey,
    lifetime: u64,
    approve_after: u32,
    interval: u64,
    base_url: String,
    secret_clients: HashMap<String, (String, String)>,
    cert_clients: HashMap<String, CertClient>,
    device_clients: HashMap<String, String>,
    refresh_tokens: HashMap<String, (String, String)>,
    devices: HashMap<String, Device>,
    stats: Stats,
    failure: Failure,
    delay: Duration,
}

type Shared = Arc<Mutex<Endpoint>>;

fn random_text() -> String {
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes).expect("randomness");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

impl Endpoint {
    /// An access token for `subject`, plus a refresh token when `with_refresh`.
    fn issue(&mut self, client_id: &str, subject: &str, with_refresh: bool) -> Response {
        let now = now_secs();
        let claims = json!({
            "sub": subject,
            "iat": now,
            "exp": now + self.lifetime,
            "iss": self.base_url,
            "client_id": client_id,
            "jti": random_text(),
        });
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.signing_key)
                .expect("HS256 signs");
        let mut answer = json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.lifetime,
        });
        if with_refresh {
            let refresh = random_text();
            self.refresh_tokens.insert(
                refresh.clone(),
                (client_id.to_string(), subject.to_string()),
            );
            answer["refresh_token"] = Value::String(refresh);
        }
        Json(answer).into_response()
    }

    /// The subject of the confidential client that authenticated in `form`, or why not.
    fn authenticate(&self, form: &HashMap<String, String>) -> Result<String, &'static str> {
        let client_id = form.get("client_id").ok_or("client_id missing")?;
        if let Some(assertion) = form.get("client_assertion") {
            if form.get("client_assertion_type").map(String::as_str)
                != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            {
                return Err("wrong client_assertion_type");
            }
            let client = self.cert_clients.get(client_id).ok_or("unknown client")?;
            let header = jsonwebtoken::decode_header(assertion).map_err(|_| "bad assertion")?;
            if header.alg != Algorithm::RS256
                || header.x5t_s256.as_deref() != Some(&client.thumbprint)
            {
                return Err("assertion not signed by the registered certificate");
            }
            let mut validation = Validation::new(Algorithm::RS256);
            validation.set_audience(&[format!("{}/token", self.base_url)]);
            validation.set_issuer(&[client_id]);
            validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
            let data = jsonwebtoken::decode::<Value>(assertion, &client.key, &validation)
                .map_err(|_| "assertion signature or claims invalid")?;
            if data.claims["sub"] != Value::String(client_id.clone()) {
                return Err("assertion sub is not the client");
            }
            return Ok(client.subject.clone());
        }
        match (
            self.secret_clients.get(client_id),
            form.get("client_secret"),
        ) {
            (Some((secret, subject)), Some(given)) if secret == given => Ok(subject.clone()),
            _ => Err("client authentication failed"),
        }
    }
}

async fn token(
    State(shared): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let delay = {
        let mut endpoint = shared.lock().expect("state lock");
        endpoint.stats.token_requests += 1;
        endpoint.delay
    };
    tokio::time::sleep(delay).await;
    let mut endpoint = shared.lock().expect("state lock");
    match endpoint.failure {
        Failure::Unavailable => {
            return (StatusCode::SERVICE_UNAVAILABLE, "down for the test").into_response()
        }
        Failure::Error => {
            endpoint.stats.refused += 1;
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_client",
                "the test endpoint refuses every request",
            );
        }
        Failure::None => {}
    }
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    match grant.as_str() {
        "client_credentials" => {
            endpoint.stats.client_credentials += 1;
            match endpoint.authenticate(&form) {
                Ok(subject) => {
                    let client_id = form["client_id"].clone();
                    endpoint.issue(&client_id, &subject, false)
                }
                Err(why) => {
                    endpoint.stats.refused += 1;
                    oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", why)
                }
            }
        }
        "refresh_token" => {
            endpoint.stats.refresh_token += 1;
            let given = form.get("refresh_token").cloned().unwrap_or_default();
            match endpoint.refresh_tokens.remove(&given) {
                Some((client_id, subject)) if form.get("client_id") == Some(&client_id) => {
                    endpoint.issue(&client_id, &subject, true)
                }
                _ => {
                    endpoint.stats.refused += 1;
                    oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "unknown refresh token",
                    )
                }
            }
        }
        "urn:ietf:params:oauth:grant-type:device_code" => {
            endpoint.stats.device_polls += 1;
            let code = form.get("device_code").cloned().unwrap_or_default();
            let approve_after = endpoint.approve_after;
            let Some(device) = endpoint.devices.get_mut(&code) else {
                endpoint.stats.refused += 1;
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "expired_token",
                    "unknown device code",
                );
            };
            device.polls += 1;
            if device.polls < approve_after {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "authorization_pending",
                    "waiting for the user",
                );
            }
            let device = endpoint.devices.remove(&code).expect("present");
            endpoint.issue(&device.client_id, &device.subject, true)
        }
        _ => {
            endpoint.stats.refused += 1;
            oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "unknown grant",
            )
        }
    }
}

async fn device_code(
    State(shared): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut endpoint = shared.lock().expect("state lock");
    endpoint.stats.device_authorization += 1;
    if endpoint.failure == Failure::Unavailable {
        return (StatusCode::SERVICE_UNAVAILABLE, "down for the test").into_response();
    }
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    let Some(subject) = endpoint.device_clients.get(&client_id).cloned() else {
        endpoint.stats.refused += 1;
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "not a device client",
        );
    };
    let device_code = random_text();
    endpoint.devices.insert(
        device_code.clone(),
        Device {
            client_id,
            subject,
            polls: 0,
        },
    );
    Json(json!({
        "device_code": device_code,
        "user_code": "MTLS-TEST",
        "verification_uri": format!("{}/device", endpoint.base_url),
        "expires_in": 300,
        "interval": endpoint.interval,
    }))
    .into_response()
}

async fn stats(State(shared): State<Shared>) -> Json<Value> {
    let endpoint = shared.lock().expect("state lock");
    let s = &endpoint.stats;
    Json(json!({
        "token_requests": s.token_requests,
        "client_credentials": s.client_credentials,
        "refresh_token": s.refresh_token,
        "device_authorization": s.device_authorization,
        "device_polls": s.device_polls,
        "refused": s.refused,
    }))
}

async fn delay(State(shared): State<Shared>, Path(ms): Path<u64>) -> StatusCode {
    shared.lock().expect("state lock").delay = Duration::from_millis(ms);
    StatusCode::NO_CONTENT
}

async fn fail(State(shared): State<Shared>, Path(mode): Path<String>) -> Response {
    let failure = match mode.as_str() {
        "none" => Failure::None,
        "error" => Failure::Error,
        "unavailable" => Failure::Unavailable,
        _ => return (StatusCode::NOT_FOUND, "modes: none, error, unavailable").into_response(),
    };
    shared.lock().expect("state lock").failure = failure;
    StatusCode::NO_CONTENT.into_response()
}

fn split(value: &str, parts: usize, option: &str) -> Vec<String> {
    let fields: Vec<String> = value.split(',').map(str::to_string).collect();
    if fields.len() != parts {
        panic!("{option} takes {parts} comma-separated fields, got '{value}'");
    }
    fields
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut key_file = None;
    let mut lifetime = 3600;
    let mut approve_after = 2;
    let mut interval = 1;
    let mut secret_clients = HashMap::new();
    let mut cert_clients = HashMap::new();
    let mut device_clients = HashMap::new();
    while let Some(option) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{option} needs a value"));
        match option.as_str() {
            "--hs256-key" => key_file = Some(value),
            "--lifetime" => lifetime = value.parse().expect("--lifetime SECS"),
            "--approve-after" => approve_after = value.parse().expect("--approve-after POLLS"),
            "--interval" => interval = value.parse().expect("--interval SECS"),
            "--secret-client" => {
                let f = split(&value, 3, &option);
                secret_clients.insert(f[0].clone(), (f[1].clone(), f[2].clone()));
            }
            "--cert-client" => {
                let f = split(&value, 4, &option);
                let der = CertificateDer::from_pem_file(&f[1]).expect("certificate PEM");
                let public = std::fs::read(&f[2]).expect("public key PEM");
                cert_clients.insert(
                    f[0].clone(),
                    CertClient {
                        thumbprint: URL_SAFE_NO_PAD.encode(Sha256::digest(&der)),
                        key: DecodingKey::from_rsa_pem(&public).expect("RSA public key PEM"),
                        subject: f[3].clone(),
                    },
                );
            }
            "--device-client" => {
                let f = split(&value, 2, &option);
                device_clients.insert(f[0].clone(), f[1].clone());
            }
            other => panic!("unknown option {other}"),
        }
    }
    let key_text = std::fs::read_to_string(key_file.expect("--hs256-key FILE is required"))
        .expect("read the HS256 key file");
    let key = STANDARD
        .decode(key_text.trim())
        .expect("the HS256 key file holds base64");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("local address");
    let base_url = format!("http://{address}");
    let shared: Shared = Arc::new(Mutex::new(Endpoint {
        signing_key: EncodingKey::from_secret(&key),
        lifetime,
        approve_after,
        interval,
        base_url: base_url.clone(),
        secret_clients,
        cert_clients,
        device_clients,
        refresh_tokens: HashMap::new(),
        devices: HashMap::new(),
        stats: Stats::default(),
        failure: Failure::None,
        delay: Duration::ZERO,
    }));
    let app = Router::new()
        .route("/token", post(token))
        .route("/devicecode", post(device_code))
        .route("/stats", get(stats))
        .route("/fail/{mode}", post(fail))
        .route("/delay/{ms}", post(delay))
        .with_state(shared);
    println!("listening on {base_url}");
    // The harness reads that line through a pipe: it must not wait in a buffer.
    use std::io::Write;
    std::io::stdout().flush().expect("stdout");
    axum::serve(listener, app).await.expect("serve");
}
