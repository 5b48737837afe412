//! Renewals and the billing job in the store (migration 0065): a continuous renewal keeps
//! the anchor of the first term, a renewal refuses fewer licences than the fixed ones
//! assigned, a late renewal restores a tenant in its buffer with a new anchor, auto-renew
//! pays at the seamless deadline, a trial ends unrenewed with its buffer, the balance alert
//! fires once until the funds rise again, metered e-mails beyond the allowance are
//! charged once per day, and a postpaid tenant pays each cycle for its active members. SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::harness;

use harness::{Db, random_hex};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use klaxon_saas::licence::Kind;
use klaxon_saas::money::Currency;
use klaxon_saas::order::PriceListVersion;
use klaxon_saas::params::Params;
use klaxon_saas::quota::UnitType;
use klaxon_store::{
    BootstrapSeed, BuyLicences, CommPlan, CommUnit, NewMember, Renew, SaasFailure, SaasSettings,
};
use rust_decimal::Decimal;

both!(
    renewals_keep_the_anchor_and_the_fixed_licences,
    a_late_renewal_restores_a_tenant_in_its_buffer,
    auto_renew_pays_at_the_seamless_deadline,
    an_unrenewed_trial_ends_with_its_buffer,
    the_balance_alert_fires_once_until_funds_rise,
    e_mails_beyond_the_allowance_are_charged_daily,
    postpaid_charges_each_cycle_s_active_members,
    postpaid_from_prepaid_starts_at_the_term_end,
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
        published_at: Timestamp::UNIX_EPOCH,
        effective_at: Timestamp::UNIX_EPOCH,
        items: vec![
            ("licence.pro.1m".into(), dec("199")),
            ("licence.pro.12m".into(), dec("1990")),
        ],
    }
}

