//! `mailtls clients`: the inventory of clients the gateway has seen, worst verdict first, and
//! `mailtls clients annotate` to record who owns one. Exit 1 when any listed client breaks,
//! 2 on usage or store errors.

use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use report::{clients_csv, parse_time, sort_by_risk, ClientFilter, ClientRow};
use store::{Annotation, AnnotationSubject, Verdict};

use super::store::StoreChoice;
use super::terminal::shown;

/// Options of `mailtls clients`.
#[derive(Debug, Args)]
pub struct ClientsArgs {
    #[command(subcommand)]
    action: Option<ClientsAction>,
    #[command(flatten)]
    store: StoreChoice,
    /// Only clients with this verdict: breaks, at_risk, no_tls, unknown, ok.
    #[arg(long)]
    verdict: Option<Verdict>,
    /// Only clients seen since then: a day (2026-07-01), an RFC 3339 time or an age (30d, 12h).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only clients that came through this listener (its name in the config).
    #[arg(long, value_name = "NAME")]
    listener: Option<String>,
    /// Only clients whose owner contains this text (ignoring case).
    #[arg(long, value_name = "TEXT", conflicts_with = "unowned")]
    owner: Option<String>,
    /// Only clients nobody has been named owner of.
    #[arg(long)]
    unowned: bool,
    /// Print one JSON document (an array of clients).
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV.
    #[arg(long)]
    csv: bool,
}

#[derive(Debug, Subcommand)]
enum ClientsAction {
    /// Record the owner, device or a note of a client; shown wherever the client is.
    Annotate {
        /// A client id (`c17`), an address, a network (`192.0.2.0/24`) or a login.
        client: String,
        /// The person or team responsible; `--owner ""` clears it on this subject.
        #[arg(long)]
        owner: Option<String>,
        /// What the device is; `--device ""` clears it.
        #[arg(long)]
        device: Option<String>,
        /// Anything else worth knowing; `--note ""` clears it.
        #[arg(long)]
        note: Option<String>,
    },
}

/// Runs `mailtls clients` or `mailtls clients annotate`.
pub fn run(args: ClientsArgs) -> ExitCode {
    match run_inner(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mailtls clients: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run_inner(args: ClientsArgs) -> Result<ExitCode> {
    let (mut store, location, _) = args.store.open()?;
    if let Some(ClientsAction::Annotate {
        client,
        owner,
        device,
        note,
    }) = args.action
    {
        if owner.is_none() && device.is_none() && note.is_none() {
            bail!("give at least one of --owner, --device, --note");
        }
        let subject = AnnotationSubject::parse(&client);
        let annotation = Annotation {
            owner,
            device,
            note,
        };
        store.annotate(&subject, &annotation, SystemTime::now())?;
        println!("annotated {}", shown(&subject.to_string()));
        return Ok(ExitCode::SUCCESS);
    }

    let filter = ClientFilter {
        verdict: args.verdict,
        since: args
            .since
            .as_deref()
            .map(|text| parse_time(text, SystemTime::now()))
            .transpose()?,
        listener: args.listener,
        owner: args.owner,
        unowned: args.unowned,
    };
    let mut clients = store
        .clients()
        .with_context(|| format!("reading the inventory in {location}"))?;
    clients.retain(|c| filter.admits(c));
    sort_by_risk(&mut clients);
    let rows: Vec<ClientRow> = clients.iter().map(ClientRow::of).collect();
    let text = if args.json {
        serde_json::to_string_pretty(&rows).context("rendering JSON")? + "\n"
    } else if args.csv {
        clients_csv(&rows)
    } else {
        table(&rows)
    };
    print!("{text}");
    let breaks = clients.iter().any(|c| c.verdict == Verdict::Breaks);
    Ok(if breaks {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A fixed-width table, one client a line.
fn table(views: &[ClientRow]) -> String {
    const HEADERS: [&str; 11] = [
        "ID",
        "VERDICT",
        "ADDRESS",
        "LOGIN",
        "OFFERED",
        "NEGOTIATED",
        "SESSIONS",
        "LAST SEEN",
        "SOFTWARE",
        "OWNER",
        "DEVICE",
    ];
    let rows: Vec<[String; 11]> = views
        .iter()
        .map(|v| {
            let opt = |value: &Option<String>| value.as_deref().map_or("-".to_string(), shown);
            [
                v.id.clone(),
                v.verdict.clone(),
                v.address.clone(),
                opt(&v.login),
                v.highest_offered.clone().unwrap_or_else(|| "-".to_string()),
                if v.negotiated.is_empty() {
                    "-".to_string()
                } else {
                    v.negotiated.join(",")
                },
                v.sessions.to_string(),
                v.last_seen_minute(),
                opt(&v.software),
                opt(&v.owner),
                opt(&v.device),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &rows {
        for (width, value) in widths.iter_mut().zip(row) {
            *width = (*width).max(value.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(value, width)| format!("{value:<width$}"))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(&HEADERS.map(String::from));
    for row in &rows {
        line(row);
    }
    if rows.is_empty() {
        out.push_str("(no clients)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_text_cannot_drive_the_terminal_and_cells_are_bounded() {
        let row = ClientRow {
            id: "c1".into(),
            verdict: "breaks".into(),
            address: "192.0.2.17".into(),
            login: None,
            software: Some("evil\x1b]2;pwned\x07\x1b[2J".into()),
            first_seen: "2026-07-19T08:00:00Z".into(),
            last_seen: "2026-07-19T09:00:00Z".into(),
            sessions: 3,
            highest_offered: Some("TLSv1.0".into()),
            negotiated: vec!["TLSv1.0".into()],
            suites: vec![],
            ja4: None,
            ja3: vec![],
            sni: vec![],
            alpn: vec![],
            logins: vec![],
            listeners: vec![],
            upstreams: vec![],
            sources: vec![],
            owner: None,
            device: Some("x".repeat(200)),
            note: None,
        };
        let out = table(&[row]);
        assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out}");
        assert!(out.contains("evil\\u{1b}]2;pwned\\u{7}\\u{1b}[2J"), "{out}");
        assert!(out.contains(&format!("{}…", "x".repeat(80))), "{out}");
        assert!(!out.contains(&"x".repeat(81)), "{out}");
    }
}
