//! Incident actions over the Open API (openapi-compat.md 2.1; response.md §2.2–§2.11):
//! create, acknowledge, unacknowledge, close, reopen, snooze, wake, comment, edits, reassign,
//! manual escalation, add responders, the timeline (`/incident/feed`) and the notification
//! outbox (`/incident/notification/list`, a Klaxon extension).
//!
//! The multi-incident actions (`incident_ids`, 1..100) handle each incident on its own, in the
//! given order (RSP-121). When every one succeeds the answer has no `data`; when one id was
//! given and it failed, the answer is that error; otherwise `data.items` reports each incident
//! as `{incident_id, ok, error?: {code, message}}`.

use std::collections::BTreeMap;
use std::str::FromStr;

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::ids::{incident_num, object_id};
use klaxon_core::model::{Incident, Labels, Progress, Severity, Status};
use klaxon_core::response::{ActionError, DirectTargets, Engine, Response};
use klaxon_store::{ActionContext, ActionResult, StoreError};
use serde_json::{Value, json};

use super::{Args, Caller};
use crate::state::AppState;

pub const PATHS: &[&str] = &[
    "/incident/create",
    "/incident/ack",
    "/incident/unack",
    "/incident/resolve",
    "/incident/close",
    "/incident/reopen",
    "/incident/snooze",
    "/incident/wake",
    "/incident/comment",
    "/incident/reset",
    "/incident/field/reset",
    "/incident/assign",
    "/incident/merge",
    "/alert/merge",
    "/incident/responder/add",
    "/incident/feed",
    "/incident/past/list",
    "/incident/notification/list",
];

/// Handles `path` if it is one of [`PATHS`].
pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    Some(match path {
        "/incident/create" => create(state, caller, args).await.map(Some),
        "/incident/ack" => batch(state, caller, args, Op::Ack).await,
        "/incident/unack" => batch(state, caller, args, Op::Unack).await,
        "/incident/resolve" | "/incident/close" => close(state, caller, args).await,
        "/incident/reopen" => {
            let reason = args.str("reason").ok().flatten().unwrap_or_default();
            batch(state, caller, args, Op::Reopen(reason)).await
        }
        "/incident/snooze" => snooze(state, caller, args).await,
        "/incident/wake" => batch(state, caller, args, Op::Wake).await,
        "/incident/comment" => comment(state, caller, args).await,
        "/incident/reset" => reset(state, caller, args).await,
        "/incident/field/reset" => field_reset(state, caller, args).await,
        "/incident/assign" => assign(state, caller, args).await,
        "/incident/merge" => merge(state, caller, args).await.map(|()| None),
        "/alert/merge" => merge_alerts(state, caller, args).await.map(|()| None),
        "/incident/responder/add" => add_responders(state, caller, args).await,
        "/incident/feed" => feed(state, caller, args).await.map(Some),
        "/incident/past/list" => past(state, caller, args).await.map(Some),
        "/incident/notification/list" => outbox(state, caller, args).await.map(Some),
        _ => return None,
    })
}

fn store_err(e: StoreError) -> ApiError {
    ApiError::internal(e.to_string())
}

fn refused(e: ActionError) -> ApiError {
    match e {
        // openapi-compat.md 1.5: failed_precondition → BadRequest, invalid_argument →
        // InvalidParameter.
        ActionError::FailedPrecondition(m) => ApiError::new(ErrorCode::BadRequest, m),
        ActionError::InvalidArgument(m) => ApiError::invalid(m),
    }
}

fn incident_not_found(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("incident {id} not found"),
    )
}

/// `incident_ids` (1..100), or a single `incident_id`.
fn incident_ids(args: &Args) -> Result<Vec<String>, ApiError> {
    let mut ids = args.str_list("incident_ids")?;
    if ids.is_empty()
        && let Some(id) = args.str("incident_id")?
    {
        ids.push(id);
    }
    if ids.is_empty() {
        return Err(ApiError::invalid("incident_ids is required"));
    }
    if ids.len() > 100 {
        return Err(ApiError::invalid(
            "incident_ids must list at most 100 incidents",
        ));
    }
    Ok(ids)
}

