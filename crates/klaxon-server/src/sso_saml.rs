//! SAML 2.0 sign-in, Klaxon as the service provider (response.md RSP-574, docs/sign-in.md):
//!
//! - `GET /sso/saml/metadata/{login_domain}` — the SP metadata to give the IdP: entity ID
//!   (default `base_url`), the ACS URL, no signing key (the SP does not sign its requests);
//! - `GET /sso/saml/start/{login_domain}` — SP-initiated login: an unsigned AuthnRequest by
//!   the HTTP-Redirect binding, with a `RelayState` that finds this sign-in again;
//! - `POST /sso/saml/acs/{login_domain}` — the assertion consumer service (HTTP-POST): takes
//!   the sign-in back by its `RelayState` (once), verifies the response against the IdP
//!   metadata with the injected clock (`klaxon_core::saml::response`), and signs the member
//!   in exactly as OIDC does (RSP-572/573: match by email or create just in time, team
//!   mapping, console session).
//!
//! The pending sign-in is a row of `sso_logins` (the `nonce` column holds the AuthnRequest
//! ID the response's `InResponseTo` must name), so any node can finish it, and a response
//! replayed after its sign-in finished finds nothing.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use klaxon_core::saml::{self, metadata, request, response};
use klaxon_store::SsoLogin;

use crate::console::{local_path, redirect};
use crate::signin::session_cookies;
use crate::sso::{Refused, enabled_config, finish_sign_in, refused_domain};
use crate::state::{AppState, random_hex};

/// How long a sign-in may stay at the identity provider.
const LOGIN_TTL_MS: i64 = 10 * 60_000;
const START: &str = "/incidents";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sso/saml/metadata/{login_domain}", get(sp_metadata))
        .route("/sso/saml/start/{login_domain}", get(start))
        .route("/sso/saml/acs/{login_domain}", post(acs))
}

fn refused(status: StatusCode, message: impl Into<String>) -> Refused {
    Refused {
        status,
        message: message.into(),
    }
}

/// RSP-574: the SP metadata of a login domain set up for SAML (enabled or not yet: the IdP
/// is usually configured from it before sign-in is switched on).
async fn sp_metadata(State(state): State<AppState>, Path(login_domain): Path<String>) -> Response {
    let found = match state.store.sso_config_by_domain(&login_domain).await {
        Ok(Some(found)) if found.config.protocol == "saml2" => found,
        Ok(_) => {
            return (
                StatusCode::NOT_FOUND,
                format!("no SAML sign-in is set up for the login domain \"{login_domain}\"\n"),
            )
                .into_response();
        }
        Err(e) => {
            tracing::error!(error = %e, "SAML metadata failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let xml = metadata::sp_metadata(
        &saml::sp_entity_id(&found.config.saml, &state.base_url),
        &saml::acs_url(&state.base_url, &login_domain),
    );
    let mut resp = xml.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/samlmetadata+xml"),
    );
    resp
}

async fn start(
    State(state): State<AppState>,
    Path(login_domain): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs: Vec<(String, String)> = query
        .as_deref()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let next = pairs
        .iter()
        .find(|(k, _)| k == "next")
        .and_then(|(_, v)| local_path(v))
        .unwrap_or(START)
        .to_string();
    match start_inner(&state, &login_domain, &next).await {
        Ok(resp) => resp,
        Err(r) => refused_domain(&state, &login_domain, &next, r.status, &r.message).await,
    }
}

async fn start_inner(
    state: &AppState,
    login_domain: &str,
    next: &str,
) -> Result<Response, Refused> {
    let found = enabled_config(state, login_domain).await?;
    if found.config.protocol != "saml2" {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            format!("the login domain \"{login_domain}\" does not sign in with SAML"),
        ));
    }
    let settings = &found.config.saml;
    let relay_state = random_hex(32);
    // An xs:ID starts with a letter or '_'.
    let request_id = format!("_{}", random_hex(20));
    let now = state.clock.now();
    let login = SsoLogin {
        account_id: found.account_id,
        login_domain: login_domain.to_string(),
        nonce: request_id.clone(),
        code_verifier: String::new(),
        next_path: next.to_string(),
    };
    state
        .store
        .start_sso_login(&relay_state, &login, now, LOGIN_TTL_MS)
        .await
        .map_err(Refused::internal)?;
    let xml = request::authn_request(
        &request_id,
        now,
        &settings.idp_sso_url,
        &saml::acs_url(&state.base_url, login_domain),
        &saml::sp_entity_id(settings, &state.base_url),
    );
    let mut url = reqwest::Url::parse(&settings.idp_sso_url).map_err(|e| {
        refused(
            StatusCode::BAD_GATEWAY,
            format!("the IdP's SingleSignOnService URL is not usable: {e}"),
        )
    })?;
    url.query_pairs_mut()
        .append_pair("SAMLRequest", &request::redirect_encode(&xml))
        .append_pair("RelayState", &relay_state);
    Ok(redirect(&HeaderMap::new(), url.as_str()))
}

