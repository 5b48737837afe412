//! The group view of the incident list (response.md RSP-505): the current filters' matches
//! grouped by one dimension — severity, progress, channel, a label or a custom field — over
//! at most the 100 newest matches, each group with its count and a link to the list filtered
//! to it. The matches come from `/incident/list` with the list's own filter arguments, so
//! visibility (RSP-507) and every filter check are the API's; the console only counts.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use minijinja::context;
use serde_json::{Value, json};

use super::forms::FieldErrors;
use super::incidents::{Filters, j, now_secs, page_headers};
use super::{fetch, page_error, view, viewer};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/incidents/groups", get(page))
}

/// RSP-505: the group view looks at no more than the newest 100 matches.
const GROUPED_MAX: i64 = 100;

/// The dimension to group by, as the page's query names it: `group=severity|progress|channel`,
/// `group=label` with `group_label=<key>`, or `group=field:<name>`.
#[derive(Debug, Clone, PartialEq)]
enum Dimension {
    Severity,
    Progress,
    Channel,
    Label(String),
    Field(String),
}

/// The group-by choice as typed, kept for the form after a refusal.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
struct GroupForm {
    group: String,
    group_label: String,
}

impl GroupForm {
    fn parse(query: Option<&str>) -> GroupForm {
        let pairs: Vec<(String, String)> = query
            .and_then(|q| serde_urlencoded::from_str(q).ok())
            .unwrap_or_default();
        let one = |name: &str| {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        GroupForm {
            group: one("group"),
            group_label: one("group_label"),
        }
    }

    /// The dimension, or the input that says what is wrong. `fields` are the custom field
    /// names of the account.
    fn dimension(&self, fields: &[String]) -> Result<Dimension, FieldErrors> {
        match self.group.as_str() {
            "" | "severity" => Ok(Dimension::Severity),
            "progress" => Ok(Dimension::Progress),
            "channel" => Ok(Dimension::Channel),
            "label" if self.group_label.is_empty() => Err(FieldErrors::one(
                "group_label",
                "group_label: give the label key to group by (host, env, …)",
            )),
            "label" if self.group_label.contains(['=', ',']) || self.group_label.len() > 128 => {
                Err(FieldErrors::one(
                    "group_label",
                    format!(
                        "group_label: {:?} is not a label key (no = or , and at most 128 characters)",
                        self.group_label
                    ),
                ))
            }
            "label" => Ok(Dimension::Label(self.group_label.clone())),
            other => match other.strip_prefix("field:") {
                Some(name) if fields.iter().any(|f| f == name) => {
                    Ok(Dimension::Field(name.to_string()))
                }
                _ => Err(FieldErrors::one(
                    "group",
                    format!(
                        "group: {other:?} is not something to group by (severity, progress, channel, a label or a custom field)"
                    ),
                )),
            },
        }
    }
}

/// A value as it reads in a group heading; a missing value is `None` (shown as `-`, RSP-506).
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) if !items.is_empty() => Some(
            items
                .iter()
                .filter_map(text_of)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        _ => None,
    }
}

/// One group: what its members share, how many there are, and the filters that list them
/// (`None` when the list cannot filter on it: a missing value, or a text field, RSP-086).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
struct Group {
    value: String,
    count: usize,
    query: Option<String>,
}

/// The filters of the list narrowed to one group: the dimension's own filter is replaced.
fn narrowed(filters: &Filters, dim: &Dimension, key: &Value, filterable: bool) -> Option<String> {
    let mut f = Filters {
        p: 1,
        ..filters.clone()
    };
    match dim {
        Dimension::Severity => f.severity = vec![key.as_str()?.to_string()],
        Dimension::Progress => f.progress = vec![key.as_str()?.to_string()],
        Dimension::Channel => f.channel = Some(key.as_i64()?.to_string()),
        Dimension::Label(name) => {
            let value = key.as_str().filter(|v| !v.is_empty())?;
            // A label filter reads `*` as a wildcard and `/…/` as a regex; a value that
            // looks like either is matched exactly through an anchored, escaped regex.
            let pattern = if value.contains('*') || value.starts_with('/') {
                format!("/^{}$/", regex::escape(value))
            } else {
                value.to_string()
            };
            let prefix = format!("{name}=");
            f.labels.retain(|l| !l.starts_with(&prefix));
            f.labels.push(format!("{name}={pattern}"));
        }
        Dimension::Field(name) => {
            if !filterable {
                return None;
            }
            let value = match key {
                Value::Bool(b) => b.to_string(),
                Value::String(s) if !s.is_empty() => s.clone(),
                _ => return None,
            };
            f.fields.retain(|(n, _)| n != name);
            f.fields.push((name.clone(), value));
        }
    }
    Some(f.query(1))
}

