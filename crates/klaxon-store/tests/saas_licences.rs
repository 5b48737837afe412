//! SaaS licences in the store (migration 0024): orders paid from the balance make the pool,
//! the gate hands out temporary licences or refuses without writing, fixed licences are
//! assigned and freed, temporary ones end with their cycle, a deleted member's licence is
//! free, the last licence goes to exactly one of two racing members, and the active users
//! of a cycle are reported. SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::harness;

use harness::{Db, random_hex};

use jiff::tz::TimeZone;
use klaxon_saas::licence::Kind;
use klaxon_saas::mode::BillingProfile;
use klaxon_saas::money::Currency;
use klaxon_saas::order::PriceListVersion;
use klaxon_saas::params::Params;
use klaxon_store::{
    BootstrapSeed, BuyLicences, LicenceGate, MemberKey, NewMember, SaasFailure, SaasSettings,
};
use rust_decimal::Decimal;
use sqlx::Row;

both!(
    the_worked_licence_example,
    temporary_licences_end_with_their_cycle,
    the_last_licence_goes_to_exactly_one,
);

fn settings() -> SaasSettings {
    SaasSettings {
        params: Params::cloud_defaults(),
        billing_tz: TimeZone::UTC,
        currency: Currency::CNY,
        region: "cn-north".into(),
        default_edition: "standard".into(),
    }
}

fn prices() -> PriceListVersion {
    PriceListVersion {
        id: "2025-01".into(),
        published_at: jiff::Timestamp::UNIX_EPOCH,
        effective_at: jiff::Timestamp::UNIX_EPOCH,
        items: vec![
            ("licence.pro.1m".into(), dec("199")),
            ("licence.pro.12m".into(), dec("1990")),
        ],
    }
}

fn ms(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

async fn account(db: &Db) -> i64 {
    let seed = BootstrapSeed {
        account_name: "T".into(),
        owner_email: OWNER.into(),
        owner_name: "O".into(),
        owner_password: "pw-123456".into(),
        app_key: random_hex(16),
        integration_key: random_hex(16),
    };
    let id = db.store.create_account(&seed, 1).await.unwrap().account_id;
    publish_terms(db).await;
    id
}

/// The owner's login of every account these tests create (one account per test).
const OWNER: &str = "owner@example.com";

/// SVC-033: the owner's acceptance an order carries.
fn accepted() -> klaxon_store::PurchaseAcceptance {
    klaxon_store::PurchaseAcceptance {
        accepted_by: OWNER.into(),
        accepted_from: "203.0.113.7".into(),
        user_agent: "test".into(),
        client_type: "web".into(),
        request_id: "req-1".into(),
    }
}

/// A terms-of-service version in force since 2024, so orders have something to accept.
async fn publish_terms(db: &Db) {
    let at = ms("2024-01-01T00:00:00Z");
    db.store
        .saas_publish_document(
            &settings(),
            &klaxon_store::NewDocument {
                doc_type: klaxon_saas::agreement::DocumentType::TermsOfService,
                version: "2024-01".into(),
                language: "en-US".into(),
                body: "The terms.".into(),
                summary: "First version.".into(),
                material: false,
                justification: String::new(),
                published_at: at,
                effective_at: at,
                author: "legal".into(),
            },
            |_| Vec::new(),
        )
        .await
        .unwrap();
}

/// Invites the named members (Responders); returns their ids in order.
async fn members(db: &Db, account_id: i64, names: &[&str]) -> Vec<i64> {
    let invitees: Vec<NewMember> = names
        .iter()
        .map(|n| NewMember {
            member_name: n.to_string(),
            email: format!("{}-{}@example.com", n.to_lowercase(), random_hex(3)),
            role_ids: vec![6],
            locale: "en-US".into(),
            time_zone: "UTC".into(),
            ..Default::default()
        })
        .collect();
    db.store
        .invite_members(account_id, &invitees, 1, 0)
        .await
        .unwrap()
        .unwrap()
        .iter()
        .map(|p| p.member_id)
        .collect()
}

async fn pay(db: &Db, a: i64, amount: &str, at: &str) {
    let s = settings();
    db.store
        .saas_apply(&s, a, ms(at), "test", "payment", |b, at| {
            b.receive_cash(at, dec(amount), "bank", "test")?;
            Ok("paid".into())
        })
        .await
        .unwrap();
}

async fn gate(db: &Db, a: i64, m: i64, at: &str) -> LicenceGate {
    db.store
        .saas_licence_gate(&settings(), a, m, ms(at))
        .await
        .unwrap()
}

async fn count(db: &Db, sql: &str) -> i64 {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&db.raw)
        .await
        .unwrap()
        .try_get::<i64, _>(0)
        .unwrap()
}

