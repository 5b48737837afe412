//! Personal settings: one's name, language and time zone (`/member/info`,
//! `/member/self/reset`), one's contact methods (the section of `contact`, RSP-333), one's notification preference per
//! severity (`/member/preference/info`, `/member/preference/update`; response.md §1.15,
//! §2.21), and one's APP keys (`/app-key/list`, `/app-key/create`, `/app-key/delete`;
//! RSP-610 … RSP-612). Every read and save is an Open API call.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use klaxon_core::permissions::{self, Point};
use klaxon_core::response::rules::DIRECT_CHANNELS;
use minijinja::context;
use serde_json::{Value, json};

use super::forms::FieldErrors;
use super::incidents::{form_pairs, form_value, j, page_headers};
use super::{Viewer, call, fetch, page_error, view, viewer};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/settings", get(page))
        .route("/settings/profile", post(save_profile))
        .route("/settings/preference", post(save_preference))
        .route("/settings/keys", post(create_key))
        .route("/settings/keys/{id}/delete", post(revoke_key))
        .route("/settings/devices", post(add_device))
        .route("/settings/devices/{id}/delete", post(remove_device))
}

const LOCALES: [(&str, &str); 2] = [("en-US", "English"), ("zh-CN", "中文")];

fn status_of(e: &ApiError) -> StatusCode {
    if e.code == ErrorCode::InternalError {
        tracing::error!(error = %e.message, "console settings call failed");
    }
    StatusCode::from_u16(e.code.http_status(Surface::OpenApi)).unwrap_or(StatusCode::BAD_REQUEST)
}

/// What the profile form shows: the typed values, kept through a refusal.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct ProfileForm {
    member_name: String,
    time_zone: String,
    locale: String,
}

impl ProfileForm {
    fn parse(pairs: &[(String, String)]) -> ProfileForm {
        ProfileForm {
            member_name: form_value(pairs, "member_name"),
            time_zone: form_value(pairs, "time_zone").trim().to_string(),
            locale: form_value(pairs, "locale"),
        }
    }

    fn of(me: &Value) -> ProfileForm {
        let s = |k: &str| me[k].as_str().unwrap_or("").to_string();
        ProfileForm {
            member_name: s("member_name"),
            time_zone: s("time_zone"),
            locale: s("locale"),
        }
    }

    /// The `/member/self/reset` body. The API reads an empty value as "leave unchanged"
    /// (openapi-compat.md 1.3); in a form an emptied box would then silently keep the old
    /// value, so an empty name or zone is refused here, at its input, before anything is sent.
    fn body(&self) -> Result<Value, FieldErrors> {
        if self.member_name.trim().is_empty() {
            return Err(FieldErrors::one(
                "member_name",
                "updates.member_name: required",
            ));
        }
        if self.time_zone.is_empty() {
            return Err(FieldErrors::one(
                "time_zone",
                "updates.time_zone: required (an IANA name such as Europe/Berlin)",
            ));
        }
        Ok(json!({"updates": {
            "member_name": self.member_name,
            "time_zone": self.time_zone,
            "locale": self.locale,
        }}))
    }
}

/// The input an API error field of `/member/self/reset` belongs to.
fn profile_input(field: &str) -> Option<String> {
    let input = match field.strip_prefix("updates.")? {
        "member_name" => "member_name",
        "time_zone" => "time_zone",
        "locale" => "locale",
        _ => return None,
    };
    Some(input.to_string())
}

/// The severities of the preference form: wire key and label.
const SEVERITY_KEYS: [(&str, &str); 3] = [
    ("critical", "Critical"),
    ("warning", "Warning"),
    ("info", "Info"),
];

fn channel_label(channel: &str) -> &'static str {
    match channel {
        "voice" => "Voice call",
        "sms" => "SMS",
        "email" => "E-mail",
        "app" => "Mobile app push",
        "feishu_app" => "Feishu/Lark app",
        "dingtalk_app" => "DingTalk app",
        "wecom_app" => "WeCom app",
        "slack_app" => "Slack app",
        "teams_app" => "Microsoft Teams app",
        _ => "Unknown channel",
    }
}

