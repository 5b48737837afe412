//! Negotiated terms (SVC-012): the whitelist of parameters a signed contract may override,
//! with the floors no override can remove.

use rust_decimal::Decimal;

use crate::error::{Result, SaasError};
use crate::params::Params;

/// Only these may be overridden. Full export, deletion by the tenant, no staff access
/// without a grant, and notice records are not parameters at all, so no override can
/// reach them (the SVC-012 floors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Override {
    BufferDays(i64),
    OverdueGraceDays(i64),
    LatePenaltyRatePerDay(Decimal),
    CommOverdraftLimit(Decimal),
    SlaAvailabilityTarget(Decimal),
    SlaMultiplier(Decimal),
    AccessGrantMaxDays(i64),
    /// Notice lead times may only be made longer than the defaults.
    OperatorTerminationNoticeDays(i64),
    AdverseChangeNoticeDays(i64),
    MaintenanceNoticeHours(i64),
}

/// Applies a contract's overrides to the operator parameters; refuses the whole set when
/// any override shortens a notice or breaks a bound (nothing is half-applied).
pub fn apply(base: &Params, overrides: &[Override]) -> Result<Params> {
    let mut p = base.clone();
    for o in overrides {
        match o {
            Override::BufferDays(v) => p.buffer_days = *v,
            Override::OverdueGraceDays(v) => p.overdue_grace_days = *v,
            Override::LatePenaltyRatePerDay(v) => p.late_penalty_rate_per_day = *v,
            Override::CommOverdraftLimit(v) => p.comm_overdraft_limit = *v,
            Override::SlaAvailabilityTarget(v) => p.sla.availability_target = *v,
            Override::SlaMultiplier(v) => p.sla.multiplier = *v,
            Override::AccessGrantMaxDays(v) => p.access_grant_max_days = *v,
            Override::OperatorTerminationNoticeDays(v) => {
                longer(
                    "operator_termination_notice_days",
                    *v,
                    base.operator_termination_notice_days,
                )?;
                p.operator_termination_notice_days = *v;
            }
            Override::AdverseChangeNoticeDays(v) => {
                longer(
                    "adverse_change_notice_days",
                    *v,
                    base.adverse_change_notice_days,
                )?;
                p.adverse_change_notice_days = *v;
            }
            Override::MaintenanceNoticeHours(v) => {
                longer(
                    "maintenance_notice_hours",
                    *v,
                    base.maintenance_notice_hours,
                )?;
                p.maintenance_notice_hours = *v;
            }
        }
    }
    p.validate()?;
    Ok(p)
}

fn longer(field: &'static str, v: i64, default: i64) -> Result<()> {
    if v < default {
        return Err(SaasError::invalid(
            field,
            format!(
                "{v} is shorter than the default {default}; contracts may only lengthen notice"
            ),
        ));
    }
    Ok(())
}
