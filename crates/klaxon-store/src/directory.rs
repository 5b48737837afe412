//! Members and teams (response.md §1.3, §1.4, §2.30; openapi-compat.md 2.9, 2.10).
//!
//! Tables (migrations `0004_members_teams.sql`): `teams`, `team_members` (one row per team and
//! member) and the member columns added to `members`. Every statement is scoped by
//! `account_id` (DESIGN.md principle 6): another account's ids behave exactly like unknown ids.
//!
//! Inputs arrive validated and normalised by the API layer (`klaxon_core::directory`); this
//! module enforces what needs the data: existence, uniqueness (RSP-552), the daily invitation
//! budget (RSP-550), and the effects of deletions (RSP-553, RSP-554). Writes run in one
//! transaction each, so a refused request changes nothing. A refusal is a [`Refusal`] inside
//! `Ok`, distinct from database failures.

use std::collections::{BTreeMap, HashMap, HashSet};

use klaxon_core::directory::{INVITES_PER_DAY, STATUS_DELETED, STATUS_PENDING};
use klaxon_core::model::Millis;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::db::Sql;
use crate::query::contains_pattern;
use crate::records::Page;
use crate::rows::{get_i64, get_str, to_json};
use crate::{Result, Store, StoreError};

/// A team (response.md §1.4) with its members, ascending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Team {
    pub team_id: i64,
    pub account_id: i64,
    pub team_name: String,
    pub description: String,
    pub creator_id: i64,
    pub updated_by: i64,
    pub ref_id: String,
    pub person_ids: Vec<i64>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A member with every field this release stores (response.md §1.3). `member_id` is also
/// the person id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub member_id: i64,
    pub account_id: i64,
    pub member_name: String,
    pub email: String,
    /// E.164, or empty.
    pub phone: String,
    pub country_code: String,
    /// `pending`, `enabled` or `deleted`.
    pub status: String,
    pub role_ids: Vec<i64>,
    pub is_owner: bool,
    pub ref_id: String,
    pub locale: String,
    pub time_zone: String,
    pub email_verified: bool,
    pub phone_verified: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// First login; 0 while `pending`.
    pub activated_at: Millis,
}

/// What escalation needs to know about a person (RSP-152: pending and deleted members are
/// never resolved as responders).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberBrief {
    pub member_name: String,
    pub email: String,
    pub status: String,
}

/// Why a directory write or lookup was refused. Each message starts with the field it is
/// about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The addressed team or member does not exist in this account (`ResourceNotFound`).
    NotFound(String),
    /// A uniqueness clash, RSP-552 / §1.4 (`conflict` → `InvalidParameter`).
    Conflict(String),
    /// A request the data makes invalid: an ambiguous name, the daily invitation budget, the
    /// owner (`InvalidParameter`, or `BadRequest` for [`Refusal::Precondition`]).
    Invalid(String),
    /// RSP-523: the owner can be neither deleted nor demoted (`failed_precondition`).
    Precondition(String),
}

/// `Ok(value)` or the reason it was refused.
pub type Outcome<T> = std::result::Result<T, Refusal>;

/// How `/team/info` and `/team/delete` address a team (openapi-compat.md 2.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeamKey {
    Id(i64),
    Name(String),
    RefId(String),
}

/// How `/member/delete` and `/member/info/reset` address a member, in the spec's order of
/// precedence: id > name > email > phone (E.164) > ref_id (openapi-compat.md 2.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberKey {
    Id(i64),
    Name(String),
    Email(String),
    Phone(String),
    RefId(String),
}

/// `/team/upsert` (openapi-compat.md 2.9), validated.
#[derive(Debug, Clone, Default)]
pub struct TeamWrite {
    /// 0 creates a team.
    pub team_id: i64,
    pub team_name: String,
    /// `None` keeps the current description (creating: empty).
    pub description: Option<String>,
    /// `None` keeps the current ref_id (creating: empty).
    pub ref_id: Option<String>,
    /// `Some` replaces the member list with these members plus those of `emails` and
    /// `phones`; `None` with no emails and phones keeps it.
    pub person_ids: Option<Vec<i64>>,
    /// Members named by email (case-insensitive) — added to the list.
    pub emails: Vec<String>,
    /// Members named by E.164 phone — added to the list.
    pub phones: Vec<String>,
    /// Creating (`team_id` 0) a name that exists updates that team instead of refusing.
    pub reset_if_name_exist: bool,
}

/// Sort column of [`TeamFilter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TeamOrder {
    #[default]
    CreatedAt,
    UpdatedAt,
    TeamName,
}

/// `/team/list` (openapi-compat.md 2.9).
#[derive(Debug, Clone, Default)]
pub struct TeamFilter {
    pub p: i64,
    pub limit: i64,
    /// Fuzzy name search (RSP-556): each whitespace-separated word is a case-insensitive
    /// substring of the name.
    pub query: Option<String>,
    /// Only teams this member belongs to ("my teams", RSP-556).
    pub person_id: Option<i64>,
    pub orderby: TeamOrder,
    pub asc: bool,
}

/// Sort column of [`MemberFilter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemberOrder {
    #[default]
    CreatedAt,
    UpdatedAt,
}

/// `/member/list` (openapi-compat.md 2.10). Deleted members are never listed.
#[derive(Debug, Clone, Default)]
pub struct MemberFilter {
    pub p: i64,
    pub limit: i64,
    /// Case-insensitive substring of the name, the email or the phone.
    pub query: Option<String>,
    /// Only members holding this role.
    pub role_id: Option<i64>,
    pub orderby: MemberOrder,
    pub asc: bool,
}

/// One invitee of `/member/invite`, validated (RSP-550).
#[derive(Debug, Clone, Default)]
pub struct NewMember {
    pub member_name: String,
    /// Empty only for phone invitations.
    pub email: String,
    /// E.164, or empty.
    pub phone: String,
    pub country_code: String,
    pub role_ids: Vec<i64>,
    pub locale: String,
    pub time_zone: String,
    pub ref_id: String,
}

/// `/member/info/reset` `updates`, validated; `None` keeps the value. A changed email or
/// phone is no longer verified.
#[derive(Debug, Clone, Default)]
pub struct MemberUpdate {
    pub member_name: Option<String>,
    pub email: Option<String>,
    /// (E.164, country_code).
    pub phone: Option<(String, String)>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    pub ref_id: Option<String>,
}

