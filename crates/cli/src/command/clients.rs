//! `mailtls clients`: the inventory of clients the gateway has seen, worst verdict first, and
//! `mailtls clients annotate` to record who owns one. Exit 1 when any listed client breaks,
//! 2 on usage or store errors.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use scan::output::csv_field;
use serde::Serialize;
use store::{Annotation, AnnotationSubject, AttributeKind, ClientSummary, SqliteStore, Verdict};
use wire::TlsVersion;

use super::terminal::shown;
use crate::config;

/// Options of `mailtls clients`.
#[derive(Debug, Args)]
pub struct ClientsArgs {
    #[command(subcommand)]
    action: Option<ClientsAction>,
    /// The session store (SQLite file) to read.
    #[arg(long, global = true, value_name = "PATH", conflicts_with = "config")]
    store: Option<PathBuf>,
    /// Read the store's path from this gateway config.
    #[arg(long, short, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Only clients with this verdict: breaks, no_tls, at_risk, ok, unknown.
    #[arg(long)]
    verdict: Option<Verdict>,
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
        /// The person or team responsible.
        #[arg(long)]
        owner: Option<String>,
        /// What the device is.
        #[arg(long)]
        device: Option<String>,
        /// Anything else worth knowing.
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
    let path = config::store_path(args.store.as_deref(), args.config.as_deref())?;
    if !path.exists() {
        bail!(
            "no session store at {} (has the gateway run?)",
            path.display()
        );
    }
    let mut store = SqliteStore::open(&path)?;
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

