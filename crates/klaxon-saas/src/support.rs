//! Support (§12): ticket categories and fault causes, which tenant an e-mailed ticket belongs
//! to, the service hours of each edition, and the ticket clock counted in service minutes
//! (SVC-170…SVC-174).
//!
//! The clock is pure arithmetic over the support time zone: a ticket that arrives outside the
//! hours starts its clock at the next opening, and only minutes inside an opening count.

use std::collections::BTreeSet;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use crate::calendar::{at_local, date_of};
use crate::error::{Result, SaasError};
use crate::licence::Edition;

/// SVC-171: what a ticket is about. E-mail tickets start as `consultation`; staff set the
/// category when they triage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Consultation,
    Fault,
    Billing,
    /// A formal notice from the tenant (SVC-315).
    FormalNotice,
    DataRequest,
    AccessGrant,
    Appeal,
    Closure,
}

impl Category {
    pub const ALL: [Category; 8] = [
        Category::Consultation,
        Category::Fault,
        Category::Billing,
        Category::FormalNotice,
        Category::DataRequest,
        Category::AccessGrant,
        Category::Appeal,
        Category::Closure,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Category::Consultation => "consultation",
            Category::Fault => "fault",
            Category::Billing => "billing",
            Category::FormalNotice => "formal_notice",
            Category::DataRequest => "data_request",
            Category::AccessGrant => "access_grant",
            Category::Appeal => "appeal",
            Category::Closure => "closure",
        }
    }

    pub fn parse(text: &str) -> Result<Category> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == text)
            .ok_or_else(|| {
                SaasError::invalid(
                    "category",
                    format!(
                        "{text:?} is not one of {}",
                        Category::ALL.map(|c| c.as_str()).join(", ")
                    ),
                )
            })
    }
}

/// SVC-174: the cause recorded when a fault ticket is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultCause {
    /// The platform failed: the ticket links to the affected SLA cycles.
    Platform,
    CustomerOperation,
    ThirdPartyNetwork,
    ForceMajeure,
    Unknown,
}

impl FaultCause {
    pub const ALL: [FaultCause; 5] = [
        FaultCause::Platform,
        FaultCause::CustomerOperation,
        FaultCause::ThirdPartyNetwork,
        FaultCause::ForceMajeure,
        FaultCause::Unknown,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            FaultCause::Platform => "platform",
            FaultCause::CustomerOperation => "customer_operation",
            FaultCause::ThirdPartyNetwork => "third_party_network",
            FaultCause::ForceMajeure => "force_majeure",
            FaultCause::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Result<FaultCause> {
        FaultCause::ALL
            .into_iter()
            .find(|c| c.as_str() == text)
            .ok_or_else(|| {
                SaasError::invalid(
                    "cause",
                    format!(
                        "{text:?} is not one of {}",
                        FaultCause::ALL.map(|c| c.as_str()).join(", ")
                    ),
                )
            })
    }

    /// SVC-174: every cause but `platform` may back an SLA exclusion (SVC-276).
    pub fn may_back_exclusion(&self) -> bool {
        !matches!(self, FaultCause::Platform)
    }
}

/// What closing a ticket needs (SVC-174): a fault ticket must say its cause; any other
/// category must not carry one.
pub fn check_close(category: Category, cause: Option<FaultCause>) -> Result<()> {
    match (category, cause) {
        (Category::Fault, None) => Err(SaasError::invalid(
            "cause",
            "a fault ticket is closed with its cause (platform, customer_operation, \
             third_party_network, force_majeure or unknown)",
        )),
        (Category::Fault, Some(_)) | (_, None) => Ok(()),
        (other, Some(_)) => Err(SaasError::invalid(
            "cause",
            format!(
                "only fault tickets have a cause; this one is {}",
                other.as_str()
            ),
        )),
    }
}

/// SVC-171: which tenant an e-mailed ticket belongs to, from the tenants in which the sender
/// is a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderMatch {
    /// Member of exactly one tenant.
    Tenant(i64),
    /// Member of several: the acknowledgement asks which tenant is meant.
    Ambiguous(Vec<i64>),
    /// Member of none: the ticket waits in the `unverified` queue.
    Unverified,
}

impl SenderMatch {
    pub fn of(mut tenants: Vec<i64>) -> SenderMatch {
        tenants.sort_unstable();
        tenants.dedup();
        match tenants.as_slice() {
            [] => SenderMatch::Unverified,
            [one] => SenderMatch::Tenant(*one),
            _ => SenderMatch::Ambiguous(tenants),
        }
    }

