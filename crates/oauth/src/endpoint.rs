//! One app's token endpoint over HTTPS: client credentials (secret or certificate assertion),
//! refresh tokens and the device code flow. The oauth2 crate shapes the requests and parses the
//! answers; reqwest carries them over rustls with the `trust` crate's verifier, so the token
//! endpoint is checked exactly like the upstream mail server.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use oauth2::basic::{BasicClient, BasicTokenResponse};
use oauth2::url::{Host, Url};
use oauth2::{
    AuthType, ClientId, ClientSecret, DeviceAuthorizationUrl, ErrorResponseType, RefreshToken,
    RequestTokenError, Scope, StandardDeviceAuthorizationResponse, StandardErrorResponse,
    TokenResponse, TokenUrl,
};
use proto::Secret;
use rustls::ClientConfig;

use crate::assertion::{ClientCertificate, ASSERTION_TYPE};
use crate::error::{bounded, SetupError, TokenError};
use crate::settings::{AppSettings, ClientAuth, Grant};

/// Largest answer read from a token endpoint: real ones are a few KiB.
const MAX_ANSWER: usize = 256 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Checks an endpoint URL: HTTPS, or plain HTTP to a loopback IP address (a local test
/// endpoint); never credentials inside the URL, as URLs are logged.
pub fn endpoint_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("\"{text}\" is not a URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("holds a user name or password; give credentials in their own keys".into());
    }
    let loopback = match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err(format!(
            "\"{text}\" is plain HTTP; use https:// (plain HTTP is allowed only to a loopback IP address, for tests)"
        )),
        other => Err(format!("\"{text}\" has scheme {other}; use https://")),
    }
}

/// How the app authenticates, loaded from its files.
enum Credential {
    Secret(Secret),
    Certificate(ClientCertificate),
    Public,
}

/// A token as the endpoint issued it.
pub struct IssuedToken {
    /// The access token sent upstream.
    pub access: Secret,
    /// The refresh token, when the endpoint gave one.
    pub refresh: Option<Secret>,
    /// `expires_in`, when the endpoint gave it.
    pub expires_in: Option<Duration>,
}

/// A device login in progress: what the person signing in must see, and the code to poll with.
pub struct DeviceLogin {
    /// The code the person types at [`DeviceLogin::verification_uri`].
    pub user_code: String,
    /// Where to type it.
    pub verification_uri: String,
    /// A link that carries the code, when the endpoint gives one.
    pub verification_uri_complete: Option<String>,
    /// How long the code stays valid.
    pub expires_in: Duration,
    details: StandardDeviceAuthorizationResponse,
}

/// The token endpoint of one `[[oauth]]` app.
pub struct TokenEndpoint {
    name: String,
    token_url: Url,
    device_url: Option<Url>,
    client_id: String,
    scopes: Vec<String>,
    grant: Grant,
    credential: Credential,
    http: reqwest::Client,
}

/// A transport failure, as the oauth2 crate's HTTP client error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct HttpFailure(String);

/// Adds the scopes and, for a certificate app, the client assertion to a token request of the
/// oauth2 crate, sends it and turns the answer into an [`IssuedToken`]. A macro because the
/// crate's request types share these methods by name only, through no trait.
macro_rules! send_token_request {
    ($endpoint:expr, $request:expr, $now:expr) => {{
        let mut request = $request.add_scopes($endpoint.scopes.iter().cloned().map(Scope::new));
        for (name, value) in $endpoint.assertion($now)?.into_iter().flatten() {
            request = request.add_extra_param(name, value);
        }
        let http = $endpoint.sender();
        request
            .request_async(&http)
            .await
            .map(issued)
            .map_err(|e| $endpoint.token_error(e))
    }};
}

