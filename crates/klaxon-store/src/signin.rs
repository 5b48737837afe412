//! APP keys (response.md §1.26, RSP-610 … RSP-612), console sessions and sign-in lockout.
//!
//! Secrets are never stored: an APP key and a session token are 128/256-bit random values, and
//! the tables hold their SHA-256. A plain (unsalted, unkeyed) hash is enough because the
//! secrets are random and long — there is no dictionary to try — and it keeps the lookup one
//! indexed equality, on any node, without a server-side pepper to distribute (docs/sign-in.md).

use klaxon_core::model::Millis;
use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::AnyPool;

use crate::db::Sql;
use crate::directory::{APP_KEYS_PER_MEMBER, Outcome, Refusal};
use crate::records::AppKeyOwner;
use crate::rows::{get_i64, get_str};
use crate::{Result, Store};

/// RSP-612: `last_used_at` is written at most this often per key.
pub const LAST_USED_GRANULARITY_MS: Millis = 60_000;

/// Lower-case hex SHA-256 of a secret: what the tables hold instead of the secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// `n` random bytes as lower-case hex.
pub(crate) fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill(&mut bytes[..]);
    hex::encode(bytes)
}

/// The last four characters of a key, shown in lists so keys can be told apart.
fn hint(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

/// An APP key as listed: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppKeyInfo {
    pub key_id: i64,
    pub key_name: String,
    /// 0 for an account-level key (§1.26).
    pub member_id: i64,
    pub key_hint: String,
    pub created_at: Millis,
    /// 0 = never used.
    pub last_used_at: Millis,
}

/// A key just created: the secret is in here once and nowhere else (RSP-610).
#[derive(Debug, Clone)]
pub struct NewAppKey {
    pub info: AppKeyInfo,
    pub app_key: String,
}

/// The owner of a key in use, after [`Store::use_app_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppKeyUse {
    pub key_id: i64,
    pub account_id: i64,
    /// 0 for an account-level key.
    pub member_id: i64,
}

/// A live console session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub account_id: i64,
    pub member_id: i64,
    pub csrf_token: String,
    pub expires_at: Millis,
}

/// A session just created: `token` goes into the cookie, only its hash is stored.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub session: Session,
}

/// A member that may sign in with a password.
#[derive(Debug, Clone)]
pub struct LoginCandidate {
    pub account_id: i64,
    pub member_id: i64,
    pub password_hash: String,
    pub status: String,
}

/// Failed sign-ins per login name: `max_failures` within `window_ms` lock the name for
/// `lock_ms` (docs/sign-in.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub max_failures: i64,
    pub window_ms: Millis,
    pub lock_ms: Millis,
}

const KEY_COLUMNS: &str = "key_id, key_name, member_id, key_hint, created_at, last_used_at";

fn key_info(row: &sqlx::any::AnyRow) -> Result<AppKeyInfo> {
    Ok(AppKeyInfo {
        key_id: get_i64(row, "key_id")?,
        key_name: get_str(row, "key_name")?,
        member_id: get_i64(row, "member_id")?,
        key_hint: get_str(row, "key_hint")?,
        created_at: get_i64(row, "created_at")?,
        last_used_at: get_i64(row, "last_used_at")?,
    })
}

/// Inserts a key row for `app_key` (hashed), refusing a sixth key of the same owner
/// (RSP-610; account-level keys, `member_id` 0, have their own five). The caller commits.
pub(crate) async fn insert_app_key(
    conn: &mut sqlx::AnyConnection,
    account_id: i64,
    member_id: i64,
    key_name: &str,
    app_key: &str,
    now: Millis,
) -> Result<Outcome<AppKeyInfo>> {
    if member_id != 0 {
        let mut sql = Sql::new("SELECT member_id FROM members WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND member_id = ")
            .bind(member_id)
            .push(" AND status <> 'deleted'");
        if sql
            .query_on(conn)
            .fetch_optional(&mut *conn)
            .await?
            .is_none()
        {
            return Ok(Err(Refusal::NotFound(format!(
                "member_id: member {member_id} not found"
            ))));
        }
    }
    let mut sql = Sql::new("SELECT COUNT(*) AS n FROM app_keys WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND member_id = ")
        .bind(member_id);
    let held = get_i64(&sql.query_on(conn).fetch_one(&mut *conn).await?, "n")?;
    if held >= APP_KEYS_PER_MEMBER {
        let owner = if member_id == 0 {
            "the account".to_string()
        } else {
            format!("member {member_id}")
        };
        return Ok(Err(Refusal::Invalid(format!(
            "limit_exceeded: {owner} already holds {APP_KEYS_PER_MEMBER} APP keys; delete one first"
        ))));
    }
    let mut sql = Sql::new(
        "INSERT INTO app_keys (key_hash, account_id, member_id, key_name, key_hint, created_at, \
         last_used_at) VALUES (",
    );
    sql.bind(hash_secret(app_key))
        .push(", ")
        .bind(account_id)
        .push(", ")
        .bind(member_id)
        .push(", ")
        .bind(key_name)
        .push(", ")
        .bind(hint(app_key))
        .push(", ")
        .bind(now)
        .push(", 0) RETURNING ")
        .push(KEY_COLUMNS);
    match sql.query_on(conn).fetch_one(&mut *conn).await {
        Ok(row) => Ok(Ok(key_info(&row)?)),
        Err(e) if crate::directory::unique_violation(&e) => Ok(Err(Refusal::Conflict(
            "app_key: already exists".to_string(),
        ))),
        Err(e) => Err(e.into()),
    }
}

