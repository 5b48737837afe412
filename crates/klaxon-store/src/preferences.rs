//! Personal notification preferences (response.md 1.15, RSP-330…RSP-332; migration 0033).
//!
//! A member without a stored row has the defaults of OQ-24. Firings read the preference of
//! every member in the same transaction as the rest of the account's directory, so a change
//! applies from the next firing on and never touches notifications already decided
//! (RSP-331).

use std::collections::HashMap;

use klaxon_core::model::Millis;
use klaxon_core::response::NotificationPreference;
use sqlx::AnyConnection;

use crate::db::Sql;
use crate::rows::{get_i64, get_str};
use crate::{Result, Store, StoreError};

fn parse(member_id: i64, text: &str) -> Result<NotificationPreference> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("member_preferences.preference {member_id}: {e}")))
}

/// The stored preferences of the account's members (those who saved one).
pub(crate) async fn load(
    conn: &mut AnyConnection,
    account_id: i64,
) -> Result<HashMap<i64, NotificationPreference>> {
    let mut sql =
        Sql::new("SELECT member_id, preference FROM member_preferences WHERE account_id = ");
    sql.bind(account_id);
    let mut out = HashMap::new();
    for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
        let id = get_i64(&row, "member_id")?;
        out.insert(id, parse(id, &get_str(&row, "preference")?)?);
    }
    Ok(out)
}

impl Store {
    /// The member's stored preference; `None` when they never saved one (the defaults apply).
    pub async fn member_preference(
        &self,
        account_id: i64,
        member_id: i64,
    ) -> Result<Option<NotificationPreference>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT preference FROM member_preferences WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND member_id = ")
            .bind(member_id);
        match sql.query_on(&conn).fetch_optional(&mut *conn).await? {
            Some(r) => Ok(Some(parse(member_id, &get_str(&r, "preference")?)?)),
            None => Ok(None),
        }
    }

    /// Stores the member's preference, replacing any earlier one. The caller validated it
    /// (`NotificationPreference::validate`) and checked the integrations it names.
    pub async fn set_member_preference(
        &self,
        account_id: i64,
        member_id: i64,
        preference: &NotificationPreference,
        now: Millis,
    ) -> Result<()> {
        let text = serde_json::to_string(preference)
            .map_err(|e| StoreError::Corrupt(format!("preference: {e}")))?;
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new(
            "INSERT INTO member_preferences (account_id, member_id, preference, updated_at) \
             VALUES (",
        );
        sql.bind(account_id)
            .push(", ")
            .bind(member_id)
            .push(", ")
            .bind(text.as_str())
            .push(", ")
            .bind(now)
            .push(
                ") ON CONFLICT (account_id, member_id) DO UPDATE SET \
                 preference = excluded.preference, updated_at = excluded.updated_at",
            );
        sql.query_on(&conn).execute(&mut *conn).await?;
        Ok(())
    }
}