fn required_incident(args: &Args) -> Result<String, ApiError> {
    args.str("incident_id")?
        .ok_or_else(|| ApiError::invalid("incident_id is required"))
}

/// One action, applied to each incident of a batch.
#[derive(Clone)]
enum Op {
    Ack,
    Unack,
    Close {
        root_cause: Option<String>,
        resolution: Option<String>,
    },
    Reopen(String),
    Snooze(i64),
    Wake,
    Comment {
        text: String,
        mute_reply: bool,
    },
}

impl Op {
    /// `from` is the entry point the timeline records (RSP-036, RSP-050).
    fn apply(
        self,
        e: &mut Engine<'_>,
        inc: &mut Incident,
        ctx: &ActionContext<'_>,
        actor: i64,
        from: &'static str,
    ) -> Result<(), ActionError> {
        match self {
            Op::Ack => e.acknowledge(inc, actor, from, ctx.rule),
            Op::Unack => e.unacknowledge(inc, actor, from, ctx.rule),
            Op::Close {
                root_cause,
                resolution,
            } => {
                e.close(inc, actor, from, root_cause, resolution);
                Ok(())
            }
            Op::Reopen(reason) => e.reopen(inc, actor, &reason, ctx.rule, ctx.rules, &ctx.matching),
            Op::Snooze(minutes) => e.snooze(inc, actor, minutes, from, ctx.rule),
            Op::Wake => e.wake(inc, actor, ctx.rule),
            Op::Comment { text, mute_reply } => e.comment(inc, actor, &text, mute_reply),
        }
    }
}

/// RSP-036 / RSP-050: the `from` of an action: `card` when it was pressed on an IM app card
/// (the interactivity endpoint calls with that origin), `voice` for a keypress during a call
/// (RSP-314), `sms` for an SMS reply and `email` for an e-mail's one-click link
/// (docs/notifications.md), `console` for the console and the API.
fn entry_point(caller: &Caller) -> &'static str {
    match caller.origin.source {
        crate::audit::SOURCE_CARD => "card",
        crate::audit::SOURCE_WCARD => "wcard",
        crate::audit::SOURCE_VOICE => "voice",
        crate::audit::SOURCE_SMS => "sms",
        crate::audit::SOURCE_LINK => "email",
        _ => "console",
    }
}

async fn batch(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    op: Op,
) -> Result<Option<Value>, ApiError> {
    let ids = incident_ids(args)?;
    let from = entry_point(caller);
    let mut results: Vec<(String, Result<(), ApiError>)> = Vec::new();
    for id in ids {
        let op = op.clone();
        let actor = caller.member_id;
        let result = state
            .store
            .incident_action(
                caller.account_id,
                &id,
                state.clock.now(),
                move |e, inc, ctx| op.apply(e, inc, ctx, actor, from),
            )
            .await
            .map_err(store_err)?;
        let outcome = match result {
            ActionResult::Done => Ok(()),
            ActionResult::NotFound => Err(incident_not_found(&id)),
            ActionResult::Refused(e) => Err(refused(e)),
        };
        results.push((id, outcome));
    }
    if results.iter().all(|(_, r)| r.is_ok()) {
        return Ok(None);
    }
    if results.len() == 1
        && let Some((_, Err(e))) = results.pop()
    {
        return Err(e);
    }
    let items: Vec<Value> = results
        .into_iter()
        .map(|(id, r)| match r {
            Ok(()) => json!({"incident_id": id, "ok": true}),
            Err(e) => json!({
                "incident_id": id,
                "ok": false,
                "error": {"code": e.code.as_str(), "message": e.message},
            }),
        })
        .collect();
    Ok(Some(json!({ "items": items })))
}

