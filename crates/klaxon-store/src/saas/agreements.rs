//! Agreement documents and their acceptance (service-agreement.md §3, migration 0049):
//! published versions (immutable but for their retraction, SVC-030/031), publication and
//! retraction together with their notices in one transaction (SVC-035), and the immutable
//! decision records — explicit acceptance, deemed acceptance by continued use, refusal —
//! with their evidence (SVC-032, SVC-036 … SVC-038). A refusal ends the tenant's service at
//! the version's `effective_at` (or at once, after it) through the SVC-021 state machine;
//! [`Store::saas_end_refused_due`] applies the pending ends, once each.

use jiff::Timestamp;
use klaxon_core::model::Millis;
use klaxon_saas::SaasError;
use klaxon_saas::agreement::{
    DocumentType, Level, Method, Publication, VersionFacts, check_decision, check_publication,
    refusal_ends_at,
};
use klaxon_saas::state::{EndReason, Trigger, transition};
use klaxon_saas::tenant::{Change, Standing};
use klaxon_saas::termination::{Buffer, BufferStart};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::notices::{NewNotice, insert_notices, sha256_hex};
use super::{Result, SaasFailure, SaasSettings, audit, lock_tenant, ms, save_standing, ts};
use crate::Store;
use crate::db::Sql;
use crate::rows::{get_i64, get_str};

/// A published (or retracted) document version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentVersion {
    pub version_id: i64,
    pub doc_type: DocumentType,
    pub version: String,
    pub language: String,
    pub body: String,
    pub body_sha256: String,
    pub summary: String,
    pub material: bool,
    pub justification: String,
    pub published_at: Millis,
    pub effective_at: Millis,
    /// 0 unless retracted.
    pub retracted_at: Millis,
    pub author: String,
}

impl DocumentVersion {
    pub fn facts(&self) -> Result<VersionFacts> {
        Ok(VersionFacts {
            id: self.version_id,
            doc_type: self.doc_type,
            published_at: ts(self.published_at)?,
            effective_at: ts(self.effective_at)?,
            retracted: self.retracted_at != 0,
        })
    }

    /// How notices and records name it.
    pub fn related(&self) -> String {
        format!("document_version:{}", self.version_id)
    }
}

/// What an operator publishes.
#[derive(Debug, Clone)]
pub struct NewDocument {
    pub doc_type: DocumentType,
    pub version: String,
    pub language: String,
    pub body: String,
    pub summary: String,
    pub material: bool,
    pub justification: String,
    pub published_at: Millis,
    pub effective_at: Millis,
    pub author: String,
}

/// One decision of a tenant (or a person) on a version, with its evidence (SVC-032).
#[derive(Debug, Clone, Default)]
pub struct NewDecision {
    pub account_id: i64,
    pub version_id: i64,
    /// The person deciding; 0 for a deemed acceptance.
    pub member_id: i64,
    /// `owner`, `admin`, `account_key`; empty for a deemed acceptance.
    pub role: String,
    pub refuse: bool,
    pub deemed: bool,
    pub at: Millis,
    pub client_ip: String,
    pub user_agent: String,
    /// `web` or `api` (`push` for a deemed acceptance by an inbound event).
    pub client_type: String,
    pub request_id: String,
    /// For a deemed acceptance: the kind of use event (`api_request`, `inbound_event`).
    pub event_type: String,
}

/// A stored decision record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptanceRecord {
    pub acceptance_id: i64,
    pub account_id: i64,
    pub version_id: i64,
    pub member_id: i64,
    pub login: String,
    pub role: String,
    pub doc_type: String,
    pub version: String,
    pub language: String,
    pub content_sha256: String,
    /// `accepted` or `refused`.
    pub decision: String,
    pub method: String,
    pub decided_at: Millis,
    pub client_ip: String,
    pub user_agent: String,
    pub client_type: String,
    pub request_id: String,
    pub event_type: String,
    /// JSON: the notices sent earlier about the version (deemed acceptance, SVC-037).
    pub evidence: String,
    /// When a refusal ends the service; 0 for an acceptance.
    pub ends_at: Millis,
}

