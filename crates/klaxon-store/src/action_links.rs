//! One-click action links (migration 0092; docs/notifications.md "Acting from an e-mail or a
//! push"): an e-mail or an app push to a member carries a link that acknowledges, closes or
//! snoozes the incident as that member, without signing in.
//!
//! The link's token is 32 random bytes made by the caller; only its SHA-256 is stored, so a
//! copy of the database (or of a backup) cannot be used to act. A link lives until its
//! `expires_at`; the retention sweep removes it after that.

use klaxon_core::model::Millis;
use sha2::{Digest, Sha256};

use crate::db::Sql;
use crate::rows::{get_i64, get_str};
use crate::{Result, Store};

/// A link handed out with one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewActionLink {
    /// The token as it appears in the link (only its hash is stored).
    pub token: String,
    pub account_id: i64,
    pub incident_id: String,
    pub member_id: i64,
    /// The outbox row the notification was sent for.
    pub rid: String,
    /// The channel that carried it (`email`, `app`).
    pub channel: String,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// What a live link acts on, and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionLinkTarget {
    pub account_id: i64,
    pub incident_id: String,
    pub member_id: i64,
    pub channel: String,
    pub expires_at: Millis,
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Store {
    /// Records a link handed out with a notification.
    pub async fn create_action_link(&self, link: &NewActionLink) -> Result<()> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new(
            "INSERT INTO action_links (token_hash, account_id, incident_id, member_id, rid, \
             channel, created_at, expires_at) VALUES (",
        );
        sql.bind(token_hash(&link.token))
            .push(", ")
            .bind(link.account_id)
            .push(", ")
            .bind(link.incident_id.as_str())
            .push(", ")
            .bind(link.member_id)
            .push(", ")
            .bind(link.rid.as_str())
            .push(", ")
            .bind(link.channel.as_str())
            .push(", ")
            .bind(link.created_at)
            .push(", ")
            .bind(link.expires_at)
            .push(")");
        sql.query_on(&conn).execute(&mut *conn).await?;
        Ok(())
    }

    /// The incident and member a link's `token` acts on, while the link lives. `None` for a
    /// token never handed out, altered, or expired by `now`.
    pub async fn action_link_target(
        &self,
        token: &str,
        now: Millis,
    ) -> Result<Option<ActionLinkTarget>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new(
            "SELECT account_id, incident_id, member_id, channel, expires_at FROM action_links \
             WHERE token_hash = ",
        );
        sql.bind(token_hash(token))
            .push(" AND expires_at > ")
            .bind(now);
        match sql.query_on(&conn).fetch_optional(&mut *conn).await? {
            Some(r) => Ok(Some(ActionLinkTarget {
                account_id: get_i64(&r, "account_id")?,
                incident_id: get_str(&r, "incident_id")?,
                member_id: get_i64(&r, "member_id")?,
                channel: get_str(&r, "channel")?,
                expires_at: get_i64(&r, "expires_at")?,
            })),
            None => Ok(None),
        }
    }

    /// Removes the links that expired before `now` (run by the retention sweep).
    pub async fn purge_action_links(&self, now: Millis) -> Result<u64> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new("DELETE FROM action_links WHERE expires_at <= ");
        sql.bind(now);
        let done = sql.query_on(&conn).execute(&mut *conn).await?;
        Ok(done.rows_affected())
    }
}
