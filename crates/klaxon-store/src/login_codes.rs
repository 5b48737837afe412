//! E-mail-code sign-in (response.md RSP-578, docs/sign-in.md; migration 0069).
//!
//! A code is six digits, so unlike the long random tokens elsewhere it is stored as
//! SHA-256(salt || code) with a random salt of its own. A code works once, for its lifetime,
//! and dies after `max_tries` wrong codes. Asking for a new code voids the member's earlier
//! ones, so at most one code of a member is alive at any time.

use klaxon_core::login_code::format_code;
use klaxon_core::model::Millis;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::db::Sql;
use crate::rows::{get_i64, get_str};
use crate::signin::random_hex;
use crate::{Result, Store};

/// The limits of e-mail codes (klaxon_core::login_code holds the figures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodePolicy {
    pub ttl_ms: Millis,
    pub max_tries: i64,
    pub max_per_window: i64,
    pub window_ms: Millis,
}

/// A live member an e-mail code may be sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeCandidate {
    pub account_id: i64,
    pub member_id: i64,
    /// The address as the member entered it (mail goes there, not to the typed spelling).
    pub email: String,
    pub member_name: String,
    pub is_owner: bool,
}

/// Whose code was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeUse {
    pub account_id: i64,
    pub member_id: i64,
}

fn salted(salt: &str, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{salt}{code}").as_bytes()))
}

impl Store {
    /// The live (pending or enabled) members with this e-mail address, case-insensitively,
    /// in every account: with or without a password (members created by SSO have none).
    pub async fn code_candidates(&self, email: &str) -> Result<Vec<CodeCandidate>> {
        let mut sql = Sql::new(
            "SELECT account_id, member_id, email, member_name, is_owner FROM members \
             WHERE LOWER(email) = ",
        );
        sql.bind(email.trim().to_lowercase())
            // SVC-009: a login identifier deactivated for dormancy gets no code.
            .push(
                " AND email <> '' AND status <> 'deleted' AND login_deactivated_at = 0 \
                 ORDER BY account_id, member_id",
            );
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        rows.iter()
            .map(|r| {
                Ok(CodeCandidate {
                    account_id: get_i64(r, "account_id")?,
                    member_id: get_i64(r, "member_id")?,
                    email: get_str(r, "email")?,
                    member_name: get_str(r, "member_name")?,
                    is_owner: get_i64(r, "is_owner")? != 0,
                })
            })
            .collect()
    }

    /// Issues a sign-in code for a member and voids the member's earlier codes; `None` when
    /// the member was already sent `max_per_window` codes within the window. Rows older than
    /// the window and no longer usable are dropped on the way.
    pub async fn create_login_code(
        &self,
        account_id: i64,
        member_id: i64,
        policy: CodePolicy,
        now: Millis,
    ) -> Result<Option<String>> {
        let window_open = now - policy.window_ms;
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("DELETE FROM login_codes WHERE created_at <= ");
        sql.bind(window_open)
            .push(" AND (expires_at <= ")
            .bind(now)
            .push(" OR used_at <> 0)");
        sql.query_on(&tx).execute(&mut *tx).await?;
        let mut sql = Sql::new("SELECT COUNT(*) AS n FROM login_codes WHERE account_id = ");
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
        let mut sql = Sql::new("UPDATE login_codes SET used_at = ");
        sql.bind(now)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND member_id = ")
            .bind(member_id)
            .push(" AND used_at = 0");
        sql.query_on(&tx).execute(&mut *tx).await?;
        let code = format_code(rand::rng().random_range(0..1_000_000u32));
        let salt = random_hex(16);
        let mut sql = Sql::new(
            "INSERT INTO login_codes (code_key, account_id, member_id, salt, code_hash, \
             created_at, expires_at) VALUES (",
        );
        sql.bind(random_hex(16))
            .push(", ")
            .bind(account_id)
            .push(", ")
            .bind(member_id)
            .push(", ")
            .bind(salt.as_str())
            .push(", ")
            .bind(salted(&salt, &code))
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now + policy.ttl_ms)
            .push(")");
        sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some(code))
    }

    /// Uses a code sent to one of `members` (account, member): the live code it matches is
    /// spent and returned. When it matches none, every live code of those members counts one
    /// wrong try, and a code reaching `max_tries` is dead. A deleted member's code never works.
    pub async fn use_login_code(
        &self,
        members: &[(i64, i64)],
        code: &str,
        max_tries: i64,
        now: Millis,
    ) -> Result<Option<CodeUse>> {
        if members.is_empty() {
            return Ok(None);
        }
        let mut tx = self.inner.write.begin().await?;
        let mut live = Vec::new();
        for (account_id, member_id) in members {
            let mut sql = Sql::new(
                "SELECT c.code_key, c.salt, c.code_hash FROM login_codes c \
                 JOIN members m ON m.account_id = c.account_id AND m.member_id = c.member_id \
                 WHERE c.account_id = ",
            );
            sql.bind(*account_id)
                .push(" AND c.member_id = ")
                .bind(*member_id)
                .push(" AND c.used_at = 0 AND c.expires_at > ")
                .bind(now)
                .push(" AND c.tries < ")
                .bind(max_tries)
                .push(" AND m.status <> 'deleted'");
            for row in sql.query_on(&tx).fetch_all(&mut *tx).await? {
                live.push((
                    *account_id,
                    *member_id,
                    get_str(&row, "code_key")?,
                    get_str(&row, "salt")?,
                    get_str(&row, "code_hash")?,
                ));
            }
        }
        let matched = live
            .iter()
            .find(|(_, _, _, salt, hash)| salted(salt, code) == *hash);
        match matched {
            Some((account_id, member_id, key, _, _)) => {
                // Claim it: of two concurrent uses only one updates the row.
                let mut sql = Sql::new("UPDATE login_codes SET used_at = ");
                sql.bind(now)
                    .push(" WHERE code_key = ")
                    .bind(key.as_str())
                    .push(" AND used_at = 0");
                if sql.query_on(&tx).execute(&mut *tx).await?.rows_affected() == 0 {
                    return Ok(None);
                }
                tx.commit().await?;
                Ok(Some(CodeUse {
                    account_id: *account_id,
                    member_id: *member_id,
                }))
            }
            None => {
                for (_, _, key, _, _) in &live {
                    let mut sql =
                        Sql::new("UPDATE login_codes SET tries = tries + 1 WHERE code_key = ");
                    sql.bind(key.as_str());
                    sql.query_on(&tx).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(None)
            }
        }
    }
}
