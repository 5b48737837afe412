//! Ticket sync over the Open API (response.md 1.23, RSP-403…406; docs/ticket-sync.md).
//!
//! - `/ticket-sync/{create,update,delete,list,info}` configure Jira, ServiceNow and
//!   ServiceDesk Plus integrations (a Klaxon extension in the style of `/custom-action/*`: Flashduty configures
//!   them only in its console). The API token, password, API key or client secret is
//!   write-only: answers say `secret_set`. An integration that accepts changes shows its
//!   `push_url`. A ServiceDesk Plus cloud integration exchanges its one-time `oauth_code` when
//!   saved (RSP-407); a refused code saves nothing.
//! - `/ticket-sync/log/list` is the sync log: every step, with its outcome (RSP-405).
//! - `/incident/ticket-sync/do` is the manual trigger, the "More actions" entry named after
//!   the integration: it queues the create, which the sync worker sends.
//!
//! Managing needs `Integrations Manage` (the route table) and, for an existing integration,
//! its data permission (RSP-403, RSP-527).

use std::collections::BTreeMap;

use klaxon_core::condition::{Filter, FilterGroups};
use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::model::{Incident, Severity};
use klaxon_core::permissions::{self, DataScope, ObjectKind, Point};
use klaxon_core::ticket_sync::{
    self as rules, FILTER_CONTEXT, FieldMap, MAX_NAME_CHARS, System, check_field_mapping,
};
use klaxon_store::{TicketDraft, TicketIntegration, TicketJob, TicketSettings};
use serde_json::{Value, json};

use super::access::denied;
use super::teams::store_err;
use super::webhooks::check_endpoint;
use super::{Args, Caller};
use crate::state::AppState;
use crate::wire;

pub const PATHS: &[&str] = &[
    "/ticket-sync/create",
    "/ticket-sync/update",
    "/ticket-sync/delete",
    "/ticket-sync/list",
    "/ticket-sync/info",
    "/ticket-sync/log/list",
    "/incident/ticket-sync/do",
];

/// Sync log page size bounds.
const LOG_DEFAULT: i64 = 20;
const LOG_MAX: i64 = 100;
/// Longest setting value (URL, username, project key, issue type, secret).
const MAX_SETTING_BYTES: usize = 2048;

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    Some(match path {
        "/ticket-sync/create" => create(state, caller, args).await.map(Some),
        "/ticket-sync/update" => update(state, caller, args).await.map(Some),
        "/ticket-sync/delete" => delete(state, caller, args).await.map(|()| None),
        "/ticket-sync/list" => list(state, caller, args).await.map(Some),
        "/ticket-sync/info" => info(state, caller, args).await.map(Some),
        "/ticket-sync/log/list" => log(state, caller, args).await.map(Some),
        "/incident/ticket-sync/do" => start(state, caller, args).await.map(Some),
        _ => return None,
    })
}

/// The inbound push URL of a ServiceNow or ServiceDesk Plus integration (RSP-406, RSP-407).
pub(crate) fn push_url(state: &AppState, t: &TicketIntegration) -> String {
    format!(
        "{}/ticket-sync/{}/push?integration_key={}",
        state.base_url, t.system, t.push_token
    )
}

