//! Wire forms of the model for the Open API (openapi-compat.md 2.1, 2.3, 2.5, 2.10): field
//! names as Flashduty spells them, instants as Unix seconds.

use std::collections::HashMap;

use klaxon_core::model::{Alert, Image, Incident, Millis, StoredEvent};
use klaxon_store::{Account, Channel, Member};
use serde_json::{Value, json};

/// Internal milliseconds → wire seconds; 0 ("unset") stays 0.
pub fn secs(ms: Millis) -> i64 {
    ms.div_euclid(1000)
}

fn images(images: &[Image]) -> Value {
    Value::Array(
        images
            .iter()
            .map(|i| json!({ "src": i.src, "alt": i.alt, "href": i.href }))
            .collect(),
    )
}

/// `responders[]` (response.md 1.8), times in seconds.
fn responders(i: &Incident) -> Value {
    Value::Array(
        i.response
            .responders
            .iter()
            .map(|r| {
                json!({
                    "person_id": r.person_id,
                    "assigned_at": secs(r.assigned_at),
                    "acknowledged_at": secs(r.acknowledged_at),
                    "as": r.as_,
                })
            })
            .collect(),
    )
}

/// `assigned_to` (response.md 1.9), or null when never assigned.
fn assigned_to(i: &Incident) -> Value {
    match &i.response.assigned_to {
        None => Value::Null,
        Some(a) => json!({
            "id": a.id,
            "type": a.kind.as_str(),
            "escalate_rule_id": a.escalate_rule_id,
            "escalate_rule_name": a.escalate_rule_name,
            "layer_idx": a.layer_idx,
            "person_ids": a.person_ids,
            "schedule_to_role_ids": a.schedule_to_role_ids,
            "assigned_at": secs(a.assigned_at),
            "creator_id": a.creator_id,
        }),
    }
}

/// `detail_url` (response.md 1.7): the console page of an incident. Like `num` it depends only
/// on the id, so it never changes after creation (RSP-006).
pub fn detail_url(base_url: &str, incident_id: &str) -> String {
    format!(
        "{}/incident/detail/{incident_id}",
        base_url.trim_end_matches('/')
    )
}

/// The Incident wire object; `base_url` is the console's public URL (for `detail_url`).
pub fn incident(i: &Incident, channel_names: &HashMap<i64, String>, base_url: &str) -> Value {
    json!({
        "incident_id": i.incident_id,
        "num": i.num,
        "detail_url": detail_url(base_url, &i.incident_id),
        "account_id": i.account_id,
        "channel_id": i.channel_id,
        "channel_name": channel_names.get(&i.channel_id).cloned().unwrap_or_default(),
        "title": i.title,
        "description": i.description,
        "impact": i.response.impact,
        "root_cause": i.response.root_cause,
        "resolution": i.response.resolution,
        "ai_summary": "",
        "incident_severity": i.incident_severity.as_str(),
        "incident_status": i.incident_status.as_str(),
        "progress": i.progress.as_str(),
        "start_time": secs(i.start_time),
        "last_time": secs(i.last_time),
        "end_time": secs(i.end_time),
        "ack_time": secs(i.ack_time),
        "close_time": secs(i.close_time),
        "snoozed_before": secs(i.response.snoozed_before),
        "created_at": secs(i.created_at),
        "updated_at": secs(i.updated_at),
        "creator_id": i.creator_id,
        "closer_id": i.closer_id,
        "owner_id": 0,
        "close_source": i.close_source,
        "responders": responders(i),
        "assigned_to": assigned_to(i),
        // Klaxon extension: when a rule-based assignment escalates to its next level unless
        // acknowledged first (RSP-508's countdown); 0 when nothing is pending.
        "next_escalate_time": i.response.escalation.as_ref().map_or(0, |e| secs(e.escalate_deadline)),
        "labels": i.labels,
        "fields": i.response.fields,
        "frequency": i.response.frequency,
        "dedup_key": i.first_alert_key,
        "equals_md5": i.group_key,
        "group_method": i.group_method,
        "ever_muted": i.response.ever_muted,
        "is_flapping": i.is_flapping,
        "storm_level": i.storm_level,
        "alert_cnt": i.alert_cnt,
        "active_alert_cnt": i.active_alert_cnt,
        "alert_event_cnt": i.alert_event_cnt,
        "first_alert_id": i.first_alert_id,
        "last_merge_time": secs(i.last_merge_time),
        "integration_id": i.integration_id,
        "integration_ids": if i.integration_id > 0 { vec![i.integration_id] } else { vec![] },
        "integration_type": i.integration_type,
        "integration_types": if i.integration_type.is_empty() { vec![] } else { vec![i.integration_type.clone()] },
        "data_source_id": i.integration_id,
        "data_source_ids": if i.integration_id > 0 { vec![i.integration_id] } else { vec![] },
        "data_source_type": i.integration_type,
        "data_source_types": if i.integration_type.is_empty() { vec![] } else { vec![i.integration_type.clone()] },
        "images": [],
        "manual_overrides": i.manual_overrides,
    })
}

