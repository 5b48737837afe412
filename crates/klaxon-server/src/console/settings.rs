//! Personal settings: one's own contact methods and whether they are verified, name, language
//! and time zone (`/member/info`, `/member/self/reset`), the notification methods in force
//! (response.md §1.15), and one's APP keys (`/app-key/list`, `/app-key/create`,
//! `/app-key/delete`; RSP-610 … RSP-612). Every read and save is an Open API call.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use klaxon_core::model::Severity;
use klaxon_core::permissions::{self, Point};
use klaxon_core::response::default_preference;
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
        .route("/settings/keys", post(create_key))
        .route("/settings/keys/{id}/delete", post(revoke_key))
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

/// The notification methods per severity every member has in this release (response.md
/// §1.15, the defaults of OQ-24): personal preferences cannot be edited yet.
fn methods() -> Vec<(String, Vec<String>)> {
    [Severity::Critical, Severity::Warning, Severity::Info]
        .into_iter()
        .map(|s| (s.as_str().to_string(), default_preference(s)))
        .collect()
}

async fn profile_ctx(
    state: &AppState,
    viewer: &Viewer,
    form: Option<ProfileForm>,
    errors: &FieldErrors,
    flash: Option<&str>,
) -> Result<minijinja::Value, ApiError> {
    let me = fetch(state, viewer, "/member/info", json!({})).await?;
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
    let me = match fetch(&state, &viewer, "/member/info", json!({})).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    let ctx = context! {
        title => "Settings",
        nav => "settings",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        p => profile,
        k => keys,
        methods => methods(),
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

    // spec: OQ-24 defaults shown as the methods in force (response.md §1.15)
    #[test]
    fn the_methods_in_force_are_the_defaults() {
        let m = methods();
        assert_eq!(m[0].0, "Critical");
        assert_eq!(m[0].1, vec!["email", "sms", "voice"]);
        assert_eq!(m[2].1, vec!["email"]);
    }
}
