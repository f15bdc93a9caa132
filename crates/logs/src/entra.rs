//! Microsoft Entra ID sign-in logs, kept to the client apps of the mail protocols: which
//! accounts still sign in with IMAP4, POP3 or Authenticated SMTP, from which addresses, with
//! what result. A sign-in says nothing of TLS (no property of a sign-in holds it), so its
//! record has no TLS version: the client is known to use the protocol, not how.
//!
//! Where the formats are documented:
//! - The CSV and JSON downloads: "How to download logs in Microsoft Entra ID" (entra-docs,
//!   `howto-download-logs.md`): Entra admin center > Monitoring & health > Sign-in logs >
//!   Download, every column whatever the view shows, times in UTC. The column names read
//!   here (`Date (UTC)`, `Request ID`, `Username`, `IP address`, `Status`, `Failure reason`,
//!   `Client app`) are those of real downloads; Microsoft does not list them, and they have
//!   changed over time, hence matching by name, never by position.
//! - The client app values: "Customize and filter the activity logs" and "Block legacy
//!   authentication with Conditional Access" (entra-docs): `IMAP4`, `POP3`,
//!   `Authenticated SMTP`; the Graph "signIn resource type" page names them `IMAP`, `POP`,
//!   `SMTP`, so both spellings are taken, without regard to case.
//! - The JSON: Microsoft Graph "List signIns" (`GET /auditLogs/signIns`, a page of
//!   `{"value": [...]}`) and the "signIn resource type" / "signInStatus resource type" pages:
//!   `id`, `createdDateTime`, `userPrincipalName`, `ipAddress`, `clientAppUsed`,
//!   `status.errorCode` (0 is success) and `status.failureReason`.

use std::io::Read;
use std::net::IpAddr;
use std::time::SystemTime;

use serde_json::Value;
use store::{Outcome, Source};

use crate::evidence::{bounded, sighting};
use crate::export::{iso_time, read_csv, ExportError, ExportRows, Wanted};
use crate::Evidence;
use store::EvidenceDigester;

/// The listener name records from Entra sign-in logs carry.
pub const ENTRA_LISTENER: &str = "entra-sign-ins";

const EXPORT: &str = "Entra sign-in log";

/// What the records name as the server: sign-ins are to Exchange Online.
const EXCHANGE_ONLINE: &str = "Exchange Online";

/// The columns read, in this order; the first name of each is the documented one.
const COLUMNS: [Wanted; 7] = [
    Wanted {
        names: &["Date (UTC)"],
        required: true,
    },
    Wanted {
        names: &["Username", "User principal name"],
        required: true,
    },
    Wanted {
        names: &["IP address"],
        required: true,
    },
    Wanted {
        names: &["Status"],
        required: true,
    },
    Wanted {
        names: &["Client app"],
        required: true,
    },
    Wanted {
        names: &["Request ID"],
        required: false,
    },
    Wanted {
        names: &["Failure reason"],
        required: false,
    },
];

/// The mail protocol of a client app value, `None` for every other client app.
fn mail_protocol(client_app: &str) -> Option<&'static str> {
    let app = client_app.trim();
    [
        ("IMAP4", "imap"),
        ("IMAP", "imap"),
        ("POP3", "pop3"),
        ("POP", "pop3"),
        ("Authenticated SMTP", "smtp"),
        ("SMTP", "smtp"),
    ]
    .into_iter()
    .find(|(name, _)| app.eq_ignore_ascii_case(name))
    .map(|(_, protocol)| protocol)
}

/// One sign-in, as either format gives it.
struct SignIn<'a> {
    id: Option<&'a str>,
    at: &'a str,
    user: &'a str,
    address: &'a str,
    client_app: &'a str,
    outcome: Outcome,
    failure: Option<&'a str>,
}

/// Reads an Entra sign-in log downloaded as CSV.
pub fn read_entra_sign_ins_csv(input: impl Read) -> Result<ExportRows, ExportError> {
    read_csv(EXPORT, input, &COLUMNS, "entra", |row, rows, digests| {
        let cell = |i| row.cell(i).unwrap_or("");
        let status = cell(3);
        let sign_in = SignIn {
            id: Some(cell(5)).filter(|id| !id.is_empty()),
            at: cell(0),
            user: cell(1),
            address: cell(2),
            client_app: cell(4),
            outcome: if status.eq_ignore_ascii_case("Success") {
                Outcome::Ok
            } else if status.eq_ignore_ascii_case("Interrupted") {
                Outcome::ClientClosed
            } else {
                Outcome::AuthFailed
            },
            failure: Some(cell(6)).filter(|f| !f.is_empty()),
        };
        let text: Vec<&str> = row.texts().collect();
        add(rows, digests, &sign_in, &text);
    })
}

