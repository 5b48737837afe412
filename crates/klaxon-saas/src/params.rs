//! The operator-level parameters of §0.6 with their cloud-mode defaults.
//!
//! Contracts may override some per tenant (SVC-012); the caller resolves the override and
//! hands the effective `Params` in. `validate` enforces the bounds the spec gives.

use jiff::civil::{Time, time};
use rust_decimal::{Decimal, dec};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SaasError};

/// SVC-235: what a customer cancellation without cause refunds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelRefund {
    None,
    ProRata,
}

/// The SLA figures (SVC-271–280), fields of the SLA version so a later version can change them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaParams {
    /// 0.999 (OQ-12: the SLA document binds, not the FAQ's 99.95 %).
    pub availability_target: Decimal,
    pub cycle_minutes: i64,
    /// A cycle fails when a rate reaches (≥) this fraction: 0.001.
    pub failure_threshold: Decimal,
    pub multiplier: Decimal,
    /// 30 days = 43,200 minutes, the service period behind the per-minute fee.
    pub period_minutes: Decimal,
    /// Delivery deadline for the first due notification, in seconds (5 minutes).
    pub delivery_deadline_secs: i64,
    pub claim_opens_after_working_day: u32,
    pub claim_months: i32,
    /// A cycle is excluded when an exclusion covers at least this many of its seconds.
    pub exclusion_min_overlap_secs: i64,
}