/// Most ids one `IN (…)` list binds (SQLite allows 32 766 parameters, PostgreSQL 65 535).
const ID_CHUNK: usize = 500;

const TEAM_COLUMNS: &str = "team_id, account_id, team_name, description, creator_id, \
     updated_by, ref_id, created_at, updated_at";

const PERSON_COLUMNS: &str = "member_id, account_id, member_name, email, phone, country_code, \
     status, role_ids, is_owner, ref_id, locale, time_zone, email_verified, phone_verified, \
     created_at, updated_at, activated_at";

fn team_row(row: &AnyRow) -> Result<Team> {
    Ok(Team {
        team_id: get_i64(row, "team_id")?,
        account_id: get_i64(row, "account_id")?,
        team_name: get_str(row, "team_name")?,
        description: get_str(row, "description")?,
        creator_id: get_i64(row, "creator_id")?,
        updated_by: get_i64(row, "updated_by")?,
        ref_id: get_str(row, "ref_id")?,
        person_ids: Vec::new(),
        created_at: get_i64(row, "created_at")?,
        updated_at: get_i64(row, "updated_at")?,
    })
}

fn person_row(row: &AnyRow) -> Result<Person> {
    let role_text = get_str(row, "role_ids")?;
    let role_ids: Vec<i64> = serde_json::from_str(&role_text)
        .map_err(|e| StoreError::Corrupt(format!("members.role_ids: {e}")))?;
    Ok(Person {
        member_id: get_i64(row, "member_id")?,
        account_id: get_i64(row, "account_id")?,
        member_name: get_str(row, "member_name")?,
        email: get_str(row, "email")?,
        phone: get_str(row, "phone")?,
        country_code: get_str(row, "country_code")?,
        status: get_str(row, "status")?,
        role_ids,
        is_owner: get_i64(row, "is_owner")? != 0,
        ref_id: get_str(row, "ref_id")?,
        locale: get_str(row, "locale")?,
        time_zone: get_str(row, "time_zone")?,
        email_verified: get_i64(row, "email_verified")? != 0,
        phone_verified: get_i64(row, "phone_verified")? != 0,
        created_at: get_i64(row, "created_at")?,
        updated_at: get_i64(row, "updated_at")?,
        activated_at: get_i64(row, "activated_at")?,
    })
}

/// A uniqueness clash reported by the database (a concurrent writer got there first).
pub(crate) fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn sorted_unique(ids: &[i64]) -> Vec<i64> {
    let mut v = ids.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

// ---------------------------------------------------------------------------------------------
// Teams
// ---------------------------------------------------------------------------------------------

async fn team_by_key(
    conn: &mut AnyConnection,
    account_id: i64,
    key: &TeamKey,
) -> Result<Option<Team>> {
    let mut sql = Sql::new("SELECT ");
    sql.push(TEAM_COLUMNS)
        .push(" FROM teams WHERE account_id = ")
        .bind(account_id);
    match key {
        TeamKey::Id(id) => sql.push(" AND team_id = ").bind(*id),
        TeamKey::Name(name) => sql.push(" AND team_name = ").bind(name.as_str()),
        TeamKey::RefId(r) => sql
            .push(" AND ref_id = ")
            .bind(r.as_str())
            .push(" AND ref_id <> ''"),
    };
    // A ref_id need not be unique: the oldest team wins, deterministically.
    sql.push(" ORDER BY team_id LIMIT 1");
    let row = sql.query_on(conn).fetch_optional(&mut *conn).await?;
    match row {
        Some(row) => {
            let mut team = team_row(&row)?;
            let members = members_of(conn, account_id, &[team.team_id]).await?;
            team.person_ids = members.get(&team.team_id).cloned().unwrap_or_default();
            Ok(Some(team))
        }
        None => Ok(None),
    }
}

/// The members of each of `team_ids` that exist in the account, ascending; teams without
/// members map to an empty list, unknown teams are absent.
async fn members_of(
    conn: &mut AnyConnection,
    account_id: i64,
    team_ids: &[i64],
) -> Result<BTreeMap<i64, Vec<i64>>> {
    let ids = sorted_unique(team_ids);
    let mut out = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    for chunk in ids.chunks(ID_CHUNK) {
        let mut sql = Sql::new("SELECT team_id FROM teams WHERE account_id = ");
        sql.bind(account_id).and_in("team_id", chunk);
        for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
            out.insert(get_i64(&row, "team_id")?, Vec::new());
        }
    }
    let existing: Vec<i64> = out.keys().copied().collect();
    for chunk in existing.chunks(ID_CHUNK) {
        let mut sql = Sql::new("SELECT team_id, member_id FROM team_members WHERE account_id = ");
        sql.bind(account_id)
            .and_in("team_id", chunk)
            .push(" ORDER BY team_id, member_id");
        for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
            let team_id = get_i64(&row, "team_id")?;
            if let Some(list) = out.get_mut(&team_id) {
                list.push(get_i64(&row, "member_id")?);
            }
        }
    }
    Ok(out)
}

/// Resolves the members a team write names: ids must be live (not deleted) members of the
/// account; emails and phones must match one. Returns the ascending, distinct ids.
async fn resolve_team_members(
    conn: &mut AnyConnection,
    account_id: i64,
    write: &TeamWrite,
) -> Result<Outcome<Vec<i64>>> {
    let ids = sorted_unique(write.person_ids.as_deref().unwrap_or_default());
    let mut found: HashSet<i64> = HashSet::new();
    if !ids.is_empty() {
        // Teams are unbounded (RSP-556): look the ids up in slices that stay far below the
        // backends' bind-parameter limits.
        for chunk in ids.chunks(ID_CHUNK) {
            let mut sql = Sql::new("SELECT member_id FROM members WHERE account_id = ");
            sql.bind(account_id)
                .push(" AND status <> ")
                .bind(STATUS_DELETED)
                .and_in("member_id", chunk);
            for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
                found.insert(get_i64(&row, "member_id")?);
            }
        }
        if let Some(missing) = ids.iter().find(|id| !found.contains(id)) {
            return Ok(Err(Refusal::NotFound(format!(
                "person_ids: member {missing} not found"
            ))));
        }
    }
    for email in &write.emails {
        let mut sql = Sql::new("SELECT member_id FROM members WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND status <> ")
            .bind(STATUS_DELETED)
            .push(" AND email <> '' AND LOWER(email) = ")
            .bind(email.to_lowercase());
        match sql.query_on(conn).fetch_optional(&mut *conn).await? {
            Some(row) => {
                found.insert(get_i64(&row, "member_id")?);
            }
            None => {
                return Ok(Err(Refusal::NotFound(format!(
                    "emails: no member has the email {email}"
                ))));
            }
        }
    }
    for phone in &write.phones {
        let mut sql = Sql::new("SELECT member_id FROM members WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND status <> ")
            .bind(STATUS_DELETED)
            .push(" AND phone <> '' AND phone = ")
            .bind(phone.as_str());
        match sql.query_on(conn).fetch_optional(&mut *conn).await? {
            Some(row) => {
                found.insert(get_i64(&row, "member_id")?);
            }
            None => {
                return Ok(Err(Refusal::NotFound(format!(
                    "phones: no member has the phone {phone}"
                ))));
            }
        }
    }
    let mut all: Vec<i64> = found.into_iter().collect();
    all.sort_unstable();
    Ok(Ok(all))
}