/// Reads an Entra sign-in log as JSON: Graph's `{"value": [...]}` page or a bare array of
/// sign-ins (the admin center's JSON download).
pub fn read_entra_sign_ins_json(input: impl Read) -> Result<ExportRows, ExportError> {
    let json_error = |reason: String| ExportError::Json {
        export: EXPORT,
        reason,
    };
    let document: Value = serde_json::from_reader(input).map_err(|e| json_error(e.to_string()))?;
    let sign_ins = match &document {
        Value::Array(items) => items,
        Value::Object(page) => match page.get("value") {
            Some(Value::Array(items)) => items,
            _ => return Err(json_error("an object without a \"value\" array".into())),
        },
        _ => return Err(json_error("neither an array nor a Graph page".into())),
    };
    let mut rows = ExportRows::default();
    let mut digests = EvidenceDigester::new("entra");
    for item in sign_ins {
        rows.rows += 1;
        let text = |name: &str| item.get(name).and_then(Value::as_str).unwrap_or("");
        let status = item.get("status");
        let error_code = status
            .and_then(|s| s.get("errorCode"))
            .and_then(Value::as_i64);
        let failure = status
            .and_then(|s| s.get("failureReason"))
            .and_then(Value::as_str);
        let sign_in = SignIn {
            id: item.get("id").and_then(Value::as_str),
            at: text("createdDateTime"),
            user: text("userPrincipalName"),
            address: text("ipAddress"),
            client_app: text("clientAppUsed"),
            outcome: match error_code {
                Some(0) => Outcome::Ok,
                _ => Outcome::AuthFailed,
            },
            failure: failure.filter(|_| error_code != Some(0)),
        };
        let whole = item.to_string();
        add(&mut rows, &mut digests, &sign_in, &[whole.as_str()]);
    }
    Ok(rows)
}

/// Adds one sign-in to `rows`: a record for a mail protocol's, a count otherwise.
fn add(rows: &mut ExportRows, digests: &mut EvidenceDigester, sign_in: &SignIn<'_>, text: &[&str]) {
    let Some(protocol) = mail_protocol(sign_in.client_app) else {
        rows.other += 1;
        return;
    };
    let (Some(at), Ok(address)) = (
        iso_time(sign_in.at),
        sign_in.address.trim().parse::<IpAddr>(),
    ) else {
        rows.not_understood += 1;
        return;
    };
    let mut record = sighting(Source::EntraSignIns, at, ENTRA_LISTENER, protocol, address);
    record.upstream = EXCHANGE_ONLINE.to_string();
    record.login = Some(sign_in.user.trim())
        .filter(|u| !u.is_empty())
        .map(bounded);
    record.outcome = sign_in.outcome;
    record.detail = sign_in.failure.map(bounded);
    // A sign-in's id names it for good; without one, the whole row does.
    let digest = match sign_in.id {
        Some(id) => digests.digest(SystemTime::UNIX_EPOCH, ["id", id.trim()]),
        None => digests.digest(at, text.iter().copied()),
    };
    rows.records.push(Evidence { digest, record });
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "\u{feff}Date (UTC),Request ID,User,Username,Application ID ,IP address,Status,Failure reason,Client app
2026-11-30T08:19:41Z,r1,Alice,alice@contoso.com,00000002,192.0.2.7,Success,,IMAP4
2026-11-30T08:20:00Z,r2,Alice,alice@contoso.com,00000002,192.0.2.7,Success,,Browser
2026-11-30T08:21:00Z,r3,Bob,bob@contoso.com,00000002,198.51.100.3,Failure,Invalid username or password.,Authenticated SMTP
2026-11-30T08:22:00Z,r4,Eve,eve@contoso.com,00000002,not an address,Failure,,POP3
";

    #[test]
    fn mail_sign_ins_become_records_and_others_are_counted() {
        let rows = read_entra_sign_ins_csv(CSV.as_bytes()).unwrap();
        assert_eq!(rows.rows, 4);
        assert_eq!(rows.other, 1);
        assert_eq!(rows.not_understood, 1);
        assert_eq!(rows.records.len(), 2);
        let imap = &rows.records[0].record;
        assert_eq!(imap.protocol, "imap");
        assert_eq!(imap.login.as_deref(), Some("alice@contoso.com"));
        assert_eq!(imap.tls_version, None);
        assert_eq!(imap.outcome, Outcome::Ok);
        let smtp = &rows.records[1].record;
        assert_eq!(smtp.outcome, Outcome::AuthFailed);
        assert_eq!(
            smtp.detail.as_deref(),
            Some("Invalid username or password.")
        );
    }

    #[test]
    fn graph_json_reads_like_the_csv() {
        let json = r#"{"@odata.context":"x","value":[
            {"id":"r1","createdDateTime":"2026-11-30T08:19:41Z","userPrincipalName":"alice@contoso.com",
             "ipAddress":"192.0.2.7","clientAppUsed":"IMAP4","status":{"errorCode":0,"failureReason":"Other."}},
            {"id":"r3","createdDateTime":"2026-11-30T08:21:00Z","userPrincipalName":"bob@contoso.com",
             "ipAddress":"198.51.100.3","clientAppUsed":"Authenticated SMTP",
             "status":{"errorCode":50126,"failureReason":"Invalid username or password."}}]}"#;
        let from_json = read_entra_sign_ins_json(json.as_bytes()).unwrap();
        let from_csv = read_entra_sign_ins_csv(CSV.as_bytes()).unwrap();
        assert_eq!(
            from_json.records, from_csv.records,
            "same ids, same records"
        );
    }

    #[test]
    fn a_download_without_the_client_app_is_refused_by_name() {
        let csv =
            "Date (UTC),Username,IP address,Status\n2026-11-30T08:19:41Z,a,192.0.2.1,Success\n";
        let error = read_entra_sign_ins_csv(csv.as_bytes()).unwrap_err();
        assert!(error.to_string().contains("\"Client app\""), "{error}");
    }
}
