//! The tenant's side of agreements and notices (service-agreement.md §3, §20): its notice
//! inbox (SVC-312), the published versions with its decisions (SVC-030), explicit
//! acceptance (SVC-036), refusal (SVC-038) and the evidence bundle (SVC-040). Klaxon
//! routes: Flashduty has no documented equivalent.
//!
//! Self-hosted installs have no agreements or notices (SVC-403): the reads say so, the
//! writes are refused naming the mode. Times are Unix seconds.

use jiff::Timestamp;
use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_saas::agreement::status_at;
use klaxon_store::{AcceptanceRecord, Decided, DocumentVersion, NewDecision, SaasFailure};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Args, Caller};
use crate::state::AppState;

pub const PATHS: &[&str] = &[
    "/account/notice/list",
    "/account/agreement/list",
    "/account/agreement/accept",
    "/account/agreement/refuse",
    "/account/agreement/evidence",
];

/// Notices per page at most.
const MAX_NOTICE_PAGE: i64 = 100;

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    let result = match path {
        "/account/notice/list" => notices(state, caller, args).await,
        "/account/agreement/list" => list(state, caller).await,
        "/account/agreement/accept" => decide(state, caller, args, false).await,
        "/account/agreement/refuse" => decide(state, caller, args, true).await,
        "/account/agreement/evidence" => evidence(state, caller).await,
        _ => return None,
    };
    Some(result.map(Some))
}

fn secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

fn failure(e: SaasFailure) -> ApiError {
    match e {
        SaasFailure::Rule(r) => {
            let (_, code) = r.api_answer();
            let code = match code {
                "InvalidParameter" => ErrorCode::InvalidParameter,
                _ => ErrorCode::BadRequest,
            };
            ApiError::new(code, r.to_string())
        }
        other => ApiError::internal(format!("cannot read or record the agreement: {other}")),
    }
}

fn self_hosted() -> ApiError {
    ApiError::invalid(
        "agreement documents do not apply to a self-hosted install (deployment.mode = \"self_hosted\")",
    )
}

async fn notices(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    if state.saas.is_none() {
        return Ok(json!({"mode": "self_hosted", "items": [], "has_next_page": false}));
    }
    let limit = match args.i64("limit")? {
        None => 20,
        Some(n) if (1..=MAX_NOTICE_PAGE).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "limit must be between 1 and {MAX_NOTICE_PAGE}"
            )));
        }
    };
    let before = match args.i64("before_id")? {
        None => 0,
        Some(n) if n > 0 => n,
        Some(_) => return Err(ApiError::invalid("before_id must be a positive id")),
    };
    let mut rows = state
        .store
        .saas_notices(caller.account_id, before, limit + 1)
        .await
        .map_err(failure)?;
    let has_next = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(20));
    let items: Vec<Value> = rows
        .iter()
        .map(|n| {
            json!({
                "notice_id": n.notice_id,
                "category": n.category,
                "critical": n.critical,
                "channel": n.channel,
                "to_all_tenants": n.account_id == 0,
                "member_id": n.member_id,
                "recipient": n.recipient,
                "template_id": n.template_id,
                "template_version": n.template_version,
                "language": n.language,
                "subject": n.subject,
                "content": n.content,
                "content_sha256": n.content_sha256,
                "sent_at": secs(n.sent_at),
                "deemed_delivered_on": n.deemed_delivered_on,
                "provider_message_id": n.provider_message_id,
                "status": n.status,
                "related": n.related,
            })
        })
        .collect();
    Ok(json!({"items": items, "has_next_page": has_next}))
}

fn decision_json(a: &AcceptanceRecord) -> Value {
    json!({
        "acceptance_id": a.acceptance_id,
        "version_id": a.version_id,
        "doc_type": a.doc_type,
        "version": a.version,
        "language": a.language,
        "content_sha256": a.content_sha256,
        "decision": a.decision,
        "method": a.method,
        "decided_at": secs(a.decided_at),
        "decided_at_ms": a.decided_at,
        "member_id": a.member_id,
        "login": a.login,
        "role": a.role,
        "client_ip": a.client_ip,
        "user_agent": a.user_agent,
        "client_type": a.client_type,
        "request_id": a.request_id,
        "event_type": a.event_type,
        "evidence": a.evidence,
        "service_ends_at": secs(a.ends_at),
    })
}