/// What [`Store::saas_decide`] did.
#[derive(Debug, Clone)]
pub enum Decided {
    /// Recorded now.
    New(AcceptanceRecord),
    /// The tenant (or person) had already decided on this version: that record stands.
    Already(AcceptanceRecord),
}

const DOC_COLUMNS: &str = "version_id, doc_type, version, language, body, body_sha256, summary, \
    material, justification, published_at, effective_at, status, retracted_at, author";

const ACC_COLUMNS: &str = "acceptance_id, account_id, version_id, member_id, login, role, \
    doc_type, version, language, content_sha256, decision, method, decided_at, client_ip, \
    user_agent, client_type, request_id, event_type, evidence, ends_at";

fn document(row: &AnyRow) -> Result<DocumentVersion> {
    Ok(DocumentVersion {
        version_id: get_i64(row, "version_id")?,
        doc_type: DocumentType::parse(&get_str(row, "doc_type")?)?,
        version: get_str(row, "version")?,
        language: get_str(row, "language")?,
        body: get_str(row, "body")?,
        body_sha256: get_str(row, "body_sha256")?,
        summary: get_str(row, "summary")?,
        material: get_i64(row, "material")? != 0,
        justification: get_str(row, "justification")?,
        published_at: get_i64(row, "published_at")?,
        effective_at: get_i64(row, "effective_at")?,
        retracted_at: get_i64(row, "retracted_at")?,
        author: get_str(row, "author")?,
    })
}

fn acceptance(row: &AnyRow) -> Result<AcceptanceRecord> {
    Ok(AcceptanceRecord {
        acceptance_id: get_i64(row, "acceptance_id")?,
        account_id: get_i64(row, "account_id")?,
        version_id: get_i64(row, "version_id")?,
        member_id: get_i64(row, "member_id")?,
        login: get_str(row, "login")?,
        role: get_str(row, "role")?,
        doc_type: get_str(row, "doc_type")?,
        version: get_str(row, "version")?,
        language: get_str(row, "language")?,
        content_sha256: get_str(row, "content_sha256")?,
        decision: get_str(row, "decision")?,
        method: get_str(row, "method")?,
        decided_at: get_i64(row, "decided_at")?,
        client_ip: get_str(row, "client_ip")?,
        user_agent: get_str(row, "user_agent")?,
        client_type: get_str(row, "client_type")?,
        request_id: get_str(row, "request_id")?,
        event_type: get_str(row, "event_type")?,
        evidence: get_str(row, "evidence")?,
        ends_at: get_i64(row, "ends_at")?,
    })
}

/// Every version ever published, oldest first, read inside a transaction.
pub(crate) async fn load_documents_on(conn: &mut AnyConnection) -> Result<Vec<DocumentVersion>> {
    let sql = Sql::new(&format!(
        "SELECT {DOC_COLUMNS} FROM saas_documents ORDER BY version_id"
    ));
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    rows.iter().map(document).collect()
}

async fn load_document(
    conn: &mut AnyConnection,
    version_id: i64,
) -> Result<Option<DocumentVersion>> {
    let mut sql = Sql::new(&format!(
        "SELECT {DOC_COLUMNS} FROM saas_documents WHERE version_id = "
    ));
    sql.bind(version_id);
    match sql.query_on(conn).fetch_optional(&mut *conn).await? {
        Some(row) => Ok(Some(document(&row)?)),
        None => Ok(None),
    }
}

fn unknown_version(version_id: i64) -> SaasFailure {
    SaasFailure::Rule(SaasError::Invalid {
        field: "version_id",
        message: format!("no published document version {version_id}"),
    })
}

async fn existing_decision(
    conn: &mut AnyConnection,
    account_id: i64,
    version_id: i64,
    person_key: i64,
) -> Result<Option<AcceptanceRecord>> {
    let mut sql = Sql::new(&format!(
        "SELECT {ACC_COLUMNS} FROM saas_acceptances WHERE account_id = "
    ));
    sql.bind(account_id)
        .push(" AND version_id = ")
        .bind(version_id)
        .push(" AND person_key = ")
        .bind(person_key);
    match sql.query_on(conn).fetch_optional(&mut *conn).await? {
        Some(row) => Ok(Some(acceptance(&row)?)),
        None => Ok(None),
    }
}

