//! Writing the audit log (response.md §1.25, §2.32; docs/audit-log.md).
//!
//! One hook — [`record_call`], run by `openapi::serve`/`openapi::perform` around every Open
//! API and console call — decides whether a call is a write (from the route table, so a new
//! route is covered without touching its handler), builds the record and appends it after
//! the call, whatever its outcome: RSP-600 wants failed writes too. Sign-in events come from
//! `signin` through [`record_signin`].
//!
//! The record is appended after the handler's own transaction, not inside it: handlers own
//! their transactions, and threading one through every store call would touch every handler.
//! A failure to append is logged and does not turn a done change into an error.

use klaxon_core::error::ApiError;
use klaxon_core::model::Millis;
use klaxon_store::NewAuditRecord;
use serde_json::{Map, Value};

use crate::openapi::{Args, Caller};
use crate::state::AppState;

/// RSP-601: the stored request is cut at 10 KB.
pub const MAX_BODY_BYTES: usize = 10 * 1024;

/// RSP-603, OQ-39: the default retention and its floor, in days.
pub const DEFAULT_RETENTION_DAYS: i64 = 90;
pub const MIN_RETENTION_DAYS: i64 = 30;

const DAY_MS: Millis = 86_400_000;

/// Where a call came from and who made it, beyond the member (§1.25).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// `api` (an APP key), `console` (a session), [`SOURCE_CARD`] (a button on an IM app
    /// card, acting as the linked member), [`SOURCE_VOICE`] (a keypress during a call) or
    /// [`SOURCE_SMS`] (an SMS reply), the last two acting as the notified member.
    pub source: &'static str,
    pub request_id: String,
    /// The client's address as the server saw the connection; empty when unknown.
    pub ip: String,
    /// The APP key used; 0 for a session.
    pub app_key_id: i64,
    /// The client's `User-Agent` (cut to 512 characters); empty when unknown. Kept as
    /// evidence of agreement decisions (SVC-032).
    pub user_agent: String,
}

/// The origin of an action taken from an IM app card (RSP-310).
pub const SOURCE_CARD: &str = "card";
/// The origin of an action taken from the incident card in its war room (RSP-435).
pub const SOURCE_WCARD: &str = "wcard";
/// The origin of an acknowledgement by a keypress during a voice call (RSP-314).
pub const SOURCE_VOICE: &str = "voice";
/// The origin of an action taken by replying to an SMS (docs/notifications.md).
pub const SOURCE_SMS: &str = "sms";
/// The origin of an action taken through a one-click link in an e-mail (docs/notifications.md).
pub const SOURCE_LINK: &str = "link";

/// Key names whose values are secrets (RSP-601), matched case-insensitively as substrings.
const SECRET_KEYS: &[&str] = &[
    "password",
    "token",
    "secret",
    "authorization",
    "app_key",
    "api_key",
    "private_key",
];

/// Key names whose values are secrets only under exactly that name: a one-time `code`
/// (RSP-333) is one, but `country_code` or `error_code` are not.
const SECRET_EXACT_KEYS: &[&str] = &["code"];

fn is_secret_name(name: &str) -> bool {
    // Header names spell words with `-` (`X-Api-Key`), body fields with `_` (`api_key`).
    let lower = name.to_ascii_lowercase().replace('-', "_");
    SECRET_KEYS.iter().any(|s| lower.contains(s)) || SECRET_EXACT_KEYS.contains(&lower.as_str())
}

/// Replaces secret values by `***` (RSP-601): any key whose name looks secret, and the
/// `value` of `{name|key, value}` pairs (webhook headers given as a list) whose name does.
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let pair_name = ["name", "key"]
                .iter()
                .find_map(|k| map.get(*k).and_then(Value::as_str));
            let secret_pair = pair_name.is_some_and(is_secret_name);
            let out: Map<String, Value> = map
                .iter()
                .map(|(k, v)| {
                    let hide = (is_secret_name(k) && !v.is_null()) || (secret_pair && k == "value");
                    let v = if hide {
                        Value::String("***".into())
                    } else {
                        redact(v)
                    };
                    (k.clone(), v)
                })
                .collect();
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