/// A preference entry as a checkbox value: `sms`, or `slack_app:42` for an entry that picks
/// one IM integration (response.md 1.15).
fn entry_value(entry: &Value) -> String {
    if let Some(name) = entry.as_str() {
        return name.to_string();
    }
    let channel = entry["channel"].as_str().unwrap_or_default();
    match entry["integration_id"].as_i64() {
        Some(id) => format!("{channel}:{id}"),
        None => channel.to_string(),
    }
}

/// The API's list entry for a checkbox value.
fn value_entry(value: &str) -> Value {
    match value.split_once(':') {
        Some((channel, id)) => match id.parse::<i64>() {
            Ok(id) => json!({"channel": channel, "integration_id": id}),
            // Not a number: sent as typed so the API names the field.
            Err(_) => json!({"channel": channel, "integration_id": id}),
        },
        None => json!(value),
    }
}

/// What the preference form shows: the checked channels per severity, kept through a refusal.
#[derive(Debug, Clone, Default)]
struct PreferenceForm {
    /// Per severity key, the checked values in order.
    checked: Vec<(String, Vec<String>)>,
}

impl PreferenceForm {
    fn parse(pairs: &[(String, String)]) -> PreferenceForm {
        PreferenceForm {
            checked: SEVERITY_KEYS
                .iter()
                .map(|(key, _)| {
                    let values = pairs
                        .iter()
                        .filter(|(k, _)| k == key)
                        .map(|(_, v)| v.trim().to_string())
                        .filter(|v| !v.is_empty())
                        .collect();
                    ((*key).to_string(), values)
                })
                .collect(),
        }
    }

    fn of(pref: &Value) -> PreferenceForm {
        PreferenceForm {
            checked: SEVERITY_KEYS
                .iter()
                .map(|(key, _)| {
                    let values = pref[*key]
                        .as_array()
                        .map(|l| l.iter().map(entry_value).collect())
                        .unwrap_or_default();
                    ((*key).to_string(), values)
                })
                .collect(),
        }
    }

    /// The `/member/preference/update` body. An empty severity goes to the API as it is, so
    /// its refusal names the field like every other one.
    fn body(&self) -> Value {
        let mut body = serde_json::Map::new();
        for (key, values) in &self.checked {
            body.insert(
                key.clone(),
                Value::Array(values.iter().map(|v| value_entry(v)).collect()),
            );
        }
        Value::Object(body)
    }

    /// One fieldset per severity: every direct channel, plus the IM integrations picked in
    /// stored or typed entries, each with whether it is checked and the warnings (RSP-332)
    /// of the saved preference that concern it.
    fn rows(&self, warnings: &[Value]) -> Vec<Value> {
        SEVERITY_KEYS
            .iter()
            .map(|(key, label)| {
                let checked: &[String] = self
                    .checked
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.as_slice())
                    .unwrap_or_default();
                let mut values: Vec<String> =
                    DIRECT_CHANNELS.iter().map(|c| (*c).to_string()).collect();
                for v in checked {
                    if !values.contains(v) {
                        values.push(v.clone());
                    }
                }
                let options: Vec<Value> = values
                    .iter()
                    .map(|v| {
                        let (channel, pick) = match v.split_once(':') {
                            Some((c, id)) => (c, Some(id)),
                            None => (v.as_str(), None),
                        };
                        let label = match pick {
                            Some(id) => format!("{} (integration {id})", channel_label(channel)),
                            None => channel_label(channel).to_string(),
                        };
                        json!({
                            "value": v,
                            "id": format!("pref-{key}-{}", v.replace(':', "-")),
                            "label": label,
                            "checked": checked.contains(v),
                        })
                    })
                    .collect();
                let prefix = format!("{key}[");
                let notes: Vec<Value> = warnings
                    .iter()
                    .filter(|w| w["field"].as_str().is_some_and(|f| f.starts_with(&prefix)))
                    .map(|w| {
                        json!({
                            "label": channel_label(w["channel"].as_str().unwrap_or_default()),
                            "message": w["message"],
                        })
                    })
                    .collect();
                json!({"key": key, "label": label, "options": options, "warnings": notes})
            })
            .collect()
    }
}