async fn replace_team_members(
    conn: &mut AnyConnection,
    account_id: i64,
    team_id: i64,
    member_ids: &[i64],
) -> Result<()> {
    let mut sql = Sql::new("DELETE FROM team_members WHERE account_id = ");
    sql.bind(account_id).push(" AND team_id = ").bind(team_id);
    sql.query_on(conn).execute(&mut *conn).await?;
    for chunk in member_ids.chunks(200) {
        let mut sql = Sql::new("INSERT INTO team_members (account_id, team_id, member_id) VALUES ");
        for (i, member_id) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .bind(account_id)
                .push(", ")
                .bind(team_id)
                .push(", ")
                .bind(*member_id)
                .push(")");
        }
        sql.query_on(conn).execute(&mut *conn).await?;
    }
    Ok(())
}

async fn upsert_team_in(
    conn: &mut AnyConnection,
    account_id: i64,
    actor_id: i64,
    write: &TeamWrite,
    now: Millis,
) -> Result<Outcome<i64>> {
    let by_name = team_by_key(conn, account_id, &TeamKey::Name(write.team_name.clone())).await?;
    let existing = if write.team_id > 0 {
        match team_by_key(conn, account_id, &TeamKey::Id(write.team_id)).await? {
            Some(t) => Some(t),
            None => {
                return Ok(Err(Refusal::NotFound(format!(
                    "team_id: team {} not found",
                    write.team_id
                ))));
            }
        }
    } else if write.reset_if_name_exist {
        by_name.clone()
    } else {
        None
    };
    if let Some(other) = &by_name
        && existing.as_ref().is_none_or(|t| t.team_id != other.team_id)
    {
        return Ok(Err(Refusal::Conflict(format!(
            "team_name: a team named {:?} already exists (team_id {})",
            write.team_name, other.team_id
        ))));
    }
    let replace_members =
        write.person_ids.is_some() || !write.emails.is_empty() || !write.phones.is_empty();
    let members = match resolve_team_members(conn, account_id, write).await? {
        Ok(m) => m,
        Err(r) => return Ok(Err(r)),
    };
    let team_id = match existing {
        Some(team) => {
            let mut sql = Sql::new("UPDATE teams SET team_name = ");
            sql.bind(write.team_name.as_str())
                .push(", description = ")
                .bind(write.description.clone().unwrap_or(team.description))
                .push(", ref_id = ")
                .bind(write.ref_id.clone().unwrap_or(team.ref_id))
                .push(", updated_by = ")
                .bind(actor_id)
                .push(", updated_at = ")
                .bind(now)
                .push(" WHERE account_id = ")
                .bind(account_id)
                .push(" AND team_id = ")
                .bind(team.team_id);
            if let Err(r) = guarded(conn, &sql, "team_name").await? {
                return Ok(Err(r));
            }
            team.team_id
        }
        None => {
            let mut sql = Sql::new(
                "INSERT INTO teams (account_id, team_name, description, creator_id, updated_by, \
                 ref_id, created_at, updated_at) VALUES (",
            );
            sql.bind(account_id)
                .push(", ")
                .bind(write.team_name.as_str())
                .push(", ")
                .bind(write.description.clone().unwrap_or_default())
                .push(", ")
                .bind(actor_id)
                .push(", ")
                .bind(actor_id)
                .push(", ")
                .bind(write.ref_id.clone().unwrap_or_default())
                .push(", ")
                .bind(now)
                .push(", ")
                .bind(now)
                .push(") RETURNING team_id");
            match guarded(conn, &sql, "team_name").await? {
                Ok(row) => returned_id(row, "team_id")?,
                Err(r) => return Ok(Err(r)),
            }
        }
    };
    if replace_members {
        replace_team_members(conn, account_id, team_id, &members).await?;
    }
    Ok(Ok(team_id))
}

async fn list_teams(
    conn: &mut AnyConnection,
    account_id: i64,
    f: &TeamFilter,
) -> Result<Page<Team>> {
    let p = f.p.max(1);
    let limit = f.limit.max(1);
    let filtered = |sql: &mut Sql| {
        sql.push(" FROM teams WHERE account_id = ").bind(account_id);
        // RSP-556, fuzzy: every word of the query occurs in the name, in any order and
        // case ("sre db" finds "DB & SRE on-call").
        if let Some(q) = f.query.as_deref() {
            for word in q.split_whitespace().take(10) {
                sql.push(" AND LOWER(team_name) LIKE ")
                    .bind(contains_pattern(word))
                    .push(" ESCAPE '\\'");
            }
        }
        if let Some(person) = f.person_id {
            sql.push(" AND team_id IN (SELECT team_id FROM team_members WHERE account_id = ")
                .bind(account_id)
                .push(" AND member_id = ")
                .bind(person)
                .push(")");
        }
    };
    let mut count = Sql::new("SELECT COUNT(*) AS n");
    filtered(&mut count);
    let total = get_i64(&count.query_on(conn).fetch_one(&mut *conn).await?, "n")?;

    let dir = if f.asc { " ASC" } else { " DESC" };
    let column = match f.orderby {
        TeamOrder::CreatedAt => "created_at",
        TeamOrder::UpdatedAt => "updated_at",
        TeamOrder::TeamName => "team_name",
    };
    let mut sql = Sql::new("SELECT ");
    sql.push(TEAM_COLUMNS);
    filtered(&mut sql);
    sql.push(" ORDER BY ")
        .push(column)
        .push(dir)
        .push(", team_id")
        .push(dir)
        .push(" LIMIT ")
        .bind(limit)
        .push(" OFFSET ")
        .bind((p - 1).saturating_mul(limit));
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    let mut items = rows.iter().map(team_row).collect::<Result<Vec<_>>>()?;
    let ids: Vec<i64> = items.iter().map(|t| t.team_id).collect();
    let members = members_of(conn, account_id, &ids).await?;
    for t in &mut items {
        t.person_ids = members.get(&t.team_id).cloned().unwrap_or_default();
    }
    Ok(Page {
        items,
        total,
        has_next_page: p.saturating_mul(limit) < total,
        search_after_ctx: None,
    })
}

