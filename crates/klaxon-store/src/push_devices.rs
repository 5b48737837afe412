//! The devices a member receives app pushes on (migration 0093; response.md RSP-285,
//! docs/notifications.md "App push"). A device is an ntfy topic Klaxon made up; the member
//! subscribes the ntfy app on their phone to it.

use klaxon_core::model::Millis;

use crate::db::Sql;
use crate::rows::{get_i64, get_str};
use crate::{Result, Store};

/// Devices one member may register: a phone, a tablet, a spare; more is a mistake.
pub const MAX_PUSH_DEVICES: usize = 5;

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushDevice {
    pub device_id: i64,
    pub account_id: i64,
    pub member_id: i64,
    pub name: String,
    pub topic: String,
    pub created_at: Millis,
    /// When a push last went to it; 0 = never.
    pub last_sent_at: Millis,
}

const COLUMNS: &str = "device_id, account_id, member_id, name, topic, created_at, last_sent_at";

fn device(r: &sqlx::any::AnyRow) -> Result<PushDevice> {
    Ok(PushDevice {
        device_id: get_i64(r, "device_id")?,
        account_id: get_i64(r, "account_id")?,
        member_id: get_i64(r, "member_id")?,
        name: get_str(r, "name")?,
        topic: get_str(r, "topic")?,
        created_at: get_i64(r, "created_at")?,
        last_sent_at: get_i64(r, "last_sent_at")?,
    })
}

impl Store {
    /// Registers a device for the member. `None` when the member already has
    /// [`MAX_PUSH_DEVICES`] (nothing is written then). Counted and written in one
    /// transaction so two requests at once cannot pass the limit.
    pub async fn create_push_device(
        &self,
        account_id: i64,
        member_id: i64,
        name: &str,
        topic: &str,
        now: Millis,
    ) -> Result<Option<PushDevice>> {
        let mut tx = self.inner.write.begin().await?;
        let mut count = Sql::new("SELECT COUNT(*) AS n FROM push_devices WHERE account_id = ");
        count
            .bind(account_id)
            .push(" AND member_id = ")
            .bind(member_id);
        let n = get_i64(&count.query_on(&tx).fetch_one(&mut *tx).await?, "n")?;
        if usize::try_from(n).unwrap_or(usize::MAX) >= MAX_PUSH_DEVICES {
            tx.rollback().await?;
            return Ok(None);
        }
        let mut ins = Sql::new(
            "INSERT INTO push_devices (account_id, member_id, name, topic, created_at) VALUES (",
        );
        ins.bind(account_id)
            .push(", ")
            .bind(member_id)
            .push(", ")
            .bind(name)
            .push(", ")
            .bind(topic)
            .push(", ")
            .bind(now)
            .push(&format!(") RETURNING {COLUMNS}"));
        let row = ins.query_on(&tx).fetch_one(&mut *tx).await?;
        let created = device(&row)?;
        tx.commit().await?;
        Ok(Some(created))
    }

    /// The member's devices, oldest first.
    pub async fn push_devices(&self, account_id: i64, member_id: i64) -> Result<Vec<PushDevice>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM push_devices WHERE account_id = "
        ));
        sql.bind(account_id)
            .push(" AND member_id = ")
            .bind(member_id)
            .push(" ORDER BY device_id");
        let rows = sql.query_on(&conn).fetch_all(&mut *conn).await?;
        rows.iter().map(device).collect()
    }

    /// Removes one of the member's devices; `false` when the member has no such device.
    pub async fn delete_push_device(
        &self,
        account_id: i64,
        member_id: i64,
        device_id: i64,
    ) -> Result<bool> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new("DELETE FROM push_devices WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND member_id = ")
            .bind(member_id)
            .push(" AND device_id = ")
            .bind(device_id);
        let done = sql.query_on(&conn).execute(&mut *conn).await?;
        Ok(done.rows_affected() > 0)
    }

    /// Notes that a push went to the device.
    pub async fn touch_push_device(&self, device_id: i64, now: Millis) -> Result<()> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new("UPDATE push_devices SET last_sent_at = ");
        sql.bind(now).push(" WHERE device_id = ").bind(device_id);
        sql.query_on(&conn).execute(&mut *conn).await?;
        Ok(())
    }
}
