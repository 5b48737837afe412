//! The insights filter each member chose last (response.md RSP-470; migration 0094): the
//! console's Insights page opens with it. Stored for that member only; the console checks
//! the choice (a JSON object) before it is written.

use klaxon_core::model::Millis;

use crate::db::Sql;
use crate::rows::get_str;
use crate::{Result, Store};

impl Store {
    /// The member's last insights filter (JSON object text); `None` when they never chose.
    pub async fn member_insight_filter(
        &self,
        account_id: i64,
        member_id: i64,
    ) -> Result<Option<String>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT choice FROM member_insight_filters WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND member_id = ")
            .bind(member_id);
        match sql.query_on(&conn).fetch_optional(&mut *conn).await? {
            Some(r) => Ok(Some(get_str(&r, "choice")?)),
            None => Ok(None),
        }
    }

    /// Stores the member's choice, replacing the earlier one.
    pub async fn set_member_insight_filter(
        &self,
        account_id: i64,
        member_id: i64,
        choice: &str,
        now: Millis,
    ) -> Result<()> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new(
            "INSERT INTO member_insight_filters (account_id, member_id, choice, updated_at) \
             VALUES (",
        );
        sql.bind(account_id)
            .push(", ")
            .bind(member_id)
            .push(", ")
            .bind(choice)
            .push(", ")
            .bind(now)
            .push(
                ") ON CONFLICT (account_id, member_id) DO UPDATE SET \
                 choice = excluded.choice, updated_at = excluded.updated_at",
            );
        sql.query_on(&conn).execute(&mut *conn).await?;
        Ok(())
    }
}