impl TokenEndpoint {
    /// Loads the app's credential files and builds its HTTPS client.
    pub fn new(app: &AppSettings) -> Result<Self, SetupError> {
        let token_url =
            endpoint_url(&app.token_url).map_err(|e| SetupError::new("token_url", e))?;
        let device_url = app
            .device_url
            .as_deref()
            .map(endpoint_url)
            .transpose()
            .map_err(|e| SetupError::new("device_url", e))?;
        let credential = match &app.client_auth {
            ClientAuth::SecretFile(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    SetupError::new(
                        "client_secret_file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                let secret = Secret::new(text.trim());
                drop(zeroize::Zeroizing::new(text));
                if secret.expose().is_empty() {
                    return Err(SetupError::new(
                        "client_secret_file",
                        format!(
                            "{} is empty; put the app's client secret in it",
                            path.display()
                        ),
                    ));
                }
                Credential::Secret(secret)
            }
            ClientAuth::Certificate {
                certificate,
                private_key,
            } => Credential::Certificate(ClientCertificate::load(certificate, private_key)?),
            ClientAuth::Public => Credential::Public,
        };
        Ok(TokenEndpoint {
            name: app.name.clone(),
            token_url,
            device_url,
            client_id: app.client_id.clone(),
            scopes: app.scope.split_whitespace().map(str::to_string).collect(),
            grant: app.grant,
            credential,
            http: http_client(app.ca_file.as_deref())?,
        })
    }

    /// The app's `[[oauth]]` name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The grant this app's accounts use.
    pub fn grant(&self) -> Grant {
        self.grant
    }

    /// The scopes, space-separated as configured.
    pub fn scope(&self) -> String {
        self.scopes.join(" ")
    }

    fn client(
        &self,
    ) -> oauth2::Client<
        oauth2::basic::BasicErrorResponse,
        BasicTokenResponse,
        oauth2::basic::BasicTokenIntrospectionResponse,
        oauth2::StandardRevocableToken,
        oauth2::basic::BasicRevocationErrorResponse,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    > {
        let client = BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_token_uri(TokenUrl::from_url(self.token_url.clone()))
            // Credentials in the form body: no Basic-auth encoding pitfalls, and the form
            // every OAuth 2.0 endpoint (Entra ID included) accepts.
            .set_auth_type(AuthType::RequestBody);
        match &self.credential {
            Credential::Secret(secret) => client.set_client_secret(ClientSecret::new(
                String::from_utf8_lossy(secret.expose()).into_owned(),
            )),
            _ => client,
        }
    }

    /// The client assertion form fields, when the app signs in with a certificate.
    fn assertion(
        &self,
        now: SystemTime,
    ) -> Result<Option<[(&'static str, String); 2]>, TokenError> {
        let Credential::Certificate(certificate) = &self.credential else {
            return Ok(None);
        };
        let mut jti = [0u8; 16];
        getrandom::fill(&mut jti).map_err(|e| self.malformed(format!("no randomness: {e}")))?;
        let jwt = certificate
            .assertion(
                &self.client_id,
                self.token_url.as_str(),
                now,
                &URL_SAFE_NO_PAD.encode(jti),
            )
            .map_err(|e| self.malformed(format!("cannot sign the client assertion: {e}")))?;
        Ok(Some([
            ("client_assertion_type", ASSERTION_TYPE.to_string()),
            ("client_assertion", jwt),
        ]))
    }

    /// A token for the app itself (client credentials grant).
    pub async fn client_credentials(&self, now: SystemTime) -> Result<IssuedToken, TokenError> {
        let client = self.client();
        send_token_request!(self, client.exchange_client_credentials(), now)
    }

    /// A new access token from a refresh token.
    pub async fn refresh(
        &self,
        refresh_token: &Secret,
        now: SystemTime,
    ) -> Result<IssuedToken, TokenError> {
        let client = self.client();
        let token = RefreshToken::new(String::from_utf8_lossy(refresh_token.expose()).into_owned());
        send_token_request!(self, client.exchange_refresh_token(&token), now)
    }

    /// Starts a device login (RFC 8628): the code and URL to show the person signing in.
    pub async fn start_device_login(&self) -> Result<DeviceLogin, TokenError> {
        let Some(device_url) = &self.device_url else {
            return Err(self.malformed("no device_url is configured for this app".into()));
        };
        let client = self
            .client()
            .set_device_authorization_url(DeviceAuthorizationUrl::from_url(device_url.clone()));
        let http = self.sender();
        let details: StandardDeviceAuthorizationResponse = client
            .exchange_device_code()
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .request_async(&http)
            .await
            .map_err(|e| self.token_error(e))?;
        Ok(DeviceLogin {
            user_code: bounded(details.user_code().secret()),
            verification_uri: bounded(details.verification_uri().as_str()),
            verification_uri_complete: details
                .verification_uri_complete()
                .map(|u| bounded(u.secret())),
            expires_in: details.expires_in(),
            details,
        })
    }

    /// Polls until the person has signed in, the code expires or the endpoint refuses. The
    /// oauth2 crate paces the polls as RFC 8628 says: `authorization_pending` keeps the
    /// interval, `slow_down` adds five seconds, transport errors back off, `expired_token` and
    /// `access_denied` end the wait.
    pub async fn finish_device_login(
        &self,
        login: &DeviceLogin,
    ) -> Result<IssuedToken, TokenError> {
        let client = self.client();
        let http = self.sender();
        let answer = client
            .exchange_device_access_token(&login.details)
            .request_async(&http, tokio::time::sleep, Some(login.expires_in))
            .await
            .map_err(|e| self.token_error(e))?;
        Ok(issued(answer))
    }

    /// The HTTP client as the oauth2 crate calls it.
    fn sender(
        &self,
    ) -> impl Fn(
        oauth2::HttpRequest,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, HttpFailure>> + Send>,
    > {
        let http = self.http.clone();
        move |request| Box::pin(send(http.clone(), request))
    }

    fn malformed(&self, reason: String) -> TokenError {
        TokenError::Malformed {
            endpoint: self.token_url.to_string(),
            reason,
        }
    }

    fn token_error<T: ErrorResponseType + AsRef<str> + std::fmt::Display + 'static>(
        &self,
        error: RequestTokenError<HttpFailure, StandardErrorResponse<T>>,
    ) -> TokenError {
        let endpoint = self.token_url.to_string();
        match error {
            RequestTokenError::Request(failure) => TokenError::Unreachable {
                endpoint,
                reason: failure.0,
            },
            RequestTokenError::ServerResponse(answer) => TokenError::Refused {
                endpoint,
                error: bounded(answer.error().as_ref()),
                description: answer.error_description().map(|d| bounded(d)),
            },
            // Only the JSON path: the parser's message may quote the body, which may hold a
            // token.
            RequestTokenError::Parse(e, _) => TokenError::Malformed {
                endpoint,
                reason: format!("unexpected JSON at '{}'", e.path()),
            },
            RequestTokenError::Other(reason) => TokenError::Malformed {
                endpoint,
                reason: bounded(&reason),
            },
        }
    }
}

fn issued(answer: BasicTokenResponse) -> IssuedToken {
    IssuedToken {
        access: Secret::new(answer.access_token().secret().as_bytes()),
        refresh: answer
            .refresh_token()
            .map(|r| Secret::new(r.secret().as_bytes())),
        expires_in: answer.expires_in(),
    }
}

/// An HTTPS client that trusts what the mail legs trust, follows no redirect (a redirect could
/// carry the client secret elsewhere) and gives up in bounded time.
fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client, SetupError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = trust::verifier(ca_file, provider.clone())
        .map_err(|e| SetupError::new("ca_file", e.to_string()))?;
    let tls = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| SetupError::new("token_url", format!("rustls refused TLS 1.2/1.3: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| SetupError::new("token_url", format!("cannot build the HTTPS client: {e}")))
}

async fn send(
    http: reqwest::Client,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, HttpFailure> {
    let (parts, body) = request.into_parts();
    let mut response = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpFailure(error_chain(&e)))?;
    let status = response.status();
    // A 5xx is the endpoint being down, not a verdict on the request: report it as such.
    if status.is_server_error() {
        return Err(HttpFailure(format!("answered HTTP {status}")));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| HttpFailure(error_chain(&e)))?
    {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(HttpFailure(format!(
                "answer larger than {} KiB",
                MAX_ANSWER / 1024
            )));
        }
        body.extend_from_slice(&chunk);
    }
    let mut answer = oauth2::HttpResponse::new(body);
    *answer.status_mut() = status;
    *answer.headers_mut() = response.headers().clone();
    Ok(answer)
}

/// reqwest's own message names only the URL; the cause (refused, certificate, timeout) is in
/// its sources.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    bounded(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_is_accepted_and_plain_http_only_to_loopback_ips() {
        assert!(endpoint_url("https://login.microsoftonline.com/t/oauth2/v2.0/token").is_ok());
        assert!(endpoint_url("http://127.0.0.1:8080/token").is_ok());
        assert!(endpoint_url("http://[::1]:8080/token").is_ok());
        for refused in [
            "http://login.example/token",
            "http://localhost/token",
            "http://10.0.0.1/token",
            "ftp://127.0.0.1/token",
            "https://user:pw@login.example/token",
            "not a url",
        ] {
            assert!(endpoint_url(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn an_endpoint_error_description_is_bounded_and_loses_control_characters() {
        let long = format!("a\r\nb{}", "x".repeat(1000));
        let text = bounded(&long);
        assert!(text.starts_with("a  b"));
        assert!(text.chars().count() <= 301);
    }
}
