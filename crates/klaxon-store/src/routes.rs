//! Route versions of shared alert integrations (ingest.md §1.3.2, ING-095): every save and
//! every rollback inserts the next version; nothing is rewritten. The primary key
//! `(integration_id, version)` is the optimistic lock: a save based on a version that is no
//! longer the latest is refused, and two saves based on the same version cannot both insert
//! its successor (on PostgreSQL the second one waits for the first and then collides).
//!
//! Every statement is scoped by `account_id` (DESIGN.md principle 6).

use std::collections::{BTreeMap, HashMap, HashSet};

use klaxon_core::model::Millis;
use klaxon_core::routing::{RouteConfig, RouteRule, Section};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool};

use crate::db::Sql;
use crate::records::NewIntegration;
use crate::rows::{get_i64, get_str};
use crate::{Result, StoreError};

/// One stored version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteVersion {
    pub integration_id: i64,
    /// `version`, `rules`, `default_channel_ids`, `sections`, `updated_by`, `updated_at`.
    pub config: RouteConfig,
    /// The version a rollback copied (0 for an ordinary save).
    pub rolled_back_from: i64,
}

/// Why a save or rollback wrote nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteRefusal {
    /// ING-095: the save was based on `based_on`, but `latest` is the latest version.
    Conflict { based_on: i64, latest: i64 },
    /// A rollback to a version that does not exist.
    NoSuchVersion(i64),
    /// The integration is not a live shared integration of the account.
    NoIntegration,
}

const COLUMNS: &str = "integration_id, version, rules, default_channel_ids, sections, \
     rolled_back_from, updated_by, updated_at";

fn json<T: serde::de::DeserializeOwned>(row: &AnyRow, col: &str) -> Result<T> {
    let text = get_str(row, col)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("route {col}: {e}")))
}

fn version_of(row: &AnyRow) -> Result<RouteVersion> {
    let rules: Vec<RouteRule> = json(row, "rules")?;
    let default_channel_ids: Vec<i64> = json(row, "default_channel_ids")?;
    let sections: Vec<Section> = json(row, "sections")?;
    Ok(RouteVersion {
        integration_id: get_i64(row, "integration_id")?,
        config: RouteConfig {
            version: get_i64(row, "version")?,
            rules,
            default_channel_ids,
            sections,
            updated_by: get_i64(row, "updated_by")?,
            updated_at: get_i64(row, "updated_at")?,
        },
        rolled_back_from: get_i64(row, "rolled_back_from")?,
    })
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("route json: {e}")))
}

