//! Legal holds (SVC-192) and data-security incident records (SVC-194), migration 0076. The
//! rules are `klaxon_saas::governance`; this module stores, loads and queues the notices in
//! the transaction of the change. Both are operator records (SVC-226). Time is passed in.

use jiff::Timestamp;
use jiff::civil::Date;
use klaxon_core::model::Millis;
use klaxon_saas::SaasError;
use klaxon_saas::governance::{
    CLOSURE_CODE_HOURS, CLOSURE_CODE_TRIES, CodeCheck, HeldData, Hold, HoldScope, HoldTerms,
    IncidentReport, closure_code, closure_notice, deletion_allowed, hold_notice, incident_notice,
};
use klaxon_saas::notice::Category;
use klaxon_saas::state::{Trigger, transition};
use klaxon_saas::tenant::{Change, Standing};
use klaxon_saas::termination::{Buffer, BufferStart};
use rand::Rng;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::access::staff_actor;
use super::notice_outbox::enqueue;
use super::{SaasFailure, SaasSettings, lock_tenant, save_standing};
use crate::db::Sql;
use crate::rows::{get_i64, get_str};
use crate::signin::hash_secret;
use crate::{Result, Store, StoreError};

/// A stored hold with who placed and lifted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalHoldRecord {
    pub hold: Hold,
    pub placed_by: i64,
    pub created_at: Millis,
    pub lifted_by: i64,
    pub lift_reason: String,
}

/// A stored data-security incident with the tenants it affected and the ids of the notices
/// given about it so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityIncidentRecord {
    pub incident_id: i64,
    pub report: IncidentReport,
    pub recorded_by: i64,
    pub created_at: Millis,
    /// Notice records (SVC-312) of the incident, every tenant and channel.
    pub notice_ids: Vec<i64>,
    /// Notices still waiting in the outbox.
    pub notices_pending: i64,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn ts(ms: Millis) -> Result<Timestamp> {
    Timestamp::from_millisecond(ms).map_err(|e| corrupt("timestamp", e))
}

const HOLD_COLUMNS: &str = "hold_id, account_id, authority_reference, scope, starts_at, review_on, notice_forbidden, placed_by, created_at, lifted_at, lifted_by, lift_reason";

fn hold_row(r: &AnyRow) -> Result<LegalHoldRecord> {
    let lifted_at = get_i64(r, "lifted_at")?;
    let review: Date = get_str(r, "review_on")?
        .parse()
        .map_err(|e| corrupt("saas_legal_holds.review_on", e))?;
    Ok(LegalHoldRecord {
        hold: Hold {
            hold_id: get_i64(r, "hold_id")?,
            account_id: get_i64(r, "account_id")?,
            terms: HoldTerms {
                authority_reference: get_str(r, "authority_reference")?,
                scope: HoldScope::parse(&get_str(r, "scope")?)
                    .map_err(|e| corrupt("saas_legal_holds.scope", e))?,
                starts_at: ts(get_i64(r, "starts_at")?)?,
                review_on: review,
                notice_forbidden: get_i64(r, "notice_forbidden")? != 0,
            },
            lifted_at: (lifted_at != 0).then(|| ts(lifted_at)).transpose()?,
        },
        placed_by: get_i64(r, "placed_by")?,
        created_at: get_i64(r, "created_at")?,
        lifted_by: get_i64(r, "lifted_by")?,
        lift_reason: get_str(r, "lift_reason")?,
    })
}

