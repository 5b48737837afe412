//! Where a Teams bot may post, and the one-time codes members link themselves with
//! (response.md RSP-300, RSP-301, RSP-317; migration 0083).
//!
//! Teams lets a bot post only into conversations it has been told about: a team linked with
//! `linkTeam`, a group chat linked with `linkChat`, and the personal chat of a user who sent
//! `linkUser`. Each is recorded with the Bot Connector service URL it came from, which every
//! later call to that conversation must use.

use klaxon_core::model::Millis;

use crate::db::Sql;
use crate::rows::{get_i64, get_str};
use crate::{Result, Store};

/// A conversation the bot may post into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImConversation {
    pub integration_id: i64,
    pub conversation_id: String,
    /// `team` | `chat` | `personal`.
    pub kind: String,
    /// The user of a personal chat; "" otherwise.
    pub im_user_id: String,
    pub name: String,
    pub service_url: String,
    pub created_at: Millis,
}

const COLUMNS: &str =
    "integration_id, conversation_id, kind, im_user_id, name, service_url, created_at";

fn conversation_row(r: &sqlx::any::AnyRow) -> Result<ImConversation> {
    Ok(ImConversation {
        integration_id: get_i64(r, "integration_id")?,
        conversation_id: get_str(r, "conversation_id")?,
        kind: get_str(r, "kind")?,
        im_user_id: get_str(r, "im_user_id")?,
        name: get_str(r, "name")?,
        service_url: get_str(r, "service_url")?,
        created_at: get_i64(r, "created_at")?,
    })
}

impl Store {
    /// Records a conversation (again: its name, kind, user and service URL are replaced;
    /// another account's conversation of the same id is left alone).
    pub async fn record_im_conversation(&self, account_id: i64, c: &ImConversation) -> Result<()> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new("INSERT INTO im_conversations (account_id, ");
        sql.push(COLUMNS)
            .push(") VALUES (")
            .bind(account_id)
            .push(", ")
            .bind(c.integration_id)
            .push(", ")
            .bind(c.conversation_id.as_str())
            .push(", ")
            .bind(c.kind.as_str())
            .push(", ")
            .bind(c.im_user_id.as_str())
            .push(", ")
            .bind(c.name.as_str())
            .push(", ")
            .bind(c.service_url.as_str())
            .push(", ")
            .bind(c.created_at)
            .push(
                ") ON CONFLICT (integration_id, conversation_id) DO UPDATE SET \
                 kind = excluded.kind, im_user_id = excluded.im_user_id, name = excluded.name, \
                 service_url = excluded.service_url \
                 WHERE im_conversations.account_id = excluded.account_id",
            );
        sql.query_on(&conn).execute(&mut *conn).await?;
        Ok(())
    }

    /// One conversation of the integration.
    pub async fn im_conversation(
        &self,
        account_id: i64,
        integration_id: i64,
        conversation_id: &str,
    ) -> Result<Option<ImConversation>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM im_conversations WHERE account_id = ")
            .bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id)
            .push(" AND conversation_id = ")
            .bind(conversation_id);
        sql.query_on(&conn)
            .fetch_optional(&mut *conn)
            .await?
            .as_ref()
            .map(conversation_row)
            .transpose()
    }

    /// The personal chat of `im_user_id` with the bot, if the user ever linked themselves.
    pub async fn personal_im_conversation(
        &self,
        account_id: i64,
        integration_id: i64,
        im_user_id: &str,
    ) -> Result<Option<ImConversation>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM im_conversations WHERE account_id = ")
            .bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id)
            .push(" AND im_user_id = ")
            .bind(im_user_id)
            .push(" AND kind = 'personal' ORDER BY created_at DESC LIMIT 1");
        sql.query_on(&conn)
            .fetch_optional(&mut *conn)
            .await?
            .as_ref()
            .map(conversation_row)
            .transpose()
    }

    /// The integration's linked teams and chats (not the personal chats), oldest first.
    pub async fn im_group_conversations(
        &self,
        account_id: i64,
        integration_id: i64,
    ) -> Result<Vec<ImConversation>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM im_conversations WHERE account_id = ")
            .bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id)
            .push(" AND kind <> 'personal' ORDER BY created_at, conversation_id");
        sql.query_on(&conn)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(conversation_row)
            .collect()
    }

    /// Keeps a one-time link code (its hash) for `member_id` on the integration, replacing
    /// the member's earlier code.
    pub async fn issue_im_link_code(
        &self,
        account_id: i64,
        integration_id: i64,
        member_id: i64,
        code_hash: &str,
        expires_at: Millis,
        now: Millis,
    ) -> Result<()> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("DELETE FROM im_link_codes WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id)
            .push(" AND (member_id = ")
            .bind(member_id)
            .push(" OR expires_at <= ")
            .bind(now)
            .push(")");
        sql.query_on(&tx).execute(&mut *tx).await?;
        let mut sql = Sql::new(
            "INSERT INTO im_link_codes (code_hash, integration_id, account_id, member_id, \
             expires_at, created_at) VALUES (",
        );
        sql.bind(code_hash)
            .push(", ")
            .bind(integration_id)
            .push(", ")
            .bind(account_id)
            .push(", ")
            .bind(member_id)
            .push(", ")
            .bind(expires_at)
            .push(", ")
            .bind(now)
            .push(")");
        sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Spends a link code of the integration: Some((account, member)) when it exists and
    /// has not expired at `now`. The code is gone afterwards either way.
    pub async fn take_im_link_code(
        &self,
        integration_id: i64,
        code_hash: &str,
        now: Millis,
    ) -> Result<Option<(i64, i64)>> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new(
            "SELECT account_id, member_id, expires_at FROM im_link_codes WHERE code_hash = ",
        );
        sql.bind(code_hash)
            .push(" AND integration_id = ")
            .bind(integration_id);
        let row = sql.query_on(&tx).fetch_optional(&mut *tx).await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let mut sql = Sql::new("DELETE FROM im_link_codes WHERE code_hash = ");
        sql.bind(code_hash);
        sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        if get_i64(&row, "expires_at")? <= now {
            return Ok(None);
        }
        Ok(Some((
            get_i64(&row, "account_id")?,
            get_i64(&row, "member_id")?,
        )))
    }
}
