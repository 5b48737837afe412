//! Staff-assisted ownership transfers (SVC-004, migration 0077). The rules are
//! `klaxon_saas::ownership`; this module stores them, queues the owner's notice with each
//! start, and carries a transfer out: the new member becomes the owner, the previous owner
//! an Admin, and the tenant's contact record follows the new owner (SVC-003, SVC-313).

use jiff::Timestamp;
use klaxon_core::model::Millis;
use klaxon_saas::SaasError;
use klaxon_saas::notice::Category;
use klaxon_saas::ownership::{
    Action, Status, Target, allowed, check_request, effective_at, notice, previous_owner_roles,
};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::SaasFailure;
use super::access::staff_actor;
use super::notice_outbox::enqueue;
use crate::db::Sql;
use crate::rows::{get_i64, get_str};
use crate::{Store, StoreError};

type Result<T> = std::result::Result<T, SaasFailure>;

/// A stored transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnershipTransfer {
    pub transfer_id: i64,
    pub account_id: i64,
    pub from_member: i64,
    pub to_member: i64,
    pub documents: String,
    pub status: Status,
    pub staff_id: i64,
    pub created_at: Millis,
    pub notice_at: Millis,
    pub effective_at: Millis,
    pub objection: String,
    pub done_at: Millis,
}

const COLUMNS: &str = "transfer_id, account_id, from_member, to_member, documents, status, staff_id, created_at, notice_at, effective_at, objection, done_at";

fn row(r: &AnyRow) -> Result<OwnershipTransfer> {
    Ok(OwnershipTransfer {
        transfer_id: get_i64(r, "transfer_id")?,
        account_id: get_i64(r, "account_id")?,
        from_member: get_i64(r, "from_member")?,
        to_member: get_i64(r, "to_member")?,
        documents: get_str(r, "documents")?,
        status: Status::parse(&get_str(r, "status")?)
            .map_err(|e| StoreError::Corrupt(format!("saas_ownership_transfers.status: {e}")))?,
        staff_id: get_i64(r, "staff_id")?,
        created_at: get_i64(r, "created_at")?,
        notice_at: get_i64(r, "notice_at")?,
        effective_at: get_i64(r, "effective_at")?,
        objection: get_str(r, "objection")?,
        done_at: get_i64(r, "done_at")?,
    })
}

fn ts(ms: Millis) -> Result<Timestamp> {
    Ok(Timestamp::from_millisecond(ms).map_err(SaasError::from)?)
}

