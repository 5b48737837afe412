//! The Account page of a SaaS tenant (docs/saas.md "The Account page"): edition, licences and
//! term (`/account/info`, `/account/licence/info`), the agreement versions with Accept and
//! Refuse (`/account/agreement/*`), the notices sent to the tenant (`/account/notice/list`),
//! the delivery providers of its region (`/account/delivery-provider/list`), operator access
//! grants (`/account/access-grant/*`), cross-region transfer consents
//! (`/account/transfer-consent/*`), the monthly SLA report with compensation claims
//! (`/account/sla/*`) and data exports (`/account/export/*`).
//!
//! Every read and write is the Open API call of the same path, so permissions (the owner and
//! admins read; refusing an agreement and transfer consents are the owner's), validation and
//! the audit record (source `console`) are the API's. A self-hosted install has no account
//! page: the route answers 404.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use klaxon_saas::grant::WRITE_OPERATIONS;
use klaxon_saas::transfer::CATEGORIES;
use minijinja::context;
use serde_json::{Value, json};

use super::forms::FieldErrors;
use super::incidents::{form_pairs, form_value, j, now_secs, page_headers};
use super::{Viewer, call, fetch, page_error, view, viewer};
use crate::openapi::{check_route, may_call};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account", get(page))
        .route("/account/agreement/{id}/accept", post(accept))
        .route("/account/agreement/{id}/refuse", post(refuse))
        .route("/account/grant", post(create_grant))
        .route("/account/grant/{id}/revoke", post(revoke_grant))
        .route("/account/consent", post(create_consent))
        .route("/account/consent/{id}/revoke", post(revoke_consent))
        .route("/account/sla/claim", post(claim_sla))
        .route("/account/export", post(create_export))
}

/// The Open API reads the page is drawn from. Every one must be open to the viewer; the
/// stricter ones (`AccountAdmin`) make the page the owner's and admins'.
const READS: [&str; 10] = [
    "/account/info",
    "/account/licence/info",
    "/account/agreement/list",
    "/account/notice/list",
    "/account/delivery-provider/list",
    "/account/access-grant/list",
    "/account/transfer-consent/list",
    "/account/sla/report",
    "/account/sla/claim/list",
    "/account/export/list",
];

/// Notices drawn on the page (the newest).
const NOTICES: i64 = 20;

/// Whether the nav shows the Account entry to this viewer: SaaS mode and every read of the
/// page allowed by the Open API's route permissions.
pub(super) fn shown(state: &AppState, viewer: &Viewer) -> bool {
    state.saas.is_some() && READS.iter().all(|p| may_call(&viewer.caller.actor, p))
}

/// The page's answer when the viewer may not have it: 404 when self-hosted (there is no
/// account to manage), the Open API's refusal of the first read they lack otherwise.
fn refusal(state: &AppState, viewer: &Viewer) -> Option<ApiError> {
    if state.saas.is_none() {
        return Some(ApiError::new(
            ErrorCode::ResourceNotFound,
            "a self-hosted install has no Account page: there is no operator account to manage",
        ));
    }
    READS
        .iter()
        .find_map(|p| check_route(&viewer.caller.actor, p).err())
}

fn status_of(e: &ApiError) -> StatusCode {
    if e.code == ErrorCode::InternalError {
        tracing::error!(error = %e.message, "console account call failed");
    }
    StatusCode::from_u16(e.code.http_status(Surface::OpenApi)).unwrap_or(StatusCode::BAD_REQUEST)
}

/// What the grant form shows: the typed values, kept through a refusal.
#[derive(Debug, Clone, serde::Serialize)]
struct GrantForm {
    scope: String,
    hours: String,
    purpose: String,
    ticket_id: String,
}

impl Default for GrantForm {
    fn default() -> GrantForm {
        GrantForm {
            scope: "read_all".into(),
            hours: "24".into(),
            purpose: String::new(),
            ticket_id: String::new(),
        }
    }
}

