//! Deployment mode and billing profile (§21, SVC-400 … SVC-405).
//!
//! The default install is self-hosted: every tenant is `exempt`, and every question this
//! crate answers about billing, quota, licences, penalties, SLA compensation or liability is
//! answered "does not apply". Only a `cloud` deployment with a `commercial` tenant is billed.

use serde::{Deserialize, Serialize};

use crate::error::{Result, SaasError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentMode {
    #[default]
    SelfHosted,
    Cloud,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingProfile {
    Exempt,
    Commercial,
}

/// The rule groups of the SVC-403 table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleGroup {
    /// §4 licences, §5 quota, §6 price list and ledger, §7 prepaid, §8 postpaid, §9 overdue
    /// and penalty, §10 promotions and bonus, §11 trial.
    Commerce,
    /// §16 termination rules.
    Termination,
    /// §17 extended outage right.
    ExtendedOutage,
    /// §18 SLA compensation and claims.
    SlaCompensation,
    /// §18 measurements (271–276) as an internal SLO report.
    SlaMeasurement,
    /// §19 liability figure.
    LiabilityFigure,
    /// §13 export, deletion, release, purge, legal hold.
    DataLifecycle,
}

/// Whether a rule group applies to one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    Yes,
    No,
}

/// Mode plus the tenant's profile: the one thing every billed rule asks first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Regime {
    mode: DeploymentMode,
    profile: BillingProfile,
}

impl Regime {
    /// SVC-401: the profile a new tenant gets — `commercial` in cloud, `exempt` self-hosted.
    pub fn for_new_tenant(mode: DeploymentMode) -> Self {
        let profile = match mode {
            DeploymentMode::SelfHosted => BillingProfile::Exempt,
            DeploymentMode::Cloud => BillingProfile::Commercial,
        };
        Regime { mode, profile }
    }

    pub fn mode(&self) -> DeploymentMode {
        self.mode
    }

    pub fn profile(&self) -> BillingProfile {
        self.profile
    }

    /// SVC-401: staff may mark cloud tenants exempt (with a reason) or convert them back;
    /// self-hosted tenants are exempt for good.
    pub fn set_profile(&self, profile: BillingProfile, reason: &str) -> Result<Regime> {
        if self.mode == DeploymentMode::SelfHosted && profile == BillingProfile::Commercial {
            return Err(SaasError::NotApplicable {
                what: "commercial billing profile",
                why: "every tenant of a self-hosted install is exempt",
            });
        }
        if reason.trim().is_empty() {
            return Err(SaasError::invalid(
                "reason",
                "a profile change needs a reason",
            ));
        }
        Ok(Regime {
            mode: self.mode,
            profile,
        })
    }

    /// SVC-405: switching the install's mode. To self-hosted: everyone becomes exempt. To
    /// cloud: existing tenants stay exempt until staff convert each one.
    pub fn after_mode_change(&self, mode: DeploymentMode) -> Regime {
        Regime {
            mode,
            profile: match mode {
                DeploymentMode::SelfHosted => BillingProfile::Exempt,
                DeploymentMode::Cloud => self.profile,
            },
        }
    }

    /// True only for a commercial tenant of a cloud deployment.
    pub fn is_billed(&self) -> bool {
        self.mode == DeploymentMode::Cloud && self.profile == BillingProfile::Commercial
    }

    /// SVC-402/403: which rule groups apply to this tenant.
    pub fn applies(&self, group: RuleGroup) -> Applies {
        let yes = match group {
            RuleGroup::DataLifecycle | RuleGroup::SlaMeasurement => true,
            RuleGroup::Commerce
            | RuleGroup::Termination
            | RuleGroup::ExtendedOutage
            | RuleGroup::SlaCompensation
            | RuleGroup::LiabilityFigure => self.is_billed(),
        };
        if yes { Applies::Yes } else { Applies::No }
    }

    /// Returns an error naming the rule group when it does not apply, so billed operations
    /// can start with `regime.require(RuleGroup::Commerce, "…")?`.
    pub fn require(&self, group: RuleGroup, what: &'static str) -> Result<()> {
        match self.applies(group) {
            Applies::Yes => Ok(()),
            Applies::No => Err(SaasError::NotApplicable {
                what,
                why: match self.mode {
                    DeploymentMode::SelfHosted => {
                        "self-hosted installs have no billing, quota, licences or SLA compensation"
                    }
                    DeploymentMode::Cloud => "the tenant is exempt",
                },
            }),
        }
    }

    /// SVC-402: licence enforcement is off for exempt tenants — every member is licensed.
    pub fn licence_enforced(&self) -> bool {
        self.is_billed()
    }

    /// SVC-402: no allowance, overage or funds check for exempt tenants; SMS/voice go through
    /// the company's own providers at its own cost.
    pub fn quota_metered(&self) -> bool {
        self.is_billed()
    }

    /// SVC-402: no ledger, orders, trial clock, expiry, overdue or penalty for exempt
    /// tenants: their state is always `active`.
    pub fn billing_applies(&self) -> bool {
        self.is_billed()
    }
}

