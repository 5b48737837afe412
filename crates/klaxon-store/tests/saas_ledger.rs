//! The SaaS billing store (migration 0019): the ledger is append-only in the database,
//! amounts are stored exactly (decimal text / NUMERIC), the book reloads from rows, a refused
//! operation writes nothing, and concurrent writers on one tenant are serialised. SQLite
//! always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::harness;

use harness::{Db, random_hex};

use jiff::tz::TimeZone;
use klaxon_saas::ledger::ChargeKind;
use klaxon_saas::money::Currency;
use klaxon_saas::params::Params;
use klaxon_store::{BootstrapSeed, SaasFailure, SaasSettings};
use rust_decimal::Decimal;
use sqlx::{Executor, Row};

both!(
    the_ledger_is_append_only_and_exact,
    concurrent_payments_are_serialised,
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

fn ms(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

async fn account(db: &Db) -> i64 {
    let seed = BootstrapSeed {
        account_name: "T".into(),
        owner_email: format!("{}@example.com", random_hex(4)),
        owner_name: "O".into(),
        owner_password: "pw-123456".into(),
        app_key: random_hex(16),
        integration_key: random_hex(16),
    };
    db.store.create_account(&seed, 1).await.unwrap().account_id
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

async fn the_ledger_is_append_only_and_exact(db: &Db) {
    // spec: SVC-085
    // spec: SVC-130
    let s = settings();
    let a = account(db).await;
    db.store
        .saas_apply(
            &s,
            a,
            ms("2025-05-31T00:30:00Z"),
            "test",
            "charge",
            |b, at| {
                b.charge(
                    at,
                    ChargeKind::LicenceCycle,
                    dec("1990.00"),
                    true,
                    "2025-05-31".parse().unwrap(),
                    "cycle",
                    "test",
                )?;
                Ok("charge".into())
            },
        )
        .await
        .unwrap();
    // Stored exactly, never as a float.
    let amount_sql = if db.store.backend() == klaxon_store::Backend::Postgres {
        "SELECT amount::text AS a, pg_typeof(amount)::text AS t FROM saas_ledger_entries"
    } else {
        "SELECT amount AS a, typeof(amount) AS t FROM saas_ledger_entries"
    };
    let row = db.raw.fetch_one(amount_sql).await.unwrap();
    assert_eq!(row.try_get::<String, _>("a").unwrap(), "1990.00");
    let ty: String = row.try_get("t").unwrap();
    assert!(ty == "numeric" || ty == "text", "{ty}");
    // The database refuses to change or remove an entry.
    assert!(
        db.raw
            .execute("UPDATE saas_ledger_entries SET explanation = 'x'")
            .await
            .is_err()
    );
    assert!(
        db.raw
            .execute("DELETE FROM saas_ledger_entries")
            .await
            .is_err()
    );
    // A refused operation (amount off the minor-unit grid) writes nothing.
    let err = db
        .store
        .saas_apply(
            &s,
            a,
            ms("2025-06-01T00:00:00Z"),
            "test",
            "payment",
            |b, at| {
                b.receive_cash(at, dec("1.005"), "bad", "test")?;
                Ok("pay".into())
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SaasFailure::Rule(_)), "{err}");
    assert!(err.to_string().contains("amount"), "{err}");
    // spec: SVC-132
    // spec: SVC-133
    // spec: SVC-134
    // Partial payments, the book reloaded from rows at every step: 400.00 on 06-04, then
    // 1593.30 on 06-10 (no overdue job runs here, so the tenant is never suspended).
    for (at, amount) in [
        ("2025-06-04T15:00:00Z", "400.00"),
        ("2025-06-10T09:00:00Z", "1593.30"),
    ] {
        db.store
            .saas_apply(&s, a, ms(at), "finance", "payment", |b, t| {
                b.receive_cash(t, dec(amount), "bank", "finance")?;
                Ok("pay".into())
            })
            .await
            .unwrap();
    }
    let t = db
        .store
        .saas_tenant(&s, a, ms("2025-06-10T09:00:00Z"))
        .await
        .unwrap()
        .unwrap();
    // Days 06-01…06-03 on 1990.00 (3 × 0.995) and 06-04…06-09 on 1590.00 (6 × 0.795):
    // 2.985 + 4.77 = 7.755 → 7.76, posted when the principal was paid; 3.30 of the second
    // payment paid penalty, so 4.46 is owed and penalty-only debt keeps the tenant overdue.
    let l = t.book.ledger();
    assert!(l.check().is_empty(), "{:?}", l.check());
    assert_eq!(l.debt_principal(), Decimal::ZERO);
    assert_eq!(l.debt_penalty(), dec("4.46"));
    assert_eq!(t.state.to_string(), "overdue");
    assert_eq!(t.payable_total, dec("4.46"));
    db.store
        .saas_apply(
            &s,
            a,
            ms("2025-06-10T09:30:00Z"),
            "finance",
            "payment",
            |b, t| {
                b.receive_cash(t, dec("4.46"), "bank", "finance")?;
                Ok("pay".into())
            },
        )
        .await
        .unwrap();
    let t = db
        .store
        .saas_tenant(&s, a, ms("2025-06-10T09:30:00Z"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.state.to_string(), "active");
    assert_eq!(t.payable_total, Decimal::ZERO);
}

async fn concurrent_payments_are_serialised(db: &Db) {
    // spec: SVC-085
    // spec: SVC-086
    let s = settings();
    let a = account(db).await;
    let at = ms("2025-06-01T00:00:00Z");
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = db.store.clone();
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            store
                .saas_apply(&s, a, at, "finance", "payment", move |b, t| {
                    b.receive_cash(t, dec("1.25"), &format!("p{i}"), "finance")?;
                    Ok("pay".into())
                })
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let t = db.store.saas_tenant(&s, a, at).await.unwrap().unwrap();
    let ids: Vec<u64> = t.book.ledger().entries().iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=8).collect::<Vec<u64>>());
    assert_eq!(t.book.ledger().cash(), dec("10.00"));
}