/// Optional Markdown text of at most `max` characters.
fn text(args: &Args, name: &str, max: usize) -> Result<Option<String>, ApiError> {
    let v = args.str(name)?;
    if let Some(t) = &v
        && t.chars().count() > max
    {
        return Err(ApiError::invalid(format!(
            "{name} must be at most {max} characters"
        )));
    }
    Ok(v)
}

async fn close(state: &AppState, caller: &Caller, args: &Args) -> Result<Option<Value>, ApiError> {
    let op = Op::Close {
        root_cause: text(args, "root_cause", 6144)?,
        resolution: text(args, "resolution", 6144)?,
    };
    batch(state, caller, args, op).await
}

async fn snooze(state: &AppState, caller: &Caller, args: &Args) -> Result<Option<Value>, ApiError> {
    let minutes = args
        .i64("minutes")?
        .ok_or_else(|| ApiError::invalid("minutes is required"))?;
    if !(1..=1440).contains(&minutes) {
        return Err(ApiError::invalid("minutes must be between 1 and 1440"));
    }
    batch(state, caller, args, Op::Snooze(minutes)).await
}

async fn comment(
    state: &AppState,
    caller: &Caller,
    args: &Args,
) -> Result<Option<Value>, ApiError> {
    let text = args.str("comment")?.unwrap_or_default();
    let n = text.trim().chars().count();
    if n == 0 || n > 1024 {
        return Err(ApiError::invalid(
            "comment must be 1 to 1024 characters after trimming",
        ));
    }
    let mute_reply = args.bool("mute_reply")?.unwrap_or(false);
    batch(state, caller, args, Op::Comment { text, mute_reply }).await
}

async fn one(
    state: &AppState,
    caller: &Caller,
    id: &str,
    f: impl FnOnce(&mut Engine<'_>, &mut Incident, &ActionContext<'_>) -> Result<(), ActionError> + Send,
) -> Result<Option<Value>, ApiError> {
    match state
        .store
        .incident_action(caller.account_id, id, state.clock.now(), f)
        .await
        .map_err(store_err)?
    {
        ActionResult::Done => Ok(None),
        ActionResult::NotFound => Err(incident_not_found(id)),
        ActionResult::Refused(e) => Err(refused(e)),
    }
}

/// `/incident/reset`: the given text fields and severity, as one change (RSP-081 … RSP-083).
/// A text field sent as `""` clears it (title excepted: it cannot be empty).
async fn reset(state: &AppState, caller: &Caller, args: &Args) -> Result<Option<Value>, ApiError> {
    let id = required_incident(args)?;
    let mut edits: Vec<(&'static str, String)> = Vec::new();
    for field in ["title", "description", "impact", "root_cause", "resolution"] {
        match args.raw().get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if field == "title" && s.is_empty() => {}
            Some(Value::String(s)) => edits.push((field, s.clone())),
            Some(_) => return Err(ApiError::invalid(format!("{field} must be a string"))),
        }
    }
    let severity = match args.str("incident_severity")? {
        Some(s) => Some(Severity::from_str(&s).map_err(|()| {
            ApiError::invalid("incident_severity must be Critical, Warning or Info")
        })?),
        None => None,
    };
    let actor = caller.member_id;
    one(state, caller, &id, move |e, inc, _| {
        for (field, value) in &edits {
            e.edit_text(inc, actor, field, value)?;
        }
        if let Some(sev) = severity {
            e.edit_severity(inc, actor, sev);
        }
        Ok(())
    })
    .await
}

/// `/incident/field/reset` (RSP-084): `field_value` typed per the definition; `null` removes.
async fn field_reset(
    state: &AppState,
    caller: &Caller,
    args: &Args,
) -> Result<Option<Value>, ApiError> {
    let id = required_incident(args)?;
    let name = args
        .str("field_name")?
        .ok_or_else(|| ApiError::invalid("field_name is required"))?;
    let def = super::fields::find(state, caller, None, Some(&name))
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ResourceNotFound,
                format!("custom field {name} not found"),
            )
        })?;
    let value = args
        .raw()
        .get("field_value")
        .cloned()
        .unwrap_or(Value::Null);
    let actor = caller.member_id;
    one(state, caller, &id, move |e, inc, _| {
        e.set_field(inc, actor, &def, &value)
    })
    .await
}