async fn audit(
    conn: &mut AnyConnection,
    account_id: i64,
    at: Millis,
    actor: &str,
    detail: &str,
) -> Result<()> {
    let mut sql =
        Sql::new("INSERT INTO saas_audit (account_id, at, actor, action, detail) VALUES (");
    sql.bind(account_id)
        .push(", ")
        .bind(at)
        .push(", ")
        .bind(actor)
        .push(", 'ownership_transfer', ")
        .bind(detail)
        .push(")");
    sql.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

async fn member_email(conn: &mut AnyConnection, account_id: i64, member_id: i64) -> Result<String> {
    let mut sql = Sql::new("SELECT email FROM members WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND member_id = ")
        .bind(member_id);
    match sql.query_on(conn).fetch_optional(&mut *conn).await? {
        Some(r) => Ok(get_str(&r, "email")?),
        None => Err(SaasFailure::Rule(SaasError::Invalid {
            field: "to-member",
            message: format!("member {member_id} is not a member of account {account_id}"),
        })),
    }
}

/// Queues the current owner's notice of the transfer.
async fn tell_owner(conn: &mut AnyConnection, t: &OwnershipTransfer, now: Millis) -> Result<()> {
    let to = member_email(conn, t.account_id, t.to_member).await?;
    let text = notice(t.transfer_id, &to, &t.documents, ts(t.effective_at)?);
    enqueue(
        conn,
        t.account_id,
        Category::OwnershipTransfer,
        "ownership_transfer",
        text,
        &format!("ownership_transfer:{}:{}", t.transfer_id, t.notice_at),
        now,
    )
    .await?;
    Ok(())
}

async fn load(conn: &mut AnyConnection, transfer_id: i64) -> Result<OwnershipTransfer> {
    let mut sql = Sql::new(&format!(
        "SELECT {COLUMNS} FROM saas_ownership_transfers WHERE transfer_id = "
    ));
    sql.bind(transfer_id);
    match sql.query_on(conn).fetch_optional(&mut *conn).await? {
        Some(r) => row(&r),
        None => Err(SaasFailure::Rule(SaasError::Unknown {
            what: "ownership transfer",
            id: u64::try_from(transfer_id).unwrap_or(0),
        })),
    }
}

/// Carries a transfer out (SVC-004): owner flags and roles, the contact record, the row.
/// The row is claimed first, so two nodes never carry the same transfer out twice.
async fn complete(
    conn: &mut AnyConnection,
    t: &OwnershipTransfer,
    actor: &str,
    now: Millis,
) -> Result<()> {
    let mut claim = Sql::new("UPDATE saas_ownership_transfers SET status = 'done', done_at = ");
    claim
        .bind(now)
        .push(" WHERE status = 'pending' AND transfer_id = ")
        .bind(t.transfer_id);
    if claim
        .query_on(conn)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        != 1
    {
        return Err(SaasFailure::Rule(SaasError::Refused {
            rule: "SVC-004",
            message: format!("transfer {} is no longer pending", t.transfer_id),
        }));
    }
    let mut sql = Sql::new("SELECT member_id, role_ids FROM members WHERE account_id = ");
    sql.bind(t.account_id).push(" AND is_owner = 1");
    let owners = sql.query_on(conn).fetch_all(&mut *conn).await?;
    for o in &owners {
        let id = get_i64(o, "member_id")?;
        let roles: Vec<i64> = serde_json::from_str(&get_str(o, "role_ids")?).unwrap_or_default();
        let roles = serde_json::to_string(&previous_owner_roles(roles))
            .map_err(|e| StoreError::Corrupt(format!("role_ids: {e}")))?;
        let mut up = Sql::new("UPDATE members SET is_owner = 0, role_ids = ");
        up.bind(roles)
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE account_id = ")
            .bind(t.account_id)
            .push(" AND member_id = ")
            .bind(id);
        up.query_on(conn).execute(&mut *conn).await?;
    }
    let mut up = Sql::new("UPDATE members SET is_owner = 1, updated_at = ");
    up.bind(now)
        .push(" WHERE account_id = ")
        .bind(t.account_id)
        .push(" AND member_id = ")
        .bind(t.to_member)
        .push(" AND status = 'enabled'");
    if up.query_on(conn).execute(&mut *conn).await?.rows_affected() != 1 {
        return Err(SaasFailure::Rule(SaasError::Refused {
            rule: "SVC-004",
            message: format!(
                "member {} is no longer an active member; the transfer cannot take effect",
                t.to_member
            ),
        }));
    }
    // SVC-313: notices switch to the new owner's contacts.
    let email = member_email(conn, t.account_id, t.to_member).await?;
    let mut up = Sql::new("UPDATE saas_contacts SET owner_email = ");
    up.bind(email.as_str())
        .push(", owner_email_verified_at = 0, updated_at = ")
        .bind(now)
        .push(" WHERE account_id = ")
        .bind(t.account_id);
    up.query_on(conn).execute(&mut *conn).await?;
    audit(
        conn,
        t.account_id,
        now,
        actor,
        &format!(
            "transfer {}: member {} -> member {} owns the tenant (SVC-004)",
            t.transfer_id, t.from_member, t.to_member
        ),
    )
    .await
}

impl Store {
    /// SVC-004: staff start a transfer to `to_member` with the supporting documents; the
    /// current owner's notice is queued with it, and it takes effect 7 days later.
    pub async fn ownership_transfer_start(
        &self,
        account_id: i64,
        to_member: i64,
        documents: &str,
        staff_id: i64,
        now: Millis,
    ) -> Result<OwnershipTransfer> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql =
            Sql::new("SELECT member_id, is_owner, status FROM members WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND member_id = ")
            .bind(to_member);
        let Some(m) = sql.query_on(&tx).fetch_optional(&mut *tx).await? else {
            return Err(SaasFailure::Rule(SaasError::Invalid {
                field: "to-member",
                message: format!("member {to_member} is not a member of account {account_id}"),
            }));
        };
        let documents = check_request(
            &Target {
                member_id: to_member,
                is_owner: get_i64(&m, "is_owner")? != 0,
                status: get_str(&m, "status")?,
            },
            documents,
        )?;
        let mut open = Sql::new(
            "SELECT transfer_id FROM saas_ownership_transfers WHERE status <> 'done' AND account_id = ",
        );
        open.bind(account_id);
        if let Some(r) = open.query_on(&tx).fetch_optional(&mut *tx).await? {
            return Err(SaasFailure::Rule(SaasError::Refused {
                rule: "SVC-004",
                message: format!(
                    "transfer {} of this tenant is still open",
                    get_i64(&r, "transfer_id")?
                ),
            }));
        }
        let mut owner =
            Sql::new("SELECT member_id FROM members WHERE is_owner = 1 AND account_id = ");
        owner.bind(account_id);
        let from_member = match owner.query_on(&tx).fetch_optional(&mut *tx).await? {
            Some(r) => get_i64(&r, "member_id")?,
            None => 0,
        };
        let effective = effective_at(ts(now)?)?.as_millisecond();
        let mut sql = Sql::new(
            "INSERT INTO saas_ownership_transfers (account_id, from_member, to_member, documents, \
             status, staff_id, created_at, notice_at, effective_at) VALUES (",
        );
        sql.bind(account_id)
            .push(", ")
            .bind(from_member)
            .push(", ")
            .bind(to_member)
            .push(", ")
            .bind(documents.as_str())
            .push(", 'pending', ")
            .bind(staff_id)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(effective)
            .push(&format!(") RETURNING {COLUMNS}"));
        let t = row(&sql.query_on(&tx).fetch_one(&mut *tx).await?)?;
        tell_owner(&mut tx, &t, now).await?;
        audit(
            &mut tx,
            account_id,
            now,
            &staff_actor(staff_id),
            &format!(
                "transfer {} to member {to_member} started: {documents}",
                t.transfer_id
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(t)
    }

    /// Records the owner's answer or the staff review (SVC-004): `Confirm` carries the
    /// transfer out now, `Object` stops it, `Resume` restarts it with a new notice.
    pub async fn ownership_transfer_act(
        &self,
        transfer_id: i64,
        action: Action,
        note: &str,
        staff_id: i64,
        now: Millis,
    ) -> Result<OwnershipTransfer> {
        let mut tx = self.inner.write.begin().await?;
        let t = load(&mut tx, transfer_id).await?;
        allowed(t.status, ts(t.effective_at)?, action, ts(now)?)?;
        let actor = staff_actor(staff_id);
        match action {
            Action::Confirm | Action::Complete => complete(&mut tx, &t, &actor, now).await?,
            Action::Object => {
                let mut up = Sql::new(
                    "UPDATE saas_ownership_transfers SET status = 'objected', objection = ",
                );
                up.bind(note)
                    .push(" WHERE transfer_id = ")
                    .bind(transfer_id);
                up.query_on(&tx).execute(&mut *tx).await?;
                audit(
                    &mut tx,
                    t.account_id,
                    now,
                    &actor,
                    &format!("transfer {transfer_id}: the owner objected: {note}"),
                )
                .await?;
            }
            Action::Resume => {
                let effective = effective_at(ts(now)?)?.as_millisecond();
                let mut up = Sql::new(
                    "UPDATE saas_ownership_transfers SET status = 'pending', notice_at = ",
                );
                up.bind(now)
                    .push(", effective_at = ")
                    .bind(effective)
                    .push(" WHERE transfer_id = ")
                    .bind(transfer_id);
                up.query_on(&tx).execute(&mut *tx).await?;
                let resumed = load(&mut tx, transfer_id).await?;
                tell_owner(&mut tx, &resumed, now).await?;
                audit(
                    &mut tx,
                    t.account_id,
                    now,
                    &actor,
                    &format!("transfer {transfer_id}: resumed after review: {note}"),
                )
                .await?;
            }
        }
        let after = load(&mut tx, transfer_id).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// The transfer job (SVC-004): carries out every pending transfer whose date has come.
    /// Each in its own transaction; one that can no longer take effect (the new owner left)
    /// is skipped and reported.
    pub async fn ownership_transfers_due(&self, now: Millis) -> Result<Vec<(i64, String)>> {
        let mut sql = Sql::new(
            "SELECT transfer_id FROM saas_ownership_transfers WHERE status = 'pending' AND effective_at <= ",
        );
        sql.bind(now).push(" ORDER BY transfer_id");
        let ids: Vec<i64> = sql
            .query()
            .fetch_all(&self.inner.read)
            .await?
            .iter()
            .map(|r| get_i64(r, "transfer_id"))
            .collect::<crate::Result<_>>()?;
        let mut out = Vec::new();
        for id in ids {
            let mut tx = self.inner.write.begin().await?;
            let t = load(&mut tx, id).await?;
            if allowed(t.status, ts(t.effective_at)?, Action::Complete, ts(now)?).is_err() {
                continue;
            }
            match complete(&mut tx, &t, "system", now).await {
                Ok(()) => {
                    tx.commit().await?;
                    out.push((t.account_id, format!("transfer {id} took effect")));
                }
                Err(SaasFailure::Rule(e)) => {
                    // Stopped for staff to review, so the job does not retry it forever.
                    drop(tx);
                    let mut up = Sql::new(
                        "UPDATE saas_ownership_transfers SET status = 'objected', objection = ",
                    );
                    up.bind(format!("stopped by the transfer job: {e}"))
                        .push(" WHERE status = 'pending' AND transfer_id = ")
                        .bind(id);
                    up.query().execute(&self.inner.write).await?;
                    out.push((t.account_id, format!("transfer {id} stopped: {e}")));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The transfers, oldest first; one tenant's when given.
    pub async fn ownership_transfers(
        &self,
        account_id: Option<i64>,
    ) -> Result<Vec<OwnershipTransfer>> {
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM saas_ownership_transfers"));
        if let Some(a) = account_id {
            sql.push(" WHERE account_id = ").bind(a);
        }
        sql.push(" ORDER BY transfer_id");
        sql.query()
            .fetch_all(&self.inner.read)
            .await?
            .iter()
            .map(row)
            .collect()
    }
}
