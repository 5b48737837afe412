//! The audit log (response.md §1.25, §2.32, migration 0021; docs/audit-log.md).
//!
//! Rows are appended by the server's one hook around every Open API / console write and by
//! sign-in; this module only stores, pages and expires them. The member's name is copied at
//! write time so a record keeps showing who acted after the member is renamed or deleted.

use klaxon_core::model::Millis;
use serde::Serialize;
use sqlx::AnyConnection;

use crate::db::Sql;
use crate::rows::{get_i64, get_str};
use crate::{Result, Store};

/// One record to append (§1.25). `body` is already redacted and cut (RSP-601).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditRecord {
    pub account_id: i64,
    pub request_id: String,
    pub created_at: Millis,
    pub member_id: i64,
    /// The APP key the call used; 0 for a console session or a sign-in.
    pub app_key_id: i64,
    /// `api`, `console` or `signin`.
    pub source: String,
    pub operation: String,
    pub resource_type: String,
    pub resource_id: String,
    pub ip: String,
    pub is_write: bool,
    pub is_dangerous: bool,
    pub body: String,
    /// `ok` or the error category of a failed call (RSP-600).
    pub result: String,
}

/// A stored record, as `/audit/search` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub account_id: i64,
    pub request_id: String,
    pub created_at: Millis,
    pub member_id: i64,
    pub member_name: String,
    pub app_key_id: i64,
    pub source: String,
    pub operation: String,
    pub resource_type: String,
    pub resource_id: String,
    pub ip: String,
    pub is_write: bool,
    pub is_dangerous: bool,
    pub body: String,
    pub result: String,
}

/// Filters of `/audit/search` (openapi-compat.md 2.15, RSP-602). Times are ms, inclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub start: Millis,
    pub end: Millis,
    pub operations: Vec<String>,
    pub member_id: Option<i64>,
    pub request_id: Option<String>,
    pub is_dangerous: Option<bool>,
    pub is_write: Option<bool>,
    /// Only records strictly older than this `(created_at, seq)` (the paging cursor).
    pub before: Option<(Millis, i64)>,
    pub limit: i64,
    /// The time of the search: staff-access records of a lawful request whose
    /// non-disclosure order is in force at this instant are left out (SVC-224). The default
    /// (0) hides every such record.
    pub now: Millis,
}

/// One page, newest first, and the count of every match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
    pub total: i64,
    pub has_next: bool,
}

fn filtered(select: &str, account_id: i64, f: &AuditFilter, with_cursor: bool) -> Sql {
    let mut sql = Sql::new(select);
    sql.push(" WHERE account_id = ")
        .bind(account_id)
        .push(" AND created_at >= ")
        .bind(f.start)
        .push(" AND created_at <= ")
        .bind(f.end);
    if !f.operations.is_empty() {
        sql.and_in("operation", &f.operations);
    }
    if let Some(m) = f.member_id {
        sql.push(" AND member_id = ").bind(m);
    }
    if let Some(r) = &f.request_id {
        sql.push(" AND request_id = ").bind(r.as_str());
    }
    if let Some(d) = f.is_dangerous {
        sql.push(" AND is_dangerous = ").bind(i64::from(d));
    }
    if let Some(w) = f.is_write {
        sql.push(" AND is_write = ").bind(i64::from(w));
    }
    // SVC-224: hidden while the request's non-disclosure order is in force: it has no end
    // date or one after `now`, and has not been recorded as lapsed by `now`
    // (`klaxon_saas::lawful::NonDisclosure::in_force`).
    sql.push(
        " AND (lawful_request_id = 0 OR NOT EXISTS (SELECT 1 FROM saas_lawful_requests l \
         WHERE l.request_id = audit_log.lawful_request_id AND l.nondisclosure = 1 \
         AND (l.nondisclosure_lapsed_at = 0 OR l.nondisclosure_lapsed_at > ",
    )
    .bind(f.now)
    .push(") AND (l.nondisclosure_until = 0 OR l.nondisclosure_until > ")
    .bind(f.now)
    .push(")))");
    if with_cursor && let Some((at, seq)) = f.before {
        sql.push(" AND (created_at < ")
            .bind(at)
            .push(" OR (created_at = ")
            .bind(at)
            .push(" AND seq < ")
            .bind(seq)
            .push("))");
    }
    sql
}

