//! §14 cross-region transfers (SVC-212, SVC-215): the vocabulary of a consent and whether a
//! transfer may go ahead.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use klaxon_saas::SaasError;
use klaxon_saas::transfer::{
    Basis, CATEGORIES, ConsentFacts, Purpose, authorise, check_destination, check_export_block,
    parse_categories,
};

fn all() -> Vec<String> {
    CATEGORIES.iter().map(|c| c.to_string()).collect()
}

fn consent(id: i64, purpose: Purpose, dest: &str, categories: Vec<String>) -> ConsentFacts {
    ConsentFacts {
        consent_id: id,
        purpose,
        destination_region: dest.into(),
        categories,
        revoked: false,
    }
}

fn field(e: SaasError) -> String {
    match e {
        SaasError::Invalid { field, .. } => field.into(),
        SaasError::Refused { rule, .. } => rule.into(),
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn a_consent_names_known_categories_and_another_region() {
    // spec: SVC-212
    assert_eq!(
        parse_categories(&["audit_log".into(), "configuration".into()]).unwrap(),
        vec!["audit_log".to_string(), "configuration".to_string()]
    );
    assert_eq!(field(parse_categories(&[]).unwrap_err()), "categories");
    assert_eq!(
        field(parse_categories(&["payloads".into()]).unwrap_err()),
        "categories"
    );
    assert_eq!(
        field(parse_categories(&["audit_log".into(), "audit_log".into()]).unwrap_err()),
        "categories"
    );
    let known = vec!["cn-north".to_string(), "eu-west".to_string()];
    assert_eq!(
        check_destination(" eu-west ", "cn-north", &known).unwrap(),
        "eu-west"
    );
    // spec: SVC-211 (the own region is no transfer)
    assert_eq!(
        field(check_destination("cn-north", "cn-north", &known).unwrap_err()),
        "destination_region"
    );
    assert_eq!(
        field(check_destination("mars-1", "cn-north", &known).unwrap_err()),
        "destination_region"
    );
    // Without a list of regions any other region id is taken as given.
    assert!(check_destination("mars-1", "cn-north", &[]).is_ok());
    assert_eq!(
        Purpose::parse("region_migration").unwrap(),
        Purpose::RegionMigration
    );
    assert_eq!(field(Purpose::parse("analytics").unwrap_err()), "purpose");
}

#[test]
fn only_a_matching_unrevoked_consent_or_a_lawful_order_allows_a_transfer() {
    // spec: SVC-212
    // spec: SVC-215
    let consents = vec![
        consent(
            1,
            Purpose::RegionMigration,
            "eu-west",
            vec!["configuration".into()],
        ),
        consent(2, Purpose::RegionMigration, "eu-west", all()),
        consent(3, Purpose::Export, "us-east", all()),
    ];
    assert_eq!(
        authorise(Purpose::RegionMigration, "eu-west", &consents, None).unwrap(),
        Basis::Consent(2)
    );
    assert_eq!(
        authorise(Purpose::Export, "us-east", &consents, None).unwrap(),
        Basis::Consent(3)
    );
    // Wrong purpose, wrong destination, partial categories: refused.
    for (p, d) in [
        (Purpose::Export, "eu-west"),
        (Purpose::RegionMigration, "us-east"),
    ] {
        assert_eq!(
            field(authorise(p, d, &consents, None).unwrap_err()),
            "SVC-212"
        );
    }
    assert_eq!(
        field(authorise(Purpose::RegionMigration, "eu-west", &consents[..1], None).unwrap_err()),
        "SVC-212"
    );
    // A revoked consent covers nothing.
    let mut revoked = consents.clone();
    revoked[1].revoked = true;
    assert!(authorise(Purpose::RegionMigration, "eu-west", &revoked, None).is_err());
    // spec: SVC-224
    // A lawful order is a basis without any consent.
    assert_eq!(
        authorise(Purpose::Export, "eu-west", &[], Some(9)).unwrap(),
        Basis::LawfulOrder(9)
    );
}

#[test]
fn an_export_block_refuses_a_transfer_under_consent_but_not_a_lawful_order() {
    // spec: SVC-232
    // A transfer under the owner's consent is an export: the block refuses it.
    let e = check_export_block(Basis::Consent(2), Some("unlawful content (order 17)")).unwrap_err();
    assert_eq!(field(e.clone()), "SVC-232");
    assert!(e.to_string().contains("unlawful content (order 17)"), "{e}");
    // spec: SVC-224
    // A lawful order still proceeds; no block (or a lifted one, stored empty) refuses nothing.
    check_export_block(Basis::LawfulOrder(9), Some("unlawful content")).unwrap();
    check_export_block(Basis::Consent(2), None).unwrap();
    check_export_block(Basis::Consent(2), Some("")).unwrap();
}
