//! Editions, licence pools, licensed actions and active users (SVC-050 … SVC-059).

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::error::{Result, SaasError};
use crate::mode::Regime;

pub type MemberId = String;

/// SVC-050 catalogue; `Unlimited` is the exempt tenant's edition (SVC-402).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Edition {
    Free,
    Trial,
    Standard,
    Pro,
    Unlimited,
}

impl Edition {
    /// SVC-050/163: only Standard and Pro carry the SLA.
    pub fn sla_eligible(&self) -> bool {
        matches!(self, Edition::Standard | Edition::Pro)
    }

    /// Rank for "the highest edition held in the cycle" (SVC-059).
    pub fn rank(&self) -> u8 {
        match self {
            Edition::Free => 0,
            Edition::Trial => 1,
            Edition::Standard => 2,
            Edition::Pro => 3,
            Edition::Unlimited => 4,
        }
    }
}

/// SVC-051: how big the pool is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolSize {
    Limited(u32),
    Unlimited,
}

/// SVC-051 by billing situation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolBasis {
    /// Base + add-ons in force.
    Prepaid {
        licences_in_force: u32,
    },
    /// Unlimited unless the tenant set `postpaid_licence_cap`.
    Postpaid {
        cap: Option<u32>,
    },
    Trial {
        trial_licences: u32,
    },
    Free {
        edition_limit: u32,
    },
    /// SVC-402: licence enforcement off.
    Exempt,
}

pub fn pool_size(basis: PoolBasis) -> PoolSize {
    match basis {
        PoolBasis::Prepaid { licences_in_force } => PoolSize::Limited(licences_in_force),
        PoolBasis::Postpaid { cap: Some(c) } => PoolSize::Limited(c),
        PoolBasis::Postpaid { cap: None } | PoolBasis::Exempt => PoolSize::Unlimited,
        PoolBasis::Trial { trial_licences } => PoolSize::Limited(trial_licences),
        PoolBasis::Free { edition_limit } => PoolSize::Limited(edition_limit),
    }
}

/// SVC-052: who is doing what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Member(MemberId),
    /// A tenant-level API key: never needs a licence, never makes anyone active.
    TenantKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Viewing lists/details, analytics, war rooms; incident actions; operational
    /// configuration (SVC-052 "needs a licence").
    Licensed,
    /// Receiving notifications, being a target, signing in, administration.
    Unlicensed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    NotNeeded,
    AlreadyHeld,
    /// A temporary licence was taken from the pool before the action ran (SVC-055).
    Temporary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Fixed,
    Temporary,
}

/// One cycle's active member (SVC-053).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveMember {
    pub member: MemberId,
    pub first_licensed_action: Option<Timestamp>,
}

/// A tenant's licence pool within the current licence cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicencePool {
    size: PoolSize,
    enforced: bool,
    auto_assign_temporary: bool,
    holders: BTreeMap<MemberId, (Kind, Timestamp)>,
    /// Members who held a licence at any moment of this cycle, with their first licensed
    /// action.
    active: BTreeMap<MemberId, Option<Timestamp>>,
    /// Members refused for lack of a licence this cycle (SVC-058 message once per cycle).
    refused_once: bool,
}

impl LicencePool {
    pub fn new(size: PoolSize, regime: Regime, auto_assign_temporary: bool) -> Self {
        LicencePool {
            size: if regime.licence_enforced() {
                size
            } else {
                PoolSize::Unlimited
            },
            enforced: regime.licence_enforced(),
            auto_assign_temporary,
            holders: BTreeMap::new(),
            active: BTreeMap::new(),
            refused_once: false,
        }
    }

    pub fn size(&self) -> PoolSize {
        self.size
    }

    pub fn in_use(&self) -> u32 {
        self.holders.len() as u32
    }

    pub fn free(&self) -> Option<u32> {
        match self.size {
            PoolSize::Limited(n) => Some(n.saturating_sub(self.in_use())),
            PoolSize::Unlimited => None,
        }
    }

    pub fn holder(&self, m: &str) -> Option<Kind> {
        self.holders.get(m).map(|h| h.0)
    }

    fn has_free(&self) -> bool {
        self.free().is_none_or(|f| f > 0)
    }

    /// SVC-051/061: the pool grows at once (add-on) — it may not shrink below holders.
    pub fn resize(&mut self, size: PoolSize) -> Result<()> {
        if !self.enforced {
            return Ok(());
        }
        if let PoolSize::Limited(n) = size
            && n < self.in_use()
        {
            return Err(SaasError::refused(
                "SVC-061",
                format!(
                    "{} licences are held; the pool cannot shrink to {n}",
                    self.in_use()
                ),
            ));
        }
        self.size = size;
        Ok(())
    }

    /// SVC-054: assign a fixed licence (owner or Account.Admin). A temporary holder is
    /// converted; otherwise a free licence is needed.
    pub fn assign_fixed(&mut self, m: &str, at: Timestamp) -> Result<()> {
        match self.holders.get(m).map(|h| h.0) {
            Some(Kind::Fixed) => return Ok(()),
            Some(Kind::Temporary) => {}
            None if !self.has_free() => {
                return Err(SaasError::NoLicense {
                    capacity: self.capacity(),
                });
            }
            None => {}
        }
        self.holders.insert(m.to_string(), (Kind::Fixed, at));
        self.active.entry(m.to_string()).or_insert(None);
        Ok(())
    }

