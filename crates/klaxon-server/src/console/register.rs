//! `/register`: self-service registration as ordinary HTML forms (docs/registration.md),
//! SaaS nodes only. Step 1 asks for the e-mail address and the region and sends the code;
//! step 2 takes the code, the organisation, the legal entity and the acceptance of the
//! documents shown. Each error is shown beside its field with the typed values kept (never
//! the password). The checks are those of the JSON endpoints
//! ([`crate::registration::send_code`], [`crate::registration::register`]).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use klaxon_saas::agreement::DocumentType;
use klaxon_saas::registration::{self as reg, Form};
use minijinja::context;
use std::collections::BTreeMap;

use super::{form_pairs, form_value, redirect, view};
use crate::registration::{
    Client, CodeStep, Completed, Refusal, documents, regions, register, register_url, send_code,
    user_agent,
};
use crate::signin::session_cookies;
use crate::state::{AppState, new_request_id};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/register", get(page).post(submit))
        .route("/register/code", post(code))
}

const START: &str = "/incidents";

fn title(t: DocumentType) -> &'static str {
    match t {
        DocumentType::TermsOfService => "Terms of Service",
        DocumentType::DataProtection => "Data Protection Agreement",
        DocumentType::Sla => "Service Level Agreement",
        DocumentType::UserAgreement => "User Agreement",
        DocumentType::PrivacyPolicy => "Privacy Policy",
    }
}

/// The values typed so far; kept when the form comes back with an error.
#[derive(Default)]
struct Values {
    email: String,
    region: String,
    code: String,
    organisation: String,
    legal_entity_type: String,
    legal_name: String,
}

async fn render(
    state: &AppState,
    status: StatusCode,
    step: u8,
    v: &Values,
    errors: BTreeMap<&'static str, String>,
) -> Response {
    let regions = match regions(state) {
        Ok(r) => r,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.message()).into_response(),
    };
    let own = regions.own().id.clone();
    let region_list: Vec<_> = regions
        .all()
        .map(|r| context! { id => &r.id, name => &r.name, base_url => &r.base_url, here => r.id == own })
        .collect();
    let now = state.clock.now();
    let docs = match documents(state).await {
        Ok(d) => d,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.message()).into_response(),
    };
    let doc_list: Vec<_> = docs
        .iter()
        .map(|d| {
            context! {
                version_id => d.version_id,
                title => title(d.doc_type),
                version => &d.version,
                body => &d.body,
                pending => d.effective_at > now,
                effective_at => d.effective_at.div_euclid(1000),
            }
        })
        .collect();
    let region = if v.region.is_empty() {
        own
    } else {
        v.region.clone()
    };
    let ctx = context! {
        title => "Register",
        step => step,
        email => &v.email,
        region => region,
        regions => region_list,
        code => &v.code,
        organisation => &v.organisation,
        legal_entity_type => &v.legal_entity_type,
        legal_name => &v.legal_name,
        documents => doc_list,
        consent_label => reg::CONSENT_LABEL,
        minutes => reg::CODE_TTL.as_mins(),
        errors => errors,
    };
    (status, view::render("register.html", ctx)).into_response()
}

fn status_of(r: &Refusal) -> StatusCode {
    StatusCode::from_u16(r.status()).unwrap_or(StatusCode::BAD_REQUEST)
}

fn errors_of(r: &Refusal) -> BTreeMap<&'static str, String> {
    let mut m = BTreeMap::new();
    m.insert(r.field().unwrap_or("form"), r.message());
    m
}

async fn page(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let region = query
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(&q).ok())
        .and_then(|p| p.into_iter().find(|(k, _)| k == "region").map(|(_, v)| v))
        .unwrap_or_default();
    let v = Values {
        region,
        ..Values::default()
    };
    render(&state, StatusCode::OK, 1, &v, BTreeMap::new()).await
}

async fn code(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let ip = crate::openapi::client_ip(&extensions);
    let pairs = form_pairs(&body);
    let mut v = Values {
        email: form_value(&pairs, "email").trim().to_string(),
        region: form_value(&pairs, "region").trim().to_string(),
        ..Values::default()
    };
    match send_code(&state, &v.email, &v.region, &ip).await {
        Ok(CodeStep::Sent { email }) => {
            v.email = email;
            render(&state, StatusCode::OK, 2, &v, BTreeMap::new()).await
        }
        // SVC-211: nothing of the registrant is kept or passed on; the other region's own
        // page asks again.
        Ok(CodeStep::Elsewhere(r)) => redirect(&headers, &register_url(&r)),
        Err(e) => render(&state, status_of(&e), 1, &v, errors_of(&e)).await,
    }
}

async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let ip = crate::openapi::client_ip(&extensions);
    let pairs = form_pairs(&body);
    let get = |name: &str| form_value(&pairs, name);
    let v = Values {
        email: get("email").trim().to_string(),
        region: get("region").trim().to_string(),
        code: get("code").trim().to_string(),
        organisation: get("organisation"),
        legal_entity_type: get("legal_entity_type"),
        legal_name: get("legal_name"),
    };
    // SVC-032: the unticked checkbox accepts the versions the form listed; unticked, none.
    let accepted: Vec<i64> = if get("accept") == "yes" {
        pairs
            .iter()
            .filter(|(k, _)| k == "version")
            .filter_map(|(_, id)| id.parse().ok())
            .collect()
    } else {
        Vec::new()
    };
    let form = Form {
        email: v.email.clone(),
        code: v.code.clone(),
        password: get("password"),
        organisation: v.organisation.clone(),
        legal_entity_type: v.legal_entity_type.clone(),
        legal_name: v.legal_name.clone(),
        region: v.region.clone(),
        accepted_versions: accepted,
    };
    let request_id = new_request_id();
    let ua = user_agent(&headers);
    let client = Client {
        ip: &ip,
        user_agent: &ua,
        client_type: "web",
        request_id: &request_id,
    };
    match register(&state, &form, &client).await {
        Ok(Completed::Registered(done)) => {
            let ttl_ms = state.config.auth.session_ttl_minutes.max(1) * 60_000;
            match state
                .store
                .create_session(done.account_id, done.member_id, ttl_ms, state.clock.now())
                .await
            {
                Ok(created) => {
                    let mut resp = redirect(&HeaderMap::new(), START);
                    session_cookies(
                        &state,
                        &mut resp,
                        &created.token,
                        &created.session.csrf_token,
                        ttl_ms / 1000,
                    );
                    resp
                }
                Err(e) => {
                    // The tenant exists; only the automatic sign-in failed.
                    tracing::error!(error = %e, "cannot sign in the registered owner");
                    redirect(&HeaderMap::new(), "/signin")
                }
            }
        }
        Ok(Completed::Elsewhere(r)) => redirect(&headers, &register_url(&r)),
        Err(e) => render(&state, status_of(&e), 2, &v, errors_of(&e)).await,
    }
}
