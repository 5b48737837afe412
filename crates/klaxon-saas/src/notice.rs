//! Notices to tenants (service-agreement.md §20, SVC-310 … SVC-316): the catalogue of notice
//! categories with their channels and criticality, who receives each, when a notice counts
//! as delivered, and how a notice period is counted. The store keeps each sending as an
//! immutable record; this module only decides.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::calendar::{deemed_delivery_date, earliest_effective_after_notice};
use crate::error::{Result, SaasError};

/// SVC-310: the channels of a formal notice. Voice is never one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Announcement,
    InApp,
    Email,
    Sms,
    /// Sent outside the platform and recorded by staff.
    Postal,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Channel::Announcement,
        Channel::InApp,
        Channel::Email,
        Channel::Sms,
        Channel::Postal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Announcement => "announcement",
            Channel::InApp => "in_app",
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Postal => "postal",
        }
    }

    pub fn parse(text: &str) -> Result<Channel> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == text)
            .ok_or_else(|| {
                SaasError::invalid(
                    "channel",
                    format!(
                        "{text:?} is not a notice channel (announcement, in_app, email, sms, postal; voice is never used, SVC-310)"
                    ),
                )
            })
    }
}

/// SVC-316: every event the operator must give notice of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// A new agreement version; `material` decides the e-mail and the criticality.
    AgreementVersion {
        material: bool,
    },
    /// A published, not yet effective version withdrawn (SVC-031).
    AgreementRetracted,
    AdverseChange,
    ExpiryReminder,
    AutoRenewFailed,
    BalanceLow,
    /// A postpaid cycle's statement (SVC-124).
    Statement,
    AllowanceThreshold,
    CommunicationSkipped,
    Overdue,
    Suspension,
    Restoration,
    ServiceEnded,
    PurgeWarning,
    PurgeCertificate,
    OperatorTermination,
    Maintenance,
    ExtendedOutage,
    AccessGrant,
    LawfulDisclosure,
    SecurityIncident,
    /// A legal hold placed or lifted (SVC-192; not in the SVC-316 table: decision).
    LegalHold,
    /// The owner's confirmation code of a closure asked for by e-mail (SVC-010).
    ClosureCode,
    /// A staff-assisted ownership transfer started or resumed (SVC-004).
    OwnershipTransfer,
    BonusExpiring,
    SlaClaimDecided,
    DormantLogin,
    /// SVC-214/238: the notification providers of a region changed.
    ProviderChange,
}

use Channel::{Announcement, Email, InApp, Postal, Sms};

