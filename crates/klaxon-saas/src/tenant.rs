//! One tenant's billing standing as the store keeps it: the service state, when it was
//! entered, and the purge date of a non-payment suspension, moved forward by the overdue
//! rules (SVC-130, SVC-137, SVC-139, SVC-140) from the book's facts.
//!
//! The overdue job, a payment and a new charge all call [`advance`]: it decides, applies the
//! SVC-021 transition, and decides again, so a job that runs late catches up in one call
//! (active → overdue → suspended at the scheduled instant, never straight across).

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::book::Book;
use crate::error::Result;
use crate::overdue::{DebtStatus, OverdueDecision, OverdueFacts, decide, nonpayment_purge};
use crate::params::Params;
use crate::state::{ServiceState, SuspendReason, Trigger, transition};

/// The stored standing of a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub state: ServiceState,
    /// When the current state was entered (for a suspension: the scheduled instant).
    pub since: Timestamp,
    /// SVC-140: set while `suspended(nonpayment)`.
    pub purge_at: Option<Timestamp>,
}

/// One applied transition, for the audit trail and notices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub from: ServiceState,
    pub to: ServiceState,
    pub at: Timestamp,
    pub rule: &'static str,
}

fn status(s: &Standing) -> DebtStatus {
    match s.state {
        ServiceState::Trial | ServiceState::Active => DebtStatus::Serving,
        ServiceState::Overdue => DebtStatus::Overdue,
        ServiceState::Suspended(SuspendReason::Nonpayment) => {
            DebtStatus::SuspendedForNonpayment { since: s.since }
        }
        _ => DebtStatus::Other,
    }
}

/// Applies every overdue-rule transition due at `now`. `prepaid_ends_at` is the end of the
/// prepaid term in force, if any (SVC-139: paid after the term ended → `ended(expired)`).
pub fn advance(
    book: &Book,
    standing: Standing,
    now: Timestamp,
    params: &Params,
    tz: &TimeZone,
    prepaid_ends_at: Option<Timestamp>,
) -> Result<(Standing, Vec<Change>)> {
    let payable_total = book.payable_total(now)?;
    let mut s = standing;
    let mut changes = Vec::new();
    // Each decision moves one edge of SVC-021; three edges are the longest chain
    // (active → overdue → suspended → ended), so the loop is bounded.
    for _ in 0..4 {
        let facts = OverdueFacts {
            items: book.items(),
            payable_total,
            status: status(&s),
            prepaid_ends_at,
        };
        let (trigger, at, rule) = match decide(&facts, now, params, tz)? {
            OverdueDecision::Nothing => break,
            OverdueDecision::BecomeOverdue => (Trigger::OverdueItemExists, now, "SVC-130"),
            OverdueDecision::Suspend { at } => (Trigger::GraceElapsed, at, "SVC-137"),
            OverdueDecision::Restore => (Trigger::DebtPaid { term_ended: false }, now, "SVC-139"),
            OverdueDecision::EndExpired => (Trigger::DebtPaid { term_ended: true }, now, "SVC-139"),
            OverdueDecision::EndForNonpayment { at } => (Trigger::PurgeDateReached, at, "SVC-140"),
        };
        let to = transition(s.state, trigger)?;
        let purge_at = match to {
            ServiceState::Suspended(SuspendReason::Nonpayment) => {
                Some(nonpayment_purge(at, params.buffer_days)?.0)
            }
            // SVC-140: the ended tenant keeps its purge date for the purge slice.
            ServiceState::Ended(_) => s.purge_at,
            _ => None,
        };
        changes.push(Change {
            from: s.state,
            to,
            at,
            rule,
        });
        s = Standing {
            state: to,
            since: at,
            purge_at,
        };
    }
    Ok((s, changes))
}

/// A notice one state change owes the tenant (SVC-136, SVC-139, SVC-316).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateNotice {
    pub category: crate::notice::Category,
    pub template_id: &'static str,
    pub subject: String,
    pub content: String,
}