fn ms(s: &str) -> i64 {
    s.parse::<Timestamp>().unwrap().as_millisecond()
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
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

async fn member(db: &Db, account_id: i64, name: &str) -> i64 {
    let m = NewMember {
        member_name: name.to_string(),
        email: format!("{}-{}@example.com", name.to_lowercase(), random_hex(3)),
        role_ids: vec![6],
        locale: "en-US".into(),
        time_zone: "UTC".into(),
        ..Default::default()
    };
    db.store
        .invite_members(account_id, &[m], 1, 0)
        .await
        .unwrap()
        .unwrap()[0]
        .member_id
}

async fn pay(db: &Db, a: i64, amount: &str, at: &str) {
    db.store
        .saas_apply(&settings(), a, ms(at), "test", "payment", |b, at| {
            b.receive_cash(at, dec(amount), "bank", "test")?;
            Ok("paid".into())
        })
        .await
        .unwrap();
}

async fn buy(db: &Db, a: i64, quantity: u32, at: &str) {
    db.store
        .saas_buy_licences(
            &settings(),
            &prices(),
            a,
            &BuyLicences {
                edition: Some("pro".into()),
                quantity,
                months: 1,
                acceptance: Some(accepted()),
            },
            ms(at),
            "test",
        )
        .await
        .unwrap();
}

async fn renew(
    db: &Db,
    a: i64,
    mut r: Renew,
    at: &str,
) -> Result<klaxon_store::LicenceOrder, SaasFailure> {
    r.acceptance.get_or_insert_with(accepted);
    db.store
        .saas_renew(&settings(), &prices(), a, &r, ms(at), "test")
        .await
        .map(|(o, _)| o)
}

async fn state(db: &Db, a: i64, at: &str) -> klaxon_store::TenantBilling {
    db.store
        .saas_tenant(&settings(), a, ms(at))
        .await
        .unwrap()
        .unwrap()
}

async fn job(db: &Db, at: &str) -> Vec<(i64, String)> {
    db.store
        .saas_billing_due(&settings(), Some(&prices()), ms(at))
        .await
        .unwrap()
}

async fn outbox(db: &Db, a: i64) -> Vec<(String, String)> {
    let rows = sqlx::query(
        "SELECT category, related FROM saas_notice_outbox WHERE account_id = $1 ORDER BY outbox_id",
    )
    .bind(a)
    .fetch_all(&db.raw)
    .await
    .unwrap();
    use sqlx::Row;
    rows.iter()
        .map(|r| {
            (
                r.get::<String, _>("category"),
                r.get::<String, _>("related"),
            )
        })
        .collect()
}

async fn renewals_keep_the_anchor_and_the_fixed_licences(db: &Db) {
    let a = account(db).await;
    let ann = member(db, a, "Ann").await;
    let ben = member(db, a, "Ben").await;
    pay(db, a, "2000.00", "2025-01-31T09:00:00Z").await;
    buy(db, a, 2, "2025-01-31T09:00:00Z").await;
    for m in [ann, ben] {
        db.store
            .saas_assign_licence(
                &settings(),
                a,
                m,
                Kind::Fixed,
                ms("2025-01-31T10:00:00Z"),
                "test",
            )
            .await
            .unwrap();
    }

    // spec: SVC-061
    // Renewing for fewer licences than the fixed ones assigned is refused, naming them, and
    // nothing changes.
    let before = state(db, a, "2025-02-20T10:00:00Z")
        .await
        .book
        .ledger()
        .entries()
        .len();
    let err = renew(
        db,
        a,
        Renew {
            quantity: Some(1),
            ..Renew::default()
        },
        "2025-02-20T10:00:00Z",
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("SVC-061"), "{err}");
    assert!(err.to_string().contains(&format!("member {ann}")), "{err}");
    assert_eq!(
        state(db, a, "2025-02-20T10:00:00Z")
            .await
            .book
            .ledger()
            .entries()
            .len(),
        before
    );

    // spec: SVC-101
    // spec: SVC-103
    // Anchor 31 Jan, monthly: the first term ends 1 Mar; renewals paid before each end run
    // to 31 Mar, then 1 May — always add_months(anchor, k), never from the last boundary.
    let first = renew(db, a, Renew::default(), "2025-02-20T10:00:00Z")
        .await
        .unwrap();
    assert_eq!(first.starts_at, at("2025-03-01T00:00:00Z"));
    assert_eq!(first.ends_at, at("2025-03-31T00:00:00Z"));
    assert_eq!(first.quantity, 2);
    assert_eq!(first.total, dec("398.00"));
    let second = renew(db, a, Renew::default(), "2025-03-30T10:00:00Z")
        .await
        .unwrap();
    assert_eq!(second.starts_at, at("2025-03-31T00:00:00Z"));
    assert_eq!(second.ends_at, at("2025-05-01T00:00:00Z"));

    // spec: SVC-054
    // The fixed licences are held on through the renewed terms.
    let view = db
        .store
        .saas_licences(&settings(), a, ms("2025-04-15T10:00:00Z"))
        .await
        .unwrap();
    assert_eq!(view.size, Some(2));
    let mut held: Vec<(i64, Timestamp)> = view
        .holders
        .iter()
        .map(|h| (h.member_id, h.held_until))
        .collect();
    held.sort();
    assert_eq!(
        held,
        vec![
            (ann, at("2025-05-01T00:00:00Z")),
            (ben, at("2025-05-01T00:00:00Z"))
        ]
    );
    let t = state(db, a, "2025-04-15T10:00:00Z").await;
    assert_eq!(t.state.to_string(), "active");
    assert_eq!(t.book.ledger().cash(), dec("806.00"));
    assert!(t.book.ledger().check().is_empty());
}

async fn a_late_renewal_restores_a_tenant_in_its_buffer(db: &Db) {
    let a = account(db).await;
    pay(db, a, "500.00", "2025-03-15T14:23:00Z").await;
    buy(db, a, 1, "2025-03-15T14:23:00Z").await;

    // spec: SVC-105
    // Reminders at 10:00 on 10 … 14 April; a run that was down sends only the latest due.
    job(db, "2025-04-12T11:00:00Z").await;
    let reminders: Vec<String> = outbox(db, a)
        .await
        .into_iter()
        .filter(|(c, _)| c == "expiry_reminder")
        .map(|(_, r)| r)
        .collect();
    assert_eq!(
        reminders,
        vec![format!(
            "expiry_reminder:{}:{}",
            ms("2025-04-15T00:00:00Z"),
            ms("2025-04-12T10:00:00Z")
        )]
    );
    assert!(
        job(db, "2025-04-12T11:00:05Z").await.is_empty(),
        "nothing twice"
    );

    // spec: SVC-106
    // spec: SVC-187
    // Unrenewed, the term ends at 15 April 00:00 (the job ran late): ended(expired), purge
    // date 30 days later.
    let done = job(db, "2025-04-15T08:00:00Z").await;
    assert_eq!(done.len(), 1, "{done:?}");
    let t = state(db, a, "2025-04-15T08:00:00Z").await;
    assert_eq!(t.state.to_string(), "ended(expired)");
    assert_eq!(t.since, at("2025-04-15T00:00:00Z"));
    assert_eq!(t.purge_at, Some(at("2025-05-15T00:00:00Z")));
    assert!(
        outbox(db, a)
            .await
            .iter()
            .any(|(c, r)| c == "service_ended" && r == "service_state:ended(expired)")
    );

    // spec: SVC-107
    // A renewal paid during the buffer starts a new term now, with a new anchor, and
    // restores the service; the gap is not charged.
    let o = renew(db, a, Renew::default(), "2025-04-20T16:00:00Z")
        .await
        .unwrap();
    assert_eq!(o.starts_at, at("2025-04-20T16:00:00Z"));
    assert_eq!(o.ends_at, at("2025-05-20T00:00:00Z"));
    assert_eq!(o.anchor, None);
    let t = state(db, a, "2025-04-20T16:00:00Z").await;
    assert_eq!(t.state.to_string(), "active");
    assert_eq!(t.purge_at, None);
    assert_eq!(t.book.ledger().cash(), dec("102.00"));
    let audit = db.store.saas_audit(a).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|x| x.3.contains("ended(expired) -> active") && x.3.contains("SVC-107")),
        "{audit:?}"
    );

    // Not enough funds, or a bad term length: refused, nothing changed.
    let err = renew(db, a, Renew::default(), "2025-04-21T10:00:00Z")
        .await
        .unwrap_err();
    assert!(matches!(err, SaasFailure::Rule(_)), "{err}");
    assert_eq!(
        state(db, a, "2025-04-21T10:00:00Z")
            .await
            .book
            .ledger()
            .cash(),
        dec("102.00")
    );
    let bad = renew(
        db,
        a,
        Renew {
            months: Some(3),
            ..Renew::default()
        },
        "2025-04-21T10:00:00Z",
    )
    .await
    .unwrap_err();
    assert!(bad.to_string().contains("months"), "{bad}");
}