impl Category {
    /// The stored name of the category.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::AgreementVersion { material: true } => "agreement_version_material",
            Category::AgreementVersion { material: false } => "agreement_version",
            Category::AgreementRetracted => "agreement_retracted",
            Category::AdverseChange => "adverse_change",
            Category::ExpiryReminder => "expiry_reminder",
            Category::AutoRenewFailed => "auto_renew_failed",
            Category::BalanceLow => "balance_low",
            Category::Statement => "statement",
            Category::AllowanceThreshold => "allowance_threshold",
            Category::CommunicationSkipped => "communication_skipped",
            Category::Overdue => "overdue",
            Category::Suspension => "suspension",
            Category::Restoration => "restoration",
            Category::ServiceEnded => "service_ended",
            Category::PurgeWarning => "purge_warning",
            Category::PurgeCertificate => "purge_certificate",
            Category::OperatorTermination => "operator_termination",
            Category::Maintenance => "maintenance",
            Category::ExtendedOutage => "extended_outage",
            Category::AccessGrant => "access_grant",
            Category::LawfulDisclosure => "lawful_disclosure",
            Category::SecurityIncident => "security_incident",
            Category::LegalHold => "legal_hold",
            Category::ClosureCode => "closure_code",
            Category::OwnershipTransfer => "ownership_transfer",
            Category::BonusExpiring => "bonus_expiring",
            Category::SlaClaimDecided => "sla_claim_decided",
            Category::DormantLogin => "dormant_login",
            Category::ProviderChange => "provider_change",
        }
    }

    /// Every category, for reading a stored name back.
    pub const ALL: [Category; 29] = [
        Category::AgreementVersion { material: false },
        Category::AgreementVersion { material: true },
        Category::AgreementRetracted,
        Category::AdverseChange,
        Category::ExpiryReminder,
        Category::AutoRenewFailed,
        Category::BalanceLow,
        Category::Statement,
        Category::AllowanceThreshold,
        Category::CommunicationSkipped,
        Category::Overdue,
        Category::Suspension,
        Category::Restoration,
        Category::ServiceEnded,
        Category::PurgeWarning,
        Category::PurgeCertificate,
        Category::OperatorTermination,
        Category::Maintenance,
        Category::ExtendedOutage,
        Category::AccessGrant,
        Category::LawfulDisclosure,
        Category::SecurityIncident,
        Category::LegalHold,
        Category::ClosureCode,
        Category::OwnershipTransfer,
        Category::BonusExpiring,
        Category::SlaClaimDecided,
        Category::DormantLogin,
        Category::ProviderChange,
    ];

    /// The category of a stored name ([`Category::as_str`]).
    pub fn parse(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The channels SVC-316 requires for this category, in-app first when it has one.
    /// Postal mail of an operator termination is optional and sent outside the platform.
    pub fn channels(self) -> &'static [Channel] {
        match self {
            Category::AgreementVersion { material: false } => &[Announcement, InApp],
            Category::AgreementVersion { material: true } => &[Announcement, InApp, Email],
            // A retraction reaches everyone the version's announcement reached (decision).
            Category::AgreementRetracted => &[Announcement, InApp],
            Category::AdverseChange => &[Announcement, InApp, Email],
            Category::ExpiryReminder => &[InApp, Email, Sms],
            Category::AutoRenewFailed
            | Category::BalanceLow
            | Category::Statement
            | Category::AllowanceThreshold
            | Category::Overdue
            | Category::Restoration
            | Category::AccessGrant
            | Category::BonusExpiring
            | Category::SlaClaimDecided
            | Category::LegalHold
            | Category::OwnershipTransfer => &[InApp, Email],
            Category::CommunicationSkipped
            | Category::Suspension
            | Category::ServiceEnded
            | Category::PurgeWarning
            | Category::ExtendedOutage
            | Category::SecurityIncident => &[InApp, Email, Sms],
            Category::PurgeCertificate | Category::LawfulDisclosure | Category::ClosureCode => {
                &[Email]
            }
            Category::OperatorTermination => &[InApp, Email, Sms, Postal],
            Category::Maintenance => &[Announcement, InApp, Email],
            Category::DormantLogin => &[Email, Sms],
            // SVC-238: changes are announced, shown in-app and e-mailed to owners.
            Category::ProviderChange => &[Announcement, InApp, Email],
        }
    }

    /// SVC-316 "critical": at least two channels plus in-app.
    pub fn critical(self) -> bool {
        match self {
            Category::AgreementVersion { material } => material,
            Category::AdverseChange
            | Category::CommunicationSkipped
            | Category::Suspension
            | Category::ServiceEnded
            | Category::PurgeWarning
            | Category::PurgeCertificate
            | Category::OperatorTermination
            | Category::ExtendedOutage
            | Category::LawfulDisclosure
            | Category::SecurityIncident => true,
            _ => false,
        }
    }

    /// SVC-313: billing categories also go to the billing contact.
    pub fn billing(self) -> bool {
        matches!(
            self,
            Category::ExpiryReminder
                | Category::AutoRenewFailed
                | Category::BalanceLow
                | Category::Statement
                | Category::AllowanceThreshold
                | Category::CommunicationSkipped
                | Category::Overdue
                | Category::Suspension
                | Category::Restoration
                | Category::BonusExpiring
                | Category::AdverseChange
                | Category::AgreementVersion { material: true }
        )
    }

    /// SVC-313: maintenance and outage categories also go to the technical contacts.
    pub fn technical(self) -> bool {
        matches!(
            self,
            Category::Maintenance | Category::ExtendedOutage | Category::ProviderChange
        )
    }
}