pub fn alert(
    a: &Alert,
    channel_names: &HashMap<i64, String>,
    incidents: &HashMap<String, Incident>,
) -> Value {
    let incident = incidents.get(&a.incident_id).map_or(Value::Null, |i| {
        json!({ "incident_id": i.incident_id, "title": i.title, "progress": i.progress.as_str() })
    });
    json!({
        "alert_id": a.alert_id,
        "alert_key": a.alert_key,
        "account_id": a.account_id,
        "title": a.title,
        "title_rule": a.title_rule,
        "description": a.description,
        "alert_severity": a.alert_severity.as_str(),
        "alert_status": a.alert_status.as_str(),
        "start_time": secs(a.start_time),
        "last_time": secs(a.last_time),
        "end_time": secs(a.end_time),
        "created_at": secs(a.created_at),
        "updated_at": secs(a.updated_at),
        "labels": a.labels,
        "images": images(&a.images),
        "event_cnt": a.event_cnt,
        "ever_muted": a.ever_muted,
        "mark": a.mark.as_str(),
        "mark_rule_id": a.mark_rule_id,
        "closed": a.closed,
        "close_time": secs(a.close_time),
        "resolved_by": a.resolved_by.as_str(),
        "channel_id": a.channel_id,
        "channel_name": channel_names.get(&a.channel_id).cloned().unwrap_or_default(),
        "integration_id": a.integration_id,
        "integration_name": a.integration_name,
        "integration_type": a.integration_type,
        "incident_id": a.incident_id,
        "incident": incident,
    })
}

pub fn event(e: &StoredEvent) -> Value {
    json!({
        "event_id": e.event_id,
        "alert_id": e.alert_id,
        "alert_key": e.alert_key,
        "event_status": e.event_status.as_str(),
        "event_severity": e.event_severity.as_str(),
        "event_time": secs(e.event_time),
        "received_at": secs(e.received_at),
        "title": e.title,
        "title_rule": e.title_rule,
        "description": e.description,
        "labels": e.labels,
        "images": images(&e.images),
        "integration_id": e.integration_id,
        "integration_type": e.integration_type,
        "channel_id": e.channel_id,
        "request_id": e.request_id,
        "raw": e.raw,
    })
}

pub fn channel(c: &Channel) -> Value {
    json!({
        "channel_id": c.channel_id,
        "channel_name": c.channel_name,
        "description": c.description,
        "account_id": c.account_id,
        "team_id": c.team_id,
        "managing_team_ids": c.managing_team_ids,
        "creator_id": c.creator_id,
        "status": c.status.as_str(),
        "auto_resolve_timeout": c.auto_resolve_timeout,
        "auto_resolve_mode": c.auto_resolve_mode,
        "disable_auto_close": c.auto_resolve_timeout == 0,
        "group": { "method": "n" },
        "flapping": { "mode": "off", "is_disabled": true },
        "is_private": c.is_private,
        "created_at": secs(c.created_at),
        "updated_at": secs(c.updated_at),
    })
}

pub fn account(a: &Account) -> Value {
    json!({
        "account_id": a.account_id,
        "account_name": a.account_name,
        "email": a.email,
        "domain": "",
        "locale": a.locale,
        "time_zone": a.time_zone,
        "incident_retention_days": a.incident_retention_days,
        "created_at": secs(a.created_at),
    })
}

pub fn member(m: &Member, a: &Account) -> Value {
    json!({
        "member_id": m.member_id,
        "person_id": m.member_id,
        "member_name": m.member_name,
        "email": m.email,
        "status": m.status,
        "account_id": a.account_id,
        "account_name": a.account_name,
        "account_role_ids": m.account_role_ids,
        "is_account_owner": m.is_owner,
        "locale": m.locale,
        "time_zone": m.time_zone,
        "created_at": secs(m.created_at),
        "updated_at": secs(m.updated_at),
    })
}
