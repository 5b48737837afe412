//! Communication quota: metered units, pooled allowance, consumption order, overage and the
//! funds check (SVC-070 … SVC-076).

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::error::{Result, SaasError};
use crate::money::Currency;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitType {
    Sms,
    Voice,
    Email,
}

/// SVC-070: units for a voice call — one when connected, plus one per started 60 s after
/// the first minute; unconnected calls count 0.
pub fn voice_units(connected: bool, duration_secs: u64) -> u64 {
    if !connected {
        return 0;
    }
    1 + duration_secs.saturating_sub(60).div_ceil(60)
}

/// SVC-070: what happened to a unit at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderOutcome {
    Accepted,
    Rejected,
    /// The platform's own retry after its own failure: never counted twice.
    PlatformRetry,
    CallConnected {
        duration_secs: u64,
    },
    CallUnconnected,
}

pub fn counted_units(outcome: ProviderOutcome) -> u64 {
    match outcome {
        ProviderOutcome::Accepted => 1,
        ProviderOutcome::CallConnected { duration_secs } => voice_units(true, duration_secs),
        ProviderOutcome::Rejected
        | ProviderOutcome::PlatformRetry
        | ProviderOutcome::CallUnconnected => 0,
    }
}

/// SVC-071: allowance pool for one unit type in one cycle = per-licence allowance × L.
/// Prepaid: L = the largest licence pool in force in the cycle; postpaid: active members so
/// far; trial and Free use their fixed allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowanceBasis {
    Prepaid {
        per_licence: u64,
        largest_pool_in_cycle: u32,
    },
    Postpaid {
        per_licence: u64,
        active_so_far: u32,
    },
    Fixed {
        allowance: u64,
    },
}

pub fn allowance_pool(basis: AllowanceBasis) -> u64 {
    match basis {
        AllowanceBasis::Prepaid {
            per_licence,
            largest_pool_in_cycle,
        } => per_licence * u64::from(largest_pool_in_cycle),
        AllowanceBasis::Postpaid {
            per_licence,
            active_so_far,
        } => per_licence * u64::from(active_so_far),
        AllowanceBasis::Fixed { allowance } => allowance,
    }
}

/// A purchased communication pack (SVC-072).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pack {
    pub id: u64,
    pub unit: UnitType,
    pub remaining: u64,
    pub expires_at: Timestamp,
}

/// Where a unit was drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Allowance,
    Pack(u64),
    Overage,
}

/// One unit type's meter within a cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meter {
    pub unit: UnitType,
    pub pool: u64,
    pub used_allowance: u64,
    pub overage: u64,
    notified: [bool; 2],
}

impl Meter {
    pub fn new(unit: UnitType, pool: u64) -> Self {
        Meter {
            unit,
            pool,
            used_allowance: 0,
            overage: 0,
            notified: [false; 2],
        }
    }

    /// SVC-071: an add-on raises the pool at once.
    pub fn raise_pool(&mut self, pool: u64) {
        self.pool = self.pool.max(pool);
    }

    /// SVC-072: allowance first, then packs (earliest expiry first), then overage.
    pub fn consume(&mut self, at: Timestamp, packs: &mut [Pack]) -> Source {
        if self.used_allowance < self.pool {
            self.used_allowance += 1;
            return Source::Allowance;
        }
        let mut best: Option<&mut Pack> = None;
        for p in packs.iter_mut() {
            if p.unit == self.unit && p.remaining > 0 && p.expires_at > at {
                let better = match &best {
                    None => true,
                    Some(b) => (p.expires_at, p.id) < (b.expires_at, b.id),
                };
                if better {
                    best = Some(p);
                }
            }
        }
        if let Some(p) = best {
            p.remaining -= 1;
            return Source::Pack(p.id);
        }
        self.overage += 1;
        Source::Overage
    }

    /// Would the next unit be overage (then SVC-074's funds check applies first)?
    pub fn next_is_overage(&self, at: Timestamp, packs: &[Pack]) -> bool {
        self.used_allowance >= self.pool
            && !packs
                .iter()
                .any(|p| p.unit == self.unit && p.remaining > 0 && p.expires_at > at)
    }

    /// SVC-075: thresholds (80 %, 100 %) crossed for the first time this cycle.
    pub fn usage_notices(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.pool == 0 {
            return out;
        }
        for (i, pct) in [80u8, 100].iter().enumerate() {
            if !self.notified[i] && self.used_allowance * 100 >= self.pool * u64::from(*pct) {
                self.notified[i] = true;
                out.push(*pct);
            }
        }
        out
    }
}

/// SVC-073: overage of one day and type, priced at the unit price in force when sent and
/// rounded once when posted.
pub fn overage_charge(units_by_price: &[(u64, Decimal)], currency: Currency) -> Decimal {
    currency.round(
        units_by_price
            .iter()
            .map(|(n, p)| Decimal::from(*n) * *p)
            .sum(),
    )
}

/// SVC-074 inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FundsCheck {
    pub cash: Decimal,
    pub eligible_bonus: Decimal,
    /// Rated but not yet settled charges, including units already reserved.
    pub unsettled: Decimal,
    pub overdraft_limit: Decimal,
    pub trial: bool,
}

impl FundsCheck {
    /// available = cash + eligible bonus − unsettled + overdraft; trial tenants behave as if
    /// funds were 0 and never incur overage (SVC-074, SVC-162).
    pub fn available(&self) -> Decimal {
        if self.trial {
            return Decimal::ZERO;
        }
        self.cash + self.eligible_bonus - self.unsettled + self.overdraft_limit
    }

    /// Reserve funds for one overage unit at `price`. On success the reservation is added to
    /// `unsettled` (so concurrent sends see it); otherwise the unit must be skipped and the
    /// step goes out on unmetered channels (`failed_reason = quota_exhausted`).
    pub fn reserve(&mut self, price: Decimal) -> Result<()> {
        if price.is_sign_negative() {
            return Err(SaasError::invalid("price", "negative unit price"));
        }
        if price.is_zero() {
            return Ok(());
        }
        if self.trial || self.available() < price {
            return Err(SaasError::refused(
                "SVC-074",
                format!(
                    "quota_exhausted: allowance used and funds {} below unit price {price}",
                    self.available()
                ),
            ));
        }
        self.unsettled += price;
        Ok(())
    }
}

/// SVC-076: operator messages (reminders, billing and legal notices) are never metered.
pub fn is_metered(sender_is_operator: bool, unit: UnitType, email_price: Decimal) -> bool {
    !sender_is_operator && (unit != UnitType::Email || email_price > Decimal::ZERO)
}