/// Who may receive a tenant's notices (SVC-313), as addresses known at sending time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contacts {
    /// The owner's member id and e-mail address.
    pub owner: Option<(i64, String)>,
    /// Members holding the Admin role (owner excluded).
    pub admins: Vec<(i64, String)>,
    pub billing_contact: Option<String>,
    pub technical_contacts: Vec<String>,
    /// The owner's verified mobile number (E.164), for the categories sent by SMS.
    pub owner_phone: Option<String>,
}

/// One recipient of one channel: a member's inbox or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub channel: Channel,
    /// The member whose inbox receives an in-app notice; 0 for an address.
    pub member_id: i64,
    /// Address snapshot (e-mail address; for in-app the member's e-mail, for the record).
    pub address: String,
}

/// SVC-313: the recipients of a notice of `category` on the channels a platform sends
/// itself (in-app, e-mail and SMS; announcements have no recipient, postal mail is not
/// sent from here). In-app goes to the owner and every admin; e-mail to the owner, plus the
/// billing contact for billing categories and the technical contacts for maintenance and
/// outage; SMS to the owner's verified mobile number, when there is one. An address appears
/// once per channel.
pub fn recipients(category: Category, contacts: &Contacts) -> Vec<Recipient> {
    let mut out: Vec<Recipient> = Vec::new();
    let mut push = |r: Recipient| {
        let dup = out.iter().any(|o| {
            o.channel == r.channel
                && o.member_id == r.member_id
                && o.address.eq_ignore_ascii_case(&r.address)
        });
        if !dup {
            out.push(r);
        }
    };
    for &channel in category.channels() {
        match channel {
            InApp => {
                for (id, email) in contacts.owner.iter().chain(&contacts.admins) {
                    push(Recipient {
                        channel,
                        member_id: *id,
                        address: email.clone(),
                    });
                }
            }
            Email => {
                let mut addresses: Vec<&String> = contacts.owner.iter().map(|(_, e)| e).collect();
                if category.billing() {
                    addresses.extend(contacts.billing_contact.iter());
                }
                if category.technical() {
                    addresses.extend(contacts.technical_contacts.iter());
                }
                for a in addresses.into_iter().filter(|a| !a.is_empty()) {
                    push(Recipient {
                        channel,
                        member_id: 0,
                        address: a.clone(),
                    });
                }
            }
            Sms => {
                if let Some(phone) = contacts.owner_phone.as_ref().filter(|p| !p.is_empty()) {
                    push(Recipient {
                        channel,
                        member_id: 0,
                        address: phone.clone(),
                    });
                }
            }
            Announcement | Postal => {}
        }
    }
    out
}

/// SVC-311: the date (in `billing_tz`) on which a notice sent at `sent_at` counts as
/// delivered, whatever happened to it afterwards (a bounce does not move it).
pub fn deemed_delivered_on(sent_at: Timestamp, billing_tz: &TimeZone) -> Date {
    deemed_delivery_date(sent_at, billing_tz)
}

