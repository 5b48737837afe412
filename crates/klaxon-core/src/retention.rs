//! Deleting incident data (service-agreement.md SVC-183, SVC-184, §13 via SVC-403; response.md
//! RSP-454; docs/data-retention.md): the rules of bulk deletion by time range and of the
//! account's incident retention, as pure functions. The store does the deleting.

use crate::error::ApiError;
use crate::model::{DAY_MS, Millis};

/// SVC-183 *(decision)*: deleting more than this many objects (incidents plus alerts) at once
/// needs the confirmation phrase.
pub const CONFIRM_ABOVE: i64 = 1_000;

/// The most objects one bulk deletion may remove. Everything goes in one transaction, which
/// holds the write lock (SQLite) or the incident lock (PostgreSQL) while it runs, so event
/// processing waits for it; larger clean-ups are split into narrower time ranges.
pub const MAX_BULK_OBJECTS: i64 = 20_000;

/// The floor of `incident_retention_days`: past incidents (RSP-451) and outlier detection
/// (RSP-452) look back 30 days, and a shorter retention would silently change both.
pub const MIN_RETENTION_DAYS: i64 = 30;
/// The ceiling (ten years): beyond it, keep forever (0) says the same thing plainly.
pub const MAX_RETENTION_DAYS: i64 = 3_650;

/// The phrase that confirms deleting `objects` objects: the count is part of it, so the
/// person confirming has seen how much goes (SVC-183 "shows the number of objects").
pub fn confirm_phrase(objects: i64) -> String {
    format!("delete {objects} objects")
}

/// SVC-183: whether a deletion of `objects` objects may go ahead with the phrase `given`.
/// At most [`CONFIRM_ABOVE`] objects need no phrase; above it, exactly
/// [`confirm_phrase`]`(objects)` (surrounding spaces ignored, case-sensitive otherwise).
pub fn confirmed(objects: i64, given: Option<&str>) -> Result<(), ApiError> {
    if objects <= CONFIRM_ABOVE {
        return Ok(());
    }
    let want = confirm_phrase(objects);
    match given.map(str::trim) {
        Some(g) if g == want => Ok(()),
        Some(g) if !g.is_empty() => Err(ApiError::invalid(format!(
            "confirm_phrase: does not match; this deletion removes {objects} objects and \
             needs confirm_phrase \"{want}\" (nothing was deleted)"
        ))),
        _ => Err(ApiError::invalid(format!(
            "confirm_phrase is required: this deletion removes {objects} objects (more than \
             {CONFIRM_ABOVE}) and cannot be undone; send confirm_phrase \"{want}\" to go ahead \
             (nothing was deleted)"
        ))),
    }
}

/// A bulk deletion's time range, `[start, end)` in milliseconds, from the request's Unix
/// seconds. Both are required, `start < end`.
pub fn bulk_range(
    start_secs: Option<i64>,
    end_secs: Option<i64>,
) -> Result<(Millis, Millis), ApiError> {
    let start = start_secs.ok_or_else(|| ApiError::invalid("start_time is required"))?;
    let end = end_secs.ok_or_else(|| ApiError::invalid("end_time is required"))?;
    if start < 0 || end < 0 {
        return Err(ApiError::invalid(
            "start_time and end_time are Unix seconds and must not be negative",
        ));
    }
    if start >= end {
        return Err(ApiError::invalid("end_time must be after start_time"));
    }
    let ms = |s: i64| {
        s.checked_mul(1000)
            .ok_or_else(|| ApiError::invalid("start_time and end_time must be Unix seconds"))
    };
    Ok((ms(start)?, ms(end)?))
}

/// Checks an `incident_retention_days` setting: 0 keeps incidents forever, otherwise it must
/// lie in [`MIN_RETENTION_DAYS`, `MAX_RETENTION_DAYS`].
pub fn retention_days(days: i64) -> Result<i64, ApiError> {
    if days == 0 || (MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS).contains(&days) {
        Ok(days)
    } else {
        Err(ApiError::invalid(format!(
            "incident_retention_days must be 0 (keep forever) or between {MIN_RETENTION_DAYS} \
             and {MAX_RETENTION_DAYS}"
        )))
    }
}

/// The close time before which a closed incident is past its retention at `now`; `None` when
/// the account keeps incidents forever (0, or a stored value that is no longer valid).
pub fn retention_cutoff(now: Millis, days: i64) -> Option<Millis> {
    retention_days(days)
        .ok()
        .filter(|d| *d > 0)
        .map(|d| now.saturating_sub(d.saturating_mul(DAY_MS)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn more_than_a_thousand_objects_need_the_phrase() {
        // spec: SVC-183 (bulk deletion of more than 1,000 objects requires a phrase)
        assert!(confirmed(0, None).is_ok());
        assert!(confirmed(1_000, None).is_ok());
        let e = confirmed(1_001, None).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameter);
        assert!(
            e.message.contains("\"delete 1001 objects\""),
            "{}",
            e.message
        );
        assert!(e.message.contains("confirm_phrase"), "{}", e.message);
        assert!(confirmed(1_001, Some("delete 1001 objects")).is_ok());
        assert!(confirmed(1_001, Some("  delete 1001 objects ")).is_ok());
        // The count must be the one being deleted, and the phrase exact.
        assert!(confirmed(1_001, Some("delete 1000 objects")).is_err());
        assert!(confirmed(1_001, Some("DELETE 1001 OBJECTS")).is_err());
        assert!(confirmed(1_001, Some("")).is_err());
    }

    #[test]
    fn the_range_is_checked() {
        // spec: SVC-183 (by time range)
        assert_eq!(bulk_range(Some(10), Some(20)).unwrap(), (10_000, 20_000));
        for (s, e, field) in [
            (None, Some(1), "start_time"),
            (Some(1), None, "end_time"),
            (Some(5), Some(5), "end_time"),
            (Some(-1), Some(5), "start_time"),
            (Some(0), Some(i64::MAX), "Unix seconds"),
        ] {
            let err = bulk_range(s, e).unwrap_err();
            assert!(err.message.contains(field), "{}", err.message);
        }
    }

    #[test]
    fn retention_has_a_floor_and_zero_keeps_forever() {
        // spec: SVC-184 (deletion by retention), RSP-451/RSP-452 look back 30 days
        assert_eq!(retention_days(0).unwrap(), 0);
        assert_eq!(retention_days(30).unwrap(), 30);
        assert_eq!(retention_days(3_650).unwrap(), 3_650);
        for bad in [-1, 1, 29, 3_651] {
            let e = retention_days(bad).unwrap_err();
            assert!(
                e.message.contains("incident_retention_days"),
                "{}",
                e.message
            );
        }
        let now = 100 * DAY_MS;
        assert_eq!(retention_cutoff(now, 0), None);
        assert_eq!(
            retention_cutoff(now, 7),
            None,
            "below the floor: not applied"
        );
        assert_eq!(retention_cutoff(now, 30), Some(70 * DAY_MS));
    }
}