fn integration_json(state: &AppState, t: &TicketIntegration) -> Value {
    let mut v = json!({
        "integration_id": t.integration_id,
        "system": t.system,
        "name": t.name,
        "team_id": t.team_id,
        "channel_ids": t.channel_ids,
        "direction": t.direction,
        "trigger": t.trigger,
        "filters": t.filters,
        "platform": t.settings.platform,
        "base_url": t.settings.base_url,
        "username": t.settings.username,
        "secret_set": !t.secret.is_empty(),
        "severity_mapping": t.severity_mapping,
        "field_mapping": t.field_mapping,
        "status": t.status,
        "creator_id": t.creator_id,
        "updated_by": t.updated_by,
        "created_at": wire::secs(t.created_at),
        "updated_at": wire::secs(t.updated_at),
    });
    if let Value::Object(m) = &mut v {
        if t.system == "jira" {
            m.insert("project_key".into(), json!(t.settings.project_key));
            m.insert("issue_type".into(), json!(t.settings.issue_type));
        }
        if t.system == "servicedeskplus" {
            let st = &t.settings;
            for (k, v) in [
                ("template", &st.template),
                ("requester", &st.requester),
                ("priority_source", &st.priority_source),
                ("assignee_label", &st.assignee_label),
                ("assignee_kind", &st.assignee_kind),
                ("client_id", &st.client_id),
                ("auth_url", &st.auth_url),
                ("redirect_uri", &st.redirect_uri),
            ] {
                m.insert(k.into(), json!(v));
            }
            m.insert("assignee_mapping".into(), json!(st.assignee_mapping));
        }
        if rules::inbound(&t.direction) {
            m.insert("push_url".into(), json!(push_url(state, t)));
        }
    }
    v
}

fn not_found(id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("integration_id: ticket sync {id} not found"),
    )
}

/// A text setting: the body's value (trimmed), else `base`'s.
fn setting(args: &Args, name: &str, base: Option<&str>) -> Result<String, ApiError> {
    let v = match args.str(name)? {
        Some(s) => s.trim().to_string(),
        None => base.unwrap_or_default().to_string(),
    };
    if v.len() > MAX_SETTING_BYTES {
        return Err(ApiError::invalid(format!(
            "{name}: at most {MAX_SETTING_BYTES} bytes"
        )));
    }
    Ok(v)
}

fn required(name: &str, v: &str) -> Result<(), ApiError> {
    if v.is_empty() {
        return Err(ApiError::invalid(format!("{name}: required")));
    }
    Ok(())
}

