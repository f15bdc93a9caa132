//! RFC 3339 UTC text for stored times, e.g. `2026-07-19T08:15:02.123Z`.
//!
//! Text rather than unix numbers so auditors can read and filter rows with plain `sqlite3`; the
//! fixed width (always milliseconds, always `Z`) makes text order equal time order and SQLite's
//! date functions accept it as-is.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// The one stored spelling: four-digit year, milliseconds, literal `Z`.
const FORMAT: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z in unix milliseconds: RFC 3339 has
/// four-digit years, so times outside are clamped to stay parseable.
const MIN_UNIX_MS: i64 = -62_167_219_200_000;
const MAX_UNIX_MS: i64 = 253_402_300_799_999;

/// Formats `time` as RFC 3339 UTC, truncated (toward the past) to whole milliseconds.
pub(crate) fn format(time: SystemTime) -> String {
    let ms = unix_millis(time).clamp(MIN_UNIX_MS, MAX_UNIX_MS);
    OffsetDateTime::UNIX_EPOCH
        .saturating_add(time::Duration::milliseconds(ms))
        .format(FORMAT)
        // Unreachable: every clamped time has a four-digit year and the format writes to a String.
        .unwrap_or_else(|error| panic!("formatting {ms} ms since the epoch: {error}"))
}

/// A stored time as each database takes it: RFC 3339 text (see [`format`]) in SQLite, a
/// binary `timestamptz` in PostgreSQL, both truncated to the same whole millisecond, so a
/// record reads back the same from either store.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoredTime(SystemTime);

impl StoredTime {
    pub(crate) fn of(time: SystemTime) -> StoredTime {
        let ms = unix_millis(time).clamp(MIN_UNIX_MS, MAX_UNIX_MS);
        // Unreachable fallback: every clamped time is within SystemTime's range on the
        // platforms this runs on.
        StoredTime(from_unix_millis(ms).unwrap_or(time))
    }
}

impl rusqlite::ToSql for StoredTime {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(format(self.0).into())
    }
}

impl postgres::types::ToSql for StoredTime {
    // `private::BytesMut` is the buffer type the trait names (bytes' BytesMut, re-exported).
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.0.to_sql(ty, out)
    }

    fn accepts(ty: &postgres::types::Type) -> bool {
        <SystemTime as postgres::types::ToSql>::accepts(ty)
    }

    postgres::types::to_sql_checked!();
}

/// Parses text written by [`format`]; other RFC 3339 spellings (offsets, other precisions) are
/// rejected because only this crate writes these columns.
pub(crate) fn parse(text: &str) -> Result<SystemTime, String> {
    let invalid = || format!("{text:?} is not a time of the form 2026-07-19T08:15:02.123Z");
    let utc = PrimitiveDateTime::parse(text, FORMAT)
        .map_err(|_| invalid())?
        .assume_utc();
    // Only the exact spelling `format` writes is accepted (no signs or wider years), so a value
    // always reads back as the text it was stored as.
    if utc.format(FORMAT).ok().as_deref() != Some(text) {
        return Err(invalid());
    }
    // Exact: the text carries whole milliseconds. Negative years parse and format as `-0001`
    // but are not RFC 3339, and `format` never writes them.
    let ms = i64::try_from(utc.unix_timestamp_nanos() / 1_000_000)
        .ok()
        .filter(|ms| (MIN_UNIX_MS..=MAX_UNIX_MS).contains(ms))
        .ok_or_else(invalid)?;
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

/// Via the unix epoch rather than `SystemTime::from(OffsetDateTime)`, which panics where the
/// platform cannot represent the time (e.g. before 1601 on Windows).
fn from_unix_millis(ms: i64) -> Option<SystemTime> {
    let offset = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    }
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
        assert_eq!(format(at_ms(MIN_UNIX_MS)), "0000-01-01T00:00:00.000Z");
        assert_eq!(format(at_ms(MAX_UNIX_MS)), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn truncates_below_a_millisecond_toward_the_past() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_999_999);
        assert_eq!(format(t), "2023-11-14T22:13:20.123Z");
        let before = UNIX_EPOCH - Duration::from_nanos(1);
        assert_eq!(format(before), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn clamps_to_four_digit_years() {
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(format(far), "9999-12-31T23:59:59.999Z");
        if let Some(early) = UNIX_EPOCH.checked_sub(Duration::from_secs(100_000_000_000)) {
            assert_eq!(format(early), "0000-01-01T00:00:00.000Z");
        }
    }

    #[test]
    fn a_stored_time_is_the_formatted_millisecond() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_999_999);
        assert_eq!(StoredTime::of(t).0, at_ms(1_700_000_000_123));
        let before = UNIX_EPOCH - Duration::from_nanos(1);
        assert_eq!(StoredTime::of(before).0, at_ms(-1));
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(StoredTime::of(far).0, at_ms(MAX_UNIX_MS));
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
    fn parses_known_text() {
        // Pins the stored spelling independently of `format`, so existing databases read back.
        assert_eq!(
            parse("2023-11-14T22:13:20.123Z"),
            Ok(at_ms(1_700_000_000_123))
        );
        assert_eq!(
            parse("2000-02-29T00:00:00.000Z"),
            Ok(at_ms(951_782_400_000))
        );
        assert_eq!(parse("1969-12-31T23:59:59.999Z"), Ok(at_ms(-1)));
    }

    #[test]
    fn rejects_malformed_and_impossible_times() {
        for bad in [
            "",
            "2023-11-14T22:13:20Z",
            "2023-11-14T22:13:20.12Z",
            "2023-11-14T22:13:20.1234Z",
            "2023-11-14T22:13:20.123+00:00",
            "2023-11-14T22:13:20.123z",
            "2023-11-14T22:13:20.123Z ",
            "2023-11-14 22:13:20.123Z",
            "2023-02-30T00:00:00.000Z",
            "2023-02-29T00:00:00.000Z",
            "1900-02-29T00:00:00.000Z",
            "2023-13-01T00:00:00.000Z",
            "2023-00-01T00:00:00.000Z",
            "2023-11-00T00:00:00.000Z",
            "2023-11-14T24:00:00.000Z",
            "2023-11-14T22:60:00.000Z",
            "2023-11-14T22:13:60.000Z",
            "2023-12-31T23:59:60.000Z",
            "2023-11-+4T22:13:20.123Z",
            "2023-11-14T22:13:20.1x3Z",
            "+2023-11-14T22:13:20.123Z",
            "-0001-11-14T22:13:20.123Z",
            "023-11-14T22:13:20.123Z",
            "2023-1-14T22:13:20.123Z",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
