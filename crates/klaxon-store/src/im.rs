//! IM integrations and linked identities (response.md 1.21, RSP-301, RSP-310, RSP-332;
//! migration 0028).
//!
//! An IM integration holds the app's credentials; its links map members to their user ids on
//! the platform. Delivery reads the link of the member it sends to (no link: `app_not_linked`),
//! and a button press on a card is mapped back to the one member linked to the clicking user.
//! Every read is scoped by account, except [`Store::im_integration_for_callback`]: a platform
//! callback names only the integration, and the caller must authenticate it with the
//! integration's signing secret before trusting anything else in it.
//!
//! The credentials (`bot_token`, `signing_secret`, `encrypt_key`) are sealed at rest under the
//! tenant's data key when a key-encryption key is configured ([`crate::sealing`]); the records
//! returned here hold them opened.

use klaxon_core::model::Millis;
use sqlx::AnyConnection;

use crate::db::Sql;
use crate::rows::{get_i64, get_str};
use crate::sealing::{Opener, SecretSlot, seal_value};
use crate::webhooks::draw_integration_id;
use crate::{Result, Store};

const TABLE: &str = "im_integrations";

/// Opens the sealed credentials of a record read from the table.
async fn open_credentials(opener: &mut Opener<'_>, i: &mut ImIntegration) -> Result<()> {
    let (account, id) = (i.account_id, i.integration_id);
    opener
        .open_in_place(account, TABLE, "bot_token", id, &mut i.bot_token)
        .await?;
    opener
        .open_in_place(account, TABLE, "signing_secret", id, &mut i.signing_secret)
        .await?;
    opener
        .open_in_place(account, TABLE, "encrypt_key", id, &mut i.encrypt_key)
        .await
}

impl Store {
    async fn opened_im(&self, row: Option<ImIntegration>) -> Result<Option<ImIntegration>> {
        let Some(mut i) = row else {
            return Ok(None);
        };
        open_credentials(&mut Opener::new(self), &mut i).await?;
        Ok(Some(i))
    }
}

/// An IM integration with its credentials (the API masks them, never the store).
#[derive(Clone, PartialEq, Eq)]
pub struct ImIntegration {
    pub integration_id: i64,
    pub account_id: i64,
    /// `feishu | dingtalk | wecom | slack | teams`; all five deliver.
    pub kind: String,
    pub name: String,
    /// What API calls authenticate with: Slack's bot token, Feishu's App Secret.
    pub bot_token: String,
    /// What proves a callback came from the platform: Slack's signing secret, Feishu's
    /// Verification Token.
    pub signing_secret: String,
    /// Feishu: the App ID (with the App Secret it obtains the tenant access token); "" for Slack.
    pub app_id: String,
    /// Feishu: the Encrypt Key its callbacks are encrypted with; "" = not encrypted.
    pub encrypt_key: String,
    /// Feishu: the open platform's origin (Feishu or Lark); WeCom: the API origin (a private
    /// deployment's); "" for Slack.
    pub api_base: String,
    /// WeCom: the app's AgentId; "" for the other platforms.
    pub agent_id: String,
    /// Teams: the Microsoft Entra tenant of a single-tenant bot; "" = a multi-tenant bot.
    pub tenant_id: String,
    /// DingTalk: the organisation's CorpId; "" for the other platforms.
    pub corp_id: String,
    pub war_room_enabled: bool,
    /// `enabled` | `disabled`.
    pub status: String,
    pub creator_id: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
}

// Credentials never reach a log line through `{:?}`.
impl std::fmt::Debug for ImIntegration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImIntegration")
            .field("integration_id", &self.integration_id)
            .field("account_id", &self.account_id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("bot_token", &"<redacted>")
            .field("signing_secret", &"<redacted>")
            .field("app_id", &self.app_id)
            .field("encrypt_key", &"<redacted>")
            .field("api_base", &self.api_base)
            .field("agent_id", &self.agent_id)
            .field("tenant_id", &self.tenant_id)
            .field("corp_id", &self.corp_id)
            .field("war_room_enabled", &self.war_room_enabled)
            .field("status", &self.status)
            .finish()
    }
}

