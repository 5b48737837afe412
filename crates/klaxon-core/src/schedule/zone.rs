//! Wall-clock arithmetic in an IANA zone from the bundled tz database (RSP-215, RSP-216,
//! OQ-13). Every conversion from a local date-time to an instant goes through
//! [`to_instant`], so the spec's DST rule lives in exactly one place.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Span, Timestamp};

use super::error::ScheduleError;
use crate::model::Millis;

pub(crate) const HOUR_MS: Millis = 3_600_000;
pub(crate) const DAY_MS: Millis = 86_400_000;

/// Looks a zone up by IANA name. Fixed offsets ("+08:00") are not IANA names and are refused:
/// DESIGN.md wants DST from the tz database, never from fixed offsets.
pub(crate) fn zone(name: &str, field: &str) -> Result<TimeZone, ScheduleError> {
    match TimeZone::get(name) {
        Ok(tz) if !name.trim().is_empty() => Ok(tz),
        _ => Err(ScheduleError::invalid(
            field,
            format!("{name:?} is not an IANA time zone name"),
        )),
    }
}

pub(crate) fn timestamp(t: Millis, field: &str) -> Result<Timestamp, ScheduleError> {
    Timestamp::from_millisecond(t).map_err(|_| ScheduleError::out_of_range(field))
}

pub(crate) fn millis(t: Timestamp) -> Millis {
    t.as_millisecond()
}

/// `local(t)`: instant t as a wall-clock date-time in `tz`.
pub(crate) fn local(tz: &TimeZone, t: Millis) -> Result<DateTime, ScheduleError> {
    Ok(tz.to_datetime(timestamp(t, "time")?))
}

/// RSP-215: a local time in a spring-forward gap moves forward by the length of the gap, an
/// ambiguous (fall-back) one takes the earlier instant. That is precisely jiff's
/// "compatible" disambiguation: in a gap it applies the offset from before the gap (02:30 EST
/// = 03:30 EDT), in a fold the offset from before the fold (the earlier instant).
pub(crate) fn to_instant(tz: &TimeZone, dt: DateTime) -> Result<Millis, ScheduleError> {
    tz.to_ambiguous_timestamp(dt)
        .compatible()
        .map(millis)
        .map_err(|_| ScheduleError::out_of_range("time"))
}

/// Every instant whose local time in `tz` is `dt`: none in a gap, two in a fold. Filters that
/// compare the time of day change value on *both* passes through a folded hour, so the
/// breakpoint search needs both.
pub(crate) fn instants_of(tz: &TimeZone, dt: DateTime) -> Vec<Millis> {
    let offsets = match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => vec![offset],
        AmbiguousOffset::Gap { .. } => Vec::new(),
        AmbiguousOffset::Fold { before, after } => vec![before, after],
    };
    offsets
        .into_iter()
        .filter_map(|o| o.to_timestamp(dt).ok().map(millis))
        .collect()
}

pub(crate) fn add_days(dt: DateTime, days: i64) -> Result<DateTime, ScheduleError> {
    Span::new()
        .try_days(days)
        .and_then(|span| dt.checked_add(span))
        .map_err(|_| ScheduleError::out_of_range("time"))
}

pub(crate) fn add_date_days(d: Date, days: i64) -> Result<Date, ScheduleError> {
    Span::new()
        .try_days(days)
        .and_then(|span| d.checked_add(span))
        .map_err(|_| ScheduleError::out_of_range("time"))
}

/// RSP-216: the same day-of-month `months` later, clamped to the length of the target month,
/// always counted from the original date (31 Jan → 28 Feb → 31 Mar, never 28 Mar). jiff's
/// civil month arithmetic clamps exactly like this. Not to be confused with the billing
/// `add_months` of service-agreement.md §0.3, which rolls a missing day over to the 1st.
pub(crate) fn add_months_clamped(dt: DateTime, months: i64) -> Result<DateTime, ScheduleError> {
    Span::new()
        .try_months(months)
        .and_then(|span| dt.checked_add(span))
        .map_err(|_| ScheduleError::out_of_range("time"))
}

/// Weekday number with 0 = Sunday (response.md §0.2).
pub(crate) fn weekday(d: Date) -> i64 {
    i64::from(d.weekday().to_sunday_zero_offset())
}

/// Whole minutes since local midnight (the unit of RSP-222).
pub(crate) fn minute_of_day(t: Time) -> i64 {
    i64::from(t.hour()) * 60 + i64::from(t.minute())
}

/// Whole days from `a` to `b` (negative when `b` is earlier).
pub(crate) fn days_between(a: Date, b: Date) -> i64 {
    a.duration_until(b).as_secs().div_euclid(86_400)
}

/// Parses a strict `HH:MM` (00:00–23:59, two digits each).
pub fn parse_hhmm(s: &str) -> Option<Time> {
    let &[h1, h2, b':', m1, m2] = s.as_bytes() else {
        return None;
    };
    let digit = |b: u8| b.is_ascii_digit().then(|| b - b'0');
    let hour = digit(h1)? * 10 + digit(h2)?;
    let minute = digit(m1)? * 10 + digit(m2)?;
    if hour > 23 || minute > 59 {
        return None;
    }
    Time::new(hour as i8, minute as i8, 0, 0).ok()
}

/// Parses a strict `YYYY-MM-DD` calendar date.
pub fn parse_date(s: &str) -> Option<Date> {
    if s.len() != 10 {
        return None;
    }
    let d: Date = s.parse().ok()?;
    // jiff accepts a few other ISO 8601 shapes; insist on the canonical one so the string is
    // also a usable map key.
    (d.to_string() == s).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn hhmm_is_strict() {
        assert_eq!(parse_hhmm("09:30"), Some(jiff::civil::time(9, 30, 0, 0)));
        assert_eq!(parse_hhmm("23:59"), Some(jiff::civil::time(23, 59, 0, 0)));
        for bad in ["9:30", "24:00", "12:60", "12-30", "", "12:3a", "012:30"] {
            assert_eq!(parse_hhmm(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates_are_canonical() {
        assert_eq!(parse_date("2025-10-01"), Some(date(2025, 10, 1)));
        assert_eq!(parse_date("2025-02-30"), None);
        assert_eq!(parse_date("20251001"), None);
    }

    #[test]
    fn fixed_offsets_are_not_zones() {
        assert!(zone("America/New_York", "z").is_ok());
        assert!(zone("UTC", "z").is_ok());
        assert!(zone("+08:00", "z").is_err());
        assert!(zone("Mars/Olympus", "z").is_err());
        assert!(zone("", "z").is_err());
    }

    // spec: RSP-216
    #[test]
    fn month_clamping_restarts_from_the_original_day() {
        let start = date(2025, 1, 31).at(9, 0, 0, 0);
        let got: Vec<Date> = (0..4)
            .map(|k| add_months_clamped(start, k).map(|d| d.date()))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            got,
            [
                date(2025, 1, 31),
                date(2025, 2, 28),
                date(2025, 3, 31),
                date(2025, 4, 30)
            ]
        );
    }
}
