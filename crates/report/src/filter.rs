//! Which clients a list shows: `mailtls clients --verdict/--since/--listener/--owner/--unowned`
//! and the dashboard's filter form, one rule for both.

use std::time::{Duration, SystemTime};

use store::{ClientSummary, Verdict};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, Time};

/// A client is listed when it passes every condition given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientFilter {
    /// Only this verdict.
    pub verdict: Option<Verdict>,
    /// Only clients seen at or after this instant.
    pub since: Option<SystemTime>,
    /// Only clients that came through this listener (by its name in the config).
    pub listener: Option<String>,
    /// Only clients whose owner contains this text, ignoring case.
    pub owner: Option<String>,
    /// Only clients without an owner.
    pub unowned: bool,
}

impl ClientFilter {
    /// Whether `client` is listed.
    pub fn admits(&self, client: &ClientSummary) -> bool {
        let owner = client.annotation.as_ref().and_then(|a| a.owner.as_deref());
        self.verdict.is_none_or(|v| client.verdict == v)
            && self.since.is_none_or(|since| client.last_seen >= since)
            && self.listener.as_deref().is_none_or(|wanted| {
                client
                    .values(store::AttributeKind::Listener)
                    .iter()
                    .any(|l| l == wanted)
            })
            && self.owner.as_deref().is_none_or(|wanted| {
                owner.is_some_and(|o| o.to_lowercase().contains(&wanted.to_lowercase()))
            })
            && (!self.unowned || owner.is_none_or(|o| o.trim().is_empty()))
    }
}

/// Longest age accepted (`36500d`): beyond it a day could fall outside the years the
/// calendar arithmetic handles.
const MAX_AGE_SECS: u64 = 100 * 365 * 86_400;

/// A time given on the command line or in the dashboard's form could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read {0:?} as a time: give a day (2026-07-01), an RFC 3339 time (2026-07-01T08:00:00Z) or an age up to 100 years (30d, 12h)")]
pub struct UnreadableTime(pub String);

/// Reads a time: a UTC day (its start), an RFC 3339 instant, or an age before `now` in days
/// (`30d`) or hours (`12h`).
pub fn parse_time(text: &str, now: SystemTime) -> Result<SystemTime, UnreadableTime> {
    let text = text.trim();
    let unreadable = || UnreadableTime(text.to_string());
    if let Some((number, unit)) = text
        .strip_suffix('d')
        .map(|n| (n, 86_400))
        .or_else(|| text.strip_suffix('h').map(|n| (n, 3_600)))
    {
        let count: u64 = number.parse().map_err(|_| unreadable())?;
        let age = count
            .checked_mul(unit)
            .filter(|&age| age <= MAX_AGE_SECS)
            .ok_or_else(unreadable)?;
        return now
            .checked_sub(Duration::from_secs(age))
            .ok_or_else(unreadable);
    }
    let instant = match Date::parse(text, format_description!("[year]-[month]-[day]")) {
        Ok(day) => day.with_time(Time::MIDNIGHT).assume_utc(),
        Err(_) => OffsetDateTime::parse(text, &Rfc3339).map_err(|_| unreadable())?,
    };
    // PostgreSQL's dates have no year 0 (SQLite would compare it as text): refused alike.
    if instant.to_offset(time::UtcOffset::UTC).year() < 1 {
        return Err(unreadable());
    }
    Ok(instant.into())
}

