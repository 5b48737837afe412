//! Service calendars (response.md §1.14, §2.18): only what schedules need — the day type of a
//! date (RSP-270), the date of an instant (RSP-271), the edits of RSP-272 and the checks of
//! RSP-273/RSP-274. Escalation time filters (RSP-133) use the same [`day_type`].

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::error::ScheduleError;
use super::model::{DayType, PersonId};
use super::zone;
use crate::model::Millis;

/// `cal_name` limit (API).
pub const CAL_NAME_MAX: usize = 39;
/// `description` limit (API).
pub const CAL_DESCRIPTION_MAX: usize = 499;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceCalendar {
    /// An ObjectID.
    pub cal_id: String,
    pub cal_name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub team_id: i64,
    /// IANA zone (note the spelling: `timezone`, as the calendar API has it).
    pub timezone: String,
    /// Weekdays (0 = Sunday) that are workdays. A new calendar treats every day as one.
    #[serde(default = "all_weekdays")]
    pub workdays: Vec<i64>,
    /// Linked holiday sets, e.g. `zh-cn.china.official`.
    #[serde(default)]
    pub extra_cal_ids: Vec<String>,
    /// Per-date manual marks, keyed `YYYY-MM-DD`.
    #[serde(default)]
    pub date_overrides: BTreeMap<String, DayType>,
    #[serde(default)]
    pub status: CalendarStatus,
    /// Needed by RSP-274 (the creator may edit).
    #[serde(default)]
    pub creator_id: PersonId,
}

fn all_weekdays() -> Vec<i64> {
    (0..7).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalendarStatus {
    #[default]
    Enabled,
    Deleted,
}

/// Reference data loaded by administrators (DECISION, OQ-18); none is built in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolidaySet {
    pub id: String,
    pub name: String,
    /// Keyed `YYYY-MM-DD`.
    pub entries: BTreeMap<String, HolidayMark>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HolidayMark {
    Holiday,
    /// An officially adjusted working day.
    Workday,
}

/// What schedule evaluation may look calendars up in. Both lists are plain data the store
/// loads; a deleted calendar is treated as absent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Calendars<'a> {
    pub calendars: &'a [ServiceCalendar],
    pub holiday_sets: &'a [HolidaySet],
}

impl<'a> Calendars<'a> {
    pub fn new(calendars: &'a [ServiceCalendar], holiday_sets: &'a [HolidaySet]) -> Self {
        Calendars {
            calendars,
            holiday_sets,
        }
    }

    pub fn get(&self, cal_id: &str) -> Option<&'a ServiceCalendar> {
        self.calendars
            .iter()
            .find(|c| c.cal_id == cal_id && c.status == CalendarStatus::Enabled)
    }
}

/// RSP-270: the day type of date `d` in `calendar`:
/// 1. `date_overrides[d]`;
/// 2. else the linked holiday sets (`holiday` → restday, `workday` → workday; when two sets
///    disagree, restday wins);
/// 3. else `workday` iff `weekday(d) ∈ workdays`.
///
/// Holiday sets that are not loaded are skipped: there is nothing to read from them.
pub fn day_type(calendar: &ServiceCalendar, holiday_sets: &[HolidaySet], d: Date) -> DayType {
    let key = d.to_string();
    if let Some(t) = calendar.date_overrides.get(&key) {
        return *t;
    }
    let mut marked = None;
    for set in holiday_sets
        .iter()
        .filter(|s| calendar.extra_cal_ids.contains(&s.id))
    {
        match set.entries.get(&key) {
            Some(HolidayMark::Holiday) => return DayType::Restday,
            Some(HolidayMark::Workday) => marked = Some(DayType::Workday),
            None => {}
        }
    }
    if let Some(t) = marked {
        return t;
    }
    if calendar.workdays.contains(&zone::weekday(d)) {
        DayType::Workday
    } else {
        DayType::Restday
    }
}

/// RSP-271: the calendar date of instant `t` is its local date in the calendar's zone.
pub fn date_at(calendar: &ServiceCalendar, t: Millis) -> Result<Date, ScheduleError> {
    let tz = zone::zone(&calendar.timezone, "timezone")?;
    Ok(zone::local(&tz, t)?.date())
}

/// RSP-270 + RSP-271 together: the day type at instant `t`.
pub fn day_type_at(
    calendar: &ServiceCalendar,
    holiday_sets: &[HolidaySet],
    t: Millis,
) -> Result<DayType, ScheduleError> {
    Ok(day_type(calendar, holiday_sets, date_at(calendar, t)?))
}

/// A calendar resolved for repeated look-ups during one evaluation.
#[derive(Debug, Clone)]
pub(crate) struct CalendarView<'a> {
    pub(crate) calendar: &'a ServiceCalendar,
    pub(crate) holiday_sets: &'a [HolidaySet],
    pub(crate) tz: TimeZone,
}

