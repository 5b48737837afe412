//! Self-service registration (service-agreement.md SVC-001, SVC-008, SVC-032): what a
//! registration form must hold, the rules of the one-time code that proves the e-mail
//! address, and which document versions the registrant accepts. Pure: the store keeps the
//! codes (hashed) and creates the tenant; time is passed in.

use jiff::Timestamp;

use crate::agreement::{DocumentType, VersionFacts, binding};
use crate::error::{Result, SaasError};

// The one-time code rules are shared with the contact verification of members (RSP-333);
// SVC-001's figures (10 minutes, 5 tries, 5 codes an hour) are theirs too.
pub use klaxon_core::one_time_code::{
    CODE_DIGITS, CODE_TTL, CODE_WINDOW, CODES_PER_HOUR, CodeFacts, CodeRefusal, MAX_CODE_ATTEMPTS,
    check_code, code_expires_at, next_code_allowed,
};

pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_ORGANISATION_CHARS: usize = 100;
pub const MAX_LEGAL_NAME_CHARS: usize = 200;
pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Consent label shown beside the unticked checkbox (SVC-032: a versioned UI string; its id
/// and the hash of its text go into every acceptance record).
pub const CONSENT_LABEL_ID: &str = "registration-consent-2025-01";
pub const CONSENT_LABEL: &str = "I have read and accept the documents listed above, for the organisation I register and for myself.";

/// SVC-002: the legal entity a tenant belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityType {
    Individual,
    Organisation,
}

impl EntityType {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::Individual => "individual",
            EntityType::Organisation => "organisation",
        }
    }

    pub fn parse(text: &str) -> Result<EntityType> {
        match text.trim() {
            "individual" => Ok(EntityType::Individual),
            "organisation" | "organization" => Ok(EntityType::Organisation),
            "" => Err(SaasError::invalid(
                "legal_entity_type",
                "required: individual or organisation",
            )),
            other => Err(SaasError::invalid(
                "legal_entity_type",
                format!("{other:?} is not individual or organisation"),
            )),
        }
    }
}

/// A checked e-mail address: trimmed, one `@` with text on both sides, a dot in the domain,
/// no spaces or control characters, at most 254 characters. Compared in lower case.
pub fn check_email(text: &str) -> Result<String> {
    let email = text.trim();
    if email.is_empty() {
        return Err(SaasError::invalid("email", "required"));
    }
    if email.chars().count() > MAX_EMAIL_CHARS {
        return Err(SaasError::invalid(
            "email",
            format!("at most {MAX_EMAIL_CHARS} characters"),
        ));
    }
    let bad = || SaasError::invalid("email", "is not an e-mail address (name@example.com)");
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || domain.len() < 3
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'))
    {
        return Err(bad());
    }
    Ok(email.to_string())
}

/// What the registrant submits with the code (SVC-001).
#[derive(Debug, Clone, Default)]
pub struct Form {
    pub email: String,
    pub code: String,
    pub password: String,
    pub organisation: String,
    pub legal_entity_type: String,
    pub legal_name: String,
    pub region: String,
    /// The version ids the registrant ticked to accept; empty = no acceptance.
    pub accepted_versions: Vec<i64>,
}

/// A form that passed [`check_form`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub email: String,
    pub code: String,
    pub organisation: String,
    pub entity_type: EntityType,
    pub legal_name: String,
    pub region: String,
}

