//! Notice records (service-agreement.md SVC-312, migration 0049): one immutable row per
//! sending — one channel, one recipient — with the rendered content and its SHA-256. The
//! database refuses UPDATE and DELETE on them; they are operator records, so a purge keeps
//! them (`export::TABLES`).

use jiff::tz::TimeZone;
use klaxon_core::model::Millis;
use klaxon_saas::notice::{Category, Channel, Contacts, deemed_delivered_on};
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::{Result, ts};
use crate::Store;
use crate::db::Sql;
use crate::rows::{get_i64, get_str};

/// A notice about to be recorded. `deemed_delivered_on` and the hash are derived when it is
/// written, so they always match `sent_at` and `content`.
#[derive(Debug, Clone)]
pub struct NewNotice {
    /// 0 = every tenant (an announcement).
    pub account_id: i64,
    /// The member whose inbox holds an in-app notice; 0 otherwise.
    pub member_id: i64,
    pub category: Category,
    pub template_id: String,
    pub template_version: String,
    pub language: String,
    pub subject: String,
    pub content: String,
    pub channel: Channel,
    /// Address snapshot at sending time.
    pub recipient: String,
    pub sent_at: Millis,
    pub provider_message_id: String,
    /// `sent` (handed to the provider or written to the inbox / announcement page) or
    /// `failed` (the provider refused; SVC-311: the notice still counts as sent that day).
    pub status: String,
    pub status_detail: String,
    /// The object the notice is about, e.g. `document_version:3`.
    pub related: String,
}

/// A stored notice record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeRecord {
    pub notice_id: i64,
    pub account_id: i64,
    pub member_id: i64,
    pub category: String,
    pub critical: bool,
    pub template_id: String,
    pub template_version: String,
    pub language: String,
    pub subject: String,
    pub content: String,
    pub content_sha256: String,
    pub channel: String,
    pub recipient: String,
    pub sent_at: Millis,
    /// `YYYY-MM-DD` in `billing_tz` (SVC-311).
    pub deemed_delivered_on: String,
    pub provider_message_id: String,
    pub status: String,
    pub status_detail: String,
    pub related: String,
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

const COLUMNS: &str = "notice_id, account_id, member_id, category, critical, template_id, \
    template_version, language, subject, content, content_sha256, channel, recipient, sent_at, \
    deemed_delivered_on, provider_message_id, status, status_detail, related";

fn record(row: &AnyRow) -> crate::Result<NoticeRecord> {
    Ok(NoticeRecord {
        notice_id: get_i64(row, "notice_id")?,
        account_id: get_i64(row, "account_id")?,
        member_id: get_i64(row, "member_id")?,
        category: get_str(row, "category")?,
        critical: get_i64(row, "critical")? != 0,
        template_id: get_str(row, "template_id")?,
        template_version: get_str(row, "template_version")?,
        language: get_str(row, "language")?,
        subject: get_str(row, "subject")?,
        content: get_str(row, "content")?,
        content_sha256: get_str(row, "content_sha256")?,
        channel: get_str(row, "channel")?,
        recipient: get_str(row, "recipient")?,
        sent_at: get_i64(row, "sent_at")?,
        deemed_delivered_on: get_str(row, "deemed_delivered_on")?,
        provider_message_id: get_str(row, "provider_message_id")?,
        status: get_str(row, "status")?,
        status_detail: get_str(row, "status_detail")?,
        related: get_str(row, "related")?,
    })
}

/// Writes the notices inside the caller's transaction; returns their ids in order.
pub(crate) async fn insert_notices(
    conn: &mut AnyConnection,
    billing_tz: &TimeZone,
    notices: &[NewNotice],
) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(notices.len());
    for n in notices {
        let delivered = deemed_delivered_on(ts(n.sent_at)?, billing_tz).to_string();
        let mut sql = Sql::new(
            "INSERT INTO saas_notices (account_id, member_id, category, critical, template_id, \
             template_version, language, subject, content, content_sha256, channel, recipient, \
             sent_at, deemed_delivered_on, provider_message_id, status, status_detail, related) VALUES (",
        );
        sql.bind(n.account_id)
            .push(", ")
            .bind(n.member_id)
            .push(", ")
            .bind(n.category.as_str())
            .push(", ")
            .bind(n.category.critical())
            .push(", ")
            .bind(n.template_id.as_str())
            .push(", ")
            .bind(n.template_version.as_str())
            .push(", ")
            .bind(n.language.as_str())
            .push(", ")
            .bind(n.subject.as_str())
            .push(", ")
            .bind(n.content.as_str())
            .push(", ")
            .bind(sha256_hex(n.content.as_bytes()))
            .push(", ")
            .bind(n.channel.as_str())
            .push(", ")
            .bind(n.recipient.as_str())
            .push(", ")
            .bind(n.sent_at)
            .push(", ")
            .bind(delivered)
            .push(", ")
            .bind(n.provider_message_id.as_str())
            .push(", ")
            .bind(n.status.as_str())
            .push(", ")
            .bind(n.status_detail.as_str())
            .push(", ")
            .bind(n.related.as_str())
            .push(") RETURNING notice_id");
        let row = sql.query_on(conn).fetch_one(&mut *conn).await?;
        ids.push(get_i64(&row, "notice_id")?);
    }
    Ok(ids)
}