/// What a cloud deployment must be configured with before it starts (SVC-400).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudStartup {
    pub operator_identity: Option<String>,
    pub regions: Vec<String>,
    pub billing_tz: Option<String>,
    pub terms_of_service_in_force: bool,
    pub user_agreement_in_force: bool,
    pub data_protection_in_force: bool,
    pub sla_in_force: bool,
    pub price_list: bool,
    pub support_address: Option<String>,
}

impl CloudStartup {
    /// SVC-400: `cloud` refuses to start without each of these; the error names the first
    /// missing setting. The time zone must be a real IANA zone.
    pub fn check(&self) -> Result<()> {
        fn present(field: &'static str, v: &Option<String>) -> Result<()> {
            match v {
                Some(s) if !s.trim().is_empty() => Ok(()),
                _ => Err(SaasError::invalid(field, "required in cloud mode")),
            }
        }
        fn flag(field: &'static str, v: bool) -> Result<()> {
            if v {
                Ok(())
            } else {
                Err(SaasError::invalid(field, "required in cloud mode"))
            }
        }
        present("operator_identity", &self.operator_identity)?;
        if self.regions.iter().all(|r| r.trim().is_empty()) {
            return Err(SaasError::invalid(
                "regions",
                "at least one region is required in cloud mode",
            ));
        }
        present("billing_tz", &self.billing_tz)?;
        if let Some(tz) = &self.billing_tz {
            jiff::tz::TimeZone::get(tz)
                .map_err(|e| SaasError::invalid("billing_tz", format!("{tz:?}: {e}")))?;
        }
        flag("terms_of_service", self.terms_of_service_in_force)?;
        flag("user_agreement", self.user_agreement_in_force)?;
        flag("data_protection", self.data_protection_in_force)?;
        flag("sla", self.sla_in_force)?;
        flag("price_list", self.price_list)?;
        present("support_address", &self.support_address)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_hosted_is_the_default_and_never_billed() {
        // spec: SVC-400
        // spec: SVC-401
        // spec: SVC-402
        // spec: SVC-403
        assert_eq!(DeploymentMode::default(), DeploymentMode::SelfHosted);
        let r = Regime::for_new_tenant(DeploymentMode::SelfHosted);
        assert_eq!(r.profile(), BillingProfile::Exempt);
        assert!(!r.is_billed());
        assert!(!r.licence_enforced());
        assert!(!r.quota_metered());
        assert!(!r.billing_applies());
        for g in [
            RuleGroup::Commerce,
            RuleGroup::Termination,
            RuleGroup::ExtendedOutage,
            RuleGroup::SlaCompensation,
            RuleGroup::LiabilityFigure,
        ] {
            assert_eq!(r.applies(g), Applies::No, "{g:?}");
            assert!(r.require(g, "x").is_err());
        }
        assert_eq!(r.applies(RuleGroup::DataLifecycle), Applies::Yes);
        assert_eq!(r.applies(RuleGroup::SlaMeasurement), Applies::Yes);
        assert!(r.set_profile(BillingProfile::Commercial, "sell").is_err());
    }

    #[test]
    fn cloud_tenants_are_commercial_unless_marked_exempt() {
        // spec: SVC-401
        let r = Regime::for_new_tenant(DeploymentMode::Cloud);
        assert!(r.is_billed());
        assert!(r.set_profile(BillingProfile::Exempt, " ").is_err());
        let ex = r
            .set_profile(BillingProfile::Exempt, "operator's own tenant")
            .unwrap();
        assert!(!ex.is_billed());
        assert_eq!(ex.applies(RuleGroup::Commerce), Applies::No);
    }

    #[test]
    fn mode_changes() {
        // spec: SVC-405
        let cloud = Regime::for_new_tenant(DeploymentMode::Cloud);
        assert_eq!(
            cloud
                .after_mode_change(DeploymentMode::SelfHosted)
                .profile(),
            BillingProfile::Exempt
        );
        let sh = Regime::for_new_tenant(DeploymentMode::SelfHosted);
        let now_cloud = sh.after_mode_change(DeploymentMode::Cloud);
        assert_eq!(now_cloud.profile(), BillingProfile::Exempt);
        assert!(!now_cloud.is_billed());
    }

    #[test]
    fn cloud_refuses_to_start_without_its_configuration() {
        // spec: SVC-400
        let mut c = CloudStartup {
            operator_identity: Some("Op Ltd".into()),
            regions: vec!["cn-north".into()],
            billing_tz: Some("Asia/Shanghai".into()),
            terms_of_service_in_force: true,
            user_agreement_in_force: true,
            data_protection_in_force: true,
            sla_in_force: true,
            price_list: true,
            support_address: Some("support@example.com".into()),
        };
        assert!(c.check().is_ok());
        c.billing_tz = Some("Mars/Olympus".into());
        assert!(c.check().unwrap_err().to_string().contains("billing_tz"));
        c.billing_tz = Some("UTC".into());
        c.sla_in_force = false;
        assert!(c.check().unwrap_err().to_string().contains("sla"));
        assert!(
            CloudStartup::default()
                .check()
                .unwrap_err()
                .to_string()
                .contains("operator_identity")
        );
    }
}
