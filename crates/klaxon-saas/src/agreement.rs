//! Agreement documents (service-agreement.md §3): the document types and their level, the
//! life of a version (SVC-030), the preconditions of publishing one (SVC-031), which version
//! binds a tenant at an instant (SVC-039), and the decisions of acceptance, deemed
//! acceptance by continued use and refusal (SVC-036 … SVC-038). Pure: the store keeps the
//! versions and the immutable acceptance records; time is passed in.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::calendar::earliest_effective_after_notice;
use crate::error::{Result, SaasError};
use crate::termination::refusal_end;

/// Who accepts a document (SVC-030): the tenant, through its owner or an admin, or each
/// person for themself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Tenant,
    Person,
}

/// SVC-030: the document types of the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocumentType {
    TermsOfService,
    DataProtection,
    Sla,
    UserAgreement,
    PrivacyPolicy,
}

impl DocumentType {
    pub const ALL: [DocumentType; 5] = [
        DocumentType::TermsOfService,
        DocumentType::DataProtection,
        DocumentType::Sla,
        DocumentType::UserAgreement,
        DocumentType::PrivacyPolicy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DocumentType::TermsOfService => "terms_of_service",
            DocumentType::DataProtection => "data_protection",
            DocumentType::Sla => "sla",
            DocumentType::UserAgreement => "user_agreement",
            DocumentType::PrivacyPolicy => "privacy_policy",
        }
    }

    pub fn parse(text: &str) -> Result<DocumentType> {
        DocumentType::ALL
            .into_iter()
            .find(|t| t.as_str() == text)
            .ok_or_else(|| {
                SaasError::invalid(
                    "type",
                    format!(
                        "{text:?} is not a document type (terms_of_service, data_protection, sla, user_agreement, privacy_policy)"
                    ),
                )
            })
    }

    pub fn level(self) -> Level {
        match self {
            DocumentType::TermsOfService | DocumentType::DataProtection | DocumentType::Sla => {
                Level::Tenant
            }
            DocumentType::UserAgreement | DocumentType::PrivacyPolicy => Level::Person,
        }
    }

    /// SVC-030 defaults: ToS, DPP, UA and privacy at registration.
    pub fn required_at_registration(self) -> bool {
        !matches!(self, DocumentType::Sla)
    }

    /// SVC-030 defaults: ToS and SLA at purchase.
    pub fn required_at_purchase(self) -> bool {
        matches!(self, DocumentType::TermsOfService | DocumentType::Sla)
    }
}

/// SVC-030: draft → published → in_force → superseded, or retracted. Only `published` and
/// `retracted` are stored; `in_force` and `superseded` follow from the effective dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Draft,
    Published,
    InForce,
    Superseded,
    Retracted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Published => "published",
            Status::InForce => "in_force",
            Status::Superseded => "superseded",
            Status::Retracted => "retracted",
        }
    }
}

/// The facts of one stored version that the rules need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionFacts {
    pub id: i64,
    pub doc_type: DocumentType,
    pub published_at: Timestamp,
    pub effective_at: Timestamp,
    pub retracted: bool,
}

/// What an operator asks to publish.
#[derive(Debug, Clone)]
pub struct Publication<'a> {
    pub doc_type: DocumentType,
    pub version: &'a str,
    pub body: &'a str,
    pub summary: &'a str,
    pub material: bool,
    pub published_at: Timestamp,
    pub effective_at: Timestamp,
    pub justification: &'a str,
}

