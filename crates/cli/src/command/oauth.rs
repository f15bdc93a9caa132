//! `mailtls oauth login ACCOUNT` (device code sign-in) and `mailtls oauth status`.

use std::path::Path;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{anyhow, bail, Context, Result};
use oauth::settings::Grant;
use oauth::TokenBroker;

use crate::config;

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn finish(command: &str, result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mailtls oauth {command}: {e:#}");
            ExitCode::from(2)
        }
    }
}

pub fn login(path: &Path, login: &str) -> ExitCode {
    finish("login", sign_in(path, login))
}

fn sign_in(path: &Path, login: &str) -> Result<()> {
    let config = config::load_or_explain(path)?;
    let account = config
        .oauth
        .accounts
        .iter()
        .find(|a| a.login == login)
        .ok_or_else(|| {
            anyhow!(
                "no [[account]] has login = \"{login}\" in {}",
                path.display()
            )
        })?;
    let app = config
        .oauth
        .apps
        .iter()
        .find(|a| a.name == account.oauth)
        .expect("validation checked the account's app");
    if app.grant != Grant::DeviceCode {
        bail!(
            "account {login} uses [[oauth]] {} with grant = \"client_credentials\": the gateway gets its tokens by itself, no sign-in needed",
            app.name
        );
    }
    let broker = TokenBroker::open(&config.oauth).map_err(|e| anyhow!("{e}"))?;
    let signed_in = runtime()?.block_on(broker.sign_in_with_device_code(
        &app.name,
        &account.mailbox,
        |device| {
            println!(
                "To sign in {}, open {} and enter the code {}",
                account.mailbox, device.verification_uri, device.user_code
            );
            if let Some(link) = &device.verification_uri_complete {
                println!("(or open {link})");
            }
            println!(
                "Waiting up to {} minute(s)...",
                device.expires_in.as_secs().div_ceil(60)
            );
        },
    ))?;
    println!(
        "Signed in: {} token stored, access token valid until {}",
        if signed_in.refresh_token {
            "refresh"
        } else {
            "access (no refresh: add offline_access to scope)"
        },
        timestamp(signed_in.expires_at)
    );
    Ok(())
}

pub fn status(path: &Path) -> ExitCode {
    finish("status", show_status(path))
}

fn show_status(path: &Path) -> Result<()> {
    let config = config::load_or_explain(path)?;
    let broker = TokenBroker::open(&config.oauth).map_err(|e| anyhow!("{e}"))?;
    let statuses = runtime()?.block_on(broker.status());
    let now = SystemTime::now();
    println!("account\tmailbox\toauth\tgrant\ttoken\trefresh token\tlast error");
    for account in &config.oauth.accounts {
        let grant = config
            .oauth
            .apps
            .iter()
            .find(|a| a.name == account.oauth)
            .map(|a| match a.grant {
                Grant::ClientCredentials => "client_credentials",
                Grant::DeviceCode => "device_code",
            })
            .unwrap_or("?");
        let status = broker
            .key(&account.oauth, &account.mailbox)
            .ok()
            .and_then(|key| statuses.iter().find(|s| s.key == key));
        let token = match status.and_then(|s| s.expires_at) {
            Some(at) if at > now => format!("valid until {}", timestamp(at)),
            Some(at) => format!("expired {}", timestamp(at)),
            None => "none yet".to_string(),
        };
        let refresh = match status {
            Some(s) if s.has_refresh_token => "yes",
            _ => "no",
        };
        let error = status
            .and_then(|s| s.last_error.as_ref())
            .map(|e| format!("{} at {}", e.message, timestamp(e.at)))
            .unwrap_or_else(|| "-".to_string());
        println!(
            "{}\t{}\t{}\t{grant}\t{token}\t{refresh}\t{error}",
            account.login, account.mailbox, account.oauth
        );
    }
    Ok(())
}

fn timestamp(at: SystemTime) -> String {
    time::OffsetDateTime::from(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "?".to_string())
}