/// Reads and validates the draft; absent fields keep `base`'s values (update) or defaults.
async fn draft(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    base: Option<&TicketIntegration>,
) -> Result<TicketDraft, ApiError> {
    let system_name = match base {
        Some(b) => b.system.clone(),
        None => args.str("system")?.unwrap_or_default(),
    };
    let system = System::parse(&system_name).ok_or_else(|| {
        ApiError::invalid(format!(
            "system: {system_name:?} is not jira, servicenow or servicedeskplus"
        ))
    })?;
    let name = match args.str("name")? {
        Some(n) => n.trim().to_string(),
        None => base.map(|b| b.name.clone()).unwrap_or_default(),
    };
    if name.is_empty() {
        return Err(ApiError::invalid("name: required"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::invalid(format!(
            "name: at most {MAX_NAME_CHARS} characters"
        )));
    }
    let channel_ids = if args.raw().get("channel_ids").is_some_and(|v| !v.is_null()) {
        let mut ids = args.i64_list("channel_ids")?;
        ids.sort_unstable();
        ids.dedup();
        ids
    } else {
        base.map(|b| b.channel_ids.clone()).unwrap_or_default()
    };
    // RSP-405: one channel. ServiceNow creates its inbound incidents in one channel too.
    if channel_ids.len() != 1 {
        return Err(ApiError::invalid("channel_ids: exactly one channel"));
    }
    for id in &channel_ids {
        let known = state
            .store
            .channel_name(caller.account_id, *id)
            .await
            .map_err(store_err)?;
        if known.is_none() {
            return Err(ApiError::invalid(format!(
                "channel_ids: channel {id} not found"
            )));
        }
    }
    let team_id = match args.i64("team_id")? {
        Some(t) if t < 0 => return Err(ApiError::invalid("team_id: must be 0 or a team id")),
        Some(t) => t,
        None => base.map_or(0, |b| b.team_id),
    };
    let direction = match args.str("direction")? {
        Some(d) => d,
        None => base.map_or_else(|| "to".to_string(), |b| b.direction.clone()),
    };
    if !rules::direction_valid(system, &direction) {
        return Err(ApiError::invalid(match system {
            System::Jira => format!("direction: {direction:?}: Jira sync is one way, to Jira"),
            System::ServiceNow | System::ServiceDeskPlus => {
                format!("direction: {direction:?} is not to, from or two_way")
            }
        }));
    }
    let trigger = match args.str("trigger")? {
        Some(t) if t == "auto" || t == "manual" => t,
        Some(t) => {
            return Err(ApiError::invalid(format!(
                "trigger: {t:?} is not auto or manual"
            )));
        }
        None => base.map_or_else(|| "manual".to_string(), |b| b.trigger.clone()),
    };
    let filters: FilterGroups = match args.raw().get("filters") {
        None | Some(Value::Null) => base.map(|b| b.filters.clone()).unwrap_or_default(),
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
            ApiError::invalid("filters: must be a list of condition groups [[{key, oper, vals}]]")
        })?,
    };
    Filter::compile(&filters, FILTER_CONTEXT).map_err(|e| ApiError::from(e.in_field("filters")))?;
    let b = base.map(|b| &b.settings);
    let mut settings = TicketSettings {
        platform: setting(args, "platform", b.map(|s| s.platform.as_str()))?,
        base_url: setting(args, "base_url", b.map(|s| s.base_url.as_str()))?,
        username: setting(args, "username", b.map(|s| s.username.as_str()))?,
        project_key: setting(args, "project_key", b.map(|s| s.project_key.as_str()))?,
        issue_type: setting(args, "issue_type", b.map(|s| s.issue_type.as_str()))?,
        template: setting(args, "template", b.map(|s| s.template.as_str()))?,
        requester: setting(args, "requester", b.map(|s| s.requester.as_str()))?,
        priority_source: setting(
            args,
            "priority_source",
            b.map(|s| s.priority_source.as_str()),
        )?,
        assignee_label: setting(args, "assignee_label", b.map(|s| s.assignee_label.as_str()))?,
        assignee_kind: setting(args, "assignee_kind", b.map(|s| s.assignee_kind.as_str()))?,
        assignee_mapping: match args.raw().get("assignee_mapping") {
            None | Some(Value::Null) => b.map(|s| s.assignee_mapping.clone()).unwrap_or_default(),
            Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
                ApiError::invalid("assignee_mapping: must map label values to names")
            })?,
        },
        client_id: setting(args, "client_id", b.map(|s| s.client_id.as_str()))?,
        auth_url: setting(args, "auth_url", b.map(|s| s.auth_url.as_str()))?,
        redirect_uri: setting(args, "redirect_uri", b.map(|s| s.redirect_uri.as_str()))?,
    };
    check_endpoint(&settings.base_url)
        .map_err(|e| ApiError::invalid(e.message.replacen("endpoint", "base_url", 1)))?;
    settings.base_url = settings.base_url.trim_end_matches('/').to_string();
    if system != System::ServiceDeskPlus {
        required("username", &settings.username)?;
    }
    match system {
        System::Jira => {
            if settings.platform.is_empty() {
                settings.platform = "cloud".into();
            }
            if settings.platform != "cloud" && settings.platform != "server" {
                return Err(ApiError::invalid(format!(
                    "platform: {:?} is not cloud or server",
                    settings.platform
                )));
            }
            required("project_key", &settings.project_key)?;
            required("issue_type", &settings.issue_type)?;
        }
        System::ServiceNow => {
            settings.platform.clear();
            settings.project_key.clear();
            settings.issue_type.clear();
        }
        System::ServiceDeskPlus => sdp_settings(&mut settings)?,
    }
    if system != System::ServiceDeskPlus {
        // ServiceDesk Plus settings mean nothing to the other systems.
        settings = TicketSettings {
            platform: settings.platform,
            base_url: settings.base_url,
            username: settings.username,
            project_key: settings.project_key,
            issue_type: settings.issue_type,
            ..TicketSettings::default()
        };
    }
    let secret = setting(args, "secret", base.map(|b| b.secret.as_str()))?;
    required("secret", &secret)?;
    let severity_mapping: BTreeMap<String, String> = match args.raw().get("severity_mapping") {
        None | Some(Value::Null) => base.map(|b| b.severity_mapping.clone()).unwrap_or_default(),
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
            ApiError::invalid("severity_mapping: must map Critical, Warning, Info to strings")
        })?,
    };
    // ServiceDesk Plus: a priority from a label or field maps that source's values.
    let by_severity = system != System::ServiceDeskPlus
        || settings.priority_source.is_empty()
        || settings.priority_source == "severity";
    for (k, v) in &severity_mapping {
        if by_severity && k.parse::<Severity>().is_err() {
            return Err(ApiError::invalid(format!(
                "severity_mapping: {k:?} is not Critical, Warning or Info"
            )));
        }
        if v.len() > 128 {
            return Err(ApiError::invalid(format!(
                "severity_mapping.{k}: at most 128 bytes"
            )));
        }
    }
    let field_mapping: Vec<FieldMap> = match args.raw().get("field_mapping") {
        None | Some(Value::Null) => base.map(|b| b.field_mapping.clone()).unwrap_or_default(),
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
            ApiError::invalid("field_mapping: must be a list of {source, target_field}")
        })?,
    };
    check_field_mapping(&field_mapping).map_err(ApiError::invalid)?;
    let status = match args.str("status")? {
        Some(s) if s == "enabled" || s == "disabled" => s,
        Some(s) => {
            return Err(ApiError::invalid(format!(
                "status: {s:?} is not enabled or disabled"
            )));
        }
        None => base.map_or_else(|| "enabled".to_string(), |b| b.status.clone()),
    };
    let oauth = if system == System::ServiceDeskPlus && settings.platform == "cloud" {
        let code = args.str("oauth_code")?.map(|c| c.trim().to_string());
        let has_tokens = match base {
            Some(b) => state
                .store
                .ticket_tokens(b.account_id, b.integration_id)
                .await
                .map_err(store_err)?
                .is_some(),
            None => false,
        };
        match code.filter(|c| !c.is_empty()) {
            Some(code) => {
                let client = klaxon_notify::tickets::TicketClient::new(
                    state.config.notify.allow_private_targets
                        || state.config.notify.webhook_private_targets,
                )
                .map_err(ApiError::internal)?;
                let now = state.clock.now();
                let tokens =
                    crate::ticket_sync_sdp::exchange_code(&client, &settings, &secret, &code, now)
                        .await
                        .map_err(ApiError::invalid)?;
                Some(tokens)
            }
            None if has_tokens => None,
            None => {
                return Err(ApiError::invalid(
                    "oauth_code: required for a cloud integration (a code is valid for 10 minutes)",
                ));
            }
        }
    } else {
        None
    };
    Ok(TicketDraft {
        oauth,
        system: system.as_str().to_string(),
        name,
        team_id,
        channel_ids,
        direction,
        trigger,
        filters,
        settings,
        secret,
        severity_mapping,
        field_mapping,
        status,
    })
}