    /// The queue name stored with the ticket.
    pub fn queue(&self) -> &'static str {
        match self {
            SenderMatch::Tenant(_) => "tenant",
            SenderMatch::Ambiguous(_) => "ambiguous",
            SenderMatch::Unverified => "unverified",
        }
    }
}

/// Which days have service hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceDays {
    /// Monday to Friday, except the support calendar's holidays (5×8).
    Weekdays,
    /// Every day (7×8).
    EveryDay,
    /// No commitment (Free): the clock never runs.
    None,
}

/// SVC-172: the service hours a ticket is measured against.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceHours {
    pub days: ServiceDays,
    pub opens: Time,
    pub closes: Time,
    pub tz: TimeZone,
    /// Support-calendar holidays; they close weekday (5×8) service only.
    pub holidays: BTreeSet<Date>,
}

impl ServiceHours {
    /// SVC-172 (OQ-17): Standard and Trial 5×8, Pro 7×8, Free none, 09:00–17:00 in the
    /// support time zone. Unlimited is the edition of the operator's own exempt tenants
    /// (SVC-402); they get the longest hours, 7×8.
    pub fn for_edition(edition: Edition, tz: TimeZone, holidays: BTreeSet<Date>) -> ServiceHours {
        let days = match edition {
            Edition::Standard | Edition::Trial => ServiceDays::Weekdays,
            Edition::Pro | Edition::Unlimited => ServiceDays::EveryDay,
            Edition::Free => ServiceDays::None,
        };
        ServiceHours {
            days,
            opens: Time::constant(9, 0, 0, 0),
            closes: Time::constant(17, 0, 0, 0),
            tz,
            holidays,
        }
    }

    /// [`ServiceHours::for_edition`] by the edition's stored name (`free`, `trial`,
    /// `standard`, `pro`, `unlimited`).
    pub fn for_edition_named(
        name: &str,
        tz: TimeZone,
        holidays: BTreeSet<Date>,
    ) -> Result<ServiceHours> {
        let edition = match name {
            "free" => Edition::Free,
            "trial" => Edition::Trial,
            "standard" => Edition::Standard,
            "pro" => Edition::Pro,
            "unlimited" => Edition::Unlimited,
            other => {
                return Err(SaasError::invalid(
                    "edition",
                    format!("{other:?} is not free, trial, standard, pro or unlimited"),
                ));
            }
        };
        Ok(ServiceHours::for_edition(edition, tz, holidays))
    }