fn text(field: &'static str, value: &str, max: usize) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(SaasError::invalid(field, "required"));
    }
    if v.chars().count() > max {
        return Err(SaasError::invalid(
            field,
            format!("at most {max} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(SaasError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(v.to_string())
}

/// SVC-001: every field present and well-formed; the first bad field is named. The code and
/// the acceptance are checked against the store afterwards ([`check_code`],
/// [`check_acceptance`]); the password is checked here only for its shape.
pub fn check_form(f: &Form) -> Result<Checked> {
    let email = check_email(&f.email)?;
    let code = f.code.trim();
    if code.is_empty() {
        return Err(SaasError::invalid(
            "code",
            "required: the code sent to the e-mail address",
        ));
    }
    if code.len() != CODE_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SaasError::invalid(
            "code",
            format!("the code has {CODE_DIGITS} digits"),
        ));
    }
    if f.password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(SaasError::invalid(
            "password",
            format!("at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if f.password.len() > MAX_PASSWORD_BYTES {
        return Err(SaasError::invalid(
            "password",
            format!("at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    let organisation = text("organisation", &f.organisation, MAX_ORGANISATION_CHARS)?;
    let entity_type = EntityType::parse(&f.legal_entity_type)?;
    let legal_name = text("legal_name", &f.legal_name, MAX_LEGAL_NAME_CHARS)?;
    let region = f.region.trim();
    if region.is_empty() {
        return Err(SaasError::invalid("region", "required"));
    }
    Ok(Checked {
        email,
        code: code.to_string(),
        organisation,
        entity_type,
        legal_name,
        region: region.to_string(),
    })
}

/// A refused code as the `code` field's error.
pub fn code_error(refusal: CodeRefusal) -> SaasError {
    SaasError::invalid("code", refusal.message())
}

/// Types a registration needs a version of before anyone can register: the documents the
/// SaaS start-up check requires to be in force (SVC-400), flagged `required_at_registration`
/// (SVC-030). A privacy policy is included when one is published.
pub const REQUIRED_TYPES: [DocumentType; 3] = [
    DocumentType::TermsOfService,
    DocumentType::DataProtection,
    DocumentType::UserAgreement,
];

/// SVC-032: the versions the registration form shows at `now`: for each type flagged
/// `required_at_registration`, the version in force, plus every published version of it not
/// yet in force (accepted together, so the new tenant is not asked again days later).
/// Retracted versions are never shown. Ordered by type, then effective date.
pub fn documents_to_accept(all: &[VersionFacts], now: Timestamp) -> Vec<i64> {
    let mut out = Vec::new();
    for t in DocumentType::ALL
        .into_iter()
        .filter(|t| t.required_at_registration())
    {
        if let Some(v) = binding(all, t, now) {
            out.push(v.id);
        }
        let mut pending: Vec<&VersionFacts> = all
            .iter()
            .filter(|v| v.doc_type == t && !v.retracted && v.effective_at > now)
            .collect();
        pending.sort_by_key(|v| (v.effective_at, v.id));
        out.extend(pending.into_iter().map(|v| v.id));
    }
    out
}

/// Registration is open only when each of [`REQUIRED_TYPES`] has a version in force or
/// published: otherwise there is nothing the registrant could accept.
pub fn check_documents_available(all: &[VersionFacts], now: Timestamp) -> Result<()> {
    let shown = documents_to_accept(all, now);
    let missing: Vec<&str> = REQUIRED_TYPES
        .into_iter()
        .filter(|t| {
            !all.iter()
                .any(|v| v.doc_type == *t && shown.contains(&v.id))
        })
        .map(DocumentType::as_str)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(SaasError::refused(
            "SVC-032",
            format!(
                "registration is not open: no published version of {}",
                missing.join(", ")
            ),
        ))
    }
}

/// SVC-001/032: without acceptance of every shown version nothing is created. `accepted` are
/// the version ids the registrant ticked; a version published since the form was shown is
/// missing from them, so the form is shown again with it.
pub fn check_acceptance(required: &[i64], accepted: &[i64]) -> Result<()> {
    if accepted.is_empty() {
        return Err(SaasError::invalid(
            "accept",
            "the registration documents must be accepted; nothing was created",
        ));
    }
    if let Some(missing) = required.iter().find(|id| !accepted.contains(id)) {
        return Err(SaasError::invalid(
            "accept",
            format!(
                "document version {missing} was not accepted (the documents may have changed since the form was shown); nothing was created"
            ),
        ));
    }
    if let Some(extra) = accepted.iter().find(|id| !required.contains(id)) {
        return Err(SaasError::invalid(
            "accept",
            format!("document version {extra} is not one of the registration documents"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn form() -> Form {
        Form {
            email: " ann@example.com ".into(),
            code: "123456".into(),
            password: "correct horse".into(),
            organisation: "Example Ltd".into(),
            legal_entity_type: "organisation".into(),
            legal_name: "Example Limited".into(),
            region: "cn-north".into(),
            accepted_versions: vec![1],
        }
    }

    fn field(e: SaasError) -> &'static str {
        match e {
            SaasError::Invalid { field, .. } => field,
            other => panic!("not a field error: {other}"),
        }
    }

    #[test]
    fn a_complete_form_passes_and_each_bad_field_is_named() {
        // spec: SVC-001
        let ok = check_form(&form()).unwrap();
        assert_eq!(ok.email, "ann@example.com");
        assert_eq!(ok.entity_type, EntityType::Organisation);
        for (mutate, name) in [
            (
                (|f: &mut Form| f.email = "ann.example.com".into()) as fn(&mut Form),
                "email",
            ),
            (|f: &mut Form| f.email = "a@b".into(), "email"),
            (|f: &mut Form| f.code = String::new(), "code"),
            (|f: &mut Form| f.code = "12345a".into(), "code"),
            (|f: &mut Form| f.password = "short".into(), "password"),
            (|f: &mut Form| f.organisation = "  ".into(), "organisation"),
            (
                |f: &mut Form| f.organisation = "x".repeat(101),
                "organisation",
            ),
            (
                |f: &mut Form| f.legal_entity_type = "company".into(),
                "legal_entity_type",
            ),
            (|f: &mut Form| f.legal_name = String::new(), "legal_name"),
            (|f: &mut Form| f.region = String::new(), "region"),
        ] {
            let mut f = form();
            mutate(&mut f);
            assert_eq!(field(check_form(&f).unwrap_err()), name);
        }
        let mut f = form();
        f.organisation = "x".repeat(100);
        assert!(check_form(&f).is_ok());
    }

    #[test]
    fn a_code_works_for_ten_minutes() {
        // spec: SVC-001
        let sent = at("2025-06-01T10:00:00Z");
        let c = CodeFacts {
            created_at: sent,
            attempts: 0,
            used: false,
        };
        assert_eq!(
            check_code(Some(&c), true, at("2025-06-01T10:09:59Z")),
            Ok(())
        );
        assert_eq!(
            check_code(Some(&c), true, at("2025-06-01T10:10:00Z")),
            Err(CodeRefusal::Expired)
        );
        assert_eq!(check_code(None, true, sent), Err(CodeRefusal::None));
        let used = CodeFacts { used: true, ..c };
        assert_eq!(check_code(Some(&used), true, sent), Err(CodeRefusal::None));
    }

    #[test]
    fn wrong_guesses_void_the_code() {
        // spec: SVC-001 (decision: 5 attempts per code)
        let now = at("2025-06-01T10:01:00Z");
        let mut c = CodeFacts {
            created_at: at("2025-06-01T10:00:00Z"),
            attempts: 0,
            used: false,
        };
        assert_eq!(
            check_code(Some(&c), false, now),
            Err(CodeRefusal::Wrong { left: 4 })
        );
        c.attempts = 4;
        assert_eq!(
            check_code(Some(&c), false, now),
            Err(CodeRefusal::Exhausted)
        );
        c.attempts = 5;
        // Even the right code no longer works.
        assert_eq!(check_code(Some(&c), true, now), Err(CodeRefusal::Exhausted));
    }

    #[test]
    fn codes_per_address_are_limited_per_hour() {
        let now = at("2025-06-01T11:00:00Z");
        let sent: Vec<Timestamp> = [
            "2025-06-01T10:00:00Z",
            "2025-06-01T10:10:00Z",
            "2025-06-01T10:20:00Z",
            "2025-06-01T10:30:00Z",
        ]
        .iter()
        .map(|s| at(s))
        .collect();
        // The first one is exactly an hour old: outside the window.
        let mut more = sent.clone();
        more.push(at("2025-06-01T10:40:00Z"));
        assert_eq!(next_code_allowed(&more, now), None);
        more.push(at("2025-06-01T10:50:00Z"));
        assert_eq!(
            next_code_allowed(&more, now),
            Some(at("2025-06-01T11:10:00Z"))
        );
    }

    fn v(id: i64, t: DocumentType, effective: &str, retracted: bool) -> VersionFacts {
        VersionFacts {
            id,
            doc_type: t,
            published_at: at("2025-01-01T00:00:00Z"),
            effective_at: at(effective),
            retracted,
        }
    }

    #[test]
    fn the_form_shows_versions_in_force_and_pending_ones() {
        // spec: SVC-032
        use DocumentType::*;
        let all = vec![
            v(1, TermsOfService, "2025-01-01T00:00:00Z", false),
            v(2, TermsOfService, "2025-03-01T00:00:00Z", false),
            v(3, TermsOfService, "2025-09-01T00:00:00Z", false),
            v(4, DataProtection, "2025-01-01T00:00:00Z", false),
            v(5, UserAgreement, "2025-01-01T00:00:00Z", false),
            v(6, Sla, "2025-01-01T00:00:00Z", false),
            v(7, PrivacyPolicy, "2025-09-01T00:00:00Z", true),
        ];
        let now = at("2025-06-01T00:00:00Z");
        // ToS 2 in force (1 superseded), 3 pending; no SLA (not required at registration);
        // the retracted privacy policy is not shown.
        assert_eq!(documents_to_accept(&all, now), vec![2, 3, 4, 5]);
        assert!(check_documents_available(&all, now).is_ok());
        let err = check_documents_available(&all[..4], now).unwrap_err();
        assert!(err.to_string().contains("user_agreement"), "{err}");
    }

    #[test]
    fn without_acceptance_nothing_is_created() {
        // spec: SVC-001, SVC-032
        assert_eq!(field(check_acceptance(&[2, 3], &[]).unwrap_err()), "accept");
        assert_eq!(
            field(check_acceptance(&[2, 3], &[2]).unwrap_err()),
            "accept"
        );
        assert_eq!(
            field(check_acceptance(&[2, 3], &[2, 3, 9]).unwrap_err()),
            "accept"
        );
        assert!(check_acceptance(&[2, 3], &[3, 2]).is_ok());
    }

    #[test]
    fn entity_types() {
        // spec: SVC-002
        assert_eq!(
            EntityType::parse("individual").unwrap(),
            EntityType::Individual
        );
        assert_eq!(
            EntityType::parse("organization").unwrap(),
            EntityType::Organisation
        );
        assert_eq!(
            field(EntityType::parse("").unwrap_err()),
            "legal_entity_type"
        );
    }
}