/// RSP-407 settings of ServiceDesk Plus: platform (`onprem` by default), the cloud's OAuth
/// client, the priority source and the assignee label.
fn sdp_settings(settings: &mut TicketSettings) -> Result<(), ApiError> {
    use klaxon_core::ticket_sync_sdp as sdp;
    if settings.platform.is_empty() {
        settings.platform = "onprem".into();
    }
    if !sdp::platform_valid(&settings.platform) {
        return Err(ApiError::invalid(format!(
            "platform: {:?} is not cloud or onprem",
            settings.platform
        )));
    }
    settings.username.clear();
    settings.project_key.clear();
    settings.issue_type.clear();
    if settings.platform == "cloud" {
        required("client_id", &settings.client_id)?;
        if settings.auth_url.is_empty() {
            settings.auth_url = sdp::DEFAULT_AUTH_URL.into();
        }
        check_endpoint(&settings.auth_url)
            .map_err(|e| ApiError::invalid(e.message.replacen("endpoint", "auth_url", 1)))?;
        settings.auth_url = settings.auth_url.trim_end_matches('/').to_string();
    } else {
        settings.client_id.clear();
        settings.auth_url.clear();
        settings.redirect_uri.clear();
    }
    if settings.priority_source.is_empty() {
        settings.priority_source = "severity".into();
    }
    sdp::check_priority_source(&settings.priority_source).map_err(ApiError::invalid)?;
    if !settings.assignee_label.is_empty() && settings.assignee_kind.is_empty() {
        settings.assignee_kind = "technician".into();
    }
    sdp::check_assignee(&settings.assignee_label, &settings.assignee_kind)
        .map_err(ApiError::invalid)?;
    if settings.assignee_label.is_empty() {
        settings.assignee_kind.clear();
        settings.assignee_mapping.clear();
    }
    for (k, v) in &settings.assignee_mapping {
        if k.is_empty() || v.trim().is_empty() || v.len() > 256 {
            return Err(ApiError::invalid(format!(
                "assignee_mapping.{k}: a label value and a name of 1 to 256 bytes"
            )));
        }
    }
    Ok(())
}

