//! `mailtls policy explain`: what the gateway would decide for a client, by which rule, and why.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use policy::{Client, Decision, PolicySet};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use wire::TlsVersion;

use super::terminal::shown;
use crate::config;

/// The subcommands of `mailtls policy`.
#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Print the decision for one client: allow, warn or refuse, the rule, the exception, why.
    Explain(ExplainArgs),
}

/// The client to decide for.
#[derive(Args)]
pub struct ExplainArgs {
    /// The mailtls config holding the policies and the exception register.
    #[arg(long, short)]
    config: PathBuf,
    /// The client's address.
    #[arg(long)]
    client: IpAddr,
    /// Its login.
    #[arg(long)]
    user: Option<String>,
    /// The JA4 fingerprint of its ClientHello.
    #[arg(long)]
    ja4: Option<String>,
    /// The TLS version it negotiates ("1.0" ... "1.3").
    #[arg(long, default_value = "1.0")]
    tls: TlsVersion,
    /// The listener it connects to; needed when several listeners apply a policy.
    #[arg(long)]
    listener: Option<String>,
    /// When: a date (its first instant in UTC) or RFC 3339; default now.
    #[arg(long, value_parser = config::parse_instant)]
    at: Option<OffsetDateTime>,
}

pub fn run(command: PolicyCommand) -> ExitCode {
    let PolicyCommand::Explain(args) = command;
    let config = match super::check_config::load_or_report(&args.config) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let set = &config.policy;
    let listener = match chosen_listener(set, args.listener.as_deref()) {
        Ok(listener) => listener,
        Err(problem) => {
            eprintln!("mailtls policy explain: {problem}");
            return ExitCode::from(2);
        }
    };
    if !config.gateway.listeners.iter().any(|l| l.name == listener) {
        eprintln!(
            "mailtls policy explain: no [[listener]] is named \"{}\"",
            shown(&listener)
        );
        return ExitCode::from(2);
    }
    let at = args.at.unwrap_or_else(OffsetDateTime::now_utc);
    let client = Client {
        login: args.user.as_deref(),
        ja4: args.ja4.as_deref(),
        negotiated: Some(args.tls),
        ..Client::new(args.client)
    };
    let decision = set.decide(&listener, &client, at);
    print_decision(set, &listener, &client, at, &decision);
    ExitCode::SUCCESS
}

/// The listener named, or the only one that applies a policy.
fn chosen_listener(set: &PolicySet, named: Option<&str>) -> Result<String, String> {
    let with_policy = set.listeners_with_policy();
    match (named, with_policy.as_slice()) {
        (Some(name), _) => Ok(name.to_owned()),
        (None, [only]) => Ok((*only).to_owned()),
        (None, []) => Err(
            "no [[listener]] names a policy: set policy = \"NAME\" on one, or pass --listener"
                .into(),
        ),
        (None, several) => Err(format!(
            "several listeners apply a policy; pass --listener with one of: {}",
            several.join(", ")
        )),
    }
}

fn print_decision(
    set: &PolicySet,
    listener: &str,
    client: &Client<'_>,
    at: OffsetDateTime,
    d: &Decision<'_>,
) {
    println!("decision:  {}", d.verdict);
    println!("rule:      {}", d.rule);
    match d
        .exception
        .and_then(|id| set.exceptions().iter().find(|e| e.id == id))
    {
        Some(e) => {
            println!("exception: {} ({})", e.id, shown(&e.matches.to_string()));
            println!("  owner:   {}", shown(&e.owner));
            println!("  reason:  {}", shown(&e.reason));
            println!(
                "  expires: {} (stops matching at its first instant, UTC)",
                e.expires.date()
            );
            println!("  plan:    {}", shown(&e.plan));
        }
        None => println!("exception: none"),
    }
    if let Some(id) = d.expired_exception {
        println!("expired:   exception {id} would match but has expired");
    }
    if let Some(message) = d.message {
        // Validated in the config: one line of plain text, shown whole.
        println!("message:   {message}");
    }
    println!("why:       {}", d.why);
    match set
        .listener(listener)
        .and_then(|l| Some((l, set.policy(&l.policy)?)))
    {
        Some((l, p)) => println!(
            "listener:  {} (policy {}, mode {}, floor {}, window {} to {}{})",
            shown(listener),
            p.name(),
            p.mode(),
            p.min_tls(),
            rfc3339(p.window().start()),
            rfc3339(p.window().end()),
            if l.opt_in {
                ", legacy opt-in endpoint"
            } else {
                ""
            }
        ),
        None => println!("listener:  {} (no policy)", shown(listener)),
    }
    println!(
        "client:    {} user {} ja4 {} {}",
        client.address,
        client.login.map_or("-".into(), shown),
        client.ja4.map_or("-".into(), shown),
        client.tls_version().map_or("no TLS", TlsVersion::as_str)
    );
    println!("at:        {}", rfc3339(at));
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}
