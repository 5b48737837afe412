//! Password reset tokens (migration 0021, docs/sign-in.md): single use, time-limited, stored
//! hashed, rate-limited per member, and using one ends every session of the member.
//! SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::harness;

use harness::{Db, random_hex};

use klaxon_store::{BootstrapSeed, ResetPolicy, hash_secret};
use sqlx::Row;

both!(
    a_token_works_once_and_ends_sessions,
    tokens_expire_and_are_rate_limited
);

const POLICY: ResetPolicy = ResetPolicy {
    ttl_ms: 30 * 60_000,
    max_per_window: 3,
    window_ms: 3_600_000,
};

async fn owner(db: &Db) -> (i64, i64, String) {
    let email = format!("{}@example.com", random_hex(4));
    let seed = BootstrapSeed {
        account_name: "T".into(),
        owner_email: email.clone(),
        owner_name: "O".into(),
        owner_password: "pw-123456".into(),
        app_key: random_hex(16),
        integration_key: random_hex(16),
    };
    let b = db.store.create_account(&seed, 1).await.unwrap();
    (b.account_id, b.owner_member_id, email)
}

async fn password_hash(db: &Db, email: &str) -> String {
    db.store.login_candidates(email).await.unwrap()[0]
        .password_hash
        .clone()
}

async fn a_token_works_once_and_ends_sessions(db: &Db) {
    let (a, m, email) = owner(db).await;
    let now = 1_000_000;
    let s1 = db.store.create_session(a, m, 3_600_000, now).await.unwrap();
    let s2 = db.store.create_session(a, m, 3_600_000, now).await.unwrap();
    let token = db
        .store
        .create_password_reset(a, m, POLICY, now)
        .await
        .unwrap()
        .unwrap();
    let other = db
        .store
        .create_password_reset(a, m, POLICY, now)
        .await
        .unwrap()
        .unwrap();
    // Stored hashed: the table holds the SHA-256, never the token.
    let rows = sqlx::query("SELECT token_hash FROM password_resets")
        .fetch_all(&db.raw)
        .await
        .unwrap();
    let hashes: Vec<String> = rows
        .iter()
        .map(|r| r.get::<String, _>("token_hash"))
        .collect();
    assert!(hashes.contains(&hash_secret(&token)));
    assert!(!hashes.contains(&token));

    let before = password_hash(db, &email).await;
    let new_hash = db.store.hash_password("new-secret-9").await.unwrap();
    let done = db
        .store
        .use_password_reset(&token, &new_hash, now + 1000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((done.account_id, done.member_id), (a, m));
    assert_ne!(password_hash(db, &email).await, before);
    // Every session of the member is gone.
    assert!(
        db.store
            .session(&s1.token, now + 2000)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        db.store
            .session(&s2.token, now + 2000)
            .await
            .unwrap()
            .is_none()
    );
    // Single use, and the member's other outstanding token died with it.
    assert!(
        db.store
            .use_password_reset(&token, &new_hash, now + 3000)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        db.store
            .use_password_reset(&other, &new_hash, now + 3000)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        db.store
            .use_password_reset("nonsense", &new_hash, now)
            .await
            .unwrap()
            .is_none()
    );
}

async fn tokens_expire_and_are_rate_limited(db: &Db) {
    let (a, m, email) = owner(db).await;
    let now = 5_000_000;
    let token = db
        .store
        .create_password_reset(a, m, POLICY, now)
        .await
        .unwrap()
        .unwrap();
    let before = password_hash(db, &email).await;
    let h = db.store.hash_password("another-pass-1").await.unwrap();
    // Expired: refused, nothing changes.
    let late = now + POLICY.ttl_ms;
    assert!(
        db.store
            .use_password_reset(&token, &h, late)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(password_hash(db, &email).await, before);
    // Three per hour; the fourth is refused until the window moves on.
    for _ in 0..2 {
        assert!(
            db.store
                .create_password_reset(a, m, POLICY, now + 10)
                .await
                .unwrap()
                .is_some()
        );
    }
    assert!(
        db.store
            .create_password_reset(a, m, POLICY, now + 20)
            .await
            .unwrap()
            .is_none()
    );
    let later = now + POLICY.window_ms + 100;
    assert!(
        db.store
            .create_password_reset(a, m, POLICY, later)
            .await
            .unwrap()
            .is_some()
    );
}