/// RSP-403 / RSP-527: the data permission on an existing integration.
async fn check_data(
    state: &AppState,
    caller: &Caller,
    t: &TicketIntegration,
) -> Result<(), ApiError> {
    let scope = DataScope {
        kind: ObjectKind::SharedIntegration,
        creator_id: t.creator_id,
        team_ids: [t.team_id].into_iter().filter(|t| *t != 0).collect(),
    };
    let my_teams = state
        .store
        .member_team_ids(caller.account_id, caller.member_id)
        .await
        .map_err(store_err)?;
    permissions::allowed(
        &caller.actor,
        Point::IntegrationsManage,
        Some((&scope, &my_teams)),
    )
    .map_err(|d| denied(&d))
}

async fn existing(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> Result<TicketIntegration, ApiError> {
    state
        .store
        .ticket_sync(caller.account_id, id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found(id))
}

async fn create(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let draft = draft(state, caller, args, None).await?;
    let token = crate::state::random_hex(24);
    let created = state
        .store
        .create_ticket_sync(
            caller.account_id,
            &draft,
            &token,
            caller.member_id,
            state.clock.now(),
        )
        .await
        .map_err(store_err)?;
    Ok(integration_json(state, &created))
}

async fn update(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    let base = existing(state, caller, id).await?;
    check_data(state, caller, &base).await?;
    let draft = draft(state, caller, args, Some(&base)).await?;
    let updated = state
        .store
        .update_ticket_sync(
            caller.account_id,
            id,
            &draft,
            caller.member_id,
            state.clock.now(),
        )
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found(id))?;
    Ok(integration_json(state, &updated))
}

async fn delete(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let id = args.required_id("integration_id")?;
    let base = existing(state, caller, id).await?;
    check_data(state, caller, &base).await?;
    if !state
        .store
        .delete_ticket_sync(caller.account_id, id)
        .await
        .map_err(store_err)?
    {
        return Err(not_found(id));
    }
    Ok(())
}

async fn list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let channel_id = args.i64("channel_id")?.filter(|c| *c > 0);
    let items: Vec<Value> = state
        .store
        .list_ticket_syncs(caller.account_id, channel_id)
        .await
        .map_err(store_err)?
        .iter()
        .map(|t| integration_json(state, t))
        .collect();
    let total = items.len();
    Ok(json!({"items": items, "total": total, "has_next_page": false}))
}

async fn info(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    Ok(integration_json(state, &existing(state, caller, id).await?))
}

fn job_json(j: &TicketJob) -> Value {
    json!({
        "log_id": j.seq,
        "integration_id": j.integration_id,
        "incident_id": j.incident_id,
        "op": j.op,
        "detail": j.payload,
        "person_id": j.person_id,
        "status": j.status,
        "attempts": j.attempts,
        "response_status": j.response_status,
        "error": j.last_error,
        "external_key": j.external_key,
        "created_at": wire::secs(j.created_at),
        "finished_at": wire::secs(j.finished_at),
    })
}

