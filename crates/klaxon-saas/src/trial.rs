//! The free trial (SVC-160 … SVC-163).

use jiff::Timestamp;
use serde::Serialize;

use crate::calendar::add_24h_days;
use crate::error::{Result, SaasError};
use crate::params::Params;
use crate::state::{ServiceState, Trigger, transition};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Extension {
    pub days: i64,
    pub reason: String,
    pub staff: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trial {
    pub started_at: Timestamp,
    pub base_days: i64,
    pub extensions: Vec<Extension>,
}

impl Trial {
    /// SVC-160: starts at the tenant's creation instant; `one_trial_per_entity` can deny it.
    pub fn start(
        created_at: Timestamp,
        p: &Params,
        entity_already_had_trial: bool,
        one_trial_per_entity: bool,
    ) -> Result<Trial> {
        if one_trial_per_entity && entity_already_had_trial {
            return Err(SaasError::refused(
                "SVC-160",
                "this legal entity already had a trial",
            ));
        }
        Ok(Trial {
            started_at: created_at,
            base_days: p.trial_days,
            extensions: Vec::new(),
        })
    }

    pub fn total_days(&self) -> i64 {
        self.base_days + self.extensions.iter().map(|e| e.days).sum::<i64>()
    }

    /// SVC-160: exactly N × 24 h after creation, not rounded to midnight.
    pub fn ends_at(&self) -> Result<Timestamp> {
        add_24h_days(self.started_at, self.total_days())
    }

    /// SVC-161: staff extend on request; the total never exceeds `trial_max_days`.
    pub fn extend(
        &mut self,
        days: i64,
        reason: &str,
        staff: &str,
        p: &Params,
    ) -> Result<Timestamp> {
        if days <= 0 {
            return Err(SaasError::invalid(
                "days",
                "an extension adds at least one day",
            ));
        }
        if reason.trim().is_empty() || staff.trim().is_empty() {
            return Err(SaasError::invalid(
                "reason",
                "an extension records its reason and staff member",
            ));
        }
        if self.total_days() + days > p.trial_max_days {
            return Err(SaasError::refused(
                "SVC-161",
                format!(
                    "trial would last {} days; the maximum is {}",
                    self.total_days() + days,
                    p.trial_max_days
                ),
            ));
        }
        self.extensions.push(Extension {
            days,
            reason: reason.to_string(),
            staff: staff.to_string(),
        });
        self.ends_at()
    }
}

/// SVC-106 tenant setting `on_expiry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExpiry {
    Stop,
    DowngradeToFree,
}

/// SVC-106: `downgrade_to_free` may be chosen only when the operator offers Free.
pub fn check_on_expiry(choice: OnExpiry, free_offered: bool) -> Result<()> {
    if choice == OnExpiry::DowngradeToFree && !free_offered {
        return Err(SaasError::invalid(
            "on_expiry",
            "downgrade_to_free needs the Free edition, which is not offered",
        ));
    }
    Ok(())
}

/// SVC-106: what a prepaid term's end without a paid successor does.
pub fn at_term_end(
    state: ServiceState,
    choice: OnExpiry,
    free_offered: bool,
) -> Result<ServiceState> {
    check_on_expiry(choice, free_offered)?;
    transition(
        state,
        Trigger::TermEnd {
            downgrade_to_free: choice == OnExpiry::DowngradeToFree,
        },
    )
}

/// SVC-162: at the end, never an automatic charge; a paid order made the tenant active
/// already; otherwise the expiry policy decides (Free or `ended(trial_ended)`).
pub fn at_trial_end(state: ServiceState, downgrade_to_free: bool) -> Result<ServiceState> {
    match state {
        ServiceState::Trial => transition(state, Trigger::TermEnd { downgrade_to_free }),
        other => Ok(other),
    }
}
