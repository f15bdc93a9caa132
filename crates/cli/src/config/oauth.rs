//! `[[oauth]]`, `[[account]]` and `[token_cache]`: the OAuth 2.0 upstream login's settings.

use std::path::Path;

use ::oauth::settings::{
    AccountSettings, AppSettings, CacheKeySource, ClientAuth, Grant, OAuthSettings,
    TokenCacheSettings,
};

use super::file::{AccountEntry, ConfigFile, OAuthEntry, TokenCacheSection};
use super::validate::{unique_names, Checker};

pub(super) fn validate(c: &mut Checker, raw: &ConfigFile, store_path: &Path) -> OAuthSettings {
    unique_names(
        c,
        "oauth",
        "name",
        raw.oauth.iter().filter_map(|o| o.name.as_deref()),
    );
    unique_names(
        c,
        "account",
        "login",
        raw.account.iter().filter_map(|a| a.login.as_deref()),
    );
    let apps: Vec<AppSettings> = raw
        .oauth
        .iter()
        .enumerate()
        .filter_map(|(i, o)| app(c, i, o))
        .collect();
    let accounts = raw
        .account
        .iter()
        .enumerate()
        .filter_map(|(i, a)| account(c, i, a, &raw.oauth))
        .collect();
    let token_cache = match (&raw.token_cache, raw.oauth.is_empty()) {
        (Some(section), _) => token_cache(c, section, store_path),
        (None, false) => {
            c.report(
                "token_cache",
                "is missing, and [[oauth]] tokens must be kept across restarts",
                "add [token_cache] with key_file = \"/etc/mailtls/token.key\" (make it with `openssl rand -base64 32`) or key_env",
            );
            None
        }
        (None, true) => None,
    };
    OAuthSettings {
        apps,
        accounts,
        token_cache,
    }
}

fn app(c: &mut Checker, index: usize, o: &OAuthEntry) -> Option<AppSettings> {
    let name = c.required(&format!("oauth[{index}].name"), &o.name, "\"contoso\"");
    let label = format!("oauth[{}]", name.unwrap_or(&index.to_string()));
    let key = |field: &str| format!("{label}.{field}");
    let url = |c: &mut Checker, field: &str, value: Option<&str>| {
        value.and_then(|v| match ::oauth::endpoint_url(v) {
            Ok(_) => Some(v.to_string()),
            Err(problem) => {
                c.report(
                    &key(field),
                    problem,
                    "e.g. \"https://login.microsoftonline.com/TENANT/oauth2/v2.0/token\"",
                );
                None
            }
        })
    };
    let token_url = c
        .required(
            &key("token_url"),
            &o.token_url,
            "\"https://login.microsoftonline.com/TENANT/oauth2/v2.0/token\"",
        )
        .and_then(|v| url(c, "token_url", Some(v)));
    let device_url = url(c, "device_url", o.device_url.as_deref());
    let client_id = c.required(&key("client_id"), &o.client_id, "\"APPLICATION-ID\"");
    let scope = c.required(
        &key("scope"),
        &o.scope,
        "\"https://outlook.office365.com/.default\"",
    );
    let grant = c.choice(
        &key("grant"),
        o.grant.as_deref(),
        &[
            ("client_credentials", Grant::ClientCredentials),
            ("device_code", Grant::DeviceCode),
        ],
        None,
    );
    let client_auth = match (&o.client_secret_file, &o.certificate, &o.private_key) {
        (Some(file), None, None) => c
            .existing(
                &key("client_secret_file"),
                file,
                "a file holding the client secret",
            )
            .map(ClientAuth::SecretFile),
        (None, Some(certificate), Some(private_key)) => {
            let certificate = c.existing_file(&key("certificate"), certificate);
            let private_key = c.existing_file(&key("private_key"), private_key);
            Some(ClientAuth::Certificate {
                certificate: certificate?,
                private_key: private_key?,
            })
        }
        (None, None, None) if grant == Some(Grant::DeviceCode) => Some(ClientAuth::Public),
        (None, None, None) => {
            c.report(
                &key("client_secret_file"),
                "is missing: client credentials need a client secret or a certificate",
                "set client_secret_file, or certificate and private_key",
            );
            None
        }
        (Some(_), _, _) => {
            c.report(
                &key("client_secret_file"),
                "is set together with a certificate",
                "use either client_secret_file or certificate + private_key",
            );
            None
        }
        (None, _, _) => {
            c.report(
                &key("certificate"),
                "certificate and private_key go together",
                "set both: the PEM certificate registered with the app and its RSA private key",
            );
            None
        }
    };
    if grant == Some(Grant::DeviceCode) && o.device_url.is_none() {
        c.report(
            &key("device_url"),
            "is missing: grant = \"device_code\" needs the device authorization endpoint",
            "e.g. \"https://login.microsoftonline.com/TENANT/oauth2/v2.0/devicecode\"",
        );
    }
    let ca_file = o
        .ca_file
        .as_deref()
        .map(|f| c.existing_file(&key("ca_file"), f));
    Some(AppSettings {
        name: name?.to_string(),
        token_url: token_url?,
        device_url: match o.device_url {
            Some(_) => Some(device_url?),
            None => None,
        },
        client_id: client_id?.to_string(),
        client_auth: client_auth?,
        scope: scope?.to_string(),
        grant: grant?,
        ca_file: match ca_file {
            Some(file) => Some(file?),
            None => None,
        },
    })
}