    /// SVC-055: admins may also assign temporary licences by hand.
    pub fn assign_temporary(&mut self, m: &str, at: Timestamp) -> Result<()> {
        if self.holders.contains_key(m) {
            return Ok(());
        }
        if !self.has_free() {
            return Err(SaasError::NoLicense {
                capacity: self.capacity(),
            });
        }
        self.holders.insert(m.to_string(), (Kind::Temporary, at));
        self.active.entry(m.to_string()).or_insert(None);
        Ok(())
    }

    fn capacity(&self) -> u32 {
        match self.size {
            PoolSize::Limited(n) => n,
            PoolSize::Unlimited => u32::MAX,
        }
    }

    /// SVC-054: revoking, disabling or deleting a member frees the licence at once; the
    /// member stays active for the current cycle.
    pub fn release(&mut self, m: &str) -> bool {
        self.holders.remove(m).is_some()
    }

    /// SVC-052/055: run a licensed action. Unlicensed members get a temporary licence
    /// atomically when one is free and `auto_assign_temporary` is on; otherwise NoLicense.
    /// In an exempt tenant every member is licensed (SVC-402) but still reported active.
    pub fn authorize(&mut self, actor: &Actor, action: Action, at: Timestamp) -> Result<Grant> {
        let m = match (actor, action) {
            (Actor::TenantKey, _) | (_, Action::Unlicensed) => return Ok(Grant::NotNeeded),
            (Actor::Member(m), Action::Licensed) => m.clone(),
        };
        let grant = if self.holders.contains_key(&m) || !self.enforced {
            Grant::AlreadyHeld
        } else if self.auto_assign_temporary && self.has_free() {
            self.holders.insert(m.clone(), (Kind::Temporary, at));
            Grant::Temporary
        } else {
            self.refused_once = true;
            return Err(SaasError::NoLicense {
                capacity: self.capacity(),
            });
        };
        let first = self.active.entry(m).or_insert(None);
        if first.is_none() {
            *first = Some(at);
        }
        Ok(grant)
    }

    /// SVC-106 `downgrade_to_free`: licences above the Free limit are released, temporary
    /// ones first, then the most recently assigned fixed ones. Returns who lost a licence.
    pub fn shrink_to(&mut self, limit: u32) -> Vec<MemberId> {
        let mut order: Vec<(MemberId, Kind, Timestamp)> = self
            .holders
            .iter()
            .map(|(m, (k, t))| (m.clone(), *k, *t))
            .collect();
        // Release order: temporaries before fixed, newest assignment first.
        order.sort_by(|a, b| {
            let rank = |k: Kind| if k == Kind::Temporary { 0 } else { 1 };
            rank(a.1)
                .cmp(&rank(b.1))
                .then(b.2.cmp(&a.2))
                .then(a.0.cmp(&b.0))
        });
        let excess = self.in_use().saturating_sub(limit) as usize;
        let released: Vec<MemberId> = order.into_iter().take(excess).map(|x| x.0).collect();
        for m in &released {
            self.holders.remove(m);
        }
        if self.enforced {
            self.size = PoolSize::Limited(limit);
        }
        released
    }

    /// SVC-058: whether admins should get the once-per-cycle shortage message.
    pub fn shortage_seen(&self) -> bool {
        self.refused_once
    }

    /// SVC-053/055: closes the cycle: reports who was active, releases every temporary
    /// licence, and opens the next cycle with the fixed holders already active.
    pub fn end_cycle(&mut self) -> Vec<ActiveMember> {
        let report = self
            .active
            .iter()
            .map(|(m, t)| ActiveMember {
                member: m.clone(),
                first_licensed_action: *t,
            })
            .collect();
        self.holders.retain(|_, h| h.0 == Kind::Fixed);
        self.active = self.holders.keys().map(|m| (m.clone(), None)).collect();
        self.refused_once = false;
        report
    }
}

/// SVC-059 edge case: a member counts for the postpaid charge only if some licence-holding
/// interval overlaps a time the tenant was serving (not `suspended`, not `ended`).
pub fn chargeable_active_members(
    holdings: &BTreeMap<MemberId, Vec<(Timestamp, Timestamp)>>,
    serving: &[(Timestamp, Timestamp)],
) -> BTreeSet<MemberId> {
    holdings
        .iter()
        .filter(|(_, ivs)| {
            ivs.iter()
                .any(|(a, b)| serving.iter().any(|(s, e)| a < e && s < b))
        })
        .map(|(m, _)| m.clone())
        .collect()
}

/// SVC-059/122: postpaid cycle charge = active members × the per-user price of the highest
/// edition held in the cycle; no pro-rating inside a cycle.
pub fn postpaid_licence_charge(
    active_members: usize,
    editions_held: &[Edition],
    per_user_price: impl Fn(Edition) -> Option<Decimal>,
) -> Result<Decimal> {
    let Some(highest) = editions_held.iter().max_by_key(|e| e.rank()) else {
        return Ok(Decimal::ZERO);
    };
    let price = per_user_price(*highest).ok_or_else(|| {
        SaasError::invalid(
            "price_list",
            format!("no postpaid per-user price for {highest:?}"),
        )
    })?;
    Ok(price * Decimal::from(active_members as u64))
}