/// The UTC day of an instant; one beyond the calendar's years ±9999 is its first or last day
/// (time's own conversion would panic there).
pub fn utc_day(time: SystemTime) -> Date {
    let since_epoch = match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => time::Duration::try_from(after).ok(),
        Err(before) => time::Duration::try_from(before.duration()).ok().map(|d| -d),
    };
    match since_epoch.and_then(|d| OffsetDateTime::UNIX_EPOCH.checked_add(d)) {
        Some(instant) => instant.date(),
        None if time < SystemTime::UNIX_EPOCH => Date::MIN,
        None => Date::MAX,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::UNIX_EPOCH;

    use store::{Annotation, AttributeKind, ClientIdentity, Source};

    use super::*;

    fn client(
        id: i64,
        verdict: Verdict,
        owner: Option<&str>,
        last_seen_secs: u64,
    ) -> ClientSummary {
        let mut attributes = BTreeMap::new();
        attributes.insert(AttributeKind::Listener, vec!["imaps-legacy".to_string()]);
        ClientSummary {
            id,
            identity: ClientIdentity {
                address: "192.0.2.7".parse().unwrap(),
                login: None,
                ja4: None,
                reported_software: None,
            },
            source: Source::Gateway,
            first_seen: UNIX_EPOCH,
            last_seen: UNIX_EPOCH + Duration::from_secs(last_seen_secs),
            sessions: 1,
            highest_offered: None,
            negotiated: vec![],
            attributes,
            verdict,
            annotation: owner.map(|o| Annotation {
                owner: Some(o.to_string()),
                device: None,
                note: None,
            }),
        }
    }

    #[test]
    fn every_condition_must_hold() {
        let printer = client(1, Verdict::Breaks, Some("Facilities Team"), 2_000);
        let laptop = client(2, Verdict::Ok, None, 1_000);
        let all = ClientFilter::default();
        assert!(all.admits(&printer) && all.admits(&laptop));

        let breaks = ClientFilter {
            verdict: Some(Verdict::Breaks),
            ..ClientFilter::default()
        };
        assert!(breaks.admits(&printer) && !breaks.admits(&laptop));

        let recent = ClientFilter {
            since: Some(UNIX_EPOCH + Duration::from_secs(1_500)),
            ..ClientFilter::default()
        };
        assert!(recent.admits(&printer) && !recent.admits(&laptop));

        let facilities = ClientFilter {
            owner: Some("facilities".into()),
            ..ClientFilter::default()
        };
        assert!(facilities.admits(&printer) && !facilities.admits(&laptop));

        let unowned = ClientFilter {
            unowned: true,
            ..ClientFilter::default()
        };
        assert!(!unowned.admits(&printer) && unowned.admits(&laptop));

        let listener = |name: &str| ClientFilter {
            listener: Some(name.into()),
            ..ClientFilter::default()
        };
        assert!(listener("imaps-legacy").admits(&printer));
        assert!(!listener("imaps").admits(&printer), "whole names only");

        let unowned_breaking = ClientFilter {
            verdict: Some(Verdict::Breaks),
            unowned: true,
            ..ClientFilter::default()
        };
        assert!(!unowned_breaking.admits(&printer) && !unowned_breaking.admits(&laptop));
    }

    #[test]
    fn times_are_days_instants_or_ages() {
        let now = UNIX_EPOCH + Duration::from_secs(10 * 86_400);
        let day = parse_time("1970-01-02", now).unwrap();
        assert_eq!(day, UNIX_EPOCH + Duration::from_secs(86_400));
        let instant = parse_time("1970-01-02T01:00:00+01:00", now).unwrap();
        assert_eq!(instant, day);
        assert_eq!(
            parse_time("3d", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(7 * 86_400)
        );
        assert_eq!(
            parse_time("24h", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(9 * 86_400)
        );
        // The last found by the report_file fuzz target: 608,000 years back.
        for bad in [
            "yesterday",
            "2026-13-01",
            "-3d",
            "99999999999999999d",
            "",
            "222222222d",
            "0000-01-01",
            "0000-12-31T23:59:59Z",
        ] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
        assert!(parse_time("36500d", now).is_ok());
        assert!(parse_time("0001-01-01", now).is_ok());
        let far = UNIX_EPOCH - Duration::from_secs(1_000_000 * 365 * 86_400);
        assert_eq!(utc_day(far), Date::MIN);
        assert_eq!(
            utc_day(UNIX_EPOCH + Duration::from_secs(86_400)).to_string(),
            "1970-01-02"
        );
    }
}