/// SVC-314: does a notice sent at `sent_at` give `days` days' notice of a change effective
/// at `effective_at`? The change may take effect at 00:00 of the deemed delivery date plus
/// `days`, or later.
pub fn gives_notice(
    sent_at: Timestamp,
    effective_at: Timestamp,
    days: i64,
    billing_tz: &TimeZone,
) -> Result<bool> {
    Ok(effective_at >= earliest_effective_after_notice(sent_at, days, billing_tz)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn thirty_days_notice_counts_from_the_date_sent() {
        // spec: SVC-314 (example: sent 2025-06-01 15:00 → effective ≥ 2025-07-01 00:00)
        let tz = TimeZone::get("Asia/Shanghai").unwrap_or(TimeZone::UTC);
        let sent = at("2025-06-01T15:00:00+08:00");
        assert_eq!(
            deemed_delivered_on(sent, &tz),
            jiff::civil::date(2025, 6, 1)
        );
        assert_eq!(
            earliest_effective_after_notice(sent, 30, &tz).ok(),
            Some(at("2025-07-01T00:00:00+08:00"))
        );
        assert_eq!(
            gives_notice(sent, at("2025-07-01T00:00:00+08:00"), 30, &tz).ok(),
            Some(true)
        );
        assert_eq!(
            gives_notice(sent, at("2025-06-30T23:59:59+08:00"), 30, &tz).ok(),
            Some(false)
        );
    }

    #[test]
    fn delivery_date_is_the_billing_day_it_was_sent() {
        // spec: SVC-311 (the calendar date in billing_tz, not UTC's)
        let tz = TimeZone::get("Asia/Shanghai").unwrap_or(TimeZone::UTC);
        // 17:30 UTC on 1 June is already 2 June in Shanghai.
        assert_eq!(
            deemed_delivered_on(at("2025-06-01T17:30:00Z"), &tz),
            jiff::civil::date(2025, 6, 2)
        );
    }

    #[test]
    fn agreement_versions_go_out_on_announcement_and_in_app_and_email_when_material() {
        // spec: SVC-316, SVC-035
        let plain = Category::AgreementVersion { material: false };
        let material = Category::AgreementVersion { material: true };
        assert_eq!(plain.channels(), &[Announcement, InApp]);
        assert_eq!(material.channels(), &[Announcement, InApp, Email]);
        assert!(!plain.critical());
        assert!(material.critical());
        // "Critical" = at least two channels plus in-app, for every critical category
        // that the platform sends in-app.
        for c in [
            material,
            Category::AdverseChange,
            Category::Suspension,
            Category::ServiceEnded,
            Category::PurgeWarning,
            Category::OperatorTermination,
            Category::ExtendedOutage,
            Category::SecurityIncident,
            Category::CommunicationSkipped,
        ] {
            assert!(c.critical(), "{c:?}");
            let ch = c.channels();
            assert!(ch.contains(&InApp) && ch.len() >= 3, "{c:?}: {ch:?}");
        }
    }

    #[test]
    fn voice_is_not_a_notice_channel() {
        // spec: SVC-310
        assert!(Channel::parse("voice").is_err());
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()).ok(), Some(c));
        }
    }

    #[test]
    fn recipients_follow_the_category() {
        // spec: SVC-313
        let contacts = Contacts {
            owner: Some((1, "owner@example.com".into())),
            admins: vec![(2, "admin@example.com".into())],
            billing_contact: Some("billing@example.com".into()),
            technical_contacts: vec!["ops@example.com".into()],
            owner_phone: Some("+4915112345678".into()),
        };
        let r = recipients(Category::AgreementVersion { material: true }, &contacts);
        let in_app: Vec<i64> = r
            .iter()
            .filter(|r| r.channel == InApp)
            .map(|r| r.member_id)
            .collect();
        assert_eq!(in_app, vec![1, 2]);
        let email: Vec<&str> = r
            .iter()
            .filter(|r| r.channel == Email)
            .map(|r| r.address.as_str())
            .collect();
        assert_eq!(email, vec!["owner@example.com", "billing@example.com"]);
        // Maintenance: the technical contacts, not the billing contact.
        let r = recipients(Category::Maintenance, &contacts);
        let email: Vec<&str> = r
            .iter()
            .filter(|r| r.channel == Email)
            .map(|r| r.address.as_str())
            .collect();
        assert_eq!(email, vec!["owner@example.com", "ops@example.com"]);
        // A non-material version: no e-mail at all.
        let r = recipients(Category::AgreementVersion { material: false }, &contacts);
        assert!(r.iter().all(|r| r.channel == InApp));
        // spec: SVC-316 (expiry reminders by SMS, e-mail and in-app)
        // SMS goes to the owner's verified mobile only, and only for the categories that
        // name it; without a number there is no SMS recipient.
        let sms = |contacts: &Contacts, category| -> Vec<String> {
            recipients(category, contacts)
                .into_iter()
                .filter(|r| r.channel == Sms)
                .map(|r| r.address)
                .collect()
        };
        assert_eq!(
            sms(&contacts, Category::ExpiryReminder),
            vec!["+4915112345678"]
        );
        assert!(sms(&contacts, Category::Maintenance).is_empty());
        let no_phone = Contacts {
            owner_phone: None,
            ..contacts.clone()
        };
        assert!(sms(&no_phone, Category::ExpiryReminder).is_empty());
    }
}
