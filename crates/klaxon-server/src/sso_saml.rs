//! SAML 2.0 sign-in, Klaxon as the service provider (response.md RSP-574, docs/sign-in.md):
//!
//! - `GET /sso/saml/metadata/{login_domain}` — the SP metadata to give the IdP: entity ID
//!   (default `base_url`), the ACS URL, the single logout service, and the SP certificate
//!   (for encryption and signing) when a key pair is configured;
//! - `GET /sso/saml/start/{login_domain}` — SP-initiated login: an AuthnRequest by the
//!   HTTP-Redirect binding, with a `RelayState` that finds this sign-in again; signed with
//!   the SP key pair when the IdP metadata or `saml.sign_requests` asks for it;
//! - `POST /sso/saml/acs/{login_domain}` — the assertion consumer service (HTTP-POST): takes
//!   the sign-in back by its `RelayState` (once), decrypts an encrypted assertion with the
//!   SP's key, verifies the response against the IdP metadata with the injected clock
//!   (`klaxon_core::saml::response`), and signs the member in exactly as OIDC does
//!   (RSP-572/573: match by email or create just in time, team mapping, console session).
//!   When the configuration allows IdP-initiated sign-in, a response that answers no
//!   request of ours (no sign-in found by its `RelayState`) is accepted if it names no
//!   request either.
//!
//! - `GET /sso/saml/slo/{login_domain}` — single logout (HTTP-Redirect): the IdP's
//!   `LogoutResponse` to the `LogoutRequest` a console sign-out sent (see
//!   [`logout_redirect`]), or the IdP's own signed `LogoutRequest`, which ends every Klaxon
//!   session of its NameID and is answered with a signed `LogoutResponse`.
//!
//! The pending sign-in is a row of `sso_logins` (the `nonce` column holds the AuthnRequest
//! ID the response's `InResponseTo` must name), so any node can finish it, and a response
//! replayed after its sign-in finished finds nothing. Every accepted assertion's ID is
//! also remembered (`saml_assertions`) until it expires, so an unsolicited response, which
//! has no sign-in row to use up, is accepted once too.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use klaxon_core::saml::xmlenc::SpKey;
use klaxon_core::saml::{self, logout, metadata, request, response};
use klaxon_store::{SamlSession, SsoLogin};

use crate::console::{local_path, redirect};
use crate::signin::session_cookies;
use crate::sso::{Refused, enabled_config, finish_sign_in, refused_domain};
use crate::state::{AppState, random_hex};

/// How long a sign-in (or a logout) may stay at the identity provider.
const LOGIN_TTL_MS: i64 = 10 * 60_000;
/// The `code_verifier` of an `sso_logins` row that is a pending SP-initiated logout, not a
/// sign-in: its `nonce` is the LogoutRequest's ID.
const LOGOUT_MARK: &str = "saml:logout";
const START: &str = "/incidents";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sso/saml/metadata/{login_domain}", get(sp_metadata))
        .route("/sso/saml/start/{login_domain}", get(start))
        .route("/sso/saml/acs/{login_domain}", post(acs))
        .route("/sso/saml/slo/{login_domain}", get(slo))
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
    let settings = &found.config.saml;
    let xml = metadata::sp_metadata(&metadata::SpMetadata {
        entity_id: &saml::sp_entity_id(settings, &state.base_url),
        acs_url: &saml::acs_url(&state.base_url, &login_domain),
        slo_url: &saml::slo_url(&state.base_url, &login_domain),
        certificate: &settings.sp_encryption_certificate,
        authn_requests_signed: saml::signs_requests(settings),
    });
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
    // Checked before anything is stored: a signed request needs the SP key pair.
    let signing_key = if saml::signs_requests(settings) {
        let key = sp_key(&found)?.ok_or_else(|| {
            refused(
                StatusCode::BAD_REQUEST,
                if settings.idp_wants_signed_requests {
                    "the identity provider wants signed AuthnRequests, but no SP key pair is configured for this login domain (saml.sp_private_key and saml.sp_certificate)"
                } else {
                    "saml.sign_requests is on, but no SP key pair is configured for this login domain (saml.sp_private_key and saml.sp_certificate)"
                },
            )
        })?;
        Some(key)
    } else {
        None
    };
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
    reqwest::Url::parse(&settings.idp_sso_url).map_err(|e| {
        refused(
            StatusCode::BAD_GATEWAY,
            format!("the IdP's SingleSignOnService URL is not usable: {e}"),
        )
    })?;
    let query = request::redirect_query("SAMLRequest", &xml, &relay_state, signing_key.as_ref())
        .map_err(Refused::internal)?;
    Ok(redirect(
        &HeaderMap::new(),
        &request::with_query(&settings.idp_sso_url, &query),
    ))
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

