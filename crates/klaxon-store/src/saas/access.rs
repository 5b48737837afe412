//! Operator access (service-agreement.md §15, migration 0052): staff identities, the
//! tenants' access grants, the staff-access records of the tenant's audit log (SVC-222) and
//! the lawful-request register (SVC-224). The rules are `klaxon_saas::grant` and
//! `klaxon_saas::lawful`; this module stores and loads. Time is passed in.
//!
//! Every staff-access record is written twice in one transaction: to the tenant's
//! `audit_log` (what its admins see and export) and to `saas_audit` (the operator record
//! kept `evidence_retention_years` after a purge, SVC-226).

use jiff::Timestamp;
use klaxon_core::model::Millis;
use klaxon_saas::grant::{Grant, GrantEvent, GrantTerms, Grantee, Scope, StaffRole, notice_text};
use klaxon_saas::lawful::{NonDisclosure, notice_text as lawful_notice_text};
use klaxon_saas::notice::Category;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::notice_outbox::enqueue;
use crate::db::Sql;
use crate::rows::{get_i64, get_str};
use crate::signin::{hash_secret, random_hex};
use crate::{Result, Store, StoreError};

/// A staff member of the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffRecord {
    pub staff_id: i64,
    pub name: String,
    pub role: StaffRole,
    pub created_at: Millis,
    pub created_by: String,
    /// 0 while the identity is in use.
    pub revoked_at: Millis,
}

/// A stored grant with who made and revoked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    pub grant: Grant,
    pub created_at: Millis,
    /// The member who created it.
    pub created_by: i64,
    pub revoked_by: i64,
}

/// One staff read or write under a grant or a lawful request (SVC-222).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffAccess {
    pub account_id: i64,
    pub at: Millis,
    pub staff_id: i64,
    /// 0 for a disclosure under a lawful request.
    pub grant_id: i64,
    /// 0 unless the access is a disclosure under a lawful request.
    pub lawful_request_id: i64,
    /// E.g. `channel:read:list`.
    pub operation: String,
    pub object_type: String,
    /// Object ids, comma-separated (a list's ids).
    pub object_ids: String,
    pub request_id: String,
    pub ip: String,
    pub is_write: bool,
}

/// A lawful request as staff `legal` record it (SVC-224).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLawfulRequest {
    pub account_id: i64,
    pub authority: String,
    pub legal_basis: String,
    pub reference: String,
    /// YYYY-MM-DD.
    pub received_on: String,
    pub scope_requested: String,
    pub nondisclosure: bool,
    /// 0: no end date.
    pub nondisclosure_until: Millis,
    pub notice_decision: String,
    pub notified_on: String,
    pub recorded_by: i64,
}

/// A register entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LawfulRequest {
    pub request_id: i64,
    pub created_at: Millis,
    pub request: NewLawfulRequest,
    pub nondisclosure_lapsed_at: Millis,
    pub approvers: String,
    pub scope_disclosed: String,
    pub disclosed_at: Millis,
    pub disclosure_method: String,
    pub package_sha256: String,
}

/// What a disclosure records (SVC-224).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disclosure {
    pub approvers: String,
    pub scope_disclosed: String,
    pub disclosed_at: Millis,
    pub method: String,
    pub package_sha256: String,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn ts(ms: Millis) -> Result<Timestamp> {
    Timestamp::from_millisecond(ms).map_err(|e| corrupt("timestamp", e))
}

fn staff_row(r: &AnyRow) -> Result<StaffRecord> {
    Ok(StaffRecord {
        staff_id: get_i64(r, "staff_id")?,
        name: get_str(r, "name")?,
        role: StaffRole::parse(&get_str(r, "role")?).map_err(|e| corrupt("role", e))?,
        created_at: get_i64(r, "created_at")?,
        created_by: get_str(r, "created_by")?,
        revoked_at: get_i64(r, "revoked_at")?,
    })
}