    let mut clients = store
        .clients()
        .with_context(|| format!("reading the inventory in {}", path.display()))?;
    clients.retain(|c| args.verdict.is_none_or(|v| c.verdict == v));
    // Worst first, then the most recently seen.
    clients.sort_by(|a, b| {
        a.verdict
            .cmp(&b.verdict)
            .then(b.last_seen.cmp(&a.last_seen))
            .then(a.id.cmp(&b.id))
    });
    let views: Vec<ClientView> = clients.iter().map(ClientView::of).collect();
    let text = if args.json {
        serde_json::to_string_pretty(&views).context("rendering JSON")? + "\n"
    } else if args.csv {
        csv(&views)
    } else {
        table(&views)
    };
    print!("{text}");
    let breaks = clients.iter().any(|c| c.verdict == Verdict::Breaks);
    Ok(if breaks {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// One client as printed: every field a string or list of strings, client text unescaped
/// (each output escapes for its own reader).
#[derive(Debug, Serialize)]
struct ClientView {
    id: String,
    verdict: &'static str,
    address: String,
    login: Option<String>,
    software: Option<String>,
    first_seen: String,
    last_seen: String,
    sessions: u64,
    highest_offered: Option<&'static str>,
    negotiated: Vec<&'static str>,
    suites: Vec<String>,
    ja4: Option<String>,
    ja3: Vec<String>,
    sni: Vec<String>,
    alpn: Vec<String>,
    logins: Vec<String>,
    listeners: Vec<String>,
    upstreams: Vec<String>,
    /// Every source that saw it, earliest first.
    sources: Vec<String>,
    owner: Option<String>,
    device: Option<String>,
    note: Option<String>,
}

impl ClientView {
    fn of(client: &ClientSummary) -> ClientView {
        let values = |kind| client.values(kind).to_vec();
        let annotation = client.annotation.clone().unwrap_or_default();
        ClientView {
            id: format!("c{}", client.id),
            verdict: client.verdict.as_str(),
            address: client.identity.address.to_string(),
            login: client.identity.login.clone(),
            software: client.software(),
            first_seen: rfc3339(client.first_seen),
            last_seen: rfc3339(client.last_seen),
            sessions: client.sessions,
            highest_offered: client.highest_offered.map(TlsVersion::as_str),
            negotiated: client.negotiated.iter().map(|v| v.as_str()).collect(),
            suites: values(AttributeKind::Suite),
            ja4: client.identity.ja4.clone(),
            ja3: values(AttributeKind::Ja3),
            sni: values(AttributeKind::Sni),
            alpn: values(AttributeKind::Alpn),
            logins: values(AttributeKind::Login),
            listeners: values(AttributeKind::Listener),
            upstreams: values(AttributeKind::Upstream),
            sources: values(AttributeKind::Source),
            owner: annotation.owner,
            device: annotation.device,
            note: annotation.note,
        }
    }

    /// `(header, value)` pairs of the CSV, in column order.
    fn csv_cells(&self) -> Vec<(&'static str, String)> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let list = |v: &[String]| v.join(" ");
        vec![
            ("id", self.id.clone()),
            ("verdict", self.verdict.to_string()),
            ("address", self.address.clone()),
            ("login", opt(&self.login)),
            ("software", opt(&self.software)),
            ("first_seen", self.first_seen.clone()),
            ("last_seen", self.last_seen.clone()),
            ("sessions", self.sessions.to_string()),
            (
                "highest_offered",
                self.highest_offered.unwrap_or("").to_string(),
            ),
            ("negotiated", self.negotiated.join(" ")),
            ("suites", list(&self.suites)),
            ("ja4", opt(&self.ja4)),
            ("ja3", list(&self.ja3)),
            ("sni", list(&self.sni)),
            ("alpn", list(&self.alpn)),
            ("listeners", list(&self.listeners)),
            ("upstreams", list(&self.upstreams)),
            ("sources", list(&self.sources)),
            ("owner", opt(&self.owner)),
            ("device", opt(&self.device)),
            ("note", opt(&self.note)),
        ]
    }
}

fn rfc3339(time: SystemTime) -> String {
    time::OffsetDateTime::from(time)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// CSV with a header; cells quoted and defused against spreadsheet formulas.
fn csv(views: &[ClientView]) -> String {
    let mut out = String::new();
    let Some(first) = views.first() else {
        return out;
    };
    let headers: Vec<&str> = first.csv_cells().iter().map(|(h, _)| *h).collect();
    out.push_str(&headers.join(","));
    out.push_str("\r\n");
    for view in views {
        let cells: Vec<String> = view
            .csv_cells()
            .iter()
            .map(|(_, value)| csv_field(value))
            .collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

/// A fixed-width table, one client a line.
fn table(views: &[ClientView]) -> String {
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
                v.verdict.to_string(),
                v.address.clone(),
                opt(&v.login),
                v.highest_offered.unwrap_or("-").to_string(),
                if v.negotiated.is_empty() {
                    "-".to_string()
                } else {
                    v.negotiated.join(",")
                },
                v.sessions.to_string(),
                v.last_seen
                    .get(..16)
                    .unwrap_or(&v.last_seen)
                    .replace('T', " "),
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

    fn view() -> ClientView {
        ClientView {
            id: "c1".into(),
            verdict: "breaks",
            address: "192.0.2.17".into(),
            login: Some("=HYPERLINK(\"http://evil\")".into()),
            software: Some("evil\x1b]2;pwned\x07\x1b[2J".into()),
            first_seen: "2026-07-19T08:00:00Z".into(),
            last_seen: "2026-07-19T09:00:00Z".into(),
            sessions: 3,
            highest_offered: Some("TLSv1.0"),
            negotiated: vec!["TLSv1.0"],
            suites: vec!["AES128-SHA".into()],
            ja4: Some("t10i090500_c491f621fb4c_195413a0cc0f".into()),
            ja3: vec![],
            sni: vec!["+cmd".into(), "@sum".into()],
            alpn: vec![],
            logins: vec![],
            listeners: vec!["imaps".into()],
            upstreams: vec!["dovecot".into()],
            sources: vec!["gateway".into()],
            owner: Some("-1+1".into()),
            device: Some("x".repeat(200)),
            note: None,
        }
    }

    #[test]
    fn client_text_cannot_drive_the_terminal_and_cells_are_bounded() {
        let out = table(&[view()]);
        assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out}");
        assert!(out.contains("evil\\u{1b}]2;pwned\\u{7}\\u{1b}[2J"), "{out}");
        assert!(out.contains(&format!("{}…", "x".repeat(80))), "{out}");
        assert!(!out.contains(&"x".repeat(81)), "{out}");
    }

    #[test]
    fn csv_cells_starting_a_formula_are_defused() {
        let out = csv(&[view()]);
        let row = out.lines().nth(1).unwrap();
        assert!(row.contains(r#""'=HYPERLINK(""http://evil"")""#), "{row}");
        assert!(row.contains(",'+cmd @sum,"), "{row}");
        assert!(row.contains(",'-1+1,"), "{row}");
        assert!(out.starts_with("id,verdict,address,login,software,"));
    }
}