/// Inserts `content` as `version` of the integration; false when that version exists
/// already (the lock collided).
#[allow(clippy::too_many_arguments)]
async fn insert(
    conn: &mut AnyConnection,
    account_id: i64,
    integration_id: i64,
    version: i64,
    content: &RouteConfig,
    rolled_back_from: i64,
    author: i64,
    now: Millis,
) -> Result<bool> {
    let mut sql = Sql::new(
        "INSERT INTO route_versions (integration_id, version, account_id, rules, \
         default_channel_ids, sections, rolled_back_from, updated_by, updated_at) VALUES (",
    );
    sql.bind(integration_id)
        .push(", ")
        .bind(version)
        .push(", ")
        .bind(account_id)
        .push(", ")
        .bind(encode(&content.rules)?)
        .push(", ")
        .bind(encode(&content.default_channel_ids)?)
        .push(", ")
        .bind(encode(&content.sections)?)
        .push(", ")
        .bind(rolled_back_from)
        .push(", ")
        .bind(author)
        .push(", ")
        .bind(now)
        .push(")");
    match sql.into_query_on(conn).execute(&mut *conn).await {
        Ok(_) => Ok(true),
        Err(e) if crate::directory::unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The latest version number (0 when none is saved).
async fn latest_number(
    conn: &mut AnyConnection,
    account_id: i64,
    integration_id: i64,
) -> Result<i64> {
    let mut sql =
        Sql::new("SELECT COALESCE(MAX(version), 0) AS v FROM route_versions WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND integration_id = ")
        .bind(integration_id);
    let row = sql.into_query_on(conn).fetch_one(&mut *conn).await?;
    get_i64(&row, "v")
}

/// Whether the account has this live shared alert integration.
async fn is_shared(conn: &mut AnyConnection, account_id: i64, integration_id: i64) -> Result<bool> {
    let mut sql = Sql::new("SELECT kind FROM integrations WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND integration_id = ")
        .bind(integration_id)
        .push(" AND deleted = 0");
    match sql.into_query_on(conn).fetch_optional(&mut *conn).await? {
        Some(row) => Ok(get_str(&row, "kind")? == "shared"),
        None => Ok(false),
    }
}

/// ING-095: saves `content` (validated by the caller) as the next version, if `based_on` is
/// still the latest (0 while none is saved).
pub(crate) async fn save(
    pool: &AnyPool,
    account_id: i64,
    integration_id: i64,
    based_on: i64,
    content: &RouteConfig,
    author: i64,
    now: Millis,
) -> Result<std::result::Result<RouteVersion, RouteRefusal>> {
    write(
        pool,
        account_id,
        integration_id,
        Some(based_on),
        Write::Save(content),
        author,
        now,
    )
    .await
}

/// ING-095: a new version whose content is a copy of `to_version`; `based_on`, when given,
/// must be the latest version like a save's.
pub(crate) async fn rollback(
    pool: &AnyPool,
    account_id: i64,
    integration_id: i64,
    to_version: i64,
    based_on: Option<i64>,
    author: i64,
    now: Millis,
) -> Result<std::result::Result<RouteVersion, RouteRefusal>> {
    write(
        pool,
        account_id,
        integration_id,
        based_on,
        Write::Rollback(to_version),
        author,
        now,
    )
    .await
}

enum Write<'a> {
    Save(&'a RouteConfig),
    Rollback(i64),
}

async fn write(
    pool: &AnyPool,
    account_id: i64,
    integration_id: i64,
    based_on: Option<i64>,
    what: Write<'_>,
    author: i64,
    now: Millis,
) -> Result<std::result::Result<RouteVersion, RouteRefusal>> {
    let mut tx = pool.begin().await?;
    if !is_shared(&mut tx, account_id, integration_id).await? {
        tx.rollback().await?;
        return Ok(Err(RouteRefusal::NoIntegration));
    }
    let latest = latest_number(&mut tx, account_id, integration_id).await?;
    if let Some(based_on) = based_on
        && based_on != latest
    {
        tx.rollback().await?;
        return Ok(Err(RouteRefusal::Conflict { based_on, latest }));
    }
    let (content, rolled_back_from) = match what {
        Write::Save(content) => (content.clone(), 0),
        Write::Rollback(k) => match get(&mut tx, account_id, integration_id, k).await? {
            Some(old) => (old.config, k),
            None => {
                tx.rollback().await?;
                return Ok(Err(RouteRefusal::NoSuchVersion(k)));
            }
        },
    };
    let version = latest + 1;
    let inserted = insert(
        &mut tx,
        account_id,
        integration_id,
        version,
        &content,
        rolled_back_from,
        author,
        now,
    )
    .await?;
    if !inserted {
        // Another save based on the same version committed first.
        tx.rollback().await?;
        return Ok(Err(RouteRefusal::Conflict {
            based_on: based_on.unwrap_or(latest),
            latest: version,
        }));
    }
    tx.commit().await?;
    Ok(Ok(RouteVersion {
        integration_id,
        config: RouteConfig {
            version,
            updated_by: author,
            updated_at: now,
            ..content
        },
        rolled_back_from,
    }))
}

async fn get(
    conn: &mut AnyConnection,
    account_id: i64,
    integration_id: i64,
    version: i64,
) -> Result<Option<RouteVersion>> {
    let mut sql = Sql::new("SELECT ");
    sql.push(COLUMNS)
        .push(" FROM route_versions WHERE account_id = ")
        .bind(account_id)
        .push(" AND integration_id = ")
        .bind(integration_id)
        .push(" AND version = ")
        .bind(version);
    match sql.into_query_on(conn).fetch_optional(&mut *conn).await? {
        Some(row) => Ok(Some(version_of(&row)?)),
        None => Ok(None),
    }
}

/// Version `version` of the integration's routes (`0` = the latest).
pub(crate) async fn version(
    pool: &AnyPool,
    account_id: i64,
    integration_id: i64,
    version: i64,
) -> Result<Option<RouteVersion>> {
    let mut conn = pool.acquire().await?;
    let version = if version > 0 {
        version
    } else {
        latest_number(&mut conn, account_id, integration_id).await?
    };
    get(&mut conn, account_id, integration_id, version).await
}

/// The latest version of each listed integration that has one.
pub(crate) async fn latest_of(
    conn: &mut AnyConnection,
    account_id: i64,
    integration_ids: &[i64],
) -> Result<HashMap<i64, RouteVersion>> {
    let mut out = HashMap::new();
    if integration_ids.is_empty() {
        return Ok(out);
    }
    let mut sql = Sql::new("SELECT ");
    sql.push(COLUMNS)
        .push(" FROM route_versions r WHERE account_id = ")
        .bind(account_id);
    sql.and_in("integration_id", integration_ids);
    sql.push(
        " AND version = (SELECT MAX(m.version) FROM route_versions m \
         WHERE m.integration_id = r.integration_id)",
    );
    for row in sql.into_query_on(conn).fetch_all(&mut *conn).await? {
        let v = version_of(&row)?;
        out.insert(v.integration_id, v);
    }
    Ok(out)
}

/// A page of the integration's versions, newest first (or oldest first with `asc`), and the
/// number of versions.
pub(crate) async fn history(
    pool: &AnyPool,
    account_id: i64,
    integration_id: i64,
    p: i64,
    limit: i64,
    asc: bool,
) -> Result<(Vec<RouteVersion>, i64)> {
    let mut conn = pool.acquire().await?;
    let total = latest_number(&mut conn, account_id, integration_id).await?;
    let mut sql = Sql::new("SELECT ");
    sql.push(COLUMNS)
        .push(" FROM route_versions WHERE account_id = ")
        .bind(account_id)
        .push(" AND integration_id = ")
        .bind(integration_id)
        .push(if asc {
            " ORDER BY version ASC"
        } else {
            " ORDER BY version DESC"
        })
        .push(" LIMIT ")
        .bind(limit.max(1))
        .push(" OFFSET ")
        .bind((p.max(1) - 1).saturating_mul(limit.max(1)));
    let rows = sql.into_query_on(&conn).fetch_all(&mut *conn).await?;
    let items = rows.iter().map(version_of).collect::<Result<Vec<_>>>()?;
    Ok((items, total))
}

/// Creates a shared alert integration and its route version 1 (default route
/// `default_channel_ids`, no rules) in one transaction (ING-096).
pub(crate) async fn create_shared(
    pool: &AnyPool,
    key: Option<&crate::sealing::DataKey>,
    account_id: i64,
    new: &NewIntegration,
    default_channel_ids: &[i64],
    author: i64,
) -> Result<i64> {
    let mut tx = pool.begin().await?;
    let id = crate::integrations::insert(&mut tx, key, account_id, new).await?;
    let first = RouteConfig {
        default_channel_ids: default_channel_ids.to_vec(),
        ..RouteConfig::default()
    };
    if !insert(&mut tx, account_id, id, 1, &first, 0, author, new.now).await? {
        return Err(StoreError::Corrupt(format!(
            "integration {id} already had routes"
        )));
    }
    tx.commit().await?;
    Ok(id)
}

/// Which of `ids` are channels of the account that are not deleted (disabled ones are).
pub(crate) async fn existing_channels(
    conn: &mut AnyConnection,
    account_id: i64,
    ids: &[i64],
) -> Result<HashSet<i64>> {
    let mut out = HashSet::new();
    for chunk in ids.chunks(512) {
        let mut sql =
            Sql::new("SELECT channel_id FROM channels WHERE status <> 'deleted' AND account_id = ");
        sql.bind(account_id);
        sql.and_in("channel_id", chunk);
        for row in sql.into_query_on(conn).fetch_all(&mut *conn).await? {
            out.insert(get_i64(&row, "channel_id")?);
        }
    }
    Ok(out)
}

/// ING-093: for each of `keys`, the channels that hold an active alert of the integration
/// with that key.
pub(crate) async fn holders(
    conn: &mut AnyConnection,
    account_id: i64,
    integration_id: i64,
    keys: &[String],
) -> Result<BTreeMap<String, Vec<i64>>> {
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for chunk in keys.chunks(512) {
        let mut sql =
            Sql::new("SELECT DISTINCT alert_key, channel_id FROM alerts WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id)
            // Literal terms, so the partial index `alerts_candidate` applies.
            .push(" AND closed = 0 AND alert_status <> 'Ok'");
        sql.and_in_padded("alert_key", chunk);
        for row in sql.into_query_on(conn).fetch_all(&mut *conn).await? {
            let channels = out.entry(get_str(&row, "alert_key")?).or_default();
            let channel = get_i64(&row, "channel_id")?;
            if !channels.contains(&channel) {
                channels.push(channel);
            }
        }
    }
    for channels in out.values_mut() {
        channels.sort_unstable();
    }
    Ok(out)
}