impl GrantForm {
    fn parse(pairs: &[(String, String)]) -> GrantForm {
        GrantForm {
            scope: form_value(pairs, "scope"),
            hours: form_value(pairs, "hours").trim().to_string(),
            purpose: form_value(pairs, "purpose"),
            ticket_id: form_value(pairs, "ticket_id"),
        }
    }

    /// The `/account/access-grant/create` body: the grant starts now and lasts `hours`. How
    /// long a grant may last is the API's rule (SVC-221); only the number itself is read here.
    fn body(&self, now: i64) -> Result<Value, FieldErrors> {
        let hours: i64 = self
            .hours
            .parse()
            .map_err(|_| FieldErrors::one("hours", "hours: a whole number of hours, such as 24"))?;
        let end = hours
            .checked_mul(3600)
            .and_then(|s| s.checked_add(now))
            .ok_or_else(|| FieldErrors::one("hours", "hours: too many hours"))?;
        Ok(json!({
            "scope": self.scope,
            "purpose": self.purpose,
            "ticket_id": self.ticket_id,
            "end_time": end,
        }))
    }
}

/// The grant input an API refusal belongs to (SVC-221's messages name the field).
fn grant_input(message: &str) -> String {
    let of = [
        ("end_time", "hours"),
        ("start_time", "hours"),
        ("purpose", "purpose"),
        ("ticket_id", "ticket_id"),
        ("scope", "scope"),
    ];
    of.iter()
        .find(|(field, _)| message.contains(field))
        .map_or("_grant", |(_, input)| input)
        .to_string()
}

/// What the consent form shows: the typed values, kept through a refusal.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct ConsentForm {
    purpose: String,
    destination_region: String,
    categories: Vec<String>,
}

impl ConsentForm {
    fn parse(pairs: &[(String, String)]) -> ConsentForm {
        ConsentForm {
            purpose: form_value(pairs, "consent_purpose"),
            destination_region: form_value(pairs, "destination_region").trim().to_string(),
            categories: pairs
                .iter()
                .filter(|(k, _)| k == "categories")
                .map(|(_, v)| v.clone())
                .collect(),
        }
    }

    fn body(&self) -> Value {
        json!({
            "purpose": self.purpose,
            "destination_region": self.destination_region,
            "categories": self.categories,
        })
    }
}

/// The consent input an API refusal belongs to (SVC-212's messages name the field).
fn consent_input(message: &str) -> String {
    let of = [
        ("destination_region", "destination_region"),
        ("categories", "categories"),
        ("purpose", "consent_purpose"),
    ];
    of.iter()
        .find(|(field, _)| message.contains(field))
        .map_or("_consent", |(_, input)| input)
        .to_string()
}

/// What a redraw carries besides the stored state: forms as typed, errors, a message.
#[derive(Default)]
struct Redraw {
    grant: Option<GrantForm>,
    consent: Option<ConsentForm>,
    /// The SLA report's month (`YYYY-MM`); the last full month when not given.
    month: Option<String>,
    /// An export's download link, shown once, right after the export is made.
    download_url: Option<String>,
    errors: FieldErrors,
    flash: Option<String>,
}

/// The month the SLA section shows first: the last full month in the billing time zone,
/// the one whose claim window opens next (SVC-280).
fn last_full_month(state: &AppState) -> String {
    let tz = state
        .saas
        .as_ref()
        .map_or(jiff::tz::TimeZone::UTC, |s| s.settings.billing_tz.clone());
    let today = klaxon_saas::calendar::date_of(
        jiff::Timestamp::from_millisecond(state.clock.now()).unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        &tz,
    );
    let month = today
        .first_of_month()
        .checked_sub(jiff::ToSpan::months(1))
        .unwrap_or(today);
    format!("{:04}-{:02}", month.year(), month.month())
}

