//! The filters of a layer (RSP-219 … RSP-223): the date mask, continuous or not, the daily or
//! weekly time restriction, and the calendar mask. They are pure filters over time: a cycle
//! that is filtered out still uses up its turn (OQ-14).

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;

use super::calendar::{CalendarView, Calendars};
use super::error::ScheduleError;
use super::model::{DayType, Layer, RestrictMode};
use super::zone::{self, parse_hhmm};
use crate::model::Millis;

#[derive(Debug, Clone)]
pub(crate) enum Restriction {
    None,
    /// (start, end) times of day (RSP-221).
    Daily(Vec<(Time, Time)>),
    /// (a, b) in minutes of the week, 0 = Sunday 00:00 (RSP-222).
    Weekly(Vec<(i64, i64)>),
}

#[derive(Debug, Clone)]
pub(crate) struct Filters<'a> {
    /// Allowed weekdays, indexed 0 = Sunday; `None` = mask off.
    day_mask: Option<[bool; 7]>,
    continuous: bool,
    restriction: Restriction,
    calendar: Option<(CalendarView<'a>, DayType)>,
}

impl<'a> Filters<'a> {
    /// `path` names the layer in errors (`layers[2]`).
    pub(crate) fn new(
        layer: &Layer,
        calendars: Calendars<'a>,
        path: &str,
    ) -> Result<Self, ScheduleError> {
        let day_mask = layer.day_mask.as_ref().map(|days| {
            let mut allowed = [false; 7];
            for d in days {
                if let Some(slot) = usize::try_from(*d).ok().and_then(|i| allowed.get_mut(i)) {
                    *slot = true;
                }
            }
            allowed
        });
        let time = |s: &str, field: String| {
            parse_hhmm(s).ok_or_else(|| ScheduleError::invalid(field, "must be HH:MM"))
        };
        let restriction = match layer.restrict_mode {
            RestrictMode::None => Restriction::None,
            RestrictMode::Daily => Restriction::Daily(
                layer
                    .restrict_periods
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let at = format!("{path}.restrict_periods[{i}]");
                        Ok((
                            time(&p.start, format!("{at}.start"))?,
                            time(&p.end, format!("{at}.end"))?,
                        ))
                    })
                    .collect::<Result<_, ScheduleError>>()?,
            ),
            RestrictMode::Weekly => Restriction::Weekly(
                layer
                    .restrict_periods
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let at = format!("{path}.restrict_periods[{i}]");
                        let start = time(&p.start, format!("{at}.start"))?;
                        let end = time(&p.end, format!("{at}.end"))?;
                        let a = p.start_weekday.unwrap_or(0) * 1440 + zone::minute_of_day(start);
                        let b = p.end_weekday.unwrap_or(0) * 1440 + zone::minute_of_day(end);
                        Ok((a, b))
                    })
                    .collect::<Result<_, ScheduleError>>()?,
            ),
        };
        let calendar = layer.calendar_mask.as_ref().and_then(|m| {
            CalendarView::resolve(calendars, &m.cal_id).map(|view| (view, m.day_type))
        });
        Ok(Filters {
            day_mask,
            continuous: layer.mask_continuous_enabled && layer.day_mask.is_some(),
            restriction,
            calendar,
        })
    }

    /// Whether instant t (local date-time `lt` in the schedule's zone) passes every filter.
    /// `h_star` is the local time of day of V (RSP-220).
    pub(crate) fn passes(
        &self,
        lt: DateTime,
        t: Millis,
        h_star: Time,
    ) -> Result<bool, ScheduleError> {
        let mask_day = self.mask_day(lt, h_star)?;
        if let Some(allowed) = &self.day_mask
            && !weekday_in(allowed, mask_day)
        {
            return Ok(false);
        }
        // RSP-221/222: the time restriction reads the instant's own date and time, not the
        // mask day; both filters must pass independently.
        let restricted_ok = match &self.restriction {
            Restriction::None => true,
            Restriction::Daily(periods) => {
                let tod = lt.time();
                periods.iter().any(|&(start, end)| {
                    if start < end {
                        start <= tod && tod < end
                    } else if start > end {
                        tod >= start || tod < end
                    } else {
                        true
                    }
                })
            }
            Restriction::Weekly(periods) => {
                let m = zone::weekday(lt.date()) * 1440 + zone::minute_of_day(lt.time());
                periods.iter().any(|&(a, b)| {
                    if a < b {
                        a <= m && m < b
                    } else if a > b {
                        m >= a || m < b
                    } else {
                        true
                    }
                })
            }
        };
        if !restricted_ok {
            return Ok(false);
        }
        if let Some((view, wanted)) = &self.calendar {
            // RSP-223: continuous layers judge the mask day (so a night shift that started on
            // a trading day runs to its end); otherwise the date of t in the calendar's zone.
            let date = if self.continuous {
                mask_day
            } else {
                zone::local(&view.tz, t)?.date()
            };
            if view.day_type(date) != *wanted {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// RSP-219/220: the date whose weekday the mask judges. Continuous rotation moves the start
    /// of that day from midnight to the handoff time of day h*.
    fn mask_day(&self, lt: DateTime, h_star: Time) -> Result<Date, ScheduleError> {
        if self.continuous && lt.time() < h_star {
            lt.date()
                .yesterday()
                .map_err(|_| ScheduleError::out_of_range("time"))
        } else {
            Ok(lt.date())
        }
    }

    /// Wall-clock times of day at which a filter can change its verdict in the schedule's
    /// zone: midnight (weekday changes), h* for a continuous mask, and every period edge.
    /// Weekly edges are added as daily times: a superset is harmless.
    pub(crate) fn wall_times(&self, h_star: Time, out: &mut Vec<Time>) {
        out.push(Time::midnight());
        if self.continuous {
            out.push(h_star);
        }
        match &self.restriction {
            Restriction::None => {}
            Restriction::Daily(periods) => {
                for &(a, b) in periods {
                    out.push(a);
                    out.push(b);
                }
            }
            Restriction::Weekly(periods) => {
                for &(a, b) in periods {
                    for m in [a, b] {
                        let minute = m.rem_euclid(1440);
                        if let Ok(t) = Time::new((minute / 60) as i8, (minute % 60) as i8, 0, 0) {
                            out.push(t);
                        }
                    }
                }
            }
        }
    }

    /// The calendar zone whose midnights can change the verdict (a non-continuous calendar
    /// mask reads the date in the calendar's own zone).
    pub(crate) fn calendar_zone(&self) -> Option<&TimeZone> {
        match &self.calendar {
            Some((view, _)) if !self.continuous => Some(&view.tz),
            _ => None,
        }
    }
}

fn weekday_in(allowed: &[bool; 7], d: Date) -> bool {
    usize::try_from(zone::weekday(d))
        .ok()
        .and_then(|i| allowed.get(i))
        .copied()
        .unwrap_or(false)
}