impl Store {
    /// Records notices in one transaction (all or none).
    pub async fn saas_record_notices(
        &self,
        billing_tz: &TimeZone,
        notices: &[NewNotice],
    ) -> Result<Vec<i64>> {
        let mut tx = self.inner.write.begin().await?;
        let ids = insert_notices(&mut tx, billing_tz, notices).await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// The tenant's inbox (SVC-312): every notice it was sent, whatever the channel, and
    /// the announcements to all tenants; newest first, `limit` rows before `before_id`
    /// (0 = from the newest).
    pub async fn saas_notices(
        &self,
        account_id: i64,
        before_id: i64,
        limit: i64,
    ) -> Result<Vec<NoticeRecord>> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM saas_notices WHERE (account_id = "
        ));
        sql.bind(account_id).push(" OR account_id = 0)");
        if before_id > 0 {
            sql.push(" AND notice_id < ").bind(before_id);
        }
        sql.push(" ORDER BY notice_id DESC LIMIT ").bind(limit);
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        Ok(rows.iter().map(record).collect::<crate::Result<_>>()?)
    }

    /// Every notice about `related` (e.g. `document_version:3`), oldest first.
    pub async fn saas_notices_about(&self, related: &str) -> Result<Vec<NoticeRecord>> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM saas_notices WHERE related = "
        ));
        sql.bind(related).push(" ORDER BY notice_id");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        Ok(rows.iter().map(record).collect::<crate::Result<_>>()?)
    }

    /// SVC-313: the tenant's owner and admins (built-in Admin role, id 2) with their
    /// e-mail addresses, as known now. Billing and technical contacts are not kept yet.
    pub async fn saas_contacts(&self, account_id: i64) -> Result<Contacts> {
        let mut sql = Sql::new(
            "SELECT member_id, email, phone, phone_verified, role_ids, is_owner FROM members \
             WHERE account_id = ",
        );
        sql.bind(account_id)
            .push(" AND status <> 'deleted' ORDER BY member_id");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        let mut contacts = Contacts::default();
        for row in &rows {
            let id = get_i64(row, "member_id")?;
            let email = get_str(row, "email")?;
            let roles: Vec<i64> =
                serde_json::from_str(&get_str(row, "role_ids")?).unwrap_or_default();
            if get_i64(row, "is_owner")? != 0 {
                if contacts.owner.is_none() {
                    contacts.owner = Some((id, email));
                    // Only a number the owner proved receives notices by SMS.
                    let phone = get_str(row, "phone")?;
                    if get_i64(row, "phone_verified")? != 0 && !phone.is_empty() {
                        contacts.owner_phone = Some(phone);
                    }
                }
            } else if roles.contains(&klaxon_core::directory::ROLE_ADMIN) {
                contacts.admins.push((id, email));
            }
        }
        // A purged tenant has no members left: its last contact record (an operator record)
        // still receives the certificate and debt notices (SVC-022, SVC-191).
        if contacts.owner.is_none() {
            let mut sql = Sql::new("SELECT owner_email FROM saas_contacts WHERE account_id = ");
            sql.bind(account_id);
            if let Some(row) = sql.query().fetch_optional(&self.inner.read).await? {
                let email = get_str(&row, "owner_email")?;
                if !email.is_empty() {
                    contacts.owner = Some((0, email));
                }
            }
        }
        Ok(contacts)
    }

    /// The tenants a general notice goes to: every account except those whose service has
    /// ended or that are being (or were) purged.
    pub async fn saas_notice_accounts(&self) -> Result<Vec<i64>> {
        let rows = Sql::new(
            "SELECT account_id FROM accounts WHERE account_id NOT IN \
             (SELECT account_id FROM saas_tenants WHERE state IN ('ended', 'purging', 'purged')) \
             ORDER BY account_id",
        )
        .query()
        .fetch_all(&self.inner.read)
        .await?;
        Ok(rows
            .iter()
            .map(|r| get_i64(r, "account_id"))
            .collect::<crate::Result<_>>()?)
    }
}