/// Everything `account_body.html` draws, each part from its Open API read.
async fn body_ctx(
    state: &AppState,
    viewer: &Viewer,
    r: Redraw,
) -> Result<minijinja::Value, ApiError> {
    let actor = &viewer.caller.actor;
    let account = fetch(state, viewer, "/account/info", json!({})).await?;
    let licence = fetch(state, viewer, "/account/licence/info", json!({})).await?;
    let agreements = fetch(state, viewer, "/account/agreement/list", json!({})).await?;
    let notices = fetch(
        state,
        viewer,
        "/account/notice/list",
        json!({"limit": NOTICES}),
    )
    .await?;
    let providers = fetch(state, viewer, "/account/delivery-provider/list", json!({})).await?;
    let grants = fetch(state, viewer, "/account/access-grant/list", json!({})).await?;
    let consents = fetch(state, viewer, "/account/transfer-consent/list", json!({})).await?;
    let month = r.month.clone().unwrap_or_else(|| last_full_month(state));
    let mut errors = r.errors;
    // A month the report cannot be drawn for is said beside the month input; the rest of
    // the page is drawn as usual.
    let sla = match fetch(
        state,
        viewer,
        "/account/sla/report",
        json!({"month": month}),
    )
    .await
    {
        Ok(report) => Some(report),
        Err(e) if e.code == ErrorCode::InternalError => return Err(e),
        Err(e) => {
            errors.0.entry("month".into()).or_insert(e.message);
            None
        }
    };
    let claims = fetch(state, viewer, "/account/sla/claim/list", json!({})).await?;
    let exports = fetch(state, viewer, "/account/export/list", json!({})).await?;
    // Refusing and consenting are the owner's (SVC-038, SVC-003): the API's rule, mirrored
    // here only to hide buttons the API would refuse.
    let owner = actor.is_owner;
    let own_region = state
        .saas
        .as_ref()
        .map(|s| s.settings.region.clone())
        .unwrap_or_default();
    let regions: Vec<Value> = state
        .config
        .deployment
        .regions
        .iter()
        .filter(|r| r.id != own_region)
        .map(|r| json!({"id": r.id, "name": r.name}))
        .collect();
    let scopes: Vec<(String, String)> = [
        ("read_all", "Read configuration and incidents"),
        ("read_config", "Read configuration"),
        ("read_incidents", "Read incidents"),
    ]
    .iter()
    .map(|(v, l)| ((*v).to_string(), (*l).to_string()))
    .chain(WRITE_OPERATIONS.iter().map(|op| {
        (
            format!("write:{op}"),
            format!("Write: {}", op.replace('_', " ")),
        )
    }))
    .collect();
    Ok(context! {
        account => j(&account),
        licence => j(&licence),
        agreements => j(&agreements["items"]),
        notices => j(&notices["items"]),
        more_notices => notices["has_next_page"].as_bool().unwrap_or(false),
        providers => j(&providers),
        grants => j(&grants["items"]),
        consents => j(&consents["items"]),
        owner => owner,
        may_accept => may_call(actor, "/account/agreement/accept"),
        may_grant => may_call(actor, "/account/access-grant/create"),
        may_consent => owner && may_call(actor, "/account/transfer-consent/create"),
        scopes => scopes,
        categories => CATEGORIES.to_vec(),
        regions => j(&regions),
        own_region => own_region,
        g => j(&r.grant.unwrap_or_default()),
        c => j(&r.consent.unwrap_or_default()),
        month => month,
        sla => sla.as_ref().map(j),
        claims => j(&claims["items"]),
        may_claim => may_call(actor, "/account/sla/claim/submit"),
        exports => j(&exports["items"]),
        may_export => may_call(actor, "/account/export/create"),
        download_url => r.download_url,
        errors => j(&errors.0),
        flash => r.flash,
        now => now_secs(state),
    })
}