/// The redacted request as text, cut at [`MAX_BODY_BYTES`] on a character boundary.
pub fn body_text(args: &Map<String, Value>) -> String {
    let text = redact(&Value::Object(args.clone())).to_string();
    cut(text, MAX_BODY_BYTES)
}

fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// `/channel/escalate/rule/create` → (`channel_escalate_rule`, `create`).
fn split_path(path: &str) -> (String, String) {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.split_last() {
        Some((action, rest)) if !rest.is_empty() => {
            (rest.join("_").replace('-', "_"), action.replace('-', "_"))
        }
        _ => (parts.join("_").replace('-', "_"), String::new()),
    }
}

/// The operation name of a route, shaped like Flashduty's `template:write:create`.
pub fn operation_of(path: &str) -> String {
    let (resource, action) = split_path(path);
    format!("{resource}:write:{action}")
}

/// Deletions and switching things off are flagged `is_dangerous` (§1.25).
fn dangerous(action: &str) -> bool {
    matches!(
        action,
        "delete" | "disable" | "revoke" | "merge" | "rotate_key"
    ) || action.starts_with("delete")
        || action.ends_with("_delete")
}

/// The object a call names: the first id-like field of the body, lists joined by commas.
fn resource_id(args: &Map<String, Value>) -> String {
    const KEYS: &[&str] = &[
        "incident_id",
        "incident_ids",
        "rule_id",
        "channel_id",
        "integration_id",
        "team_id",
        "team_ids",
        "member_id",
        "member_ids",
        "person_id",
        "person_ids",
        "role_id",
        "schedule_id",
        "calendar_id",
        "field_id",
        "key_id",
        "grant_id",
        "id",
    ];
    for k in KEYS {
        match args.get(*k) {
            Some(Value::Number(n)) => return n.to_string(),
            Some(Value::String(s)) if !s.is_empty() => return s.clone(),
            Some(Value::Array(items)) if !items.is_empty() => {
                return items
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(",");
            }
            _ => {}
        }
    }
    String::new()
}

fn keep_after(state: &AppState, now: Millis) -> Millis {
    let days = state
        .config
        .auth
        .audit_retention_days
        .max(MIN_RETENTION_DAYS);
    now - days * DAY_MS
}

async fn append(state: &AppState, record: NewAuditRecord) {
    let keep = keep_after(state, record.created_at);
    if let Err(e) = state.store.append_audit(&record, keep).await {
        tracing::error!(
            request_id = %record.request_id,
            operation = %record.operation,
            error = %e,
            "cannot append the audit record"
        );
    }
}

/// Records one Open API / console call when its route is a write (RSP-600); reads are not
/// recorded. `args` is `None` when the call failed before its body was read.
pub async fn record_call(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: Option<&Args>,
    result: Result<(), &ApiError>,
) {
    record_call_with(state, caller, path, args, result, None).await;
}

/// [`record_call`], with the call's `answer` kept in the body under `answer` when given: what
/// a deletion removed belongs in its record (service-agreement.md SVC-183).
pub async fn record_call_with(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: Option<&Args>,
    result: Result<(), &ApiError>,
    answer: Option<&Value>,
) {
    if !crate::openapi::is_write_route(path) {
        return;
    }
    let (resource_type, action) = split_path(path);
    let empty = Map::new();
    let request = args.map(Args::raw).unwrap_or(&empty);
    // Copied only when there is an answer to add (one route); every other write borrows.
    let with_answer = answer.map(|a| {
        let mut body = request.clone();
        body.insert("answer".to_string(), a.clone());
        body
    });
    let body = with_answer.as_ref().unwrap_or(request);
    let record = NewAuditRecord {
        account_id: caller.account_id,
        request_id: caller.origin.request_id.clone(),
        created_at: state.clock.now(),
        member_id: caller.member_id,
        app_key_id: caller.origin.app_key_id,
        source: caller.origin.source.to_string(),
        operation: operation_of(path),
        resource_id: resource_id(body),
        resource_type,
        ip: caller.origin.ip.clone(),
        is_write: true,
        is_dangerous: dangerous(&action),
        body: body_text(body),
        result: match result {
            Ok(()) => "ok".to_string(),
            Err(e) => e.code.as_str().to_string(),
        },
    };
    append(state, record).await;
}

