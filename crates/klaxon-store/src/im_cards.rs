//! The WeCom cards sent and the codes that can still update them (response.md RSP-312,
//! RSP-313; migration 0082).
//!
//! WeCom replaces a card only when the update carries a response code, and each code works
//! once, within 72 hours. The send answers the first code; every button press on the card
//! (Refresh included) brings a new one. A card keeps at most one unused code: the newest,
//! because it lasts longest. Taking a code spends it, so two updates can never race for the
//! same one.

use klaxon_core::model::Millis;

use crate::db::Sql;
use crate::rows::{get_i64, get_str};
use crate::{Result, Store};

/// How long WeCom accepts a response code.
pub const CARD_CODE_LIFETIME_MS: Millis = 72 * 3600 * 1000;

/// A card sent through an IM integration, as an update needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImCard {
    pub integration_id: i64,
    /// The platform's id of the card (WeCom's `task_id`).
    pub task_id: String,
    pub incident_id: String,
    /// Who the card was sent to: the update names them.
    pub im_user_id: String,
}

impl Store {
    /// Records a card sent to `im_user_id`, or a new code for it (a press), replacing the
    /// unused one. `response_code` may be "" (the platform answered none).
    #[allow(clippy::too_many_arguments)]
    pub async fn record_im_card_code(
        &self,
        account_id: i64,
        integration_id: i64,
        task_id: &str,
        incident_id: &str,
        im_user_id: &str,
        response_code: &str,
        now: Millis,
    ) -> Result<()> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new(
            "INSERT INTO im_card_codes (integration_id, task_id, account_id, incident_id, \
             im_user_id, response_code, code_at, created_at) VALUES (",
        );
        sql.bind(integration_id)
            .push(", ")
            .bind(task_id)
            .push(", ")
            .bind(account_id)
            .push(", ")
            .bind(incident_id)
            .push(", ")
            .bind(im_user_id)
            .push(", ")
            .bind(response_code)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now)
            // A card belongs to one account: a code for another account's card changes
            // nothing.
            .push(
                ") ON CONFLICT (integration_id, task_id) DO UPDATE SET \
                 response_code = excluded.response_code, code_at = excluded.code_at \
                 WHERE im_card_codes.account_id = excluded.account_id",
            );
        sql.query_on(&conn).execute(&mut *conn).await?;
        Ok(())
    }

    /// Spends the card's unused code: `Some(code)` when one was issued less than 72 hours
    /// before `now` (it is then marked spent), `None` when the card cannot be updated now.
    pub async fn take_im_card_code(
        &self,
        account_id: i64,
        integration_id: i64,
        task_id: &str,
        now: Millis,
    ) -> Result<Option<String>> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql =
            Sql::new("SELECT response_code, code_at FROM im_card_codes WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id)
            .push(" AND task_id = ")
            .bind(task_id);
        let Some(row) = sql.query_on(&conn).fetch_optional(&mut *conn).await? else {
            return Ok(None);
        };
        let code = get_str(&row, "response_code")?;
        if code.is_empty() || get_i64(&row, "code_at")? + CARD_CODE_LIFETIME_MS <= now {
            return Ok(None);
        }
        // Spent only if still this code: a concurrent update that took it first wins.
        let mut sql = Sql::new("UPDATE im_card_codes SET response_code = '' WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id)
            .push(" AND task_id = ")
            .bind(task_id)
            .push(" AND response_code = ")
            .bind(code.as_str());
        let taken = sql
            .query_on(&conn)
            .execute(&mut *conn)
            .await?
            .rows_affected()
            == 1;
        Ok(taken.then_some(code))
    }

    /// The cards sent for an incident, oldest first.
    pub async fn im_cards(&self, account_id: i64, incident_id: &str) -> Result<Vec<ImCard>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new(
            "SELECT integration_id, task_id, incident_id, im_user_id FROM im_card_codes \
             WHERE account_id = ",
        );
        sql.bind(account_id)
            .push(" AND incident_id = ")
            .bind(incident_id)
            .push(" ORDER BY created_at, task_id");
        sql.query_on(&conn)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| {
                Ok(ImCard {
                    integration_id: get_i64(r, "integration_id")?,
                    task_id: get_str(r, "task_id")?,
                    incident_id: get_str(r, "incident_id")?,
                    im_user_id: get_str(r, "im_user_id")?,
                })
            })
            .collect()
    }
}