fn form_field(pairs: &[(String, String)], name: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

async fn acs(
    State(state): State<AppState>,
    Path(login_domain): Path<String>,
    extensions: axum::http::Extensions,
    body: Body,
) -> Response {
    let ip = crate::openapi::client_ip(&extensions);
    // The body limit is off for the whole router; this form is bounded here.
    let limit = response::MAX_RESPONSE_BYTES * 2;
    let pairs: Vec<(String, String)> = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => serde_urlencoded::from_bytes(&bytes).unwrap_or_default(),
        Err(_) => {
            return refused_domain(
                &state,
                &login_domain,
                START,
                StatusCode::PAYLOAD_TOO_LARGE,
                "the SAML response is too large",
            )
            .await;
        }
    };
    match acs_inner(&state, &login_domain, &pairs, &ip).await {
        Ok(resp) => resp,
        Err(r) => {
            tracing::info!(login_domain, reason = %r.message, "SAML sign-in refused");
            refused_domain(&state, &login_domain, START, r.status, &r.message).await
        }
    }
}

async fn acs_inner(
    state: &AppState,
    login_domain: &str,
    pairs: &[(String, String)],
    ip: &str,
) -> Result<Response, Refused> {
    let relay_state = form_field(pairs, "RelayState");
    if relay_state.is_empty() {
        // IdP-initiated sign-ins carry no request of ours to answer: refused, as the
        // InResponseTo check could not be made.
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "the identity provider sent no RelayState; start the sign-in from Klaxon",
        ));
    }
    let now = state.clock.now();
    // Used once: a replayed response finds no sign-in to finish.
    let login = state
        .store
        .take_sso_login(&relay_state, now)
        .await
        .map_err(Refused::internal)?
        .ok_or_else(|| {
            refused(
                StatusCode::BAD_REQUEST,
                "the sign-in has expired or was already used; start it again",
            )
        })?;
    if login.login_domain != login_domain {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "the sign-in was started for another login domain",
        ));
    }
    let found = enabled_config(state, login_domain).await?;
    if found.account_id != login.account_id || found.config.protocol != "saml2" {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "the single sign-on of this login domain has changed; start again",
        ));
    }
    let settings = &found.config.saml;
    let xml = response::decode_post(&form_field(pairs, "SAMLResponse"))
        .map_err(|e| refused(StatusCode::BAD_REQUEST, e))?;
    let sp_entity_id = saml::sp_entity_id(settings, &state.base_url);
    let acs_url = saml::acs_url(&state.base_url, login_domain);
    let expected = response::Expected {
        idp_entity_id: &settings.idp_entity_id,
        certificates: &settings.idp_certificates,
        sp_entity_id: &sp_entity_id,
        acs_url: &acs_url,
        request_id: &login.nonce,
        now_ms: now,
    };
    let identity =
        response::verify(&xml, &expected).map_err(|e| refused(StatusCode::FORBIDDEN, e))?;
    let claims = response::claims(&identity, &found.config.field_mapping);
    let (token, csrf, ttl_secs) = finish_sign_in(
        state,
        found.account_id,
        &found.config,
        &claims,
        "sso_login",
        ip,
    )
    .await
    .map_err(|(status, message)| refused(status, message))?;
    let next = local_path(&login.next_path).unwrap_or(START).to_string();
    let mut resp = redirect(&HeaderMap::new(), &next);
    session_cookies(state, &mut resp, &token, &csrf, ttl_secs);
    Ok(resp)
}
