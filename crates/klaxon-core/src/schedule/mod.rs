//! On-call schedules (response.md §1.13, §2.17) and the service-calendar look-ups they need
//! (§1.14, §2.18): who is on call at an instant, the merged timeline of shifts, the API views,
//! shift reminders, and validation and versioning on save.
//!
//! Pure: every function takes the schedule, the account's calendars and the instants it
//! needs; nothing reads a clock. Instants at this boundary are epoch milliseconds
//! ([`Millis`]); inside, wall-clock arithmetic uses jiff with the bundled tz database.
//!
//! ```
//! use klaxon_core::schedule::{self, Calendars, Group, GroupMember, Layer, RotationUnit, Schedule};
//!
//! let member = |person_id| GroupMember { person_id, role_id: 0 };
//! let sched = Schedule {
//!     schedule_id: 1,
//!     schedule_name: "Ops".into(),
//!     time_zone: "Asia/Shanghai".into(),
//!     layers: vec![Layer {
//!         layer_id: 1,
//!         layer_name: "Weekly".into(),
//!         groups: vec![
//!             Group { group_name: String::new(), members: vec![member(101)] },
//!             Group { group_name: String::new(), members: vec![member(102)] },
//!         ],
//!         layer_start: 1_736_128_800_000, // Mon 2025-01-06 10:00 Asia/Shanghai
//!         rotation_unit: RotationUnit::Week,
//!         rotation_value: 1,
//!         ..Layer::default()
//!     }],
//!     ..Schedule::default()
//! };
//! schedule::validate_schedule(&sched, Calendars::default())?;
//! let now = 1_736_733_600_000; // Mon 2025-01-13 10:00: the second week
//! let on_call = schedule::on_call_at(&sched, Calendars::default(), now)?;
//! assert_eq!(on_call.persons(), [102]);
//! let shifts = schedule::timeline(&sched, Calendars::default(), now, now + 86_400_000)?;
//! assert_eq!(shifts.len(), 1);
//! # Ok::<(), klaxon_core::schedule::ScheduleError>(())
//! ```

mod calendar;
mod error;
mod history;
pub mod ical;
mod model;
mod overrides;
mod reminders;
mod resolve;
mod restrictions;
mod rotation;
mod timeline;
mod validation;
mod zone;

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

pub use calendar::{
    CAL_DESCRIPTION_MAX, CAL_NAME_MAX, CalendarStatus, Calendars, HolidayMark, HolidaySet,
    ServiceCalendar, can_edit_calendar, check_calendar_deletable, date_at, day_type, day_type_at,
    set_workdays, toggle_date, validate_calendar,
};
pub use error::{ScheduleError, ScheduleErrorKind};
pub use history::{apply_edit, create_schedule, remove_member};
pub use model::{
    CalendarMask, DayType, DirectChannel, FixedTime, FixedTimeCycle, Group, GroupMember, Handoff,
    Layer, Override, PastDefinition, PersonId, ROLE_BACKUP, ROLE_NONE, ROLE_PRIMARY, ReminderBy,
    ReminderChat, ReminderChatType, RestrictMode, RestrictPeriod, RoleId, RotationUnit, Schedule,
    ScheduleNotify, ScheduleStatus,
};
pub use overrides::OverrideDraft;
pub use reminders::{
    CurrentShift, DAILY_UNTIL_HORIZON_MS, Handoff as ReminderHandoff, Reminder, ReminderKind,
    UpcomingShift, reminder_channels,
};
pub use resolve::{OnCall, OnCallSlot, ShiftRole, ShiftSource};
pub use timeline::{
    FinalSegment, LayerSegment, LayerView, LookAhead, MySchedules, ScheduleView, SegmentMember,
    Shift, TIMELINE_WINDOW_MAX_MS, VIEW_WINDOW_MAX_MS,
};
pub use validation::{
    ADVANCE_MAX_SECS, ADVANCE_STEP_SECS, GROUP_MEMBERS_MAX, GROUP_NAME_MAX, GROUPS_MAX,
    LAYER_NAME_MAX, LAYERS_MAX, OVERRIDE_NOTE_MAX, RESTRICT_PERIODS_MAX, ROTATION_VALUE_MAX,
    SCHEDULE_DESCRIPTION_MAX, SCHEDULE_NAME_MAX, check_schedule_deletable, validate_schedule,
};
pub use zone::{parse_date, parse_hhmm};

use crate::model::Millis;
use resolve::Engine;

/// O(s, t) of RSP-210: who is on call in `schedule` at instant `t`, per slot with role and
/// source. Use [`OnCall::persons_for_roles`] for an escalation target's role filter.
pub fn on_call_at(
    schedule: &Schedule,
    calendars: Calendars<'_>,
    t: Millis,
) -> Result<OnCall, ScheduleError> {
    Engine::new(schedule, calendars)?.on_call(t)
}