async fn page(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let viewer = match viewer(&state, &Method::GET, &headers, "/account").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    if let Some(e) = refusal(&state, &viewer) {
        return page_error(&e);
    }
    let shown = Redraw {
        month: query.get("month").map(|m| m.trim().to_string()),
        ..Redraw::default()
    };
    let a = match body_ctx(&state, &viewer, shown).await {
        Ok(a) => a,
        Err(e) => return page_error(&e),
    };
    let me = match super::me(&state, &viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    let ctx = context! {
        title => "Account",
        nav => "account",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        a => a,
    };
    page_headers(view::render("account.html", ctx).into_response())
}

/// The viewer of a write on the page: signed in, with a good CSRF token, and shown the page.
/// Extracting it answers with the refusal instead (no session, bad token, no page).
struct Writer(Viewer);

impl FromRequestParts<AppState> for Writer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Writer, Response> {
        let viewer = viewer(state, &Method::POST, &parts.headers, "/account").await?;
        if let Some(e) = refusal(state, &viewer) {
            return Err(page_error(&e));
        }
        Ok(Writer(viewer))
    }
}

/// Answers a write with the page body drawn again.
async fn redraw(state: &AppState, viewer: &Viewer, status: StatusCode, r: Redraw) -> Response {
    match body_ctx(state, viewer, r).await {
        Ok(a) => page_headers(
            (
                status,
                view::render("account_body.html", context! { a => a }),
            )
                .into_response(),
        ),
        Err(e) => page_error(&e),
    }
}

/// Runs one write; a refusal is filed under `input(message)`.
async fn write(
    state: &AppState,
    viewer: &Viewer,
    path: &str,
    args: Value,
    done: &str,
    input: impl Fn(&str) -> String,
    kept: Redraw,
) -> Response {
    let done = |_: Option<Value>| Redraw {
        flash: Some(done.to_string()),
        ..Redraw::default()
    };
    write_with(state, viewer, path, args, done, input, kept).await
}

/// Runs one write; its answer makes the redraw (`done`), a refusal is filed under
/// `input(message)` with `kept` drawn again.
async fn write_with(
    state: &AppState,
    viewer: &Viewer,
    path: &str,
    args: Value,
    done: impl FnOnce(Option<Value>) -> Redraw,
    input: impl Fn(&str) -> String,
    kept: Redraw,
) -> Response {
    match call(state, viewer, path, args).await {
        Ok(answer) => redraw(state, viewer, StatusCode::OK, done(answer)).await,
        Err(e) => {
            let r = Redraw {
                errors: FieldErrors::one(&input(&e.message), e.message.clone()),
                ..kept
            };
            redraw(state, viewer, status_of(&e), r).await
        }
    }
}

async fn decide(state: AppState, viewer: Viewer, id: i64, refuse: bool) -> Response {
    let (path, done) = if refuse {
        (
            "/account/agreement/refuse",
            "Refusal recorded: the service stops as the agreement says.",
        )
    } else {
        ("/account/agreement/accept", "Acceptance recorded.")
    };
    write(
        &state,
        &viewer,
        path,
        json!({"version_id": id}),
        done,
        |_| "_agreements".to_string(),
        Redraw::default(),
    )
    .await
}

async fn accept(
    State(state): State<AppState>,
    Writer(viewer): Writer,
    Path(id): Path<i64>,
) -> Response {
    decide(state, viewer, id, false).await
}

async fn refuse(
    State(state): State<AppState>,
    Writer(viewer): Writer,
    Path(id): Path<i64>,
) -> Response {
    decide(state, viewer, id, true).await
}

async fn create_grant(
    State(state): State<AppState>,
    Writer(viewer): Writer,
    body: Bytes,
) -> Response {
    let form = GrantForm::parse(&form_pairs(&body));
    let args = match form.body(now_secs(&state)) {
        Ok(a) => a,
        Err(errors) => {
            let r = Redraw {
                grant: Some(form),
                errors,
                ..Redraw::default()
            };
            return redraw(&state, &viewer, StatusCode::BAD_REQUEST, r).await;
        }
    };
    let kept = Redraw {
        grant: Some(form),
        ..Redraw::default()
    };
    write(
        &state,
        &viewer,
        "/account/access-grant/create",
        args,
        "Access granted to the operator's support team.",
        grant_input,
        kept,
    )
    .await
}

