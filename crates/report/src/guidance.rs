//! The plain-language summary and what each role should do next, worked out from a report's
//! data (counts and named clients), so the advice changes as the inventory does.

use std::collections::BTreeMap;

use crate::client_row::ClientRow;
use crate::evidence::ReportData;

/// How many clients a sentence names before saying "and N more".
const NAMED_CLIENTS: usize = 5;

/// What one role should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAdvice {
    /// Who: "Email admins".
    pub role: &'static str,
    /// Steps, most urgent first.
    pub actions: Vec<String>,
}

/// A client as a sentence names it: device or software, address, owner.
pub(crate) fn describe(row: &ClientRow) -> String {
    let what = row
        .device
        .clone()
        .or_else(|| row.software.clone())
        .unwrap_or_else(|| "an unidentified client".to_string());
    let mut text = format!("{what} ({} at {}", row.id, row.address);
    if let Some(login) = &row.login {
        text.push_str(&format!(", login {login}"));
    }
    if let Some(owner) = &row.owner {
        text.push_str(&format!(", owner {owner}"));
    }
    text.push(')');
    text
}

/// `a, b and 3 more`.
fn named(rows: &[&ClientRow]) -> String {
    let mut names: Vec<String> = rows
        .iter()
        .take(NAMED_CLIENTS)
        .map(|r| describe(r))
        .collect();
    let rest = rows.len().saturating_sub(NAMED_CLIENTS);
    if rest > 0 {
        names.push(format!("{rest} more"));
    }
    match names.len() {
        0 => String::new(),
        1 => names.remove(0),
        _ => {
            let last = names.pop().unwrap_or_default();
            format!("{} and {last}", names.join("; "))
        }
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn with_verdict<'a>(data: &'a ReportData, verdict: &str) -> Vec<&'a ClientRow> {
    data.clients
        .iter()
        .filter(|c| c.verdict == verdict)
        .collect()
}

/// The summary's paragraphs, for a reader who does not know what TLS is.
pub fn summary(data: &ReportData) -> Vec<String> {
    let t = &data.totals;
    let mut out = Vec::new();
    let period = match (&data.range.first_day, &data.range.last_day) {
        (Some(first), Some(last)) if first == last => format!("On {first}"),
        (Some(first), Some(last)) => format!("From {first} to {last}"),
        _ => "In the period of this report".to_string(),
    };
    out.push(format!(
        "{period}, {} read or sent mail through the connections mailtls watches, in {}.",
        plural(t.clients, "device or program", "devices and programs"),
        plural(t.sessions, "session", "sessions"),
    ));
    if t.breaks == 0 && t.at_risk == 0 {
        out.push(
            "None of them depends on the old encryption (TLS 1.0 and 1.1) that Microsoft is \
             switching off for POP and IMAP: nothing here stops working when it does."
                .to_string(),
        );
    } else {
        if t.breaks > 0 {
            out.push(format!(
                "{} can only use the old encryption (TLS 1.0 or 1.1) that Microsoft is \
                 switching off for POP and IMAP between 1 August and 31 December 2026: they \
                 will stop sending or receiving mail unless they keep going through the mailtls \
                 gateway or are replaced.",
                plural(t.breaks, "device or program", "devices and programs"),
            ));
        }
        if t.at_risk > 0 {
            out.push(format!(
                "{} could use modern encryption but did not: a settings change fixes {}.",
                plural(t.at_risk, "device or program", "devices and programs"),
                if t.at_risk == 1 { "it" } else { "them" },
            ));
        }
    }
    if t.no_tls > 0 {
        out.push(format!(
            "{} sent passwords without any encryption.",
            plural(t.no_tls, "device or program", "devices and programs")
        ));
    }
    if t.unowned > 0 {
        out.push(format!(
            "{} of the {} have no named owner yet{}.",
            t.unowned,
            t.clients,
            if t.unowned_needing_action > 0 {
                format!(
                    ", {} of them among those that need action",
                    t.unowned_needing_action
                )
            } else {
                String::new()
            }
        ));
    } else if t.clients > 0 {
        out.push("Every one of them has a named owner.".to_string());
    }
    out
}

