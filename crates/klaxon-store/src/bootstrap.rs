//! First start (DESIGN.md principle 3): the account, its owner, the APP key, a default channel
//! and a standard integration in it — created once, in one transaction.
//!
//! Two nodes starting at once on PostgreSQL: the transaction takes an advisory lock first, so
//! the second waits, then finds the first one's account and returns it (`created = false`).
//! On SQLite the single writer connection serialises the same way.

use argon2::Argon2;
use argon2::password_hash::PasswordHasher;
use klaxon_core::model::Millis;
use sqlx::{AnyConnection, AnyPool, Row};

use crate::db::Sql;
use crate::records::{Bootstrap, BootstrapSeed};
use crate::rows::get_i64;
use crate::{Backend, Result, StoreError};

/// `pg_advisory_xact_lock` key of the bootstrap ("klaxon" in ASCII).
const BOOTSTRAP_LOCK: i64 = 0x6b6c_6178_6f6e;

pub(crate) const OWNER_ROLE_IDS: &[i64] = &[2];
pub(crate) const DEFAULT_CHANNEL_NAME: &str = "Default";
pub(crate) const DEFAULT_INTEGRATION_NAME: &str = "Standard (default)";

pub(crate) async fn bootstrap(
    backend: Backend,
    read: &AnyPool,
    write: &AnyPool,
    seed: &BootstrapSeed,
    now: Millis,
) -> Result<Bootstrap> {
    // The common case (every later start) costs one read and no password hash.
    {
        let mut conn = read.acquire().await?;
        if let Some(existing) = existing(&mut conn).await? {
            return Ok(existing);
        }
    }
    let password_hash = hash_password(seed.owner_password.clone()).await?;

    let mut tx = write.begin().await?;
    if backend == Backend::Postgres {
        // The function returns `void`, which the Any driver cannot decode: select a constant.
        sqlx::query("SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock($1)) AS l")
            .bind(BOOTSTRAP_LOCK)
            .fetch_one(&mut *tx)
            .await?;
    }
    if let Some(existing) = existing(&mut tx).await? {
        tx.rollback().await?;
        return Ok(existing);
    }
    let created = insert_account(&mut tx, seed, password_hash, now).await?;
    tx.commit().await?;
    Ok(created)
}

/// Creates one more account with its owner, APP key, default channel and standard
/// integration, unconditionally (tests of tenant isolation; later: the cloud signup).
pub(crate) async fn create_account(
    write: &AnyPool,
    seed: &BootstrapSeed,
    now: Millis,
) -> Result<Bootstrap> {
    let password_hash = hash_password(seed.owner_password.clone()).await?;
    let mut tx = write.begin().await?;
    let created = insert_account(&mut tx, seed, password_hash, now).await?;
    tx.commit().await?;
    Ok(created)
}