// ---------------------------------------------------------------------------------------------
// Members
// ---------------------------------------------------------------------------------------------

/// The live (not deleted) member `key` addresses. A name that several live members share is
/// refused rather than guessed.
async fn find_member(
    conn: &mut AnyConnection,
    account_id: i64,
    key: &MemberKey,
) -> Result<Outcome<Person>> {
    let mut sql = Sql::new("SELECT ");
    sql.push(PERSON_COLUMNS)
        .push(" FROM members WHERE account_id = ")
        .bind(account_id)
        .push(" AND status <> ")
        .bind(STATUS_DELETED);
    let (field, shown) = match key {
        MemberKey::Id(id) => {
            sql.push(" AND member_id = ").bind(*id);
            ("member_id", id.to_string())
        }
        MemberKey::Name(n) => {
            sql.push(" AND member_name = ").bind(n.as_str());
            ("member_name", format!("{n:?}"))
        }
        MemberKey::Email(e) => {
            sql.push(" AND email <> '' AND LOWER(email) = ")
                .bind(e.to_lowercase());
            ("email", e.clone())
        }
        MemberKey::Phone(ph) => {
            sql.push(" AND phone <> '' AND phone = ").bind(ph.as_str());
            ("phone", ph.clone())
        }
        MemberKey::RefId(r) => {
            sql.push(" AND ref_id <> '' AND ref_id = ").bind(r.as_str());
            ("ref_id", format!("{r:?}"))
        }
    };
    sql.push(" ORDER BY member_id LIMIT 2");
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    match rows.as_slice() {
        [] => Ok(Err(Refusal::NotFound(format!(
            "{field}: member {shown} not found"
        )))),
        [row] => Ok(Ok(person_row(row)?)),
        _ => Ok(Err(Refusal::Invalid(format!(
            "{field}: several members match {shown}; address the member by member_id"
        )))),
    }
}

/// A live member other than `except` already using `email` (case-insensitive) or `phone`.
async fn contact_taken(
    conn: &mut AnyConnection,
    account_id: i64,
    email: Option<&str>,
    phone: Option<&str>,
    except: i64,
) -> Result<Option<i64>> {
    let email = email.filter(|e| !e.is_empty());
    let phone = phone.filter(|p| !p.is_empty());
    if email.is_none() && phone.is_none() {
        return Ok(None);
    }
    let mut sql = Sql::new("SELECT member_id FROM members WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND status <> ")
        .bind(STATUS_DELETED)
        .push(" AND member_id <> ")
        .bind(except)
        .push(" AND (");
    match (email, phone) {
        (Some(e), Some(p)) => sql
            .push("(email <> '' AND LOWER(email) = ")
            .bind(e.to_lowercase())
            .push(") OR (phone <> '' AND phone = ")
            .bind(p)
            .push(")"),
        (Some(e), None) => sql
            .push("email <> '' AND LOWER(email) = ")
            .bind(e.to_lowercase()),
        (None, Some(p)) => sql.push("phone <> '' AND phone = ").bind(p),
        (None, None) => return Ok(None),
    };
    sql.push(") LIMIT 1");
    match sql.query_on(conn).fetch_optional(&mut *conn).await? {
        Some(row) => Ok(Some(get_i64(&row, "member_id")?)),
        None => Ok(None),
    }
}

async fn invite_in(
    conn: &mut AnyConnection,
    account_id: i64,
    invitees: &[NewMember],
    now: Millis,
    day_start: Millis,
) -> Result<Outcome<Vec<Person>>> {
    // RSP-550: at most 200 invitations per account per calendar day.
    let mut sql = Sql::new("SELECT COUNT(*) AS n FROM members WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND is_owner = 0 AND created_at >= ")
        .bind(day_start);
    let today = get_i64(&sql.query_on(conn).fetch_one(&mut *conn).await?, "n")?;
    let asked = i64::try_from(invitees.len()).unwrap_or(i64::MAX);
    if today.saturating_add(asked) > INVITES_PER_DAY {
        return Ok(Err(Refusal::Invalid(format!(
            "members: at most {INVITES_PER_DAY} invitations per day; {} left today",
            (INVITES_PER_DAY - today).max(0)
        ))));
    }
    // RSP-552: unique email (case-insensitive) and phone, within the request and the account.
    let mut emails: HashMap<String, usize> = HashMap::new();
    let mut phones: HashMap<String, usize> = HashMap::new();
    for (i, m) in invitees.iter().enumerate() {
        if !m.email.is_empty()
            && let Some(j) = emails.insert(m.email.to_lowercase(), i)
        {
            return Ok(Err(Refusal::Conflict(format!(
                "members[{i}].email: {} is also given in members[{j}]",
                m.email
            ))));
        }
        if !m.phone.is_empty()
            && let Some(j) = phones.insert(m.phone.clone(), i)
        {
            return Ok(Err(Refusal::Conflict(format!(
                "members[{i}].phone: {} is also given in members[{j}]",
                m.phone
            ))));
        }
        if contact_taken(conn, account_id, Some(&m.email), None, 0)
            .await?
            .is_some()
        {
            return Ok(Err(Refusal::Conflict(format!(
                "members[{i}].email: a member with the email {} already exists",
                m.email
            ))));
        }
        if contact_taken(conn, account_id, None, Some(&m.phone), 0)
            .await?
            .is_some()
        {
            return Ok(Err(Refusal::Conflict(format!(
                "members[{i}].phone: a member with the phone {} already exists",
                m.phone
            ))));
        }
    }
    let mut ids = Vec::with_capacity(invitees.len());
    for (i, m) in invitees.iter().enumerate() {
        let row = MemberRow {
            account_id,
            member_name: &m.member_name,
            email: &m.email,
            status: STATUS_PENDING,
            role_ids: &m.role_ids,
            locale: &m.locale,
            time_zone: &m.time_zone,
            phone: &m.phone,
            country_code: &m.country_code,
            ref_id: &m.ref_id,
            email_verified: false,
            activated_at: 0,
            now,
        };
        match insert_member_row(conn, &row, &format!("members[{i}]")).await? {
            Ok(id) => ids.push(id),
            Err(r) => return Ok(Err(r)),
        }
    }
    let mut people = persons_in(conn, account_id, &ids).await?;
    people.sort_by_key(|p| ids.iter().position(|id| *id == p.member_id));
    Ok(Ok(people))
}