fn buy(quantity: u32, months: i32) -> BuyLicences {
    BuyLicences {
        edition: Some("pro".into()),
        quantity,
        months,
        acceptance: Some(accepted()),
    }
}

async fn the_worked_licence_example(db: &Db) {
    let s = settings();
    let a = account(db).await;
    let m = members(db, a, &["Alice", "Bob", "Carol", "Dan", "Erin", "Frank"]).await;
    let (alice, bob, carol, dan, erin, frank) = (m[0], m[1], m[2], m[3], m[4], m[5]);

    // spec: SVC-055
    // spec: RSP-008
    // No licence bought: a licensed action is refused and nothing is written, not even the
    // billing row.
    assert_eq!(
        gate(db, a, carol, "2025-03-15T10:00:00Z").await,
        LicenceGate::Refused { pool: 0 }
    );
    assert_eq!(count(db, "SELECT COUNT(*) FROM saas_tenants").await, 0);
    assert_eq!(
        count(db, "SELECT COUNT(*) FROM saas_licence_holdings").await,
        0
    );
    assert_eq!(
        count(db, "SELECT COUNT(*) FROM saas_licence_actions").await,
        0
    );

    // spec: SVC-100
    // spec: SVC-084
    // An order the balance cannot cover is refused unchanged.
    let err = db
        .store
        .saas_buy_licences(
            &s,
            &prices(),
            a,
            &buy(4, 1),
            ms("2025-03-15T14:23:00Z"),
            "t",
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("796"), "{err}");
    assert_eq!(
        count(db, "SELECT COUNT(*) FROM saas_licence_orders").await,
        0
    );
    assert_eq!(
        count(db, "SELECT COUNT(*) FROM saas_ledger_entries").await,
        0
    );

    // Bad input names the field and changes nothing.
    let err = db
        .store
        .saas_buy_licences(
            &s,
            &prices(),
            a,
            &buy(0, 1),
            ms("2025-03-15T14:23:00Z"),
            "t",
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("quantity"), "{err}");
    let mut bad = buy(1, 1);
    bad.edition = Some("gold".into());
    let err = db
        .store
        .saas_buy_licences(&s, &prices(), a, &bad, ms("2025-03-15T14:23:00Z"), "t")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("edition"), "{err}");

    // spec: SVC-101
    // spec: SVC-051
    // Paid 2025-03-15 14:23 → the monthly term ends 2025-04-15 00:00; 3 × 199 from the balance.
    pay(db, a, "1000.00", "2025-03-15T14:00:00Z").await;
    let (order, applied) = db
        .store
        .saas_buy_licences(
            &s,
            &prices(),
            a,
            &buy(3, 1),
            ms("2025-03-15T14:23:00Z"),
            "t",
        )
        .await
        .unwrap();
    assert_eq!(order.kind, "term");
    assert_eq!(order.total, dec("597.00"));

    // spec: SVC-033
    // The order carries the owner's acceptance of the terms in force: one order record, and
    // — as the tenant had not decided on that version yet — its explicit decision, method
    // `explicit_purchase`, with the same evidence.
    let recs = db.store.saas_order_acceptances(a).await.unwrap();
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(
        (recs[0].order_kind.as_str(), recs[0].order_ref.as_str()),
        (
            "licence",
            format!("licence-order:{}", order.order_id).as_str()
        )
    );
    assert_eq!(
        (recs[0].login.as_str(), recs[0].role.as_str()),
        (OWNER, "owner")
    );
    assert_eq!(recs[0].client_ip, "203.0.113.7");
    let decisions = db.store.saas_acceptances(a).await.unwrap();
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0].acceptance_id, recs[0].acceptance_id);
    assert_eq!(
        (decisions[0].method.as_str(), decisions[0].decision.as_str()),
        ("explicit_purchase", "accepted")
    );
    assert_eq!(decisions[0].decided_at, ms("2025-03-15T14:23:00Z"));
    // Without acceptance, an order is refused and nothing is bought or recorded.
    let mut unaccepted = buy(1, 1);
    unaccepted.acceptance = None;
    let err = db
        .store
        .saas_buy_licences(
            &s,
            &prices(),
            a,
            &unaccepted,
            ms("2025-03-15T14:24:00Z"),
            "t",
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("accepted_by"), "{err}");
    assert_eq!(
        count(db, "SELECT COUNT(*) FROM saas_licence_orders").await,
        1
    );
    assert_eq!(db.store.saas_order_acceptances(a).await.unwrap().len(), 1);
    assert_eq!(order.ends_at.to_string(), "2025-04-15T00:00:00Z");
    assert_eq!(applied.entries.len(), 1);
    let t = db
        .store
        .saas_tenant(&s, a, ms("2025-03-15T14:23:00Z"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.book.ledger().cash(), dec("403.00"));
    assert_eq!(t.edition, "pro");

    // spec: SVC-057
    // spec: SVC-054
    // Alice and Bob hold fixed licences; Carol and Dan act and take temporary ones… until
    // the pool of 3 has none left: Dan is refused.
    for who in [alice, bob] {
        let h = db
            .store
            .saas_assign_licence(&s, a, who, Kind::Fixed, ms("2025-03-15T15:00:00Z"), "owner")
            .await
            .unwrap();
        assert_eq!(h.held_until.to_string(), "2025-04-15T00:00:00Z");
    }
    assert_eq!(
        gate(db, a, alice, "2025-03-16T09:00:00Z").await,
        LicenceGate::Held
    );
    assert_eq!(
        gate(db, a, carol, "2025-03-16T09:05:00Z").await,
        LicenceGate::Obtained
    );
    assert_eq!(
        gate(db, a, carol, "2025-03-16T09:06:00Z").await,
        LicenceGate::Held
    );
    assert_eq!(
        gate(db, a, dan, "2025-03-16T09:10:00Z").await,
        LicenceGate::Refused { pool: 3 }
    );
    // A fixed assignment needs a free licence too.
    let err = db
        .store
        .saas_assign_licence(&s, a, dan, Kind::Fixed, ms("2025-03-16T09:11:00Z"), "owner")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("NoLicense"), "{err}");

    // spec: SVC-061
    // Two licences more on 2025-04-01 (14 days left of 31): 199 × 2 × 14 / 31 = 179.74,
    // ending with the term.
    let (order, _) = db
        .store
        .saas_buy_licences(
            &s,
            &prices(),
            a,
            &buy(2, 1),
            ms("2025-04-01T08:00:00Z"),
            "t",
        )
        .await
        .unwrap();
    assert_eq!(order.kind, "add_on");
    assert_eq!(order.total, dec("179.74"));
    assert_eq!(order.ends_at.to_string(), "2025-04-15T00:00:00Z");
    assert_eq!(
        gate(db, a, dan, "2025-04-01T09:00:00Z").await,
        LicenceGate::Obtained
    );
    assert_eq!(
        gate(db, a, erin, "2025-04-01T09:05:00Z").await,
        LicenceGate::Obtained
    );
    assert_eq!(
        gate(db, a, frank, "2025-04-01T09:10:00Z").await,
        LicenceGate::Refused { pool: 5 }
    );

    // spec: SVC-054
    // Revoking Bob's fixed licence frees it at once; Frank retries and gets it.
    assert!(
        db.store
            .saas_release_licence(&s, a, bob, ms("2025-04-01T09:20:00Z"), "owner")
            .await
            .unwrap()
    );
    assert!(
        !db.store
            .saas_release_licence(&s, a, bob, ms("2025-04-01T09:21:00Z"), "owner")
            .await
            .unwrap(),
        "nothing left to free"
    );
    assert_eq!(
        gate(db, a, frank, "2025-04-01T09:30:00Z").await,
        LicenceGate::Obtained
    );

    // spec: SVC-053
    // Active in the cycle [03-15 14:23, 04-15): all six, Bob although his licence is gone.
    // Alice acted (09:00); Bob held a fixed licence but never acted.
    let v = db
        .store
        .saas_licences(&s, a, ms("2025-04-01T10:00:00Z"))
        .await
        .unwrap();
    assert_eq!(v.size, Some(5));
    assert_eq!(v.in_use, 5);
    assert_eq!(v.free(), Some(0));
    assert_eq!(
        v.cycle.map(|c| (c.0.to_string(), c.1.to_string())),
        Some((
            "2025-03-15T14:23:00Z".to_string(),
            "2025-04-15T00:00:00Z".to_string()
        ))
    );
    let active: Vec<i64> = v.active.iter().map(|u| u.member_id).collect();
    assert_eq!(active, vec![alice, bob, carol, dan, erin, frank]);
    let first = |m: i64| {
        v.active
            .iter()
            .find(|u| u.member_id == m)
            .unwrap()
            .first_licensed_action
            .map(|t| t.to_string())
    };
    assert_eq!(first(alice), Some("2025-03-16T09:00:00Z".into()));
    assert_eq!(first(bob), None);
    assert_eq!(first(carol), Some("2025-03-16T09:05:00Z".into()));
    assert_eq!(v.orders.len(), 2);

    // spec: SVC-402
    // An exempt tenant's members are all licensed: the gate does not even look.
    db.store
        .saas_set_profile(
            &s,
            a,
            BillingProfile::Exempt,
            "operator's own tenant",
            None,
            false,
            ms("2025-04-02T00:00:00Z"),
            "staff",
        )
        .await
        .unwrap();
    let newcomer = members(db, a, &["Gina"]).await[0];
    assert_eq!(
        gate(db, a, newcomer, "2025-04-02T01:00:00Z").await,
        LicenceGate::NotNeeded
    );
}