impl Default for SlaParams {
    fn default() -> Self {
        SlaParams {
            availability_target: dec!(0.999),
            cycle_minutes: 5,
            failure_threshold: dec!(0.001),
            multiplier: dec!(10),
            period_minutes: dec!(43200),
            delivery_deadline_secs: 300,
            claim_opens_after_working_day: 5,
            claim_months: 2,
            exclusion_min_overlap_secs: 150,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    pub trial_days: i64,
    pub trial_max_days: i64,
    pub trial_licences: u32,
    pub renewal_lead_hours: i64,
    pub expiry_reminder_days: i64,
    pub reminder_time: Time,
    pub order_payment_window_hours: i64,
    pub bank_transfer_payment_window_days: i64,
    pub late_penalty_enabled: bool,
    pub late_penalty_rate_per_day: Decimal,
    pub late_penalty_cap_ratio: Option<Decimal>,
    pub overdue_grace_days: i64,
    pub buffer_days: i64,
    pub release_undo_window_hours: i64,
    pub backup_retention_max_days: i64,
    pub operator_termination_notice_days: i64,
    pub adverse_change_notice_days: i64,
    pub maintenance_notice_hours: i64,
    pub sla: SlaParams,
    pub outage_hours: i64,
    pub unusable_threshold: Decimal,
    pub outage_exercise_window_days: i64,
    pub bonus_validity_months: i32,
    pub comm_overdraft_limit: Decimal,
    pub access_grant_default_days: i64,
    pub access_grant_max_days: i64,
    pub liability_lookback_months: i32,
    pub dormant_login_months: i32,
    pub evidence_retention_years: i32,
    pub billing_record_retention_years: i32,
    pub postpaid_min_balance: Decimal,
    pub refund_on_customer_cancel: CancelRefund,
}

impl Default for Params {
    fn default() -> Self {
        Params::cloud_defaults()
    }
}

impl Params {
    /// The §0.6 table, value for value.
    pub fn cloud_defaults() -> Self {
        Params {
            trial_days: 14,
            trial_max_days: 60,
            trial_licences: 50,
            renewal_lead_hours: 24,
            expiry_reminder_days: 5,
            reminder_time: time(10, 0, 0, 0),
            order_payment_window_hours: 24,
            bank_transfer_payment_window_days: 7,
            late_penalty_enabled: true,
            late_penalty_rate_per_day: dec!(0.0005),
            late_penalty_cap_ratio: None,
            overdue_grace_days: 7,
            buffer_days: 30,
            release_undo_window_hours: 24,
            backup_retention_max_days: 35,
            operator_termination_notice_days: 30,
            adverse_change_notice_days: 30,
            maintenance_notice_hours: 48,
            sla: SlaParams::default(),
            outage_hours: 72,
            unusable_threshold: dec!(0.5),
            outage_exercise_window_days: 30,
            bonus_validity_months: 12,
            comm_overdraft_limit: Decimal::ZERO,
            access_grant_default_days: 7,
            access_grant_max_days: 30,
            liability_lookback_months: 12,
            dormant_login_months: 12,
            evidence_retention_years: 3,
            billing_record_retention_years: 10,
            postpaid_min_balance: Decimal::ZERO,
            refund_on_customer_cancel: CancelRefund::None,
        }
    }

    /// Bounds from the spec: buffer 7–180 days (SVC-187), grace 0–30 days (OQ-04), trial
    /// extensions never shorter than the trial, rates and ratios non-negative, SLA cycle
    /// dividing the hour, notice leads never below the defaults' legal minimums.
    pub fn validate(&self) -> Result<()> {
        fn range(field: &'static str, v: i64, lo: i64, hi: i64) -> Result<()> {
            if v < lo || v > hi {
                return Err(SaasError::invalid(
                    field,
                    format!("{v} is outside {lo}..={hi}"),
                ));
            }
            Ok(())
        }
        fn non_negative(field: &'static str, v: Decimal) -> Result<()> {
            if v.is_sign_negative() && !v.is_zero() {
                return Err(SaasError::invalid(field, format!("{v} is negative")));
            }
            Ok(())
        }
        range("buffer_days", self.buffer_days, 7, 180)?;
        range("overdue_grace_days", self.overdue_grace_days, 0, 30)?;
        range("trial_days", self.trial_days, 1, 365)?;
        range("trial_max_days", self.trial_max_days, self.trial_days, 365)?;
        range("expiry_reminder_days", self.expiry_reminder_days, 0, 60)?;
        range(
            "access_grant_default_days",
            self.access_grant_default_days,
            1,
            self.access_grant_max_days,
        )?;
        range("sla.cycle_minutes", self.sla.cycle_minutes, 1, 60)?;
        if 60 % self.sla.cycle_minutes != 0 {
            return Err(SaasError::invalid(
                "sla.cycle_minutes",
                "must divide the hour so cycles align on :00",
            ));
        }
        range(
            "sla.exclusion_min_overlap_secs",
            self.sla.exclusion_min_overlap_secs,
            1,
            self.sla.cycle_minutes * 60,
        )?;
        range("outage_hours", self.outage_hours, 1, 24 * 30)?;
        if (self.outage_hours * 60) % self.sla.cycle_minutes != 0 {
            return Err(SaasError::invalid(
                "outage_hours",
                "must be a whole number of SLA cycles",
            ));
        }
        non_negative("late_penalty_rate_per_day", self.late_penalty_rate_per_day)?;
        if let Some(cap) = self.late_penalty_cap_ratio {
            non_negative("late_penalty_cap_ratio", cap)?;
        }
        non_negative("comm_overdraft_limit", self.comm_overdraft_limit)?;
        non_negative("postpaid_min_balance", self.postpaid_min_balance)?;
        if self.sla.failure_threshold <= Decimal::ZERO || self.sla.failure_threshold > Decimal::ONE
        {
            return Err(SaasError::invalid(
                "sla.failure_threshold",
                "must be in (0, 1]",
            ));
        }
        if self.unusable_threshold <= Decimal::ZERO || self.unusable_threshold > Decimal::ONE {
            return Err(SaasError::invalid(
                "unusable_threshold",
                "must be in (0, 1]",
            ));
        }
        if self.bonus_validity_months < 1 {
            return Err(SaasError::invalid("bonus_validity_months", "must be ≥ 1"));
        }
        Ok(())
    }

    /// SLA cycles in the 72-hour rule: 72 h / 5 min = 864 (SVC-261).
    pub fn outage_cycles(&self) -> i64 {
        self.outage_hours * 60 / self.sla.cycle_minutes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_section_0_6_table() {
        // spec: SVC-131 (0.0005 per day)
        // spec: SVC-137 (7 days grace)
        // spec: SVC-187 (30 days buffer)
        let p = Params::cloud_defaults();
        assert_eq!(p.late_penalty_rate_per_day, dec!(0.0005));
        assert_eq!(p.overdue_grace_days, 7);
        assert_eq!(p.buffer_days, 30);
        assert_eq!(p.trial_days, 14);
        assert_eq!(p.trial_max_days, 60);
        assert_eq!(p.trial_licences, 50);
        assert_eq!(p.sla.availability_target, dec!(0.999));
        assert_eq!(p.outage_cycles(), 864);
        assert_eq!(p.late_penalty_cap_ratio, None);
        assert!(p.validate().is_ok());
    }

    #[test]
    fn bounds_are_enforced_with_the_field_named() {
        // spec: SVC-187 (never below 7)
        let mut p = Params::cloud_defaults();
        p.buffer_days = 6;
        let e = p.validate().unwrap_err();
        assert!(e.to_string().contains("buffer_days"), "{e}");
        let mut p = Params::cloud_defaults();
        p.overdue_grace_days = 31;
        assert!(
            p.validate()
                .unwrap_err()
                .to_string()
                .contains("overdue_grace_days")
        );
        let mut p = Params::cloud_defaults();
        p.late_penalty_rate_per_day = dec!(-0.1);
        assert!(p.validate().is_err());
        let mut p = Params::cloud_defaults();
        p.sla.cycle_minutes = 7;
        assert!(p.validate().is_err());
    }
}
