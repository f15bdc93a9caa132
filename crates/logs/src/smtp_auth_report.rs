//! The Exchange admin center's SMTP AUTH clients report, exported as CSV: per sender, the
//! share of its messages submitted over TLS 1.0, 1.1 and 1.2. The only Microsoft export that
//! names TLS versions.
//!
//! Where the format is documented: "SMTP AUTH clients report in the new EAC"
//! (OfficeDocs-Exchange; Reports > Mail flow > SMTP AUTH clients > Export): the table
//! "Messages sent using SMTP Auth" has `Sender address`, `Domain`, `TLS 1.0`, `TLS 1.1`,
//! `TLS 1.2` (percentages) and `Messages sent`. The older Security & Compliance version
//! ("SMTP Auth clients insight and report", microsoft-365-docs) named them `TLS1.0%`,
//! `TLS1.1%`, `TLS1.2%` and `Message count`; both spellings are taken. Microsoft does not show
//! the cells' exact text, so a share is read as the number it starts with (`37`, `37.5%`,
//! `37% (12)`). The export has no client address and no dates: the caller gives the report's
//! date, and records carry the unspecified address `0.0.0.0`.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::time::SystemTime;

use store::{Outcome, Source};
use wire::TlsVersion;

use crate::evidence::{bounded, offered_at_most, sighting};
use crate::export::{read_csv, ExportError, ExportRows, Wanted};
use crate::Evidence;

/// The listener name records from the SMTP AUTH clients report carry.
pub const SMTP_AUTH_REPORT_LISTENER: &str = "smtp-auth-report";

const EXPORT: &str = "SMTP AUTH clients report";

/// Where the report's submissions went.
const SUBMISSION_ENDPOINT: &str = "smtp.office365.com";

/// The columns read, in this order: sender, then one per TLS version, then the count.
const COLUMNS: [Wanted; 6] = [
    Wanted {
        names: &["Sender address"],
        required: true,
    },
    Wanted {
        names: &["TLS 1.0", "TLS1.0%", "TLS1.0", "TLS 1.0 %"],
        required: true,
    },
    Wanted {
        names: &["TLS 1.1", "TLS1.1%", "TLS1.1", "TLS 1.1 %"],
        required: true,
    },
    Wanted {
        names: &["TLS 1.2", "TLS1.2%", "TLS1.2", "TLS 1.2 %"],
        required: true,
    },
    Wanted {
        names: &["TLS 1.3", "TLS1.3%", "TLS1.3", "TLS 1.3 %"],
        required: false,
    },
    Wanted {
        names: &["Messages sent", "Message count"],
        required: false,
    },
];

const VERSIONS: [TlsVersion; 4] = [
    TlsVersion::Tls10,
    TlsVersion::Tls11,
    TlsVersion::Tls12,
    TlsVersion::Tls13,
];

/// Reads an SMTP AUTH clients report exported on `report_date`: one record per sender and
/// TLS version with a share above zero, its detail giving the share and message count.
pub fn read_smtp_auth_report(
    input: impl Read,
    report_date: SystemTime,
) -> Result<ExportRows, ExportError> {
    read_csv(
        EXPORT,
        input,
        &COLUMNS,
        "smtp-auth-report",
        |row, rows, digests| {
            let sender = row.cell(0).unwrap_or("");
            let shares: Option<Vec<f64>> = (1..=4)
                .map(|i| row.cell(i).map_or(Some(0.0), share))
                .collect();
            let (Some(shares), false) = (shares, sender.is_empty()) else {
                rows.not_understood += 1;
                return;
            };
            let messages = row
                .cell(5)
                .and_then(|m| m.replace(',', "").parse::<u64>().ok());
            for (version, share) in VERSIONS.into_iter().zip(shares) {
                if share <= 0.0 {
                    continue;
                }
                let mut record = sighting(
                    Source::SmtpAuthReport,
                    report_date,
                    SMTP_AUTH_REPORT_LISTENER,
                    "smtp",
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                );
                record.upstream = SUBMISSION_ENDPOINT.to_string();
                record.login = Some(bounded(sender));
                record.tls_version = Some(version);
                record.offered_max_tls = offered_at_most(version);
                record.outcome = Outcome::Ok;
                record.detail = Some(match messages {
                    Some(n) => format!("{share}% of {n} messages over {version}"),
                    None => format!("{share}% of its messages over {version}"),
                });
                let digest = digests.digest(report_date, row.texts().chain([version.as_str()]));
                rows.records.push(Evidence { digest, record });
            }
        },
    )
}

/// A percentage cell: the number it starts with (`37`, `37.5%`, `37 %`, `37% (12)`); an empty
/// cell is 0. `None` for text that starts with no number or a share outside 0..=100.
fn share(cell: &str) -> Option<f64> {
    if cell.is_empty() || cell == "-" {
        return Some(0.0);
    }
    let end = cell
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(cell.len());
    let value: f64 = cell[..end].parse().ok()?;
    (0.0..=100.0).contains(&value).then_some(value)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn date() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_796_256_000)
    }

    #[test]
    fn each_version_with_a_share_is_a_record() {
        let csv = "Sender address,Domain,TLS 1.0,TLS 1.1,TLS 1.2,Messages sent
scanner@contoso.com,contoso.com,75%,0%,25%,120
app@contoso.com,contoso.com,0,0,100,3
,contoso.com,1,2,3,4
bad@contoso.com,contoso.com,lots,0,0,1
";
        let rows = read_smtp_auth_report(csv.as_bytes(), date()).unwrap();
        assert_eq!(rows.rows, 4);
        assert_eq!(rows.not_understood, 2);
        let seen: Vec<(Option<&str>, Option<TlsVersion>, Option<TlsVersion>)> = rows
            .records
            .iter()
            .map(|e| {
                (
                    e.record.login.as_deref(),
                    e.record.tls_version,
                    e.record.offered_max_tls,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (
                    Some("scanner@contoso.com"),
                    Some(TlsVersion::Tls10),
                    Some(TlsVersion::Tls10)
                ),
                (Some("scanner@contoso.com"), Some(TlsVersion::Tls12), None),
                (Some("app@contoso.com"), Some(TlsVersion::Tls12), None),
            ]
        );
        assert_eq!(
            rows.records[0].record.detail.as_deref(),
            Some("75% of 120 messages over TLSv1.0")
        );
    }

    #[test]
    fn the_older_spelling_reads_the_same() {
        let csv = "Sender address,TLS1.0%,TLS1.1%,TLS1.2%,Message count\nscanner@contoso.com,75% (90),0% (0),25% (30),120\n";
        let rows = read_smtp_auth_report(csv.as_bytes(), date()).unwrap();
        assert_eq!(rows.records.len(), 2);
    }

    #[test]
    fn shares() {
        assert_eq!(share("37.5%"), Some(37.5));
        assert_eq!(share("37 % (12)"), Some(37.0));
        assert_eq!(share(""), Some(0.0));
        assert_eq!(share("101"), None);
        assert_eq!(share("n/a"), None);
    }
}
