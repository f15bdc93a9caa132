//! The time at the start of a log line: the line's own timestamp is the event's time (these
//! readers never look at a clock). Traditional syslog stamps carry no year and no zone, so the
//! year of the first line and the zone the server wrote in are supplied by the caller.

use std::time::SystemTime;

use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};

/// Reads the timestamps that start log lines.
///
/// Understood: `Dec  3 05:43:30` and `Dec 03 05:43:30` (syslog, Dovecot's default
/// `log_timestamp`), optionally with fractional seconds; `2026-12-03T05:43:30.123456+00:00`,
/// `...+0000` and `...Z` (rsyslog's high-precision format, `journalctl -o short-iso`); and
/// `2026-12-03 05:43:30`. A stamp without a zone is taken in the caller's zone.
#[derive(Debug, Clone)]
pub struct LogClock {
    /// The year of the latest year-less line; `None` until the first one when the year is
    /// worked out from `not_after`.
    year: Option<i32>,
    /// The last day a year-less log may reach, to work out the year of its first line.
    not_after: Option<Date>,
    zone: UtcOffset,
    last_month: Option<Month>,
}

impl LogClock {
    /// A clock for a log whose first year-less line is in `first_year`, written in `zone`.
    /// A year-less log that runs from December into January moves to the next year there.
    pub fn new(first_year: i32, zone: UtcOffset) -> LogClock {
        LogClock {
            year: Some(first_year),
            not_after: None,
            zone,
            last_month: None,
        }
    }

    /// A clock for a log written up to `now` (a log read as it is written, or soon after),
    /// in `zone`: the first year-less line is in the latest year that does not put it after
    /// `now` (a day of slack for zones), so a December log read in January is last year's.
    pub fn ending_by(now: SystemTime, zone: UtcOffset) -> LogClock {
        let today = time::OffsetDateTime::from(now).to_offset(zone).date();
        LogClock {
            year: None,
            not_after: Some(today.next_day().unwrap_or(today)),
            zone,
            last_month: None,
        }
    }

    /// The time stamped at the start of `line` and the text after it (spaces skipped);
    /// `None` when the line starts with no stamp this clock reads.
    pub fn read<'a>(&mut self, line: &'a str) -> Option<(SystemTime, &'a str)> {
        let (at, rest) = if line.as_bytes().first()?.is_ascii_digit() {
            self.read_numeric(line)?
        } else {
            self.read_syslog(line)?
        };
        Some((at, rest.trim_start_matches(' ')))
    }

    fn read_syslog<'a>(&mut self, line: &'a str) -> Option<(SystemTime, &'a str)> {
        let month = month_named(line.get(..3)?)?;
        let rest = line.get(3..)?.strip_prefix(' ')?;
        // The day is space-padded (`Dec  3`) in syslog and zero-padded in Dovecot's own log.
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        let day_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        if !(1..=2).contains(&day_len) {
            return None;
        }
        let day: u8 = rest[..day_len].parse().ok()?;
        let rest = rest[day_len..].strip_prefix(' ')?;
        let (time, rest) = read_time(rest)?;
        let year = self.year_of(month, day)?;
        let date = Date::from_calendar_date(year, month, day).ok()?;
        let at = PrimitiveDateTime::new(date, time).assume_offset(self.zone);
        Some((at.into(), rest))
    }

    /// The year of a year-less line on `day` of `month`, moving on at a December-to-January
    /// turn.
    fn year_of(&mut self, month: Month, day: u8) -> Option<i32> {
        let year = match self.year {
            Some(year) => year,
            None => {
                let last = self.not_after?;
                let this_year = Date::from_calendar_date(last.year(), month, day);
                let year = match this_year {
                    Ok(date) if date > last => last.year() - 1,
                    _ => last.year(),
                };
                self.year = Some(year);
                year
            }
        };
        Some(match self.last_month {
            Some(Month::December) if month == Month::January => {
                self.year = Some(year + 1);
                self.last_month = Some(month);
                year + 1
            }
            // A December line just after the turn (lines a moment out of order) is last year's.
            Some(Month::January) if month == Month::December => year - 1,
            _ => {
                self.last_month = Some(month);
                year
            }
        })
    }

    fn read_numeric<'a>(&self, line: &'a str) -> Option<(SystemTime, &'a str)> {
        let date_text = line.get(..10)?;
        let bytes = date_text.as_bytes();
        if bytes[4] != b'-' || bytes[7] != b'-' {
            return None;
        }
        let year: i32 = digits(&date_text[..4])?.try_into().ok()?;
        let month = Month::try_from(u8::try_from(digits(&date_text[5..7])?).ok()?).ok()?;
        let day = u8::try_from(digits(&date_text[8..10])?).ok()?;
        let date = Date::from_calendar_date(year, month, day).ok()?;
        let rest = line[10..]
            .strip_prefix('T')
            .or_else(|| line[10..].strip_prefix(' '))?;
        let (time, rest) = read_time(rest)?;
        let (zone, rest) = read_zone(rest).unwrap_or((self.zone, rest));
        let at = PrimitiveDateTime::new(date, time).assume_offset(zone);
        Some((at.into(), rest))
    }
}

