//! RFC 3339 UTC text for stored times, e.g. `2026-07-19T08:15:02.123Z`.
//!
//! Text rather than unix numbers so auditors can read and filter rows with plain `sqlite3`; the
//! fixed width (always milliseconds, always `Z`) makes text order equal time order and SQLite's
//! date functions accept it as-is.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z in unix milliseconds: RFC 3339 has
/// four-digit years, so times outside are clamped to stay parseable.
const MIN_UNIX_MS: i64 = -62_167_219_200_000;
const MAX_UNIX_MS: i64 = 253_402_300_799_999;

const MS_PER_DAY: i64 = 86_400_000;

/// Formats `time` as RFC 3339 UTC, truncated (toward the past) to whole milliseconds.
pub(crate) fn format(time: SystemTime) -> String {
    let ms = unix_millis(time).clamp(MIN_UNIX_MS, MAX_UNIX_MS);
    let (days, ms_of_day) = (ms.div_euclid(MS_PER_DAY), ms.rem_euclid(MS_PER_DAY));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1_000 % 60,
        ms_of_day % 1_000,
    )
}

/// Parses text written by [`format`]; other RFC 3339 spellings (offsets, other precisions) are
/// rejected because only this crate writes these columns.
pub(crate) fn parse(text: &str) -> Result<SystemTime, String> {
    let invalid = || format!("{text:?} is not a time of the form 2026-07-19T08:15:02.123Z");
    let b = text.as_bytes();
    let shape_ok = b.len() == 24
        && [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
            (23, b'Z'),
        ]
        .iter()
        .all(|&(i, c)| b[i] == c);
    if !shape_ok {
        return Err(invalid());
    }
    let field = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let digits = &text[range];
        if digits.bytes().all(|d| d.is_ascii_digit()) {
            digits.parse().map_err(|_| invalid())
        } else {
            Err(invalid())
        }
    };
    let (year, month, day) = (field(0..4)?, field(5..7)?, field(8..10)?);
    let (hour, minute, second, milli) = (
        field(11..13)?,
        field(14..16)?,
        field(17..19)?,
        field(20..23)?,
    );
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(invalid());
    }
    let days = days_from_civil(year, month, day);
    // Round-tripping the date catches days past the end of the month, such as February 30.
    if civil_from_days(days) != (year, month, day) {
        return Err(invalid());
    }
    let ms = days * MS_PER_DAY + ((hour * 60 + minute) * 60 + second) * 1_000 + milli;
    from_unix_millis(ms)
        .ok_or_else(|| format!("{text:?} is outside the range of times this system can represent"))
}

/// Milliseconds since the unix epoch, floored, saturating at the `i64` range.
fn unix_millis(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => {
            let ms = before.duration().as_nanos().div_ceil(1_000_000);
            i64::try_from(ms).map_or(i64::MIN, |ms| -ms)
        }
    }
}

fn from_unix_millis(ms: i64) -> Option<SystemTime> {
    let offset = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) to days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_ms(ms: i64) -> SystemTime {
        from_unix_millis(ms).unwrap()
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(format(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(format(at_ms(1_700_000_000_123)), "2023-11-14T22:13:20.123Z");
        assert_eq!(format(at_ms(1_709_164_800_000)), "2024-02-29T00:00:00.000Z");
        assert_eq!(format(at_ms(-1)), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn truncates_below_a_millisecond_toward_the_past() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_999_999);
        assert_eq!(format(t), "2023-11-14T22:13:20.123Z");
        let before = UNIX_EPOCH - Duration::from_nanos(1);
        assert_eq!(format(before), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn parse_inverts_format() {
        for ms in [
            0,
            1,
            -1,
            951_782_400_000,
            1_700_000_000_123,
            4_102_444_799_999,
            MIN_UNIX_MS,
            MAX_UNIX_MS,
        ] {
            let text = format(at_ms(ms));
            assert_eq!(parse(&text), Ok(at_ms(ms)), "{text}");
        }
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        // 1900..2300 covers the 100- and 400-year leap rules.
        for days in -25_567..120_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn rejects_malformed_and_impossible_times() {
        for bad in [
            "",
            "2023-11-14T22:13:20Z",
            "2023-11-14T22:13:20.123+00:00",
            "2023-11-14 22:13:20.123Z",
            "2023-02-30T00:00:00.000Z",
            "2023-02-29T00:00:00.000Z",
            "2023-13-01T00:00:00.000Z",
            "2023-11-14T24:00:00.000Z",
            "2023-11-14T22:60:00.000Z",
            "2023-11-14T22:13:60.000Z",
            "2023-11-+4T22:13:20.123Z",
            "2023-11-14T22:13:20.1x3Z",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