/// A new row of `members`: what an invitation (RSP-551) and a just-in-time SSO sign-in
/// (RSP-572) both create. The member has no password (`password_hash = ''`), is not the
/// owner, and its phone is never verified at creation (RSP-573).
pub(crate) struct MemberRow<'a> {
    pub account_id: i64,
    pub member_name: &'a str,
    pub email: &'a str,
    pub status: &'a str,
    pub role_ids: &'a [i64],
    pub locale: &'a str,
    pub time_zone: &'a str,
    pub phone: &'a str,
    pub country_code: &'a str,
    pub ref_id: &'a str,
    pub email_verified: bool,
    /// 0 = never signed in (`pending`).
    pub activated_at: Millis,
    pub now: Millis,
}

/// Inserts a member row and returns its id. A unique-index violation (the email or phone was
/// taken by a concurrent request) is a `Conflict` naming `field`.
pub(crate) async fn insert_member_row(
    conn: &mut AnyConnection,
    m: &MemberRow<'_>,
    field: &str,
) -> Result<Outcome<i64>> {
    let mut sql = Sql::new(
        "INSERT INTO members (account_id, member_name, email, password_hash, status, \
         role_ids, is_owner, locale, time_zone, created_at, updated_at, phone, country_code, \
         ref_id, email_verified, phone_verified, activated_at) VALUES (",
    );
    sql.bind(m.account_id)
        .push(", ")
        .bind(m.member_name)
        .push(", ")
        .bind(m.email)
        .push(", '', ")
        .bind(m.status)
        .push(", ")
        .bind(to_json(&m.role_ids)?)
        .push(", 0, ")
        .bind(m.locale)
        .push(", ")
        .bind(m.time_zone)
        .push(", ")
        .bind(m.now)
        .push(", ")
        .bind(m.now)
        .push(", ")
        .bind(m.phone)
        .push(", ")
        .bind(m.country_code)
        .push(", ")
        .bind(m.ref_id)
        .push(", ")
        .bind(i64::from(m.email_verified))
        .push(", 0, ")
        .bind(m.activated_at)
        .push(") RETURNING member_id");
    match guarded(conn, &sql, field).await? {
        Ok(row) => Ok(Ok(returned_id(row, "member_id")?)),
        Err(r) => Ok(Err(r)),
    }
}

async fn persons_in(conn: &mut AnyConnection, account_id: i64, ids: &[i64]) -> Result<Vec<Person>> {
    let ids = sorted_unique(ids);
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(ID_CHUNK) {
        let mut sql = Sql::new("SELECT ");
        sql.push(PERSON_COLUMNS)
            .push(" FROM members WHERE account_id = ")
            .bind(account_id)
            .and_in("member_id", chunk)
            .push(" ORDER BY member_id");
        for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
            out.push(person_row(&row)?);
        }
    }
    Ok(out)
}

async fn list_members(
    conn: &mut AnyConnection,
    account_id: i64,
    f: &MemberFilter,
) -> Result<Page<Person>> {
    let p = f.p.max(1);
    let limit = f.limit.max(1);
    let filtered = |sql: &mut Sql| {
        sql.push(" FROM members WHERE account_id = ")
            .bind(account_id)
            .push(" AND status <> ")
            .bind(STATUS_DELETED);
        if let Some(q) = f.query.as_deref().filter(|q| !q.is_empty()) {
            let pattern = contains_pattern(q);
            sql.push(" AND (LOWER(member_name) LIKE ")
                .bind(pattern.clone())
                .push(" ESCAPE '\\' OR LOWER(email) LIKE ")
                .bind(pattern.clone())
                .push(" ESCAPE '\\' OR phone LIKE ")
                .bind(pattern)
                .push(" ESCAPE '\\')");
        }
        if let Some(role) = f.role_id {
            // role_ids is a JSON array of integers written by this crate (`[2,8]`).
            sql.push(" AND (',' || REPLACE(REPLACE(REPLACE(role_ids, '[', ''), ']', ''), ' ', '') || ',') LIKE ")
                .bind(format!("%,{role},%"));
        }
    };
    let mut count = Sql::new("SELECT COUNT(*) AS n");
    filtered(&mut count);
    let total = get_i64(&count.query_on(conn).fetch_one(&mut *conn).await?, "n")?;

    let dir = if f.asc { " ASC" } else { " DESC" };
    let column = match f.orderby {
        MemberOrder::CreatedAt => "created_at",
        MemberOrder::UpdatedAt => "updated_at",
    };
    let mut sql = Sql::new("SELECT ");
    sql.push(PERSON_COLUMNS);
    filtered(&mut sql);
    sql.push(" ORDER BY ")
        .push(column)
        .push(dir)
        .push(", member_id")
        .push(dir)
        .push(" LIMIT ")
        .bind(limit)
        .push(" OFFSET ")
        .bind((p - 1).saturating_mul(limit));
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    let items = rows.iter().map(person_row).collect::<Result<Vec<_>>>()?;
    Ok(Page {
        items,
        total,
        has_next_page: p.saturating_mul(limit) < total,
        search_after_ctx: None,
    })
}

