//! Custom actions and links (response.md 1.19, 1.20, §2.24; migration 0045): outbound
//! integrations bound to channels. A custom action is a button on the incident detail page
//! that posts the incident to an endpoint (sent by the server, not stored here); a link is a
//! URL template shown on the detail pages.
//!
//! - They share the integration id space with inbound, webhook and IM integrations.
//! - A channel takes at most [`MAX_PER_CHANNEL`] of each kind (RSP-403). The check and the
//!   write run in one transaction; on PostgreSQL the account row is locked first, so two
//!   concurrent bindings of one account cannot both pass the count.
//! - A custom action's headers usually carry the receiver's credential (RSP-380): they are
//!   sealed at rest when a key-encryption key is configured ([`crate::sealing`]).

use std::collections::BTreeMap;

use klaxon_core::model::Millis;
use serde_json::{Map, Value};
use sqlx::AnyConnection;

use crate::db::{Sql, is_sqlite};
use crate::rows::{get_i64, get_str};
use crate::sealing::{Opener, SecretSlot, seal_value};
use crate::webhooks::draw_integration_id;
use crate::{Result, Store, StoreError};

/// RSP-403, response.md 1.19/1.20: custom actions (and, separately, links) per channel.
pub const MAX_PER_CHANNEL: usize = 3;

/// A custom action (`kind = custom_action`) or a link (`kind = link`). Fields of the other
/// kind are empty.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomIntegration {
    pub integration_id: i64,
    pub account_id: i64,
    pub kind: String,
    pub name: String,
    pub endpoint: String,
    pub headers: BTreeMap<String, String>,
    pub custom_body: String,
    pub value_mapping: BTreeMap<String, Map<String, Value>>,
    pub url_template: String,
    /// `popup` | `new_tab` (links).
    pub open_mode: String,
    pub channel_ids: Vec<i64>,
    pub team_id: i64,
    /// `enabled` | `disabled`.
    pub status: String,
    pub creator_id: i64,
    pub updated_by: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// The editable fields, already validated by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomDraft {
    pub kind: String,
    pub name: String,
    pub endpoint: String,
    pub headers: BTreeMap<String, String>,
    pub custom_body: String,
    pub value_mapping: BTreeMap<String, Map<String, Value>>,
    pub url_template: String,
    pub open_mode: String,
    pub channel_ids: Vec<i64>,
    pub team_id: i64,
    pub status: String,
}

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomRefusal {
    NotFound,
    /// RSP-403: the channel already has [`MAX_PER_CHANNEL`] of this kind.
    LimitExceeded {
        channel_id: i64,
    },
}

const COLUMNS: &str = "integration_id, account_id, kind, name, endpoint, headers, custom_body, \
     value_mapping, url_template, open_mode, channel_ids, team_id, status, creator_id, \
     updated_by, created_at, updated_at";