async fn temporary_licences_end_with_their_cycle(db: &Db) {
    let s = settings();
    let a = account(db).await;
    let m = members(db, a, &["Alice", "Bob", "Carol"]).await;
    let (alice, bob, carol) = (m[0], m[1], m[2]);
    pay(db, a, "5000.00", "2025-03-15T14:00:00Z").await;
    // spec: SVC-056
    // An annual term paid 2025-03-15 14:23 has monthly cycles [03-15 14:23, 04-15 00:00), …
    let (order, _) = db
        .store
        .saas_buy_licences(
            &s,
            &prices(),
            a,
            &buy(2, 12),
            ms("2025-03-15T14:23:00Z"),
            "t",
        )
        .await
        .unwrap();
    assert_eq!(order.total, dec("3980.00"));
    assert_eq!(order.ends_at.to_string(), "2026-03-15T00:00:00Z");
    db.store
        .saas_assign_licence(&s, a, alice, Kind::Fixed, ms("2025-03-15T15:00:00Z"), "o")
        .await
        .unwrap();
    assert_eq!(
        gate(db, a, bob, "2025-04-14T23:59:00Z").await,
        LicenceGate::Obtained
    );
    assert_eq!(
        gate(db, a, carol, "2025-04-14T23:59:30Z").await,
        LicenceGate::Refused { pool: 2 }
    );

    // spec: SVC-055
    // spec: SVC-054
    // At the cycle end Bob's temporary licence is gone and Alice's fixed one stays: Carol
    // gets the free one, and Bob is refused.
    assert_eq!(
        gate(db, a, carol, "2025-04-15T00:00:00Z").await,
        LicenceGate::Obtained
    );
    assert_eq!(
        gate(db, a, bob, "2025-04-15T00:01:00Z").await,
        LicenceGate::Refused { pool: 2 }
    );
    let v = db
        .store
        .saas_licences(&s, a, ms("2025-04-15T01:00:00Z"))
        .await
        .unwrap();
    let holders: Vec<(i64, Kind)> = v.holders.iter().map(|h| (h.member_id, h.kind)).collect();
    assert_eq!(
        holders,
        vec![(alice, Kind::Fixed), (carol, Kind::Temporary)]
    );
    // spec: SVC-053
    // The new cycle's active users: Alice (fixed, survives the cycle end) and Carol.
    let active: Vec<i64> = v.active.iter().map(|u| u.member_id).collect();
    assert_eq!(active, vec![alice, carol]);

    // spec: SVC-054
    // Deleting a member frees their licence at once: Bob gets Alice's.
    db.store
        .delete_member(a, &MemberKey::Id(alice), ms("2025-04-16T08:00:00Z"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        gate(db, a, bob, "2025-04-16T09:00:00Z").await,
        LicenceGate::Obtained
    );

    // Licences of an unknown member cannot be assigned; nothing changes.
    let err = db
        .store
        .saas_assign_licence(&s, a, 999_999, Kind::Fixed, ms("2025-04-16T10:00:00Z"), "o")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("member"), "{err}");
    assert!(matches!(
        db.store
            .saas_licences(&s, 424_242, ms("2025-04-16T10:00:00Z"))
            .await,
        Err(SaasFailure::UnknownAccount(_))
    ));
}

