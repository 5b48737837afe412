//! §3 acceptance at purchase (SVC-033): which versions an order accepts, and when an order's
//! acceptance is refused.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::at;
use klaxon_saas::SaasError;
use klaxon_saas::agreement::{DocumentType, VersionFacts};
use klaxon_saas::purchase::{
    AcceptorRole, check_origin, check_purchase_acceptance, documents_at_purchase,
};

fn version(id: i64, doc_type: DocumentType, effective_day: i8) -> VersionFacts {
    VersionFacts {
        id,
        doc_type,
        published_at: at(2025, 7, 1, 0, 0),
        effective_at: at(2025, 8, effective_day, 0, 0),
        retracted: false,
    }
}

fn registry() -> Vec<VersionFacts> {
    vec![
        version(1, DocumentType::TermsOfService, 1),
        version(2, DocumentType::TermsOfService, 15),
        version(3, DocumentType::Sla, 1),
        version(4, DocumentType::DataProtection, 1),
        version(5, DocumentType::UserAgreement, 1),
    ]
}

fn rule(e: SaasError) -> String {
    match e {
        SaasError::Refused { rule, .. } => rule.to_string(),
        SaasError::Invalid { field, .. } => field.to_string(),
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn an_order_accepts_the_terms_and_sla_in_force() {
    // spec: SVC-033
    // spec: SVC-030 (terms of service and SLA are flagged required at purchase)
    let all = registry();
    assert_eq!(
        documents_at_purchase(&all, at(2025, 8, 10, 12, 0)),
        vec![1, 3]
    );
    // The newer terms version is in force from 15 August: an order then accepts it.
    assert_eq!(
        documents_at_purchase(&all, at(2025, 8, 15, 0, 0)),
        vec![2, 3]
    );
    let accepted = check_purchase_acceptance(
        &all,
        at(2025, 8, 16, 0, 0),
        Some(AcceptorRole::Admin),
        |_| false,
    )
    .unwrap();
    assert_eq!(accepted, vec![2, 3]);
    // A retracted version is never accepted.
    let mut retracted = registry();
    retracted[1].retracted = true;
    assert_eq!(
        documents_at_purchase(&retracted, at(2025, 8, 16, 0, 0)),
        vec![1, 3]
    );
}

#[test]
fn an_order_without_acceptance_or_with_the_wrong_acceptor_is_refused() {
    // spec: SVC-033
    let all = registry();
    let now = at(2025, 8, 10, 12, 0);
    let none = check_purchase_acceptance(&all, now, None, |_| false).unwrap_err();
    assert_eq!(rule(none), "accepted_by");
    // spec: SVC-003
    let member =
        check_purchase_acceptance(&all, now, Some(AcceptorRole::Other), |_| false).unwrap_err();
    assert_eq!(rule(member), "accepted_by");
    assert!(check_purchase_acceptance(&all, now, Some(AcceptorRole::Owner), |_| false).is_ok());
}

#[test]
fn no_terms_in_force_or_refused_terms_refuse_the_order() {
    // spec: SVC-033
    // Before any terms version takes effect there is nothing to accept.
    let all = registry();
    let early = check_purchase_acceptance(
        &all,
        at(2025, 7, 20, 0, 0),
        Some(AcceptorRole::Owner),
        |_| false,
    )
    .unwrap_err();
    assert_eq!(rule(early), "SVC-033");
    // spec: SVC-038
    // A version the tenant refused is not accepted by buying: the refusal stands.
    let refused = check_purchase_acceptance(
        &all,
        at(2025, 8, 10, 0, 0),
        Some(AcceptorRole::Owner),
        |id| id == 1,
    )
    .unwrap_err();
    assert_eq!(rule(refused), "SVC-038");
}

#[test]
fn where_the_acceptance_was_given_is_required_evidence() {
    // spec: SVC-033 (same evidence fields as SVC-032)
    assert_eq!(check_origin(" 203.0.113.7 ").unwrap(), "203.0.113.7");
    assert_eq!(rule(check_origin("  ").unwrap_err()), "accepted_from");
    assert_eq!(rule(check_origin("a\nb").unwrap_err()), "accepted_from");
    assert_eq!(
        rule(check_origin(&"x".repeat(201)).unwrap_err()),
        "accepted_from"
    );
}
