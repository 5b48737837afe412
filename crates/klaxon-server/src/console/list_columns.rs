//! The incident list's columns (response.md RSP-506): each person chooses basic attributes,
//! custom fields and labels; a missing value shows as `-`. The choice is the Open API's
//! `/member/list-columns/info` and `/member/list-columns/update`, stored per member, so
//! the list looks the same wherever the person signs in.

use std::collections::{BTreeSet, HashMap};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use klaxon_core::error::Surface;
use klaxon_core::response::list_columns::{BASIC, default_keys};
use minijinja::context;
use serde_json::{Value, json};

use super::incidents::{form_pairs, form_value, j, names, page_headers};
use super::{Viewer, call, fetch, local_path, redirect, view, viewer};
use crate::state::AppState;

/// The viewer's chosen column keys (the defaults when the choice cannot be read).
async fn chosen(state: &AppState, viewer: &Viewer) -> Vec<String> {
    match fetch(state, viewer, "/member/list-columns/info", json!({})).await {
        Ok(info) => info["columns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Err(_) => default_keys(),
    }
}

/// The account's custom fields `(name, display name)`; none for someone who may not read them.
async fn field_defs(state: &AppState, viewer: &Viewer) -> Vec<(String, String)> {
    fetch(state, viewer, "/field/list", json!({}))
        .await
        .map(|d| d["items"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .map(|d| {
            let name = d["field_name"].as_str().unwrap_or("").to_string();
            let label = d["display_name"]
                .as_str()
                .filter(|l| !l.is_empty())
                .unwrap_or(&name)
                .to_string();
            (name, label)
        })
        .collect()
}

/// The heading of a column key.
fn heading(key: &str, fields: &[(String, String)]) -> (&'static str, String) {
    if let Some(name) = key.strip_prefix("field.") {
        let label = fields
            .iter()
            .find(|(n, _)| n == name)
            .map_or(name, |(_, l)| l.as_str());
        return ("field", label.to_string());
    }
    if let Some(name) = key.strip_prefix("label.") {
        return ("label", name.to_string());
    }
    let label = BASIC
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(key, |(_, l)| *l);
    ("basic", label.to_string())
}

/// A value as the list shows it; nothing (absent, null, empty) is `-`.
pub(super) fn shown(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) if s.trim().is_empty() => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(true) => "Yes".to_string(),
        Value::Bool(false) => "No".to_string(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(shown).filter(|s| s != "-").collect();
            if parts.is_empty() {
                "-".to_string()
            } else {
                parts.join(", ")
            }
        }
        other => other.to_string(),
    }
}

/// The text of a basic column that is not drawn by the template itself.
fn basic_text(key: &str, i: &Value, now: i64, people: &HashMap<String, String>) -> String {
    let secs = |k: &str| i[k].as_i64().unwrap_or(0);
    let person = |id: i64| {
        let id = id.to_string();
        people
            .get(&id)
            .filter(|n| !n.is_empty())
            .cloned()
            .unwrap_or_else(|| format!("member {id}"))
    };
    match key {
        "channel" => shown(&i["channel_name"]),
        "alerts" => format!("{} / {}", secs("active_alert_cnt"), secs("alert_cnt")),
        "duration" => {
            let start = secs("start_time");
            if start <= 0 {
                return "-".to_string();
            }
            // Open incidents last until now; closed ones until they were closed.
            let end = match secs("close_time") {
                0 => now,
                t => t,
            };
            view::ago(start, end.max(start))
        }
        "responders" => {
            let names: Vec<String> = i["responders"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["person_id"].as_i64())
                .map(person)
                .collect();
            if names.is_empty() {
                "-".to_string()
            } else {
                names.join(", ")
            }
        }
        "ack_time" => view::when(secs("ack_time")),
        "close_time" => view::when(secs("close_time")),
        "creator" => match secs("creator_id") {
            0 => "-".to_string(),
            id => person(id),
        },
        _ => String::new(),
    }
}

/// The columns the viewer chose, and each incident with its `cells` (one per column, in
/// order: `{key, heading, text}`).
pub(super) async fn cells(
    state: &AppState,
    viewer: &Viewer,
    items: Vec<Value>,
    now: i64,
) -> (Vec<Value>, Vec<Value>) {
    let keys = chosen(state, viewer).await;
    let fields = if keys.iter().any(|k| k.starts_with("field.")) {
        field_defs(state, viewer).await
    } else {
        Vec::new()
    };
    let columns: Vec<Value> = keys
        .iter()
        .map(|k| {
            let (kind, heading) = heading(k, &fields);
            json!({"key": k, "kind": kind, "heading": heading})
        })
        .collect();
    let wants_people = keys.iter().any(|k| k == "responders" || k == "creator");
    let people = if wants_people {
        let mut ids = BTreeSet::new();
        for i in &items {
            for r in i["responders"].as_array().into_iter().flatten() {
                ids.insert(r["person_id"].as_i64().unwrap_or(0));
            }
            ids.insert(i["creator_id"].as_i64().unwrap_or(0));
        }
        names(state, viewer, ids).await
    } else {
        HashMap::new()
    };
    let items = items
        .into_iter()
        .map(|mut i| {
            let row: Vec<Value> = columns
                .iter()
                .map(|c| {
                    let key = c["key"].as_str().unwrap_or("");
                    let text = if let Some(name) = key.strip_prefix("field.") {
                        shown(&i["fields"][name])
                    } else if let Some(name) = key.strip_prefix("label.") {
                        shown(&i["labels"][name])
                    } else {
                        basic_text(key, &i, now, &people)
                    };
                    json!({"key": key, "heading": c["heading"], "text": text})
                })
                .collect();
            if let Some(obj) = i.as_object_mut() {
                obj.insert("cells".into(), Value::Array(row));
            }
            i
        })
        .collect();
    (columns, items)
}

/// What the column form had when the API refused it, shown again with the error.
#[derive(Debug, Clone, Default)]
pub(super) struct Kept {
    keys: Vec<String>,
    labels: String,
    error: String,
    /// `labels` when the refused entry was a label, else empty (the form's banner).
    error_field: String,
}

/// The column form: every basic attribute and custom field with a box, labels as text.
pub(super) async fn picker_ctx(
    state: &AppState,
    viewer: &Viewer,
    back: &str,
    kept: Option<Kept>,
) -> minijinja::Value {
    let keys = match &kept {
        Some(k) => k.keys.clone(),
        None => chosen(state, viewer).await,
    };
    let labels = match &kept {
        Some(k) => k.labels.clone(),
        None => keys
            .iter()
            .filter_map(|k| k.strip_prefix("label."))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let basic: Vec<Value> = BASIC
        .iter()
        .map(
            |(k, l)| json!({"key": k, "label": l, "chosen": keys.iter().any(|c| c.as_str() == *k)}),
        )
        .collect();
    let fields: Vec<Value> = field_defs(state, viewer)
        .await
        .into_iter()
        .map(|(name, label)| {
            let key = format!("field.{name}");
            json!({"key": key, "label": label, "chosen": keys.contains(&key)})
        })
        .collect();
    let kept = kept.unwrap_or_default();
    context! {
        back => back,
        basic => j(&basic),
        fields => j(&fields),
        labels => labels,
        error => (!kept.error.is_empty()).then_some(kept.error),
        error_field => kept.error_field,
    }
}

/// The keys a submitted form chose: ticked boxes in the form's order, then the labels typed
/// (comma-separated) in their order.
fn submitted(pairs: &[(String, String)]) -> (Vec<String>, String) {
    let mut keys: Vec<String> = pairs
        .iter()
        .filter(|(k, v)| k == "col" && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_string())
        .collect();
    let labels = form_value(pairs, "labels");
    keys.extend(
        labels
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| format!("label.{l}")),
    );
    (keys, labels)
}

/// The index `i` of an API message `columns[i]: …`.
fn refused_index(message: &str) -> Option<usize> {
    message
        .strip_prefix("columns[")?
        .split(']')
        .next()?
        .parse()
        .ok()
}

/// Saves the chosen columns and goes back to the list; a refusal draws the form again with
/// what was chosen and the error beside the labels (or above the form).
pub(super) async fn save(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pairs = form_pairs(&body);
    let back = local_path(&form_value(&pairs, "back"))
        .unwrap_or("/incidents")
        .to_string();
    let viewer = match viewer(&state, &Method::POST, &headers, &back).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let (keys, labels) = submitted(&pairs);
    match call(
        &state,
        &viewer,
        "/member/list-columns/update",
        json!({"columns": keys}),
    )
    .await
    {
        Ok(_) => redirect(&headers, &back),
        Err(e) => {
            let status = StatusCode::from_u16(e.code.http_status(Surface::OpenApi))
                .unwrap_or(StatusCode::BAD_REQUEST);
            let on_label = refused_index(&e.message)
                .and_then(|i| keys.get(i))
                .is_some_and(|k| k.starts_with("label."));
            let kept = Kept {
                keys,
                labels,
                error: e.message,
                error_field: if on_label {
                    "labels".into()
                } else {
                    String::new()
                },
            };
            let cols = picker_ctx(&state, &viewer, &back, Some(kept)).await;
            page_headers(
                (
                    status,
                    view::render(
                        "list_columns_form.html",
                        context! { cols => cols, open => true },
                    ),
                )
                    .into_response(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // spec: RSP-506 (a missing value is shown as `-`)
    #[test]
    fn missing_values_show_as_a_dash() {
        assert_eq!(shown(&Value::Null), "-");
        assert_eq!(shown(&json!("")), "-");
        assert_eq!(shown(&json!([])), "-");
        assert_eq!(shown(&json!(["eu", "us"])), "eu, us");
        assert_eq!(shown(&json!(true)), "Yes");
        assert_eq!(shown(&json!("db-1")), "db-1");
        let i = json!({"start_time": 100, "close_time": 0, "responders": [], "creator_id": 0});
        let none = HashMap::new();
        assert_eq!(basic_text("responders", &i, 160, &none), "-");
        assert_eq!(basic_text("creator", &i, 160, &none), "-");
        assert_eq!(basic_text("close_time", &i, 160, &none), "-");
        assert_eq!(basic_text("duration", &i, 160, &none), "1 min");
    }

    // spec: RSP-506 (boxes in order, then the typed labels)
    #[test]
    fn a_form_becomes_column_keys() {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(
            "col=duration&col=field.region&labels=host%2C+env+%2C&back=%2Fincidents",
        )
        .unwrap();
        let (keys, labels) = submitted(&pairs);
        assert_eq!(
            keys,
            vec!["duration", "field.region", "label.host", "label.env"]
        );
        assert_eq!(labels, "host, env ,");
        assert_eq!(refused_index("columns[3]: \"x\" is chosen twice"), Some(3));
        assert_eq!(refused_index("columns: required"), None);
    }
}