/// Groups `items` (newest first) by `dim`: largest first, then by value; the incidents
/// without a value last.
fn group(items: &[Value], dim: &Dimension, filters: &Filters, filterable: bool) -> Vec<Group> {
    let mut found: Vec<(Option<String>, Value, usize)> = Vec::new();
    let mut at: HashMap<Option<String>, usize> = HashMap::new();
    for item in items {
        let (text, key) = match dim {
            Dimension::Severity => (
                text_of(&item["incident_severity"]),
                item["incident_severity"].clone(),
            ),
            Dimension::Progress => (text_of(&item["progress"]), item["progress"].clone()),
            Dimension::Channel => (
                text_of(&item["channel_name"])
                    .or_else(|| item["channel_id"].as_i64().map(|c| format!("channel {c}"))),
                item["channel_id"].clone(),
            ),
            Dimension::Label(name) => {
                (text_of(&item["labels"][name]), item["labels"][name].clone())
            }
            Dimension::Field(name) => {
                (text_of(&item["fields"][name]), item["fields"][name].clone())
            }
        };
        match at.get(&text) {
            Some(&n) => found[n].2 += 1,
            None => {
                at.insert(text.clone(), found.len());
                found.push((text, key, 1));
            }
        }
    }
    found.sort_by(|a, b| {
        a.0.is_none()
            .cmp(&b.0.is_none())
            .then(b.2.cmp(&a.2))
            .then(a.0.cmp(&b.0))
    });
    found
        .into_iter()
        .map(|(text, key, count)| Group {
            query: text
                .as_ref()
                .and_then(|_| narrowed(filters, dim, &key, filterable)),
            value: text.unwrap_or_else(|| "-".to_string()),
            count,
        })
        .collect()
}

/// What a dimension is called on the page.
fn heading(dim: &Dimension, field_labels: &HashMap<String, String>) -> String {
    match dim {
        Dimension::Severity => "Severity".into(),
        Dimension::Progress => "Progress".into(),
        Dimension::Channel => "Channel".into(),
        Dimension::Label(name) => format!("Label {name}"),
        Dimension::Field(name) => field_labels.get(name).cloned().unwrap_or(name.clone()),
    }
}