async fn auto_renew_pays_at_the_seamless_deadline(db: &Db) {
    let a = account(db).await;
    pay(db, a, "400.00", "2025-03-15T14:23:00Z").await;
    buy(db, a, 1, "2025-03-15T14:23:00Z").await;
    db.store
        .saas_set_auto_renew(&settings(), a, true, ms("2025-03-15T15:00:00Z"), "owner")
        .await
        .unwrap();
    assert!(db.store.saas_billing_settings(a).await.unwrap().auto_renew);

    // spec: SVC-104
    // Nothing before the deadline (14 April 00:00); at it, a renewal from the funds.
    job(db, "2025-04-13T23:59:00Z").await;
    assert_eq!(
        db.store
            .saas_licences(&settings(), a, ms("2025-04-13T23:59:00Z"))
            .await
            .unwrap()
            .orders
            .len(),
        1
    );
    let done = job(db, "2025-04-14T00:00:00Z").await;
    assert!(
        done.iter()
            .any(|(x, w)| *x == a && w.starts_with("auto-renewed: order 2")),
        "{done:?}"
    );
    let orders = db
        .store
        .saas_licences(&settings(), a, ms("2025-04-14T00:00:00Z"))
        .await
        .unwrap()
        .orders;
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[1].kind, "renewal");
    assert_eq!(orders[1].starts_at, at("2025-04-15T00:00:00Z"));
    assert_eq!(orders[1].ends_at, at("2025-05-15T00:00:00Z"));
    // The next attempt is the new term's, a month later: nothing more now.
    assert!(job(db, "2025-04-14T06:00:00Z").await.is_empty());
    assert_eq!(
        state(db, a, "2025-04-14T06:00:00Z")
            .await
            .book
            .ledger()
            .cash(),
        dec("2.00")
    );
}