/// The fieldset an API error field of `/member/preference/update` belongs to:
/// `warning[1].channel` → `warning`.
fn preference_input(field: &str) -> Option<String> {
    let head = field.split(['[', '.']).next().unwrap_or_default();
    SEVERITY_KEYS
        .iter()
        .any(|(k, _)| *k == head)
        .then(|| head.to_string())
}

async fn preference_ctx(
    state: &AppState,
    viewer: &Viewer,
    form: Option<PreferenceForm>,
    errors: &FieldErrors,
    flash: Option<&str>,
) -> Result<minijinja::Value, ApiError> {
    let pref = fetch(state, viewer, "/member/preference/info", json!({})).await?;
    let warnings = pref["warnings"].as_array().cloned().unwrap_or_default();
    let v = form.unwrap_or_else(|| PreferenceForm::of(&pref));
    Ok(context! {
        rows => j(&v.rows(&warnings)),
        is_default => pref["is_default"].as_bool().unwrap_or(false),
        errors => j(&errors.0),
        flash => flash,
    })
}

async fn profile_ctx(
    state: &AppState,
    viewer: &Viewer,
    form: Option<ProfileForm>,
    errors: &FieldErrors,
    flash: Option<&str>,
) -> Result<minijinja::Value, ApiError> {
    let me = super::me(state, viewer).await?;
    let v = form.unwrap_or_else(|| ProfileForm::of(&me));
    Ok(context! {
        me => j(&me),
        v => j(&v),
        locales => LOCALES.iter().map(|(k, l)| (k.to_string(), l.to_string())).collect::<Vec<_>>(),
        errors => j(&errors.0),
        flash => flash,
    })
}

/// Everything `app_keys.html` draws. `None` when the viewer may not see keys at all
/// (RSP-521 `API Keys Read`).
async fn keys_ctx(
    state: &AppState,
    viewer: &Viewer,
    created: Option<Value>,
    key_name: &str,
    errors: &FieldErrors,
    flash: Option<String>,
) -> Result<minijinja::Value, ApiError> {
    let actor = &viewer.caller.actor;
    if permissions::allowed(actor, Point::ApiKeysRead, None).is_err() {
        return Ok(context! { hidden => true });
    }
    let keys = fetch(state, viewer, "/app-key/list", json!({})).await?;
    Ok(context! {
        items => j(&keys["items"]),
        me => viewer.caller.member_id,
        manage => permissions::allowed(actor, Point::ApiKeysManage, None).is_ok(),
        created => created.map(|c| j(&c)),
        key_name => key_name,
        errors => j(&errors.0),
        flash => flash,
        now => super::incidents::now_secs(state),
    })
}

/// Everything `push_devices.html` draws (RSP-285).
async fn devices_ctx(
    state: &AppState,
    viewer: &Viewer,
    name: &str,
    errors: &FieldErrors,
    flash: Option<String>,
) -> Result<minijinja::Value, ApiError> {
    if state.config.notify.push.is_none() {
        return Ok(context! { configured => false });
    }
    let devices = fetch(state, viewer, "/member/self/device/list", json!({})).await?;
    Ok(context! {
        configured => true,
        items => j(&devices["items"]),
        name => name,
        errors => j(&errors.0),
        flash => flash,
        now => super::incidents::now_secs(state),
    })
}

fn devices_fragment(status: StatusCode, d: minijinja::Value) -> Response {
    page_headers(
        (
            status,
            view::render("push_devices.html", context! { d => d }),
        )
            .into_response(),
    )
}

/// Adds a device for app push; its address to subscribe to appears in the list.
async fn add_device(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let viewer = match viewer(&state, &Method::POST, &headers, "/settings").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let name = form_value(&form_pairs(&body), "name");
    let (status, kept, errors, flash) = match call(
        &state,
        &viewer,
        "/member/self/device/create",
        json!({"name": name}),
    )
    .await
    {
        Ok(_) => (
            StatusCode::OK,
            String::new(),
            FieldErrors::default(),
            Some("Device added: subscribe the ntfy app on it to the address below.".to_string()),
        ),
        // Every refusal of an add (name, the limit of five) belongs to the name box.
        Err(e) => (
            status_of(&e),
            name,
            FieldErrors::one("name", e.message),
            None,
        ),
    };
    match devices_ctx(&state, &viewer, &kept, &errors, flash).await {
        Ok(d) => devices_fragment(status, d),
        Err(e) => page_error(&e),
    }
}