/// The notice of `change`, if it owes one: entering `overdue`, a suspension, a restoration
/// (leaving a suspension for a served state), and the end of service. `standing` is the
/// standing after the change (its purge date, for a non-payment suspension). Times are in
/// UTC with the zone named.
pub fn notice_of(change: &Change, standing: &Standing) -> Option<StateNotice> {
    use crate::notice::Category;
    let utc = |t: Timestamp| t.strftime("%Y-%m-%d %H:%M UTC").to_string();
    let purge = standing
        .purge_at
        .filter(|_| standing.state == change.to)
        .map(|p| {
            format!(
                "\nIf the payable total stays unpaid, the organisation's data is purged on {}.\n",
                utc(p)
            )
        })
        .unwrap_or_default();
    match (change.from, change.to) {
        (from, ServiceState::Overdue) if from != ServiceState::Overdue => Some(StateNotice {
            category: Category::Overdue,
            template_id: "overdue",
            subject: "Payment overdue".into(),
            content: format!(
                "An amount your organisation owes was not paid when due; it is overdue since {}.\n\
                 A late penalty accrues daily on the overdue principal, and the service is suspended \
                 if it stays unpaid past the grace period. Paying the payable total ends both.\n",
                utc(change.at)
            ),
        }),
        (_, ServiceState::Suspended(reason)) => Some(StateNotice {
            category: Category::Suspension,
            template_id: "suspension",
            subject: format!("Service suspended ({})", ServiceState::Suspended(reason)),
            content: format!(
                "Your organisation's service is suspended since {} ({}).\n\
                 While it is suspended, alerts pushed to its integrations are refused and not \
                 processed, and changes through the API are refused; reading, exporting and \
                 revoking keys stay possible.\n{purge}",
                utc(change.at),
                ServiceState::Suspended(reason)
            ),
        }),
        (ServiceState::Suspended(_), to) if serving_state(to) => Some(StateNotice {
            category: Category::Restoration,
            template_id: "restoration",
            subject: "Service restored".into(),
            content: format!(
                "Your organisation's service is restored since {}: alerts are accepted and \
                 processed again. Alerts sent while it was suspended were not processed and are \
                 not replayed.\n",
                utc(change.at)
            ),
        }),
        (_, ServiceState::Ended(reason)) => Some(StateNotice {
            category: Category::ServiceEnded,
            template_id: "service_ended",
            subject: format!("Service ended ({})", ServiceState::Ended(reason)),
            content: format!(
                "Your organisation's service ended at {} ({}). Its data stays readable and \
                 exportable during the buffer period; after that it is purged.\n",
                utc(change.at),
                ServiceState::Ended(reason)
            ),
        }),
        _ => None,
    }
}

/// SVC-136: the purge warning a tenant suspended for non-payment is owed on the billing day
/// of `at`: 7 days ahead (sent on any day from the seventh day before the purge date to the
/// second), then 1 day ahead (from the day before). `days_ahead` names which, so the caller
/// gives each once per purge date; a job that runs late gives the nearer one only.
pub fn purge_warning(
    standing: &Standing,
    at: Timestamp,
    billing_tz: &TimeZone,
) -> Result<Option<(i64, Timestamp, StateNotice)>> {
    use crate::calendar::{date_of, days_between};
    use crate::notice::Category;
    let (ServiceState::Suspended(SuspendReason::Nonpayment), Some(purge_at)) =
        (standing.state, standing.purge_at)
    else {
        return Ok(None);
    };
    let left = days_between(date_of(at, billing_tz), date_of(purge_at, billing_tz))?;
    let days_ahead = match left {
        2..=7 => 7,
        0..=1 => 1,
        _ => return Ok(None),
    };
    let when = purge_at.strftime("%Y-%m-%d %H:%M UTC").to_string();
    Ok(Some((
        days_ahead,
        purge_at,
        StateNotice {
            category: Category::PurgeWarning,
            template_id: if days_ahead == 7 {
                "purge_warning_7d"
            } else {
                "purge_warning_1d"
            },
            subject: format!("Your organisation's data will be purged on {when}"),
            content: format!(
                "Your organisation's service is suspended for non-payment. Unless the payable \
                 total is paid in full before {when}, the service ends and all of its data is \
                 purged irreversibly, including backups. Export anything you want to keep before \
                 then. Debts remain owed after the purge.\n"
            ),
        },
    )))
}