const STAFF_COLUMNS: &str = "staff_id, name, role, created_at, created_by, revoked_at";
const GRANT_COLUMNS: &str = "grant_id, account_id, grantee_staff_id, scope, channel_ids, purpose, ticket_id, starts_at, ends_at, created_at, created_by, revoked_at, revoked_by";
const LAWFUL_COLUMNS: &str = "request_id, account_id, authority, legal_basis, reference, received_on, scope_requested, nondisclosure, nondisclosure_until, nondisclosure_lapsed_at, notice_decision, notified_on, recorded_by, created_at, approvers, scope_disclosed, disclosed_at, disclosure_method, package_sha256";

/// SVC-221: the owner and admins are told when a grant is made, revoked or expires; the
/// notice is queued in the transaction of the change (`notice_outbox`).
async fn queue_grant_notice(
    conn: &mut AnyConnection,
    event: GrantEvent,
    g: &Grant,
    at: Millis,
) -> Result<()> {
    let text = notice_text(event, g.grant_id, &g.terms, ts(at)?);
    enqueue(
        conn,
        g.account_id,
        Category::AccessGrant,
        event.template_id(),
        text,
        &format!("access_grant:{}", g.grant_id),
        at,
    )
    .await
}

fn grant_row(r: &AnyRow) -> Result<GrantRecord> {
    let grantee = match get_i64(r, "grantee_staff_id")? {
        0 => Grantee::SupportTeam,
        id => Grantee::Staff(id),
    };
    let channel_ids: Vec<i64> =
        serde_json::from_str(&get_str(r, "channel_ids")?).map_err(|e| corrupt("channel_ids", e))?;
    let revoked_at = get_i64(r, "revoked_at")?;
    Ok(GrantRecord {
        grant: Grant {
            grant_id: get_i64(r, "grant_id")?,
            account_id: get_i64(r, "account_id")?,
            terms: GrantTerms {
                grantee,
                scope: Scope::parse(&get_str(r, "scope")?).map_err(|e| corrupt("scope", e))?,
                channel_ids,
                purpose: get_str(r, "purpose")?,
                ticket_id: get_str(r, "ticket_id")?,
                starts_at: ts(get_i64(r, "starts_at")?)?,
                ends_at: ts(get_i64(r, "ends_at")?)?,
            },
            revoked_at: if revoked_at == 0 {
                None
            } else {
                Some(ts(revoked_at)?)
            },
        },
        created_at: get_i64(r, "created_at")?,
        created_by: get_i64(r, "created_by")?,
        revoked_by: get_i64(r, "revoked_by")?,
    })
}

fn lawful_row(r: &AnyRow) -> Result<LawfulRequest> {
    Ok(LawfulRequest {
        request_id: get_i64(r, "request_id")?,
        created_at: get_i64(r, "created_at")?,
        request: NewLawfulRequest {
            account_id: get_i64(r, "account_id")?,
            authority: get_str(r, "authority")?,
            legal_basis: get_str(r, "legal_basis")?,
            reference: get_str(r, "reference")?,
            received_on: get_str(r, "received_on")?,
            scope_requested: get_str(r, "scope_requested")?,
            nondisclosure: get_i64(r, "nondisclosure")? != 0,
            nondisclosure_until: get_i64(r, "nondisclosure_until")?,
            notice_decision: get_str(r, "notice_decision")?,
            notified_on: get_str(r, "notified_on")?,
            recorded_by: get_i64(r, "recorded_by")?,
        },
        nondisclosure_lapsed_at: get_i64(r, "nondisclosure_lapsed_at")?,
        approvers: get_str(r, "approvers")?,
        scope_disclosed: get_str(r, "scope_disclosed")?,
        disclosed_at: get_i64(r, "disclosed_at")?,
        disclosure_method: get_str(r, "disclosure_method")?,
        package_sha256: get_str(r, "package_sha256")?,
    })
}

