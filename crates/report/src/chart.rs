//! The report's charts as inline SVG, drawn here from numbers: no script, font or image from
//! anywhere else, so the file opens offline and prints as it shows. Every text drawn is
//! escaped, although only our own labels (versions, days, verdicts) are drawn.

use std::fmt::Write;

use time::{Date, Duration, Month};

use crate::evidence::{spell_day, Count, DayRow, Ownership};

const WIDTH: f64 = 640.0;

/// Text escaped for SVG (XML) content and attributes.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

fn open_svg(height: f64, title: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-label="{0}"><title>{0}</title>"#,
        xml(title)
    )
}

/// The colour of a verdict or TLS version label.
pub(crate) fn colour(label: &str) -> &'static str {
    match label {
        "breaks" | "TLSv1.0" | "SSLv3" => "#c62828",
        "at_risk" | "TLSv1.1" => "#ef6c00",
        "no_tls" | "no TLS" => "#6a1b9a",
        "ok" | "TLSv1.2" => "#43a047",
        "TLSv1.3" => "#1b5e20",
        _ => "#9e9e9e",
    }
}

/// Horizontal bars, one per label: clients per TLS version.
pub fn client_bars(counts: &[Count], title: &str) -> String {
    let row = 30.0;
    let height = row * counts.len().max(1) as f64 + 10.0;
    let mut svg = open_svg(height, title);
    let max = counts.iter().map(|c| c.clients).max().unwrap_or(0).max(1) as f64;
    let (label_width, bar_width) = (120.0, WIDTH - 120.0 - 60.0);
    for (i, count) in counts.iter().enumerate() {
        let y = 5.0 + row * i as f64;
        let w = (count.clients as f64 / max * bar_width).max(2.0);
        let _ = write!(
            svg,
            r#"<text x="{x}" y="{ty}" text-anchor="end" font-size="13">{label}</text><rect x="{label_width}" y="{y}" width="{w:.1}" height="20" rx="3" fill="{fill}"/><text x="{nx:.1}" y="{ty}" font-size="13">{n}</text>"#,
            x = label_width - 8.0,
            ty = y + 15.0,
            label = xml(&count.label),
            fill = colour(&count.label),
            nx = label_width + w + 6.0,
            n = count.clients,
        );
    }
    if counts.is_empty() {
        svg.push_str(r#"<text x="10" y="25" font-size="13">No clients in this period.</text>"#);
    }
    svg.push_str("</svg>");
    svg
}

/// Sessions on TLS 1.0/1.1 (and without TLS) per day, as stacked columns.
pub fn legacy_days(days: &[DayRow], title: &str) -> String {
    let (height, top, bottom, left) = (200.0, 10.0, 30.0, 50.0);
    let mut svg = open_svg(height, title);
    let plot_h = height - top - bottom;
    let plot_w = WIDTH - left - 10.0;
    let max = days
        .iter()
        // Saturating: the counts may come from a file `report verify` renders again.
        .map(|d| d.legacy_sessions.saturating_add(d.plaintext_sessions))
        .max()
        .unwrap_or(0);
    let scale = plot_h / max.max(1) as f64;
    let _ = write!(
        svg,
        r##"<line x1="{left}" y1="{base}" x2="{WIDTH}" y2="{base}" stroke="#555"/><text x="{lx}" y="{ty}" text-anchor="end" font-size="11">{max}</text><text x="{lx}" y="{base}" text-anchor="end" font-size="11">0</text>"##,
        base = top + plot_h,
        lx = left - 6.0,
        ty = top + 10.0,
    );
    let slot = plot_w / days.len().max(1) as f64;
    let bar = (slot * 0.8).clamp(1.0, 40.0);
    for (i, day) in days.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let legacy_h = day.legacy_sessions as f64 * scale;
        let plain_h = day.plaintext_sessions as f64 * scale;
        let base = top + plot_h;
        let _ = write!(
            svg,
            r##"<rect x="{x:.1}" y="{ly:.1}" width="{bar:.1}" height="{legacy_h:.1}" fill="#c62828"><title>{d}: {l} on TLS 1.0/1.1</title></rect><rect x="{x:.1}" y="{py:.1}" width="{bar:.1}" height="{plain_h:.1}" fill="#6a1b9a"><title>{d}: {p} without TLS</title></rect>"##,
            ly = base - legacy_h,
            py = base - legacy_h - plain_h,
            d = xml(&day.day),
            l = day.legacy_sessions,
            p = day.plaintext_sessions,
        );
    }
    // First and last day under the axis; the middle ones would crowd.
    if let (Some(first), Some(last)) = (days.first(), days.last()) {
        let last = if days.len() > 1 {
            last.day.as_str()
        } else {
            ""
        };
        let _ = write!(
            svg,
            r#"<text x="{left}" y="{y}" font-size="11">{}</text><text x="{WIDTH}" y="{y}" text-anchor="end" font-size="11">{}</text>"#,
            xml(&first.day),
            xml(last),
            y = height - 10.0,
        );
    } else {
        svg.push_str(r#"<text x="60" y="80" font-size="13">No sessions in this period.</text>"#);
    }
    svg.push_str("</svg>");
    svg
}

/// Owned (solid) and unowned (pale) clients per verdict.
pub fn ownership(rows: &[Ownership], title: &str) -> String {
    let row = 30.0;
    let height = row * rows.len().max(1) as f64 + 30.0;
    let mut svg = open_svg(height, title);
    let max = rows
        .iter()
        .map(|r| r.owned.saturating_add(r.unowned))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let (label_width, bar_width) = (120.0, WIDTH - 120.0 - 210.0);
    for (i, r) in rows.iter().enumerate() {
        let y = 5.0 + row * i as f64;
        let owned_w = r.owned as f64 / max * bar_width;
        let unowned_w = r.unowned as f64 / max * bar_width;
        let fill = colour(&r.verdict);
        let _ = write!(
            svg,
            r##"<text x="{tx}" y="{ty}" text-anchor="end" font-size="13">{label}</text><rect x="{label_width}" y="{y}" width="{owned_w:.1}" height="20" fill="{fill}"/><rect x="{ux:.1}" y="{y}" width="{unowned_w:.1}" height="20" fill="{fill}" fill-opacity="0.25" stroke="{fill}" stroke-dasharray="3 2"/><text x="{nx:.1}" y="{ty}" font-size="13">{o} owned, {u} without owner</text>"##,
            tx = label_width - 8.0,
            ty = y + 15.0,
            label = xml(&r.verdict.replace('_', " ")),
            ux = label_width + owned_w,
            nx = label_width + owned_w + unowned_w + 6.0,
            o = r.owned,
            u = r.unowned,
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The dates of MC1293480, Microsoft's retirement of TLS 1.0/1.1 for POP and IMAP in Exchange
/// Online.
const MILESTONES: [(i32, Month, u8, &str); 4] = [
    (2026, Month::April, 27, "MC1293480 published"),
    (2026, Month::July, 1, "first planned start"),
    (2026, Month::August, 1, "rollout starts"),
    (2026, Month::December, 31, "rollout ends"),
];

/// Furthest the timeline's axis reaches before the first or after the last milestone, in
/// days (about ten years).
const MAX_TIMELINE_REACH_DAYS: i64 = 3_653;

/// The MC1293480 timeline with the rollout shaded and `today` marked.
pub fn timeline(today: Date) -> String {
    let day = |(y, m, d, _): (i32, Month, u8, &str)| {
        Date::from_calendar_date(y, m, d).unwrap_or(Date::MIN)
    };
    let first = day(MILESTONES[0]) - Duration::days(26);
    let last = day(MILESTONES[3]) + Duration::days(31);
    // `today` comes from the report's own data, which `report verify` renders again: a
    // crafted date near the calendar's ends must not overflow, and one decades away would
    // draw a month tick for every month in between. So the axis reaches at most
    // MAX_TIMELINE_REACH beyond the milestones, and a today outside it sits at its edge
    // (labelled with its real date).
    let reach = Duration::days(MAX_TIMELINE_REACH_DAYS);
    let marked = today.clamp(first - reach, last + reach);
    let start = first.min(marked - Duration::days(14));
    let end = last.max(marked + Duration::days(14));
    let (left, right) = (20.0, WIDTH - 20.0);
    let span = (end - start).whole_days().max(1) as f64;
    let x = |d: Date| left + (d - start).whole_days() as f64 / span * (right - left);
    let height = 150.0;
    let mut svg = open_svg(height, "Timeline of MC1293480 with today marked");
    let axis = 86.0;
    let (rollout_from, rollout_to) = (x(day(MILESTONES[2])), x(day(MILESTONES[3])));
    let _ = write!(
        svg,
        r##"<rect x="{rollout_from:.1}" y="{ry}" width="{w:.1}" height="24" fill="#ffcdd2"/><text x="{mid:.1}" y="{ty}" text-anchor="middle" font-size="12" fill="#b71c1c">rollout: legacy TLS refused</text><line x1="{left}" y1="{axis}" x2="{right}" y2="{axis}" stroke="#555" stroke-width="2"/>"##,
        ry = axis - 12.0,
        w = rollout_to - rollout_from,
        mid = (rollout_from + rollout_to) / 2.0,
        ty = axis + 28.0,
    );
    // Month ticks.
    let mut month = Date::from_calendar_date(start.year(), start.month(), 1).unwrap_or(start);
    while month <= end {
        if month >= start {
            let _ = write!(
                svg,
                r##"<line x1="{mx:.1}" y1="{a}" x2="{mx:.1}" y2="{b}" stroke="#555"/><text x="{mx:.1}" y="{t}" font-size="10" fill="#555">{label}</text>"##,
                mx = x(month),
                a = axis - 4.0,
                b = axis + 4.0,
                t = axis + 42.0,
                label = &format!("{:?}", month.month())[..3],
            );
        }
        month = month.replace_day(28).unwrap_or(month) + Duration::days(4);
        month = month.replace_day(1).unwrap_or(month);
    }
    for (i, milestone) in MILESTONES.iter().enumerate() {
        let mx = x(day(*milestone));
        // Three rows of labels, so neighbouring milestones never overlap.
        let ty = [14.0, 30.0, 46.0, 14.0][i];
        let dash = if i == 1 {
            r#" stroke-dasharray="3 3""#
        } else {
            ""
        };
        let anchor = if i == MILESTONES.len() - 1 {
            "end"
        } else {
            "start"
        };
        let _ = write!(
            svg,
            r##"<line x1="{mx:.1}" y1="{y1}" x2="{mx:.1}" y2="{axis}" stroke="#1565c0"{dash}/><circle cx="{mx:.1}" cy="{axis}" r="4" fill="#1565c0"/><text x="{mx:.1}" y="{ty}" font-size="11" text-anchor="{anchor}" fill="#0d47a1">{date} {label}</text>"##,
            y1 = ty + 3.0,
            date = spell_day(day(*milestone)),
            label = xml(milestone.3),
        );
    }
    let tx = x(marked);
    let anchor = if tx > WIDTH - 120.0 { "end" } else { "start" };
    let _ = write!(
        svg,
        r##"<line x1="{tx:.1}" y1="{a}" x2="{tx:.1}" y2="{b}" stroke="#000" stroke-width="3"/><text x="{tx:.1}" y="{t}" font-size="12" font-weight="bold" text-anchor="{anchor}">today {d}</text>"##,
        a = axis - 22.0,
        b = axis + 12.0,
        t = height - 2.0,
        d = spell_day(today),
    );
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn labels_are_escaped_and_today_is_marked() {
        let svg = client_bars(
            &[Count {
                label: "<b>&".into(),
                clients: 3,
            }],
            "t\"",
        );
        assert!(
            svg.contains("&lt;b&gt;&amp;") && !svg.contains("<b>"),
            "{svg}"
        );
        assert!(svg.contains(r#"aria-label="t&quot;""#), "{svg}");
        let line = timeline(date!(2026 - 12 - 03));
        assert!(line.contains("today 2026-12-03"), "{line}");
        assert!(line.contains("2026-08-01 rollout starts"), "{line}");
        // A today far past the rollout stretches the axis rather than falling off it.
        let later = timeline(date!(2027 - 06 - 01));
        assert!(later.contains("today 2027-06-01"), "{later}");
    }

    #[test]
    fn dates_and_counts_at_their_types_ends_are_drawn_not_overflowed() {
        // Found by `report verify` on a file whose generated_at said 9999-12-31: the axis
        // arithmetic overflowed and panicked.
        for (today, label) in [
            (Date::MAX, "today 9999-12-31"),
            (Date::MIN, "today -9999-01-01"),
        ] {
            let line = timeline(today);
            assert!(line.contains(label), "{line}");
            assert!(line.len() < 40_000, "{} bytes", line.len());
            assert!(line.contains("2026-08-01 rollout starts"));
        }
        // Counts at u64's end, as a crafted file may hold: drawn, not overflowed.
        let huge = DayRow {
            day: "2026-12-02".into(),
            sessions: u64::MAX,
            legacy_sessions: u64::MAX,
            plaintext_sessions: u64::MAX,
        };
        assert!(legacy_days(&[huge], "t").contains("2026-12-02"));
        let owners = Ownership {
            verdict: "breaks".into(),
            owned: u64::MAX,
            unowned: u64::MAX,
        };
        assert!(ownership(&[owners], "t").contains("without owner"));
        let decades = timeline(date!(2090 - 01 - 01));
        assert!(decades.contains("today 2090-01-01"));
        assert!(decades.len() < 40_000, "{} bytes", decades.len());
    }
}