/// Removes one of the viewer's devices.
async fn remove_device(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let viewer = match viewer(&state, &Method::POST, &headers, "/settings").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let device_id = id.parse::<i64>().map_or_else(|_| json!(id), |n| json!(n));
    let (status, errors, flash) = match call(
        &state,
        &viewer,
        "/member/self/device/delete",
        json!({"device_id": device_id}),
    )
    .await
    {
        Ok(_) => (
            StatusCode::OK,
            FieldErrors::default(),
            Some("Device removed.".to_string()),
        ),
        Err(e) => (status_of(&e), FieldErrors::one("_list", e.message), None),
    };
    match devices_ctx(&state, &viewer, "", &errors, flash).await {
        Ok(d) => devices_fragment(status, d),
        Err(e) => page_error(&e),
    }
}

async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = match viewer(&state, &Method::GET, &headers, "/settings").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let profile = match profile_ctx(&state, &viewer, None, &FieldErrors::default(), None).await {
        Ok(p) => p,
        Err(e) => return page_error(&e),
    };
    let keys = match keys_ctx(&state, &viewer, None, "", &FieldErrors::default(), None).await {
        Ok(k) => k,
        Err(e) => return page_error(&e),
    };
    let devices = match devices_ctx(&state, &viewer, "", &FieldErrors::default(), None).await {
        Ok(d) => d,
        Err(e) => return page_error(&e),
    };
    let me = match super::me(&state, &viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    let pr = match preference_ctx(&state, &viewer, None, &FieldErrors::default(), None).await {
        Ok(p) => p,
        Err(e) => return page_error(&e),
    };
    let contact = match super::contact::contact_ctx(
        &state,
        &viewer,
        &Default::default(),
        &FieldErrors::default(),
        None,
    )
    .await
    {
        Ok(c) => c,
        Err(e) => return page_error(&e),
    };
    let ctx = context! {
        title => "Settings",
        nav => "settings",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        p => profile,
        c => contact,
        k => keys,
        d => devices,
        pr => pr,
    };
    page_headers(view::render("settings.html", ctx).into_response())
}

/// Saves name, language and time zone; answers with the redrawn profile section.
async fn save_profile(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let viewer = match viewer(&state, &Method::POST, &headers, "/settings").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let form = ProfileForm::parse(&form_pairs(&body));
    let (status, kept, errors, flash) = match form.body() {
        Err(errors) => (StatusCode::BAD_REQUEST, Some(form), errors, None),
        Ok(args) => match call(&state, &viewer, "/member/self/reset", args).await {
            Ok(_) => (StatusCode::OK, None, FieldErrors::default(), Some("Saved.")),
            Err(e) => (
                status_of(&e),
                Some(form),
                FieldErrors::file(&e.message, profile_input),
                None,
            ),
        },
    };
    match profile_ctx(&state, &viewer, kept, &errors, flash).await {
        Ok(p) => page_headers(
            (status, view::render("profile.html", context! { p => p })).into_response(),
        ),
        Err(e) => page_error(&e),
    }
}

/// Saves the notification preference; answers with the redrawn preference section, whose
/// warnings (RSP-332) reflect what was saved.
async fn save_preference(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let viewer = match viewer(&state, &Method::POST, &headers, "/settings").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let form = PreferenceForm::parse(&form_pairs(&body));
    let (status, kept, errors, flash) =
        match call(&state, &viewer, "/member/preference/update", form.body()).await {
            Ok(_) => (StatusCode::OK, None, FieldErrors::default(), Some("Saved.")),
            Err(e) => (
                status_of(&e),
                Some(form),
                FieldErrors::file(&e.message, preference_input),
                None,
            ),
        };
    match preference_ctx(&state, &viewer, kept, &errors, flash).await {
        Ok(pr) => page_headers(
            (
                status,
                view::render("preference.html", context! { pr => pr }),
            )
                .into_response(),
        ),
        Err(e) => page_error(&e),
    }
}