/// SVC-031: the proposed lead for material versions; shorter needs a justification.
pub const MATERIAL_LEAD_DAYS: i64 = 14;
/// SVC-031 (source: SLA "Additional Notes"): an SLA version needs 30 days' notice.
pub const SLA_NOTICE_DAYS: i64 = 30;
/// Longest version label: a date-like label such as `2025-08-15` or `2025-08-15.2`.
pub const MAX_VERSION_LEN: usize = 64;
/// Longest change summary (it goes into every notice about the version).
pub const MAX_SUMMARY_LEN: usize = 2_000;
/// Largest document body (1 MiB of text).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// SVC-031 preconditions of publishing. The announcement is sent at `published_at`, so its
/// deemed delivery date is that day in `billing_tz` (SVC-311). Names the field at fault.
pub fn check_publication(p: &Publication<'_>, billing_tz: &TimeZone) -> Result<()> {
    let label = p.version.trim();
    if label.is_empty() || label.len() > MAX_VERSION_LEN {
        return Err(SaasError::invalid(
            "version",
            format!("must be 1 to {MAX_VERSION_LEN} characters, e.g. 2025-08-15"),
        ));
    }
    if label
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(SaasError::invalid(
            "version",
            "may hold only letters, digits, '-', '.' and '_'",
        ));
    }
    if p.body.trim().is_empty() {
        return Err(SaasError::invalid("body", "the document text is empty"));
    }
    if p.body.len() > MAX_BODY_BYTES {
        return Err(SaasError::invalid(
            "body",
            format!("larger than {MAX_BODY_BYTES} bytes"),
        ));
    }
    if p.summary.trim().is_empty() || p.summary.len() > MAX_SUMMARY_LEN {
        return Err(SaasError::invalid(
            "summary",
            format!("a change summary of 1 to {MAX_SUMMARY_LEN} bytes is required"),
        ));
    }
    if p.effective_at < p.published_at {
        return Err(SaasError::refused(
            "SVC-031",
            format!(
                "effective_at {} is before published_at {}",
                p.effective_at, p.published_at
            ),
        ));
    }
    if p.doc_type == DocumentType::Sla {
        let earliest =
            earliest_effective_after_notice(p.published_at, SLA_NOTICE_DAYS, billing_tz)?;
        if p.effective_at < earliest {
            return Err(SaasError::refused(
                "SVC-031",
                format!(
                    "an sla version needs {SLA_NOTICE_DAYS} days' notice: effective_at must be at or after {earliest}"
                ),
            ));
        }
    }
    let lead = p.published_at.duration_until(p.effective_at);
    if p.material
        && lead < SignedDuration::from_hours(24 * MATERIAL_LEAD_DAYS)
        && p.justification.trim().is_empty()
    {
        return Err(SaasError::invalid(
            "justification",
            format!(
                "a material version effective less than {MATERIAL_LEAD_DAYS} days after publication needs a recorded justification (SVC-031)"
            ),
        ));
    }
    Ok(())
}

/// SVC-030/031: the status of `v` at `now`, among the versions of its type.
pub fn status_at(v: &VersionFacts, all: &[VersionFacts], now: Timestamp) -> Status {
    if v.retracted {
        return Status::Retracted;
    }
    if v.effective_at > now {
        return Status::Published;
    }
    match binding(all, v.doc_type, now) {
        Some(b) if b.id == v.id => Status::InForce,
        _ => Status::Superseded,
    }
}

/// SVC-039 / SVC-031: the version of `doc_type` in force at `at`: the one with the latest
/// `effective_at` not after `at` (ties: the later publication), retracted ones left out.
pub fn binding(
    all: &[VersionFacts],
    doc_type: DocumentType,
    at: Timestamp,
) -> Option<&VersionFacts> {
    all.iter()
        .filter(|v| v.doc_type == doc_type && !v.retracted && v.effective_at <= at)
        .max_by_key(|v| (v.effective_at, v.published_at, v.id))
}

/// SVC-032 … SVC-037: how a version was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    ExplicitRegistration,
    ExplicitPurchase,
    ExplicitUpdate,
    DeemedContinuedUse,
    /// SVC-038: not an acceptance; recorded with the same evidence.
    Refusal,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::ExplicitRegistration => "explicit_registration",
            Method::ExplicitPurchase => "explicit_purchase",
            Method::ExplicitUpdate => "explicit_update",
            Method::DeemedContinuedUse => "deemed_continued_use",
            Method::Refusal => "refusal",
        }
    }
}

/// SVC-036/038: a decision on `v` at `at` must come after publication and not on a
/// retracted version.
pub fn check_decision(v: &VersionFacts, at: Timestamp) -> Result<()> {
    if v.retracted {
        return Err(SaasError::refused(
            "SVC-031",
            "the version was retracted; there is nothing to accept or refuse",
        ));
    }
    if at < v.published_at {
        return Err(SaasError::refused(
            "SVC-036",
            "the version is not published yet",
        ));
    }
    Ok(())
}