/// One row of the tenant's audit log and its operator copy in `saas_audit`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn audit_pair(
    conn: &mut AnyConnection,
    account_id: i64,
    at: Millis,
    request_id: &str,
    member_name: &str,
    source: &str,
    operation: &str,
    resource_type: &str,
    resource_id: &str,
    ip: &str,
    is_write: bool,
    is_dangerous: bool,
    body: &str,
    lawful_request_id: i64,
) -> Result<()> {
    let mut sql = Sql::new(
        "INSERT INTO audit_log (account_id, request_id, created_at, member_id, member_name, \
         app_key_id, source, operation, resource_type, resource_id, ip, is_write, \
         is_dangerous, body, result, lawful_request_id) VALUES (",
    );
    sql.bind(account_id)
        .push(", ")
        .bind(request_id)
        .push(", ")
        .bind(at)
        .push(", 0, ")
        .bind(member_name)
        .push(", 0, ")
        .bind(source)
        .push(", ")
        .bind(operation)
        .push(", ")
        .bind(resource_type)
        .push(", ")
        .bind(resource_id)
        .push(", ")
        .bind(ip)
        .push(", ")
        .bind(i64::from(is_write))
        .push(", ")
        .bind(i64::from(is_dangerous))
        .push(", ")
        .bind(body)
        .push(", 'ok', ")
        .bind(lawful_request_id)
        .push(")");
    sql.query_on(conn).execute(&mut *conn).await?;
    let mut op =
        Sql::new("INSERT INTO saas_audit (account_id, at, actor, action, detail) VALUES (");
    op.bind(account_id)
        .push(", ")
        .bind(at)
        .push(", ")
        .bind(member_name)
        .push(", ")
        .bind(operation)
        .push(", ")
        .bind(format!("{resource_type} {resource_id} {body}"))
        .push(")");
    op.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

/// How a staff member appears in the tenant's audit log: by id (SVC-222), never by name.
pub fn staff_actor(staff_id: i64) -> String {
    format!("staff:{staff_id}")
}

impl Store {
    /// Adds a staff identity and returns its id and token. The token is random, returned
    /// this once and stored only as its hash, like an APP key.
    pub async fn staff_add(
        &self,
        name: &str,
        role: StaffRole,
        created_by: &str,
        now: Millis,
    ) -> Result<(i64, String)> {
        let token = format!("kst_{}", random_hex(20));
        let mut sql = Sql::new(
            "INSERT INTO saas_staff (name, role, token_hash, created_at, created_by) VALUES (",
        );
        sql.bind(name)
            .push(", ")
            .bind(role.as_str())
            .push(", ")
            .bind(hash_secret(&token))
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(created_by)
            .push(") RETURNING staff_id");
        let row = sql.query().fetch_one(&self.inner.write).await?;
        Ok((get_i64(&row, "staff_id")?, token))
    }

    pub async fn staff_list(&self) -> Result<Vec<StaffRecord>> {
        let rows = Sql::new(&format!(
            "SELECT {STAFF_COLUMNS} FROM saas_staff ORDER BY staff_id"
        ))
        .query()
        .fetch_all(&self.inner.read)
        .await?;
        rows.iter().map(staff_row).collect()
    }

    pub async fn staff(&self, staff_id: i64) -> Result<Option<StaffRecord>> {
        let mut sql = Sql::new(&format!(
            "SELECT {STAFF_COLUMNS} FROM saas_staff WHERE staff_id = "
        ));
        sql.bind(staff_id);
        let row = sql.query().fetch_optional(&self.inner.read).await?;
        row.as_ref().map(staff_row).transpose()
    }

    /// The staff member a token belongs to, unless revoked.
    pub async fn staff_by_token(&self, token: &str) -> Result<Option<StaffRecord>> {
        let mut sql = Sql::new(&format!(
            "SELECT {STAFF_COLUMNS} FROM saas_staff WHERE revoked_at = 0 AND token_hash = "
        ));
        sql.bind(hash_secret(token));
        let row = sql.query().fetch_optional(&self.inner.read).await?;
        row.as_ref().map(staff_row).transpose()
    }

    /// Revokes a staff identity; false when unknown or already revoked.
    pub async fn staff_revoke(&self, staff_id: i64, now: Millis) -> Result<bool> {
        let mut sql = Sql::new("UPDATE saas_staff SET revoked_at = ");
        sql.bind(now)
            .push(" WHERE revoked_at = 0 AND staff_id = ")
            .bind(staff_id);
        Ok(sql
            .query()
            .execute(&self.inner.write)
            .await?
            .rows_affected()
            > 0)
    }

    /// Stores a grant the tenant's owner or an Admin made (SVC-221).
    pub async fn grant_create(
        &self,
        account_id: i64,
        terms: &GrantTerms,
        member_id: i64,
        now: Millis,
    ) -> Result<GrantRecord> {
        let channels =
            serde_json::to_string(&terms.channel_ids).map_err(|e| corrupt("channel_ids", e))?;
        let mut sql = Sql::new(
            "INSERT INTO saas_access_grants (account_id, grantee_staff_id, scope, channel_ids, \
             purpose, ticket_id, starts_at, ends_at, created_at, created_by) VALUES (",
        );
        sql.bind(account_id)
            .push(", ")
            .bind(match terms.grantee {
                Grantee::Staff(id) => id,
                Grantee::SupportTeam => 0,
            })
            .push(", ")
            .bind(terms.scope.as_text())
            .push(", ")
            .bind(channels)
            .push(", ")
            .bind(terms.purpose.as_str())
            .push(", ")
            .bind(terms.ticket_id.as_str())
            .push(", ")
            .bind(terms.starts_at.as_millisecond())
            .push(", ")
            .bind(terms.ends_at.as_millisecond())
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(member_id)
            .push(&format!(") RETURNING {GRANT_COLUMNS}"));
        let mut tx = self.inner.write.begin().await?;
        let row = sql.query_on(&tx).fetch_one(&mut *tx).await?;
        let g = grant_row(&row)?;
        queue_grant_notice(&mut tx, GrantEvent::Created, &g.grant, now).await?;
        tx.commit().await?;
        Ok(g)
    }

    /// The account's grants, newest first.
    pub async fn grants(&self, account_id: i64) -> Result<Vec<GrantRecord>> {
        let mut sql = Sql::new(&format!(
            "SELECT {GRANT_COLUMNS} FROM saas_access_grants WHERE account_id = "
        ));
        sql.bind(account_id).push(" ORDER BY grant_id DESC");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        rows.iter().map(grant_row).collect()
    }

    /// One grant of the account; `None` when the account has no such grant.
    pub async fn grant(&self, account_id: i64, grant_id: i64) -> Result<Option<GrantRecord>> {
        let mut sql = Sql::new(&format!(
            "SELECT {GRANT_COLUMNS} FROM saas_access_grants WHERE account_id = "
        ));
        sql.bind(account_id).push(" AND grant_id = ").bind(grant_id);
        let row = sql.query().fetch_optional(&self.inner.write).await?;
        row.as_ref().map(grant_row).transpose()
    }

    /// Revokes a grant of the account at `now` (SVC-221); a revoked grant stays revoked as
    /// it was. `None` when the account has no such grant.
    pub async fn grant_revoke(
        &self,
        account_id: i64,
        grant_id: i64,
        member_id: i64,
        now: Millis,
    ) -> Result<Option<GrantRecord>> {
        let mut sql = Sql::new("UPDATE saas_access_grants SET revoked_at = ");
        sql.bind(now)
            .push(", revoked_by = ")
            .bind(member_id)
            .push(" WHERE revoked_at = 0 AND account_id = ")
            .bind(account_id)
            .push(" AND grant_id = ")
            .bind(grant_id);
        let mut tx = self.inner.write.begin().await?;
        let revoked = sql.query_on(&tx).execute(&mut *tx).await?.rows_affected() > 0;
        if revoked {
            let mut get = Sql::new(&format!(
                "SELECT {GRANT_COLUMNS} FROM saas_access_grants WHERE grant_id = "
            ));
            get.bind(grant_id);
            let row = get.query_on(&tx).fetch_one(&mut *tx).await?;
            queue_grant_notice(&mut tx, GrantEvent::Revoked, &grant_row(&row)?.grant, now).await?;
        }
        tx.commit().await?;
        self.grant(account_id, grant_id).await
    }

    /// Writes one audit record per grant that expired unrevoked by `now` and has not been
    /// recorded yet (SVC-221 "expires automatically"), with the owner's notice queued in
    /// the same transaction. The mark and the record commit together, so several nodes record each
    /// expiry once. Returns (account, grant) of each expiry recorded now.
    pub async fn record_grant_expiries(&self, now: Millis) -> Result<Vec<(i64, i64)>> {
        let mut sel = Sql::new(
            "SELECT grant_id, account_id, ends_at FROM saas_access_grants \
             WHERE expiry_recorded = 0 AND revoked_at = 0 AND ends_at <= ",
        );
        sel.bind(now).push(" ORDER BY grant_id LIMIT 100");
        let due = sel.query().fetch_all(&self.inner.read).await?;
        let mut done = Vec::new();
        for r in &due {
            let (grant_id, account_id, ends_at) = (
                get_i64(r, "grant_id")?,
                get_i64(r, "account_id")?,
                get_i64(r, "ends_at")?,
            );
            let mut tx = self.inner.write.begin().await?;
            let mut mark = Sql::new(
                "UPDATE saas_access_grants SET expiry_recorded = 1 WHERE expiry_recorded = 0 AND grant_id = ",
            );
            mark.bind(grant_id);
            if mark.query_on(&tx).execute(&mut *tx).await?.rows_affected() == 0 {
                continue;
            }
            let body = serde_json::json!({"grant_id": grant_id}).to_string();
            audit_pair(
                &mut tx,
                account_id,
                ends_at,
                &format!("grant-expiry-{grant_id}"),
                "system",
                "system",
                "account_access_grant:write:expire",
                "account_access_grant",
                &grant_id.to_string(),
                "",
                true,
                false,
                &body,
                0,
            )
            .await?;
            let mut get = Sql::new(&format!(
                "SELECT {GRANT_COLUMNS} FROM saas_access_grants WHERE grant_id = "
            ));
            get.bind(grant_id);
            let row = get.query_on(&tx).fetch_one(&mut *tx).await?;
            queue_grant_notice(
                &mut tx,
                GrantEvent::Expired,
                &grant_row(&row)?.grant,
                ends_at,
            )
            .await?;
            tx.commit().await?;
            done.push((account_id, grant_id));
        }
        Ok(done)
    }

    /// Appends a staff-access record to the tenant's audit log and to the operator records
    /// (SVC-222), in one transaction.
    pub async fn record_staff_access(&self, a: &StaffAccess) -> Result<()> {
        let body = serde_json::json!({
            "staff_id": a.staff_id,
            "grant_id": a.grant_id,
            "lawful_request_id": a.lawful_request_id,
            "action": if a.is_write { "write" } else { "read" },
        })
        .to_string();
        let mut tx = self.inner.write.begin().await?;
        audit_pair(
            &mut tx,
            a.account_id,
            a.at,
            &a.request_id,
            &staff_actor(a.staff_id),
            "staff",
            &a.operation,
            &a.object_type,
            &a.object_ids,
            &a.ip,
            a.is_write,
            false,
            &body,
            a.lawful_request_id,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Appends an operator call that read no tenant data (SVC-223 metadata, refusals) to
    /// `saas_audit` only.
    pub async fn record_operator_call(
        &self,
        account_id: i64,
        at: Millis,
        staff_id: i64,
        action: &str,
        detail: &str,
    ) -> Result<()> {
        let mut sql =
            Sql::new("INSERT INTO saas_audit (account_id, at, actor, action, detail) VALUES (");
        sql.bind(account_id)
            .push(", ")
            .bind(at)
            .push(", ")
            .bind(staff_actor(staff_id))
            .push(", ")
            .bind(action)
            .push(", ")
            .bind(detail)
            .push(")");
        sql.query().execute(&self.inner.write).await?;
        Ok(())
    }

    /// Counters of SVC-223 (content-free): members, channels, incidents.
    pub async fn usage_counters(&self, account_id: i64) -> Result<Vec<(&'static str, i64)>> {
        let mut out = Vec::new();
        for (name, table) in [
            ("members", "members"),
            ("channels", "channels"),
            ("incidents", "incidents"),
            ("alerts", "alerts"),
        ] {
            let mut sql = Sql::new(&format!(
                "SELECT COUNT(*) AS n FROM {table} WHERE account_id = "
            ));
            sql.bind(account_id);
            let row = sql.query().fetch_one(&self.inner.read).await?;
            out.push((name, get_i64(&row, "n")?));
        }
        Ok(out)
    }

    /// Records a lawful request (SVC-224).
    pub async fn lawful_record(&self, r: &NewLawfulRequest, now: Millis) -> Result<i64> {
        let mut sql = Sql::new(
            "INSERT INTO saas_lawful_requests (account_id, authority, legal_basis, reference, \
             received_on, scope_requested, nondisclosure, nondisclosure_until, notice_decision, \
             notified_on, recorded_by, created_at) VALUES (",
        );
        sql.bind(r.account_id)
            .push(", ")
            .bind(r.authority.as_str())
            .push(", ")
            .bind(r.legal_basis.as_str())
            .push(", ")
            .bind(r.reference.as_str())
            .push(", ")
            .bind(r.received_on.as_str())
            .push(", ")
            .bind(r.scope_requested.as_str())
            .push(", ")
            .bind(i64::from(r.nondisclosure))
            .push(", ")
            .bind(r.nondisclosure_until)
            .push(", ")
            .bind(r.notice_decision.as_str())
            .push(", ")
            .bind(r.notified_on.as_str())
            .push(", ")
            .bind(r.recorded_by)
            .push(", ")
            .bind(now)
            .push(") RETURNING request_id");
        let mut tx = self.inner.write.begin().await?;
        let row = sql.query_on(&tx).fetch_one(&mut *tx).await?;
        let request_id = get_i64(&row, "request_id")?;
        // SVC-225: decided `before` and not told yet: the owner's notice goes with the record.
        // Never while a non-disclosure order binds the operator.
        if r.notice_decision == "before" && r.notified_on.is_empty() && !r.nondisclosure {
            let text = lawful_notice_text(
                request_id,
                &r.authority,
                &r.legal_basis,
                &r.reference,
                &r.scope_requested,
                None,
            );
            enqueue(
                &mut tx,
                r.account_id,
                Category::LawfulDisclosure,
                "lawful_request_before",
                text,
                &format!("lawful_request:{request_id}"),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(request_id)
    }

    /// The register, oldest first; one tenant's entries when `account_id` is given.
    pub async fn lawful_list(&self, account_id: Option<i64>) -> Result<Vec<LawfulRequest>> {
        let mut sql = Sql::new(&format!(
            "SELECT {LAWFUL_COLUMNS} FROM saas_lawful_requests"
        ));
        if let Some(a) = account_id {
            sql.push(" WHERE account_id = ").bind(a);
        }
        sql.push(" ORDER BY request_id");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        rows.iter().map(lawful_row).collect()
    }

    pub async fn lawful_request(&self, request_id: i64) -> Result<Option<LawfulRequest>> {
        let mut sql = Sql::new(&format!(
            "SELECT {LAWFUL_COLUMNS} FROM saas_lawful_requests WHERE request_id = "
        ));
        sql.bind(request_id);
        let row = sql.query().fetch_optional(&self.inner.write).await?;
        row.as_ref().map(lawful_row).transpose()
    }

    /// Records a disclosure and its staff-access records (SVC-224: logged as in SVC-222,
    /// tied to the request so a non-disclosure order hides them), in one transaction.
    /// False when the request was already disclosed: a disclosure is recorded once.
    pub async fn lawful_disclose(
        &self,
        request_id: i64,
        d: &Disclosure,
        accesses: &[StaffAccess],
    ) -> Result<bool> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("UPDATE saas_lawful_requests SET approvers = ");
        sql.bind(d.approvers.as_str())
            .push(", scope_disclosed = ")
            .bind(d.scope_disclosed.as_str())
            .push(", disclosed_at = ")
            .bind(d.disclosed_at)
            .push(", disclosure_method = ")
            .bind(d.method.as_str())
            .push(", package_sha256 = ")
            .bind(d.package_sha256.as_str())
            .push(" WHERE disclosed_at = 0 AND request_id = ")
            .bind(request_id);
        if sql.query_on(&tx).execute(&mut *tx).await?.rows_affected() == 0 {
            return Ok(false);
        }
        // SVC-225: decided `after` and not told yet: the owner's notice goes with the record
        // of the disclosure.
        let mut get = Sql::new(&format!(
            "SELECT {LAWFUL_COLUMNS} FROM saas_lawful_requests WHERE request_id = "
        ));
        get.bind(request_id);
        let q = lawful_row(&get.query_on(&tx).fetch_one(&mut *tx).await?)?;
        // Never while a non-disclosure order is in force at the disclosure.
        let order = NonDisclosure {
            until: (q.request.nondisclosure_until != 0)
                .then(|| ts(q.request.nondisclosure_until))
                .transpose()?,
            lapsed_at: (q.nondisclosure_lapsed_at != 0)
                .then(|| ts(q.nondisclosure_lapsed_at))
                .transpose()?,
        };
        let bound = q.request.nondisclosure && order.in_force(ts(d.disclosed_at)?);
        if q.request.notice_decision == "after" && q.request.notified_on.is_empty() && !bound {
            let text = lawful_notice_text(
                request_id,
                &q.request.authority,
                &q.request.legal_basis,
                &q.request.reference,
                &q.request.scope_requested,
                Some((d.scope_disclosed.as_str(), ts(d.disclosed_at)?)),
            );
            enqueue(
                &mut tx,
                q.request.account_id,
                Category::LawfulDisclosure,
                "lawful_request_after",
                text,
                &format!("lawful_request:{request_id}"),
                d.disclosed_at,
            )
            .await?;
        }
        for a in accesses {
            let body = serde_json::json!({
                "staff_id": a.staff_id,
                "lawful_request_id": request_id,
                "action": "read",
            })
            .to_string();
            audit_pair(
                &mut tx,
                a.account_id,
                a.at,
                &a.request_id,
                &staff_actor(a.staff_id),
                "staff",
                &a.operation,
                &a.object_type,
                &a.object_ids,
                "",
                false,
                false,
                &body,
                request_id,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records that a non-disclosure order lapsed at `at` (SVC-224): the request's
    /// staff-access records show in the tenant's audit log from then on. False when the
    /// request has no order or it already lapsed.
    pub async fn lawful_lapse(&self, request_id: i64, at: Millis) -> Result<bool> {
        let mut sql = Sql::new("UPDATE saas_lawful_requests SET nondisclosure_lapsed_at = ");
        sql.bind(at)
            .push(" WHERE nondisclosure = 1 AND nondisclosure_lapsed_at = 0 AND request_id = ")
            .bind(request_id);
        Ok(sql
            .query()
            .execute(&self.inner.write)
            .await?
            .rows_affected()
            > 0)
    }
}
