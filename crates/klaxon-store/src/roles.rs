//! Feature-permission roles and what the permission policy needs per request (response.md
//! §1.5, §2.29; migration `0017_roles_and_private_channels.sql`).
//!
//! - [`Store::actor`] loads the caller once, when a request is authenticated: owner flag,
//!   role ids, and the custom roles among them — so no check needs a query of its own.
//! - Custom roles (RSP-524) live in `roles`; built-in roles 2, 6, 8 are code
//!   (`klaxon_core::permissions`). A member's roles are `members.role_ids`.
//! - [`Store::private_channels`] and [`Store::member_team_ids`] feed incident visibility
//!   (RSP-526).
//!
//! Every statement is scoped by `account_id`; writes run in one transaction each, and a
//! refusal (a [`Refusal`] inside `Ok`) changes nothing.

use klaxon_core::directory::STATUS_DELETED;
use klaxon_core::model::Millis;
use klaxon_core::permissions::{self, ChannelAccess, CustomRole, Point, Points};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::db::Sql;
use crate::directory::{Outcome, Refusal};
use crate::rows::{get_i64, get_str, to_json};
use crate::{Result, Store, StoreError};

/// What the policy needs of an authenticated member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorRecord {
    pub member_id: i64,
    pub is_owner: bool,
    pub role_ids: Vec<i64>,
    /// The account's custom roles among `role_ids` (enabled or not).
    pub custom_roles: Vec<CustomRole>,
}

/// A custom role (response.md §1.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRecord {
    pub role_id: i64,
    pub role_name: String,
    pub description: String,
    pub points: Points,
    pub enabled: bool,
    pub creator_id: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A custom role to create (`role_id` 0) or replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleWrite {
    pub role_id: i64,
    pub role_name: String,
    pub description: String,
    pub points: Points,
}

const ROLE_COLUMNS: &str =
    "role_id, role_name, description, permissions, status, creator_id, created_at, updated_at";

fn points_of(text: &str, role_id: i64) -> Result<Points> {
    let keys: Vec<String> = serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("roles.permissions {role_id}: {e}")))?;
    // A key this version does not know (written by a newer one) grants nothing here.
    let known: Vec<Point> = keys.iter().filter_map(|k| Point::parse(k)).collect();
    Ok(Points::of(&known))
}

fn points_json(points: Points) -> Result<String> {
    let keys: Vec<&str> = points.list().into_iter().map(Point::key).collect();
    to_json(&keys)
}

fn role_row(row: &AnyRow) -> Result<RoleRecord> {
    let role_id = get_i64(row, "role_id")?;
    Ok(RoleRecord {
        role_id,
        role_name: get_str(row, "role_name")?,
        description: get_str(row, "description")?,
        points: points_of(&get_str(row, "permissions")?, role_id)?,
        enabled: get_str(row, "status")? == "enabled",
        creator_id: get_i64(row, "creator_id")?,
        created_at: get_i64(row, "created_at")?,
        updated_at: get_i64(row, "updated_at")?,
    })
}

fn role_ids_of(text: &str, member_id: i64) -> Result<Vec<i64>> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("members.role_ids {member_id}: {e}")))
}

async fn roles_in(
    conn: &mut AnyConnection,
    account_id: i64,
    ids: &[i64],
) -> Result<Vec<RoleRecord>> {
    let mut sql = Sql::new("SELECT ");
    sql.push(ROLE_COLUMNS)
        .push(" FROM roles WHERE account_id = ")
        .bind(account_id);
    if !ids.is_empty() {
        sql.and_in("role_id", ids);
    }
    sql.push(" ORDER BY role_id");
    sql.query_on(conn)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(role_row)
        .collect()
}

