//! SLA records (service-agreement.md §18, migration 0058; docs/sla.md): the request counts
//! per tenant and 5-minute cycle that the nodes add up, the exclusions and unreachable
//! periods operators record, the notification hand-offs read back from the outbox, and the
//! compensation claims with their decisions. The rules themselves are `klaxon_saas::sla`;
//! this module only stores and reads their inputs and outcomes.

use jiff::Timestamp;
use klaxon_core::model::Millis;
use klaxon_saas::SaasError;
use klaxon_saas::sla::check_claim;
use rust_decimal::Decimal;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::{Applied, Result, SaasFailure, SaasSettings, apply_on, audit, corrupt, lock_tenant};
use crate::Store;
use crate::db::Sql;
use crate::rows::{get_i64, get_str};

/// Longest free text (evidence, reasons) an operator or tenant may attach.
pub const SLA_TEXT_MAX: usize = 2000;

/// One exclusion (SVC-276) or maintenance window (SVC-239) as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaExclusion {
    pub exclusion_id: i64,
    /// 0 = every tenant of the region.
    pub account_id: i64,
    pub category: String,
    pub starts_at: Millis,
    pub ends_at: Millis,
    /// For a maintenance window: when it was announced; 0 otherwise.
    pub published_at: Millis,
    pub evidence: String,
    pub author: String,
    pub created_at: Millis,
}

/// An unreachable period (SVC-273) as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaUnreachable {
    pub unreachable_id: i64,
    /// 0 = every tenant of the region.
    pub account_id: i64,
    pub starts_at: Millis,
    pub ends_at: Millis,
    pub evidence: String,
    pub author: String,
    pub created_at: Millis,
}

/// One incident with its first due notification (SVC-274), derived from the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaIncident {
    pub incident_id: String,
    pub triggered_at: Millis,
    /// When the first notification became due (its outbox row was written); `None` when
    /// nothing was ever due (silenced, inhibited, no assignee).
    pub due_at: Option<Millis>,
    /// Earliest provider acceptance among that firing's rows.
    pub handed_off_at: Option<Millis>,
    /// Every row of that firing was refused by its provider (a wrong number, a dead
    /// endpoint of the tenant): the platform did hand it over, the provider said no.
    pub refused_by_provider: bool,
}

/// A compensation claim (SVC-280/281).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaClaim {
    pub claim_id: i64,
    pub account_id: i64,
    /// `YYYY-MM`.
    pub month: String,
    /// 1, or 2 for the one resubmission after a rejection.
    pub attempt: i64,
    /// `open`, `approved` or `rejected`.
    pub status: String,
    pub submitted_at: Millis,
    pub submitted_by: String,
    /// The figures computed at submission.
    pub failed_minutes: i64,
    pub fee: Decimal,
    pub amount: Decimal,
    pub decided_at: Millis,
    pub decided_by: String,
    pub reason: String,
    /// The compensation posted at approval (recomputed then, with the exclusions added
    /// during the review).
    pub granted: Option<Decimal>,
    pub lot_id: i64,
}

/// What the tenant or operator submits with a claim.
#[derive(Debug, Clone)]
pub struct NewSlaClaim {
    pub account_id: i64,
    pub month: String,
    pub submitted_by: String,
    pub failed_minutes: i64,
    pub fee: Decimal,
    pub amount: Decimal,
    /// SVC-280 window for the month, computed by the caller from the working-day calendar.
    pub window: (Timestamp, Timestamp),
}

fn invalid(field: &'static str, message: impl Into<String>) -> SaasFailure {
    SaasFailure::Rule(SaasError::Invalid {
        field,
        message: message.into(),
    })
}

fn check_text(field: &'static str, text: &str, required: bool) -> Result<()> {
    if required && text.trim().is_empty() {
        return Err(invalid(field, "is required"));
    }
    if text.chars().count() > SLA_TEXT_MAX {
        return Err(invalid(field, format!("at most {SLA_TEXT_MAX} characters")));
    }
    Ok(())
}