/// `HH:MM:SS` with optional fractional seconds, then the rest.
fn read_time(text: &str) -> Option<(Time, &str)> {
    let clock = text.get(..8)?;
    let b = clock.as_bytes();
    if b[2] != b':' || b[5] != b':' {
        return None;
    }
    let hour = u8::try_from(digits(&clock[..2])?).ok()?;
    let minute = u8::try_from(digits(&clock[3..5])?).ok()?;
    let second = u8::try_from(digits(&clock[6..8])?).ok()?;
    let mut rest = &text[8..];
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        // Nine digits are nanoseconds; further digits are below what a time can hold.
        for (i, digit) in fraction[..len].bytes().take(9).enumerate() {
            nanos += u32::from(digit - b'0') * 10u32.pow(8 - i as u32);
        }
        rest = &fraction[len..];
    }
    let time = Time::from_hms_nano(hour, minute, second, nanos).ok()?;
    Some((time, rest))
}

/// `Z`, `+HH:MM` or `+HHMM` (or `-`), then the rest.
fn read_zone(text: &str) -> Option<(UtcOffset, &str)> {
    if let Some(rest) = text.strip_prefix('Z') {
        return Some((UtcOffset::UTC, rest));
    }
    let sign: i8 = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hours = i8::try_from(digits(text.get(1..3)?)?).ok()?;
    let (minutes_text, rest) = match text.get(3..4) {
        Some(":") => (text.get(4..6)?, &text[6..]),
        _ => (text.get(3..5)?, &text[5..]),
    };
    let minutes = i8::try_from(digits(minutes_text)?).ok()?;
    let zone = UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()?;
    Some((zone, rest))
}

/// The value of a string of ASCII digits only.
fn digits(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 9 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn month_named(name: &str) -> Option<Month> {
    const NAMES: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let index = NAMES.iter().position(|n| *n == name)?;
    Month::try_from(u8::try_from(index + 1).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn at(unix_ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(unix_ms)
    }

    // 2026-12-03T05:43:30Z
    const DEC_3: u64 = 1_796_276_610_000;

    #[test]
    fn syslog_and_dovecot_stamps_take_the_given_year_and_zone() {
        let mut clock = LogClock::new(2026, UtcOffset::UTC);
        assert_eq!(
            clock.read("Dec  3 05:43:30 host postfix/smtpd[1]: x"),
            Some((at(DEC_3), "host postfix/smtpd[1]: x"))
        );
        assert_eq!(
            clock.read("Dec 03 05:43:30 imap-login: Info: x"),
            Some((at(DEC_3), "imap-login: Info: x"))
        );
        let mut paris = LogClock::new(2026, UtcOffset::from_hms(1, 0, 0).unwrap());
        assert_eq!(
            paris.read("Dec 03 06:43:30.250 x"),
            Some((at(DEC_3 + 250), "x"))
        );
    }

    #[test]
    fn iso_stamps_carry_their_own_zone() {
        let mut clock = LogClock::new(1999, UtcOffset::from_hms(5, 0, 0).unwrap());
        for line in [
            "2026-12-03T05:43:30Z host x",
            "2026-12-03T05:43:30.000000+00:00 host x",
            "2026-12-03T06:43:30+0100 host x",
            "2026-12-03T00:13:30-05:30 host x",
        ] {
            assert_eq!(clock.read(line), Some((at(DEC_3), "host x")), "{line}");
        }
        // Without a zone, the caller's.
        assert_eq!(clock.read("2026-12-03 10:43:30 x"), Some((at(DEC_3), "x")));
    }

    #[test]
    fn a_year_less_log_turns_the_year_at_january() {
        let mut clock = LogClock::new(2026, UtcOffset::UTC);
        let (december, _) = clock.read("Dec 31 23:59:59 a").unwrap();
        let (january, _) = clock.read("Jan  1 00:00:01 b").unwrap();
        assert_eq!(january.duration_since(december).unwrap().as_secs(), 2);
        let (late, _) = clock.read("Dec 31 23:59:59 c").unwrap();
        assert_eq!(
            late, december,
            "a line a moment out of order stays in its year"
        );
    }

    #[test]
    fn without_a_year_the_latest_year_not_in_the_future_is_taken() {
        let new_year = at(1_798_848_000_000); // 2027-01-02T00:00:00Z
        let mut clock = LogClock::ending_by(new_year, UtcOffset::UTC);
        let (december, _) = clock.read("Dec  3 05:43:30 a").unwrap();
        assert_eq!(december, at(DEC_3));
        let (january, _) = clock.read("Jan  1 00:00:00 b").unwrap();
        assert_eq!(january, at(1_798_761_600_000));
        let mut clock = LogClock::ending_by(at(DEC_3), UtcOffset::UTC);
        assert_eq!(clock.read("Dec  3 05:43:30 a").unwrap().0, at(DEC_3));
    }

    #[test]
    fn anything_else_is_no_stamp() {
        let mut clock = LogClock::new(2026, UtcOffset::UTC);
        for line in [
            "",
            "Dez  3 05:43:30 x",
            "Dec 32 05:43:30 x",
            "Dec  3 25:43:30 x",
            "Dec  3 05:43 x",
            "Dec 123 05:43:30 x",
            "2026-13-03T05:43:30Z x",
            "2026-12-03X05:43:30Z x",
            "2026-12-03T05:43:30. x",
            "imap-login: Login",
            "2026",
            "Feb 29 00:00:00 not a leap year",
        ] {
            assert_eq!(clock.read(line), None, "{line:?}");
        }
    }
}