async fn list(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    if state.saas.is_none() {
        return Ok(json!({"mode": "self_hosted", "items": []}));
    }
    let now = Timestamp::from_millisecond(state.clock.now())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let versions = state.store.saas_documents().await.map_err(failure)?;
    let facts = versions
        .iter()
        .map(DocumentVersion::facts)
        .collect::<Result<Vec<_>, _>>()
        .map_err(failure)?;
    let decisions = state
        .store
        .saas_acceptances(caller.account_id)
        .await
        .map_err(failure)?;
    let items: Vec<Value> = versions
        .iter()
        .zip(&facts)
        .map(|(v, f)| {
            // Tenant-level: the tenant's decision; person-level: the caller's own.
            let person = v.doc_type.level() == klaxon_saas::agreement::Level::Person;
            let mine = decisions.iter().find(|a| {
                a.version_id == v.version_id && (!person || a.member_id == caller.member_id)
            });
            json!({
                "version_id": v.version_id,
                "doc_type": v.doc_type.as_str(),
                "level": match v.doc_type.level() {
                    klaxon_saas::agreement::Level::Tenant => "tenant",
                    klaxon_saas::agreement::Level::Person => "person",
                },
                "version": v.version,
                "language": v.language,
                "status": status_at(f, &facts, now).as_str(),
                "material": v.material,
                "summary": v.summary,
                "published_at": secs(v.published_at),
                "effective_at": secs(v.effective_at),
                "retracted_at": secs(v.retracted_at),
                "body": v.body,
                "body_sha256": v.body_sha256,
                "decision": mine.map(decision_json),
            })
        })
        .collect();
    Ok(json!({"items": items}))
}

async fn decide(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    refuse: bool,
) -> Result<Value, ApiError> {
    let Some(saas) = &state.saas else {
        return Err(self_hosted());
    };
    let version_id = args.required_id("version_id")?;
    // SVC-038: "refuse and stop service" is the owner's choice; acceptance is the owner's or
    // an admin's (SVC-036; the route admits only them).
    if refuse && !caller.actor.is_owner {
        return Err(ApiError::new(
            ErrorCode::AccessDenied,
            "only the account owner can refuse an agreement version and stop the service",
        ));
    }
    let role = if caller.account_key {
        "account_key"
    } else if caller.actor.is_owner {
        "owner"
    } else {
        "admin"
    };
    let d = NewDecision {
        account_id: caller.account_id,
        version_id,
        member_id: caller.member_id,
        role: role.into(),
        refuse,
        deemed: false,
        at: state.clock.now(),
        client_ip: caller.origin.ip.clone(),
        user_agent: caller.origin.user_agent.clone(),
        client_type: if caller.origin.source == "console" {
            "web".into()
        } else {
            "api".into()
        },
        request_id: caller.origin.request_id.clone(),
        event_type: String::new(),
    };
    let decided = state
        .store
        .saas_decide(&saas.settings, &d)
        .await
        .map_err(failure)?;
    saas.deemed.decided(caller.account_id, version_id);
    let (record, new) = match decided {
        Decided::New(r) => (r, true),
        Decided::Already(r) => (r, false),
    };
    if refuse {
        // A refusal that took effect at once changed the state: apply it on this node now.
        let _ = saas.refresh(&state.store).await;
    }
    if !new && (record.decision == "refused") != refuse {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!(
                "this version was already {} on {} ({}); a decision is final",
                record.decision,
                Timestamp::from_millisecond(record.decided_at)
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                record.method
            ),
        ));
    }
    Ok(json!({"recorded_now": new, "decision": decision_json(&record)}))
}

/// SVC-040: the tenant's acceptance history with the exact bytes of every version it
/// decided on and their hashes; `bundle_sha256` covers the canonical JSON of the records
/// and documents. The owner only.
async fn evidence(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    if state.saas.is_none() {
        return Err(self_hosted());
    }
    if !caller.actor.is_owner {
        return Err(ApiError::new(
            ErrorCode::AccessDenied,
            "only the account owner can export the acceptance history",
        ));
    }
    let records = state
        .store
        .saas_acceptances(caller.account_id)
        .await
        .map_err(failure)?;
    let mut documents = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for r in &records {
        if !seen.insert(r.version_id) {
            continue;
        }
        if let Some(v) = state
            .store
            .saas_document(r.version_id)
            .await
            .map_err(failure)?
        {
            let hash = hex::encode(Sha256::digest(v.body.as_bytes()));
            documents.push(json!({
                "version_id": v.version_id,
                "doc_type": v.doc_type.as_str(),
                "version": v.version,
                "language": v.language,
                "body": v.body,
                "body_sha256": v.body_sha256,
                "hash_verified": hash == v.body_sha256,
                "published_at": secs(v.published_at),
                "effective_at": secs(v.effective_at),
                "retracted_at": secs(v.retracted_at),
            }));
        }
    }
    let bundle = json!({
        "account_id": caller.account_id,
        "exported_at": secs(state.clock.now()),
        "records": records.iter().map(decision_json).collect::<Vec<_>>(),
        "documents": documents,
    });
    let canonical = serde_json::to_string(&bundle)
        .map_err(|e| ApiError::internal(format!("cannot encode the bundle: {e}")))?;
    let digest = hex::encode(Sha256::digest(canonical.as_bytes()));
    Ok(json!({"bundle": canonical, "bundle_sha256": digest}))
}