/// The rows of a new account; the caller commits.
pub(crate) async fn insert_account(
    tx: &mut AnyConnection,
    seed: &BootstrapSeed,
    password_hash: String,
    now: Millis,
) -> Result<Bootstrap> {
    let account_id = insert_returning(
        tx,
        Sql::new(
            "INSERT INTO accounts (account_name, email, locale, time_zone, created_at, updated_at) \
             VALUES (",
        )
        .bind(seed.account_name.as_str())
        .push(", ")
        .bind(seed.owner_email.as_str())
        .push(", 'en-US', 'UTC', ")
        .bind(now)
        .push(", ")
        .bind(now)
        .push(") RETURNING account_id"),
    )
    .await?;

    let role_ids = crate::rows::to_json(OWNER_ROLE_IDS)?;
    let owner_member_id = insert_returning(
        tx,
        Sql::new(
            "INSERT INTO members (account_id, member_name, email, password_hash, status, \
             role_ids, is_owner, locale, time_zone, created_at, updated_at, email_verified, \
             activated_at) VALUES (",
        )
        .bind(account_id)
        .push(", ")
        .bind(seed.owner_name.as_str())
        .push(", ")
        .bind(seed.owner_email.as_str())
        .push(", ")
        .bind(password_hash)
        .push(", 'enabled', ")
        .bind(role_ids)
        .push(", 1, 'en-US', 'UTC', ")
        .bind(now)
        .push(", ")
        .bind(now)
        // The owner's address is the operator's own, and the first start counts as the
        // owner's activation (response.md §1.3).
        .push(", 1, ")
        .bind(now)
        .push(") RETURNING member_id"),
    )
    .await?;

    // Stored hashed (§1.26); the plain key is returned once, for the first-start banner.
    if let Err(refusal) = crate::signin::insert_app_key(
        tx,
        account_id,
        owner_member_id,
        "bootstrap",
        &seed.app_key,
        now,
    )
    .await?
    {
        return Err(StoreError::Corrupt(format!(
            "cannot create the bootstrap APP key: {refusal:?}"
        )));
    }

    let channel_id = insert_returning(
        tx,
        Sql::new(
            "INSERT INTO channels (account_id, channel_name, description, team_id, creator_id, \
             status, auto_resolve_timeout, auto_resolve_mode, created_at, updated_at) VALUES (",
        )
        .bind(account_id)
        .push(", ")
        .bind(DEFAULT_CHANNEL_NAME)
        .push(", '', 0, ")
        .bind(owner_member_id)
        .push(", 'enabled', 0, 'trigger', ")
        .bind(now)
        .push(", ")
        .bind(now)
        .push(") RETURNING channel_id"),
    )
    .await?;

    let integration_id = insert_returning(
        tx,
        Sql::new(
            "INSERT INTO integrations (account_id, integration_name, integration_type, kind, \
             channel_id, integration_key, enabled, deleted, last_event_time, created_at, \
             updated_at) VALUES (",
        )
        .bind(account_id)
        .push(", ")
        .bind(DEFAULT_INTEGRATION_NAME)
        .push(", 'standard', 'dedicated', ")
        .bind(channel_id)
        .push(", ")
        .bind(seed.integration_key.as_str())
        .push(", 1, 0, 0, ")
        .bind(now)
        .push(", ")
        .bind(now)
        .push(") RETURNING integration_id"),
    )
    .await?;

    Ok(Bootstrap {
        created: true,
        account_id,
        owner_member_id,
        owner_email: seed.owner_email.clone(),
        app_key: seed.app_key.clone(),
        channel_id,
        integration_id,
        integration_key: seed.integration_key.clone(),
    })
}

async fn insert_returning(conn: &mut AnyConnection, sql: &mut Sql) -> Result<i64> {
    let row = sql.query().fetch_one(&mut *conn).await?;
    let id: i64 = row
        .try_get(0)
        .map_err(|e| StoreError::Corrupt(format!("returned id: {e}")))?;
    Ok(id)
}

/// The first account with its owner, first APP key, first channel and that channel's first
/// standard integration (0 / "" where one was deleted since).
async fn existing(conn: &mut AnyConnection) -> Result<Option<Bootstrap>> {
    let Some(row) = sqlx::query("SELECT account_id FROM accounts ORDER BY account_id LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let account_id = get_i64(&row, "account_id")?;

    let (owner_member_id, owner_email) =
        match Sql::new("SELECT member_id, email FROM members WHERE account_id = ")
            .bind(account_id)
            .push(" AND is_owner = 1 ORDER BY member_id LIMIT 1")
            .query()
            .fetch_optional(&mut *conn)
            .await?
        {
            Some(row) => (
                get_i64(&row, "member_id")?,
                crate::rows::get_str(&row, "email")?,
            ),
            None => (0, String::new()),
        };

    // Keys are stored hashed (§1.26): a later start cannot show the first key again.
    let app_key = String::new();

    let channel_id = match Sql::new("SELECT channel_id FROM channels WHERE account_id = ")
        .bind(account_id)
        .push(" AND status <> 'deleted' ORDER BY channel_id LIMIT 1")
        .query()
        .fetch_optional(&mut *conn)
        .await?
    {
        Some(row) => get_i64(&row, "channel_id")?,
        None => 0,
    };

    let (integration_id, integration_key) = match Sql::new(
        "SELECT integration_id, integration_key FROM integrations WHERE account_id = ",
    )
    .bind(account_id)
    .push(" AND channel_id = ")
    .bind(channel_id)
    .push(" AND integration_type = 'standard' AND deleted = 0 ORDER BY integration_id LIMIT 1")
    .query()
    .fetch_optional(&mut *conn)
    .await?
    {
        Some(row) => (
            get_i64(&row, "integration_id")?,
            crate::rows::get_str(&row, "integration_key")?,
        ),
        None => (0, String::new()),
    };

    Ok(Some(Bootstrap {
        created: false,
        account_id,
        owner_member_id,
        owner_email,
        app_key,
        channel_id,
        integration_id,
        integration_key,
    }))
}

/// argon2id with the crate's default parameters, as a PHC string.
pub(crate) async fn hash_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| StoreError::Database(format!("cannot hash the password: {e}")))
    })
    .await
    .map_err(|e| StoreError::Database(format!("password hashing task failed: {e}")))?
}