/// `assigned_to{person_ids, emails, schedule_to_role_ids}` as direct targets.
fn direct_targets(v: &Value) -> Result<DirectTargets, ApiError> {
    let ids = |name: &str| -> Result<Vec<i64>, ApiError> {
        match v.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_i64().filter(|id| *id > 0).ok_or_else(|| {
                        ApiError::invalid(format!("assigned_to.{name} must list positive ids"))
                    })
                })
                .collect(),
            Some(_) => Err(ApiError::invalid(format!(
                "assigned_to.{name} must be an array"
            ))),
        }
    };
    let person_ids = ids("person_ids")?;
    if person_ids.len() > 100 {
        return Err(ApiError::invalid(
            "assigned_to.person_ids must list at most 100 people",
        ));
    }
    let emails = match v.get("emails") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::invalid("assigned_to.emails must list strings"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ApiError::invalid("assigned_to.emails must be an array")),
    };
    let schedule_to_role_ids: BTreeMap<i64, Vec<i64>> = match v.get("schedule_to_role_ids") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(m) => serde_json::from_value(m.clone()).map_err(|_| {
            ApiError::invalid(
                "assigned_to.schedule_to_role_ids must map schedule ids to role id lists",
            )
        })?,
    };
    Ok(DirectTargets {
        person_ids,
        emails,
        schedule_to_role_ids,
    })
}

