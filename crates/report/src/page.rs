//! The report as one self-contained HTML page (askama template `templates/report.html`,
//! escaped for HTML), with its data embedded as JSON and a SHA-256 over that JSON, and the
//! check of a copy (`mailtls report verify`).

use askama::Template;
use sha2::{Digest, Sha256};

use crate::chart;
use crate::client_row::ClientRow;
use crate::evidence::ReportData;
use crate::guidance::{self, RoleAdvice};

/// The element the data is embedded in; `verify` finds it by this exact text.
const DATA_OPEN: &str = r#"<script type="application/json" id="mailtls-report-data">"#;
const DATA_CLOSE: &str = "</script>";
const DIGEST_OPEN: &str = r#"<meta name="mailtls-data-sha256" content=""#;

/// What the dashboard adds to the page: the filter form's values and the token its forms
/// carry.
#[derive(Debug, Clone, Default)]
pub struct LiveView {
    /// The token every form posts back, checked by the dashboard (cross-site request forgery).
    pub csrf: String,
    /// The verdict filtered on, or empty.
    pub verdict: String,
    /// The owner text filtered on, or empty.
    pub owner: String,
    /// The listener filtered on, or empty.
    pub listener: String,
    /// The `since` filter as typed, or empty.
    pub since: String,
    /// Only clients without an owner.
    pub unowned: bool,
    /// The filtered clients, listed instead of the report's groups (at most
    /// [`MAX_LIVE_ROWS`]).
    pub clients: Vec<ClientRow>,
    /// Clients the filter admits beyond those listed.
    pub not_listed: usize,
    /// Every verdict's spelling, for the form.
    pub verdicts: Vec<&'static str>,
    /// The inventory's state when the page was made; the page reloads when it changes.
    pub state: String,
}

impl LiveView {
    /// Whether the form's verdict select has `verdict` chosen.
    fn is_selected(&self, verdict: &str) -> bool {
        self.verdict == verdict
    }
}

/// Most clients the dashboard lists on one page; a filter narrows a longer list.
pub const MAX_LIVE_ROWS: usize = 500;

/// A table of clients on the page.
struct Group<'a> {
    anchor: &'static str,
    title: &'static str,
    explanation: &'static str,
    rows: Vec<&'a ClientRow>,
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage<'a> {
    data: &'a ReportData,
    data_json: &'a str,
    digest: &'a str,
    covered: String,
    summary: Vec<String>,
    advice: Vec<RoleAdvice>,
    groups: Vec<Group<'a>>,
    timeline: String,
    tls_chart: String,
    days_chart: String,
    owners_chart: String,
    live: Option<&'a LiveView>,
}