async fn page(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let next = match &query {
        Some(q) => format!("/incidents/groups?{q}"),
        None => "/incidents/groups".to_string(),
    };
    let viewer = match viewer(&state, &Method::GET, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let filters = Filters::parse(query.as_deref());
    let form = GroupForm::parse(query.as_deref());
    let me = match super::me(&state, &viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    // Custom fields to group by; someone who may not read their definitions gets the other
    // dimensions.
    let defs: Vec<Value> = fetch(&state, &viewer, "/field/list", json!({}))
        .await
        .map(|d| d["items"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default();
    let names: Vec<String> = defs
        .iter()
        .filter_map(|d| d["field_name"].as_str().map(str::to_string))
        .collect();
    let labels: HashMap<String, String> = defs
        .iter()
        .filter_map(|d| {
            let name = d["field_name"].as_str()?.to_string();
            let label = d["display_name"]
                .as_str()
                .filter(|l| !l.is_empty())
                .unwrap_or(&name)
                .to_string();
            Some((name, label))
        })
        .collect();
    let field_choices: Vec<(String, String)> = names
        .iter()
        .map(|n| {
            (
                format!("field:{n}"),
                labels.get(n).cloned().unwrap_or(n.clone()),
            )
        })
        .collect();
    let (groups, total, grouped, error, errors, status, dim_heading) = match form.dimension(&names)
    {
        Err(errors) => (
            Vec::new(),
            0,
            0,
            None,
            errors,
            StatusCode::BAD_REQUEST,
            String::new(),
        ),
        Ok(dim) => {
            // RSP-086: only select and checkbox fields can filter the list.
            let filterable = match &dim {
                Dimension::Field(name) => defs
                    .iter()
                    .any(|d| d["field_name"] == name.as_str() && d["field_type"] != "text"),
                _ => true,
            };
            let mut args = filters.args(now_secs(&state), viewer.caller.member_id);
            args["p"] = json!(1);
            args["limit"] = json!(GROUPED_MAX);
            match fetch(&state, &viewer, "/incident/list", args).await {
                Ok(data) => {
                    let items = data["items"].as_array().cloned().unwrap_or_default();
                    let total = data["total"].as_i64().unwrap_or(0);
                    (
                        group(&items, &dim, &filters, filterable),
                        total,
                        items.len(),
                        None,
                        FieldErrors::default(),
                        StatusCode::OK,
                        heading(&dim, &labels),
                    )
                }
                // A filter the API refuses (a bad label pattern, …): the page says why.
                Err(e) => (
                    Vec::new(),
                    0,
                    0,
                    Some(e.message),
                    FieldErrors::default(),
                    StatusCode::BAD_REQUEST,
                    String::new(),
                ),
            }
        }
    };
    let ctx = context! {
        title => "Incidents by group",
        nav => "incidents",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        query => filters.query(1),
        hidden => j(&serde_urlencoded::from_str::<Vec<(String, String)>>(&filters.query(1)).unwrap_or_default()),
        v => j(&form),
        field_choices => field_choices,
        errors => j(&errors.0),
        error => error,
        groups => j(&groups),
        dimension => dim_heading,
        total => total,
        grouped => grouped,
        grouped_max => GROUPED_MAX,
    };
    page_headers((status, view::render("incident_groups.html", ctx)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(sev: &str, channel: i64, host: Option<&str>) -> Value {
        let mut labels = json!({});
        if let Some(h) = host {
            labels["host"] = json!(h);
        }
        json!({"incident_severity": sev, "progress": "Triggered", "channel_id": channel,
               "channel_name": format!("C{channel}"), "labels": labels,
               "fields": {"region": "eu"}})
    }

    // spec: RSP-505
    #[test]
    fn matches_are_counted_per_value_largest_first() {
        let f = Filters::parse(Some("who=all&range=24h&severity=Critical&severity=Info"));
        let items = vec![
            incident("Info", 1, Some("db-1")),
            incident("Critical", 2, None),
            incident("Critical", 1, Some("web*")),
        ];
        let by_sev = group(&items, &Dimension::Severity, &f, true);
        assert_eq!(by_sev[0].value, "Critical");
        assert_eq!(by_sev[0].count, 2);
        // The group's link replaces the severity filter and keeps the others.
        let q = by_sev[0].query.clone().unwrap();
        assert_eq!(Filters::parse(Some(&q)).severity, vec!["Critical"]);
        assert_eq!(Filters::parse(Some(&q)).range, "24h");
        let by_channel = group(&items, &Dimension::Channel, &f, true);
        assert_eq!(by_channel[0].value, "C1");
        assert_eq!(
            Filters::parse(by_channel[0].query.as_deref())
                .channel
                .as_deref(),
            Some("1")
        );
        let by_host = group(&items, &Dimension::Label("host".into()), &f, true);
        // Without the label last, with no link (the list cannot filter on a missing label).
        assert_eq!(by_host.last().unwrap().value, "-");
        assert_eq!(by_host.last().unwrap().query, None);
        let web = by_host.iter().find(|g| g.value == "web*").unwrap();
        // A value with a wildcard character is matched exactly, not as a wildcard.
        assert_eq!(
            Filters::parse(web.query.as_deref()).labels,
            vec!["host=/^web\\*$/"]
        );
        let by_text_field = group(&items, &Dimension::Field("region".into()), &f, false);
        assert_eq!(by_text_field[0].count, 3);
        assert_eq!(by_text_field[0].query, None);
    }

    #[test]
    fn the_dimension_is_read_strictly() {
        let fields = vec!["region".to_string()];
        let dim = |q: &str| GroupForm::parse(Some(q)).dimension(&fields);
        assert_eq!(dim("").unwrap(), Dimension::Severity);
        assert_eq!(dim("group=channel").unwrap(), Dimension::Channel);
        assert_eq!(
            dim("group=label&group_label=host").unwrap(),
            Dimension::Label("host".into())
        );
        assert_eq!(
            dim("group=field%3Aregion").unwrap(),
            Dimension::Field("region".into())
        );
        let e = dim("group=label&group_label=").unwrap_err();
        assert!(e.0["group_label"].starts_with("group_label:"));
        let e = dim("group=field%3Anope").unwrap_err();
        assert!(e.0.contains_key("group"));
    }
}