/// RSP-011, RSP-012. Without `assigned_to` the incident is created unassigned (the API is
/// lenient where the console requires a choice).
async fn create(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let severity = args
        .str("incident_severity")?
        .ok_or_else(|| ApiError::invalid("incident_severity is required"))?;
    let severity = Severity::from_str(&severity)
        .map_err(|()| ApiError::invalid("incident_severity must be Critical, Warning or Info"))?;
    let title = args
        .str("title")?
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::invalid("title is required"))?;
    if title.chars().count() > 512 {
        return Err(ApiError::invalid("title must be at most 512 characters"));
    }
    let description = text(args, "description", 6144)?.unwrap_or_default();
    let channel_id = args.i64("channel_id")?.unwrap_or(0);
    if channel_id < 0 {
        return Err(ApiError::invalid("channel_id must not be negative"));
    }
    // RSP-011, RSP-014: explicit values, checked against the definitions; defaults fill the
    // rest when the incident is stored.
    let mut field_values: BTreeMap<String, Value> = BTreeMap::new();
    match args.raw().get("fields") {
        None | Some(Value::Null) => {}
        Some(Value::Object(given)) => {
            let defs = state
                .store
                .custom_fields(caller.account_id)
                .await
                .map_err(store_err)?;
            for (name, value) in given {
                let def = defs.iter().find(|d| &d.field_name == name).ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::ResourceNotFound,
                        format!("custom field {name} not found"),
                    )
                })?;
                let value = klaxon_core::response::fields::check_value(def, value)
                    .map_err(|e| ApiError::invalid(format!("fields.{name}: {}", e.message)))?;
                if !value.is_null() {
                    field_values.insert(name.clone(), value);
                }
            }
        }
        Some(_) => return Err(ApiError::invalid("fields must be an object")),
    }
    let assigned = args
        .raw()
        .get("assigned_to")
        .cloned()
        .unwrap_or(Value::Null);
    let rule_id = assigned
        .get("escalate_rule_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let layer_idx = assigned
        .get("layer_idx")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let direct = direct_targets(&assigned)?;
    let rule = match &rule_id {
        Some(id) => {
            if channel_id == 0 {
                return Err(ApiError::invalid(
                    "a global incident (no channel_id) accepts only direct assignment",
                ));
            }
            let rule = state
                .store
                .escalation_rule(caller.account_id, id)
                .await
                .map_err(store_err)?
                .filter(|r| r.channel_id == channel_id)
                .ok_or_else(|| {
                    ApiError::invalid("escalate_rule_id is not a rule of this channel")
                })?;
            if rule.status != klaxon_core::response::RuleStatus::Enabled {
                return Err(ApiError::invalid("the escalation rule is disabled"));
            }
            let k = usize::try_from(layer_idx)
                .ok()
                .filter(|k| *k < rule.layers.len())
                .ok_or_else(|| {
                    ApiError::invalid(format!("layer_idx {layer_idx} does not exist"))
                })?;
            Some((rule, k))
        }
        None => None,
    };
    if channel_id > 0 {
        let known = state
            .store
            .list_channels(
                caller.account_id,
                &klaxon_store::ChannelFilter {
                    channel_ids: vec![channel_id],
                    ..klaxon_store::ChannelFilter::default()
                },
            )
            .await
            .map_err(store_err)?;
        if known.items.is_empty() {
            return Err(ApiError::new(
                ErrorCode::ResourceNotFound,
                format!("channel {channel_id} not found"),
            ));
        }
    }
    let now = state.clock.now();
    let incident_id = object_id(now, rand::random());
    let incident = Incident {
        num: incident_num(&incident_id),
        incident_id,
        account_id: caller.account_id,
        channel_id,
        title,
        description,
        incident_severity: severity,
        incident_status: Status::from(severity),
        progress: Progress::Triggered,
        start_time: now,
        last_time: now,
        end_time: 0,
        ack_time: 0,
        close_time: 0,
        created_at: now,
        updated_at: now,
        creator_id: caller.member_id,
        closer_id: 0,
        close_source: String::new(),
        labels: Labels::new(),
        alert_cnt: 0,
        active_alert_cnt: 0,
        alert_event_cnt: 0,
        group_method: "n".to_string(),
        group_key: String::new(),
        group_text: String::new(),
        last_merge_time: now,
        first_alert_id: String::new(),
        first_alert_key: String::new(),
        integration_id: 0,
        integration_type: String::new(),
        is_flapping: false,
        storm_level: 0,
        manual_overrides: Vec::new(),
        response: Response {
            fields: field_values,
            ..Response::default()
        },
    };
    let created = state
        .store
        .create_incident(incident, now, move |e, inc, _| {
            let rule = rule.as_ref().map(|(r, k)| (r, *k));
            e.on_manual_created(inc, rule, &direct)
        })
        .await
        .map_err(store_err)?
        .map_err(refused)?;
    Ok(json!({"incident_id": created.incident_id, "title": created.title}))
}

/// `/incident/assign`: a reassignment (RSP-110) with persons/schedules, or a manual
/// escalation (RSP-113) with `escalate_rule_id` + `layer_idx`.
async fn assign(state: &AppState, caller: &Caller, args: &Args) -> Result<Option<Value>, ApiError> {
    let ids = incident_ids(args)?;
    let assigned = match args.raw().get("assigned_to") {
        Some(v @ Value::Object(_)) => v.clone(),
        _ => return Err(ApiError::invalid("assigned_to is required")),
    };
    let rule_id = assigned
        .get("escalate_rule_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let actor = caller.member_id;
    let mut last = Ok(None);
    for id in ids {
        last = match &rule_id {
            Some(rule_id) => {
                let layer_idx = assigned
                    .get("layer_idx")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| ApiError::invalid("assigned_to.layer_idx is required"))?;
                let rule_id = rule_id.clone();
                one(state, caller, &id, move |e, inc, ctx| {
                    e.escalate_to(inc, actor, ctx.rule, &rule_id, layer_idx)
                })
                .await
            }
            None => {
                let targets = direct_targets(&assigned)?;
                if targets.is_empty() {
                    return Err(ApiError::invalid(
                        "assigned_to needs person_ids, emails, schedule_to_role_ids or escalate_rule_id",
                    ));
                }
                one(state, caller, &id, move |e, inc, _| {
                    e.reassign(inc, actor, &targets)
                })
                .await
            }
        };
        last.clone()?;
    }
    last
}

