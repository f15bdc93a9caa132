//! Who logs in upstream, decided after the checks and before the upstream login: the device's
//! own user name and password (pass-through), or, on an upstream with `auth = "oauth"`, the
//! mailbox of the local account the device logged in to, with an access token for it.

use proto::{BearerMechanism, BearerToken, Credentials, Secret, UpstreamAuth};
use store::Outcome;

use super::SessionEnd;
use crate::listener::UpstreamContext;
use crate::settings::{OAuthMechanism, UpstreamLogin};
use crate::token_logins::MailboxSlot;

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
        tokens.broker.forget_refused(app, mailbox, token).await;
    }
}

/// Turns the device's credentials into the upstream login. A wrong local password ends as
/// `AuthFailed` before anything goes upstream; token trouble and a full mailbox get outcomes
/// of their own, so a device is never blamed for what only an admin can fix.
pub(crate) async fn authorise(
    upstream: &UpstreamContext,
    credentials: Credentials,
) -> Result<Authorised, SessionEnd> {
    let mechanism = match upstream.settings.login {
        UpstreamLogin::Passthrough => {
            return Ok(Authorised {
                auth: UpstreamAuth::Password(credentials),
                mailbox: None,
                token: None,
            })
        }
        UpstreamLogin::OAuth(mechanism) => mechanism,
    };
    let Some(tokens) = upstream.tokens.as_ref() else {
        // Gateway::prepare refuses an oauth upstream without them.
        return Err(SessionEnd::new(
            Outcome::TokenUnavailable,
            "the upstream logs in with OAuth but no accounts are configured",
        ));
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

    let mailbox = tokens.take_mailbox(&account).ok_or_else(|| {
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
        .broker
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