/// What creating an IM integration takes.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ImIntegrationDraft {
    pub kind: String,
    pub name: String,
    pub bot_token: String,
    pub signing_secret: String,
    pub app_id: String,
    pub encrypt_key: String,
    pub api_base: String,
    pub agent_id: String,
    pub tenant_id: String,
    pub corp_id: String,
    pub war_room_enabled: bool,
    pub status: String,
}

/// A member's identity on an integration's platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImLink {
    pub integration_id: i64,
    pub member_id: i64,
    pub im_user_id: String,
    pub created_at: Millis,
}

/// Why a store change on IM integrations was refused (nothing was written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImRefusal {
    NotFound,
    /// 1.21: at most one IM integration per account has `war_room_enabled`.
    WarRoomTaken(i64),
    /// The IM user is already linked to another member of this integration.
    UserLinked {
        member_id: i64,
    },
    /// The member is not an enabled member of the account.
    NoSuchMember,
}

const COLUMNS: &str = "integration_id, account_id, kind, name, bot_token, signing_secret, \
     war_room_enabled, status, creator_id, created_at, updated_at, app_id, encrypt_key, api_base, \
     agent_id, tenant_id, corp_id";

fn integration_row(row: &sqlx::any::AnyRow) -> Result<ImIntegration> {
    Ok(ImIntegration {
        integration_id: get_i64(row, "integration_id")?,
        account_id: get_i64(row, "account_id")?,
        kind: get_str(row, "kind")?,
        name: get_str(row, "name")?,
        bot_token: get_str(row, "bot_token")?,
        signing_secret: get_str(row, "signing_secret")?,
        war_room_enabled: get_i64(row, "war_room_enabled")? != 0,
        status: get_str(row, "status")?,
        creator_id: get_i64(row, "creator_id")?,
        created_at: get_i64(row, "created_at")?,
        updated_at: get_i64(row, "updated_at")?,
        app_id: get_str(row, "app_id")?,
        encrypt_key: get_str(row, "encrypt_key")?,
        api_base: get_str(row, "api_base")?,
        agent_id: get_str(row, "agent_id")?,
        tenant_id: get_str(row, "tenant_id")?,
        corp_id: get_str(row, "corp_id")?,
    })
}

async fn war_room_holder(conn: &mut AnyConnection, account_id: i64) -> Result<Option<i64>> {
    let mut sql = Sql::new("SELECT integration_id FROM im_integrations WHERE account_id = ");
    sql.bind(account_id).push(" AND war_room_enabled = 1");
    match sql.query_on(conn).fetch_optional(&mut *conn).await? {
        Some(r) => Ok(Some(get_i64(&r, "integration_id")?)),
        None => Ok(None),
    }
}