/// `/incident/merge` (RSP-100).
async fn merge(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let target = args
        .str("target_incident_id")?
        .ok_or_else(|| ApiError::invalid("target_incident_id is required"))?;
    let sources = args.str_list("source_incident_ids")?;
    if sources.is_empty() || sources.len() > 100 {
        return Err(ApiError::invalid(
            "source_incident_ids must list 1 to 100 incidents",
        ));
    }
    let title = text(args, "title", 512)?;
    let comment = text(args, "comment", 1024)?.unwrap_or_default();
    state
        .store
        .merge_incidents(
            caller.account_id,
            &target,
            &sources,
            caller.member_id,
            title.as_deref(),
            &comment,
            state.clock.now(),
        )
        .await
        .map_err(store_err)?
        .map_err(merge_refused)
}

fn merge_refused(r: klaxon_store::MergeRefusal) -> ApiError {
    match r {
        klaxon_store::MergeRefusal::NotFound(id) => incident_not_found(&id),
        klaxon_store::MergeRefusal::AlertNotFound(id) => {
            ApiError::new(ErrorCode::ResourceNotFound, format!("alert {id} not found"))
        }
        klaxon_store::MergeRefusal::Refused(e) => refused(e),
    }
}

/// `/alert/merge` (RSP-101): moves 1..100 alerts into `incident_id`. `owner_id` is accepted
/// and ignored, as on `/incident/merge`: incidents have no owner (openapi-compat.md 2.1).
async fn merge_alerts(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let target = args
        .str("incident_id")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("incident_id is required"))?;
    let alerts = args.str_list("alert_ids")?;
    if alerts.is_empty() || alerts.len() > 100 {
        return Err(ApiError::invalid("alert_ids must list 1 to 100 alerts"));
    }
    let title = text(args, "title", 512)?;
    let comment = text(args, "comment", 1024)?.unwrap_or_default();
    state
        .store
        .merge_alerts(
            caller.account_id,
            &target,
            &alerts,
            caller.member_id,
            title.as_deref(),
            &comment,
            state.clock.now(),
        )
        .await
        .map_err(store_err)?
        .map_err(merge_refused)
}

/// RSP-112.
async fn add_responders(
    state: &AppState,
    caller: &Caller,
    args: &Args,
) -> Result<Option<Value>, ApiError> {
    let id = required_incident(args)?;
    let targets = direct_targets(&Value::Object(args.raw().clone()))?;
    if targets.person_ids.is_empty()
        && targets.emails.is_empty()
        && targets.schedule_to_role_ids.is_empty()
    {
        return Err(ApiError::invalid("person_ids is required"));
    }
    let actor = caller.member_id;
    one(state, caller, &id, move |e, inc, _| {
        e.add_responders(inc, actor, &targets)
    })
    .await
}

async fn require_incident(state: &AppState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    state
        .store
        .incident(caller.account_id, id)
        .await
        .map_err(store_err)?
        .map(|_| ())
        .ok_or_else(|| incident_not_found(id))
}