impl<'a> CalendarView<'a> {
    /// `None` when the calendar is missing, deleted or has an unusable zone. Deleting a
    /// calendar a schedule uses is refused (RSP-273) and zones are checked on save, so this
    /// only guards against inconsistent data; the caller then treats the mask as off, because
    /// paging someone beats silently leaving the shift empty.
    pub(crate) fn resolve(calendars: Calendars<'a>, cal_id: &str) -> Option<Self> {
        let calendar = calendars.get(cal_id)?;
        let tz = TimeZone::get(&calendar.timezone).ok()?;
        Some(CalendarView {
            calendar,
            holiday_sets: calendars.holiday_sets,
            tz,
        })
    }

    pub(crate) fn day_type(&self, d: Date) -> DayType {
        day_type(self.calendar, self.holiday_sets, d)
    }
}

/// Validates a calendar on save (§1.14 limits). `holiday_sets` are the loaded sets a link may
/// point at.
pub fn validate_calendar(
    calendar: &ServiceCalendar,
    holiday_sets: &[HolidaySet],
) -> Result<(), ScheduleError> {
    let name = calendar.cal_name.trim().chars().count();
    if !(1..=CAL_NAME_MAX).contains(&name) {
        return Err(ScheduleError::invalid(
            "cal_name",
            format!("must be 1..{CAL_NAME_MAX} characters"),
        ));
    }
    if calendar.description.chars().count() > CAL_DESCRIPTION_MAX {
        return Err(ScheduleError::invalid(
            "description",
            format!("must be at most {CAL_DESCRIPTION_MAX} characters"),
        ));
    }
    zone::zone(&calendar.timezone, "timezone")?;
    for (i, w) in calendar.workdays.iter().enumerate() {
        if !(0..=6).contains(w) {
            return Err(ScheduleError::invalid(
                format!("workdays[{i}]"),
                "must be a weekday 0..6 (0 = Sunday)",
            ));
        }
    }
    for (i, id) in calendar.extra_cal_ids.iter().enumerate() {
        if !holiday_sets.iter().any(|s| &s.id == id) {
            return Err(ScheduleError::invalid(
                format!("extra_cal_ids[{i}]"),
                format!("unknown holiday set {id:?}"),
            ));
        }
    }
    for key in calendar.date_overrides.keys() {
        if zone::parse_date(key).is_none() {
            return Err(ScheduleError::invalid(
                format!("date_overrides.{key}"),
                "must be a date YYYY-MM-DD",
            ));
        }
    }
    Ok(())
}

/// RSP-272, bulk marking by weekday: replaces `workdays`.
pub fn set_workdays(calendar: &mut ServiceCalendar, workdays: &[i64]) -> Result<(), ScheduleError> {
    let mut days: Vec<i64> = workdays.to_vec();
    days.sort_unstable();
    days.dedup();
    if let Some(bad) = days.iter().find(|w| !(0..=6).contains(*w)) {
        return Err(ScheduleError::invalid(
            "workdays",
            format!("{bad} is not a weekday 0..6 (0 = Sunday)"),
        ));
    }
    calendar.workdays = days;
    Ok(())
}

/// RSP-272, clicking a single date toggles its `date_overrides` entry: the date flips to the
/// other day type. When the flipped type is what the date would be anyway without a manual
/// mark (holiday sets, then weekdays), the entry is removed instead of stored, so a second
/// click always restores the original state and no redundant marks pile up.
pub fn toggle_date(calendar: &mut ServiceCalendar, holiday_sets: &[HolidaySet], d: Date) {
    let key = d.to_string();
    let current = day_type(calendar, holiday_sets, d);
    let flipped = match current {
        DayType::Workday => DayType::Restday,
        DayType::Restday => DayType::Workday,
    };
    calendar.date_overrides.remove(&key);
    if day_type(calendar, holiday_sets, d) != flipped {
        calendar.date_overrides.insert(key, flipped);
    }
}

/// RSP-274: the creator, members of the management team and the owner may edit a calendar;
/// everyone else may only read it.
pub fn can_edit_calendar(
    calendar: &ServiceCalendar,
    actor: PersonId,
    actor_team_ids: &[i64],
    actor_is_owner: bool,
) -> bool {
    actor_is_owner
        || (calendar.creator_id != 0 && calendar.creator_id == actor)
        || (calendar.team_id != 0 && actor_team_ids.contains(&calendar.team_id))
}

/// RSP-273: a calendar still referenced by an escalation time filter, a silence rule or a
/// schedule calendar mask cannot be deleted; the refusal lists the referrers, which the store
/// collects.
pub fn check_calendar_deletable(referrers: &[String]) -> Result<(), ScheduleError> {
    if referrers.is_empty() {
        return Ok(());
    }
    Err(ScheduleError::referenced(
        "cal_id",
        format!("the calendar is still used by: {}", referrers.join(", ")),
    ))
}
