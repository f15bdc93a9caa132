//! One client as every output shows it (terminal table, JSON, CSV, the HTML report and the
//! dashboard), and the order lists are in.

use std::time::SystemTime;

use scan::output::csv_field;
use serde::{Deserialize, Serialize};
use store::{AttributeKind, ClientSummary};
use wire::TlsVersion;

/// One client as listed: every field a string, number or list of strings, client text
/// unescaped (each output escapes for its own reader).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientRow {
    /// `c17`, what `mailtls clients annotate` takes.
    pub id: String,
    /// `breaks`, `at_risk`, `no_tls`, `unknown` or `ok`.
    pub verdict: String,
    /// The client's address.
    pub address: String,
    /// The login its identity has.
    pub login: Option<String>,
    /// What it reported in IMAP ID or what its fingerprint is known to be.
    pub software: Option<String>,
    /// Start of its first session (RFC 3339).
    pub first_seen: String,
    /// Start of its latest session (RFC 3339).
    pub last_seen: String,
    /// Sessions seen (within the report's range, in a report).
    pub sessions: u64,
    /// Highest version any of its hellos offered.
    pub highest_offered: Option<String>,
    /// Versions it negotiated, oldest first.
    pub negotiated: Vec<String>,
    /// Cipher suites negotiated.
    pub suites: Vec<String>,
    /// JA4 of its ClientHello.
    pub ja4: Option<String>,
    /// JA3 hashes seen.
    pub ja3: Vec<String>,
    /// Server names asked for.
    pub sni: Vec<String>,
    /// ALPN protocols offered.
    pub alpn: Vec<String>,
    /// Logins used.
    pub logins: Vec<String>,
    /// Listeners it came through.
    pub listeners: Vec<String>,
    /// Upstreams its sessions went to.
    pub upstreams: Vec<String>,
    /// Every source that saw it, earliest first.
    pub sources: Vec<String>,
    /// Who is responsible for it.
    pub owner: Option<String>,
    /// What the device is.
    pub device: Option<String>,
    /// The admin's note.
    pub note: Option<String>,
}

impl ClientRow {
    /// The row of `client`.
    pub fn of(client: &ClientSummary) -> ClientRow {
        let values = |kind| client.values(kind).to_vec();
        let annotation = client.annotation.clone().unwrap_or_default();
        ClientRow {
            id: format!("c{}", client.id),
            verdict: client.verdict.as_str().to_string(),
            address: client.identity.address.to_string(),
            login: client.identity.login.clone(),
            software: client.software(),
            first_seen: rfc3339(client.first_seen),
            last_seen: rfc3339(client.last_seen),
            sessions: client.sessions,
            highest_offered: client
                .highest_offered
                .map(|v| TlsVersion::as_str(v).to_string()),
            negotiated: client
                .negotiated
                .iter()
                .map(|v| v.as_str().to_string())
                .collect(),
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

    /// The latest session's start to the minute, as a table shows it: `2026-07-19 09:00`.
    pub fn last_seen_minute(&self) -> String {
        to_the_minute(&self.last_seen)
    }

    /// `(header, value)` pairs of the CSV, in column order.
    fn csv_cells(&self) -> [(&'static str, String); 21] {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let list = |v: &[String]| v.join(" ");
        [
            ("id", self.id.clone()),
            ("verdict", self.verdict.clone()),
            ("address", self.address.clone()),
            ("login", opt(&self.login)),
            ("software", opt(&self.software)),
            ("first_seen", self.first_seen.clone()),
            ("last_seen", self.last_seen.clone()),
            ("sessions", self.sessions.to_string()),
            ("highest_offered", opt(&self.highest_offered)),
            ("negotiated", list(&self.negotiated)),
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

/// Sorts clients by risk: breaks, at risk, no TLS, unknown, ok; within a verdict the busiest
/// first (most sessions), then by id.
pub fn sort_by_risk(clients: &mut [ClientSummary]) {
    clients.sort_by(|a, b| {
        a.verdict
            .cmp(&b.verdict)
            .then(b.sessions.cmp(&a.sessions))
            .then(a.id.cmp(&b.id))
    });
}

/// An RFC 3339 time (UTC) to the minute, as a table shows it: `2026-07-19 09:00`.
pub(crate) fn to_the_minute(time: &str) -> String {
    time.get(..16).unwrap_or(time).replace('T', " ")
}

/// RFC 3339 in UTC, to the second.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let time = time::OffsetDateTime::from(time).replace_nanosecond(0);
    time.ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// CSV with a header (none for no rows), CRLF line ends; cells quoted and defused against
/// spreadsheet formulas.
pub fn clients_csv(rows: &[ClientRow]) -> String {
    let mut out = String::new();
    let Some(first) = rows.first() else {
        return out;
    };
    let headers: Vec<&str> = first.csv_cells().iter().map(|(h, _)| *h).collect();
    out.push_str(&headers.join(","));
    out.push_str("\r\n");
    for row in rows {
        let cells: Vec<String> = row
            .csv_cells()
            .iter()
            .map(|(_, value)| csv_field(value))
            .collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A breaking client whose text tries formulas, terminal escapes and markup.
    pub(crate) fn hostile_row() -> ClientRow {
        ClientRow {
            id: "c1".into(),
            verdict: "breaks".into(),
            address: "192.0.2.17".into(),
            login: Some("=HYPERLINK(\"http://evil\")".into()),
            software: Some("evil\x1b]2;pwned\x07\x1b[2J<script>alert(1)</script>".into()),
            first_seen: "2026-07-19T08:00:00Z".into(),
            last_seen: "2026-07-19T09:00:00Z".into(),
            sessions: 3,
            highest_offered: Some("TLSv1.0".into()),
            negotiated: vec!["TLSv1.0".into()],
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
            device: Some("\tcmd".into()),
            note: None,
        }
    }

    #[test]
    fn csv_cells_starting_a_formula_are_defused() {
        let out = clients_csv(&[hostile_row()]);
        let row = out.lines().nth(1).unwrap();
        assert!(row.contains(r#""'=HYPERLINK(""http://evil"")""#), "{row}");
        assert!(row.contains(",'+cmd @sum,"), "{row}");
        assert!(row.contains(",'-1+1,'\tcmd,"), "{row}");
        assert!(out.starts_with("id,verdict,address,login,software,"));
        assert_eq!(clients_csv(&[]), "");
    }
}