/// Records a console sign-in or sign-out of a known member (RSP-600 counts logins).
pub async fn record_signin(
    state: &AppState,
    account_id: i64,
    member_id: i64,
    action: &str,
    ip: &str,
    result: &str,
) {
    let record = NewAuditRecord {
        account_id,
        request_id: crate::state::new_request_id(),
        created_at: state.clock.now(),
        member_id,
        app_key_id: 0,
        source: "console".to_string(),
        operation: format!("member:write:{action}"),
        resource_type: "member".to_string(),
        resource_id: member_id.to_string(),
        ip: ip.to_string(),
        is_write: true,
        is_dangerous: false,
        body: "{}".to_string(),
        result: result.to_string(),
    };
    append(state, record).await;
}

/// Records a directory (LDAP) sign-in refused for a wrong user name or password (RSP-600:
/// logins are audited). The directory decides who the name belongs to, so the record names
/// no member; the typed user name is kept so an administrator can see who is being tried.
pub async fn record_directory_signin_refused(
    state: &AppState,
    account_id: i64,
    username: &str,
    ip: &str,
    result: &str,
) {
    let record = NewAuditRecord {
        account_id,
        request_id: crate::state::new_request_id(),
        created_at: state.clock.now(),
        member_id: 0,
        app_key_id: 0,
        source: "console".to_string(),
        operation: "member:write:ldap_login".to_string(),
        resource_type: "member".to_string(),
        resource_id: String::new(),
        ip: ip.to_string(),
        is_write: true,
        is_dangerous: false,
        body: serde_json::json!({ "username": username }).to_string(),
        result: result.to_string(),
    };
    append(state, record).await;
}

/// Records a download of a full export through its link (SVC-182: exports are audited). The
/// link is the credential, so the record names no member.
pub async fn record_export_download(state: &AppState, account_id: i64, export_id: i64, ip: &str) {
    let record = NewAuditRecord {
        account_id,
        request_id: crate::state::new_request_id(),
        created_at: state.clock.now(),
        member_id: 0,
        app_key_id: 0,
        source: "api".to_string(),
        operation: "account_export:read:download".to_string(),
        resource_type: "account_export".to_string(),
        resource_id: export_id.to_string(),
        ip: ip.to_string(),
        is_write: false,
        is_dangerous: false,
        body: serde_json::json!({ "export_id": export_id }).to_string(),
        result: "ok".to_string(),
    };
    append(state, record).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_masked_at_any_depth() {
        // spec: RSP-601
        let v = json!({
            "name": "hook",
            "password": "p",
            "settings": {"client_secret": "s", "url": "https://x"},
            "headers": [
                {"name": "X-Auth-Token", "value": "t"},
                {"name": "Accept", "value": "json"}
            ],
            "header_map": {"Authorization": "Bearer z", "X-Trace": "1", "X-Api-Key": "k"},
        });
        let r = redact(&v);
        assert_eq!(r["password"], "***");
        assert_eq!(r["settings"]["client_secret"], "***");
        assert_eq!(r["settings"]["url"], "https://x");
        assert_eq!(r["headers"][0]["value"], "***");
        assert_eq!(r["headers"][1]["value"], "json");
        assert_eq!(r["header_map"]["Authorization"], "***");
        assert_eq!(r["header_map"]["X-Trace"], "1");
        assert_eq!(r["header_map"]["X-Api-Key"], "***");
        assert_eq!(r["name"], "hook");
    }

    #[test]
    fn the_body_is_cut_at_10_kb() {
        // spec: RSP-601
        let mut m = Map::new();
        m.insert("description".into(), Value::String("é".repeat(20_000)));
        let t = body_text(&m);
        assert!(t.len() <= MAX_BODY_BYTES && t.len() > MAX_BODY_BYTES - 4);
    }

    #[test]
    fn operations_are_named_after_the_route() {
        assert_eq!(operation_of("/incident/ack"), "incident:write:ack");
        assert_eq!(
            operation_of("/channel/escalate/rule/create"),
            "channel_escalate_rule:write:create"
        );
        assert_eq!(operation_of("/app-key/delete"), "app_key:write:delete");
        assert!(dangerous("delete"));
        assert!(dangerous("bulk_delete"));
        assert!(!dangerous("ack"));
    }
}