/// The account's live schedules as (id, definition), for the reference clean-ups below.
async fn live_schedules(
    conn: &mut AnyConnection,
    account_id: i64,
) -> Result<Vec<klaxon_core::schedule::Schedule>> {
    let mut sql = Sql::new("SELECT schedule_id, definition FROM schedules WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND deleted = 0 ORDER BY schedule_id");
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|row| {
            let id = get_i64(row, "schedule_id")?;
            let text = get_str(row, "definition")?;
            let mut s: klaxon_core::schedule::Schedule = serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("schedules.definition {id}: {e}")))?;
            s.schedule_id = id;
            Ok(s)
        })
        .collect()
}

async fn save_schedule_definition(
    conn: &mut AnyConnection,
    account_id: i64,
    schedule: &klaxon_core::schedule::Schedule,
) -> Result<()> {
    let mut sql = Sql::new("UPDATE schedules SET definition = ");
    sql.bind(to_json(schedule)?)
        .push(", team_id = ")
        .bind(schedule.team_id)
        .push(", updated_at = ")
        .bind(schedule.updated_at)
        .push(" WHERE account_id = ")
        .bind(account_id)
        .push(" AND schedule_id = ")
        .bind(schedule.schedule_id);
    sql.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

/// RSP-226: a deleted member leaves every schedule group at `now` — an edit under RSP-225,
/// so the past keeps them (`klaxon_core::schedule::remove_member`).
async fn remove_from_schedules(
    conn: &mut AnyConnection,
    account_id: i64,
    member_id: i64,
    now: Millis,
) -> Result<()> {
    for schedule in live_schedules(conn, account_id).await? {
        let in_a_group = schedule.layers.iter().any(|l| {
            l.groups
                .iter()
                .any(|g| g.members.iter().any(|m| m.person_id == member_id))
        });
        if in_a_group {
            let next = klaxon_core::schedule::remove_member(&schedule, member_id, now);
            save_schedule_definition(conn, account_id, &next).await?;
        }
    }
    Ok(())
}

/// RSP-554: schedules managed by a deleted team lose it as their team.
async fn drop_team_from_schedules(
    conn: &mut AnyConnection,
    account_id: i64,
    team_id: i64,
) -> Result<()> {
    for mut schedule in live_schedules(conn, account_id).await? {
        if schedule.team_id == team_id {
            schedule.team_id = 0;
            save_schedule_definition(conn, account_id, &schedule).await?;
        }
    }
    Ok(())
}

async fn delete_member_in(
    conn: &mut AnyConnection,
    account_id: i64,
    key: &MemberKey,
    now: Millis,
) -> Result<Outcome<Person>> {
    let person = match find_member(conn, account_id, key).await? {
        Ok(p) => p,
        Err(r) => return Ok(Err(r)),
    };
    if person.is_owner {
        return Ok(Err(Refusal::Precondition(format!(
            "member {}: the account owner cannot be deleted",
            person.member_id
        ))));
    }
    let mut sql = Sql::new("UPDATE members SET status = ");
    sql.bind(STATUS_DELETED)
        .push(", updated_at = ")
        .bind(now)
        .push(" WHERE account_id = ")
        .bind(account_id)
        .push(" AND member_id = ")
        .bind(person.member_id);
    sql.query_on(conn).execute(&mut *conn).await?;
    // RSP-553: out of every team, and every APP key revoked at once.
    let mut sql = Sql::new("DELETE FROM team_members WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND member_id = ")
        .bind(person.member_id);
    sql.query_on(conn).execute(&mut *conn).await?;
    let mut sql = Sql::new("DELETE FROM app_keys WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND member_id = ")
        .bind(person.member_id);
    sql.query_on(conn).execute(&mut *conn).await?;
    let mut sql = Sql::new("DELETE FROM sessions WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND member_id = ")
        .bind(person.member_id);
    sql.query_on(conn).execute(&mut *conn).await?;
    remove_from_schedules(conn, account_id, person.member_id, now).await?;
    Ok(Ok(Person {
        status: STATUS_DELETED.to_string(),
        updated_at: now,
        ..person
    }))
}

async fn reset_member_in(
    conn: &mut AnyConnection,
    account_id: i64,
    key: &MemberKey,
    update: &MemberUpdate,
    now: Millis,
) -> Result<Outcome<Person>> {
    let person = match find_member(conn, account_id, key).await? {
        Ok(p) => p,
        Err(r) => return Ok(Err(r)),
    };
    let new_email = update
        .email
        .as_deref()
        .filter(|e| !e.eq_ignore_ascii_case(&person.email));
    let new_phone = update.phone.as_ref().filter(|(p, _)| *p != person.phone);
    if let Some(e) = new_email
        && contact_taken(conn, account_id, Some(e), None, person.member_id)
            .await?
            .is_some()
    {
        return Ok(Err(Refusal::Conflict(format!(
            "updates.email: a member with the email {e} already exists"
        ))));
    }
    if let Some((p, _)) = new_phone
        && contact_taken(conn, account_id, None, Some(p), person.member_id)
            .await?
            .is_some()
    {
        return Ok(Err(Refusal::Conflict(format!(
            "updates.phone: a member with the phone {p} already exists"
        ))));
    }
    let mut sql = Sql::new("UPDATE members SET updated_at = ");
    sql.bind(now);
    if let Some(n) = &update.member_name {
        sql.push(", member_name = ").bind(n.as_str());
    }
    if let Some(e) = &update.email {
        sql.push(", email = ").bind(e.as_str());
        if new_email.is_some() {
            sql.push(", email_verified = 0");
        }
    }
    if let Some((p, cc)) = &update.phone {
        sql.push(", phone = ")
            .bind(p.as_str())
            .push(", country_code = ")
            .bind(cc.as_str());
        if new_phone.is_some() {
            sql.push(", phone_verified = 0");
        }
    }
    if let Some(l) = &update.locale {
        sql.push(", locale = ").bind(l.as_str());
    }
    if let Some(z) = &update.time_zone {
        sql.push(", time_zone = ").bind(z.as_str());
    }
    if let Some(r) = &update.ref_id {
        sql.push(", ref_id = ").bind(r.as_str());
    }
    sql.push(" WHERE account_id = ")
        .bind(account_id)
        .push(" AND member_id = ")
        .bind(person.member_id);
    if let Err(r) = guarded(conn, &sql, "updates").await? {
        return Ok(Err(r));
    }
    let mut fresh = persons_in(conn, account_id, &[person.member_id]).await?;
    match fresh.pop() {
        Some(p) => Ok(Ok(p)),
        None => Err(StoreError::Corrupt(format!(
            "member {} vanished during its update",
            person.member_id
        ))),
    }
}

/// Runs a write that a unique index guards. The transaction's own checks come first and
/// give the precise message; a violation here means a concurrent request got there first
/// (PostgreSQL, READ COMMITTED) and becomes a conflict naming `field`. Returns the first row
/// (`RETURNING`), if any.
async fn guarded(
    conn: &mut AnyConnection,
    sql: &Sql,
    field: &str,
) -> Result<Outcome<Option<AnyRow>>> {
    match sql.query_on(conn).fetch_optional(&mut *conn).await {
        Ok(row) => Ok(Ok(row)),
        Err(e) if unique_violation(&e) => Ok(Err(Refusal::Conflict(format!(
            "{field}: already taken by a concurrent request"
        )))),
        Err(e) => Err(e.into()),
    }
}

/// The id a `RETURNING` insert gave back.
fn returned_id(row: Option<AnyRow>, what: &str) -> Result<i64> {
    row.ok_or_else(|| StoreError::Corrupt(format!("no {what} returned")))?
        .try_get::<i64, _>(0)
        .map_err(|e| StoreError::Corrupt(format!("returned {what}: {e}")))
}

/// Runs `$body` in a transaction on the write pool: committed when it returns `Ok(Ok(_))`,
/// rolled back on a refusal or an error, so a refused request changes nothing.
macro_rules! in_tx {
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
            // Dropping the transaction rolls it back.
            Err(e) => Err(e),
        }
    }};
}