/// RSP-405: the sync log, newest first; `search_after_ctx` continues a page.
async fn log(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    existing(state, caller, id).await?;
    let limit = args
        .i64("limit")?
        .filter(|l| *l > 0)
        .unwrap_or(LOG_DEFAULT)
        .min(LOG_MAX);
    let before = match args.str("search_after_ctx")?.filter(|s| !s.is_empty()) {
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ApiError::invalid("search_after_ctx: not a cursor of this list"))?,
        None => 0,
    };
    let incident_id = args.str("incident_id")?.filter(|s| !s.is_empty());
    let mut rows = state
        .store
        .ticket_sync_log(
            caller.account_id,
            id,
            incident_id.as_deref(),
            before,
            limit + 1,
        )
        .await
        .map_err(store_err)?;
    let has_next = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let mut out = json!({
        "items": rows.iter().map(job_json).collect::<Vec<_>>(),
        "has_next_page": has_next,
    });
    if has_next
        && let Some(last) = rows.last()
        && let Value::Object(m) = &mut out
    {
        m.insert("search_after_ctx".into(), json!(last.seq.to_string()));
    }
    Ok(out)
}

/// `/incident/ticket-sync/do` (RSP-405 manual trigger; RSP-022: allowed on a Closed
/// incident). Queues the create; the sync log shows how it went.
async fn start(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let incident_id = args
        .str("incident_id")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("incident_id: required"))?;
    let integration_id = args.required_id("integration_id")?;
    let inc = state
        .store
        .incident(caller.account_id, &incident_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ResourceNotFound,
                format!("incident_id: incident {incident_id} not found"),
            )
        })?;
    let t = existing(state, caller, integration_id).await?;
    let bad = |m: String| ApiError::new(ErrorCode::BadRequest, m);
    if t.status != "enabled" {
        return Err(bad(format!(
            "integration_id: ticket sync {} is disabled",
            t.name
        )));
    }
    if !rules::outbound(&t.direction) {
        return Err(bad(format!(
            "integration_id: ticket sync {} only receives changes",
            t.name
        )));
    }
    if inc.channel_id == 0 || !t.channel_ids.contains(&inc.channel_id) {
        return Err(bad(format!(
            "integration_id: ticket sync {} is not bound to this incident's channel",
            t.name
        )));
    }
    if !state
        .store
        .queue_ticket_create(
            caller.account_id,
            integration_id,
            &incident_id,
            caller.member_id,
            state.clock.now(),
        )
        .await
        .map_err(store_err)?
    {
        return Err(bad(format!(
            "incident_id: the incident already has a ticket of {} (or one is being created)",
            t.name
        )));
    }
    Ok(json!({"message": format!("ticket sync {} queued", t.name)}))
}

/// What an incident's detail page shows: the manual ticket syncs of its channel (the "More
/// actions" entries, by name) and the tickets it has.
pub(super) async fn incident_tickets(
    state: &AppState,
    inc: &Incident,
) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
    if inc.channel_id == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let all = state
        .store
        .list_ticket_syncs(inc.account_id, None)
        .await
        .map_err(store_err)?;
    let links = state
        .store
        .ticket_links(inc.account_id, &inc.incident_id)
        .await
        .map_err(store_err)?;
    // An integration that already has the incident's ticket is not offered again (its
    // manual start would be refused).
    let actions = all
        .iter()
        .filter(|t| {
            t.status == "enabled"
                && t.trigger == "manual"
                && rules::outbound(&t.direction)
                && t.channel_ids.contains(&inc.channel_id)
                && !links.iter().any(|l| l.integration_id == t.integration_id)
        })
        .map(|t| json!({"integration_id": t.integration_id, "name": t.name, "system": t.system}))
        .collect();
    let tickets = links
        .iter()
        .map(|l| {
            let system = all
                .iter()
                .find(|t| t.integration_id == l.integration_id)
                .map(|t| t.system.clone())
                .unwrap_or_default();
            json!({
                "integration_id": l.integration_id,
                "system": system,
                "external_key": l.external_key,
                "external_url": l.external_url,
            })
        })
        .collect();
    Ok((actions, tickets))
}