/// Why a page could not be made or a copy did not check out.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The data could not be written or read as JSON.
    #[error("the report's data: {0}")]
    Json(#[from] serde_json::Error),
    /// The template failed.
    #[error("rendering the report: {0}")]
    Render(#[from] askama::Error),
    /// The file has no embedded data or digest: not a mailtls report.
    #[error("no mailtls report data in this file ({0} not found)")]
    NotAReport(&'static str),
    /// The data's digest is not the one the page states.
    #[error("the embedded data was changed: its SHA-256 is {computed}, the page states {stated}")]
    DataChanged {
        /// What the page says.
        stated: String,
        /// What the data hashes to.
        computed: String,
    },
    /// The data is intact but the page around it is not what that data renders to.
    #[error("the page's text was changed: it is not what its (intact) data renders to")]
    PageChanged,
}

/// The data as embedded: JSON with `<`, `>` and `&` written as `\u` escapes, so no value can
/// close the script element, and the JSON parses to the same data.
fn embedded_json(data: &ReportData) -> Result<String, serde_json::Error> {
    let json = serde_json::to_string(data)?;
    Ok(json
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026"))
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The report page of `data`, with the data embedded and its digest; with `live`, the
/// dashboard's page, which embeds neither.
pub fn render_html(data: &ReportData, live: Option<&LiveView>) -> Result<String, PageError> {
    // The live page embeds no data: it would be the whole inventory, sent again at every
    // reload, for a page that lists a filtered few (and is no evidence to verify).
    let data_json = match live {
        None => embedded_json(data)?,
        Some(_) => String::new(),
    };
    let digest = sha256_hex(data_json.as_bytes());
    let today = crate::filter::utc_day(
        crate::filter::parse_time(&data.generated_at, std::time::SystemTime::now())
            .unwrap_or_else(|_| std::time::SystemTime::now()),
    );
    let with = |verdict: &str| -> Vec<&ClientRow> {
        data.clients
            .iter()
            .filter(|c| c.verdict == verdict)
            .collect()
    };
    let groups = match live {
        Some(live) => vec![Group {
            anchor: "clients",
            title: "Clients",
            explanation: "The clients the filter admits, by risk. Save an owner, device or note \
                          with the form under each.",
            rows: live.clients.iter().collect(),
        }],
        None => vec![
            Group {
                anchor: "breaks",
                title: "Clients that break",
                explanation: "They offer nothing above TLS 1.1 and cannot reach a server that \
                              requires TLS 1.2: keep them on the gateway or replace them.",
                rows: with("breaks"),
            },
            Group {
                anchor: "at-risk",
                title: "Clients at risk",
                explanation: "They offer TLS 1.2 or newer but used older: a settings problem.",
                rows: with("at_risk"),
            },
            Group {
                anchor: "no-tls",
                title: "Clients without TLS",
                explanation: "They logged in on a listener without encryption.",
                rows: with("no_tls"),
            },
            Group {
                anchor: "all",
                title: "Every client",
                explanation: "Everything seen in the period, by risk.",
                rows: data.clients.iter().collect(),
            },
        ],
    };
    let covered = match (&data.range.first_day, &data.range.last_day) {
        (Some(first), Some(last)) => format!("{first} to {last}"),
        _ => "no sessions".to_string(),
    };
    let page = ReportPage {
        data,
        data_json: &data_json,
        digest: &digest,
        covered,
        summary: guidance::summary(data),
        advice: guidance::advice(data, live.is_none().then_some(digest.as_str())),
        groups,
        timeline: chart::timeline(today),
        tls_chart: chart::client_bars(&data.by_tls_version, "Clients by oldest TLS version used"),
        days_chart: chart::legacy_days(&data.days, "Legacy sessions per day"),
        owners_chart: chart::ownership(&data.ownership, "Clients with and without an owner"),
        live,
    };
    Ok(page.render()?)
}

/// What a copy that checked out holds.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedReport {
    /// The SHA-256 of the embedded data (hex), to compare with the one recorded elsewhere.
    pub digest: String,
    /// The data.
    pub data: ReportData,
    /// Whether the whole page was also re-rendered from the data and matched (only when this
    /// version of mailtls made it).
    pub page_checked: bool,
}

/// Checks a report file's text: the embedded data must hash to the digest the page states,
/// and when this version made it, the whole page must be what the data renders to.
pub fn verify(html: &str) -> Result<VerifiedReport, PageError> {
    let start = html
        .find(DATA_OPEN)
        .ok_or(PageError::NotAReport("the data element"))?
        + DATA_OPEN.len();
    let len = html[start..]
        .find(DATA_CLOSE)
        .ok_or(PageError::NotAReport("the end of the data element"))?;
    let json = &html[start..start + len];
    let digest_start = html
        .find(DIGEST_OPEN)
        .ok_or(PageError::NotAReport("the digest"))?
        + DIGEST_OPEN.len();
    let stated = html[digest_start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string();
    let computed = sha256_hex(json.as_bytes());
    if computed != stated {
        return Err(PageError::DataChanged { stated, computed });
    }
    let data: ReportData = serde_json::from_str(json)?;
    let ours = format!("mailtls {}", env!("CARGO_PKG_VERSION"));
    let page_checked = data.generator == ours;
    if page_checked && render_html(&data, None)? != html {
        return Err(PageError::PageChanged);
    }
    Ok(VerifiedReport {
        digest: computed,
        data,
        page_checked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client_row::tests::hostile_row;
    use crate::evidence::{Count, CoveredRange, DayRow, Ownership, Totals};
    use crate::register::{ExceptionRow, RegisterSection, WarningRow};

    fn data() -> ReportData {
        let mut ok = hostile_row();
        ok.id = "c2".into();
        ok.verdict = "ok".into();
        ok.software = Some("Thunderbird 115".into());
        ok.owner = Some("Ana </td><b>Admin</b>".into());
        ReportData {
            generator: format!("mailtls {}", env!("CARGO_PKG_VERSION")),
            generated_at: "2026-12-03T06:00:00Z".into(),
            range: CoveredRange {
                since: None,
                until: None,
                first_day: Some("2026-11-30".into()),
                last_day: Some("2026-12-02".into()),
            },
            totals: Totals {
                clients: 2,
                sessions: 9,
                legacy_sessions: 3,
                breaks: 1,
                ok: 1,
                ..Totals::default()
            },
            by_tls_version: vec![Count {
                label: "TLSv1.0".into(),
                clients: 1,
            }],
            days: vec![DayRow {
                day: "2026-12-02".into(),
                sessions: 9,
                legacy_sessions: 3,
                plaintext_sessions: 0,
            }],
            sources: vec![Count {
                label: "gateway".into(),
                clients: 2,
            }],
            ownership: vec![Ownership {
                verdict: "breaks".into(),
                owned: 1,
                unowned: 0,
            }],
            clients: vec![hostile_row(), ok],
            register: Some(RegisterSection {
                exceptions: vec![ExceptionRow {
                    id: 3,
                    matches: "client=10.20.0.0/24".into(),
                    owner: "facilities </td><b>owner</b>".into(),
                    reason: "old firmware".into(),
                    expires: "2026-12-20T00:00:00Z".into(),
                    live: true,
                    plan: "<script>alert(2)</script>".into(),
                    sessions: 41,
                    last_matched: Some("2026-12-02T10:00:00Z".into()),
                }],
                warnings: vec![
                    WarningRow {
                        kind: "expiring".into(),
                        exception: Some(3),
                        text: "exception 3 (client=10.20.0.0/24) expires at 2026-12-20".into(),
                    },
                    WarningRow {
                        kind: "unexcepted".into(),
                        exception: None,
                        text: "legacy client 192.0.2.17 (login \"<i>x</i>\") negotiated TLSv1.0"
                            .into(),
                    },
                ],
            }),
        }
    }

    #[test]
    fn the_register_and_its_warnings_are_shown_escaped_or_said_to_be_missing() {
        let html = render_html(&data(), None).unwrap();
        assert!(html.contains("Warnings (2)"), "{html}");
        assert!(html.contains("Exceptions (1)"));
        assert!(html.contains(
            ">expires soon</span> exception 3 (client=10.20.0.0/24) expires at 2026-12-20<"
        ));
        assert!(html.contains("<td>2026-12-20 00:00</td>"));
        assert!(html.contains("<td>41</td>"));
        assert!(!html.contains("<b>owner</b>") && !html.contains("<i>x</i>"));
        assert!(!html.contains("<script>alert(2)"));
        assert!(html.contains("Act on 2 warnings about the exception register (1 expiring"));
        assert!(verify(&html).is_ok());
        // A warning changed in the data, or on the page, is found.
        let (page, data_part) = html.split_at(html.find(DATA_OPEN).unwrap());
        let changed = format!(
            "{page}{}",
            data_part.replacen("expires at 2026-12-20", "expires at 2027-12-20", 1)
        );
        assert_ne!(changed, html);
        assert!(matches!(
            verify(&changed),
            Err(PageError::DataChanged { .. })
        ));
        let changed = html.replacen("expires at 2026-12-20", "expires at 2027-12-20", 1);
        assert!(matches!(verify(&changed), Err(PageError::PageChanged)));

        let without = ReportData {
            register: None,
            ..data()
        };
        let html = render_html(&without, None).unwrap();
        assert!(html.contains("No exception register was given"));
        assert!(!html.contains("Warnings ("));
        assert!(verify(&html).is_ok());
    }

    #[test]
    fn client_text_stays_text_and_the_data_round_trips() {
        let html = render_html(&data(), None).unwrap();
        assert!(!html.contains("<script>alert"), "software escaped");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
                || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
        );
        assert!(!html.contains("<b>Admin</b>"));
        assert_eq!(html.matches("<script").count(), 1, "only the data element");
        assert!(html.contains("today 2026-12-03"));
        assert!(html.contains("Security and compliance"));
        let checked = verify(&html).unwrap();
        assert_eq!(checked.data, data());
        assert!(checked.page_checked);
        assert_eq!(
            html.matches(&checked.digest).count(),
            3,
            "meta, advice, footer"
        );
    }

    #[test]
    fn data_dated_at_the_calendars_ends_renders_and_verifies() {
        // The report_data fuzz target's seed is such data; it must stay readable.
        let seed: ReportData =
            serde_json::from_str(include_str!("../testdata/report-data.json")).unwrap();
        assert_eq!(seed.clients.len(), 2);
        // `report verify` renders again any file this version made, with "today" taken from
        // the file: a crafted date used to overflow the timeline's arithmetic and panic.
        for generated_at in [
            "9999-12-31T23:59:59Z",
            "-9999-01-01T00:00:00Z",
            "+999999-01-01T00:00:00Z",
            "36500d",
        ] {
            let crafted = ReportData {
                generated_at: generated_at.into(),
                ..seed.clone()
            };
            let html = render_html(&crafted, None).unwrap();
            let checked = verify(&html).unwrap();
            assert_eq!(checked.data, crafted);
        }
    }

    #[test]
    fn the_live_page_embeds_no_data_and_grows_with_what_it_lists_only() {
        let mut busy = data();
        for n in 0..2_000 {
            let mut row = hostile_row();
            row.id = format!("c{}", 1_000 + n);
            busy.clients.push(row);
        }
        let live = |listed: &[ClientRow]| LiveView {
            clients: listed.to_vec(),
            state: "s".into(),
            ..LiveView::default()
        };
        let one = render_html(&busy, Some(&live(&busy.clients[..1]))).unwrap();
        assert!(!one.contains(DATA_OPEN) && !one.contains(DIGEST_OPEN));
        assert!(
            !one.contains("c2999"),
            "an unlisted client is not in the page"
        );
        let offline = render_html(&busy, None).unwrap();
        assert!(offline.contains(DATA_OPEN) && offline.contains("c2999"));
        assert!(
            one.len() * 10 < offline.len(),
            "{} vs {}",
            one.len(),
            offline.len()
        );
        // Twice the clients, the same listed: the live page stays the same size.
        busy.clients.extend(busy.clients.clone());
        let same = render_html(&busy, Some(&live(&busy.clients[..1]))).unwrap();
        assert!(
            same.len() < one.len() + 200,
            "{} vs {}",
            same.len(),
            one.len()
        );
    }

    #[test]
    fn any_changed_byte_is_found() {
        let html = render_html(&data(), None).unwrap();
        let data_at = html.find(DATA_OPEN).unwrap() + DATA_OPEN.len();
        // A session count in the data, a byte of the page, the digest itself.
        let changed_data = html.replacen("\"sessions\":9", "\"sessions\":8", 1);
        assert!(changed_data.find("\"sessions\":8").unwrap() > data_at);
        assert!(matches!(
            verify(&changed_data),
            Err(PageError::DataChanged { .. })
        ));
        let changed_page = html.replacen("Clients that break", "Clients that brake", 1);
        assert!(matches!(verify(&changed_page), Err(PageError::PageChanged)));
        for at in [data_at, data_at + 40, html.len() - 200] {
            let mut bytes = html.clone().into_bytes();
            bytes[at] ^= 0x01;
            let text = String::from_utf8_lossy(&bytes);
            assert!(verify(&text).is_err(), "byte {at}");
        }
        assert!(matches!(
            verify("<html></html>"),
            Err(PageError::NotAReport(_))
        ));
    }
}