/// SVC-037: the tenant-level versions a use event at `event_at` binds the tenant to by
/// continued use: for each tenant-level type, the version in force at `event_at` (the
/// latest one wins, SVC-031), when the tenant has neither accepted nor refused it.
/// `decided` says whether the tenant already decided on a version.
pub fn deemed_acceptances(
    all: &[VersionFacts],
    event_at: Timestamp,
    decided: impl Fn(i64) -> bool,
) -> Vec<i64> {
    DocumentType::ALL
        .into_iter()
        .filter(|t| t.level() == Level::Tenant)
        .filter_map(|t| binding(all, t, event_at))
        .filter(|v| !decided(v.id))
        .map(|v| v.id)
        .collect()
}

/// SVC-038: when a tenant refusing `v` at `refused_at` stops being served: at
/// `effective_at` when refused before it (the previous version governs until then), at
/// once when refused after.
pub fn refusal_ends_at(v: &VersionFacts, refused_at: Timestamp) -> Timestamp {
    refusal_end(refused_at, v.effective_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;
    use crate::termination::{Buffer, BufferStart};

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn publication(
        doc_type: DocumentType,
        published: &str,
        effective: &str,
    ) -> Publication<'static> {
        Publication {
            doc_type,
            version: "2025-08-15",
            body: "terms",
            summary: "what changed",
            material: false,
            published_at: at(published),
            effective_at: at(effective),
            justification: "",
        }
    }

    #[test]
    fn effective_may_not_precede_publication() {
        // spec: SVC-031
        let tz = TimeZone::UTC;
        let p = publication(
            DocumentType::TermsOfService,
            "2025-08-01T10:00:00Z",
            "2025-08-01T09:59:59Z",
        );
        assert!(check_publication(&p, &tz).is_err());
        // Immediate effect is allowed for a non-material, non-SLA version.
        let p = publication(
            DocumentType::TermsOfService,
            "2025-08-01T10:00:00Z",
            "2025-08-01T10:00:00Z",
        );
        assert!(check_publication(&p, &tz).is_ok());
    }

    #[test]
    fn an_sla_version_needs_thirty_days_from_the_deemed_delivery_date() {
        // spec: SVC-031, SVC-314
        let tz = TimeZone::UTC;
        let early = publication(
            DocumentType::Sla,
            "2025-06-01T15:00:00Z",
            "2025-06-30T23:59:59Z",
        );
        let err = check_publication(&early, &tz).unwrap_err();
        assert!(err.to_string().contains("30 days"), "{err}");
        let ok = publication(
            DocumentType::Sla,
            "2025-06-01T15:00:00Z",
            "2025-07-01T00:00:00Z",
        );
        assert!(check_publication(&ok, &tz).is_ok());
    }

    #[test]
    fn a_material_version_with_a_short_lead_needs_a_justification() {
        // spec: SVC-031 (decision: lead under 14 days on a material version)
        let tz = TimeZone::UTC;
        let mut p = publication(
            DocumentType::TermsOfService,
            "2025-08-01T10:00:00Z",
            "2025-08-15T00:00:00Z",
        );
        p.material = true;
        let err = check_publication(&p, &tz).unwrap_err();
        assert!(
            matches!(
                err,
                SaasError::Invalid {
                    field: "justification",
                    ..
                }
            ),
            "{err}"
        );
        p.justification = "regulator deadline";
        assert!(check_publication(&p, &tz).is_ok());
        // 14 days exactly needs none.
        p.justification = "";
        p.effective_at = at("2025-08-15T10:00:00Z");
        assert!(check_publication(&p, &tz).is_ok());
    }

    #[test]
    fn bad_labels_and_empty_bodies_are_named() {
        // spec: SVC-030
        let tz = TimeZone::UTC;
        let mut p = publication(
            DocumentType::TermsOfService,
            "2025-08-01T10:00:00Z",
            "2025-08-15T00:00:00Z",
        );
        p.version = "2025 08";
        assert!(matches!(
            check_publication(&p, &tz),
            Err(SaasError::Invalid {
                field: "version",
                ..
            })
        ));
        p.version = "2025-08-15";
        p.body = "  ";
        assert!(matches!(
            check_publication(&p, &tz),
            Err(SaasError::Invalid { field: "body", .. })
        ));
        assert!(DocumentType::parse("cookie_policy").is_err());
    }

    fn v(id: i64, t: DocumentType, published: &str, effective: &str) -> VersionFacts {
        VersionFacts {
            id,
            doc_type: t,
            published_at: at(published),
            effective_at: at(effective),
            retracted: false,
        }
    }

    #[test]
    fn deemed_acceptance_attaches_to_the_latest_version_in_force() {
        // spec: SVC-037 (example: published 2025-08-01 10:00, effective 2025-08-15 00:00,
        // push at 00:03:12 → deemed acceptance at 00:03:12), SVC-031 (latest in force wins)
        let old = v(
            1,
            DocumentType::TermsOfService,
            "2025-01-01T00:00:00Z",
            "2025-01-01T00:00:00Z",
        );
        let new = v(
            2,
            DocumentType::TermsOfService,
            "2025-08-01T10:00:00Z",
            "2025-08-15T00:00:00Z",
        );
        let all = vec![old.clone(), new.clone()];
        // Before effective_at the old version binds, and it was accepted at registration.
        let before = deemed_acceptances(&all, at("2025-08-14T23:59:59Z"), |id| id == 1);
        assert!(before.is_empty());
        let push = at("2025-08-15T00:03:12Z");
        assert_eq!(deemed_acceptances(&all, push, |id| id == 1), vec![2]);
        // Once recorded (or explicitly accepted, or refused), nothing more.
        assert!(deemed_acceptances(&all, push, |_| true).is_empty());
        assert_eq!(status_at(&old, &all, push), Status::Superseded);
        assert_eq!(status_at(&new, &all, push), Status::InForce);
        assert_eq!(
            status_at(&new, &all, at("2025-08-10T00:00:00Z")),
            Status::Published
        );
        // Two pending versions both effective: only the latest is deemed accepted.
        let newer = v(
            3,
            DocumentType::TermsOfService,
            "2025-08-05T00:00:00Z",
            "2025-08-16T00:00:00Z",
        );
        let all = vec![old, new, newer];
        assert_eq!(
            deemed_acceptances(&all, at("2025-08-20T00:00:00Z"), |id| id == 1),
            vec![3]
        );
    }

    #[test]
    fn retracted_versions_never_bind() {
        // spec: SVC-031
        let mut new = v(
            2,
            DocumentType::Sla,
            "2025-08-01T10:00:00Z",
            "2025-09-01T00:00:00Z",
        );
        new.retracted = true;
        let all = vec![new.clone()];
        assert!(deemed_acceptances(&all, at("2025-09-02T00:00:00Z"), |_| false).is_empty());
        assert_eq!(
            status_at(&new, &all, at("2025-09-02T00:00:00Z")),
            Status::Retracted
        );
        assert!(check_decision(&new, at("2025-08-02T00:00:00Z")).is_err());
    }

    #[test]
    fn person_level_documents_are_not_deemed_accepted_by_the_tenant() {
        // spec: SVC-030 (levels), SVC-037 (tenant use events)
        let ua = v(
            1,
            DocumentType::UserAgreement,
            "2025-08-01T00:00:00Z",
            "2025-08-01T00:00:00Z",
        );
        assert!(deemed_acceptances(&[ua], at("2025-08-02T00:00:00Z"), |_| false).is_empty());
    }

    #[test]
    fn refusal_before_effect_ends_service_at_effective_at() {
        // spec: SVC-038 (example: refusal on 2025-08-10 → service ends 2025-08-15 00:00;
        // buffer until 2025-09-14 00:00)
        let new = v(
            2,
            DocumentType::TermsOfService,
            "2025-08-01T10:00:00Z",
            "2025-08-15T00:00:00Z",
        );
        let ends = refusal_ends_at(&new, at("2025-08-10T09:00:00Z"));
        assert_eq!(ends, at("2025-08-15T00:00:00Z"));
        let buffer = Buffer::start(ends, BufferStart::Normal, &Params::cloud_defaults()).unwrap();
        assert_eq!(buffer.purge_at, at("2025-09-14T00:00:00Z"));
        // After effect: at once.
        assert_eq!(
            refusal_ends_at(&new, at("2025-08-20T09:00:00Z")),
            at("2025-08-20T09:00:00Z")
        );
        assert!(check_decision(&new, at("2025-07-31T00:00:00Z")).is_err());
    }
}