/// SQLite cannot hash in SQL: keys copied by migration 0013 as `plain:<key>` are hashed here,
/// right after the migrations, in one transaction.
pub(crate) async fn hash_plain_app_keys(write: &AnyPool) -> Result<()> {
    let mut tx = write.begin().await?;
    let rows = sqlx::query("SELECT key_id, key_hash FROM app_keys WHERE key_hash LIKE 'plain:%'")
        .fetch_all(&mut *tx)
        .await?;
    for row in rows {
        let key_id = get_i64(&row, "key_id")?;
        let stored = get_str(&row, "key_hash")?;
        let plain = stored.strip_prefix("plain:").unwrap_or(&stored);
        let mut sql = Sql::new("UPDATE app_keys SET key_hash = ");
        sql.bind(hash_secret(plain))
            .push(" WHERE key_id = ")
            .bind(key_id);
        sql.query_on(&tx).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

impl Store {
    /// Creates an APP key for a live member (`member_id` > 0) or for the account
    /// (`member_id` = 0, §1.26) and returns the secret, once (RSP-610).
    pub async fn create_app_key(
        &self,
        account_id: i64,
        member_id: i64,
        key_name: &str,
        now: Millis,
    ) -> Result<Outcome<NewAppKey>> {
        let app_key = random_hex(16);
        let mut tx = self.inner.write.begin().await?;
        match insert_app_key(&mut tx, account_id, member_id, key_name, &app_key, now).await? {
            Ok(info) => {
                tx.commit().await?;
                Ok(Ok(NewAppKey { info, app_key }))
            }
            Err(refusal) => {
                tx.rollback().await?;
                Ok(Err(refusal))
            }
        }
    }

    /// The keys of one owner (`Some(member_id)`, 0 = account-level) or of the whole account
    /// (`None`), oldest first.
    pub async fn list_app_keys(
        &self,
        account_id: i64,
        member_id: Option<i64>,
    ) -> Result<Vec<AppKeyInfo>> {
        let mut sql = Sql::new("SELECT ");
        sql.push(KEY_COLUMNS)
            .push(" FROM app_keys WHERE account_id = ")
            .bind(account_id);
        if let Some(m) = member_id {
            sql.push(" AND member_id = ").bind(m);
        }
        sql.push(" ORDER BY created_at, key_id");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        rows.iter().map(key_info).collect()
    }

    /// One key of the account.
    pub async fn app_key_info(&self, account_id: i64, key_id: i64) -> Result<Option<AppKeyInfo>> {
        let mut sql = Sql::new("SELECT ");
        sql.push(KEY_COLUMNS)
            .push(" FROM app_keys WHERE account_id = ")
            .bind(account_id)
            .push(" AND key_id = ")
            .bind(key_id);
        match sql.query().fetch_optional(&self.inner.read).await? {
            Some(row) => Ok(Some(key_info(&row)?)),
            None => Ok(None),
        }
    }

    /// Deletes one key of the account; it stops working at once (RSP-611). False when there
    /// was no such key.
    pub async fn delete_app_key(&self, account_id: i64, key_id: i64) -> Result<bool> {
        let mut sql = Sql::new("DELETE FROM app_keys WHERE account_id = ");
        sql.bind(account_id).push(" AND key_id = ").bind(key_id);
        let done = sql.query().execute(&self.inner.write).await?;
        Ok(done.rows_affected() > 0)
    }

    /// Resolves a presented key and records its use: `last_used_at` is written only when the
    /// stored value is at least a minute old, so a busy key costs one write a minute, not one
    /// per request (RSP-612).
    pub async fn use_app_key(&self, app_key: &str, now: Millis) -> Result<Option<AppKeyUse>> {
        let mut sql = Sql::new(
            "SELECT key_id, account_id, member_id, last_used_at FROM app_keys WHERE key_hash = ",
        );
        sql.bind(hash_secret(app_key));
        let Some(row) = sql.query().fetch_optional(&self.inner.read).await? else {
            return Ok(None);
        };
        let found = AppKeyUse {
            key_id: get_i64(&row, "key_id")?,
            account_id: get_i64(&row, "account_id")?,
            member_id: get_i64(&row, "member_id")?,
        };
        let last = get_i64(&row, "last_used_at")?;
        if now - last >= LAST_USED_GRANULARITY_MS {
            let mut sql = Sql::new("UPDATE app_keys SET last_used_at = ");
            sql.bind(now)
                .push(" WHERE key_id = ")
                .bind(found.key_id)
                .push(" AND last_used_at <= ")
                .bind(now - LAST_USED_GRANULARITY_MS);
            sql.query().execute(&self.inner.write).await?;
        }
        Ok(Some(found))
    }

    /// The raw stored column values of `app_keys.key_hash` of an account (tests: the
    /// database never holds a plain key).
    pub async fn app_key_hashes(&self, account_id: i64) -> Result<Vec<String>> {
        let mut sql = Sql::new("SELECT key_hash FROM app_keys WHERE account_id = ");
        sql.bind(account_id).push(" ORDER BY key_id");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        rows.iter().map(|r| get_str(r, "key_hash")).collect()
    }

    /// Members (not deleted, with a password) whose email matches, case-insensitively.
    pub async fn login_candidates(&self, email: &str) -> Result<Vec<LoginCandidate>> {
        let mut sql = Sql::new(
            "SELECT account_id, member_id, password_hash, status FROM members \
             WHERE LOWER(email) = ",
        );
        sql.bind(email.trim().to_lowercase())
            .push(" AND status <> 'deleted' AND password_hash <> '' ORDER BY account_id");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        rows.iter()
            .map(|r| {
                Ok(LoginCandidate {
                    account_id: get_i64(r, "account_id")?,
                    member_id: get_i64(r, "member_id")?,
                    password_hash: get_str(r, "password_hash")?,
                    status: get_str(r, "status")?,
                })
            })
            .collect()
    }

    /// The instant a login name is locked until, when it is locked at `now`.
    pub async fn login_locked_until(&self, login: &str, now: Millis) -> Result<Option<Millis>> {
        let mut sql = Sql::new("SELECT locked_until FROM login_failures WHERE login = ");
        sql.bind(login.trim().to_lowercase());
        match sql.query().fetch_optional(&self.inner.read).await? {
            Some(row) => {
                let until = get_i64(&row, "locked_until")?;
                Ok((until > now).then_some(until))
            }
            None => Ok(None),
        }
    }

    /// Counts one failed sign-in of `login`; returns the lock's end when this failure locks
    /// the name. Failures older than the window are forgotten; a lock resets the count.
    pub async fn record_login_failure(
        &self,
        login: &str,
        now: Millis,
        policy: LockoutPolicy,
    ) -> Result<Option<Millis>> {
        let login = login.trim().to_lowercase();
        let mut tx = self.inner.write.begin().await?;
        let window_open = now - policy.window_ms;
        // Rows that no longer count (window over, no lock) are forgotten on the way, so
        // guesses at unknown addresses do not pile up.
        let mut sql = Sql::new("DELETE FROM login_failures WHERE window_start <= ");
        sql.bind(window_open)
            .push(" AND locked_until <= ")
            .bind(now)
            .push(" AND login <> ")
            .bind(login.as_str());
        sql.query_on(&tx).execute(&mut *tx).await?;
        let mut sql = Sql::new(
            "INSERT INTO login_failures (login, failures, window_start, locked_until) VALUES (",
        );
        sql.bind(login.as_str())
            .push(", 1, ")
            .bind(now)
            .push(", 0) ON CONFLICT (login) DO UPDATE SET failures = CASE WHEN login_failures.window_start <= ")
            .bind(window_open)
            .push(" THEN 1 ELSE login_failures.failures + 1 END, window_start = CASE WHEN login_failures.window_start <= ")
            .bind(window_open)
            .push(" THEN ")
            .bind(now)
            .push(" ELSE login_failures.window_start END RETURNING failures");
        let row = sql.query_on(&tx).fetch_one(&mut *tx).await?;
        let failures = get_i64(&row, "failures")?;
        let locked = if failures >= policy.max_failures {
            let until = now + policy.lock_ms;
            let mut sql = Sql::new("UPDATE login_failures SET failures = 0, window_start = ");
            sql.bind(now)
                .push(", locked_until = ")
                .bind(until)
                .push(" WHERE login = ")
                .bind(login.as_str());
            sql.query_on(&tx).execute(&mut *tx).await?;
            Some(until)
        } else {
            None
        };
        tx.commit().await?;
        Ok(locked)
    }

    /// A successful sign-in forgets the failures of its login name.
    pub async fn clear_login_failures(&self, login: &str) -> Result<()> {
        let mut sql = Sql::new("DELETE FROM login_failures WHERE login = ");
        sql.bind(login.trim().to_lowercase());
        sql.query().execute(&self.inner.write).await?;
        Ok(())
    }

    /// Opens a session for a member that just signed in: a `pending` member becomes
    /// `enabled` with `activated_at` (RSP-551, SVC-034) and the sign-in is recorded
    /// (SVC-009). Expired sessions are purged on the way.
    pub async fn create_session(
        &self,
        account_id: i64,
        member_id: i64,
        ttl_ms: Millis,
        now: Millis,
    ) -> Result<NewSession> {
        let token = random_hex(32);
        let session = Session {
            account_id,
            member_id,
            csrf_token: random_hex(32),
            expires_at: now + ttl_ms,
        };
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("DELETE FROM sessions WHERE expires_at <= ");
        sql.bind(now);
        sql.query_on(&tx).execute(&mut *tx).await?;
        let mut sql = Sql::new(
            "INSERT INTO sessions (session_hash, account_id, member_id, csrf_token, created_at, \
             expires_at) VALUES (",
        );
        sql.bind(hash_secret(&token))
            .push(", ")
            .bind(account_id)
            .push(", ")
            .bind(member_id)
            .push(", ")
            .bind(session.csrf_token.as_str())
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(session.expires_at)
            .push(")");
        sql.query_on(&tx).execute(&mut *tx).await?;
        let mut sql = Sql::new("UPDATE members SET status = 'enabled', activated_at = ");
        sql.bind(now)
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND member_id = ")
            .bind(member_id)
            .push(" AND status = 'pending'");
        sql.query_on(&tx).execute(&mut *tx).await?;
        // SVC-009: every interactive sign-in (password, SSO, sign-in code, registration)
        // opens its session here, so this is where the last sign-in is kept.
        let mut sql = Sql::new("UPDATE members SET last_signin_at = ");
        sql.bind(now)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND member_id = ")
            .bind(member_id);
        sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(NewSession { token, session })
    }

    /// The live session of a cookie token: `None` when unknown, expired or its member is no
    /// longer live.
    pub async fn session(&self, token: &str, now: Millis) -> Result<Option<Session>> {
        let mut sql = Sql::new(
            "SELECT s.account_id, s.member_id, s.csrf_token, s.expires_at FROM sessions s \
             JOIN members m ON m.account_id = s.account_id AND m.member_id = s.member_id \
             WHERE s.session_hash = ",
        );
        sql.bind(hash_secret(token))
            .push(" AND s.expires_at > ")
            .bind(now)
            .push(" AND m.status <> 'deleted'");
        match sql.query().fetch_optional(&self.inner.read).await? {
            Some(row) => Ok(Some(Session {
                account_id: get_i64(&row, "account_id")?,
                member_id: get_i64(&row, "member_id")?,
                csrf_token: get_str(&row, "csrf_token")?,
                expires_at: get_i64(&row, "expires_at")?,
            })),
            None => Ok(None),
        }
    }

    /// Ends a session (sign-out), with its SAML subject when a SAML sign-in opened it.
    /// False when there was none.
    pub async fn delete_session(&self, token: &str) -> Result<bool> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("DELETE FROM sessions WHERE session_hash = ");
        sql.bind(hash_secret(token));
        let done = sql.query_on(&tx).execute(&mut *tx).await?;
        let mut sql = Sql::new("DELETE FROM saml_sessions WHERE session_hash = ");
        sql.bind(hash_secret(token));
        sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// The account owner's member id (an account-level key acts as the owner, §1.26).
    pub async fn owner_member_id(&self, account_id: i64) -> Result<Option<i64>> {
        let mut sql = Sql::new("SELECT member_id FROM members WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND is_owner = 1 AND status <> 'deleted' ORDER BY member_id LIMIT 1");
        match sql.query().fetch_optional(&self.inner.read).await? {
            Some(row) => Ok(Some(get_i64(&row, "member_id")?)),
            None => Ok(None),
        }
    }
}

/// Looks a key up without recording a use (`Store::app_key`).
pub(crate) async fn app_key_owner(pool: &AnyPool, key: &str) -> Result<Option<AppKeyOwner>> {
    let mut sql = Sql::new("SELECT account_id, member_id FROM app_keys WHERE key_hash = ");
    sql.bind(hash_secret(key));
    match sql.query().fetch_optional(pool).await? {
        Some(row) => Ok(Some(AppKeyOwner {
            account_id: get_i64(&row, "account_id")?,
            member_id: get_i64(&row, "member_id")?,
        })),
        None => Ok(None),
    }
}