/// SVC-038: ends the tenant's service for the refusal `acceptance_id` at `ends_at`, once:
/// the `saas_job_runs` row (job `refusal_end`) makes a second run — on another node, or
/// after a restore in the buffer — do nothing. A tenant no longer in force is left as it is.
async fn end_for_refusal(
    conn: &mut AnyConnection,
    settings: &SaasSettings,
    account_id: i64,
    acceptance_id: i64,
    ends_at: Millis,
    now: Millis,
) -> Result<Option<Change>> {
    let t = lock_tenant(conn, settings, account_id, now).await?;
    // Under the tenant's lock: another node may have ended it since its read.
    let mut done =
        Sql::new("SELECT ran_at FROM saas_job_runs WHERE job = 'refusal_end' AND account_id = ");
    done.bind(account_id)
        .push(" AND run_for = ")
        .bind(acceptance_id.to_string());
    if done
        .query_on(conn)
        .fetch_optional(&mut *conn)
        .await?
        .is_some()
    {
        return Ok(None);
    }
    let (change, outcome) = match transition(
        t.standing.state,
        Trigger::Terminate(EndReason::RefusedTerms),
    ) {
        Ok(to) => {
            let at = ts(ends_at)?;
            let buffer = Buffer::start(at, BufferStart::Normal, &settings.params)?;
            let change = Change {
                from: t.standing.state,
                to,
                at,
                rule: "SVC-038",
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
            let outcome = format!("ended at {at}, purge date {}", buffer.purge_at);
            (Some(change), outcome)
        }
        Err(_) => (
            None,
            format!("not ended: the tenant is {}", t.standing.state),
        ),
    };
    let mut run =
        Sql::new("INSERT INTO saas_job_runs (account_id, job, run_for, ran_at, outcome) VALUES (");
    run.bind(account_id)
        .push(", 'refusal_end', ")
        .bind(acceptance_id.to_string())
        .push(", ")
        .bind(now)
        .push(", ")
        .bind(outcome.as_str())
        .push(")");
    run.query_on(conn).execute(&mut *conn).await?;
    audit(conn, account_id, now, "system", "refusal_end", &outcome).await?;
    Ok(change)
}

impl Store {
    /// SVC-031/035: publishes a version and records the notices `notices` builds for it,
    /// in one transaction. The preconditions are checked first; a refusal (bad field, rule,
    /// a label already used for the type and language) changes nothing.
    pub async fn saas_publish_document(
        &self,
        settings: &SaasSettings,
        d: &NewDocument,
        notices: impl FnOnce(&DocumentVersion) -> Vec<NewNotice>,
    ) -> Result<(DocumentVersion, Vec<i64>)> {
        check_publication(
            &Publication {
                doc_type: d.doc_type,
                version: &d.version,
                body: &d.body,
                summary: &d.summary,
                material: d.material,
                published_at: ts(d.published_at)?,
                effective_at: ts(d.effective_at)?,
                justification: &d.justification,
            },
            &settings.billing_tz,
        )?;
        if d.language.trim().is_empty() || d.language.len() > 35 {
            return Err(SaasError::Invalid {
                field: "language",
                message: "a language tag such as en-US is required".into(),
            }
            .into());
        }
        let mut tx = self.inner.write.begin().await?;
        let mut dup = Sql::new("SELECT version_id FROM saas_documents WHERE doc_type = ");
        dup.bind(d.doc_type.as_str())
            .push(" AND version = ")
            .bind(d.version.trim())
            .push(" AND language = ")
            .bind(d.language.as_str());
        if dup.query_on(&tx).fetch_optional(&mut *tx).await?.is_some() {
            return Err(SaasError::Invalid {
                field: "version",
                message: format!(
                    "{} version {} ({}) is already published; a correction is a new version (SVC-030)",
                    d.doc_type.as_str(),
                    d.version.trim(),
                    d.language
                ),
            }
            .into());
        }
        let level = match d.doc_type.level() {
            Level::Tenant => "tenant",
            Level::Person => "person",
        };
        let mut ins = Sql::new(
            "INSERT INTO saas_documents (doc_type, level, version, language, body, body_sha256, \
             summary, material, justification, published_at, effective_at, status, author) VALUES (",
        );
        ins.bind(d.doc_type.as_str())
            .push(", ")
            .bind(level)
            .push(", ")
            .bind(d.version.trim())
            .push(", ")
            .bind(d.language.as_str())
            .push(", ")
            .bind(d.body.as_str())
            .push(", ")
            .bind(sha256_hex(d.body.as_bytes()))
            .push(", ")
            .bind(d.summary.as_str())
            .push(", ")
            .bind(d.material)
            .push(", ")
            .bind(d.justification.as_str())
            .push(", ")
            .bind(d.published_at)
            .push(", ")
            .bind(d.effective_at)
            .push(", 'published', ")
            .bind(d.author.as_str())
            .push(") RETURNING version_id");
        let row = ins.query_on(&tx).fetch_one(&mut *tx).await?;
        let id = get_i64(&row, "version_id")?;
        let v = load_document(&mut tx, id)
            .await?
            .ok_or_else(|| unknown_version(id))?;
        let ids = insert_notices(&mut tx, &settings.billing_tz, &notices(&v)).await?;
        audit(
            &mut tx,
            0,
            d.published_at,
            &d.author,
            "document_publish",
            &format!(
                "{} {} effective {} material {} sha256 {}",
                v.doc_type.as_str(),
                v.version,
                ts(v.effective_at)?,
                v.material,
                v.body_sha256
            ),
        )
        .await?;
        tx.commit().await?;
        Ok((v, ids))
    }

    /// SVC-031: retracts a published version that is not yet effective, with the notices
    /// `notices` builds, in one transaction. Its decisions stay on record.
    pub async fn saas_retract_document(
        &self,
        settings: &SaasSettings,
        version_id: i64,
        at: Millis,
        actor: &str,
        notices: impl FnOnce(&DocumentVersion) -> Vec<NewNotice>,
    ) -> Result<(DocumentVersion, Vec<i64>)> {
        let mut tx = self.inner.write.begin().await?;
        let v = load_document(&mut tx, version_id)
            .await?
            .ok_or_else(|| unknown_version(version_id))?;
        if v.retracted_at != 0 {
            return Err(SaasError::Refused {
                rule: "SVC-031",
                message: format!("version {version_id} is already retracted"),
            }
            .into());
        }
        if v.effective_at <= at {
            return Err(SaasError::Refused {
                rule: "SVC-031",
                message: format!(
                    "version {version_id} took effect at {}; only a version not yet effective can be retracted (publish a new version instead)",
                    ts(v.effective_at)?
                ),
            }
            .into());
        }
        let mut up = Sql::new("UPDATE saas_documents SET status = 'retracted', retracted_at = ");
        up.bind(at).push(" WHERE version_id = ").bind(version_id);
        up.query_on(&tx).execute(&mut *tx).await?;
        let v = DocumentVersion {
            retracted_at: at,
            ..v
        };
        let ids = insert_notices(&mut tx, &settings.billing_tz, &notices(&v)).await?;
        audit(
            &mut tx,
            0,
            at,
            actor,
            "document_retract",
            &format!("{} {}", v.doc_type.as_str(), v.version),
        )
        .await?;
        tx.commit().await?;
        Ok((v, ids))
    }

    /// Every version ever published, oldest first.
    pub async fn saas_documents(&self) -> Result<Vec<DocumentVersion>> {
        let rows = Sql::new(&format!(
            "SELECT {DOC_COLUMNS} FROM saas_documents ORDER BY version_id"
        ))
        .query()
        .fetch_all(&self.inner.read)
        .await?;
        rows.iter().map(document).collect()
    }

    pub async fn saas_document(&self, version_id: i64) -> Result<Option<DocumentVersion>> {
        let mut conn = self.inner.read.acquire().await?;
        load_document(&mut conn, version_id).await
    }

    /// SVC-036 … SVC-038: records one decision with its evidence, unless the tenant (or the
    /// person, for a person-level document) already decided on the version — then the first
    /// record stands and is returned. A refusal whose end has come ends the service in the
    /// same transaction; one recorded before `effective_at` is ended then by
    /// [`Store::saas_end_refused_due`].
    pub async fn saas_decide(&self, settings: &SaasSettings, d: &NewDecision) -> Result<Decided> {
        let at = ts(d.at)?;
        let mut tx = self.inner.write.begin().await?;
        let v = load_document(&mut tx, d.version_id)
            .await?
            .ok_or_else(|| unknown_version(d.version_id))?;
        let facts = v.facts()?;
        let person_key = match v.doc_type.level() {
            Level::Tenant => 0,
            Level::Person => d.member_id,
        };
        if d.refuse && v.doc_type.level() == Level::Person {
            return Err(SaasError::Invalid {
                field: "version_id",
                message: "refusing a person-level document is not available yet; only tenant-level documents (terms_of_service, data_protection, sla) can be refused".into(),
            }
            .into());
        }
        if d.deemed && v.doc_type.level() == Level::Person {
            return Err(SaasError::Invalid {
                field: "version_id",
                message: "person-level documents are never accepted by continued use".into(),
            }
            .into());
        }
        if let Some(existing) =
            existing_decision(&mut tx, d.account_id, d.version_id, person_key).await?
        {
            return Ok(Decided::Already(existing));
        }
        check_decision(&facts, at)?;
        let (decision, method) = if d.refuse {
            ("refused", Method::Refusal)
        } else if d.deemed {
            ("accepted", Method::DeemedContinuedUse)
        } else {
            ("accepted", Method::ExplicitUpdate)
        };
        // SVC-037: a deemed acceptance cites the notices sent earlier about the version.
        let evidence = if d.deemed {
            let mut sql = Sql::new("SELECT notice_id FROM saas_notices WHERE related = ");
            sql.bind(v.related())
                .push(" AND (account_id = ")
                .bind(d.account_id)
                .push(" OR account_id = 0) AND sent_at <= ")
                .bind(d.at)
                .push(" ORDER BY notice_id");
            let rows = sql.query_on(&tx).fetch_all(&mut *tx).await?;
            let ids: Vec<i64> = rows
                .iter()
                .map(|r| get_i64(r, "notice_id"))
                .collect::<crate::Result<_>>()?;
            serde_json::json!({ "notice_ids": ids }).to_string()
        } else {
            String::new()
        };
        let ends_at = if d.refuse {
            ms(refusal_ends_at(&facts, at))
        } else {
            0
        };
        let mut login = String::new();
        if d.member_id != 0 {
            let mut sql = Sql::new("SELECT email FROM members WHERE member_id = ");
            sql.bind(d.member_id)
                .push(" AND account_id = ")
                .bind(d.account_id);
            if let Some(row) = sql.query_on(&tx).fetch_optional(&mut *tx).await? {
                login = get_str(&row, "email")?;
            }
        }
        let mut ins = Sql::new(
            "INSERT INTO saas_acceptances (account_id, version_id, person_key, member_id, login, \
             role, doc_type, version, language, content_sha256, decision, method, decided_at, \
             client_ip, user_agent, client_type, request_id, event_type, evidence, ends_at) VALUES (",
        );
        ins.bind(d.account_id)
            .push(", ")
            .bind(d.version_id)
            .push(", ")
            .bind(person_key)
            .push(", ")
            .bind(d.member_id)
            .push(", ")
            .bind(login)
            .push(", ")
            .bind(d.role.as_str())
            .push(", ")
            .bind(v.doc_type.as_str())
            .push(", ")
            .bind(v.version.as_str())
            .push(", ")
            .bind(v.language.as_str())
            .push(", ")
            .bind(v.body_sha256.as_str())
            .push(", ")
            .bind(decision)
            .push(", ")
            .bind(method.as_str())
            .push(", ")
            .bind(d.at)
            .push(", ")
            .bind(d.client_ip.as_str())
            .push(", ")
            .bind(d.user_agent.as_str())
            .push(", ")
            .bind(d.client_type.as_str())
            .push(", ")
            .bind(d.request_id.as_str())
            .push(", ")
            .bind(d.event_type.as_str())
            .push(", ")
            .bind(evidence)
            .push(", ")
            .bind(ends_at)
            .push(")");
        // Two nodes deciding at once: the unique key keeps the first; the other finds it.
        ins.push(" ON CONFLICT (account_id, version_id, person_key) DO NOTHING");
        let inserted = ins.query_on(&tx).execute(&mut *tx).await?.rows_affected();
        let record = existing_decision(&mut tx, d.account_id, d.version_id, person_key)
            .await?
            .ok_or_else(|| unknown_version(d.version_id))?;
        if inserted == 0 {
            tx.commit().await?;
            return Ok(Decided::Already(record));
        }
        audit(
            &mut tx,
            d.account_id,
            d.at,
            if d.deemed { "system" } else { d.role.as_str() },
            if d.refuse {
                "agreement_refuse"
            } else {
                "agreement_accept"
            },
            &format!(
                "{} {} {} ({}) request {}",
                decision,
                v.doc_type.as_str(),
                v.version,
                method.as_str(),
                d.request_id
            ),
        )
        .await?;
        if d.refuse && ends_at <= d.at {
            end_for_refusal(
                &mut tx,
                settings,
                d.account_id,
                record.acceptance_id,
                ends_at,
                d.at,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Decided::New(record))
    }

    /// The tenant's decisions (acceptances and refusals), oldest first (SVC-040).
    pub async fn saas_acceptances(&self, account_id: i64) -> Result<Vec<AcceptanceRecord>> {
        let mut sql = Sql::new(&format!(
            "SELECT {ACC_COLUMNS} FROM saas_acceptances WHERE account_id = "
        ));
        sql.bind(account_id).push(" ORDER BY acceptance_id");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        rows.iter().map(acceptance).collect()
    }

    /// Every (tenant, version) with a tenant-level decision, for the nodes' in-memory
    /// deemed-acceptance check (SVC-037): a use event then costs no query.
    pub async fn saas_tenant_decisions(&self) -> Result<Vec<(i64, i64)>> {
        let rows =
            Sql::new("SELECT account_id, version_id FROM saas_acceptances WHERE person_key = 0")
                .query()
                .fetch_all(&self.inner.read)
                .await?;
        rows.iter()
            .map(|r| Ok((get_i64(r, "account_id")?, get_i64(r, "version_id")?)))
            .collect()
    }

    /// SVC-038: ends the service of every tenant whose refusal's end has come (refusals of
    /// retracted versions excepted), each once. Returns the accounts ended now.
    pub async fn saas_end_refused_due(
        &self,
        settings: &SaasSettings,
        now: Millis,
    ) -> Result<Vec<(i64, Timestamp)>> {
        let mut sql = Sql::new(
            "SELECT a.acceptance_id, a.account_id, a.ends_at FROM saas_acceptances a \
             WHERE a.decision = 'refused' AND a.ends_at > 0 AND a.ends_at <= ",
        );
        sql.bind(now).push(
            " AND a.version_id NOT IN (SELECT version_id FROM saas_documents WHERE status = 'retracted') \
             AND NOT EXISTS (SELECT 1 FROM saas_job_runs j WHERE j.account_id = a.account_id \
             AND j.job = 'refusal_end' AND j.run_for = CAST(a.acceptance_id AS TEXT)) \
             ORDER BY a.acceptance_id",
        );
        let due = sql.query().fetch_all(&self.inner.read).await?;
        let mut ended = Vec::new();
        for row in &due {
            let acceptance_id = get_i64(row, "acceptance_id")?;
            let account_id = get_i64(row, "account_id")?;
            let ends_at = get_i64(row, "ends_at")?;
            let mut tx = self.inner.write.begin().await?;
            let change =
                end_for_refusal(&mut tx, settings, account_id, acceptance_id, ends_at, now).await?;
            tx.commit().await?;
            if let Some(c) = change {
                ended.push((account_id, c.at));
            }
        }
        Ok(ended)
    }
}
