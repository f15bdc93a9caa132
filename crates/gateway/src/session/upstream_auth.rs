//! Who logs in upstream, decided after the checks and before the upstream login: the device's
//! own user name and password (pass-through), or, on an upstream with `auth = "oauth"`, the
//! mailbox of the local account the device logged in to, with an access token for it; for
//! mail relayed without authentication, the relay account of the listener.

use proto::{BearerMechanism, BearerToken, Credentials, Secret, UpstreamAuth};
use store::Outcome;

use super::SessionEnd;
use crate::listener::UpstreamContext;
use crate::settings::{OAuthMechanism, RelayLogin, UpstreamLogin};
use crate::token_logins::{MailboxSlot, TokenLogins};
use oauth::LocalAccount;

/// The upstream login to make, the session's place in its mailbox's cap (if any), and the
/// token it presents (if any), to be dropped from the cache if the upstream refuses it.
pub(crate) struct Authorised {
    pub auth: UpstreamAuth,
    pub mailbox: Option<MailboxSlot>,
    pub token: Option<PresentedToken>,
}

/// An access token as presented upstream, and whose it is.
pub(crate) struct PresentedToken {
    app: String,
    mailbox: String,
    token: Secret,
}

/// The upstream refused `presented`: the broker drops it so the next login gets a new one.
pub(crate) async fn token_refused(upstream: &UpstreamContext, presented: &PresentedToken) {
    if let Some(tokens) = upstream.tokens.as_ref() {
        let PresentedToken {
            app,
            mailbox,
            token,
        } = presented;
        tokens.broker().forget_refused(app, mailbox, token).await;
    }
}

/// Turns the device's credentials into the upstream login. A wrong local password ends as
/// `AuthFailed` before anything goes upstream; token trouble and a full mailbox get outcomes
/// of their own, so a device is never blamed for what only an admin can fix.
pub(crate) async fn authorise(
    upstream: &UpstreamContext,
    credentials: Credentials,
) -> Result<Authorised, SessionEnd> {
    let (tokens, mechanism) = match upstream.settings.login {
        UpstreamLogin::Passthrough => {
            return Ok(Authorised {
                auth: UpstreamAuth::Password(credentials),
                mailbox: None,
                token: None,
            })
        }
        UpstreamLogin::OAuth(mechanism) => (token_logins(upstream)?, mechanism),
    };

    // The local check: Argon2 off the reactor, a few at a time.
    let account = tokens
        .accounts()
        .verify(credentials.user(), credentials.password())
        .await
        // The pool of password checks is gone: a gateway fault the device cannot fix.
        .map_err(|e| SessionEnd::new(Outcome::TokenUnavailable, e.to_string()))?
        .ok_or_else(|| {
            SessionEnd::new(
                Outcome::AuthFailed,
                "Authentication failed: wrong local user name or password",
            )
        })?;

    with_token(tokens, &account, mechanism).await
}

/// The upstream login for mail relayed without authentication: the relay account's password,
/// or its mailbox with a token (the account's own password is not asked: the listener's
/// networks and senders admitted the client).
pub(crate) async fn relay(
    upstream: &UpstreamContext,
    login: &RelayLogin,
) -> Result<Authorised, SessionEnd> {
    match (login, upstream.settings.login) {
        (RelayLogin::Password(credentials), _) => Ok(Authorised {
            auth: UpstreamAuth::Password(credentials.clone()),
            mailbox: None,
            token: None,
        }),
        (RelayLogin::Account(login), UpstreamLogin::OAuth(mechanism)) => {
            let tokens = token_logins(upstream)?;
            let account = tokens.accounts().account(login).ok_or_else(|| {
                SessionEnd::new(
                    Outcome::TokenUnavailable,
                    format!("the relay account {login} is not an [[account]]"),
                )
            })?;
            with_token(tokens, &account, mechanism).await
        }
        // check-config refuses a relay account on a pass-through upstream.
        (RelayLogin::Account(login), UpstreamLogin::Passthrough) => Err(SessionEnd::new(
            Outcome::TokenUnavailable,
            format!("the relay account {login} needs an upstream with auth = \"oauth\""),
        )),
    }
}

/// The local accounts and tokens of an upstream with `auth = "oauth"`.
fn token_logins(upstream: &UpstreamContext) -> Result<&std::sync::Arc<TokenLogins>, SessionEnd> {
    // Gateway::prepare refuses an oauth upstream without them.
    upstream.tokens.as_ref().ok_or_else(|| {
        SessionEnd::new(
            Outcome::TokenUnavailable,
            "the upstream logs in with OAuth but no accounts are configured",
        )
    })
}

/// The login to `account`'s mailbox with its access token, holding a place in the mailbox's
/// cap.
async fn with_token(
    tokens: &std::sync::Arc<TokenLogins>,
    account: &LocalAccount,
    mechanism: OAuthMechanism,
) -> Result<Authorised, SessionEnd> {
    let mailbox = tokens.take_mailbox(account).ok_or_else(|| {
        SessionEnd::new(
            Outcome::MailboxBusy,
            format!(
                "mailbox {} already has its {} sessions (account max_connections)",
                account.mailbox,
                account.max_connections.unwrap_or_default()
            ),
        )
    })?;

    // The token: cached per mailbox, refreshed ahead of expiry, fetched once for all the
    // logins that need it at the same moment.
    let token = tokens
        .broker()
        .token(&account.oauth, &account.mailbox)
        .await
        .map_err(|e| token_unavailable(&account.mailbox, &e))?;
    let mechanism = match mechanism {
        OAuthMechanism::XOAuth2 => BearerMechanism::XOAuth2,
        OAuthMechanism::OAuthBearer => BearerMechanism::OAuthBearer,
    };
    let presented = PresentedToken {
        app: account.oauth.clone(),
        mailbox: account.mailbox.clone(),
        token: token.token.clone(),
    };
    let bearer = BearerToken::new(account.mailbox.clone(), token.token, mechanism)
        .map_err(|e| token_unavailable(&account.mailbox, &e))?;
    Ok(Authorised {
        auth: UpstreamAuth::Bearer(bearer),
        mailbox: Some(mailbox),
        token: Some(presented),
    })
}

/// The end of a login for which no usable token could be had. The broker's `TokenError` and
/// proto's `BearerTokenError` texts hold no secret.
fn token_unavailable(mailbox: &str, why: &dyn std::fmt::Display) -> SessionEnd {
    SessionEnd::new(
        Outcome::TokenUnavailable,
        format!("no access token for mailbox {mailbox}: {why}"),
    )
}

impl SessionEnd {
    /// What a client is told when the gateway refused its login for a reason that is neither
    /// its password nor its fault; `None` for the outcomes whose detail is the client's text.
    pub(crate) fn refusal_text(&self, protocol: crate::settings::Protocol) -> Option<String> {
        match self.outcome {
            Outcome::TokenUnavailable | Outcome::TokenRefused => Some(format!(
                "{} The mail service cannot sign this account in right now; try again later",
                protocol.try_later_code()
            )),
            Outcome::MailboxBusy => Some(format!(
                "{} This mailbox has as many sessions open as it may; try again later",
                protocol.mailbox_busy_code()
            )),
            _ => None,
        }
    }
}