async fn an_unrenewed_trial_ends_with_its_buffer(db: &Db) {
    let a = account(db).await;
    // A trial billing row as registration writes it.
    sqlx::query(
        "INSERT INTO saas_tenants (account_id, profile, state, reason, since, edition, currency, region, created_at, updated_at) VALUES ($1, 'commercial', 'trial', '', $2, 'pro', 'CNY', 'cn-north', $2, $2)",
    )
    .bind(a)
    .bind(ms("2025-05-01T15:00:00Z"))
    .execute(&db.raw)
    .await
    .unwrap();

    // spec: SVC-160
    // spec: SVC-162
    // Created 1 May 15:00 → ends 15 May 15:00; reminders 10 … 14 May at 10:00; no charge,
    // then ended(trial_ended) with a 30-day buffer.
    job(db, "2025-05-10T10:00:00Z").await;
    job(db, "2025-05-14T10:00:00Z").await;
    let reminders = outbox(db, a)
        .await
        .into_iter()
        .filter(|(c, _)| c == "expiry_reminder")
        .count();
    assert_eq!(reminders, 2);
    job(db, "2025-05-15T14:59:00Z").await;
    assert_eq!(
        state(db, a, "2025-05-15T14:59:00Z").await.state.to_string(),
        "trial"
    );
    job(db, "2025-05-15T15:00:00Z").await;
    let t = state(db, a, "2025-05-15T15:00:00Z").await;
    assert_eq!(t.state.to_string(), "ended(trial_ended)");
    assert_eq!(t.since, at("2025-05-15T15:00:00Z"));
    assert_eq!(t.purge_at, Some(at("2025-06-14T15:00:00Z")));
    assert!(t.book.ledger().entries().is_empty(), "never a charge");
}

async fn the_balance_alert_fires_once_until_funds_rise(db: &Db) {
    let a = account(db).await;
    pay(db, a, "600.00", "2025-03-01T09:00:00Z").await;

    // spec: SVC-087
    // A negative threshold is refused naming the field.
    let err = db
        .store
        .saas_set_balance_alert(
            &settings(),
            a,
            Some(dec("-1")),
            ms("2025-03-01T09:00:00Z"),
            "o",
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("threshold"), "{err}");
    db.store
        .saas_set_balance_alert(
            &settings(),
            a,
            Some(dec("500")),
            ms("2025-03-01T09:00:00Z"),
            "o",
        )
        .await
        .unwrap();
    assert!(
        job(db, "2025-03-01T09:01:00Z").await.is_empty(),
        "600 is above 500"
    );
    // Licences for 398.00 leave 202.00: one alert, not repeated.
    buy(db, a, 2, "2025-03-01T10:00:00Z").await;
    let done = job(db, "2025-03-01T10:01:00Z").await;
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(job(db, "2025-03-01T10:02:00Z").await.is_empty());
    // Rising above re-arms it; falling again alerts again.
    pay(db, a, "400.00", "2025-03-02T10:00:00Z").await;
    job(db, "2025-03-02T10:01:00Z").await;
    assert!(
        db.store
            .saas_billing_settings(a)
            .await
            .unwrap()
            .balance_alert_armed
    );
    buy(db, a, 1, "2025-03-03T10:00:00Z").await;
    job(db, "2025-03-03T10:01:00Z").await;
    let alerts = outbox(db, a)
        .await
        .into_iter()
        .filter(|(c, _)| c == "balance_low")
        .count();
    assert_eq!(alerts, 2);
}

async fn insert_email(db: &Db, a: i64, n: i64, status: &str, sent_at: &str) {
    sqlx::query(
        "INSERT INTO notifications (rid, account_id, incident_id, firing_id, reason, fire_type, escalate_rule_id, layer_idx, channel, person_id, target, severity, status, created_at, sent_at) VALUES ($1, $2, 'i', 'f', 'r', 'fire', 'e', 0, 'email', 1, '{}', 'Critical', $3, $4, $4)",
    )
    .bind(format!("rid-{a}-{n}"))
    .bind(a)
    .bind(status)
    .bind(ms(sent_at))
    .execute(&db.raw)
    .await
    .unwrap();
}