/// The SP key pair's private key, when the configuration has one: it decrypts assertions
/// and signs what the SP sends.
fn sp_key(found: &klaxon_store::SsoSignInConfig) -> Result<Option<SpKey>, Refused> {
    if found.config.saml.sp_encryption_certificate.is_empty() || found.secret.is_empty() {
        return Ok(None);
    }
    let key = SpKey::from_pem(&found.secret).map_err(|e| {
        tracing::error!(error = %e, "the stored SAML SP key is unusable");
        refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the SP key of this login domain is unusable; upload it again",
        )
    })?;
    Ok(Some(key))
}

/// The SP's decryption key, when the configuration has one.
fn decryption_keys(found: &klaxon_store::SsoSignInConfig) -> Result<Vec<SpKey>, Refused> {
    Ok(sp_key(found)?.into_iter().collect())
}

async fn acs_inner(
    state: &AppState,
    login_domain: &str,
    pairs: &[(String, String)],
    ip: &str,
) -> Result<Response, Refused> {
    let relay_state = form_field(pairs, "RelayState");
    let now = state.clock.now();
    // Used once: a replayed response finds no sign-in to finish.
    let login = if relay_state.is_empty() {
        None
    } else {
        state
            .store
            .take_sso_login(&relay_state, now)
            .await
            .map_err(Refused::internal)?
    };
    let found = enabled_config(state, login_domain).await?;
    if found.config.protocol != "saml2" {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            format!("the login domain \"{login_domain}\" does not sign in with SAML"),
        ));
    }
    let settings = &found.config.saml;
    let next = match &login {
        Some(login) => {
            if login.code_verifier == LOGOUT_MARK {
                return Err(refused(
                    StatusCode::BAD_REQUEST,
                    "the RelayState belongs to a logout, not a sign-in; start the sign-in again",
                ));
            }
            if login.login_domain != login_domain {
                return Err(refused(
                    StatusCode::BAD_REQUEST,
                    "the sign-in was started for another login domain",
                ));
            }
            if found.account_id != login.account_id {
                return Err(refused(
                    StatusCode::BAD_REQUEST,
                    "the single sign-on of this login domain has changed; start again",
                ));
            }
            local_path(&login.next_path).unwrap_or(START).to_string()
        }
        // IdP-initiated: only when switched on. Its RelayState, when it is a local path, is
        // where to go.
        None if settings.allow_idp_initiated => {
            local_path(&relay_state).unwrap_or(START).to_string()
        }
        None if relay_state.is_empty() => {
            // IdP-initiated sign-ins carry no request of ours to answer: refused, as the
            // InResponseTo check could not be made.
            return Err(refused(
                StatusCode::BAD_REQUEST,
                "the identity provider sent no RelayState; start the sign-in from Klaxon",
            ));
        }
        None => {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                "the sign-in has expired or was already used; start it again",
            ));
        }
    };
    let xml = response::decode_post(&form_field(pairs, "SAMLResponse"))
        .map_err(|e| refused(StatusCode::BAD_REQUEST, e))?;
    let sp_entity_id = saml::sp_entity_id(settings, &state.base_url);
    let acs_url = saml::acs_url(&state.base_url, login_domain);
    let keys = decryption_keys(&found)?;
    let expected = response::Expected {
        idp_entity_id: &settings.idp_entity_id,
        certificates: &settings.idp_certificates,
        sp_entity_id: &sp_entity_id,
        acs_url: &acs_url,
        request_id: login.as_ref().map(|l| l.nonce.as_str()),
        decryption_keys: &keys,
        now_ms: now,
    };
    let identity =
        response::verify(&xml, &expected).map_err(|e| refused(StatusCode::FORBIDDEN, e))?;
    // An assertion signs in once, whether or not a sign-in row was used up for it.
    if identity.assertion_id.is_empty() {
        return Err(refused(StatusCode::FORBIDDEN, "the assertion has no ID"));
    }
    let fresh = state
        .store
        .use_saml_assertion(
            found.account_id,
            &identity.assertion_id,
            identity.valid_until_ms,
            now,
        )
        .await
        .map_err(Refused::internal)?;
    if !fresh {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "this assertion was already used to sign in (replay); sign in again at the identity provider",
        ));
    }
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
    // RSP-574: the session remembers its SAML subject, for single logout.
    let session = state
        .store
        .session(&token, now)
        .await
        .map_err(Refused::internal)?
        .ok_or_else(|| Refused::internal("the new session is gone"))?;
    state
        .store
        .record_saml_session(
            &token,
            &SamlSession {
                account_id: session.account_id,
                member_id: session.member_id,
                login_domain: login_domain.to_string(),
                name_id: identity.name_id.clone(),
                name_id_format: identity.name_id_format.clone(),
                name_qualifier: identity.name_qualifier.clone(),
                sp_name_qualifier: identity.sp_name_qualifier.clone(),
                session_index: identity.session_index.clone(),
                expires_at: session.expires_at,
            },
            now,
        )
        .await
        .map_err(Refused::internal)?;
    let mut resp = redirect(&HeaderMap::new(), &next);
    session_cookies(state, &mut resp, &token, &csrf, ttl_secs);
    Ok(resp)
}

