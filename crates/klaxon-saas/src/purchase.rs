//! Acceptance at purchase (SVC-033): every order — a licence term or add-on, a renewal, a
//! communication pack, enabling postpaid (SVC-120), converting an exempt tenant (SVC-405) —
//! carries the explicit acceptance of the document versions in force that are flagged
//! `required_at_purchase` (SVC-030: terms of service and SLA). Pure: which versions an order
//! must accept, and whether what the order brings is an acceptance at all. The store writes
//! the records (same evidence as at registration, SVC-032) in the order's transaction.

use jiff::Timestamp;

use crate::agreement::{DocumentType, VersionFacts, binding};
use crate::error::{Result, SaasError};

/// Who accepted on the tenant's behalf, as the store found them among the members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptorRole {
    Owner,
    Admin,
    /// A member who is neither: a billing decision is not theirs to make (SVC-003, SVC-036).
    Other,
}

impl AcceptorRole {
    pub fn as_str(self) -> &'static str {
        match self {
            AcceptorRole::Owner => "owner",
            AcceptorRole::Admin => "admin",
            AcceptorRole::Other => "member",
        }
    }
}

/// SVC-033: the versions an order submitted at `now` accepts: for each type flagged
/// `required_at_purchase`, the version in force. Ordered by type.
pub fn documents_at_purchase(all: &[VersionFacts], now: Timestamp) -> Vec<i64> {
    DocumentType::ALL
        .into_iter()
        .filter(|t| t.required_at_purchase())
        .filter_map(|t| binding(all, t, now))
        .map(|v| v.id)
        .collect()
}

/// SVC-033 preconditions of an order's acceptance; returns the version ids it accepts.
///
/// - `acceptor` is `None` when the order came without an acceptance: refused, naming the
///   field, so nothing is bought.
/// - Only the owner or an admin accepts for the tenant.
/// - There must be a terms-of-service version in force: without one there is nothing the
///   tenant could have accepted.
/// - A version the tenant refused (SVC-038) cannot be accepted by buying: the refusal stands.
pub fn check_purchase_acceptance(
    all: &[VersionFacts],
    now: Timestamp,
    acceptor: Option<AcceptorRole>,
    refused: impl Fn(i64) -> bool,
) -> Result<Vec<i64>> {
    let Some(role) = acceptor else {
        return Err(SaasError::invalid(
            "accepted_by",
            "an order needs the explicit acceptance of the terms in force by the owner or an admin (SVC-033); nothing was ordered",
        ));
    };
    if role == AcceptorRole::Other {
        return Err(SaasError::invalid(
            "accepted_by",
            "only the owner or an admin can accept the terms for the tenant (SVC-033)",
        ));
    }
    if binding(all, DocumentType::TermsOfService, now).is_none() {
        return Err(SaasError::refused(
            "SVC-033",
            "no terms_of_service version is in force, so there is nothing to accept; publish one first",
        ));
    }
    let versions = documents_at_purchase(all, now);
    if let Some(v) = versions.iter().find(|id| refused(**id)) {
        return Err(SaasError::refused(
            "SVC-038",
            format!(
                "the tenant refused document version {v}; an order cannot accept it (the refusal stands)"
            ),
        ));
    }
    Ok(versions)
}

/// Checks the free-text evidence of where an acceptance was given (an IP address, a signed
/// order form's reference): required, one line, at most 200 characters.
pub fn check_origin(origin: &str) -> Result<String> {
    let o = origin.trim();
    if o.is_empty() {
        return Err(SaasError::invalid(
            "accepted_from",
            "where the acceptance was given (client IP address or the signed form's reference) is required",
        ));
    }
    if o.chars().count() > 200 || o.contains(['\n', '\r']) {
        return Err(SaasError::invalid(
            "accepted_from",
            "one line of at most 200 characters",
        ));
    }
    Ok(o.to_string())
}
