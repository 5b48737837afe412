//! Jira issue events as change events (ingest.md §3.10, change integration `jira`).

use klaxon_core::change::{ChangeStatus, NewChangeEvent, clean_link};
use klaxon_core::error::ApiError;
use klaxon_core::model::Millis;
use klaxon_core::standard::{DESCRIPTION_MAX_CHARS, TITLE_MAX_CHARS, adapter_labels, truncate};
use serde_json::Value;

/// §3.10 status table (fixed); input lower-cased and trimmed. `None`: unlisted.
pub fn map_status(name: &str) -> Option<ChangeStatus> {
    match name.trim().to_lowercase().as_str() {
        "planned" | "to do" => Some(ChangeStatus::Planned),
        "ready" => Some(ChangeStatus::Ready),
        "processing" | "open" | "reopen" | "in progress" => Some(ChangeStatus::Processing),
        "canceled" | "aborted" => Some(ChangeStatus::Canceled),
        "done" | "resolved" | "closed" => Some(ChangeStatus::Done),
        _ => None,
    }
}

/// Text nodes of an Atlassian document, joined with spaces, paragraphs on their own lines.
fn adf_text(node: &Value) -> String {
    let mut paragraphs: Vec<String> = Vec::new();
    fn walk(node: &Value, paragraphs: &mut Vec<String>, current: &mut Vec<String>) {
        if let Some(t) = node.get("text").and_then(Value::as_str) {
            current.push(t.to_owned());
        }
        let block = matches!(
            node.get("type").and_then(Value::as_str),
            Some("paragraph" | "heading" | "listItem" | "codeBlock" | "blockquote")
        );
        if let Some(children) = node.get("content").and_then(Value::as_array) {
            for child in children {
                walk(child, paragraphs, current);
            }
        }
        if block && !current.is_empty() {
            paragraphs.push(current.join(" "));
            current.clear();
        }
    }
    let mut current = Vec::new();
    walk(node, &mut paragraphs, &mut current);
    if !current.is_empty() {
        paragraphs.push(current.join(" "));
    }
    paragraphs.join("\n")
}

fn text_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

/// A Jira person: e-mail address if present, else display name.
fn person(v: Option<&Value>) -> String {
    let Some(v) = v else { return String::new() };
    text_at(v, &["emailAddress"])
        .or_else(|| text_at(v, &["displayName"]))
        .unwrap_or("")
        .to_owned()
}

/// §3.10: `Ok(None)` for webhook events that are accepted and ignored.
pub fn parse(body: &Value, received_at: Millis) -> Result<Option<NewChangeEvent>, ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::invalid("request body must be a JSON object"))?;
    let event = obj
        .get("webhookEvent")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !matches!(
        event,
        "jira:issue_created" | "jira:issue_updated" | "jira:issue_deleted"
    ) {
        return Ok(None);
    }
    let issue = obj
        .get("issue")
        .filter(|i| i.is_object())
        .ok_or_else(|| ApiError::invalid("issue is required"))?;
    let key = text_at(issue, &["key"])
        .ok_or_else(|| ApiError::invalid("issue.key is required"))?
        .trim()
        .to_owned();
    if key.chars().count() > klaxon_core::change::CHANGE_KEY_MAX_CHARS {
        return Err(ApiError::invalid("issue.key is too long"));
    }
    let empty = Value::Null;
    let fields = issue.get("fields").unwrap_or(&empty);
    let summary = text_at(fields, &["summary"]).unwrap_or("");
    let description = match fields.get("description") {
        Some(Value::String(s)) => s.clone(),
        Some(doc @ Value::Object(_)) => adf_text(doc),
        _ => String::new(),
    };
    let change_status = if event == "jira:issue_deleted" {
        Some(ChangeStatus::Canceled)
    } else {
        text_at(fields, &["status", "name"]).and_then(map_status)
    };
    let link = match text_at(issue, &["self"]).and_then(|s| s.find("/rest/").map(|i| &s[..i])) {
        Some(base) => clean_link(&format!("{base}/browse/{key}")),
        None => String::new(),
    };
    let jira_labels = fields
        .get("labels")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let issue_id = match issue.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let pairs = [
        ("issue_id", issue_id),
        (
            "project_key",
            text_at(fields, &["project", "key"])
                .unwrap_or("")
                .to_owned(),
        ),
        (
            "project_name",
            text_at(fields, &["project", "name"])
                .unwrap_or("")
                .to_owned(),
        ),
        (
            "issue_type",
            text_at(fields, &["issuetype", "name"])
                .unwrap_or("")
                .to_owned(),
        ),
        (
            "priority",
            text_at(fields, &["priority", "name"])
                .unwrap_or("")
                .to_owned(),
        ),
        ("assignee", person(fields.get("assignee"))),
        ("reporter", person(fields.get("reporter"))),
        ("jira_labels", jira_labels),
    ];
    let (labels, _) = adapter_labels(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)));
    let event_time = match obj.get("timestamp").and_then(Value::as_i64) {
        Some(ms) if ms > 0 => (ms / 1000) * 1000,
        _ => received_at - received_at.rem_euclid(1000),
    };
    Ok(Some(NewChangeEvent {
        title: truncate(&format!("[{key}] {summary}"), TITLE_MAX_CHARS),
        change_key: key,
        description: truncate(&description, DESCRIPTION_MAX_CHARS),
        change_status,
        link,
        labels,
        event_time,
    }))
}