fn json_col<T: serde::de::DeserializeOwned + Default>(row: &sqlx::any::AnyRow, col: &str) -> T {
    get_str(row, col)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

const TABLE: &str = "custom_integrations";

/// A row, with its headers still as stored (see [`Store::opened_custom`]).
fn row(r: &sqlx::any::AnyRow) -> Result<(CustomIntegration, String)> {
    let c = CustomIntegration {
        integration_id: get_i64(r, "integration_id")?,
        account_id: get_i64(r, "account_id")?,
        kind: get_str(r, "kind")?,
        name: get_str(r, "name")?,
        endpoint: get_str(r, "endpoint")?,
        headers: BTreeMap::new(),
        custom_body: get_str(r, "custom_body")?,
        value_mapping: json_col(r, "value_mapping"),
        url_template: get_str(r, "url_template")?,
        open_mode: get_str(r, "open_mode")?,
        channel_ids: json_col(r, "channel_ids"),
        team_id: get_i64(r, "team_id")?,
        status: get_str(r, "status")?,
        creator_id: get_i64(r, "creator_id")?,
        updated_by: get_i64(r, "updated_by")?,
        created_at: get_i64(r, "created_at")?,
        updated_at: get_i64(r, "updated_at")?,
    };
    Ok((c, get_str(r, "headers")?))
}

async fn fetch(
    conn: &mut AnyConnection,
    account_id: i64,
    kind: Option<&str>,
    integration_id: Option<i64>,
) -> Result<Vec<(CustomIntegration, String)>> {
    let mut sql = Sql::new("SELECT ");
    sql.push(COLUMNS)
        .push(" FROM custom_integrations WHERE account_id = ")
        .bind(account_id);
    if let Some(k) = kind {
        sql.push(" AND kind = ").bind(k);
    }
    if let Some(id) = integration_id {
        sql.push(" AND integration_id = ").bind(id);
    }
    sql.push(" ORDER BY name, integration_id");
    sql.query_on(conn)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(row)
        .collect()
}

/// Serialises binding changes of one account on PostgreSQL (SQLite has one writer).
async fn lock_account(conn: &mut AnyConnection, account_id: i64) -> Result<()> {
    if is_sqlite(conn) {
        return Ok(());
    }
    let mut sql = Sql::new("SELECT account_id FROM accounts WHERE account_id = ");
    sql.bind(account_id).push(" FOR UPDATE");
    sql.query_on(conn).fetch_optional(&mut *conn).await?;
    Ok(())
}

/// RSP-403: the first channel of `draft` that would hold more than [`MAX_PER_CHANNEL`] of
/// the draft's kind, not counting the integration being edited (`self_id`).
async fn over_limit(
    conn: &mut AnyConnection,
    account_id: i64,
    draft: &CustomDraft,
    self_id: i64,
) -> Result<Option<i64>> {
    let others: Vec<CustomIntegration> = fetch(conn, account_id, Some(&draft.kind), None)
        .await?
        .into_iter()
        .map(|(c, _)| c)
        .filter(|c| c.integration_id != self_id)
        .collect();
    Ok(draft
        .channel_ids
        .iter()
        .copied()
        .find(|ch| others.iter().filter(|c| c.channel_ids.contains(ch)).count() >= MAX_PER_CHANNEL))
}

impl Store {
    /// Opens the headers of rows read by [`fetch`].
    async fn opened_custom(
        &self,
        rows: Vec<(CustomIntegration, String)>,
    ) -> Result<Vec<CustomIntegration>> {
        let mut opener = Opener::new(self);
        let mut out = Vec::with_capacity(rows.len());
        for (mut c, raw) in rows {
            let slot = SecretSlot::new(c.account_id, TABLE, "headers", c.integration_id);
            let text = opener.open(slot, &raw).await?;
            c.headers = serde_json::from_str(&text).unwrap_or_default();
            out.push(c);
        }
        Ok(out)
    }

    /// Creates a custom action or link with a fresh id in the shared integration id space.
    pub async fn create_custom_integration(
        &self,
        account_id: i64,
        draft: &CustomDraft,
        actor: i64,
        now: Millis,
    ) -> Result<std::result::Result<CustomIntegration, CustomRefusal>> {
        let key = self.sealing_key(account_id, now).await?;
        let mut tx = self.inner.write.begin().await?;
        lock_account(&mut tx, account_id).await?;
        if let Some(channel_id) = over_limit(&mut tx, account_id, draft, 0).await? {
            tx.rollback().await?;
            return Ok(Err(CustomRefusal::LimitExceeded { channel_id }));
        }
        let id = draw_integration_id(&mut tx).await?;
        let headers = seal_value(
            key.as_ref(),
            &SecretSlot::new(account_id, TABLE, "headers", id),
            &to_json(&draft.headers),
        )?;
        let mut sql = Sql::new("INSERT INTO custom_integrations (");
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
            .bind(draft.endpoint.as_str())
            .push(", ")
            .bind(headers)
            .push(", ")
            .bind(draft.custom_body.as_str())
            .push(", ")
            .bind(to_json(&draft.value_mapping))
            .push(", ")
            .bind(draft.url_template.as_str())
            .push(", ")
            .bind(draft.open_mode.as_str())
            .push(", ")
            .bind(to_json(&draft.channel_ids))
            .push(", ")
            .bind(draft.team_id)
            .push(", ")
            .bind(draft.status.as_str())
            .push(", ")
            .bind(actor)
            .push(", ")
            .bind(actor)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now)
            .push(")");
        sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        match self.custom_integration(account_id, id).await? {
            Some(c) => Ok(Ok(c)),
            None => Err(StoreError::Corrupt(format!(
                "custom integration {id} vanished after insert"
            ))),
        }
    }

    /// Replaces the editable fields of an existing one of `draft.kind`.
    pub async fn update_custom_integration(
        &self,
        account_id: i64,
        integration_id: i64,
        draft: &CustomDraft,
        actor: i64,
        now: Millis,
    ) -> Result<std::result::Result<CustomIntegration, CustomRefusal>> {
        let key = self.sealing_key(account_id, now).await?;
        let headers = seal_value(
            key.as_ref(),
            &SecretSlot::new(account_id, TABLE, "headers", integration_id),
            &to_json(&draft.headers),
        )?;
        let mut tx = self.inner.write.begin().await?;
        lock_account(&mut tx, account_id).await?;
        if fetch(&mut tx, account_id, Some(&draft.kind), Some(integration_id))
            .await?
            .is_empty()
        {
            tx.rollback().await?;
            return Ok(Err(CustomRefusal::NotFound));
        }
        if let Some(channel_id) = over_limit(&mut tx, account_id, draft, integration_id).await? {
            tx.rollback().await?;
            return Ok(Err(CustomRefusal::LimitExceeded { channel_id }));
        }
        let mut sql = Sql::new("UPDATE custom_integrations SET name = ");
        sql.bind(draft.name.as_str())
            .push(", endpoint = ")
            .bind(draft.endpoint.as_str())
            .push(", headers = ")
            .bind(headers)
            .push(", custom_body = ")
            .bind(draft.custom_body.as_str())
            .push(", value_mapping = ")
            .bind(to_json(&draft.value_mapping))
            .push(", url_template = ")
            .bind(draft.url_template.as_str())
            .push(", open_mode = ")
            .bind(draft.open_mode.as_str())
            .push(", channel_ids = ")
            .bind(to_json(&draft.channel_ids))
            .push(", team_id = ")
            .bind(draft.team_id)
            .push(", status = ")
            .bind(draft.status.as_str())
            .push(", updated_by = ")
            .bind(actor)
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id);
        sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        match self.custom_integration(account_id, integration_id).await? {
            Some(c) => Ok(Ok(c)),
            None => Ok(Err(CustomRefusal::NotFound)),
        }
    }

    /// Deletes one of `kind`; false when there is none.
    pub async fn delete_custom_integration(
        &self,
        account_id: i64,
        kind: &str,
        integration_id: i64,
    ) -> Result<bool> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new("DELETE FROM custom_integrations WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND kind = ")
            .bind(kind)
            .push(" AND integration_id = ")
            .bind(integration_id);
        Ok(sql
            .query_on(&conn)
            .execute(&mut *conn)
            .await?
            .rows_affected()
            > 0)
    }

    /// One custom action or link, of either kind.
    pub async fn custom_integration(
        &self,
        account_id: i64,
        integration_id: i64,
    ) -> Result<Option<CustomIntegration>> {
        let mut conn = self.inner.read.acquire().await?;
        let rows = fetch(&mut conn, account_id, None, Some(integration_id)).await?;
        drop(conn);
        Ok(self.opened_custom(rows).await?.into_iter().next())
    }

    /// The account's custom actions or links, ordered by name (RSP-400); with `channel_id`,
    /// only those bound to it.
    pub async fn list_custom_integrations(
        &self,
        account_id: i64,
        kind: &str,
        channel_id: Option<i64>,
    ) -> Result<Vec<CustomIntegration>> {
        let mut conn = self.inner.read.acquire().await?;
        let rows = fetch(&mut conn, account_id, Some(kind), None).await?;
        drop(conn);
        let all = self.opened_custom(rows).await?;
        Ok(match channel_id {
            Some(ch) => all
                .into_iter()
                .filter(|c| c.channel_ids.contains(&ch))
                .collect(),
            None => all,
        })
    }
}