async fn e_mails_beyond_the_allowance_are_charged_daily(db: &Db) {
    let s = settings();
    let plan = CommPlan {
        units: vec![CommUnit {
            unit: UnitType::Email,
            per_licence: 2,
            trial: 0,
            price: dec("0.50"),
        }],
        packs: Vec::new(),
    };
    let a = account(db).await;
    pay(db, a, "200.50", "2025-03-01T09:00:00Z").await;
    buy(db, a, 1, "2025-03-01T09:00:00Z").await; // 1.50 left; pool: 2 e-mails a cycle
    // spec: SVC-070
    // Accepted e-mails count; failed ones never do.
    insert_email(db, a, 1, "sent", "2025-03-02T08:00:00Z").await;
    insert_email(db, a, 2, "failed", "2025-03-02T08:01:00Z").await;
    for i in 3..7 {
        insert_email(db, a, i, "sent", "2025-03-03T08:00:00Z").await;
    }

    // spec: SVC-073
    // spec: SVC-121
    // 3 March's settlement rates 2 March: 1 of 2 used, nothing charged; 4 March's rates
    // 3 March: 5 used, 3 beyond the pool → 1.50, paid from cash.
    let runs = db
        .store
        .saas_settle_usage_due(&s, &plan, ms("2025-03-04T00:30:00Z"))
        .await
        .unwrap();
    let outcomes: Vec<String> = runs.iter().map(|r| r.outcome.clone()).collect();
    assert!(
        outcomes
            .iter()
            .any(|o| o.starts_with("2025-03-02: email 1/2 (+0 over)")),
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|o| o.contains("usage 2025-03-03: email 5/2 (+3 over); charge 1.50")),
        "{outcomes:?}"
    );
    let t = state(db, a, "2025-03-04T00:30:00Z").await;
    assert_eq!(t.book.ledger().cash(), Decimal::ZERO);
    assert_eq!(t.state.to_string(), "active");
    // spec: SVC-075
    // 80 % and 100 % of the pool were crossed: one notice each for the cycle.
    let thresholds: Vec<String> = outbox(db, a)
        .await
        .into_iter()
        .filter(|(c, _)| c == "allowance_threshold")
        .map(|(_, r)| r)
        .collect();
    assert_eq!(thresholds.len(), 2, "{thresholds:?}");
    // A day is settled once.
    let again = db
        .store
        .saas_settle_usage(
            &s,
            &plan,
            a,
            "2025-03-04".parse().unwrap(),
            ms("2025-03-04T01:00:00Z"),
        )
        .await
        .unwrap();
    assert!(!again.ran_now);
    // spec: SVC-121
    // spec: SVC-130
    // Funds ran out: 6 more e-mails (3.00) are an overdue item due on the settlement day.
    for i in 10..16 {
        insert_email(db, a, i, "sent", "2025-03-04T08:00:00Z").await;
    }
    db.store
        .saas_settle_usage_due(&s, &plan, ms("2025-03-05T00:30:00Z"))
        .await
        .unwrap();
    let t = state(db, a, "2025-03-05T00:30:00Z").await;
    assert_eq!(t.state.to_string(), "overdue");
    assert_eq!(t.book.ledger().cash(), Decimal::ZERO);
    assert_eq!(t.book.ledger().debt_principal(), dec("3.00"));
    assert_eq!(t.book.items()[0].due_date.to_string(), "2025-03-05");
    assert_eq!(t.book.items()[0].origin, "usage:2025-03-04");
}

fn postpaid_prices() -> PriceListVersion {
    let mut p = prices();
    p.items
        .push(("licence.standard.postpaid".into(), dec("219")));
    p.items.push(("licence.pro.postpaid".into(), dec("239")));
    p
}