impl Store {
    /// Creates an IM integration with a fresh id from the shared integration id space.
    pub async fn create_im_integration(
        &self,
        account_id: i64,
        draft: &ImIntegrationDraft,
        actor: i64,
        now: Millis,
    ) -> Result<std::result::Result<ImIntegration, ImRefusal>> {
        let key = self.sealing_key(account_id, now).await?;
        let mut tx = self.inner.write.begin().await?;
        if draft.war_room_enabled
            && let Some(other) = war_room_holder(&mut tx, account_id).await?
        {
            tx.rollback().await?;
            return Ok(Err(ImRefusal::WarRoomTaken(other)));
        }
        let id = draw_integration_id(&mut tx).await?;
        let seal = |column: &'static str, plain: &str| {
            seal_value(
                key.as_ref(),
                &SecretSlot::new(account_id, TABLE, column, id),
                plain,
            )
        };
        let bot_token = seal("bot_token", &draft.bot_token)?;
        let signing_secret = seal("signing_secret", &draft.signing_secret)?;
        let encrypt_key = seal("encrypt_key", &draft.encrypt_key)?;
        let mut sql = Sql::new("INSERT INTO im_integrations (");
        sql.push(COLUMNS)
            .push(") VALUES (")
            .bind(id)
            .push(", ")
            .bind(account_id)
            .push(", ")
            .bind(draft.kind.as_str())
            .push(", ")
            .bind(draft.name.as_str())
            .push(", ")
            .bind(bot_token)
            .push(", ")
            .bind(signing_secret)
            .push(", ")
            .bind(i64::from(draft.war_room_enabled))
            .push(", ")
            .bind(draft.status.as_str())
            .push(", ")
            .bind(actor)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(draft.app_id.as_str())
            .push(", ")
            .bind(encrypt_key)
            .push(", ")
            .bind(draft.api_base.as_str())
            .push(", ")
            .bind(draft.agent_id.as_str())
            .push(", ")
            .bind(draft.tenant_id.as_str())
            .push(", ")
            .bind(draft.corp_id.as_str())
            .push(")");
        sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(self
            .im_integration(account_id, id)
            .await?
            .ok_or(ImRefusal::NotFound))
    }

    /// One IM integration of the account.
    pub async fn im_integration(
        &self,
        account_id: i64,
        integration_id: i64,
    ) -> Result<Option<ImIntegration>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM im_integrations WHERE account_id = ")
            .bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id);
        let row = sql.query_on(&conn).fetch_optional(&mut *conn).await?;
        drop(conn);
        self.opened_im(row.as_ref().map(integration_row).transpose()?)
            .await
    }

    /// The integration a platform callback names. Not scoped by account: the callback URL
    /// carries only the integration id. The caller must verify the request with the returned
    /// signing secret before acting on anything in it.
    pub async fn im_integration_for_callback(
        &self,
        integration_id: i64,
    ) -> Result<Option<ImIntegration>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM im_integrations WHERE integration_id = ")
            .bind(integration_id);
        let row = sql.query_on(&conn).fetch_optional(&mut *conn).await?;
        drop(conn);
        self.opened_im(row.as_ref().map(integration_row).transpose()?)
            .await
    }

    /// The account's IM integrations, optionally of one kind, oldest first.
    pub async fn list_im_integrations(
        &self,
        account_id: i64,
        kind: Option<&str>,
    ) -> Result<Vec<ImIntegration>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM im_integrations WHERE account_id = ")
            .bind(account_id);
        if let Some(k) = kind {
            sql.push(" AND kind = ").bind(k);
        }
        sql.push(" ORDER BY created_at, integration_id");
        let rows = sql.query_on(&conn).fetch_all(&mut *conn).await?;
        drop(conn);
        let mut opener = Opener::new(self);
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut i = integration_row(r)?;
            open_credentials(&mut opener, &mut i).await?;
            out.push(i);
        }
        Ok(out)
    }

    /// Deletes an IM integration and its links. False when it does not exist.
    pub async fn delete_im_integration(
        &self,
        account_id: i64,
        integration_id: i64,
    ) -> Result<bool> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("DELETE FROM im_links WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id);
        sql.query_on(&tx).execute(&mut *tx).await?;
        for table in ["im_card_codes", "im_conversations", "im_link_codes"] {
            let mut sql = Sql::new(&format!("DELETE FROM {table} WHERE account_id = "));
            sql.bind(account_id)
                .push(" AND integration_id = ")
                .bind(integration_id);
            sql.query_on(&tx).execute(&mut *tx).await?;
        }
        let mut sql = Sql::new("DELETE FROM im_unavailable_chats WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id);
        sql.query_on(&tx).execute(&mut *tx).await?;
        let mut sql = Sql::new("DELETE FROM im_integrations WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id);
        let gone = sql.query_on(&tx).execute(&mut *tx).await?.rows_affected() == 1;
        tx.commit().await?;
        Ok(gone)
    }

    /// Links `member_id` to `im_user_id` on the integration (RSP-301), replacing the member's
    /// earlier link. Refused when the integration or member is unknown, or the IM user is
    /// already linked to another member.
    pub async fn link_im_user(
        &self,
        account_id: i64,
        integration_id: i64,
        member_id: i64,
        im_user_id: &str,
        now: Millis,
    ) -> Result<std::result::Result<ImLink, ImRefusal>> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("SELECT integration_id FROM im_integrations WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id);
        if sql.query_on(&tx).fetch_optional(&mut *tx).await?.is_none() {
            tx.rollback().await?;
            return Ok(Err(ImRefusal::NotFound));
        }
        let mut sql = Sql::new("SELECT member_id FROM members WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND member_id = ")
            .bind(member_id)
            .push(" AND status = 'enabled'");
        if sql.query_on(&tx).fetch_optional(&mut *tx).await?.is_none() {
            tx.rollback().await?;
            return Ok(Err(ImRefusal::NoSuchMember));
        }
        let mut sql = Sql::new("SELECT member_id FROM im_links WHERE integration_id = ");
        sql.bind(integration_id)
            .push(" AND im_user_id = ")
            .bind(im_user_id);
        if let Some(r) = sql.query_on(&tx).fetch_optional(&mut *tx).await? {
            let other = get_i64(&r, "member_id")?;
            if other != member_id {
                tx.rollback().await?;
                return Ok(Err(ImRefusal::UserLinked { member_id: other }));
            }
        }
        let mut sql = Sql::new("DELETE FROM im_links WHERE integration_id = ");
        sql.bind(integration_id)
            .push(" AND member_id = ")
            .bind(member_id);
        sql.query_on(&tx).execute(&mut *tx).await?;
        let mut sql = Sql::new(
            "INSERT INTO im_links (integration_id, account_id, member_id, im_user_id, created_at) \
             VALUES (",
        );
        sql.bind(integration_id)
            .push(", ")
            .bind(account_id)
            .push(", ")
            .bind(member_id)
            .push(", ")
            .bind(im_user_id)
            .push(", ")
            .bind(now)
            .push(")");
        sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Ok(ImLink {
            integration_id,
            member_id,
            im_user_id: im_user_id.to_string(),
            created_at: now,
        }))
    }

    /// Removes a member's link on the integration. False when there was none.
    pub async fn unlink_im_user(
        &self,
        account_id: i64,
        integration_id: i64,
        member_id: i64,
    ) -> Result<bool> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new("DELETE FROM im_links WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id)
            .push(" AND member_id = ")
            .bind(member_id);
        Ok(sql
            .query_on(&conn)
            .execute(&mut *conn)
            .await?
            .rows_affected()
            == 1)
    }

    /// The links of one integration, by member.
    pub async fn im_links(&self, account_id: i64, integration_id: i64) -> Result<Vec<ImLink>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new(
            "SELECT integration_id, member_id, im_user_id, created_at FROM im_links \
             WHERE account_id = ",
        );
        sql.bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id)
            .push(" ORDER BY member_id");
        sql.query_on(&conn)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| {
                Ok(ImLink {
                    integration_id: get_i64(r, "integration_id")?,
                    member_id: get_i64(r, "member_id")?,
                    im_user_id: get_str(r, "im_user_id")?,
                    created_at: get_i64(r, "created_at")?,
                })
            })
            .collect()
    }

    /// RSP-310: the member linked to `im_user_id` on the integration, when that member is an
    /// `enabled` member of the account; `None` otherwise.
    pub async fn linked_member(
        &self,
        account_id: i64,
        integration_id: i64,
        im_user_id: &str,
    ) -> Result<Option<i64>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new(
            "SELECT l.member_id FROM im_links l JOIN members m ON m.account_id = l.account_id \
             AND m.member_id = l.member_id WHERE l.account_id = ",
        );
        sql.bind(account_id)
            .push(" AND l.integration_id = ")
            .bind(integration_id)
            .push(" AND l.im_user_id = ")
            .bind(im_user_id)
            .push(" AND m.status = 'enabled'");
        match sql.query_on(&conn).fetch_optional(&mut *conn).await? {
            Some(r) => Ok(Some(get_i64(&r, "member_id")?)),
            None => Ok(None),
        }
    }

    /// RSP-332: where a direct message of an IM app of `kind` goes for a member: the oldest
    /// enabled integration of that kind on which the member is linked, with the member's IM
    /// user id. `None` = not linked anywhere (`app_not_linked`).
    pub async fn im_target(
        &self,
        account_id: i64,
        kind: &str,
        member_id: i64,
    ) -> Result<Option<(ImIntegration, String)>> {
        self.im_target_on(account_id, kind, member_id, None).await
    }

    /// Like [`Store::im_target`], restricted to one integration when `integration_id` names
    /// one (a preference entry that picks an instance, response.md 1.15). `None` = the member
    /// is not linked there, or it is not an enabled integration of `kind` (`app_not_linked`).
    pub async fn im_target_on(
        &self,
        account_id: i64,
        kind: &str,
        member_id: i64,
        integration_id: Option<i64>,
    ) -> Result<Option<(ImIntegration, String)>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT l.im_user_id, ");
        let cols: Vec<String> = COLUMNS
            .split(", ")
            .map(|c| format!("i.{}", c.trim()))
            .collect();
        sql.push(&cols.join(", "))
            .push(
                " FROM im_links l JOIN im_integrations i ON i.integration_id = l.integration_id \
                 WHERE l.account_id = ",
            )
            .bind(account_id)
            .push(" AND i.account_id = ")
            .bind(account_id)
            .push(" AND i.kind = ")
            .bind(kind)
            .push(" AND i.status = 'enabled' AND l.member_id = ")
            .bind(member_id);
        if let Some(id) = integration_id {
            sql.push(" AND i.integration_id = ").bind(id);
        }
        sql.push(" ORDER BY i.created_at, i.integration_id LIMIT 1");
        let Some(r) = sql.query_on(&conn).fetch_optional(&mut *conn).await? else {
            return Ok(None);
        };
        drop(conn);
        let user = get_str(&r, "im_user_id")?;
        Ok(self
            .opened_im(Some(integration_row(&r)?))
            .await?
            .map(|i| (i, user)))
    }

    /// RSP-300: records that the integration's app can no longer post to `chat_id` (Feishu
    /// reported the chat disbanded). Recording it again keeps the first record.
    pub async fn mark_im_chat_unavailable(
        &self,
        account_id: i64,
        integration_id: i64,
        chat_id: &str,
        reason: &str,
        now: Millis,
    ) -> Result<()> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new(
            "INSERT INTO im_unavailable_chats (integration_id, account_id, chat_id, reason, \
             created_at) VALUES (",
        );
        sql.bind(integration_id)
            .push(", ")
            .bind(account_id)
            .push(", ")
            .bind(chat_id)
            .push(", ")
            .bind(reason)
            .push(", ")
            .bind(now)
            .push(") ON CONFLICT (integration_id, chat_id) DO NOTHING");
        sql.query_on(&conn).execute(&mut *conn).await?;
        Ok(())
    }

    /// Of `chat_ids`, those recorded unavailable for the integration.
    pub async fn unavailable_im_chats(
        &self,
        account_id: i64,
        integration_id: i64,
        chat_ids: &[&str],
    ) -> Result<Vec<String>> {
        if chat_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT chat_id FROM im_unavailable_chats WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id)
            .push(" AND chat_id IN (");
        for (i, c) in chat_ids.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(*c);
        }
        sql.push(")");
        sql.query_on(&conn)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| get_str(r, "chat_id"))
            .collect()
    }
}