/// `strict`: the window must be shorter than `max` (the API's `end − start < 45 d`), else at
/// most `max`.
fn check_window(from: Millis, to: Millis, max: Millis, strict: bool) -> Result<(), ScheduleError> {
    if to <= from {
        return Err(ScheduleError::invalid("end", "must be after start"));
    }
    let len = to.saturating_sub(from);
    if len > max || (strict && len == max) {
        return Err(ScheduleError::invalid(
            "end",
            format!(
                "the window must be {} {} days",
                if strict { "shorter than" } else { "at most" },
                max / zone::DAY_MS
            ),
        ));
    }
    Ok(())
}

/// The final merged timeline over `[from, to)`: every shift after overrides, with its role,
/// members and source (a layer's group, or an override). Shifts are clipped to the window.
pub fn timeline(
    schedule: &Schedule,
    calendars: Calendars<'_>,
    from: Millis,
    to: Millis,
) -> Result<Vec<Shift>, ScheduleError> {
    check_window(from, to, TIMELINE_WINDOW_MAX_MS, false)?;
    let engine = Engine::new(schedule, calendars)?;
    Ok(timeline::shifts(&timeline::intervals(&engine, from, to)?))
}

/// The views of RSP-227 for `[from, to)` (`to − from` < 45 days): per-layer segments, the
/// final segments and `cur_oncall`/`next_oncall` relative to `now`. `/schedule/preview` calls
/// it with an unsaved (but validated) schedule.
pub fn view(
    schedule: &Schedule,
    calendars: Calendars<'_>,
    from: Millis,
    to: Millis,
    now: Millis,
) -> Result<ScheduleView, ScheduleError> {
    check_window(from, to, VIEW_WINDOW_MAX_MS, true)?;
    let engine = Engine::new(schedule, calendars)?;
    let intervals = timeline::intervals(&engine, from, to)?;
    let final_segments = timeline::final_segments(&intervals);
    let (cur_oncall, next_oncall) = timeline::current_and_next(&final_segments, now);
    Ok(ScheduleView {
        layers: timeline::layer_views(schedule, &intervals),
        final_segments,
        cur_oncall,
        next_oncall,
    })
}

/// Shift reminders due in `[from, to)` (RSP-230, RSP-231). Call it with the schedule as
/// stored now and a window starting no earlier than the previous call's end (see
/// `reminders.rs` on why that gives RSP-230's "computed at send time").
pub fn reminders(
    schedule: &Schedule,
    calendars: Calendars<'_>,
    from: Millis,
    to: Millis,
) -> Result<Vec<Reminder>, ScheduleError> {
    if to <= from {
        return Ok(Vec::new());
    }
    check_window(from, to, TIMELINE_WINDOW_MAX_MS, false)?;
    let engine = Engine::new(schedule, calendars)?;
    reminders::due(schedule, &engine, from, to)
}

/// RSP-229 "my schedule": among `schedules`, those where `person` is on call at `now`, and
/// those where they are on call at some point of `[now, now + look_ahead)`.
pub fn my_schedules(
    schedules: &[Schedule],
    calendars: Calendars<'_>,
    person: PersonId,
    now: Millis,
    look_ahead: LookAhead,
) -> Result<MySchedules, ScheduleError> {
    let mut out = MySchedules::default();
    for s in schedules {
        let engine = Engine::new(s, calendars)?;
        let intervals = timeline::intervals(&engine, now, now.saturating_add(look_ahead.millis()))?;
        let on = |iv: &timeline::Interval<'_>| iv.moment.on_call().persons().contains(&person);
        if intervals.first().is_some_and(on) {
            out.on_call_now.push(s.schedule_id);
        }
        if intervals.iter().any(on) {
            out.on_call_within.push(s.schedule_id);
        }
    }
    Ok(out)
}

/// RSP-235, the console's swap helper: the overrides that take `out` off call during
/// `[from, to)` and put `replacement` on, keeping everyone else who is on call alongside
/// `out` (an override replaces every layer, so they need one each).
pub fn swap_overrides(
    schedule: &Schedule,
    calendars: Calendars<'_>,
    from: Millis,
    to: Millis,
    out: PersonId,
    replacement: PersonId,
) -> Result<Vec<OverrideDraft>, ScheduleError> {
    check_window(from, to, TIMELINE_WINDOW_MAX_MS, false)?;
    let engine = Engine::new(schedule, calendars)?;
    let segments: Vec<(Millis, Millis, Vec<PersonId>)> =
        timeline::person_sets(&timeline::intervals(&engine, from, to)?)
            .into_iter()
            .map(|(s, e, p)| (s, e, p.into_iter().collect()))
            .collect();
    Ok(overrides::swap_drafts(&segments, out, replacement))
}
