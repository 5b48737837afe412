//! Row ↔ model mapping: column lists, decoding of `AnyRow`s and whole-row upserts.
//!
//! Portable encodings (DESIGN.md "Dependencies"): booleans are BIGINT 0/1, enums their exact
//! spelling as text, maps and lists JSON text.

use std::str::FromStr;

use klaxon_core::model::{
    Alert, AlertSummary, ChannelStatus, Image, Incident, Labels, Mark, Progress, ResolvedBy,
    Severity, Status, StoredEvent,
};
use klaxon_core::response::Response;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::db::Sql;
use crate::records::{Account, Channel, Integration, Member};
use crate::{Result, StoreError};

pub(crate) fn get_i64(row: &AnyRow, col: &str) -> Result<i64> {
    row.try_get::<i64, _>(col)
        .map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

pub(crate) fn get_str(row: &AnyRow, col: &str) -> Result<String> {
    row.try_get::<String, _>(col)
        .map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

fn get_bool(row: &AnyRow, col: &str) -> Result<bool> {
    Ok(get_i64(row, col)? != 0)
}

pub(crate) fn get_enum<T: FromStr>(row: &AnyRow, col: &str) -> Result<T> {
    let s = get_str(row, col)?;
    T::from_str(&s).map_err(|_| StoreError::Corrupt(format!("{col}: unknown value {s:?}")))
}

pub(crate) fn get_json<T: DeserializeOwned>(row: &AnyRow, col: &str) -> Result<T> {
    let s = get_str(row, col)?;
    serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode: {e}")))
}

pub(crate) const ACCOUNT_COLUMNS: &str =
    "account_id, account_name, email, locale, time_zone, created_at, incident_retention_days";

pub(crate) fn account(row: &AnyRow) -> Result<Account> {
    Ok(Account {
        account_id: get_i64(row, "account_id")?,
        account_name: get_str(row, "account_name")?,
        email: get_str(row, "email")?,
        locale: get_str(row, "locale")?,
        time_zone: get_str(row, "time_zone")?,
        created_at: get_i64(row, "created_at")?,
        incident_retention_days: get_i64(row, "incident_retention_days")?,
    })
}

pub(crate) const MEMBER_COLUMNS: &str = "member_id, account_id, member_name, email, status, \
     role_ids, is_owner, locale, time_zone, created_at, updated_at";

pub(crate) fn member(row: &AnyRow) -> Result<Member> {
    Ok(Member {
        member_id: get_i64(row, "member_id")?,
        account_id: get_i64(row, "account_id")?,
        member_name: get_str(row, "member_name")?,
        email: get_str(row, "email")?,
        status: get_str(row, "status")?,
        account_role_ids: get_json(row, "role_ids")?,
        is_owner: get_bool(row, "is_owner")?,
        locale: get_str(row, "locale")?,
        time_zone: get_str(row, "time_zone")?,
        created_at: get_i64(row, "created_at")?,
        updated_at: get_i64(row, "updated_at")?,
    })
}

pub(crate) const CHANNEL_COLUMNS: &str = "channel_id, account_id, channel_name, description, \
     team_id, creator_id, status, auto_resolve_timeout, auto_resolve_mode, is_private, \
     managing_team_ids, created_at, updated_at";

pub(crate) fn channel(row: &AnyRow) -> Result<Channel> {
    Ok(Channel {
        channel_id: get_i64(row, "channel_id")?,
        account_id: get_i64(row, "account_id")?,
        channel_name: get_str(row, "channel_name")?,
        description: get_str(row, "description")?,
        team_id: get_i64(row, "team_id")?,
        creator_id: get_i64(row, "creator_id")?,
        status: get_enum::<ChannelStatus>(row, "status")?,
        auto_resolve_timeout: get_i64(row, "auto_resolve_timeout")?,
        auto_resolve_mode: get_str(row, "auto_resolve_mode")?,
        is_private: get_bool(row, "is_private")?,
        managing_team_ids: get_json(row, "managing_team_ids")?,
        created_at: get_i64(row, "created_at")?,
        updated_at: get_i64(row, "updated_at")?,
    })
}

pub(crate) const INTEGRATION_COLUMNS: &str = "integration_id, account_id, integration_name, \
     integration_type, kind, channel_id, integration_key, enabled, last_event_time, settings, \
     created_at, updated_at";

pub(crate) fn integration(row: &AnyRow) -> Result<Integration> {
    Ok(Integration {
        integration_id: get_i64(row, "integration_id")?,
        account_id: get_i64(row, "account_id")?,
        integration_name: get_str(row, "integration_name")?,
        integration_type: get_str(row, "integration_type")?,
        kind: get_str(row, "kind")?,
        channel_id: get_i64(row, "channel_id")?,
        integration_key: get_str(row, "integration_key")?,
        enabled: get_bool(row, "enabled")?,
        last_event_time: get_i64(row, "last_event_time")?,
        settings: get_str(row, "settings")?,
        created_at: get_i64(row, "created_at")?,
        updated_at: get_i64(row, "updated_at")?,
    })
}

const ALERT_FIELDS: &[&str] = &[
    "alert_id",
    "account_id",
    "channel_id",
    "integration_id",
    "integration_type",
    "integration_name",
    "alert_key",
    "title",
    "title_rule",
    "description",
    "alert_severity",
    "alert_status",
    "labels",
    "images",
    "start_time",
    "last_time",
    "end_time",
    "created_at",
    "updated_at",
    "event_cnt",
    "incident_id",
    "closed",
    "close_time",
    "resolved_by",
    "ever_muted",
    "mark",
    "mark_rule_id",
];

pub(crate) const ALERT_COLUMNS: &str = "alert_id, account_id, channel_id, integration_id, \
     integration_type, integration_name, alert_key, title, title_rule, description, \
     alert_severity, alert_status, labels, images, start_time, last_time, end_time, created_at, \
     updated_at, event_cnt, incident_id, closed, close_time, resolved_by, ever_muted, mark, \
     mark_rule_id";

pub(crate) fn alert(row: &AnyRow) -> Result<Alert> {
    Ok(Alert {
        alert_id: get_str(row, "alert_id")?,
        account_id: get_i64(row, "account_id")?,
        channel_id: get_i64(row, "channel_id")?,
        integration_id: get_i64(row, "integration_id")?,
        integration_type: get_str(row, "integration_type")?,
        integration_name: get_str(row, "integration_name")?,
        alert_key: get_str(row, "alert_key")?,
        title: get_str(row, "title")?,
        title_rule: get_str(row, "title_rule")?,
        description: get_str(row, "description")?,
        alert_severity: get_enum::<Severity>(row, "alert_severity")?,
        alert_status: get_enum::<Status>(row, "alert_status")?,
        labels: get_json::<Labels>(row, "labels")?,
        images: get_json::<Vec<Image>>(row, "images")?,
        start_time: get_i64(row, "start_time")?,
        last_time: get_i64(row, "last_time")?,
        end_time: get_i64(row, "end_time")?,
        created_at: get_i64(row, "created_at")?,
        updated_at: get_i64(row, "updated_at")?,
        event_cnt: get_i64(row, "event_cnt")?,
        incident_id: get_str(row, "incident_id")?,
        closed: get_bool(row, "closed")?,
        close_time: get_i64(row, "close_time")?,
        resolved_by: get_enum::<ResolvedBy>(row, "resolved_by")?,
        ever_muted: get_bool(row, "ever_muted")?,
        mark: get_enum::<Mark>(row, "mark")?,
        mark_rule_id: get_str(row, "mark_rule_id")?,
    })
}

pub(crate) const ALERT_SUMMARY_COLUMNS: &str =
    "alert_id, alert_status, alert_severity, last_time, end_time, event_cnt";

pub(crate) fn alert_summary(row: &AnyRow) -> Result<AlertSummary> {
    Ok(AlertSummary {
        alert_id: get_str(row, "alert_id")?,
        alert_status: get_enum::<Status>(row, "alert_status")?,
        alert_severity: get_enum::<Severity>(row, "alert_severity")?,
        last_time: get_i64(row, "last_time")?,
        end_time: get_i64(row, "end_time")?,
        event_cnt: get_i64(row, "event_cnt")?,
    })
}

fn bind_alert(sql: &mut Sql, a: &Alert) -> Result<()> {
    sql.bind(a.alert_id.as_str())
        .push(", ")
        .bind(a.account_id)
        .push(", ")
        .bind(a.channel_id)
        .push(", ")
        .bind(a.integration_id)
        .push(", ")
        .bind(a.integration_type.as_str())
        .push(", ")
        .bind(a.integration_name.as_str())
        .push(", ")
        .bind(a.alert_key.as_str())
        .push(", ")
        .bind(a.title.as_str())
        .push(", ")
        .bind(a.title_rule.as_str())
        .push(", ")
        .bind(a.description.as_str())
        .push(", ")
        .bind(a.alert_severity.as_str())
        .push(", ")
        .bind(a.alert_status.as_str())
        .push(", ")
        .bind(to_json(&a.labels)?)
        .push(", ")
        .bind(to_json(&a.images)?)
        .push(", ")
        .bind(a.start_time)
        .push(", ")
        .bind(a.last_time)
        .push(", ")
        .bind(a.end_time)
        .push(", ")
        .bind(a.created_at)
        .push(", ")
        .bind(a.updated_at)
        .push(", ")
        .bind(a.event_cnt)
        .push(", ")
        .bind(a.incident_id.as_str())
        .push(", ")
        .bind(a.closed)
        .push(", ")
        .bind(a.close_time)
        .push(", ")
        .bind(a.resolved_by.as_str())
        .push(", ")
        .bind(a.ever_muted)
        .push(", ")
        .bind(a.mark.as_str())
        .push(", ")
        .bind(a.mark_rule_id.as_str());
    Ok(())
}

/// ` ON CONFLICT (key) DO UPDATE SET` every column but the key and the account (SQLite ≥ 3.24
/// and PostgreSQL spell it the same).
fn upsert_tail(key: &str, fields: &[&str]) -> String {
    let sets: Vec<String> = fields
        .iter()
        .filter(|f| **f != key && **f != "account_id")
        .map(|f| format!("{f} = excluded.{f}"))
        .collect();
    format!(" ON CONFLICT ({key}) DO UPDATE SET {}", sets.join(", "))
}

/// Most rows in one multi-row statement (≤ 64 × 33 parameters). Chunks are powers of two, so
/// a connection caches few distinct statements.
const MAX_ROWS: usize = 64;

/// `head (…), (…), … tail` over `items` in chunks of powers of two.
async fn insert_many<T>(
    conn: &mut AnyConnection,
    head: &str,
    tail: &str,
    items: &[&T],
    bind: fn(&mut Sql, &T) -> Result<()>,
) -> Result<()> {
    let mut rest = items;
    while !rest.is_empty() {
        let n = rest.len().min(MAX_ROWS);
        let n = 1_usize << (usize::BITS - 1 - n.leading_zeros());
        let (chunk, more) = rest.split_at(n);
        let mut sql = Sql::new(head);
        for (i, item) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            bind(&mut sql, item)?;
            sql.push(")");
        }
        sql.push(tail);
        let query = sql.into_query_on(conn);
        query.execute(&mut *conn).await?;
        rest = more;
    }
    Ok(())
}

/// Inserts the alerts, or replaces the stored rows with the same ids. Ids must be distinct.
pub(crate) async fn upsert_alerts(conn: &mut AnyConnection, alerts: &[&Alert]) -> Result<()> {
    let head = format!("INSERT INTO alerts ({ALERT_COLUMNS}) VALUES ");
    let tail = upsert_tail("alert_id", ALERT_FIELDS);
    insert_many(conn, &head, &tail, alerts, bind_alert).await
}

const INCIDENT_FIELDS: &[&str] = &[
    "incident_id",
    "num",
    "account_id",
    "channel_id",
    "title",
    "description",
    "incident_severity",
    "incident_status",
    "progress",
    "start_time",
    "last_time",
    "end_time",
    "ack_time",
    "close_time",
    "created_at",
    "updated_at",
    "creator_id",
    "closer_id",
    "close_source",
    "labels",
    "alert_cnt",
    "active_alert_cnt",
    "alert_event_cnt",
    "group_method",
    "group_key",
    "last_merge_time",
    "first_alert_id",
    "first_alert_key",
    "integration_id",
    "integration_type",
    "is_flapping",
    "storm_level",
    "manual_overrides",
    "snoozed_before",
    "response",
    "responder_ids",
    "acker_ids",
    "field_values",
    "title_sig",
    "title_tokens",
    "ever_muted",
    "group_text",
];

pub(crate) const INCIDENT_COLUMNS: &str = "incident_id, num, account_id, channel_id, title, \
     description, incident_severity, incident_status, progress, start_time, last_time, end_time, \
     ack_time, close_time, created_at, updated_at, creator_id, closer_id, close_source, labels, \
     alert_cnt, active_alert_cnt, alert_event_cnt, group_method, group_key, last_merge_time, \
     first_alert_id, first_alert_key, integration_id, integration_type, is_flapping, storm_level, \
     manual_overrides, snoozed_before, response, responder_ids, acker_ids, field_values, title_sig, \
     title_tokens, ever_muted, group_text";

pub(crate) fn incident(row: &AnyRow) -> Result<Incident> {
    Ok(Incident {
        incident_id: get_str(row, "incident_id")?,
        num: get_str(row, "num")?,
        account_id: get_i64(row, "account_id")?,
        channel_id: get_i64(row, "channel_id")?,
        title: get_str(row, "title")?,
        description: get_str(row, "description")?,
        incident_severity: get_enum::<Severity>(row, "incident_severity")?,
        incident_status: get_enum::<Status>(row, "incident_status")?,
        progress: get_enum::<Progress>(row, "progress")?,
        start_time: get_i64(row, "start_time")?,
        last_time: get_i64(row, "last_time")?,
        end_time: get_i64(row, "end_time")?,
        ack_time: get_i64(row, "ack_time")?,
        close_time: get_i64(row, "close_time")?,
        created_at: get_i64(row, "created_at")?,
        updated_at: get_i64(row, "updated_at")?,
        creator_id: get_i64(row, "creator_id")?,
        closer_id: get_i64(row, "closer_id")?,
        close_source: get_str(row, "close_source")?,
        labels: get_json::<Labels>(row, "labels")?,
        alert_cnt: get_i64(row, "alert_cnt")?,
        active_alert_cnt: get_i64(row, "active_alert_cnt")?,
        alert_event_cnt: get_i64(row, "alert_event_cnt")?,
        group_method: get_str(row, "group_method")?,
        group_key: get_str(row, "group_key")?,
        group_text: get_str(row, "group_text")?,
        last_merge_time: get_i64(row, "last_merge_time")?,
        first_alert_id: get_str(row, "first_alert_id")?,
        first_alert_key: get_str(row, "first_alert_key")?,
        integration_id: get_i64(row, "integration_id")?,
        integration_type: get_str(row, "integration_type")?,
        is_flapping: get_bool(row, "is_flapping")?,
        storm_level: get_i64(row, "storm_level")?,
        manual_overrides: get_json::<Vec<String>>(row, "manual_overrides")?,
        response: {
            let mut r = get_json::<Response>(row, "response")?;
            // The column is the source of truth: it is what `is_snoozed` filters use.
            r.snoozed_before = get_i64(row, "snoozed_before")?;
            r
        },
    })
}

fn bind_incident(sql: &mut Sql, i: &Incident) -> Result<()> {
    sql.bind(i.incident_id.as_str())
        .push(", ")
        // The short number is derived from the id (ingest.md §1.3.5), stored upper-case.
        .bind(i.num.to_ascii_uppercase())
        .push(", ")
        .bind(i.account_id)
        .push(", ")
        .bind(i.channel_id)
        .push(", ")
        .bind(i.title.as_str())
        .push(", ")
        .bind(i.description.as_str())
        .push(", ")
        .bind(i.incident_severity.as_str())
        .push(", ")
        .bind(i.incident_status.as_str())
        .push(", ")
        .bind(i.progress.as_str())
        .push(", ")
        .bind(i.start_time)
        .push(", ")
        .bind(i.last_time)
        .push(", ")
        .bind(i.end_time)
        .push(", ")
        .bind(i.ack_time)
        .push(", ")
        .bind(i.close_time)
        .push(", ")
        .bind(i.created_at)
        .push(", ")
        .bind(i.updated_at)
        .push(", ")
        .bind(i.creator_id)
        .push(", ")
        .bind(i.closer_id)
        .push(", ")
        .bind(i.close_source.as_str())
        .push(", ")
        .bind(to_json(&i.labels)?)
        .push(", ")
        .bind(i.alert_cnt)
        .push(", ")
        .bind(i.active_alert_cnt)
        .push(", ")
        .bind(i.alert_event_cnt)
        .push(", ")
        .bind(i.group_method.as_str())
        .push(", ")
        .bind(i.group_key.as_str())
        .push(", ")
        .bind(i.last_merge_time)
        .push(", ")
        .bind(i.first_alert_id.as_str())
        .push(", ")
        .bind(i.first_alert_key.as_str())
        .push(", ")
        .bind(i.integration_id)
        .push(", ")
        .bind(i.integration_type.as_str())
        .push(", ")
        .bind(i.is_flapping)
        .push(", ")
        .bind(i.storm_level)
        .push(", ")
        .bind(to_json(&i.manual_overrides)?)
        .push(", ")
        .bind(i.response.snoozed_before)
        .push(", ")
        .bind(to_json(&i.response)?)
        .push(", ")
        .bind(id_list(i.response.responders.iter().map(|r| r.person_id)))
        .push(", ")
        .bind(id_list(
            i.response
                .responders
                .iter()
                .filter(|r| r.acknowledged_at > 0)
                .map(|r| r.person_id),
        ))
        .push(", ")
        .bind(field_values(&i.response.fields));
    let (sig, count) = klaxon_core::response::similarity::title_signature(&i.title);
    sql.push(", ").bind(sig).push(", ").bind(count);
    // The `ever_muted` filter of /incident/list (RSP-503).
    sql.push(", ").bind(i.response.ever_muted);
    // ING-157: the reference text of intelligent grouping.
    sql.push(", ").bind(i.group_text.as_str());
    Ok(())
}

/// `,1,2,`: every id wrapped in commas, so `LIKE '%,1,%'` finds one (RSP-503 search).
pub(crate) fn id_list(ids: impl Iterator<Item = i64>) -> String {
    let mut out = String::from(",");
    for id in ids {
        out.push_str(&id.to_string());
        out.push(',');
    }
    if out == "," { String::new() } else { out }
}

/// `|name=value|…` for the values a search can filter on: strings (single select), each
/// option of a list (multi select) and booleans (checkbox). Free text is not searchable
/// (RSP-086), so strings longer than 200 characters are left out.
pub(crate) fn field_values(
    fields: &std::collections::BTreeMap<String, serde_json::Value>,
) -> String {
    let mut out = String::new();
    let mut add = |name: &str, v: &str| {
        out.push('|');
        out.push_str(name);
        out.push('=');
        out.push_str(v);
    };
    for (name, value) in fields {
        match value {
            serde_json::Value::String(s) if s.chars().count() <= 200 => add(name, s),
            serde_json::Value::Bool(b) => add(name, if *b { "true" } else { "false" }),
            serde_json::Value::Array(items) => {
                for item in items.iter().filter_map(serde_json::Value::as_str) {
                    add(name, item);
                }
            }
            _ => {}
        }
    }
    if !out.is_empty() {
        out.push('|');
    }
    out
}

/// Inserts the incidents, or replaces the stored rows with the same ids. Ids must be distinct.
pub(crate) async fn upsert_incidents(
    conn: &mut AnyConnection,
    incidents: &[&Incident],
) -> Result<()> {
    let head = format!("INSERT INTO incidents ({INCIDENT_COLUMNS}) VALUES ");
    let tail = upsert_tail("incident_id", INCIDENT_FIELDS);
    insert_many(conn, &head, &tail, incidents, bind_incident).await
}

pub(crate) const EVENT_COLUMNS: &str = "event_id, request_id, account_id, channel_id, \
     integration_id, integration_type, alert_id, alert_key, event_status, event_severity, \
     event_time, received_at, title, title_rule, description, labels, images, raw";

pub(crate) fn event(row: &AnyRow) -> Result<StoredEvent> {
    Ok(StoredEvent {
        event_id: get_str(row, "event_id")?,
        request_id: get_str(row, "request_id")?,
        account_id: get_i64(row, "account_id")?,
        channel_id: get_i64(row, "channel_id")?,
        integration_id: get_i64(row, "integration_id")?,
        integration_type: get_str(row, "integration_type")?,
        alert_id: get_str(row, "alert_id")?,
        alert_key: get_str(row, "alert_key")?,
        event_status: get_enum::<Status>(row, "event_status")?,
        event_severity: get_enum::<Severity>(row, "event_severity")?,
        event_time: get_i64(row, "event_time")?,
        received_at: get_i64(row, "received_at")?,
        title: get_str(row, "title")?,
        title_rule: get_str(row, "title_rule")?,
        description: get_str(row, "description")?,
        labels: get_json::<Labels>(row, "labels")?,
        images: get_json::<Vec<Image>>(row, "images")?,
        raw: get_str(row, "raw")?,
    })
}

fn bind_event(sql: &mut Sql, e: &StoredEvent) -> Result<()> {
    sql.bind(e.event_id.as_str())
        .push(", ")
        .bind(e.request_id.as_str())
        .push(", ")
        .bind(e.account_id)
        .push(", ")
        .bind(e.channel_id)
        .push(", ")
        .bind(e.integration_id)
        .push(", ")
        .bind(e.integration_type.as_str())
        .push(", ")
        .bind(e.alert_id.as_str())
        .push(", ")
        .bind(e.alert_key.as_str())
        .push(", ")
        .bind(e.event_status.as_str())
        .push(", ")
        .bind(e.event_severity.as_str())
        .push(", ")
        .bind(e.event_time)
        .push(", ")
        .bind(e.received_at)
        .push(", ")
        .bind(e.title.as_str())
        .push(", ")
        .bind(e.title_rule.as_str())
        .push(", ")
        .bind(e.description.as_str())
        .push(", ")
        .bind(to_json(&e.labels)?)
        .push(", ")
        .bind(to_json(&e.images)?)
        .push(", ")
        .bind(e.raw.as_str());
    Ok(())
}

/// Stores events (immutable once stored: an id already present is left as it is).
pub(crate) async fn insert_events(conn: &mut AnyConnection, events: &[&StoredEvent]) -> Result<()> {
    let head = format!("INSERT INTO events ({EVENT_COLUMNS}) VALUES ");
    insert_many(
        conn,
        &head,
        " ON CONFLICT (event_id) DO NOTHING",
        events,
        bind_event,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_lists_match_field_lists() {
        let cols: Vec<&str> = ALERT_COLUMNS.split(", ").collect();
        assert_eq!(cols, ALERT_FIELDS);
        let cols: Vec<&str> = INCIDENT_COLUMNS.split(", ").collect();
        assert_eq!(cols, INCIDENT_FIELDS);
    }
}
