//! Seventy-two consecutive hours of unavailability (SVC-260 … SVC-263).

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::calendar::{add_days, date_of, start_of};
use crate::error::{Result, SaasError};
use crate::params::Params;
use crate::sla::CycleStats;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usability {
    Usable,
    Unusable,
    Excluded,
}

/// SVC-260: unusable if not excluded and either rate ≥ 50 %, or — with no traffic — the
/// region's synthetic probe failed (≥ 3 of its 5 runs).
pub fn classify(c: &CycleStats, probe_failures: u8, p: &Params) -> Usability {
    if c.excluded.is_some() {
        return Usability::Excluded;
    }
    let bad = if c.had_traffic {
        c.error_rate >= p.unusable_threshold || c.delay_rate >= p.unusable_threshold
    } else {
        probe_failures >= 3
    };
    if bad {
        Usability::Unusable
    } else {
        Usability::Usable
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    pub first_cycle_start: Timestamp,
    /// End of the 864th consecutive unusable cycle.
    pub detected_at: Timestamp,
    /// Start of the first usable cycle after it.
    pub ended_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutageEvent {
    Detected(Outage),
    Ended(Outage),
}

/// SVC-261: counts consecutive unusable cycles; any usable or excluded cycle resets the
/// count (and ends an open outage when usable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detector {
    run: i64,
    run_start: Option<Timestamp>,
    last: Option<Timestamp>,
    open: Option<Outage>,
}

impl Detector {
    /// Feed cycles in order. Cycles must be consecutive; a gap resets the count.
    pub fn observe(
        &mut self,
        start: Timestamp,
        u: Usability,
        p: &Params,
    ) -> Result<Option<OutageEvent>> {
        let len = SignedDuration::from_mins(p.sla.cycle_minutes);
        if let Some(last) = self.last {
            if start <= last {
                return Err(SaasError::invalid("start", "cycles are fed in order"));
            }
            if start != last.checked_add(len)? {
                self.run = 0;
                self.run_start = None;
            }
        }
        self.last = Some(start);
        match u {
            Usability::Unusable => {
                if self.run == 0 {
                    self.run_start = Some(start);
                }
                self.run += 1;
                if self.run == p.outage_cycles() && self.open.is_none() {
                    let o = Outage {
                        first_cycle_start: self.run_start.unwrap_or(start),
                        detected_at: start.checked_add(len)?,
                        ended_at: None,
                    };
                    self.open = Some(o.clone());
                    return Ok(Some(OutageEvent::Detected(o)));
                }
                Ok(None)
            }
            Usability::Excluded => {
                self.run = 0;
                self.run_start = None;
                Ok(None)
            }
            Usability::Usable => {
                self.run = 0;
                self.run_start = None;
                Ok(self.open.take().map(|mut o| {
                    o.ended_at = Some(start);
                    OutageEvent::Ended(o)
                }))
            }
        }
    }
}

/// SVC-263: the termination right lasts from detection until 24:00 of the 30th day after
/// the outage ends (while it has not ended, it is open-ended).
pub fn termination_right_until(o: &Outage, p: &Params, tz: &TimeZone) -> Result<Option<Timestamp>> {
    match o.ended_at {
        None => Ok(None),
        Some(end) => Ok(Some(start_of(
            add_days(date_of(end, tz), p.outage_exercise_window_days + 1)?,
            tz,
        )?)),
    }
}

pub fn may_terminate_for_outage(
    o: &Outage,
    now: Timestamp,
    p: &Params,
    tz: &TimeZone,
) -> Result<bool> {
    if now < o.detected_at {
        return Ok(false);
    }
    Ok(match termination_right_until(o, p, tz)? {
        None => true,
        Some(until) => now < until,
    })
}
