//! SMS reply codes (migration 0041; docs/notifications.md "Acting from a call or an SMS"):
//! an incident SMS tells its reader a short code to reply with, and the inbound SMS webhook
//! maps (sender phone, code) back to the incident and the member it was sent to.
//!
//! A code is unique among the live codes of one phone number: [`Store::take_reply_code`]
//! inserts a candidate and succeeds only when the (phone, code) pair is free or its holder
//! has expired, so two live SMS to one phone never share a code, even across accounts and
//! nodes. The code of an outbox row is kept with its `rid`, so a retried send shows the
//! same code.

use klaxon_core::model::Millis;

use crate::db::Sql;
use crate::rows::{get_i64, get_str};
use crate::{Result, Store};

/// A code to hand out with one SMS notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyCode {
    /// The recipient's phone (E.164), as the SMS was addressed.
    pub phone: String,
    pub code: String,
    pub account_id: i64,
    pub incident_id: String,
    pub member_id: i64,
    /// The outbox row the SMS was sent for.
    pub rid: String,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// What a live code points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTarget {
    pub account_id: i64,
    pub incident_id: String,
    pub member_id: i64,
    pub expires_at: Millis,
}

impl Store {
    /// The code of the outbox row `c.rid` if it already has one (a retried send), else
    /// `c.code` when it is free for `c.phone` (unused, or its holder expired by
    /// `c.created_at`). `None`: the candidate is taken by a live code; try another.
    pub async fn take_reply_code(&self, c: &ReplyCode) -> Result<Option<String>> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("SELECT code FROM sms_reply_codes WHERE rid = ");
        sql.bind(c.rid.as_str());
        if let Some(row) = sql.query_on(&tx).fetch_optional(&mut *tx).await? {
            let code = get_str(&row, "code")?;
            tx.rollback().await?;
            return Ok(Some(code));
        }
        let mut sql = Sql::new(
            "INSERT INTO sms_reply_codes (phone, code, account_id, incident_id, member_id, rid, \
             created_at, expires_at) VALUES (",
        );
        sql.bind(c.phone.as_str())
            .push(", ")
            .bind(c.code.as_str())
            .push(", ")
            .bind(c.account_id)
            .push(", ")
            .bind(c.incident_id.as_str())
            .push(", ")
            .bind(c.member_id)
            .push(", ")
            .bind(c.rid.as_str())
            .push(", ")
            .bind(c.created_at)
            .push(", ")
            .bind(c.expires_at)
            .push(
                ") ON CONFLICT (phone, code) DO UPDATE SET account_id = excluded.account_id, \
                 incident_id = excluded.incident_id, member_id = excluded.member_id, \
                 rid = excluded.rid, created_at = excluded.created_at, \
                 expires_at = excluded.expires_at WHERE sms_reply_codes.expires_at <= ",
            )
            .bind(c.created_at);
        let done = sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok((done.rows_affected() > 0).then(|| c.code.clone()))
    }

    /// The incident and member a reply of `phone` with `code` names, while the code lives.
    pub async fn reply_target(
        &self,
        phone: &str,
        code: &str,
        now: Millis,
    ) -> Result<Option<ReplyTarget>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new(
            "SELECT account_id, incident_id, member_id, expires_at FROM sms_reply_codes \
             WHERE phone = ",
        );
        sql.bind(phone)
            .push(" AND code = ")
            .bind(code)
            .push(" AND expires_at > ")
            .bind(now);
        match sql.query_on(&conn).fetch_optional(&mut *conn).await? {
            Some(r) => Ok(Some(ReplyTarget {
                account_id: get_i64(&r, "account_id")?,
                incident_id: get_str(&r, "incident_id")?,
                member_id: get_i64(&r, "member_id")?,
                expires_at: get_i64(&r, "expires_at")?,
            })),
            None => Ok(None),
        }
    }

    /// Removes the codes that expired before `now` (run by the retention sweep).
    pub async fn purge_reply_codes(&self, now: Millis) -> Result<u64> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new("DELETE FROM sms_reply_codes WHERE expires_at <= ");
        sql.bind(now);
        let done = sql.query_on(&conn).execute(&mut *conn).await?;
        Ok(done.rows_affected())
    }
}