    fn open_on(&self, day: Date) -> bool {
        match self.days {
            ServiceDays::EveryDay => true,
            ServiceDays::None => false,
            ServiceDays::Weekdays => {
                !matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday)
                    && !self.holidays.contains(&day)
            }
        }
    }

    /// The opening interval of `day` as instants, if the day has service.
    fn window(&self, day: Date) -> Result<Option<(Timestamp, Timestamp)>> {
        if !self.open_on(day) {
            return Ok(None);
        }
        Ok(Some((
            at_local(day, self.opens, &self.tz)?,
            at_local(day, self.closes, &self.tz)?,
        )))
    }

    /// When the clock of a ticket received at `at` starts: `at` itself inside the hours,
    /// else the next opening (SVC-172). `None` for an edition without hours.
    pub fn clock_start(&self, at: Timestamp) -> Result<Option<Timestamp>> {
        if self.days == ServiceDays::None {
            return Ok(None);
        }
        let mut day = date_of(at, &self.tz);
        // A year of holidays is far more than any calendar closes in a row.
        for _ in 0..400 {
            if let Some((start, end)) = self.window(day)? {
                if at < start {
                    return Ok(Some(start));
                }
                if at < end {
                    return Ok(Some(at));
                }
            }
            day = day.checked_add(1.day())?;
        }
        Err(SaasError::invalid(
            "support_holidays",
            "no service day within 400 days",
        ))
    }

    /// SVC-173: whole service minutes between `from` and `to` (0 when `to` is not later, or
    /// the edition has no hours). Partial minutes are not counted.
    pub fn service_minutes(&self, from: Timestamp, to: Timestamp) -> Result<i64> {
        if to <= from || self.days == ServiceDays::None {
            return Ok(0);
        }
        let mut day = date_of(from, &self.tz);
        let last = date_of(to, &self.tz);
        let mut seconds = 0i64;
        while day <= last {
            if let Some((start, end)) = self.window(day)? {
                let a = start.max(from);
                let b = end.min(to);
                if b > a {
                    seconds += b.as_second() - a.as_second();
                }
            }
            day = day.checked_add(1.day())?;
        }
        Ok(seconds / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz() -> TimeZone {
        TimeZone::get("Asia/Shanghai").expect("zone")
    }

    fn at(s: &str) -> Timestamp {
        jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M", s)
            .expect("datetime")
            .to_zoned_datetime(tz())
            .expect("zoned")
            .timestamp()
    }

    fn hours(edition: Edition) -> ServiceHours {
        ServiceHours::for_edition(edition, tz(), BTreeSet::new())
    }

    // spec: SVC-173 (worked example) — Standard, received Friday 16:30: 30 service minutes
    // that Friday, the clock resumes Monday 09:00.
    #[test]
    fn standard_ticket_on_friday_afternoon_resumes_monday() {
        let h = hours(Edition::Standard);
        // 2025-06-06 is a Friday.
        let received = at("2025-06-06 16:30");
        assert_eq!(h.clock_start(received).unwrap(), Some(received));
        assert_eq!(
            h.service_minutes(received, at("2025-06-06 17:00")).unwrap(),
            30
        );
        // Nothing counts over the weekend …
        assert_eq!(
            h.service_minutes(received, at("2025-06-09 09:00")).unwrap(),
            30
        );
        // … and Monday's minutes do.
        assert_eq!(
            h.service_minutes(received, at("2025-06-09 09:45")).unwrap(),
            75
        );
        // A ticket arriving on Saturday starts its clock at Monday's opening.
        assert_eq!(
            h.clock_start(at("2025-06-07 11:00")).unwrap(),
            Some(at("2025-06-09 09:00"))
        );
    }

    // spec: SVC-173 (worked example) — the same ticket on Pro resumes Saturday 09:00.
    #[test]
    fn pro_ticket_resumes_saturday() {
        let h = hours(Edition::Pro);
        let received = at("2025-06-06 16:30");
        assert_eq!(
            h.service_minutes(received, at("2025-06-07 09:10")).unwrap(),
            40
        );
        assert_eq!(
            h.clock_start(at("2025-06-06 18:00")).unwrap(),
            Some(at("2025-06-07 09:00"))
        );
    }

    // spec: SVC-172 — Standard excludes the support calendar's holidays; Trial is like
    // Standard; Free has no hours commitment.
    #[test]
    fn holidays_trial_and_free() {
        let holidays: BTreeSet<Date> = [jiff::civil::date(2025, 6, 9)].into_iter().collect();
        let standard = ServiceHours::for_edition(Edition::Standard, tz(), holidays.clone());
        assert_eq!(
            standard.clock_start(at("2025-06-07 11:00")).unwrap(),
            Some(at("2025-06-10 09:00"))
        );
        let pro = ServiceHours::for_edition(Edition::Pro, tz(), holidays);
        assert_eq!(
            pro.clock_start(at("2025-06-09 08:00")).unwrap(),
            Some(at("2025-06-09 09:00"))
        );
        assert_eq!(hours(Edition::Trial).days, ServiceDays::Weekdays);
        let free = hours(Edition::Free);
        assert_eq!(free.clock_start(at("2025-06-06 10:00")).unwrap(), None);
        assert_eq!(
            free.service_minutes(at("2025-06-06 10:00"), at("2025-06-06 12:00"))
                .unwrap(),
            0
        );
    }

    // spec: SVC-171 — one tenant, several, none.
    #[test]
    fn sender_matching() {
        assert_eq!(SenderMatch::of(vec![7, 7]), SenderMatch::Tenant(7));
        assert_eq!(
            SenderMatch::of(vec![9, 3]),
            SenderMatch::Ambiguous(vec![3, 9])
        );
        assert_eq!(SenderMatch::of(vec![]), SenderMatch::Unverified);
        assert_eq!(SenderMatch::Unverified.queue(), "unverified");
    }

    // spec: SVC-171, SVC-174 — categories and causes parse by name; a fault closes with a
    // cause, nothing else carries one.
    #[test]
    fn categories_causes_and_closing() {
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()).unwrap(), c);
        }
        for c in FaultCause::ALL {
            assert_eq!(FaultCause::parse(c.as_str()).unwrap(), c);
        }
        assert!(Category::parse("urgent").is_err());
        assert!(check_close(Category::Fault, None).is_err());
        assert!(check_close(Category::Fault, Some(FaultCause::Platform)).is_ok());
        assert!(check_close(Category::Billing, None).is_ok());
        assert!(check_close(Category::Billing, Some(FaultCause::Unknown)).is_err());
        assert!(!FaultCause::Platform.may_back_exclusion());
        assert!(FaultCause::ForceMajeure.may_back_exclusion());
    }
}