/// RSP-574, SP-initiated single logout: the IdP URL a console sign-out redirects to, with a
/// `LogoutRequest` (signed with the SP key pair when there is one) for the session that just
/// ended, or `None` when the sign-out stays local (SAML no longer enabled for the login
/// domain, or the IdP metadata has no SingleLogoutService). The caller has already ended
/// Klaxon's session; the pending logout is an `sso_logins` row found by its `RelayState`.
pub(crate) async fn logout_redirect(
    state: &AppState,
    session: &SamlSession,
    ip: &str,
) -> Option<String> {
    let found = match enabled_config(state, &session.login_domain).await {
        Ok(found) if found.config.protocol == "saml2" && found.account_id == session.account_id => {
            found
        }
        _ => return None,
    };
    let settings = &found.config.saml;
    if settings.idp_slo_url.is_empty() {
        return None;
    }
    let key = match sp_key(&found) {
        Ok(key) => key,
        Err(r) => {
            tracing::error!(reason = %r.message, "SAML logout not sent to the IdP");
            return None;
        }
    };
    let now = state.clock.now();
    let request_id = format!("_{}", random_hex(20));
    let relay_state = random_hex(32);
    let login = SsoLogin {
        account_id: found.account_id,
        login_domain: session.login_domain.clone(),
        nonce: request_id.clone(),
        code_verifier: LOGOUT_MARK.to_string(),
        next_path: "/signin".to_string(),
    };
    if let Err(e) = state
        .store
        .start_sso_login(&relay_state, &login, now, LOGIN_TTL_MS)
        .await
    {
        tracing::error!(error = %e, "SAML logout not sent to the IdP");
        return None;
    }
    let xml = logout::logout_request(
        &request_id,
        now,
        now + LOGIN_TTL_MS,
        &settings.idp_slo_url,
        &saml::sp_entity_id(settings, &state.base_url),
        &logout::Subject {
            name_id: session.name_id.clone(),
            format: session.name_id_format.clone(),
            name_qualifier: session.name_qualifier.clone(),
            sp_name_qualifier: session.sp_name_qualifier.clone(),
        },
        &session.session_index,
    );
    let query = match request::redirect_query("SAMLRequest", &xml, &relay_state, key.as_ref()) {
        Ok(q) => q,
        Err(e) => {
            tracing::error!(error = %e, "SAML logout not sent to the IdP");
            return None;
        }
    };
    crate::audit::record_signin(
        state,
        session.account_id,
        session.member_id,
        "saml_logout",
        ip,
        "ok",
    )
    .await;
    Some(request::with_query(&settings.idp_slo_url, &query))
}