fn account(
    c: &mut Checker,
    index: usize,
    a: &AccountEntry,
    apps: &[OAuthEntry],
) -> Option<AccountSettings> {
    let login = c.required(&format!("account[{index}].login"), &a.login, "\"scanner\"");
    let label = format!("account[{}]", login.unwrap_or(&index.to_string()));
    let key = |field: &str| format!("{label}.{field}");
    if login.is_some_and(|l| l.chars().any(|ch| ch.is_control() || ch.is_whitespace())) {
        c.report(
            &key("login"),
            "holds a space or control character",
            "use a login without spaces; devices send it as one word",
        );
        return None;
    }
    let password_hash = c
        .required(&key("password_hash"), &a.password_hash, "\"$argon2id$...\"")
        .and_then(|h| match ::oauth::check_password_hash(h) {
            Ok(()) => Some(h),
            Err(problem) => {
                c.report(
                    &key("password_hash"),
                    problem,
                    "run `mailtls passwd` and paste its output",
                );
                None
            }
        });
    let mailbox = c.required(&key("mailbox"), &a.mailbox, "\"scanner@contoso.com\"");
    let app = c
        .required(&key("oauth"), &a.oauth, "\"contoso\"")
        .and_then(|name| {
            if apps.iter().any(|o| o.name.as_deref() == Some(name)) {
                Some(name)
            } else {
                c.report(
                    &key("oauth"),
                    format!("no [[oauth]] is named \"{name}\""),
                    "name one of the [[oauth]] entries",
                );
                None
            }
        });
    if a.max_connections == Some(0) {
        c.report(
            &key("max_connections"),
            "is 0",
            "use a positive number (Exchange Online allows 20 IMAP connections per mailbox) or remove it",
        );
    }
    Some(AccountSettings {
        login: login?.to_string(),
        password_hash: password_hash?.to_string(),
        mailbox: mailbox?.to_string(),
        oauth: app?.to_string(),
        max_connections: a.max_connections.filter(|&m| m > 0),
    })
}

fn token_cache(
    c: &mut Checker,
    section: &TokenCacheSection,
    store_path: &Path,
) -> Option<TokenCacheSettings> {
    let path = match &section.path {
        Some(path) => c.base.join(path),
        None => store_path.with_file_name("mailtls-tokens.enc"),
    };
    let key = match (&section.key_file, &section.key_env) {
        (Some(file), None) => c
            .existing(
                "token_cache.key_file",
                file,
                "a file holding a base64 32-byte key (`openssl rand -base64 32`)",
            )
            .map(CacheKeySource::File),
        (None, Some(name)) if !name.trim().is_empty() => Some(CacheKeySource::Env(name.clone())),
        (None, Some(_)) => {
            c.report(
                "token_cache.key_env",
                "is empty",
                "name the environment variable holding the base64 key, e.g. \"MAILTLS_TOKEN_KEY\"",
            );
            None
        }
        (Some(_), Some(_)) => {
            c.report(
                "token_cache.key_file",
                "is set together with key_env",
                "use one of key_file and key_env",
            );
            None
        }
        (None, None) => {
            c.report(
                "token_cache.key_file",
                "is missing: the cache is encrypted with a key you provide",
                "set key_file (a file from `openssl rand -base64 32`, mode 0600) or key_env",
            );
            None
        }
    };
    Some(TokenCacheSettings { path, key: key? })
}