fn serving_state(s: ServiceState) -> bool {
    matches!(
        s,
        ServiceState::Trial | ServiceState::Active | ServiceState::Overdue
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::ChargeKind;
    use crate::money::Currency;
    use crate::overdue::PenaltyTerms;
    use jiff::civil::date;
    use rust_decimal::dec;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn late_job_catches_up_with_the_scheduled_suspension_and_payment_restores() {
        // spec: SVC-130
        // spec: SVC-137
        // spec: SVC-139
        // spec: SVC-140
        let p = Params::cloud_defaults();
        let tz = TimeZone::UTC;
        let mut book =
            Book::new(Currency::CNY, tz.clone(), PenaltyTerms::from_params(&p), 12).unwrap();
        book.charge(
            ts("2025-05-31T00:30:00Z"),
            ChargeKind::LicenceCycle,
            dec!(1990.00),
            true,
            date(2025, 5, 31),
            "cycle-may",
            "system",
        )
        .unwrap();
        let start = Standing {
            state: ServiceState::Active,
            since: ts("2025-01-01T00:00:00Z"),
            purge_at: None,
        };
        // The job did not run for days: one call goes active → overdue → suspended, and the
        // suspension carries its scheduled instant, not the late run's.
        let (s, changes) =
            advance(&book, start, ts("2025-06-08T09:00:00Z"), &p, &tz, None).unwrap();
        assert_eq!(changes.len(), 2);
        assert_eq!(s.state, ServiceState::Suspended(SuspendReason::Nonpayment));
        assert_eq!(s.since, ts("2025-06-08T00:00:00Z"));
        assert_eq!(s.purge_at, Some(ts("2025-07-08T00:00:00Z")));
        // Idempotent: running again at the same instant changes nothing.
        let (again, none) = advance(&book, s, ts("2025-06-08T09:00:00Z"), &p, &tz, None).unwrap();
        assert_eq!(again, s);
        assert!(none.is_empty());
        // Principal only does not restore (SVC-139); the whole payable total does.
        let mut partial = book.clone();
        partial
            .receive_cash(
                ts("2025-06-08T11:00:00Z"),
                dec!(1990.00),
                "pay-1",
                "finance",
            )
            .unwrap();
        let (still, _) = advance(&partial, s, ts("2025-06-08T11:00:00Z"), &p, &tz, None).unwrap();
        assert_eq!(
            still.state,
            ServiceState::Suspended(SuspendReason::Nonpayment)
        );
        book.receive_cash(
            ts("2025-06-08T11:00:00Z"),
            dec!(1996.97),
            "pay-1",
            "finance",
        )
        .unwrap();
        let (restored, ch) = advance(&book, s, ts("2025-06-08T11:00:00Z"), &p, &tz, None).unwrap();
        assert_eq!(restored.state, ServiceState::Active);
        assert_eq!(restored.purge_at, None);
        assert_eq!(ch[0].rule, "SVC-139");
    }

    #[test]
    fn a_book_restored_from_its_rows_is_the_same_book_and_gaps_are_refused() {
        // spec: SVC-085
        let p = Params::cloud_defaults();
        let tz = TimeZone::UTC;
        let terms = PenaltyTerms::from_params(&p);
        let mut book = Book::new(Currency::CNY, tz.clone(), terms.clone(), 12).unwrap();
        book.grant_bonus(
            ts("2025-05-01T00:00:00Z"),
            dec!(10.00),
            crate::ledger::BonusSource::OperatorGrant,
            crate::ledger::BonusScope::OrdersAndUsage,
            None,
            "g",
            "op",
        )
        .unwrap();
        book.charge(
            ts("2025-05-31T00:30:00Z"),
            ChargeKind::Usage,
            dec!(100.00),
            true,
            date(2025, 5, 31),
            "usage",
            "system",
        )
        .unwrap();
        book.receive_cash(ts("2025-06-03T10:00:00Z"), dec!(50.00), "p", "finance")
            .unwrap();
        let items: Vec<crate::book::ItemRecord> = book
            .items()
            .iter()
            .map(|i| crate::book::ItemRecord {
                id: i.id,
                origin: i.origin.clone(),
                principal: i.principal,
                due_date: i.due_date,
                created_at: i.created_at,
            })
            .collect();
        let entries = book.ledger().entries().to_vec();
        let back = Book::restore(
            Currency::CNY,
            tz.clone(),
            terms.clone(),
            12,
            false,
            entries.clone(),
            items.clone(),
        )
        .unwrap();
        assert_eq!(back.ledger(), book.ledger());
        assert_eq!(back.items(), book.items());
        let now = ts("2025-06-05T00:00:00Z");
        assert_eq!(
            back.payable_total(now).unwrap(),
            book.payable_total(now).unwrap()
        );
        let mut gap = entries;
        gap.remove(1);
        assert!(Book::restore(Currency::CNY, tz, terms, 12, false, gap, items).is_err());
    }

    #[test]
    fn state_changes_owe_their_notices() {
        // spec: SVC-136 (at overdue and at suspension), SVC-139 (restoration notice sent),
        // SVC-316 (catalogue categories).
        use crate::notice::Category;
        let at: Timestamp = "2025-03-10T02:00:00Z".parse().unwrap();
        let purge: Timestamp = "2025-04-09T02:00:00Z".parse().unwrap();
        let change = |from, to| Change {
            from,
            to,
            at,
            rule: "test",
        };
        let standing = |state, purge_at| Standing {
            state,
            since: at,
            purge_at,
        };
        let suspended = ServiceState::Suspended(SuspendReason::Nonpayment);

        let n = notice_of(
            &change(ServiceState::Active, ServiceState::Overdue),
            &standing(ServiceState::Overdue, None),
        )
        .unwrap();
        assert_eq!((n.category, n.template_id), (Category::Overdue, "overdue"));
        assert!(
            n.content.contains("overdue since 2025-03-10 02:00 UTC"),
            "{}",
            n.content
        );

        let n = notice_of(
            &change(ServiceState::Overdue, suspended),
            &standing(suspended, Some(purge)),
        )
        .unwrap();
        assert_eq!(n.category, Category::Suspension);
        assert_eq!(n.subject, "Service suspended (suspended(nonpayment))");
        assert!(
            n.content.contains("purged on 2025-04-09 02:00 UTC"),
            "{}",
            n.content
        );

        let n = notice_of(
            &change(suspended, ServiceState::Active),
            &standing(ServiceState::Active, None),
        )
        .unwrap();
        assert_eq!(
            (n.category, n.template_id),
            (Category::Restoration, "restoration")
        );

        let ended = ServiceState::Ended(crate::state::EndReason::Nonpayment);
        let n = notice_of(&change(suspended, ended), &standing(ended, None)).unwrap();
        assert_eq!(n.category, Category::ServiceEnded);

        // Paying while overdue is no state the tenant must be told of by notice.
        assert!(
            notice_of(
                &change(ServiceState::Overdue, ServiceState::Active),
                &standing(ServiceState::Active, None),
            )
            .is_none()
        );
    }

    #[test]
    fn purge_warnings_come_seven_days_and_one_day_ahead() {
        // spec: SVC-136 — "7 days and 1 day before the purge date", by billing-zone dates.
        let tz = TimeZone::get("Asia/Shanghai").unwrap();
        let purge: Timestamp = "2025-07-08T00:00:00Z".parse().unwrap(); // 08:00 on 8 July, +08
        let s = Standing {
            state: ServiceState::Suspended(SuspendReason::Nonpayment),
            since: "2025-06-08T00:00:00Z".parse().unwrap(),
            purge_at: Some(purge),
        };
        let on = |day: &str| -> Option<i64> {
            let at: Timestamp = format!("{day}T01:00:00Z").parse().unwrap();
            purge_warning(&s, at, &tz).unwrap().map(|(d, _, _)| d)
        };
        assert_eq!(on("2025-06-30"), None);
        assert_eq!(on("2025-07-01"), Some(7));
        assert_eq!(on("2025-07-06"), Some(7));
        assert_eq!(on("2025-07-07"), Some(1));
        let (_, at, n) = purge_warning(&s, "2025-07-07T01:00:00Z".parse().unwrap(), &tz)
            .unwrap()
            .unwrap();
        assert_eq!(at, purge);
        assert_eq!(n.category, crate::notice::Category::PurgeWarning);
        assert!(n.subject.contains("2025-07-08 00:00 UTC"), "{}", n.subject);
        // Only a non-payment suspension has a purge date to warn of.
        let breach = Standing {
            state: ServiceState::Suspended(SuspendReason::Breach),
            ..s
        };
        let at: Timestamp = "2025-07-07T01:00:00Z".parse().unwrap();
        assert!(purge_warning(&breach, at, &tz).unwrap().is_none());
    }
}