async fn audit(
    conn: &mut AnyConnection,
    account_id: i64,
    at: Millis,
    actor: &str,
    action: &str,
    detail: &str,
) -> Result<()> {
    let mut sql =
        Sql::new("INSERT INTO saas_audit (account_id, at, actor, action, detail) VALUES (");
    sql.bind(account_id)
        .push(", ")
        .bind(at)
        .push(", ")
        .bind(actor)
        .push(", ")
        .bind(action)
        .push(", ")
        .bind(detail)
        .push(")");
    sql.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

impl Store {
    /// Places a hold (SVC-192): stored, audited, and the owner's notice queued unless the
    /// law forbids telling the tenant (SVC-225), in one transaction. Returns the hold id.
    pub async fn legal_hold_place(
        &self,
        account_id: i64,
        terms: &HoldTerms,
        staff_id: i64,
        now: Millis,
    ) -> Result<i64> {
        let mut sql = Sql::new(
            "INSERT INTO saas_legal_holds (account_id, authority_reference, scope, starts_at, \
             review_on, notice_forbidden, placed_by, created_at) VALUES (",
        );
        sql.bind(account_id)
            .push(", ")
            .bind(terms.authority_reference.as_str())
            .push(", ")
            .bind(terms.scope.as_text())
            .push(", ")
            .bind(terms.starts_at.as_millisecond())
            .push(", ")
            .bind(terms.review_on.to_string())
            .push(", ")
            .bind(i64::from(terms.notice_forbidden))
            .push(", ")
            .bind(staff_id)
            .push(", ")
            .bind(now)
            .push(") RETURNING hold_id");
        let mut tx = self.inner.write.begin().await?;
        let hold_id = get_i64(&sql.query_on(&tx).fetch_one(&mut *tx).await?, "hold_id")?;
        audit(
            &mut tx,
            account_id,
            now,
            &staff_actor(staff_id),
            "legal_hold_placed",
            &format!(
                "hold {hold_id}: reference {:?}, scope {}, review {} (SVC-192)",
                terms.authority_reference,
                terms.scope.as_text(),
                terms.review_on
            ),
        )
        .await?;
        if let Some(text) = hold_notice(hold_id, terms, false) {
            enqueue(
                &mut tx,
                account_id,
                Category::LegalHold,
                "legal_hold_placed",
                text,
                &format!("legal_hold:{hold_id}:placed"),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(hold_id)
    }

    /// Lifts a hold in force (SVC-192); `None` when there is no such hold or it was already
    /// lifted. The tenant is told unless it never was (SVC-225).
    pub async fn legal_hold_lift(
        &self,
        hold_id: i64,
        staff_id: i64,
        reason: &str,
        now: Millis,
    ) -> Result<Option<LegalHoldRecord>> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("UPDATE saas_legal_holds SET lifted_at = ");
        sql.bind(now)
            .push(", lifted_by = ")
            .bind(staff_id)
            .push(", lift_reason = ")
            .bind(reason)
            .push(" WHERE lifted_at = 0 AND hold_id = ")
            .bind(hold_id)
            .push(&format!(" RETURNING {HOLD_COLUMNS}"));
        let Some(row) = sql.query_on(&tx).fetch_optional(&mut *tx).await? else {
            return Ok(None);
        };
        let rec = hold_row(&row)?;
        let account_id = rec.hold.account_id;
        audit(
            &mut tx,
            account_id,
            now,
            &staff_actor(staff_id),
            "legal_hold_lifted",
            &format!("hold {hold_id} lifted: {reason} (SVC-192)"),
        )
        .await?;
        if let Some(text) = hold_notice(hold_id, &rec.hold.terms, true) {
            enqueue(
                &mut tx,
                account_id,
                Category::LegalHold,
                "legal_hold_lifted",
                text,
                &format!("legal_hold:{hold_id}:lifted"),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Some(rec))
    }

    /// Every hold, oldest first; one tenant's when `account_id` is given.
    pub async fn legal_holds(&self, account_id: Option<i64>) -> Result<Vec<LegalHoldRecord>> {
        let mut sql = Sql::new(&format!("SELECT {HOLD_COLUMNS} FROM saas_legal_holds"));
        if let Some(a) = account_id {
            sql.push(" WHERE account_id = ").bind(a);
        }
        sql.push(" ORDER BY hold_id");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        rows.iter().map(hold_row).collect()
    }

    /// The tenant's holds that are not lifted (some may start later).
    pub async fn legal_holds_unlifted(&self, account_id: i64) -> Result<Vec<Hold>> {
        let mut sql = Sql::new(&format!(
            "SELECT {HOLD_COLUMNS} FROM saas_legal_holds WHERE lifted_at = 0 AND account_id = "
        ));
        sql.bind(account_id).push(" ORDER BY hold_id");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        rows.iter().map(|r| Ok(hold_row(r)?.hold)).collect()
    }

    /// Records a data-security incident (SVC-194) and queues each affected owner's critical
    /// notice in the same transaction, so no tenant is left untold. Every account must exist.
    pub async fn security_incident_record(
        &self,
        report: &IncidentReport,
        staff_id: i64,
        now: Millis,
    ) -> Result<i64> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new(
            "INSERT INTO saas_security_incidents (data_types, window_start, window_end, impact, \
             remediation, recorded_by, created_at) VALUES (",
        );
        sql.bind(report.data_types.join(","))
            .push(", ")
            .bind(report.window_start.as_millisecond())
            .push(", ")
            .bind(report.window_end.as_millisecond())
            .push(", ")
            .bind(report.impact.as_str())
            .push(", ")
            .bind(report.remediation.as_str())
            .push(", ")
            .bind(staff_id)
            .push(", ")
            .bind(now)
            .push(") RETURNING incident_id");
        let incident_id = get_i64(&sql.query_on(&tx).fetch_one(&mut *tx).await?, "incident_id")?;
        let text = incident_notice(incident_id, report);
        for &account_id in &report.accounts {
            let mut sql = Sql::new(
                "INSERT INTO saas_security_incident_tenants (incident_id, account_id) VALUES (",
            );
            sql.bind(incident_id).push(", ").bind(account_id).push(")");
            sql.query_on(&tx).execute(&mut *tx).await?;
            audit(
                &mut tx,
                account_id,
                now,
                &staff_actor(staff_id),
                "security_incident",
                &format!("incident {incident_id} recorded (SVC-194)"),
            )
            .await?;
            enqueue(
                &mut tx,
                account_id,
                Category::SecurityIncident,
                "security_incident",
                text.clone(),
                &format!("security_incident:{incident_id}"),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(incident_id)
    }

    /// The incident records, oldest first; those affecting one tenant when given.
    pub async fn security_incidents(
        &self,
        account_id: Option<i64>,
    ) -> Result<Vec<SecurityIncidentRecord>> {
        let mut sql = Sql::new(
            "SELECT incident_id, data_types, window_start, window_end, impact, remediation, \
             recorded_by, created_at FROM saas_security_incidents",
        );
        if let Some(a) = account_id {
            sql.push(
                " WHERE incident_id IN (SELECT incident_id FROM saas_security_incident_tenants \
                 WHERE account_id = ",
            )
            .bind(a)
            .push(")");
        }
        sql.push(" ORDER BY incident_id");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let incident_id = get_i64(r, "incident_id")?;
            let mut q = Sql::new(
                "SELECT account_id FROM saas_security_incident_tenants WHERE incident_id = ",
            );
            q.bind(incident_id).push(" ORDER BY account_id");
            let accounts = q
                .query()
                .fetch_all(&self.inner.read)
                .await?
                .iter()
                .map(|r| get_i64(r, "account_id"))
                .collect::<Result<Vec<_>>>()?;
            let related = format!("security_incident:{incident_id}");
            let mut q = Sql::new("SELECT notice_id FROM saas_notices WHERE related = ");
            q.bind(related.as_str()).push(" ORDER BY notice_id");
            let notice_ids = q
                .query()
                .fetch_all(&self.inner.read)
                .await?
                .iter()
                .map(|r| get_i64(r, "notice_id"))
                .collect::<Result<Vec<_>>>()?;
            let mut q = Sql::new("SELECT COUNT(*) AS n FROM saas_notice_outbox WHERE related = ");
            q.bind(related.as_str());
            let pending = get_i64(&q.query().fetch_one(&self.inner.read).await?, "n")?;
            out.push(SecurityIncidentRecord {
                incident_id,
                report: IncidentReport {
                    accounts,
                    data_types: get_str(r, "data_types")?
                        .split(',')
                        .map(str::to_string)
                        .collect(),
                    window_start: ts(get_i64(r, "window_start")?)?,
                    window_end: ts(get_i64(r, "window_end")?)?,
                    impact: get_str(r, "impact")?,
                    remediation: get_str(r, "remediation")?,
                },
                recorded_by: get_i64(r, "recorded_by")?,
                created_at: get_i64(r, "created_at")?,
                notice_ids,
                notices_pending: pending,
            });
        }
        Ok(out)
    }
}

/// A closure asked for by e-mail (SVC-010), as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosureRequest {
    pub request_id: i64,
    pub account_id: i64,
    pub ticket_id: i64,
    pub keep_buffer: bool,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub attempts: i64,
    pub confirmed_at: Millis,
}

async fn unlifted_holds(conn: &mut AnyConnection, account_id: i64) -> Result<Vec<Hold>> {
    let mut sql = Sql::new(&format!(
        "SELECT {HOLD_COLUMNS} FROM saas_legal_holds WHERE lifted_at = 0 AND account_id = "
    ));
    sql.bind(account_id).push(" ORDER BY hold_id");
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    rows.iter().map(|r| Ok(hold_row(r)?.hold)).collect()
}

/// SVC-186 (and SVC-010, which is a release): ends the service as `ended(released)` at
/// `now`, in the caller's transaction. The purge date is the end of the undo window, or of
/// the buffer with `keep_buffer`; a tenant already in a buffer keeps its date unless the
/// undo window brings it forward (SVC-187). Refused under a legal hold (SVC-192) and once
/// purging.
async fn release_in(
    conn: &mut AnyConnection,
    settings: &SaasSettings,
    account_id: i64,
    keep_buffer: bool,
    actor: &str,
    rule: &'static str,
    now: Millis,
) -> std::result::Result<Standing, SaasFailure> {
    let t = lock_tenant(conn, settings, account_id, now).await?;
    let at = Timestamp::from_millisecond(now).map_err(SaasError::from)?;
    deletion_allowed(&unlifted_holds(conn, account_id).await?, HeldData::All, at)?;
    let to = transition(t.standing.state, Trigger::Release)?;
    let kind = if keep_buffer {
        BufferStart::Normal
    } else {
        BufferStart::ReleaseDeleteAfterUndo
    };
    let buffer = match t.standing.purge_at {
        Some(purge_at) => Buffer {
            started_at: t.standing.since,
            purge_at,
        }
        .later_trigger(at, kind, &settings.params)?,
        None => Buffer::start(at, kind, &settings.params)?,
    };
    let change = Change {
        from: t.standing.state,
        to,
        at,
        rule,
    };
    let standing = Standing {
        state: to,
        since: at,
        purge_at: Some(buffer.purge_at),
    };
    save_standing(
        conn,
        account_id,
        &standing,
        std::slice::from_ref(&change),
        now,
    )
    .await?;
    audit(
        conn,
        account_id,
        now,
        actor,
        "release",
        &format!(
            "{} -> {to}, purge date {} ({rule})",
            change.from, buffer.purge_at
        ),
    )
    .await?;
    Ok(standing)
}

fn closure_row(r: &AnyRow) -> Result<ClosureRequest> {
    Ok(ClosureRequest {
        request_id: get_i64(r, "request_id")?,
        account_id: get_i64(r, "account_id")?,
        ticket_id: get_i64(r, "ticket_id")?,
        keep_buffer: get_i64(r, "keep_buffer")? != 0,
        created_at: get_i64(r, "created_at")?,
        expires_at: get_i64(r, "expires_at")?,
        attempts: get_i64(r, "attempts")?,
        confirmed_at: get_i64(r, "confirmed_at")?,
    })
}

const CLOSURE_COLUMNS: &str = "request_id, account_id, ticket_id, keep_buffer, created_at, expires_at, attempts, confirmed_at";

impl Store {
    /// SVC-010: starts a closure asked for by e-mail on `ticket_id`: stores the request with
    /// the SHA-256 of a fresh 8-digit code and queues the code to the owner's contact
    /// address, in one transaction. The code is never returned: only the owner sees it.
    pub async fn saas_closure_start(
        &self,
        account_id: i64,
        ticket_id: i64,
        keep_buffer: bool,
        actor: &str,
        now: Millis,
    ) -> Result<ClosureRequest> {
        let code = format!("{:08}", rand::rng().random_range(0..100_000_000u32));
        let expires_at = now + CLOSURE_CODE_HOURS * 3_600_000;
        let mut sql = Sql::new(
            "INSERT INTO saas_closure_requests (account_id, ticket_id, keep_buffer, code_hash, \
             requested_by, created_at, expires_at) VALUES (",
        );
        sql.bind(account_id)
            .push(", ")
            .bind(ticket_id)
            .push(", ")
            .bind(i64::from(keep_buffer))
            .push(", ")
            .bind(hash_secret(&code))
            .push(", ")
            .bind(actor)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(expires_at)
            .push(&format!(") RETURNING {CLOSURE_COLUMNS}"));
        let mut tx = self.inner.write.begin().await?;
        let request = closure_row(&sql.query_on(&tx).fetch_one(&mut *tx).await?)?;
        let text = closure_notice(ticket_id, &code, keep_buffer, ts(expires_at)?);
        enqueue(
            &mut tx,
            account_id,
            Category::ClosureCode,
            "closure_code",
            text,
            &format!("closure_request:{}", request.request_id),
            now,
        )
        .await?;
        audit(
            &mut tx,
            account_id,
            now,
            actor,
            "closure_requested",
            &format!(
                "closure request {} on ticket {ticket_id}: code sent to the owner (SVC-010)",
                request.request_id
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(request)
    }

    /// The closure requests, oldest first; one tenant's when given.
    pub async fn saas_closure_requests(
        &self,
        account_id: Option<i64>,
    ) -> Result<Vec<ClosureRequest>> {
        let mut sql = Sql::new(&format!(
            "SELECT {CLOSURE_COLUMNS} FROM saas_closure_requests"
        ));
        if let Some(a) = account_id {
            sql.push(" WHERE account_id = ").bind(a);
        }
        sql.push(" ORDER BY request_id");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        rows.iter().map(closure_row).collect()
    }

    /// SVC-010: confirms a closure with the owner's code and releases the tenant (SVC-186).
    /// A wrong code counts as a try (5 void the request) and changes nothing else; an expired,
    /// voided or used request is refused.
    pub async fn saas_closure_confirm(
        &self,
        settings: &SaasSettings,
        request_id: i64,
        code: &str,
        actor: &str,
        now: Millis,
    ) -> std::result::Result<(ClosureRequest, Standing), SaasFailure> {
        let refused = |message: String| {
            SaasFailure::Rule(SaasError::Refused {
                rule: "SVC-010",
                message,
            })
        };
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {CLOSURE_COLUMNS}, code_hash FROM saas_closure_requests WHERE request_id = "
        ));
        sql.bind(request_id);
        let Some(row) = sql.query_on(&tx).fetch_optional(&mut *tx).await? else {
            return Err(refused(format!("no closure request {request_id}")));
        };
        let request = closure_row(&row)?;
        let matches = hash_secret(code.trim()) == get_str(&row, "code_hash")?;
        let check = closure_code(
            matches,
            ts(request.expires_at)?,
            request.attempts,
            request.confirmed_at != 0,
            ts(now)?,
        );
        match check {
            CodeCheck::Accepted => {}
            CodeCheck::Wrong => {
                let mut sql = Sql::new(
                    "UPDATE saas_closure_requests SET attempts = attempts + 1 WHERE request_id = ",
                );
                sql.bind(request_id);
                sql.query_on(&tx).execute(&mut *tx).await?;
                tx.commit().await?;
                let left = CLOSURE_CODE_TRIES - request.attempts - 1;
                return Err(refused(format!(
                    "the code is wrong; {left} tries left before the request is void"
                )));
            }
            CodeCheck::Expired => {
                return Err(refused(
                    "the code expired; start a new closure request".into(),
                ));
            }
            CodeCheck::TooManyTries => {
                return Err(refused(
                    "too many wrong codes: the request is void; start a new one".into(),
                ));
            }
            CodeCheck::AlreadyConfirmed => {
                return Err(refused("the closure was already confirmed".into()));
            }
        }
        let standing = release_in(
            &mut tx,
            settings,
            request.account_id,
            request.keep_buffer,
            actor,
            "SVC-010",
            now,
        )
        .await?;
        let mut sql =
            Sql::new("UPDATE saas_closure_requests SET attempts = attempts + 1, confirmed_at = ");
        sql.bind(now).push(" WHERE request_id = ").bind(request_id);
        sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok((
            ClosureRequest {
                confirmed_at: now,
                attempts: request.attempts + 1,
                ..request
            },
            standing,
        ))
    }
}
