//! The contact-methods section of personal settings (response.md RSP-333): a new e-mail
//! address or phone number gets a code (`/member/self/contact/code`), and entering it makes
//! the address or number the member's, verified (`/member/self/contact/verify`). Each button
//! answers with the section redrawn; a refusal is shown beside the field it names, with
//! what was typed kept.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use minijinja::context;
use serde_json::{Value, json};

use super::forms::FieldErrors;
use super::incidents::{form_pairs, form_value, j, page_headers};
use super::{Viewer, call, page_error, view, viewer};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/settings/contact/code", post(send_code))
        .route("/settings/contact/verify", post(verify))
        .route("/settings/contact/cancel", post(cancel))
}

/// What one of the two forms shows: the typed values, and the target a code went to.
#[derive(Debug, Clone, Default)]
pub(super) struct KindForm {
    value: String,
    country_code: String,
    /// Shown (a phone masked) when a code was sent and awaits entry.
    pending: Option<String>,
    code: String,
}

/// Both forms, e-mail first.
#[derive(Debug, Clone, Default)]
pub(super) struct ContactForms {
    email: KindForm,
    phone: KindForm,
}

impl ContactForms {
    fn rows(&self) -> Vec<Value> {
        [
            ("email", "e-mail address", &self.email),
            ("phone", "phone number", &self.phone),
        ]
        .into_iter()
        .map(|(kind, label, f)| {
            json!({
                "kind": kind,
                "label": label,
                "value": f.value,
                "country_code": f.country_code,
                "pending": f.pending.is_some(),
                "target": f.pending.clone().unwrap_or_default(),
                "shown": f.pending.clone().unwrap_or_default(),
                "code": f.code,
            })
        })
        .collect()
    }

    fn of_kind(&mut self, kind: &str) -> &mut KindForm {
        if kind == "phone" {
            &mut self.phone
        } else {
            &mut self.email
        }
    }
}

fn status_of(e: &ApiError) -> StatusCode {
    if e.code == ErrorCode::InternalError {
        tracing::error!(error = %e.message, "console contact call failed");
    }
    StatusCode::from_u16(e.code.http_status(Surface::OpenApi)).unwrap_or(StatusCode::BAD_REQUEST)
}

/// The section's template context.
pub(super) async fn contact_ctx(
    state: &AppState,
    viewer: &Viewer,
    forms: &ContactForms,
    errors: &FieldErrors,
    flash: Option<&str>,
) -> Result<minijinja::Value, ApiError> {
    let me = super::me(state, viewer).await?;
    Ok(context! {
        me => j(&me),
        kinds => j(&forms.rows()),
        errors => j(&errors.0),
        flash => flash,
    })
}

async fn answer(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    forms: &ContactForms,
    errors: &FieldErrors,
    flash: Option<&str>,
) -> Response {
    match contact_ctx(state, viewer, forms, errors, flash).await {
        Ok(c) => page_headers(
            (status, view::render("contact.html", context! { c => c })).into_response(),
        ),
        Err(e) => page_error(&e),
    }
}

/// The input a refusal of `/member/self/contact/code` belongs to: its messages start with
/// the field (`email: …`, `phone is required`, `country_code …`).
fn input_of(message: &str) -> String {
    ["country_code", "email", "phone"]
        .into_iter()
        .find(|f| {
            message
                .strip_prefix(f)
                .is_some_and(|rest| rest.starts_with([':', ' ', ',']))
        })
        .unwrap_or("_form")
        .to_string()
}

fn kind_of(pairs: &[(String, String)]) -> String {
    if form_value(pairs, "kind") == "phone" {
        "phone".into()
    } else {
        "email".into()
    }
}

/// Sends a code to the typed address or number; on success the form asks for the code.
async fn send_code(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let viewer = match viewer(&state, &Method::POST, &headers, "/settings").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let pairs = form_pairs(&body);
    let kind = kind_of(&pairs);
    let mut forms = ContactForms::default();
    let form = forms.of_kind(&kind);
    form.value = form_value(&pairs, &kind).trim().to_string();
    form.country_code = form_value(&pairs, "country_code").trim().to_string();
    let args = if kind == "phone" {
        json!({"phone": form.value, "country_code": form.country_code})
    } else {
        json!({"email": form.value})
    };
    match call(&state, &viewer, "/member/self/contact/code", args).await {
        Ok(answer_body) => {
            let target = answer_body
                .as_ref()
                .and_then(|a| a["target"].as_str())
                .unwrap_or_default()
                .to_string();
            form.pending = Some(target);
            answer(
                &state,
                &viewer,
                StatusCode::OK,
                &forms,
                &FieldErrors::default(),
                None,
            )
            .await
        }
        Err(e) => {
            let errors = FieldErrors::one(&input_of(&e.message), e.message.clone());
            answer(&state, &viewer, status_of(&e), &forms, &errors, None).await
        }
    }
}

/// Checks the entered code; on success the section shows the new, verified contact.
async fn verify(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let viewer = match viewer(&state, &Method::POST, &headers, "/settings").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let pairs = form_pairs(&body);
    let kind = kind_of(&pairs);
    let code = form_value(&pairs, "code").trim().to_string();
    let args = json!({"kind": kind, "code": code});
    match call(&state, &viewer, "/member/self/contact/verify", args).await {
        Ok(_) => {
            let flash = if kind == "phone" {
                "Your phone number is changed and verified."
            } else {
                "Your e-mail address is changed and verified."
            };
            answer(
                &state,
                &viewer,
                StatusCode::OK,
                &ContactForms::default(),
                &FieldErrors::default(),
                Some(flash),
            )
            .await
        }
        Err(e) => {
            let mut forms = ContactForms::default();
            let form = forms.of_kind(&kind);
            form.pending = Some(form_value(&pairs, "target"));
            form.code = code;
            let errors = FieldErrors::one(&format!("{kind}_code"), e.message.clone());
            answer(&state, &viewer, status_of(&e), &forms, &errors, None).await
        }
    }
}

/// Leaves the code entry: the section as it was (the code simply expires).
async fn cancel(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = match viewer(&state, &Method::POST, &headers, "/settings").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    answer(
        &state,
        &viewer,
        StatusCode::OK,
        &ContactForms::default(),
        &FieldErrors::default(),
        None,
    )
    .await
}
