//! The incident list columns each member chose (response.md RSP-506; migration 0070).
//!
//! A member without a stored row sees the default columns. The keys are checked by
//! `klaxon_core::response::list_columns::validate` before they are written.

use klaxon_core::model::Millis;

use crate::db::Sql;
use crate::rows::get_str;
use crate::{Result, Store, StoreError};

impl Store {
    /// The member's chosen column keys; `None` when they never chose (the defaults apply).
    pub async fn member_list_columns(
        &self,
        account_id: i64,
        member_id: i64,
    ) -> Result<Option<Vec<String>>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT column_keys FROM member_list_columns WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND member_id = ")
            .bind(member_id);
        match sql.query_on(&conn).fetch_optional(&mut *conn).await? {
            Some(r) => {
                let text = get_str(&r, "column_keys")?;
                serde_json::from_str(&text).map(Some).map_err(|e| {
                    StoreError::Corrupt(format!("member_list_columns.column_keys {member_id}: {e}"))
                })
            }
            None => Ok(None),
        }
    }

    /// Stores the member's choice, replacing any earlier one.
    pub async fn set_member_list_columns(
        &self,
        account_id: i64,
        member_id: i64,
        keys: &[String],
        now: Millis,
    ) -> Result<()> {
        let text = serde_json::to_string(keys)
            .map_err(|e| StoreError::Corrupt(format!("list columns: {e}")))?;
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new(
            "INSERT INTO member_list_columns (account_id, member_id, column_keys, updated_at) \
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
                 column_keys = excluded.column_keys, updated_at = excluded.updated_at",
            );
        sql.query_on(&conn).execute(&mut *conn).await?;
        Ok(())
    }
}