/// Whether the raw query carries the parameter `name`.
fn has_param(query: &str, name: &str) -> bool {
    query
        .split('&')
        .any(|p| p.split_once('=').map_or(p, |(k, _)| k) == name)
}

async fn slo(
    State(state): State<AppState>,
    Path(login_domain): Path<String>,
    RawQuery(query): RawQuery,
    extensions: axum::http::Extensions,
) -> Response {
    let ip = crate::openapi::client_ip(&extensions);
    let query = query.unwrap_or_default();
    let result = if has_param(&query, "SAMLResponse") {
        slo_response(&state, &login_domain, &query).await
    } else if has_param(&query, "SAMLRequest") {
        slo_request(&state, &login_domain, &query, &ip).await
    } else {
        Err(refused(
            StatusCode::BAD_REQUEST,
            "the single logout service takes a SAMLRequest or a SAMLResponse",
        ))
    };
    match result {
        Ok(resp) => resp,
        Err(r) => {
            tracing::info!(login_domain, reason = %r.message, "SAML logout refused");
            refused_domain(&state, &login_domain, START, r.status, &r.message).await
        }
    }
}

async fn saml_config(
    state: &AppState,
    login_domain: &str,
) -> Result<klaxon_store::SsoSignInConfig, Refused> {
    let found = enabled_config(state, login_domain).await?;
    if found.config.protocol != "saml2" {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            format!("the login domain \"{login_domain}\" does not sign in with SAML"),
        ));
    }
    Ok(found)
}

/// The end of an SP-initiated logout: the IdP's `LogoutResponse` (its signature checked
/// against the IdP metadata when it is signed) to the request found by its `RelayState`.
async fn slo_response(
    state: &AppState,
    login_domain: &str,
    query: &str,
) -> Result<Response, Refused> {
    let found = saml_config(state, login_domain).await?;
    let settings = &found.config.saml;
    let message = request::read_redirect(query, "SAMLResponse", &settings.idp_certificates, false)
        .map_err(|e| {
            refused(
                StatusCode::FORBIDDEN,
                format!("the logout response is refused: {e}"),
            )
        })?;
    let now = state.clock.now();
    let pending = if message.relay_state.is_empty() {
        None
    } else {
        state
            .store
            .take_sso_login(&message.relay_state, now)
            .await
            .map_err(Refused::internal)?
    };
    let Some(pending) = pending.filter(|p| {
        p.code_verifier == LOGOUT_MARK
            && p.login_domain == login_domain
            && p.account_id == found.account_id
    }) else {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "this logout response answers no logout of ours (expired or already finished); you are signed out of Klaxon",
        ));
    };
    let answer = logout::parse_logout_response(&message.xml)
        .map_err(|e| refused(StatusCode::BAD_REQUEST, e))?;
    if answer.issuer != settings.idp_entity_id {
        return Err(refused(
            StatusCode::FORBIDDEN,
            format!(
                "the logout response is issued by {:?}, not by the identity provider {:?}",
                answer.issuer, settings.idp_entity_id
            ),
        ));
    }
    if answer.in_response_to != pending.nonce {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "the logout response's InResponseTo does not name Klaxon's logout request",
        ));
    }
    if answer.status != logout::SUCCESS {
        let detail = if answer.status_message.is_empty() {
            answer.status.clone()
        } else {
            format!("{} ({})", answer.status, answer.status_message)
        };
        return Err(refused(
            StatusCode::BAD_GATEWAY,
            format!(
                "you are signed out of Klaxon, but the identity provider could not sign you out: {detail}; sign out there too"
            ),
        ));
    }
    Ok(crate::console::signin::signed_out_form(
        state,
        "You are signed out of Klaxon and of your identity provider.",
    )
    .await)
}