async fn the_last_licence_goes_to_exactly_one(db: &Db) {
    // spec: SVC-055
    // Two members racing for the last licence: exactly one succeeds.
    let s = settings();
    let a = account(db).await;
    let m = members(db, a, &["Ann", "Ben"]).await;
    pay(db, a, "199.00", "2025-05-01T00:00:00Z").await;
    db.store
        .saas_buy_licences(
            &s,
            &prices(),
            a,
            &buy(1, 1),
            ms("2025-05-01T00:10:00Z"),
            "t",
        )
        .await
        .unwrap();
    let at = ms("2025-05-02T09:00:00Z");
    let (x, y) = tokio::join!(
        db.store.saas_licence_gate(&s, a, m[0], at),
        db.store.saas_licence_gate(&s, a, m[1], at),
    );
    let got = [x.unwrap(), y.unwrap()];
    assert_eq!(
        got.iter().filter(|g| **g == LicenceGate::Obtained).count(),
        1,
        "{got:?}"
    );
    assert_eq!(
        got.iter()
            .filter(|g| **g == LicenceGate::Refused { pool: 1 })
            .count(),
        1,
        "{got:?}"
    );
    assert_eq!(
        count(db, "SELECT COUNT(*) FROM saas_licence_holdings").await,
        1
    );
}