async fn revoke_grant(
    State(state): State<AppState>,
    Writer(viewer): Writer,
    Path(id): Path<i64>,
) -> Response {
    write(
        &state,
        &viewer,
        "/account/access-grant/revoke",
        json!({"grant_id": id}),
        "Access grant revoked.",
        |_| "_grant".to_string(),
        Redraw::default(),
    )
    .await
}

async fn create_consent(
    State(state): State<AppState>,
    Writer(viewer): Writer,
    body: Bytes,
) -> Response {
    let form = ConsentForm::parse(&form_pairs(&body));
    let args = form.body();
    let kept = Redraw {
        consent: Some(form),
        ..Redraw::default()
    };
    write(
        &state,
        &viewer,
        "/account/transfer-consent/create",
        args,
        "Consent recorded.",
        consent_input,
        kept,
    )
    .await
}

async fn revoke_consent(
    State(state): State<AppState>,
    Writer(viewer): Writer,
    Path(id): Path<i64>,
) -> Response {
    write(
        &state,
        &viewer,
        "/account/transfer-consent/revoke",
        json!({"consent_id": id}),
        "Consent revoked.",
        |_| "_consent".to_string(),
        Redraw::default(),
    )
    .await
}

/// SVC-280: claims the compensation the month's report shows. The claim's figures are the
/// report's at submission; a refusal (outside the window, a second claim, not covered) is
/// said beside the month.
async fn claim_sla(State(state): State<AppState>, Writer(viewer): Writer, body: Bytes) -> Response {
    let month = form_value(&form_pairs(&body), "month").trim().to_string();
    let kept = Redraw {
        month: Some(month.clone()),
        ..Redraw::default()
    };
    let done = |_: Option<Value>| Redraw {
        flash: Some(format!(
            "Claim for {month} submitted; the operator decides on it."
        )),
        month: Some(month.clone()),
        ..Redraw::default()
    };
    let args = json!({"month": month});
    let path = "/account/sla/claim/submit";
    write_with(&state, &viewer, path, args, done, |_| "_sla".into(), kept).await
}

/// SVC-182: builds an export of everything the account owns. Its download link is shown
/// once, in the answer, as the Open API shows it once.
async fn create_export(State(state): State<AppState>, Writer(viewer): Writer) -> Response {
    let done = |export: Option<Value>| Redraw {
        flash: Some(
            "Export ready. Download it now: the link is shown only this once and works for \
             7 days."
                .into(),
        ),
        download_url: export
            .as_ref()
            .and_then(|e| e["download_url"].as_str())
            .map(str::to_string),
        ..Redraw::default()
    };
    let path = "/account/export/create";
    let none = Redraw::default();
    write_with(
        &state,
        &viewer,
        path,
        json!({}),
        done,
        |_| "_export".into(),
        none,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_land_next_to_their_input() {
        assert_eq!(
            grant_input("invalid end_time: a grant lasts at most 30 days from its start"),
            "hours"
        );
        assert_eq!(grant_input("invalid purpose: is required"), "purpose");
        assert_eq!(
            grant_input("\"x\" is not a scope; use read_config"),
            "scope"
        );
        assert_eq!(grant_input("access grants: database gone"), "_grant");
        assert_eq!(
            consent_input(
                "invalid destination_region: \"mars\" is not one of the operator's regions"
            ),
            "destination_region"
        );
        assert_eq!(consent_input("invalid purpose: \"x\""), "consent_purpose");
        assert_eq!(
            consent_input("only the account owner can give or revoke consent"),
            "_consent"
        );
    }

    #[test]
    fn hours_are_read_as_a_number_only() {
        let f = GrantForm {
            hours: "two".into(),
            ..GrantForm::default()
        };
        assert!(f.body(1000).unwrap_err().0.contains_key("hours"));
        let f = GrantForm {
            hours: "48".into(),
            purpose: "ticket".into(),
            ..GrantForm::default()
        };
        assert_eq!(f.body(1000).unwrap()["end_time"], 1000 + 48 * 3600);
        let f = GrantForm {
            hours: i64::MAX.to_string(),
            ..GrantForm::default()
        };
        assert!(f.body(1000).is_err());
    }
}