/// IdP-initiated logout: a signed `LogoutRequest` ends every Klaxon session of its NameID
/// (and SessionIndex when given), answered by a `LogoutResponse` at the IdP's single
/// logout service. A request whose signature fails is refused here and answered nothing
/// (nothing proves who sent it); a genuine one that is expired, for another SP or from
/// another issuer is answered with a Requester status, and a failure of Klaxon's with
/// Responder.
async fn slo_request(
    state: &AppState,
    login_domain: &str,
    query: &str,
    ip: &str,
) -> Result<Response, Refused> {
    let found = saml_config(state, login_domain).await?;
    let settings = &found.config.saml;
    if settings.idp_slo_url.is_empty() {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "the IdP metadata has no SingleLogoutService (HTTP-Redirect) to answer this logout request; upload metadata that has one",
        ));
    }
    let message = request::read_redirect(query, "SAMLRequest", &settings.idp_certificates, true)
        .map_err(|e| {
            refused(
                StatusCode::FORBIDDEN,
                format!("the logout request is refused: {e}"),
            )
        })?;
    let now = state.clock.now();
    let sp_entity_id = saml::sp_entity_id(settings, &state.base_url);
    let checked = logout::parse_logout_request(&message.xml).and_then(|req| {
        if req.issuer != settings.idp_entity_id {
            return Err(format!(
                "the logout request is issued by {:?}, not by the identity provider {:?}",
                req.issuer, settings.idp_entity_id
            ));
        }
        let ours = saml::slo_url(&state.base_url, login_domain);
        if !req.destination.is_empty() && req.destination != ours {
            return Err(format!(
                "the logout request is for {:?}, not for this single logout service {ours:?}",
                req.destination
            ));
        }
        if req.not_on_or_after_ms.is_some_and(|t| now >= t) {
            return Err("the logout request has expired (NotOnOrAfter)".to_string());
        }
        Ok(req)
    });
    let (in_response_to, status, status_message, ended) = match checked {
        Err(e) => {
            tracing::info!(login_domain, reason = %e, "SAML logout request refused");
            let id = roxmltree::Document::parse(&message.xml)
                .ok()
                .and_then(|d| d.root_element().attribute("ID").map(str::to_string))
                .unwrap_or_default();
            (id, logout::REQUESTER, e, Vec::new())
        }
        Ok(req) => match state
            .store
            .end_saml_sessions(
                found.account_id,
                login_domain,
                &req.subject.name_id,
                &req.session_indexes,
            )
            .await
        {
            Ok(ended) => (req.id, logout::SUCCESS, String::new(), ended),
            Err(e) => {
                tracing::error!(error = %e, "SAML logout request failed");
                (
                    req.id,
                    logout::RESPONDER,
                    "Klaxon could not end the sessions".to_string(),
                    Vec::new(),
                )
            }
        },
    };
    for session in &ended {
        crate::audit::record_signin(
            state,
            session.account_id,
            session.member_id,
            "saml_idp_logout",
            ip,
            "ok",
        )
        .await;
    }
    tracing::info!(
        login_domain,
        sessions = ended.len(),
        status,
        "SAML logout requested by the IdP"
    );
    let xml = logout::logout_response(
        &format!("_{}", random_hex(20)),
        now,
        &settings.idp_slo_url,
        &sp_entity_id,
        &in_response_to,
        status,
        &status_message,
    );
    let key = sp_key(&found)?;
    if key.is_none() {
        tracing::warn!(
            login_domain,
            "the SAML logout response goes unsigned: no SP key pair is configured"
        );
    }
    let query = request::redirect_query("SAMLResponse", &xml, &message.relay_state, key.as_ref())
        .map_err(Refused::internal)?;
    let mut resp = redirect(
        &HeaderMap::new(),
        &request::with_query(&settings.idp_slo_url, &query),
    );
    if status == logout::SUCCESS {
        // This browser is the member's: its cookies go with the sessions.
        session_cookies(state, &mut resp, "", "", 0);
    }
    Ok(resp)
}
