//! Password reset by e-mail (docs/sign-in.md; migration 0021).
//!
//! A reset token is a 256-bit random value shown only in the e-mail; the table keeps its
//! SHA-256, as for sessions. It works once, until it expires; using it sets the new
//! password, voids the member's other outstanding tokens and ends every session of the
//! member, in one transaction.

use klaxon_core::model::Millis;

use crate::db::Sql;
use crate::rows::get_i64;
use crate::signin::{hash_secret, random_hex};
use crate::{Result, Store};

/// The limits of reset requests, per member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetPolicy {
    /// How long a token works after it is sent.
    pub ttl_ms: Millis,
    /// At most this many tokens per member within `window_ms`.
    pub max_per_window: i64,
    pub window_ms: Millis,
}

/// Whose password a used token changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetDone {
    pub account_id: i64,
    pub member_id: i64,
}

impl Store {
    /// Issues a reset token for a member; `None` when the member already asked
    /// `max_per_window` times within the window (the caller answers the same either way).
    /// Rows older than the window and no longer usable are dropped on the way.
    pub async fn create_password_reset(
        &self,
        account_id: i64,
        member_id: i64,
        policy: ResetPolicy,
        now: Millis,
    ) -> Result<Option<String>> {
        let window_open = now - policy.window_ms;
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("DELETE FROM password_resets WHERE created_at <= ");
        sql.bind(window_open)
            .push(" AND (expires_at <= ")
            .bind(now)
            .push(" OR used_at <> 0)");
        sql.query_on(&tx).execute(&mut *tx).await?;
        let mut sql = Sql::new("SELECT COUNT(*) AS n FROM password_resets WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND member_id = ")
            .bind(member_id)
            .push(" AND created_at > ")
            .bind(window_open);
        let row = sql.query_on(&tx).fetch_one(&mut *tx).await?;
        if get_i64(&row, "n")? >= policy.max_per_window {
            tx.commit().await?;
            return Ok(None);
        }
        let token = random_hex(32);
        let mut sql = Sql::new(
            "INSERT INTO password_resets (token_hash, account_id, member_id, created_at, \
             expires_at) VALUES (",
        );
        sql.bind(hash_secret(&token))
            .push(", ")
            .bind(account_id)
            .push(", ")
            .bind(member_id)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now + policy.ttl_ms)
            .push(")");
        sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some(token))
    }

    /// Uses a reset token: sets the new password (already an argon2 PHC string), voids the
    /// member's other tokens and deletes all their sessions. `None` when the token is
    /// unknown, used, expired, or its member was deleted — nothing changes then.
    pub async fn use_password_reset(
        &self,
        token: &str,
        password_hash: &str,
        now: Millis,
    ) -> Result<Option<ResetDone>> {
        let mut tx = self.inner.write.begin().await?;
        // Claim the token first: of two concurrent uses only one updates the row.
        let mut sql = Sql::new("UPDATE password_resets SET used_at = ");
        sql.bind(now)
            .push(" WHERE token_hash = ")
            .bind(hash_secret(token))
            .push(" AND used_at = 0 AND expires_at > ")
            .bind(now)
            .push(" RETURNING account_id, member_id");
        let Some(row) = sql.query_on(&tx).fetch_optional(&mut *tx).await? else {
            return Ok(None);
        };
        let done = ResetDone {
            account_id: get_i64(&row, "account_id")?,
            member_id: get_i64(&row, "member_id")?,
        };
        let mut sql = Sql::new("UPDATE members SET password_hash = ");
        sql.bind(password_hash)
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE account_id = ")
            .bind(done.account_id)
            .push(" AND member_id = ")
            .bind(done.member_id)
            .push(" AND status <> 'deleted'");
        if sql.query_on(&tx).execute(&mut *tx).await?.rows_affected() == 0 {
            // Rolls the claim back with the transaction: a deleted member's token stays dead.
            return Ok(None);
        }
        let mut sql = Sql::new("UPDATE password_resets SET used_at = ");
        sql.bind(now)
            .push(" WHERE account_id = ")
            .bind(done.account_id)
            .push(" AND member_id = ")
            .bind(done.member_id)
            .push(" AND used_at = 0");
        sql.query_on(&tx).execute(&mut *tx).await?;
        let mut sql = Sql::new("DELETE FROM sessions WHERE account_id = ");
        sql.bind(done.account_id)
            .push(" AND member_id = ")
            .bind(done.member_id);
        sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some(done))
    }

    /// Hashes a chosen password (argon2id), off the async threads.
    pub async fn hash_password(&self, password: &str) -> Result<String> {
        crate::bootstrap::hash_password(password.to_string()).await
    }
}