fn keys_fragment(status: StatusCode, k: minijinja::Value) -> Response {
    page_headers((status, view::render("app_keys.html", context! { k => k })).into_response())
}

/// Creates an APP key and shows its secret, once.
async fn create_key(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let viewer = match viewer(&state, &Method::POST, &headers, "/settings").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let name = form_value(&form_pairs(&body), "key_name");
    let (status, created, kept, errors) = match call(
        &state,
        &viewer,
        "/app-key/create",
        json!({"key_name": name}),
    )
    .await
    {
        Ok(c) => (StatusCode::OK, c, String::new(), FieldErrors::default()),
        Err(e) => (
            status_of(&e),
            None,
            name,
            // Every refusal of a create (name, the limit of five) belongs to the name box.
            FieldErrors::one("key_name", e.message),
        ),
    };
    match keys_ctx(&state, &viewer, created, &kept, &errors, None).await {
        Ok(k) => keys_fragment(status, k),
        Err(e) => page_error(&e),
    }
}

/// Revokes one of the viewer's keys (it stops working at once, RSP-611).
async fn revoke_key(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let viewer = match viewer(&state, &Method::POST, &headers, "/settings").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    // A non-number goes through as text, so the API's own check names the field.
    let key_id = id.parse::<i64>().map_or_else(|_| json!(id), |n| json!(n));
    let (status, errors, flash) = match call(
        &state,
        &viewer,
        "/app-key/delete",
        json!({"key_id": key_id}),
    )
    .await
    {
        Ok(_) => (
            StatusCode::OK,
            FieldErrors::default(),
            Some("Key revoked: it no longer works.".to_string()),
        ),
        Err(e) => (status_of(&e), FieldErrors::one("_list", e.message), None),
    };
    match keys_ctx(&state, &viewer, None, "", &errors, flash).await {
        Ok(k) => keys_fragment(status, k),
        Err(e) => page_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emptied_name_or_zone_is_refused_at_its_input() {
        let parse = |raw: &str| {
            ProfileForm::parse(&serde_urlencoded::from_str::<Vec<(String, String)>>(raw).unwrap())
        };
        let e = parse("member_name=+&time_zone=UTC&locale=en-US")
            .body()
            .unwrap_err();
        assert!(e.0.contains_key("member_name"));
        let e = parse("member_name=Ann&time_zone=&locale=en-US")
            .body()
            .unwrap_err();
        assert!(e.0.contains_key("time_zone"));
        let b = parse("member_name=Ann&time_zone=UTC&locale=en-US")
            .body()
            .unwrap();
        assert_eq!(b["updates"]["time_zone"], "UTC");
        assert_eq!(
            profile_input("updates.time_zone").as_deref(),
            Some("time_zone")
        );
        assert_eq!(profile_input("updates.email"), None);
    }

    #[test]
    fn the_preference_form_round_trips_and_files_errors_by_severity() {
        // spec: response.md 1.15 (PrefChannel), RSP-330
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(
            "critical=voice&critical=slack_app%3A42&warning=sms&info=email",
        )
        .unwrap();
        let form = PreferenceForm::parse(&pairs);
        let body = form.body();
        assert_eq!(
            body,
            json!({"critical": ["voice", {"channel": "slack_app", "integration_id": 42}],
                   "warning": ["sms"], "info": ["email"]})
        );
        assert_eq!(PreferenceForm::of(&body).checked, form.checked);
        let rows = form.rows(&[json!({"field": "critical[1]", "channel": "slack_app",
                                       "message": "not linked"})]);
        assert_eq!(rows[0]["key"], "critical");
        let picked = rows[0]["options"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["value"] == "slack_app:42")
            .unwrap();
        assert_eq!(picked["checked"], true);
        assert_eq!(picked["id"], "pref-critical-slack_app-42");
        assert_eq!(rows[0]["warnings"][0]["message"], "not linked");
        assert!(rows[1]["warnings"].as_array().unwrap().is_empty());
        assert_eq!(
            preference_input("warning[1].channel").as_deref(),
            Some("warning")
        );
        assert_eq!(preference_input("info").as_deref(), Some("info"));
        assert_eq!(preference_input("member_id"), None);
    }
}