fn check_range(starts_at: Millis, ends_at: Millis) -> Result<()> {
    if starts_at <= 0 {
        return Err(invalid("start", "must be a time after 1970"));
    }
    if ends_at <= starts_at {
        return Err(invalid("end", "must be after the start"));
    }
    Ok(())
}

fn exclusion_row(r: &AnyRow) -> Result<SlaExclusion> {
    Ok(SlaExclusion {
        exclusion_id: get_i64(r, "exclusion_id")?,
        account_id: get_i64(r, "account_id")?,
        category: get_str(r, "category")?,
        starts_at: get_i64(r, "starts_at")?,
        ends_at: get_i64(r, "ends_at")?,
        published_at: get_i64(r, "published_at")?,
        evidence: get_str(r, "evidence")?,
        author: get_str(r, "author")?,
        created_at: get_i64(r, "created_at")?,
    })
}

fn unreachable_row(r: &AnyRow) -> Result<SlaUnreachable> {
    Ok(SlaUnreachable {
        unreachable_id: get_i64(r, "unreachable_id")?,
        account_id: get_i64(r, "account_id")?,
        starts_at: get_i64(r, "starts_at")?,
        ends_at: get_i64(r, "ends_at")?,
        evidence: get_str(r, "evidence")?,
        author: get_str(r, "author")?,
        created_at: get_i64(r, "created_at")?,
    })
}

fn dec(r: &AnyRow, col: &str) -> Result<Decimal> {
    get_str(r, col)?.parse().map_err(|e| corrupt(col, e))
}

fn claim_row(r: &AnyRow) -> Result<SlaClaim> {
    let granted = get_str(r, "granted")?;
    Ok(SlaClaim {
        claim_id: get_i64(r, "claim_id")?,
        account_id: get_i64(r, "account_id")?,
        month: get_str(r, "month")?,
        attempt: get_i64(r, "attempt")?,
        status: get_str(r, "status")?,
        submitted_at: get_i64(r, "submitted_at")?,
        submitted_by: get_str(r, "submitted_by")?,
        failed_minutes: get_i64(r, "failed_minutes")?,
        fee: dec(r, "fee")?,
        amount: dec(r, "amount")?,
        decided_at: get_i64(r, "decided_at")?,
        decided_by: get_str(r, "decided_by")?,
        reason: get_str(r, "reason")?,
        granted: if granted.is_empty() {
            None
        } else {
            Some(granted.parse().map_err(|e| corrupt("granted", e))?)
        },
        lot_id: get_i64(r, "lot_id")?,
    })
}

const CLAIM_COLUMNS: &str = "claim_id, account_id, month, attempt, status, submitted_at, submitted_by, failed_minutes, fee, amount, decided_at, decided_by, reason, granted, lot_id";

async fn claims_of_month(
    conn: &mut AnyConnection,
    account_id: i64,
    month: &str,
) -> Result<Vec<SlaClaim>> {
    let mut sql = Sql::new(&format!(
        "SELECT {CLAIM_COLUMNS} FROM sla_claims WHERE account_id = "
    ));
    sql.bind(account_id)
        .push(" AND month = ")
        .bind(month)
        .push(" ORDER BY attempt");
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    rows.iter().map(claim_row).collect()
}

