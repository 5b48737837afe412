//! Tenant notices waiting to be given (SVC-310…316, migration 0063). A change that owes the
//! tenant a notice writes an outbox row in its own transaction ([`enqueue`]); a SaaS node
//! claims due rows, sends them on the category's channels and replaces each row with the
//! notice records of what it did ([`Store::saas_notice_outbox_deliver`]), in one transaction.
//! A node that dies after its claim leaves the row to be claimed again when the claim runs
//! out: a notice may then be e-mailed twice, never lost.

use jiff::tz::TimeZone;
use klaxon_core::model::Millis;
use klaxon_saas::notice::Category;
use sqlx::AnyConnection;

use super::Result;
use super::notices::{NewNotice, insert_notices};
use crate::db::Sql;
use crate::rows::{get_i64, get_str};
use crate::{Store, StoreError};

/// A notice the outbox holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedNotice {
    pub outbox_id: i64,
    pub account_id: i64,
    pub category: Category,
    pub template_id: String,
    pub subject: String,
    pub content: String,
    pub related: String,
    pub created_at: Millis,
    /// Claims made so far, this one included.
    pub attempts: i64,
}

/// Writes a notice to give into the caller's transaction.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn enqueue(
    conn: &mut AnyConnection,
    account_id: i64,
    category: Category,
    template_id: &str,
    (subject, content): (String, String),
    related: &str,
    now: Millis,
) -> crate::Result<()> {
    let mut sql = Sql::new(
        "INSERT INTO saas_notice_outbox (account_id, category, template_id, subject, content, \
         related, created_at, next_at) VALUES (",
    );
    sql.bind(account_id)
        .push(", ")
        .bind(category.as_str())
        .push(", ")
        .bind(template_id)
        .push(", ")
        .bind(subject)
        .push(", ")
        .bind(content)
        .push(", ")
        .bind(related)
        .push(", ")
        .bind(now)
        .push(", ")
        .bind(now)
        .push(")");
    sql.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

/// Whether a notice about `related` was already queued or given to the account, so a job
/// that decides the same notice again (a warning due on several days) gives it once.
pub(crate) async fn queued_or_given(
    conn: &mut AnyConnection,
    account_id: i64,
    related: &str,
) -> crate::Result<bool> {
    for table in ["saas_notice_outbox", "saas_notices"] {
        let mut sql = Sql::new(&format!("SELECT 1 AS one FROM {table} WHERE account_id = "));
        sql.bind(account_id)
            .push(" AND related = ")
            .bind(related)
            .push(" LIMIT 1");
        if sql
            .query_on(conn)
            .fetch_optional(&mut *conn)
            .await?
            .is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

impl Store {
    /// Claims up to `limit` notices due at `now` for `claim_ms`: no other node takes them
    /// meanwhile. Oldest first.
    pub async fn saas_notice_outbox_claim(
        &self,
        now: Millis,
        limit: i64,
        claim_ms: Millis,
    ) -> Result<Vec<QueuedNotice>> {
        let mut due = Sql::new("SELECT outbox_id FROM saas_notice_outbox WHERE next_at <= ");
        due.bind(now).push(" ORDER BY outbox_id LIMIT ").bind(limit);
        let mut ids = Vec::new();
        for r in due.query().fetch_all(&self.inner.read).await? {
            ids.push(get_i64(&r, "outbox_id")?);
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            // The claim is the conditional update: of two nodes, one moves `next_at`.
            let mut claim = Sql::new("UPDATE saas_notice_outbox SET next_at = ");
            claim
                .bind(now + claim_ms)
                .push(", attempts = attempts + 1 WHERE outbox_id = ")
                .bind(id)
                .push(" AND next_at <= ")
                .bind(now)
                .push(
                    " RETURNING outbox_id, account_id, category, template_id, subject, content, \
                     related, created_at, attempts",
                );
            let Some(r) = claim.query().fetch_optional(&self.inner.write).await? else {
                continue;
            };
            let name = get_str(&r, "category")?;
            let category = Category::parse(&name).ok_or_else(|| {
                StoreError::Corrupt(format!("saas_notice_outbox.category {name:?}"))
            })?;
            out.push(QueuedNotice {
                outbox_id: get_i64(&r, "outbox_id")?,
                account_id: get_i64(&r, "account_id")?,
                category,
                template_id: get_str(&r, "template_id")?,
                subject: get_str(&r, "subject")?,
                content: get_str(&r, "content")?,
                related: get_str(&r, "related")?,
                created_at: get_i64(&r, "created_at")?,
                attempts: get_i64(&r, "attempts")?,
            });
        }
        Ok(out)
    }

    /// Replaces an outbox row with the records of its sending (SVC-312), in one transaction.
    pub async fn saas_notice_outbox_deliver(
        &self,
        outbox_id: i64,
        billing_tz: &TimeZone,
        records: &[NewNotice],
    ) -> Result<()> {
        let mut tx = self.inner.write.begin().await?;
        let mut del = Sql::new("DELETE FROM saas_notice_outbox WHERE outbox_id = ");
        del.bind(outbox_id);
        // Zero rows: another node delivered it after this claim ran out. What this node sent
        // was sent all the same, so its records are written too (SVC-312).
        del.query_on(&tx).execute(&mut *tx).await?;
        insert_notices(&mut tx, billing_tz, records).await?;
        tx.commit().await?;
        Ok(())
    }

    /// How many notices wait in the outbox (for tests and the operator).
    pub async fn saas_notice_outbox_len(&self) -> Result<i64> {
        let row = Sql::new("SELECT COUNT(*) AS n FROM saas_notice_outbox")
            .query()
            .fetch_one(&self.inner.read)
            .await?;
        Ok(get_i64(&row, "n")?)
    }
}
