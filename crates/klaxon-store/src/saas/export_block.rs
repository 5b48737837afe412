//! Lifting an export block (SVC-232, SVC-237; migration 0087). A termination for serious
//! breach may block the tenant's export on a legal basis; staff lift it when that basis is
//! gone — an upheld appeal, the authority's release. As the block came from a decision of two
//! staff members (SVC-232), so does its lift: a proposer and a different approver, with
//! written reasons and the decision's reference. Only while there is data to export (before
//! `purging`). One transaction: the flag cleared, the lift recorded, the operator's audit
//! row and the tenant's own audit log entry; the export route reads the flag from the
//! store, so the lift applies at once on every node.

use klaxon_core::model::Millis;
use klaxon_saas::SaasError;
use klaxon_saas::state::ServiceState;
use serde_json::json;
use sqlx::AnyConnection;

use super::access::audit_pair;
use super::{Result, SaasSettings, audit, lock_tenant};
use crate::Store;
use crate::db::Sql;
use crate::rows::{get_i64, get_str};

/// What staff give to lift a block.
#[derive(Debug, Clone, Default)]
pub struct LiftExportBlock {
    /// The written reasons (SVC-237).
    pub reason: String,
    /// The decision it rests on: the appeal ticket, the authority's release.
    pub reference: String,
    pub proposer: String,
    pub approver: String,
}

/// A recorded lift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportBlockLift {
    pub lift_id: i64,
    pub account_id: i64,
    /// The legal basis the block had.
    pub basis: String,
    pub reason: String,
    pub reference: String,
    pub proposer: String,
    pub approver: String,
    pub lifted_at: Millis,
    pub actor: String,
}

const COLUMNS: &str =
    "lift_id, account_id, basis, reason, reference, proposer, approver, lifted_at, actor";

fn lift(row: &sqlx::any::AnyRow) -> crate::Result<ExportBlockLift> {
    Ok(ExportBlockLift {
        lift_id: get_i64(row, "lift_id")?,
        account_id: get_i64(row, "account_id")?,
        basis: get_str(row, "basis")?,
        reason: get_str(row, "reason")?,
        reference: get_str(row, "reference")?,
        proposer: get_str(row, "proposer")?,
        approver: get_str(row, "approver")?,
        lifted_at: get_i64(row, "lifted_at")?,
        actor: get_str(row, "actor")?,
    })
}

fn required(field: &'static str, value: &str) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(SaasError::Invalid {
            field,
            message: "is required to lift an export block".into(),
        }
        .into());
    }
    if v.chars().count() > 2_000 {
        return Err(SaasError::Invalid {
            field,
            message: "at most 2000 characters".into(),
        }
        .into());
    }
    Ok(v.to_string())
}

async fn lifts_on(conn: &mut AnyConnection, account_id: i64) -> Result<Vec<ExportBlockLift>> {
    let mut sql = Sql::new(&format!(
        "SELECT {COLUMNS} FROM saas_export_block_lifts WHERE account_id = "
    ));
    sql.bind(account_id).push(" ORDER BY lift_id");
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    Ok(rows.iter().map(lift).collect::<crate::Result<_>>()?)
}

impl Store {
    /// SVC-232/237: lifts the tenant's export block. Refused, changing nothing, when there is
    /// no block, a field is missing, proposer and approver are the same person, or the
    /// tenant is `purging` or `purged` (nothing is left to export).
    pub async fn saas_lift_export_block(
        &self,
        settings: &SaasSettings,
        account_id: i64,
        l: &LiftExportBlock,
        now: Millis,
        actor: &str,
    ) -> Result<ExportBlockLift> {
        let reason = required("reason", &l.reason)?;
        let reference = required("reference", &l.reference)?;
        let proposer = required("proposer", &l.proposer)?;
        let approver = required("approver", &l.approver)?;
        if proposer == approver {
            return Err(SaasError::Refused {
                rule: "SVC-232",
                message: "lifting an export block needs two staff members: the approver must not be the proposer".into(),
            }
            .into());
        }
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        let t = lock_tenant(conn, settings, account_id, now).await?;
        if matches!(
            t.standing.state,
            ServiceState::Purging | ServiceState::Purged
        ) {
            return Err(SaasError::Refused {
                rule: "SVC-022",
                message: format!(
                    "the tenant is {}: its data is gone or going, there is no export to unblock",
                    t.standing.state
                ),
            }
            .into());
        }
        let mut sql = Sql::new("SELECT export_blocked FROM saas_tenants WHERE account_id = ");
        sql.bind(account_id);
        let basis = match sql.query_on(conn).fetch_optional(&mut *conn).await? {
            Some(row) => get_str(&row, "export_blocked")?,
            None => String::new(),
        };
        if basis.is_empty() {
            return Err(SaasError::Invalid {
                field: "account_id",
                message: format!("the export of account {account_id} is not blocked"),
            }
            .into());
        }
        let mut upd = Sql::new("UPDATE saas_tenants SET export_blocked = '', updated_at = ");
        upd.bind(now).push(" WHERE account_id = ").bind(account_id);
        upd.query_on(conn).execute(&mut *conn).await?;
        let mut ins = Sql::new(
            "INSERT INTO saas_export_block_lifts (account_id, basis, reason, reference, proposer, \
             approver, lifted_at, actor) VALUES (",
        );
        ins.bind(account_id)
            .push(", ")
            .bind(basis.as_str())
            .push(", ")
            .bind(reason.as_str())
            .push(", ")
            .bind(reference.as_str())
            .push(", ")
            .bind(proposer.as_str())
            .push(", ")
            .bind(approver.as_str())
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(actor)
            .push(") RETURNING lift_id");
        let row = ins.query_on(conn).fetch_one(&mut *conn).await?;
        let lift_id = get_i64(&row, "lift_id")?;
        audit(
            conn,
            account_id,
            now,
            actor,
            "export_block_lift",
            &format!(
                "export block lifted (was: {basis}); {reason}; ref {reference}; proposed by {proposer}, approved by {approver}"
            ),
        )
        .await?;
        // The tenant sees in its own audit log that its export works again, and why.
        let body = json!({
            "lift_id": lift_id,
            "basis": basis,
            "reason": reason,
            "reference": reference,
            "proposer": proposer,
            "approver": approver,
        })
        .to_string();
        audit_pair(
            conn,
            account_id,
            now,
            "",
            actor,
            "staff",
            "export_block:lift",
            "account",
            &account_id.to_string(),
            "",
            true,
            false,
            &body,
            0,
        )
        .await?;
        let rec = lifts_on(conn, account_id)
            .await?
            .into_iter()
            .find(|x| x.lift_id == lift_id)
            .ok_or(super::SaasFailure::UnknownAccount(account_id))?;
        tx.commit().await?;
        Ok(rec)
    }

    /// The lifts of the tenant's export blocks, oldest first.
    pub async fn saas_export_block_lifts(&self, account_id: i64) -> Result<Vec<ExportBlockLift>> {
        let mut conn = self.inner.read.acquire().await?;
        lifts_on(&mut conn, account_id).await
    }
}