impl Store {
    /// Sets the account's time zone (response.md 1.1 `time_zone`, OQ-40), the zone templates
    /// format times in (RSP-344). The caller has checked that `zone` is a known IANA name
    /// (`klaxon_core::directory::time_zone`). False when the account does not exist.
    pub async fn set_account_time_zone(
        &self,
        account_id: i64,
        zone: &str,
        now: Millis,
    ) -> Result<bool> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new("UPDATE accounts SET time_zone = ");
        sql.bind(zone)
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE account_id = ")
            .bind(account_id);
        Ok(sql
            .query_on(&conn)
            .execute(&mut *conn)
            .await?
            .rows_affected()
            == 1)
    }

    /// Creates (`team_id` 0) or updates a team (openapi-compat.md 2.9) as `actor_id`, in one
    /// transaction; returns the saved team with its members.
    pub async fn upsert_team(
        &self,
        account_id: i64,
        actor_id: i64,
        write: &TeamWrite,
        now: Millis,
    ) -> Result<Outcome<Team>> {
        let saved = in_tx!(self, |conn| {
            upsert_team_in(conn, account_id, actor_id, write, now).await
        })?;
        match saved {
            Ok(team_id) => match self.team(account_id, &TeamKey::Id(team_id)).await? {
                Some(t) => Ok(Ok(t)),
                None => Ok(Err(Refusal::NotFound(format!(
                    "team_id: team {team_id} not found"
                )))),
            },
            Err(r) => Ok(Err(r)),
        }
    }

    /// Deletes a team and its memberships at once (RSP-554); channels and schedules managed
    /// by it lose it as their team. Returns the deleted team.
    pub async fn delete_team(&self, account_id: i64, key: &TeamKey) -> Result<Outcome<Team>> {
        in_tx!(self, |conn| {
            match team_by_key(conn, account_id, key).await? {
                None => Ok(Err(Refusal::NotFound(format!(
                    "{}: team not found",
                    team_key_field(key)
                )))),
                Some(team) => {
                    let mut sql = Sql::new("DELETE FROM team_members WHERE account_id = ");
                    sql.bind(account_id)
                        .push(" AND team_id = ")
                        .bind(team.team_id);
                    sql.query_on(conn).execute(&mut *conn).await?;
                    let mut sql = Sql::new("DELETE FROM teams WHERE account_id = ");
                    sql.bind(account_id)
                        .push(" AND team_id = ")
                        .bind(team.team_id);
                    sql.query_on(conn).execute(&mut *conn).await?;
                    let mut sql = Sql::new("UPDATE channels SET team_id = 0 WHERE account_id = ");
                    sql.bind(account_id)
                        .push(" AND team_id = ")
                        .bind(team.team_id);
                    sql.query_on(conn).execute(&mut *conn).await?;
                    drop_team_from_schedules(conn, account_id, team.team_id).await?;
                    crate::calendars::drop_team(conn, account_id, team.team_id).await?;
                    Ok(Ok(team))
                }
            }
        })
    }

    /// RSP-556: the member leaves the team `key` addresses. Refused (`Precondition`) when
    /// the member does not belong to it; nothing else about the team changes.
    pub async fn leave_team(
        &self,
        account_id: i64,
        member_id: i64,
        key: &TeamKey,
        now: Millis,
    ) -> Result<Outcome<Team>> {
        in_tx!(self, |conn| {
            let Some(team) = team_by_key(conn, account_id, key).await? else {
                return Ok(Err(Refusal::NotFound(format!(
                    "{}: team not found",
                    team_key_field(key)
                ))));
            };
            let mut sql = Sql::new("DELETE FROM team_members WHERE account_id = ");
            sql.bind(account_id)
                .push(" AND team_id = ")
                .bind(team.team_id)
                .push(" AND member_id = ")
                .bind(member_id);
            if sql
                .query_on(conn)
                .execute(&mut *conn)
                .await?
                .rows_affected()
                == 0
            {
                return Ok(Err(Refusal::Precondition(format!(
                    "you are not a member of the team {}",
                    team.team_name
                ))));
            }
            let mut sql = Sql::new("UPDATE teams SET updated_at = ");
            sql.bind(now)
                .push(" WHERE account_id = ")
                .bind(account_id)
                .push(" AND team_id = ")
                .bind(team.team_id);
            sql.query_on(conn).execute(&mut *conn).await?;
            Ok(Ok(team))
        })
    }

    /// The account's team `key` addresses, with its members.
    pub async fn team(&self, account_id: i64, key: &TeamKey) -> Result<Option<Team>> {
        let mut conn = self.inner.read.acquire().await?;
        team_by_key(&mut conn, account_id, key).await
    }

    /// The account's teams among `team_ids`, ascending by id; unknown ids are left out.
    pub async fn teams(&self, account_id: i64, team_ids: &[i64]) -> Result<Vec<Team>> {
        let ids = sorted_unique(team_ids);
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.inner.read.acquire().await?;
        let mut items = Vec::new();
        for chunk in ids.chunks(ID_CHUNK) {
            let mut sql = Sql::new("SELECT ");
            sql.push(TEAM_COLUMNS)
                .push(" FROM teams WHERE account_id = ")
                .bind(account_id)
                .and_in("team_id", chunk)
                .push(" ORDER BY team_id");
            for row in sql.query_on(&conn).fetch_all(&mut *conn).await? {
                items.push(team_row(&row)?);
            }
        }
        let members = members_of(&mut conn, account_id, &ids).await?;
        for t in &mut items {
            t.person_ids = members.get(&t.team_id).cloned().unwrap_or_default();
        }
        Ok(items)
    }

    /// A page of the account's teams (openapi-compat.md 2.9) with their members.
    pub async fn list_teams(&self, account_id: i64, filter: &TeamFilter) -> Result<Page<Team>> {
        let mut conn = self.inner.read.acquire().await?;
        list_teams(&mut conn, account_id, filter).await
    }

    /// The members of each of `team_ids` (ascending member ids), for the account's existing
    /// teams only: an unknown or foreign team id is absent from the map, a team without
    /// members maps to an empty list. Pending members are included; ask
    /// [`Store::members_status`] who may be notified (RSP-152).
    pub async fn team_members(
        &self,
        account_id: i64,
        team_ids: &[i64],
    ) -> Result<BTreeMap<i64, Vec<i64>>> {
        let mut conn = self.inner.read.acquire().await?;
        members_of(&mut conn, account_id, team_ids).await
    }

    /// Name, email and status of the account's persons among `ids`, deleted ones included
    /// (their history shows them by name, RSP-553); unknown ids are absent.
    pub async fn members_status(
        &self,
        account_id: i64,
        ids: &[i64],
    ) -> Result<HashMap<i64, MemberBrief>> {
        Ok(self
            .persons(account_id, ids)
            .await?
            .into_iter()
            .map(|p| {
                (
                    p.member_id,
                    MemberBrief {
                        member_name: p.member_name,
                        email: p.email,
                        status: p.status,
                    },
                )
            })
            .collect())
    }

    /// The account's persons among `ids`, ascending, deleted ones included (`/person/infos`).
    pub async fn persons(&self, account_id: i64, ids: &[i64]) -> Result<Vec<Person>> {
        let mut conn = self.inner.read.acquire().await?;
        persons_in(&mut conn, account_id, ids).await
    }

    /// Invites members (RSP-550, RSP-552): all of them or none, as `pending`. `day_start` is
    /// the start of the current calendar day in the account's time zone (the daily budget).
    pub async fn invite_members(
        &self,
        account_id: i64,
        invitees: &[NewMember],
        now: Millis,
        day_start: Millis,
    ) -> Result<Outcome<Vec<Person>>> {
        in_tx!(self, |conn| {
            invite_in(conn, account_id, invitees, now, day_start).await
        })
    }

    /// A page of the account's members, deleted ones excluded (openapi-compat.md 2.10).
    pub async fn list_members(
        &self,
        account_id: i64,
        filter: &MemberFilter,
    ) -> Result<Page<Person>> {
        let mut conn = self.inner.read.acquire().await?;
        list_members(&mut conn, account_id, filter).await
    }

    /// The live member `key` addresses.
    pub async fn find_member(&self, account_id: i64, key: &MemberKey) -> Result<Outcome<Person>> {
        let mut conn = self.inner.read.acquire().await?;
        find_member(&mut conn, account_id, key).await
    }

    /// Deletes (deactivates) a member (RSP-553): status `deleted`, out of every team and every
    /// schedule group from `now` on (RSP-226), APP keys revoked — in one transaction. The
    /// owner cannot be deleted (RSP-523).
    pub async fn delete_member(
        &self,
        account_id: i64,
        key: &MemberKey,
        now: Millis,
    ) -> Result<Outcome<Person>> {
        in_tx!(self, |conn| {
            delete_member_in(conn, account_id, key, now).await
        })
    }

    /// Changes a live member's profile (`/member/info/reset`); returns the updated member.
    pub async fn reset_member(
        &self,
        account_id: i64,
        key: &MemberKey,
        update: &MemberUpdate,
        now: Millis,
    ) -> Result<Outcome<Person>> {
        in_tx!(self, |conn| {
            reset_member_in(conn, account_id, key, update, now).await
        })
    }
}