/// Appends one record on `conn`, inside the caller's transaction: a change that audits itself
/// (the incident retention sweep) commits its record with its effects.
pub(crate) async fn insert(conn: &mut AnyConnection, r: &NewAuditRecord) -> Result<()> {
    let mut sql = Sql::new(
        "INSERT INTO audit_log (account_id, request_id, created_at, member_id, member_name, \
         app_key_id, source, operation, resource_type, resource_id, ip, is_write, \
         is_dangerous, body, result) VALUES (",
    );
    sql.bind(r.account_id)
        .push(", ")
        .bind(r.request_id.as_str())
        .push(", ")
        .bind(r.created_at)
        .push(", ")
        .bind(r.member_id)
        .push(", COALESCE((SELECT member_name FROM members WHERE account_id = ")
        .bind(r.account_id)
        .push(" AND member_id = ")
        .bind(r.member_id)
        .push("), ''), ")
        .bind(r.app_key_id)
        .push(", ")
        .bind(r.source.as_str())
        .push(", ")
        .bind(r.operation.as_str())
        .push(", ")
        .bind(r.resource_type.as_str())
        .push(", ")
        .bind(r.resource_id.as_str())
        .push(", ")
        .bind(r.ip.as_str())
        .push(", ")
        .bind(i64::from(r.is_write))
        .push(", ")
        .bind(i64::from(r.is_dangerous))
        .push(", ")
        .bind(r.body.as_str())
        .push(", ")
        .bind(r.result.as_str())
        .push(")");
    sql.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

impl Store {
    /// Appends one record and drops the account's records older than `keep_after`
    /// (RSP-603): expiry rides on writes, so no extra worker is needed and an idle account
    /// holds nothing it should not. Staff-access records are immutable (SVC-222) and stay
    /// until the tenant is purged.
    pub async fn append_audit(&self, r: &NewAuditRecord, keep_after: Millis) -> Result<()> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("DELETE FROM audit_log WHERE account_id = ");
        sql.bind(r.account_id)
            .push(" AND created_at < ")
            .bind(keep_after)
            .push(" AND source <> 'staff'");
        sql.query_on(&tx).execute(&mut *tx).await?;
        insert(&mut tx, r).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A page of an account's records, newest first (RSP-602).
    pub async fn search_audit(&self, account_id: i64, f: &AuditFilter) -> Result<AuditPage> {
        let limit = f.limit.max(1);
        let mut sql = filtered(
            "SELECT seq, account_id, request_id, created_at, member_id, member_name, app_key_id, \
             source, operation, resource_type, resource_id, ip, is_write, is_dangerous, body, \
             result FROM audit_log",
            account_id,
            f,
            true,
        );
        sql.push(" ORDER BY created_at DESC, seq DESC LIMIT ")
            .bind(limit + 1);
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        let has_next = rows.len() as i64 > limit;
        let records = rows
            .iter()
            .take(limit as usize)
            .map(|r| {
                Ok(AuditRecord {
                    seq: get_i64(r, "seq")?,
                    account_id: get_i64(r, "account_id")?,
                    request_id: get_str(r, "request_id")?,
                    created_at: get_i64(r, "created_at")?,
                    member_id: get_i64(r, "member_id")?,
                    member_name: get_str(r, "member_name")?,
                    app_key_id: get_i64(r, "app_key_id")?,
                    source: get_str(r, "source")?,
                    operation: get_str(r, "operation")?,
                    resource_type: get_str(r, "resource_type")?,
                    resource_id: get_str(r, "resource_id")?,
                    ip: get_str(r, "ip")?,
                    is_write: get_i64(r, "is_write")? != 0,
                    is_dangerous: get_i64(r, "is_dangerous")? != 0,
                    body: get_str(r, "body")?,
                    result: get_str(r, "result")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let count = filtered("SELECT COUNT(*) AS n FROM audit_log", account_id, f, false);
        let row = count.query().fetch_one(&self.inner.read).await?;
        Ok(AuditPage {
            records,
            total: get_i64(&row, "n")?,
            has_next,
        })
    }
}
