//! Delivery providers per region (SVC-214, SVC-238; migration 0087). The operator's list is
//! kept as history: a change ends the entry it replaces at its effective time and adds the
//! new one, so the list in force at any instant can be shown. Each change queues, in the same
//! transaction, a `provider_change` notice to every tenant of the region still served.

use klaxon_core::model::Millis;
use klaxon_saas::SaasError;
use klaxon_saas::notice::Category;
use klaxon_saas::providers::{Change, Entry, check_change, notice};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::{Result, SaasSettings, enqueue_notice, ms, ts};
use crate::Store;
use crate::db::Sql;
use crate::rows::{get_i64, get_str};

/// A stored entry of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionProvider {
    pub provider_row_id: i64,
    pub region: String,
    pub channel: String,
    pub provider: String,
    pub location: String,
    pub added_at: Millis,
    /// 0 while in force.
    pub removed_at: Millis,
    pub effective_at: Millis,
    pub actor: String,
}

impl RegionProvider {
    pub fn entry(&self) -> Result<Entry> {
        Ok(Entry {
            region: self.region.clone(),
            channel: self.channel.clone(),
            provider: self.provider.clone(),
            location: self.location.clone(),
            effective_at: ts(self.effective_at)?,
            removed_at: if self.removed_at == 0 {
                None
            } else {
                Some(ts(self.removed_at)?)
            },
        })
    }
}

const COLUMNS: &str = "provider_row_id, region, channel, provider, location, added_at, \
    removed_at, effective_at, actor";

fn row(r: &AnyRow) -> crate::Result<RegionProvider> {
    Ok(RegionProvider {
        provider_row_id: get_i64(r, "provider_row_id")?,
        region: get_str(r, "region")?,
        channel: get_str(r, "channel")?,
        provider: get_str(r, "provider")?,
        location: get_str(r, "location")?,
        added_at: get_i64(r, "added_at")?,
        removed_at: get_i64(r, "removed_at")?,
        effective_at: get_i64(r, "effective_at")?,
        actor: get_str(r, "actor")?,
    })
}

async fn rows_on(conn: &mut AnyConnection, region: Option<&str>) -> Result<Vec<RegionProvider>> {
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM saas_region_providers"));
    if let Some(r) = region {
        sql.push(" WHERE region = ").bind(r.to_string());
    }
    sql.push(" ORDER BY provider_row_id");
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    Ok(rows.iter().map(row).collect::<crate::Result<_>>()?)
}

/// The tenants of `region` still served: their billing row names the region, or — for a
/// tenant an operator has not acted on yet — the deployment serves it.
async fn region_accounts(
    conn: &mut AnyConnection,
    settings: &SaasSettings,
    region: &str,
) -> Result<Vec<i64>> {
    let mut sql = Sql::new(
        "SELECT a.account_id FROM accounts a LEFT JOIN saas_tenants t ON t.account_id = a.account_id \
         WHERE (t.state IS NULL OR t.state NOT IN ('ended', 'purging', 'purged')) AND (t.region = ",
    );
    sql.bind(region.to_string());
    if region == settings.region {
        sql.push(" OR t.region IS NULL");
    }
    sql.push(") ORDER BY a.account_id");
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    Ok(rows
        .iter()
        .map(|r| get_i64(r, "account_id"))
        .collect::<crate::Result<_>>()?)
}

impl Store {
    /// SVC-214/238: adds, moves or removes a provider of a region from `effective_at` (not
    /// in the past), and queues the change's notice to each tenant of the region. Returns
    /// the entry written (the new one, or the one ended) and how many tenants are told.
    /// Removing a provider that is not listed is refused and nothing changes.
    pub async fn saas_change_region_provider(
        &self,
        settings: &SaasSettings,
        change: &Change,
        now: Millis,
        actor: &str,
    ) -> Result<(RegionProvider, usize)> {
        let c = check_change(change, ts(now)?)?;
        let at = ms(c.effective_at);
        let mut tx = self.inner.write.begin().await?;
        let current = rows_on(&mut tx, Some(c.region.as_str()))
            .await?
            .into_iter()
            .find(|r| r.channel == c.channel && r.provider == c.provider && r.removed_at == 0);
        if c.remove && current.is_none() {
            return Err(SaasError::Invalid {
                field: "provider",
                message: format!(
                    "{} does not deliver {} in region {}: nothing to remove",
                    c.provider, c.channel, c.region
                ),
            }
            .into());
        }
        if let Some(cur) = &current {
            // An entry not yet in force that is replaced or removed never applies.
            let end = at.max(cur.effective_at);
            let mut upd = Sql::new("UPDATE saas_region_providers SET removed_at = ");
            upd.bind(end)
                .push(" WHERE provider_row_id = ")
                .bind(cur.provider_row_id);
            upd.query_on(&tx).execute(&mut *tx).await?;
        }
        let written_id = if c.remove {
            current.as_ref().map_or(0, |r| r.provider_row_id)
        } else {
            let mut ins = Sql::new(
                "INSERT INTO saas_region_providers (region, channel, provider, location, added_at, \
                 effective_at, actor) VALUES (",
            );
            ins.bind(c.region.as_str())
                .push(", ")
                .bind(c.channel.as_str())
                .push(", ")
                .bind(c.provider.as_str())
                .push(", ")
                .bind(c.location.as_str())
                .push(", ")
                .bind(now)
                .push(", ")
                .bind(at)
                .push(", ")
                .bind(actor)
                .push(") RETURNING provider_row_id");
            let r = ins.query_on(&tx).fetch_one(&mut *tx).await?;
            get_i64(&r, "provider_row_id")?
        };
        let accounts = region_accounts(&mut tx, settings, &c.region).await?;
        let related = format!("region_provider:{written_id}");
        for account_id in &accounts {
            enqueue_notice(
                &mut tx,
                *account_id,
                Category::ProviderChange,
                "provider_change",
                notice(&c),
                &related,
                now,
            )
            .await?;
        }
        let written = rows_on(&mut tx, Some(c.region.as_str()))
            .await?
            .into_iter()
            .find(|r| r.provider_row_id == written_id)
            .ok_or_else(|| {
                super::SaasFailure::Rule(SaasError::Invalid {
                    field: "provider",
                    message: "the entry was not written".into(),
                })
            })?;
        tx.commit().await?;
        Ok((written, accounts.len()))
    }

    /// The provider list with its history, of one region or of all, oldest first.
    pub async fn saas_region_providers(&self, region: Option<&str>) -> Result<Vec<RegionProvider>> {
        let mut conn = self.inner.read.acquire().await?;
        rows_on(&mut conn, region).await
    }
}