/// RSP-610: at most this many APP keys per member.
pub const APP_KEYS_PER_MEMBER: i64 = 5;

async fn add_app_key_in(
    conn: &mut AnyConnection,
    account_id: i64,
    member_id: i64,
    key_name: &str,
    app_key: &str,
    now: Millis,
) -> Result<Outcome<()>> {
    if let Err(r) = find_member(conn, account_id, &MemberKey::Id(member_id)).await? {
        return Ok(Err(r));
    }
    // Stored hashed, at most five per member (RSP-610): signin::insert_app_key.
    Ok(
        crate::signin::insert_app_key(conn, account_id, member_id, key_name, app_key, now)
            .await?
            .map(|_| ()),
    )
}

impl Store {
    /// Gives a live member of the account one more APP key (`app_key`, the bearer secret),
    /// at most [`APP_KEYS_PER_MEMBER`] each (RSP-610). The key acts as that member until the
    /// key or the member is deleted (RSP-611).
    pub async fn add_app_key(
        &self,
        account_id: i64,
        member_id: i64,
        key_name: &str,
        app_key: &str,
        now: Millis,
    ) -> Result<Outcome<()>> {
        in_tx!(self, |conn| {
            add_app_key_in(conn, account_id, member_id, key_name, app_key, now).await
        })
    }
}

fn team_key_field(key: &TeamKey) -> String {
    match key {
        TeamKey::Id(id) => format!("team_id {id}"),
        TeamKey::Name(n) => format!("team_name {n:?}"),
        TeamKey::RefId(r) => format!("ref_id {r:?}"),
    }
}