/// What email admins, the helpdesk, security and compliance, and device owners should do;
/// `digest` is that of a report file's data (none on the live dashboard).
pub fn advice(data: &ReportData, digest: Option<&str>) -> Vec<RoleAdvice> {
    let t = &data.totals;
    let breaks = with_verdict(data, "breaks");
    let at_risk = with_verdict(data, "at_risk");
    let no_tls = with_verdict(data, "no_tls");
    let needing: Vec<&ClientRow> = breaks.iter().chain(&at_risk).copied().collect();
    let unowned: Vec<&ClientRow> = needing
        .iter()
        .copied()
        .filter(|c| c.owner.is_none())
        .collect();

    let mut admins = Vec::new();
    if !breaks.is_empty() {
        admins.push(format!(
            "Keep {} on the gateway's legacy listener until each is replaced or updated: {}.",
            plural(t.breaks, "client that breaks", "clients that break"),
            named(&breaks)
        ));
    }
    if !at_risk.is_empty() {
        admins.push(format!(
            "Fix the TLS settings of {} (they offer TLS 1.2 but ended up older; check the \
             listener's and the client's settings): {}.",
            plural(t.at_risk, "client", "clients"),
            named(&at_risk)
        ));
    }
    if !no_tls.is_empty() {
        admins.push(format!(
            "Move {} off plaintext listeners to TLS: {}.",
            plural(t.no_tls, "client", "clients"),
            named(&no_tls)
        ));
    }
    if admins.is_empty() {
        admins.push(
            "Nothing to change now: keep the gateway recording and run this report again after \
             changes to devices or servers."
                .to_string(),
        );
    }
    admins.push(
        "Record owners with `mailtls clients annotate CLIENT --owner ... --device ...` so the \
         next report names them."
            .to_string(),
    );

    let mut helpdesk = Vec::new();
    if needing.is_empty() {
        helpdesk.push("No mail client is expected to fail because of the TLS change.".to_string());
    } else {
        helpdesk.push(format!(
            "Expect calls about mail that stops arriving or sending from {}; the message they \
             may show is \"TLS 1.0 and 1.1 are not supported\".",
            named(&needing)
        ));
    }
    if !unowned.is_empty() {
        helpdesk.push(format!(
            "Find out who uses {} (ask at the address's location, or check the login's \
             mailbox).",
            named(&unowned)
        ));
    }

    let mut security = vec![format!(
        "{} used TLS 1.0 or 1.1 and {} used no TLS in the period covered.",
        plural(t.legacy_sessions, "session", "sessions"),
        plural(t.plaintext_sessions, "session", "sessions")
    )];
    security.push(match digest {
        Some(digest) => format!(
            "Keep this file as evidence: its data's SHA-256 is {digest}; \
             `mailtls report verify FILE` checks a copy."
        ),
        None => "For evidence, file a report made with `mailtls report --html FILE`: its data \
                 carries a SHA-256 that `mailtls report verify` checks."
            .to_string(),
    });
    security.push(match &data.register {
        None => "This report was made without the exception register: make it with \
                 `--config` and the gateway's config so it lists every exception and its \
                 warnings."
            .to_string(),
        Some(register) if register.warnings.is_empty() => format!(
            "The exception register ({}) has no warnings.",
            plural(register.exceptions.len() as u64, "exception", "exceptions")
        ),
        Some(register) => format!(
            "Act on {} about the exception register ({} expiring within 30 days, {} unused \
             for 30 days, {} without an exception): see \"Exception register\".",
            plural(register.warnings.len() as u64, "warning", "warnings"),
            register.count("expiring"),
            register.count("unused"),
            plural(
                register.count("unexcepted") as u64,
                "legacy client",
                "legacy clients"
            )
        ),
    });
    if t.unowned_needing_action > 0 {
        security.push(format!(
            "{} that need action have no owner: an open finding until each has one.",
            plural(t.unowned_needing_action, "client", "clients")
        ));
    }

    let mut owners: BTreeMap<&str, Vec<&ClientRow>> = BTreeMap::new();
    for row in &needing {
        if let Some(owner) = row.owner.as_deref() {
            owners.entry(owner).or_default().push(row);
        }
    }
    let mut device_owners: Vec<String> = owners
        .iter()
        .map(|(owner, rows)| {
            format!(
                "{owner}: update or replace {} (it needs TLS 1.2 or newer).",
                named(rows)
            )
        })
        .collect();
    if device_owners.is_empty() {
        device_owners.push(if needing.is_empty() {
            "Nothing to do.".to_string()
        } else {
            "No owner is recorded yet for the clients that need action; see the helpdesk's step."
                .to_string()
        });
    }

    vec![
        RoleAdvice {
            role: "Email admins",
            actions: admins,
        },
        RoleAdvice {
            role: "Helpdesk",
            actions: helpdesk,
        },
        RoleAdvice {
            role: "Security and compliance",
            actions: security,
        },
        RoleAdvice {
            role: "Device owners",
            actions: device_owners,
        },
    ]
}