async fn name_taken(
    conn: &mut AnyConnection,
    account_id: i64,
    name: &str,
    except: i64,
) -> Result<bool> {
    let mut sql = Sql::new("SELECT role_id FROM roles WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND LOWER(role_name) = ")
        .bind(name.to_lowercase())
        .push(" AND role_id <> ")
        .bind(except);
    Ok(sql
        .query_on(conn)
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

async fn member_roles_in(
    conn: &mut AnyConnection,
    account_id: i64,
    member_id: i64,
) -> Result<Option<(bool, Vec<i64>)>> {
    let mut sql = Sql::new("SELECT is_owner, role_ids FROM members WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND member_id = ")
        .bind(member_id)
        .push(" AND status <> ")
        .bind(STATUS_DELETED);
    match sql.query_on(conn).fetch_optional(&mut *conn).await? {
        Some(row) => Ok(Some((
            get_i64(&row, "is_owner")? != 0,
            role_ids_of(&get_str(&row, "role_ids")?, member_id)?,
        ))),
        None => Ok(None),
    }
}

async fn write_member_roles(
    conn: &mut AnyConnection,
    account_id: i64,
    member_id: i64,
    role_ids: &[i64],
    now: Millis,
) -> Result<()> {
    let mut sql = Sql::new("UPDATE members SET role_ids = ");
    sql.bind(to_json(&role_ids)?)
        .push(", updated_at = ")
        .bind(now)
        .push(" WHERE account_id = ")
        .bind(account_id)
        .push(" AND member_id = ")
        .bind(member_id);
    sql.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

/// Unknown role ids (neither built-in nor a custom role of the account), for the message.
async fn unknown_roles(conn: &mut AnyConnection, account_id: i64, ids: &[i64]) -> Result<Vec<i64>> {
    let custom: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| !permissions::is_builtin(*id))
        .collect();
    if custom.is_empty() {
        return Ok(Vec::new());
    }
    let found: Vec<i64> = roles_in(conn, account_id, &custom)
        .await?
        .into_iter()
        .map(|r| r.role_id)
        .collect();
    Ok(custom
        .into_iter()
        .filter(|id| !found.contains(id))
        .collect())
}

macro_rules! tx {
    ($store:expr, |$conn:ident| $body:expr) => {{
        let mut tx = $store.inner.write.begin().await?;
        let result: Result<Outcome<_>> = {
            let $conn: &mut AnyConnection = &mut tx;
            $body
        };
        match result {
            Ok(Ok(v)) => {
                tx.commit().await?;
                Ok(Ok(v))
            }
            Ok(Err(r)) => {
                tx.rollback().await?;
                Ok(Err(r))
            }
            Err(e) => Err(e),
        }
    }};
}

impl Store {
    /// The live member `member_id` as the policy needs it; `None` when there is no such
    /// member or they were deleted (their keys and sessions stop working, RSP-553, RSP-611).
    /// One query, plus one more only when the member holds custom roles.
    pub async fn actor(&self, account_id: i64, member_id: i64) -> Result<Option<ActorRecord>> {
        let mut conn = self.inner.read.acquire().await?;
        let Some((is_owner, role_ids)) = member_roles_in(&mut conn, account_id, member_id).await?
        else {
            return Ok(None);
        };
        let custom_ids: Vec<i64> = role_ids
            .iter()
            .copied()
            .filter(|id| !permissions::is_builtin(*id))
            .collect();
        let custom_roles = if custom_ids.is_empty() {
            Vec::new()
        } else {
            roles_in(&mut conn, account_id, &custom_ids)
                .await?
                .into_iter()
                .map(|r| CustomRole {
                    role_id: r.role_id,
                    points: r.points,
                    enabled: r.enabled,
                })
                .collect()
        };
        Ok(Some(ActorRecord {
            member_id,
            is_owner,
            role_ids,
            custom_roles,
        }))
    }

    /// The account's custom roles, by id (all of them when `ids` is empty).
    pub async fn custom_roles(&self, account_id: i64, ids: &[i64]) -> Result<Vec<RoleRecord>> {
        let mut conn = self.inner.read.acquire().await?;
        roles_in(&mut conn, account_id, ids).await
    }

    /// Creates (`role_id` 0) or replaces a custom role as `actor_id` (RSP-524); returns it.
    /// Names are unique per account, case-insensitively.
    pub async fn upsert_role(
        &self,
        account_id: i64,
        actor_id: i64,
        w: &RoleWrite,
        now: Millis,
    ) -> Result<Outcome<RoleRecord>> {
        tx!(self, |conn| {
            async {
                if name_taken(conn, account_id, &w.role_name, w.role_id).await? {
                    return Ok(Err(Refusal::Conflict(format!(
                        "role_name: a role named {:?} already exists",
                        w.role_name
                    ))));
                }
                let id = if w.role_id == 0 {
                    let mut sql = Sql::new(
                        "INSERT INTO roles (account_id, role_name, description, permissions, \
                         status, creator_id, created_at, updated_at) VALUES (",
                    );
                    sql.bind(account_id)
                        .push(", ")
                        .bind(w.role_name.as_str())
                        .push(", ")
                        .bind(w.description.as_str())
                        .push(", ")
                        .bind(points_json(w.points)?)
                        .push(", 'enabled', ")
                        .bind(actor_id)
                        .push(", ")
                        .bind(now)
                        .push(", ")
                        .bind(now)
                        .push(") RETURNING role_id");
                    let row = sql.query_on(conn).fetch_one(&mut *conn).await?;
                    get_i64(&row, "role_id")?
                } else {
                    let mut sql = Sql::new("UPDATE roles SET role_name = ");
                    sql.bind(w.role_name.as_str())
                        .push(", description = ")
                        .bind(w.description.as_str())
                        .push(", permissions = ")
                        .bind(points_json(w.points)?)
                        .push(", updated_at = ")
                        .bind(now)
                        .push(" WHERE account_id = ")
                        .bind(account_id)
                        .push(" AND role_id = ")
                        .bind(w.role_id);
                    let done = sql.query_on(conn).execute(&mut *conn).await?;
                    if done.rows_affected() == 0 {
                        return Ok(Err(Refusal::NotFound(format!(
                            "role_id: role {} not found",
                            w.role_id
                        ))));
                    }
                    w.role_id
                };
                match roles_in(conn, account_id, &[id]).await?.pop() {
                    Some(r) => Ok(Ok(r)),
                    None => Err(StoreError::Corrupt(format!("role {id} vanished"))),
                }
            }
            .await
        })
    }

    /// Enables or disables a custom role (a disabled role grants nothing, §1.5).
    pub async fn set_role_enabled(
        &self,
        account_id: i64,
        role_id: i64,
        enabled: bool,
        now: Millis,
    ) -> Result<Outcome<()>> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new("UPDATE roles SET status = ");
        sql.bind(if enabled { "enabled" } else { "disabled" })
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND role_id = ")
            .bind(role_id);
        let done = sql.query_on(&conn).execute(&mut *conn).await?;
        Ok(if done.rows_affected() == 0 {
            Err(Refusal::NotFound(format!(
                "role_id: role {role_id} not found"
            )))
        } else {
            Ok(())
        })
    }

    /// Deletes a custom role and takes it from every member who held it, in one transaction.
    pub async fn delete_role(
        &self,
        account_id: i64,
        role_id: i64,
        now: Millis,
    ) -> Result<Outcome<()>> {
        tx!(self, |conn| {
            async {
                let mut sql = Sql::new("DELETE FROM roles WHERE account_id = ");
                sql.bind(account_id).push(" AND role_id = ").bind(role_id);
                if sql
                    .query_on(conn)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected()
                    == 0
                {
                    return Ok(Err(Refusal::NotFound(format!(
                        "role_id: role {role_id} not found"
                    ))));
                }
                let mut sql =
                    Sql::new("SELECT member_id, role_ids FROM members WHERE account_id = ");
                sql.bind(account_id);
                let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
                for row in rows {
                    let member_id = get_i64(&row, "member_id")?;
                    let ids = role_ids_of(&get_str(&row, "role_ids")?, member_id)?;
                    if ids.contains(&role_id) {
                        let kept: Vec<i64> = ids.into_iter().filter(|r| *r != role_id).collect();
                        write_member_roles(conn, account_id, member_id, &kept, now).await?;
                    }
                }
                Ok(Ok(()))
            }
            .await
        })
    }

    /// The role ids and owner flag of a live member.
    pub async fn member_roles(
        &self,
        account_id: i64,
        member_id: i64,
    ) -> Result<Option<(bool, Vec<i64>)>> {
        let mut conn = self.inner.read.acquire().await?;
        member_roles_in(&mut conn, account_id, member_id).await
    }

    /// Replaces a live member's roles with `role_ids` when they are still `expected` (so a
    /// decision taken on `expected` cannot apply to roles changed in between). Unknown role
    /// ids are refused naming them.
    pub async fn set_member_roles(
        &self,
        account_id: i64,
        member_id: i64,
        expected: &[i64],
        role_ids: &[i64],
        now: Millis,
    ) -> Result<Outcome<()>> {
        tx!(self, |conn| {
            async {
                let unknown = unknown_roles(conn, account_id, role_ids).await?;
                if !unknown.is_empty() {
                    return Ok(Err(Refusal::Invalid(format!(
                        "role_ids: unknown role ids {unknown:?}"
                    ))));
                }
                match member_roles_in(conn, account_id, member_id).await? {
                    None => Ok(Err(Refusal::NotFound(format!(
                        "member_id: member {member_id} not found"
                    )))),
                    Some((_, current)) if current != expected => {
                        Ok(Err(Refusal::Conflict(format!(
                            "member_id: the roles of member {member_id} changed meanwhile; retry"
                        ))))
                    }
                    Some(_) => {
                        write_member_roles(conn, account_id, member_id, role_ids, now).await?;
                        Ok(Ok(()))
                    }
                }
            }
            .await
        })
    }

    /// Ids among `role_ids` that are neither built-in nor a custom role of the account.
    pub async fn unknown_role_ids(&self, account_id: i64, role_ids: &[i64]) -> Result<Vec<i64>> {
        let mut conn = self.inner.read.acquire().await?;
        unknown_roles(&mut conn, account_id, role_ids).await
    }

    /// The teams a member belongs to (RSP-526, RSP-527).
    pub async fn member_team_ids(&self, account_id: i64, member_id: i64) -> Result<Vec<i64>> {
        let mut sql = Sql::new("SELECT team_id FROM team_members WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND member_id = ")
            .bind(member_id)
            .push(" ORDER BY team_id");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        rows.iter().map(|r| get_i64(r, "team_id")).collect()
    }

    /// The account's private channels (deleted ones included: their incidents are kept), for
    /// incident visibility (RSP-526).
    pub async fn private_channels(&self, account_id: i64) -> Result<Vec<ChannelAccess>> {
        let mut sql = Sql::new(
            "SELECT channel_id, creator_id, team_id, managing_team_ids FROM channels \
             WHERE is_private = 1 AND account_id = ",
        );
        sql.bind(account_id).push(" ORDER BY channel_id");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        rows.iter()
            .map(|r| {
                let channel_id = get_i64(r, "channel_id")?;
                let managing_team_ids: Vec<i64> =
                    serde_json::from_str(&get_str(r, "managing_team_ids")?).map_err(|e| {
                        StoreError::Corrupt(format!("channels.managing_team_ids {channel_id}: {e}"))
                    })?;
                Ok(ChannelAccess {
                    channel_id,
                    is_private: true,
                    creator_id: get_i64(r, "creator_id")?,
                    team_id: get_i64(r, "team_id")?,
                    managing_team_ids,
                })
            })
            .collect()
    }
}