/// `/incident/feed` (response.md 1.10): `p`, `limit` ≤ 100, `asc`, `types[]`.
async fn feed(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = required_incident(args)?;
    require_incident(state, caller, &id).await?;
    let p = args.i64("p")?.filter(|p| *p > 0).unwrap_or(1);
    let limit = args.i64("limit")?.filter(|l| *l > 0).unwrap_or(20).min(100);
    let asc = args.bool("asc")?.unwrap_or(false);
    let types = args.str_list("types")?;
    let offset = (p - 1).saturating_mul(limit);
    if offset > 10_000 {
        return Err(ApiError::invalid("p × limit must not exceed 10000"));
    }
    let (entries, more) = state
        .store
        .incident_feed(caller.account_id, &id, &types, asc, offset, limit)
        .await
        .map_err(store_err)?;
    let items: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            json!({
                "entry_id": e.entry_id,
                "incident_id": e.incident_id,
                "type": e.kind,
                "ref_id": e.ref_id,
                "creator_id": e.creator_id,
                "detail": e.detail,
                "created_at": e.created_at,
                "updated_at": e.created_at,
            })
        })
        .collect();
    Ok(json!({"items": items, "has_next_page": more, "p": p, "limit": limit}))
}

/// How many closed incidents of the window are scored at most (the newest ones).
const PAST_CANDIDATES: i64 = 5_000;

/// `/incident/past/list` (RSP-450, RSP-451): similar closed incidents of the same channel from
/// the 30 days before this one, each with its `score`.
async fn past(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    use klaxon_core::response::similarity::{PAST_MAX, PAST_WINDOW_MS, past_incidents};
    let id = required_incident(args)?;
    let incident = state
        .store
        .incident(caller.account_id, &id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| incident_not_found(&id))?;
    let limit = args.i64("limit")?.filter(|l| *l > 0).map_or(PAST_MAX, |l| {
        usize::try_from(l).unwrap_or(PAST_MAX).min(PAST_MAX)
    });
    let candidates = if incident.channel_id == 0 {
        Vec::new()
    } else {
        state
            .store
            .closed_incidents_between(
                caller.account_id,
                incident.channel_id,
                incident.start_time.saturating_sub(PAST_WINDOW_MS),
                incident.start_time,
                PAST_CANDIDATES,
            )
            .await
            .map_err(store_err)?
    };
    let names: std::collections::HashMap<i64, String> = state
        .store
        .list_channels(
            caller.account_id,
            &klaxon_store::ChannelFilter {
                channel_ids: vec![incident.channel_id],
                ..klaxon_store::ChannelFilter::default()
            },
        )
        .await
        .map_err(store_err)?
        .items
        .into_iter()
        .map(|c| (c.channel_id, c.channel_name))
        .collect();
    let items: Vec<Value> = past_incidents(&incident, &candidates)
        .into_iter()
        .take(limit)
        .map(|(y, score)| {
            let mut v = crate::wire::incident(y, &names, &state.base_url);
            if let Some(obj) = v.as_object_mut() {
                obj.insert("score".into(), json!((score * 1000.0).round() / 1000.0));
            }
            v
        })
        .collect();
    Ok(json!({"items": items, "total": items.len()}))
}

/// `/incident/notification/list` (Klaxon extension): the notification decisions of an
/// incident, oldest first — who, which channel, why, and the delivery status.
async fn outbox(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = required_incident(args)?;
    require_incident(state, caller, &id).await?;
    let limit = args
        .i64("limit")?
        .filter(|l| *l > 0)
        .unwrap_or(100)
        .min(1000);
    let rows = state
        .store
        .notification_outbox(caller.account_id, Some(&id), limit)
        .await
        .map_err(store_err)?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|n| {
            json!({
                "rid": n.rid,
                "incident_id": n.incident_id,
                "firing_id": n.firing_id,
                "reason": n.reason,
                "fire_type": n.fire_type,
                "escalate_rule_id": n.escalate_rule_id,
                "layer_idx": n.layer_idx,
                "channel": n.channel,
                "person_id": n.person_id,
                "target": n.target,
                "severity": n.severity,
                "status": n.status,
                "failed_reason": n.failed_reason,
                "created_at": n.created_at / 1000,
                "sent_at": n.sent_at / 1000,
                "repeat_index": n.repeat_index,
                "template_fallback": n.template_fallback,
            })
        })
        .collect();
    Ok(json!({ "items": items }))
}