async fn postpaid_charges_each_cycle_s_active_members(db: &Db) {
    let s = settings();
    let a = account(db).await;

    // spec: SVC-120
    // Without explicit acceptance, or without a postpaid price, nothing changes.
    let err = db
        .store
        .saas_enable_postpaid(
            &s,
            &postpaid_prices(),
            a,
            None,
            ms("2025-05-01T09:00:00Z"),
            "o",
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("SVC-033"), "{err}");
    let err = db
        .store
        .saas_enable_postpaid(
            &s,
            &prices(),
            a,
            Some(&accepted()),
            ms("2025-05-01T09:00:00Z"),
            "o",
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("price_list"), "{err}");
    let from = db
        .store
        .saas_enable_postpaid(
            &s,
            &postpaid_prices(),
            a,
            Some(&accepted()),
            ms("2025-05-01T09:00:00Z"),
            "o",
        )
        .await
        .unwrap();
    assert_eq!(from, at("2025-05-01T09:00:00Z"));
    pay(db, a, "1000.00", "2025-05-01T10:00:00Z").await;

    // spec: SVC-051
    // spec: SVC-053
    // The pool is unlimited: seven members each take a licence by acting.
    for i in 0..7 {
        let m = member(db, a, &format!("M{i}")).await;
        let g = db
            .store
            .saas_licence_gate(&s, a, m, ms("2025-05-02T10:00:00Z"))
            .await
            .unwrap();
        assert_eq!(g, klaxon_store::LicenceGate::Obtained);
    }
    let view = db
        .store
        .saas_licences(&s, a, ms("2025-05-02T10:00:00Z"))
        .await
        .unwrap();
    assert_eq!(view.size, None);
    assert_eq!(view.active.len(), 7);

    // spec: SVC-123
    // Three days before the cycle end (1 June 00:00) the funds (1000.00) are below the
    // estimate (7 × 219.00): one warning.
    let p = postpaid_prices();
    let due = |at: &'static str| {
        let p = p.clone();
        async move {
            db.store
                .saas_billing_due(&settings(), Some(&p), ms(at))
                .await
                .unwrap()
        }
    };
    assert!(due("2025-05-28T23:00:00Z").await.is_empty());
    let done = due("2025-05-29T00:00:00Z").await;
    assert!(
        done.iter().any(|(_, w)| w.starts_with("forecast warning")),
        "{done:?}"
    );
    assert!(due("2025-05-29T01:00:00Z").await.is_empty());

    // spec: SVC-122
    // spec: SVC-124
    // At the cycle end: 7 × 219.00 = 1533.00; 1000.00 paid from cash, 533.00 overdue due
    // on the cycle-end date; settled once, with its statement.
    let done = due("2025-06-01T00:30:00Z").await;
    assert!(
        done.iter()
            .any(|(_, w)| w.contains("7 active × 219.00 = 1533.00 CNY")),
        "{done:?}"
    );
    assert!(due("2025-06-01T00:31:00Z").await.is_empty());
    let t = state(db, a, "2025-06-01T00:31:00Z").await;
    assert_eq!(t.state.to_string(), "overdue");
    assert_eq!(t.book.ledger().cash(), Decimal::ZERO);
    assert_eq!(t.book.ledger().debt_principal(), dec("533.00"));
    assert_eq!(t.book.items()[0].due_date.to_string(), "2025-06-01");
    let statements = db.store.saas_statements(&s, a).await.unwrap();
    assert_eq!(statements.len(), 1);
    let st = &statements[0].statement;
    assert_eq!(statements[0].active_members, 7);
    assert_eq!(
        (
            st.charges,
            st.cash_received,
            st.new_overdue,
            st.closing_cash,
            st.closing_debt
        ),
        (
            dec("1533.00"),
            dec("1000.00"),
            dec("533.00"),
            dec("0"),
            dec("533.00")
        )
    );
    let notices = outbox(db, a).await;
    assert!(notices.iter().any(|(c, _)| c == "statement"), "{notices:?}");
    assert!(
        notices
            .iter()
            .any(|(c, r)| c == "balance_low" && r.starts_with("postpaid_forecast:"))
    );
}

async fn postpaid_from_prepaid_starts_at_the_term_end(db: &Db) {
    let s = settings();
    let a = account(db).await;
    pay(db, a, "400.00", "2025-03-15T14:23:00Z").await;
    buy(db, a, 1, "2025-03-15T14:23:00Z").await;

    // spec: SVC-125
    // From prepaid, postpaid takes effect at the term's end; the term is not refunded and
    // the tenant is not ended there.
    let from = db
        .store
        .saas_enable_postpaid(
            &s,
            &postpaid_prices(),
            a,
            Some(&accepted()),
            ms("2025-04-01T10:00:00Z"),
            "o",
        )
        .await
        .unwrap();
    assert_eq!(from, at("2025-04-15T00:00:00Z"));
    let before = db
        .store
        .saas_licences(&s, a, ms("2025-04-14T10:00:00Z"))
        .await
        .unwrap();
    assert_eq!(before.size, Some(1));
    job(db, "2025-04-15T01:00:00Z").await;
    let t = state(db, a, "2025-04-15T01:00:00Z").await;
    assert_eq!(t.state.to_string(), "active");
    let after = db
        .store
        .saas_licences(&s, a, ms("2025-04-15T10:00:00Z"))
        .await
        .unwrap();
    assert_eq!(after.size, None);
    assert_eq!(
        after.cycle,
        Some((at("2025-04-15T00:00:00Z"), at("2025-05-15T00:00:00Z")))
    );
    assert_eq!(t.book.ledger().cash(), dec("201.00"));
    let again = db
        .store
        .saas_enable_postpaid(
            &s,
            &postpaid_prices(),
            a,
            Some(&accepted()),
            ms("2025-04-16T10:00:00Z"),
            "o",
        )
        .await
        .unwrap_err();
    assert!(again.to_string().contains("billing_mode"), "{again}");
}
