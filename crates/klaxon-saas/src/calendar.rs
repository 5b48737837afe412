//! Calendar arithmetic of §0.3: days and months in the operator's `billing_tz`, the
//! overflowing `add_months`, working days, and notice periods (SVC-311, SVC-314).

use std::collections::BTreeSet;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan, Unit};

use crate::error::{Result, SaasError};

/// `add_months(A, k)`: the anchor's day-of-month k months later; a day that does not exist
/// in the target month overflows to the 1st of the following month (not clamped — schedule
/// cycles clamp, this helper must not). Anchor 31 Jan: +1 → 1 Mar, +2 → 31 Mar, +3 → 1 May.
pub fn add_months(anchor: Date, k: i32) -> Result<Date> {
    let first = anchor.first_of_month().checked_add(k.months())?;
    if anchor.day() <= first.days_in_month() {
        Ok(Date::new(first.year(), first.month(), anchor.day())?)
    } else {
        Ok(first.checked_add(1.month())?)
    }
}

/// Whole days from `from` to `to` (negative when `to` is earlier).
pub fn days_between(from: Date, to: Date) -> Result<i64> {
    Ok(i64::from(from.until((Unit::Day, to))?.get_days()))
}

pub fn add_days(date: Date, days: i64) -> Result<Date> {
    Ok(date.checked_add(days.days())?)
}

/// The calendar date of an instant in `tz`.
pub fn date_of(at: Timestamp, tz: &TimeZone) -> Date {
    at.to_zoned_datetime(tz.clone()).date()
}

/// 00:00 of `date` in `tz` (the start of the day, also on DST days).
pub fn start_of(date: Date, tz: &TimeZone) -> Result<Timestamp> {
    Ok(date
        .to_zoned_datetime(tz.clone())?
        .start_of_day()?
        .timestamp())
}

/// `date` at the wall-clock `time` in `tz`.
pub fn at_local(date: Date, time: Time, tz: &TimeZone) -> Result<Timestamp> {
    Ok(date
        .to_datetime(time)
        .to_zoned_datetime(tz.clone())?
        .timestamp())
}

pub fn add_hours(at: Timestamp, hours: i64) -> Result<Timestamp> {
    Ok(at.checked_add(SignedDuration::from_hours(hours))?)
}

/// Exact 24-hour days, for periods defined as "N × 24 h" (trial, buffer).
pub fn add_24h_days(at: Timestamp, days: i64) -> Result<Timestamp> {
    add_hours(
        at,
        days.checked_mul(24)
            .ok_or_else(|| SaasError::Time(format!("{days} days overflow")))?,
    )
}

/// SVC-311: a notice is deemed delivered on the calendar date (`billing_tz`) it was sent.
pub fn deemed_delivery_date(sent_at: Timestamp, billing_tz: &TimeZone) -> Date {
    date_of(sent_at, billing_tz)
}

/// SVC-314: "N days' notice" = effective no earlier than 00:00 of the deemed delivery date
/// plus N days.
pub fn earliest_effective_after_notice(
    sent_at: Timestamp,
    notice_days: i64,
    billing_tz: &TimeZone,
) -> Result<Timestamp> {
    let d = add_days(deemed_delivery_date(sent_at, billing_tz), notice_days)?;
    start_of(d, billing_tz)
}

/// The operator's working-day calendar (SVC-280): Monday–Friday unless configured, minus
/// holidays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingDays {
    pub holidays: BTreeSet<Date>,
    /// Extra weekend days beyond Saturday and Sunday are not modelled; `weekend` lists the
    /// non-working weekdays (default Saturday, Sunday).
    pub weekend: Vec<Weekday>,
}

impl Default for WorkingDays {
    fn default() -> Self {
        WorkingDays::monday_to_friday()
    }
}

impl WorkingDays {
    pub fn monday_to_friday() -> Self {
        WorkingDays {
            holidays: BTreeSet::new(),
            weekend: vec![Weekday::Saturday, Weekday::Sunday],
        }
    }

    pub fn is_working_day(&self, d: Date) -> bool {
        !self.weekend.contains(&d.weekday()) && !self.holidays.contains(&d)
    }

    /// The n-th (1-based) working day of the month containing `month`.
    pub fn nth_working_day(&self, month: Date, n: u32) -> Result<Date> {
        if n == 0 {
            return Err(SaasError::invalid("n", "working days are counted from 1"));
        }
        let mut d = month.first_of_month();
        let mut seen = 0;
        while d.month() == month.month() {
            if self.is_working_day(d) {
                seen += 1;
                if seen == n {
                    return Ok(d);
                }
            }
            d = add_days(d, 1)?;
        }
        Err(SaasError::invalid(
            "working_days",
            format!(
                "{}-{:02} has fewer than {n} working days",
                month.year(),
                month.month()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn add_months_overflows_to_the_first() {
        // spec: SVC-101 (§0.3 add_months)
        let a = date(2025, 1, 31);
        assert_eq!(add_months(a, 1).unwrap(), date(2025, 3, 1));
        assert_eq!(add_months(a, 2).unwrap(), date(2025, 3, 31));
        assert_eq!(add_months(a, 3).unwrap(), date(2025, 5, 1));
        assert_eq!(add_months(date(2024, 2, 29), 12).unwrap(), date(2025, 3, 1));
        assert_eq!(add_months(date(2025, 3, 15), 1).unwrap(), date(2025, 4, 15));
    }

    #[test]
    fn notice_periods_count_from_the_sending_date() {
        // spec: SVC-314
        // spec: SVC-311
        let tz = TimeZone::get("Asia/Shanghai").unwrap();
        let sent = date(2025, 6, 1)
            .at(15, 0, 0, 0)
            .to_zoned_datetime(tz.clone())
            .unwrap();
        let eff = earliest_effective_after_notice(sent.timestamp(), 30, &tz).unwrap();
        assert_eq!(
            eff,
            date(2025, 7, 1)
                .to_zoned_datetime(tz.clone())
                .unwrap()
                .timestamp()
        );
        // A notice sent 23:30 local is deemed delivered that day even though UTC is the next.
        let late = date(2025, 6, 1)
            .at(23, 30, 0, 0)
            .to_zoned_datetime(tz.clone())
            .unwrap();
        assert_eq!(
            deemed_delivery_date(late.timestamp(), &tz),
            date(2025, 6, 1)
        );
    }
}
