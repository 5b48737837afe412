//! Notice records, document versions and acceptance records (migration 0049) are immutable
//! in the database: notices and decisions refuse UPDATE and DELETE like the ledger, and a
//! published version accepts only its retraction. SQLite always, PostgreSQL when
//! `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::harness;

use harness::{Db, random_hex};

use jiff::tz::TimeZone;
use klaxon_saas::agreement::DocumentType;
use klaxon_saas::money::Currency;
use klaxon_saas::notice::{Category, Channel};
use klaxon_saas::params::Params;
use klaxon_store::{BootstrapSeed, Decided, NewDecision, NewDocument, NewNotice, SaasSettings};
use sqlx::Executor;

both!(records_are_immutable_in_the_database);

fn ms(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

async fn records_are_immutable_in_the_database(db: &Db) {
    // spec: SVC-312 (notice records immutable)
    // spec: SVC-030 (published versions immutable; corrections are new versions)
    // spec: SVC-032 (acceptance records immutable)
    let s = SaasSettings {
        params: Params::cloud_defaults(),
        billing_tz: TimeZone::UTC,
        currency: Currency::CNY,
        region: "cn-north".into(),
        default_edition: "standard".into(),
    };
    let seed = BootstrapSeed {
        account_name: "T".into(),
        owner_email: format!("{}@example.com", random_hex(4)),
        owner_name: "O".into(),
        owner_password: "pw-123456".into(),
        app_key: random_hex(16),
        integration_key: random_hex(16),
    };
    let a = db.store.create_account(&seed, 1).await.unwrap().account_id;
    let doc = NewDocument {
        doc_type: DocumentType::TermsOfService,
        version: "2025-09-01".into(),
        language: "en-US".into(),
        body: "terms".into(),
        summary: "first".into(),
        material: false,
        justification: String::new(),
        published_at: ms("2025-08-01T10:00:00Z"),
        effective_at: ms("2025-09-01T00:00:00Z"),
        author: "test".into(),
    };
    let (v, ids) = db
        .store
        .saas_publish_document(&s, &doc, |v| {
            vec![NewNotice {
                account_id: a,
                member_id: 0,
                category: Category::AgreementVersion { material: false },
                template_id: "agreement_version".into(),
                template_version: "1".into(),
                language: "en-US".into(),
                subject: "s".into(),
                content: "c".into(),
                channel: Channel::InApp,
                recipient: "owner@example.com".into(),
                sent_at: v.published_at,
                provider_message_id: String::new(),
                status: "sent".into(),
                status_detail: String::new(),
                related: v.related(),
            }]
        })
        .await
        .unwrap();
    assert_eq!(ids.len(), 1);
    let d = db
        .store
        .saas_decide(
            &s,
            &NewDecision {
                account_id: a,
                version_id: v.version_id,
                at: ms("2025-08-02T00:00:00Z"),
                ..NewDecision::default()
            },
        )
        .await
        .unwrap();
    assert!(matches!(d, Decided::New(_)));

    for sql in [
        "UPDATE saas_notices SET content = 'changed'",
        "DELETE FROM saas_notices",
        "UPDATE saas_acceptances SET decision = 'refused'",
        "DELETE FROM saas_acceptances",
        "UPDATE saas_documents SET body = 'changed'",
        "UPDATE saas_documents SET effective_at = 0",
        "DELETE FROM saas_documents",
    ] {
        assert!(db.raw.execute(sql).await.is_err(), "{sql} was allowed");
    }
    // Retraction is the one change a published version accepts, and only once.
    let (r, _) = db
        .store
        .saas_retract_document(&s, v.version_id, ms("2025-08-03T00:00:00Z"), "test", |_| {
            Vec::new()
        })
        .await
        .unwrap();
    assert_eq!(r.retracted_at, ms("2025-08-03T00:00:00Z"));
    assert!(
        db.raw
            .execute("UPDATE saas_documents SET status = 'published', retracted_at = 0")
            .await
            .is_err()
    );
    let stored = db.store.saas_document(v.version_id).await.unwrap().unwrap();
    assert_eq!(stored.body, "terms");
    assert_eq!(stored.retracted_at, ms("2025-08-03T00:00:00Z"));
}
