//! The lawful-request register (SVC-224, SVC-225): what staff `legal` record about a request
//! from an authority, whether a non-disclosure order keeps the tenant from seeing the
//! disclosure in its audit log, and when a forbidden notice must be reviewed again.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::error::{Result, SaasError};

/// SVC-225: while the law forbids telling the tenant, the decision is reviewed this often.
pub const REVIEW_EVERY_DAYS: i64 = 90;

/// The tenant-notification decision of SVC-225.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeDecision {
    /// The owner is told before the disclosure.
    Before,
    /// Prior notice is impossible: the owner is told promptly after.
    After,
    /// The law forbids telling the tenant.
    Forbidden,
}

impl NoticeDecision {
    pub fn parse(text: &str) -> Result<NoticeDecision> {
        match text {
            "before" => Ok(NoticeDecision::Before),
            "after" => Ok(NoticeDecision::After),
            "forbidden" => Ok(NoticeDecision::Forbidden),
            other => Err(SaasError::invalid(
                "notice",
                format!("{other:?} is not a notice decision; use before, after or forbidden"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NoticeDecision::Before => "before",
            NoticeDecision::After => "after",
            NoticeDecision::Forbidden => "forbidden",
        }
    }
}

/// A non-disclosure order: in force until `until` (exclusive), or until staff record that it
/// lapsed when it has no end date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonDisclosure {
    pub until: Option<Timestamp>,
    pub lapsed_at: Option<Timestamp>,
}

impl NonDisclosure {
    /// SVC-224: whether the order still hides the disclosure from the tenant at `now`.
    pub fn in_force(&self, now: Timestamp) -> bool {
        if self.lapsed_at.is_some_and(|l| l <= now) {
            return false;
        }
        self.until.is_none_or(|u| now < u)
    }
}

/// Checks a required free-text field of the register.
pub fn required(field: &'static str, value: &str, max_chars: usize) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(SaasError::invalid(field, "is required"));
    }
    if v.chars().count() > max_chars {
        return Err(SaasError::invalid(
            field,
            format!("at most {max_chars} characters"),
        ));
    }
    Ok(v.to_string())
}

/// SVC-225: the next review of a forbidden notice: the first date of `received` + k × 90
/// days (k ≥ 1) that is not before `today`; `None` when notice is not forbidden.
pub fn next_review(decision: NoticeDecision, received: Date, today: Date) -> Result<Option<Date>> {
    if decision != NoticeDecision::Forbidden {
        return Ok(None);
    }
    let mut d = received.checked_add(jiff::Span::new().days(REVIEW_EVERY_DAYS))?;
    while d < today {
        d = d.checked_add(jiff::Span::new().days(REVIEW_EVERY_DAYS))?;
    }
    Ok(Some(d))
}

/// The calendar day of `t` in the billing time zone.
pub fn day_of(t: Timestamp, tz: &TimeZone) -> Date {
    crate::calendar::date_of(t, tz)
}

/// SVC-225: the owner's notice of a lawful request, `before` the disclosure or promptly
/// `after` it: which authority asked, under what basis and reference, and what it asked for
/// (and, after, what was disclosed and when).
pub fn notice_text(
    request_id: i64,
    authority: &str,
    legal_basis: &str,
    reference: &str,
    scope_requested: &str,
    disclosed: Option<(&str, Timestamp)>,
) -> (String, String) {
    let opening = match disclosed {
        None => "The operator received a legally binding request for your organisation's data \
                 and intends to comply with it. This notice is given before any disclosure."
            .to_string(),
        Some((_, at)) => format!(
            "The operator disclosed your organisation's data under a legally binding request at \
             {}. Notice could not be given beforehand.",
            at.strftime("%Y-%m-%d %H:%M UTC")
        ),
    };
    let mut content = format!(
        "{opening}\n\nRequest: {request_id}\nAuthority: {authority}\nLegal basis: {legal_basis}\n\
         Reference: {reference}\nScope requested: {scope_requested}\n"
    );
    if let Some((scope, _)) = disclosed {
        content.push_str(&format!("Scope disclosed: {scope}\n"));
    }
    content.push_str("\nEvery staff read made for it is in your audit log.\n");
    let subject = match disclosed {
        None => format!("Lawful request for your data (request {request_id})"),
        Some(_) => format!("Your data was disclosed under a lawful request (request {request_id})"),
    };
    (subject, content)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use jiff::civil::date;

    #[test]
    fn a_forbidden_notice_is_reviewed_every_ninety_days() {
        // spec: SVC-225 (review date every 90 days)
        let received = date(2025, 1, 1);
        let f = NoticeDecision::Forbidden;
        assert_eq!(
            next_review(f, received, date(2025, 1, 2)).unwrap(),
            Some(date(2025, 4, 1))
        );
        assert_eq!(
            next_review(f, received, date(2025, 4, 1)).unwrap(),
            Some(date(2025, 4, 1))
        );
        assert_eq!(
            next_review(f, received, date(2025, 4, 2)).unwrap(),
            Some(date(2025, 6, 30))
        );
        assert_eq!(
            next_review(NoticeDecision::After, received, date(2025, 4, 2)).unwrap(),
            None
        );
    }

    #[test]
    fn an_order_hides_until_it_ends_or_lapses() {
        // spec: SVC-224 (hidden while a non-disclosure order is active)
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let open = NonDisclosure {
            until: None,
            lapsed_at: None,
        };
        assert!(open.in_force(t("2030-01-01T00:00:00Z")));
        let lapsed = NonDisclosure {
            until: None,
            lapsed_at: Some(t("2025-06-01T00:00:00Z")),
        };
        assert!(lapsed.in_force(t("2025-05-31T23:59:59Z")));
        assert!(!lapsed.in_force(t("2025-06-01T00:00:00Z")));
        let dated = NonDisclosure {
            until: Some(t("2025-07-01T00:00:00Z")),
            lapsed_at: None,
        };
        assert!(dated.in_force(t("2025-06-30T00:00:00Z")));
        assert!(!dated.in_force(t("2025-07-01T00:00:00Z")));
        assert!(NoticeDecision::parse("never").is_err());
        assert!(required("authority", " ", 10).is_err());
    }

    #[test]
    fn the_owner_is_told_before_or_after_a_disclosure() {
        // spec: SVC-225
        let (subject, text) =
            notice_text(3, "Court X", "Order 12", "REF-9", "incidents of May", None);
        assert_eq!(subject, "Lawful request for your data (request 3)");
        assert!(text.contains("before any disclosure"), "{text}");
        assert!(text.contains("Authority: Court X\nLegal basis: Order 12\nReference: REF-9\nScope requested: incidents of May"), "{text}");
        let at: Timestamp = "2025-05-02T10:00:00Z".parse().unwrap();
        let (subject, text) = notice_text(
            3,
            "Court X",
            "Order 12",
            "REF-9",
            "incidents of May",
            Some(("incident 7", at)),
        );
        assert!(subject.starts_with("Your data was disclosed"), "{subject}");
        assert!(text.contains("at 2025-05-02 10:00 UTC"), "{text}");
        assert!(text.contains("Scope disclosed: incident 7"), "{text}");
    }
}