impl Store {
    /// Adds request counts per (tenant, cycle start): one upsert per pair, so any number of
    /// nodes may flush the same cycle.
    pub async fn sla_add_counts(&self, counts: &[(i64, Millis, u64, u64)]) -> Result<()> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut tx = self.inner.write.begin().await?;
        for chunk in counts.chunks(64) {
            let mut sql = Sql::new(
                "INSERT INTO sla_request_counts (account_id, cycle_start, valid, failed) VALUES ",
            );
            for (i, (account_id, start, valid, failed)) in chunk.iter().enumerate() {
                sql.push(if i == 0 { "(" } else { ", (" })
                    .bind(*account_id)
                    .push(", ")
                    .bind(*start)
                    .push(", ")
                    .bind(i64::try_from(*valid).unwrap_or(i64::MAX))
                    .push(", ")
                    .bind(i64::try_from(*failed).unwrap_or(i64::MAX))
                    .push(")");
            }
            sql.push(
                " ON CONFLICT (account_id, cycle_start) DO UPDATE SET \
                 valid = sla_request_counts.valid + excluded.valid, \
                 failed = sla_request_counts.failed + excluded.failed",
            );
            sql.query_on(&tx).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's request counts of cycles starting in [from, to): (start, valid, failed).
    pub async fn sla_counts(
        &self,
        account_id: i64,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<(Millis, i64, i64)>> {
        let mut sql = Sql::new(
            "SELECT cycle_start, valid, failed FROM sla_request_counts WHERE account_id = ",
        );
        sql.bind(account_id)
            .push(" AND cycle_start >= ")
            .bind(from)
            .push(" AND cycle_start < ")
            .bind(to)
            .push(" ORDER BY cycle_start");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    get_i64(r, "cycle_start")?,
                    get_i64(r, "valid")?,
                    get_i64(r, "failed")?,
                ))
            })
            .collect()
    }

    /// Records an exclusion or maintenance window (audited on the tenant; a region-wide one,
    /// account 0, in the tenant-less audit). The category is checked by the caller.
    #[allow(clippy::too_many_arguments)]
    pub async fn sla_add_exclusion(
        &self,
        account_id: i64,
        category: &str,
        starts_at: Millis,
        ends_at: Millis,
        published_at: Millis,
        evidence: &str,
        author: &str,
        now: Millis,
    ) -> Result<SlaExclusion> {
        check_range(starts_at, ends_at)?;
        check_text("evidence", evidence, true)?;
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        if account_id != 0 && !super::account_exists(conn, account_id).await? {
            return Err(SaasFailure::UnknownAccount(account_id));
        }
        let mut sql = Sql::new(
            "INSERT INTO sla_exclusions (account_id, category, starts_at, ends_at, published_at, evidence, author, created_at) VALUES (",
        );
        sql.bind(account_id)
            .push(", ")
            .bind(category)
            .push(", ")
            .bind(starts_at)
            .push(", ")
            .bind(ends_at)
            .push(", ")
            .bind(published_at)
            .push(", ")
            .bind(evidence)
            .push(", ")
            .bind(author)
            .push(", ")
            .bind(now)
            .push(") RETURNING exclusion_id");
        let row = sql.query_on(conn).fetch_one(&mut *conn).await?;
        let id = get_i64(&row, "exclusion_id")?;
        audit(
            conn,
            account_id,
            now,
            author,
            "sla_exclusion",
            &format!("exclusion {id}: {category} [{starts_at}, {ends_at}) {evidence}"),
        )
        .await?;
        tx.commit().await?;
        Ok(SlaExclusion {
            exclusion_id: id,
            account_id,
            category: category.to_string(),
            starts_at,
            ends_at,
            published_at,
            evidence: evidence.to_string(),
            author: author.to_string(),
            created_at: now,
        })
    }

    /// Exclusions that apply to the tenant (its own and the region's) and overlap
    /// [from, to); `account_id` 0 lists the region-wide ones only.
    pub async fn sla_exclusions(
        &self,
        account_id: i64,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<SlaExclusion>> {
        let mut sql = Sql::new(
            "SELECT exclusion_id, account_id, category, starts_at, ends_at, published_at, evidence, author, created_at FROM sla_exclusions WHERE account_id IN (0, ",
        );
        sql.bind(account_id)
            .push(") AND ends_at > ")
            .bind(from)
            .push(" AND starts_at < ")
            .bind(to)
            .push(" ORDER BY starts_at, exclusion_id");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        rows.iter().map(exclusion_row).collect()
    }

    /// Records a period when the API was unreachable because of the operator (SVC-273).
    pub async fn sla_add_unreachable(
        &self,
        account_id: i64,
        starts_at: Millis,
        ends_at: Millis,
        evidence: &str,
        author: &str,
        now: Millis,
    ) -> Result<SlaUnreachable> {
        check_range(starts_at, ends_at)?;
        check_text("evidence", evidence, true)?;
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        if account_id != 0 && !super::account_exists(conn, account_id).await? {
            return Err(SaasFailure::UnknownAccount(account_id));
        }
        let mut sql = Sql::new(
            "INSERT INTO sla_unreachable (account_id, starts_at, ends_at, evidence, author, created_at) VALUES (",
        );
        sql.bind(account_id)
            .push(", ")
            .bind(starts_at)
            .push(", ")
            .bind(ends_at)
            .push(", ")
            .bind(evidence)
            .push(", ")
            .bind(author)
            .push(", ")
            .bind(now)
            .push(") RETURNING unreachable_id");
        let row = sql.query_on(conn).fetch_one(&mut *conn).await?;
        let id = get_i64(&row, "unreachable_id")?;
        audit(
            conn,
            account_id,
            now,
            author,
            "sla_unreachable",
            &format!("unreachable {id}: [{starts_at}, {ends_at}) {evidence}"),
        )
        .await?;
        tx.commit().await?;
        Ok(SlaUnreachable {
            unreachable_id: id,
            account_id,
            starts_at,
            ends_at,
            evidence: evidence.to_string(),
            author: author.to_string(),
            created_at: now,
        })
    }

    /// Unreachable periods that apply to the tenant (its own and the region's) and overlap
    /// [from, to).
    pub async fn sla_unreachable(
        &self,
        account_id: i64,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<SlaUnreachable>> {
        let mut sql = Sql::new(
            "SELECT unreachable_id, account_id, starts_at, ends_at, evidence, author, created_at FROM sla_unreachable WHERE account_id IN (0, ",
        );
        sql.bind(account_id)
            .push(") AND ends_at > ")
            .bind(from)
            .push(" AND starts_at < ")
            .bind(to)
            .push(" ORDER BY starts_at, unreachable_id");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        rows.iter().map(unreachable_row).collect()
    }

    /// The tenant's incidents triggered in [from, to) with their first due notification and
    /// its hand-off, read from the notification outbox (SVC-274). The first due notification
    /// is the firing of the earliest outbox row; it is handed off when any row of that firing
    /// was accepted by its provider (`sent_at`).
    pub async fn sla_incidents(
        &self,
        account_id: i64,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<SlaIncident>> {
        let mut sql = Sql::new(
            "SELECT i.incident_id, i.start_time, COALESCE(n.firing_id, '') AS firing_id, \
             COALESCE(n.created_at, 0) AS created_at, COALESCE(n.status, '') AS status, \
             COALESCE(n.sent_at, 0) AS sent_at FROM incidents i LEFT JOIN notifications n \
             ON n.account_id = i.account_id AND n.incident_id = i.incident_id \
             WHERE i.account_id = ",
        );
        sql.bind(account_id)
            .push(" AND i.start_time >= ")
            .bind(from)
            .push(" AND i.start_time < ")
            .bind(to)
            .push(" ORDER BY i.incident_id, n.created_at, n.seq");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        let mut out: Vec<SlaIncident> = Vec::new();
        // The first row of each incident names its first firing; later rows of the same
        // firing may hand it off, rows of other firings do not count.
        let mut first_firing = String::new();
        let mut any_not_refused = false;
        for r in &rows {
            let incident_id = get_str(r, "incident_id")?;
            let firing = get_str(r, "firing_id")?;
            let created_at = get_i64(r, "created_at")?;
            let status = get_str(r, "status")?;
            let sent_at = get_i64(r, "sent_at")?;
            if out.last().is_none_or(|x| x.incident_id != incident_id) {
                first_firing = firing.clone();
                any_not_refused = false;
                out.push(SlaIncident {
                    incident_id,
                    triggered_at: get_i64(r, "start_time")?,
                    due_at: (!firing.is_empty()).then_some(created_at),
                    handed_off_at: None,
                    refused_by_provider: false,
                });
            }
            if firing.is_empty() || firing != first_firing {
                continue;
            }
            let Some(inc) = out.last_mut() else { continue };
            if status == "sent" && sent_at > 0 {
                inc.handed_off_at = Some(inc.handed_off_at.map_or(sent_at, |h| h.min(sent_at)));
            }
            any_not_refused |= status != "failed";
            inc.refused_by_provider = !any_not_refused;
        }
        Ok(out)
    }

    /// Files a claim (SVC-280/281): refused outside the window, while an earlier claim for
    /// the month is open or approved, and after a resubmission was rejected too. Audited.
    pub async fn sla_submit_claim(
        &self,
        settings: &SaasSettings,
        claim: &NewSlaClaim,
        now: Millis,
    ) -> Result<SlaClaim> {
        check_text("submitted_by", &claim.submitted_by, true)?;
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        // Locks the tenant row, so two submissions for one month never both pass the check.
        lock_tenant(conn, settings, claim.account_id, now).await?;
        let earlier = claims_of_month(conn, claim.account_id, &claim.month).await?;
        let blocking = earlier.iter().any(|c| c.status != "rejected");
        check_claim(super::ts(now)?, claim.window, blocking)?;
        if earlier.len() >= 2 {
            return Err(SaasFailure::Rule(SaasError::Refused {
                rule: "SVC-281",
                message: "the claim for this month was already resubmitted once and rejected"
                    .into(),
            }));
        }
        let attempt = earlier.len() as i64 + 1;
        let mut sql = Sql::new(
            "INSERT INTO sla_claims (account_id, month, attempt, status, submitted_at, submitted_by, failed_minutes, fee, amount) VALUES (",
        );
        sql.bind(claim.account_id)
            .push(", ")
            .bind(claim.month.as_str())
            .push(", ")
            .bind(attempt)
            .push(", 'open', ")
            .bind(now)
            .push(", ")
            .bind(claim.submitted_by.as_str())
            .push(", ")
            .bind(claim.failed_minutes)
            .push(", ")
            .bind(claim.fee.to_string())
            .push(", ")
            .bind(claim.amount.to_string())
            .push(") RETURNING claim_id");
        let row = sql.query_on(conn).fetch_one(&mut *conn).await?;
        let claim_id = get_i64(&row, "claim_id")?;
        audit(
            conn,
            claim.account_id,
            now,
            &claim.submitted_by,
            "sla_claim",
            &format!(
                "claim {claim_id} for {} (attempt {attempt}): {} failed minutes, fee {}, compensation {}",
                claim.month, claim.failed_minutes, claim.fee, claim.amount
            ),
        )
        .await?;
        tx.commit().await?;
        self.sla_claim(claim_id)
            .await?
            .ok_or_else(|| corrupt("sla_claims", "the new claim is missing"))
    }

    pub async fn sla_claim(&self, claim_id: i64) -> Result<Option<SlaClaim>> {
        let mut sql = Sql::new(&format!(
            "SELECT {CLAIM_COLUMNS} FROM sla_claims WHERE claim_id = "
        ));
        sql.bind(claim_id);
        let row = sql.query().fetch_optional(&self.inner.write).await?;
        row.as_ref().map(claim_row).transpose()
    }

    /// Claims, newest first: one tenant's (`Some`) or every tenant's; only open ones with
    /// `open_only`.
    pub async fn sla_claims(
        &self,
        account_id: Option<i64>,
        open_only: bool,
    ) -> Result<Vec<SlaClaim>> {
        let mut sql = Sql::new(&format!(
            "SELECT {CLAIM_COLUMNS} FROM sla_claims WHERE 1 = 1"
        ));
        if let Some(a) = account_id {
            sql.push(" AND account_id = ").bind(a);
        }
        if open_only {
            sql.push(" AND status = 'open'");
        }
        sql.push(" ORDER BY claim_id DESC");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        rows.iter().map(claim_row).collect()
    }

    /// Approves an open claim: posts `amount` (the compensation recomputed now, SVC-281) as a
    /// bonus lot of source `sla_compensation` (SVC-279) in the same transaction that
    /// closes the claim. A zero amount closes it without a lot.
    pub async fn sla_approve_claim(
        &self,
        settings: &SaasSettings,
        claim_id: i64,
        amount: Decimal,
        actor: &str,
        now: Millis,
    ) -> Result<(SlaClaim, Applied<String>)> {
        check_text("actor", actor, true)?;
        let claim = self.open_claim(claim_id).await?;
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        let reference = format!("sla-claim:{claim_id}");
        let mut lot = 0i64;
        let month = claim.month.clone();
        let applied = apply_on(
            conn,
            settings,
            claim.account_id,
            now,
            actor,
            "sla_claim_approve",
            |book, at| {
                let granted = klaxon_saas::sla::grant_compensation(
                    book, at, amount, &reference, actor,
                )?;
                lot = granted.map_or(0, |l| l as i64);
                Ok(match granted {
                    Some(l) => format!(
                        "claim {claim_id} for {month} approved: compensation {amount} as bonus lot {l}"
                    ),
                    None => format!("claim {claim_id} for {month} approved: no compensation due"),
                })
            },
        )
        .await?;
        let mut sql = Sql::new("UPDATE sla_claims SET status = 'approved', decided_at = ");
        sql.bind(now)
            .push(", decided_by = ")
            .bind(actor)
            .push(", granted = ")
            .bind(amount.to_string())
            .push(", lot_id = ")
            .bind(lot)
            .push(" WHERE claim_id = ")
            .bind(claim_id)
            .push(" AND status = 'open'");
        let done = sql.query_on(conn).execute(&mut *conn).await?;
        if done.rows_affected() != 1 {
            return Err(invalid("claim", "the claim was decided meanwhile"));
        }
        tx.commit().await?;
        let claim = self
            .sla_claim(claim_id)
            .await?
            .ok_or_else(|| corrupt("sla_claims", "the claim is missing"))?;
        Ok((claim, applied))
    }

    /// Rejects an open claim with reasons (SVC-281); the tenant may submit once more.
    pub async fn sla_reject_claim(
        &self,
        claim_id: i64,
        reason: &str,
        actor: &str,
        now: Millis,
    ) -> Result<SlaClaim> {
        check_text("reason", reason, true)?;
        check_text("actor", actor, true)?;
        let claim = self.open_claim(claim_id).await?;
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        let mut sql = Sql::new("UPDATE sla_claims SET status = 'rejected', decided_at = ");
        sql.bind(now)
            .push(", decided_by = ")
            .bind(actor)
            .push(", reason = ")
            .bind(reason)
            .push(" WHERE claim_id = ")
            .bind(claim_id)
            .push(" AND status = 'open'");
        let done = sql.query_on(conn).execute(&mut *conn).await?;
        if done.rows_affected() != 1 {
            return Err(invalid("claim", "the claim was decided meanwhile"));
        }
        audit(
            conn,
            claim.account_id,
            now,
            actor,
            "sla_claim_reject",
            &format!("claim {claim_id} for {} rejected: {reason}", claim.month),
        )
        .await?;
        tx.commit().await?;
        self.sla_claim(claim_id)
            .await?
            .ok_or_else(|| corrupt("sla_claims", "the claim is missing"))
    }

    async fn open_claim(&self, claim_id: i64) -> Result<SlaClaim> {
        let claim = self
            .sla_claim(claim_id)
            .await?
            .ok_or_else(|| invalid("claim", format!("no claim {claim_id}")))?;
        if claim.status != "open" {
            return Err(invalid(
                "claim",
                format!("claim {claim_id} is already {}", claim.status),
            ));
        }
        Ok(claim)
    }
}
