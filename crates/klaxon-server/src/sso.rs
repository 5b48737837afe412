//! Single sign-on with OpenID Connect (response.md RSP-571…RSP-575, docs/sign-in.md; CAS is
//! in `sso_cas`, LDAP in `sso_ldap`):
//!
//! - `GET /sso/start?login_domain=…` — the sign-in page's "Sign in with SSO" form: sends the
//!   browser on to the protocol of that domain's configuration;
//! - `GET /sso/oidc/start/{login_domain}` — discovers the provider from
//!   `{issuer}/.well-known/openid-configuration` and redirects to its authorization endpoint
//!   (authorization-code flow with `state`, `nonce` and PKCE S256; scopes `openid email phone`);
//! - `GET /sso/oidc/callback/{login_domain}` — the redirect URL: takes the sign-in back by its
//!   `state` (once, and only in the browser that started it), exchanges the code, verifies the
//!   ID token (signature against the provider's JWKS, RS/ES/PS algorithms only; `iss`, `aud`,
//!   `exp` against the injected clock, `nonce`), completes the claims from the userinfo
//!   endpoint, maps them, matches or creates the member (RSP-572) and opens the ordinary
//!   console session.
//!
//! The pending sign-in (nonce, PKCE verifier) is a row in the database, so a sign-in started
//! on one node can finish on another.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use klaxon_core::sso::{self, Provisioning};
use klaxon_store::{SsoLogin, SsoSignInConfig};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::console::signin::sso_form;
use crate::console::{local_path, redirect};
use crate::signin::{cookie, session_cookies};
use crate::state::{AppState, random_hex};

/// The cookie that ties a sign-in's `state` to the browser that started it.
pub(crate) const STATE_COOKIE: &str = "klaxon_sso_state";
/// How long a sign-in may stay at the identity provider.
pub(crate) const LOGIN_TTL_MS: i64 = 10 * 60_000;
/// Clock skew allowed on `exp` and `iat`, in seconds.
const LEEWAY_SECS: i64 = 60;
/// The identity provider's answers are small; anything larger is refused.
pub(crate) const MAX_PROVIDER_BODY: usize = 256 * 1024;
pub(crate) const START: &str = "/incidents";

// Without the `saml` feature the binding is returned as built.
#[allow(clippy::let_and_return)]
pub fn routes() -> Router<AppState> {
    let router = Router::new()
        .route("/sso/start", get(start_form))
        .route("/sso/oidc/start/{login_domain}", get(oidc_start))
        .route("/sso/oidc/callback/{login_domain}", get(oidc_callback))
        .merge(crate::sso_ldap::routes())
        .merge(crate::sso_cas::routes());
    #[cfg(feature = "saml")]
    let router = router.merge(crate::sso_saml::routes());
    router
}

/// RSP-575: the redirect URL to register at the identity provider.
pub fn oidc_redirect_url(base_url: &str, login_domain: &str) -> String {
    format!(
        "{}/sso/oidc/callback/{login_domain}",
        base_url.trim_end_matches('/')
    )
}

pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
}

pub(crate) fn param(pairs: &[(String, String)], name: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default()
}

pub(crate) fn next_of(pairs: &[(String, String)]) -> String {
    local_path(&param(pairs, "next"))
        .unwrap_or(START)
        .to_string()
}

/// Why a sign-in did not finish: shown on the sign-in page with its status.
pub(crate) struct Refused {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl Refused {
    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Refused {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Refused {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
        }
    }
    pub(crate) fn provider(message: impl Into<String>) -> Self {
        Refused {
            status: StatusCode::BAD_GATEWAY,
            message: message.into(),
        }
    }
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "SSO sign-in failed");
        Refused {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "the sign-in could not be completed; try again".to_string(),
        }
    }
}

pub(crate) async fn refused_page(
    state: &AppState,
    login_domain: &str,
    next: &str,
    r: Refused,
) -> Response {
    tracing::info!(login_domain, reason = %r.message, "SSO sign-in refused");
    sso_form(state, r.status, login_domain, &r.message, next).await
}

/// The sign-in page with `message` beside the login-domain field.
pub(crate) async fn refused_domain(
    state: &AppState,
    login_domain: &str,
    next: &str,
    status: StatusCode,
    message: &str,
) -> Response {
    refused_page(
        state,
        login_domain,
        next,
        Refused {
            status,
            message: message.to_string(),
        },
    )
    .await
}

/// The enabled configuration of a login domain.
pub(crate) async fn enabled_config(
    state: &AppState,
    login_domain: &str,
) -> Result<SsoSignInConfig, Refused> {
    if !sso::valid_login_domain(login_domain) {
        return Err(Refused::bad(
            "login domain: 2 to 63 characters of a-z, 0-9 and '-'",
        ));
    }
    let unknown = || Refused {
        status: StatusCode::NOT_FOUND,
        message: format!("no single sign-on is set up for the login domain \"{login_domain}\""),
    };
    let found = state
        .store
        .sso_config_by_domain(login_domain)
        .await
        .map_err(Refused::internal)?
        .ok_or_else(unknown)?;
    if !found.config.enabled {
        return Err(unknown());
    }
    Ok(found)
}

async fn start_form(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query.as_deref());
    let domain = param(&pairs, "login_domain").to_lowercase();
    let next = next_of(&pairs);
    if domain.is_empty() {
        return refused_page(&state, "", &next, Refused::bad("login domain: required")).await;
    }
    match enabled_config(&state, &domain).await {
        Ok(found) if found.config.protocol == "oidc" => {
            let to = format!(
                "/sso/oidc/start/{domain}?{}",
                serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default()
            );
            redirect(&HeaderMap::new(), &to)
        }
        Ok(found) if found.config.protocol == "cas" => {
            let to = format!(
                "/sso/cas/start/{domain}?{}",
                serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default()
            );
            redirect(&HeaderMap::new(), &to)
        }
        Ok(found) if found.config.protocol == "saml2" && klaxon_core::saml::AVAILABLE => {
            let to = format!(
                "/sso/saml/start/{domain}?{}",
                serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default()
            );
            redirect(&HeaderMap::new(), &to)
        }
        Ok(found) if found.config.protocol == "ldap" => {
            let to = format!(
                "/sso/ldap/{domain}?{}",
                serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default()
            );
            redirect(&HeaderMap::new(), &to)
        }
        Ok(found) => {
            let protocol = found.config.protocol;
            refused_page(
                &state,
                &domain,
                &next,
                Refused::bad(format!(
                    "{protocol} sign-in is not available in this version"
                )),
            )
            .await
        }
        Err(r) => refused_page(&state, &domain, &next, r).await,
    }
}

pub(crate) fn http_client() -> Result<reqwest::Client, Refused> {
    klaxon_notify::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("klaxon-sso/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(Refused::internal)
}

/// A JSON object from the identity provider (at most [`MAX_PROVIDER_BODY`]).
async fn provider_json(resp: reqwest::Response, what: &str) -> Result<Map<String, Value>, Refused> {
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| Refused::provider(format!("{what}: cannot read the answer: {e}")))?;
    if body.len() > MAX_PROVIDER_BODY {
        return Err(Refused::provider(format!(
            "{what}: the answer is too large"
        )));
    }
    let value: Value = serde_json::from_slice(&body).map_err(|_| {
        Refused::provider(format!(
            "{what}: answered HTTP {status} without a JSON object"
        ))
    })?;
    let Value::Object(map) = value else {
        return Err(Refused::provider(format!(
            "{what}: the answer is not a JSON object"
        )));
    };
    if !status.is_success() {
        let detail = map
            .get("error_description")
            .or_else(|| map.get("error"))
            .and_then(Value::as_str)
            .unwrap_or("");
        return Err(Refused::provider(format!("{what}: HTTP {status} {detail}")));
    }
    Ok(map)
}

/// The provider metadata the flow needs (RSP-575: discovered from the issuer).
struct Discovery {
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    userinfo_endpoint: Option<String>,
    client_secret_post_only: bool,
}

async fn discover(client: &reqwest::Client, issuer: &str) -> Result<Discovery, Refused> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let resp = client.get(&url).send().await.map_err(|e| {
        Refused::provider(format!("cannot reach the identity provider at {url}: {e}"))
    })?;
    let meta = provider_json(resp, "discovery").await?;
    let text = |name: &str| meta.get(name).and_then(Value::as_str).map(str::to_string);
    if text("issuer").as_deref() != Some(issuer) {
        return Err(Refused::provider(format!(
            "discovery: the provider names itself {:?}, not the configured issuer {issuer:?}",
            text("issuer").unwrap_or_default()
        )));
    }
    let need = |name: &str| {
        text(name)
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
            .ok_or_else(|| Refused::provider(format!("discovery: no {name}")))
    };
    let methods: Vec<&str> = meta
        .get("token_endpoint_auth_methods_supported")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    Ok(Discovery {
        authorization_endpoint: need("authorization_endpoint")?,
        token_endpoint: need("token_endpoint")?,
        jwks_uri: need("jwks_uri")?,
        userinfo_endpoint: text("userinfo_endpoint"),
        client_secret_post_only: !methods.is_empty()
            && !methods.contains(&"client_secret_basic")
            && methods.contains(&"client_secret_post"),
    })
}

fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub(crate) fn set_state_cookie(state: &AppState, resp: &mut Response, value: &str, max_age: i64) {
    let secure = if state.base_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{STATE_COOKIE}={value}; Path=/sso/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

async fn oidc_start(
    State(state): State<AppState>,
    Path(login_domain): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    let next = next_of(&pairs);
    match oidc_start_inner(&state, &login_domain, &next).await {
        Ok(resp) => resp,
        Err(r) => refused_page(&state, &login_domain, &next, r).await,
    }
}

async fn oidc_start_inner(
    state: &AppState,
    login_domain: &str,
    next: &str,
) -> Result<Response, Refused> {
    let found = enabled_config(state, login_domain).await?;
    if found.config.protocol != "oidc" {
        return Err(Refused::bad(format!(
            "the login domain \"{login_domain}\" does not sign in with OIDC"
        )));
    }
    let client = http_client()?;
    let discovery = discover(&client, &found.config.oidc.issuer).await?;
    let login_state = random_hex(32);
    let login = SsoLogin {
        account_id: found.account_id,
        login_domain: login_domain.to_string(),
        nonce: random_hex(32),
        // 64 hex characters: within RFC 7636's 43..128 unreserved characters.
        code_verifier: random_hex(32),
        next_path: next.to_string(),
    };
    let now = state.clock.now();
    state
        .store
        .start_sso_login(&login_state, &login, now, LOGIN_TTL_MS)
        .await
        .map_err(Refused::internal)?;
    let mut url = reqwest::Url::parse(&discovery.authorization_endpoint)
        .map_err(|e| Refused::provider(format!("discovery: bad authorization_endpoint: {e}")))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &found.config.oidc.client_id)
        .append_pair(
            "redirect_uri",
            &oidc_redirect_url(&state.base_url, login_domain),
        )
        .append_pair("scope", "openid email phone")
        .append_pair("state", &login_state)
        .append_pair("nonce", &login.nonce)
        .append_pair("code_challenge", &pkce_challenge(&login.code_verifier))
        .append_pair("code_challenge_method", "S256");
    let mut resp = redirect(&HeaderMap::new(), url.as_str());
    set_state_cookie(state, &mut resp, &login_state, LOGIN_TTL_MS / 1000);
    Ok(resp)
}

/// Verifies an ID token (RSP-575) against the provider's JWKS: the algorithm is one of
/// [`sso::ID_TOKEN_ALGORITHMS`] (HS256 and `none` are refused), the signature is by a key of
/// the set, `iss` is the issuer exactly, `aud` names the client, `exp`/`iat` hold at
/// `now_secs`, and `nonce` is the one of this sign-in. Returns the token's claims.
pub(crate) fn verify_id_token(
    token: &str,
    jwks: &[Value],
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now_secs: i64,
) -> Result<Map<String, Value>, String> {
    // ES512 is not in jsonwebtoken's algorithms: read from the header before it is parsed.
    if header_alg(token).as_deref() == Some("ES512") {
        let claims = verify_es512(token, jwks)?;
        check_id_token_claims(&claims, issuer, client_id, nonce, now_secs)?;
        return Ok(claims);
    }
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| format!("the ID token is malformed: {e}"))?;
    let alg = header.alg;
    let name = format!("{alg:?}");
    if !sso::ID_TOKEN_ALGORITHMS.contains(&name.as_str()) {
        return Err(format!(
            "the ID token is signed with {name}; only RS256/384/512, ES256/384/512 and PS256/384/512 are accepted"
        ));
    }
    if !matches!(
        alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
            | Algorithm::ES256
            | Algorithm::ES384
    ) {
        return Err(format!("the ID token algorithm {name} is not supported"));
    }
    let family_ok = |jwk: &Jwk| match &jwk.algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => {
            !matches!(alg, Algorithm::ES256 | Algorithm::ES384)
        }
        jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => {
            matches!(alg, Algorithm::ES256 | Algorithm::ES384)
        }
        _ => false,
    };
    let keys: Vec<Jwk> = jwks
        .iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
        .filter(|k| {
            !matches!(
                k.common.public_key_use,
                Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
            )
        })
        .filter(family_ok)
        .collect();
    let candidates: Vec<&Jwk> = match &header.kid {
        Some(kid) => keys
            .iter()
            .filter(|k| k.common.key_id.as_deref() == Some(kid.as_str()))
            .collect(),
        None => keys.iter().collect(),
    };
    if candidates.is_empty() {
        return Err("no key of the provider's JWKS matches the ID token".to_string());
    }
    let mut validation = Validation::new(alg);
    // Times are checked below against the injected clock, not the system clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims.clear();
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[client_id]);
    let mut last = String::new();
    for jwk in candidates {
        let key = match DecodingKey::from_jwk(jwk) {
            Ok(k) => k,
            Err(e) => {
                last = format!("a key of the provider's JWKS is unusable: {e}");
                continue;
            }
        };
        match jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation) {
            Ok(data) => {
                check_id_token_claims(&data.claims, issuer, client_id, nonce, now_secs)?;
                return Ok(data.claims);
            }
            Err(e) => last = format!("the ID token does not verify: {e}"),
        }
    }
    Err(last)
}

/// The claims every ID token must carry, whatever signed it (RSP-575).
fn check_id_token_claims(
    claims: &Map<String, Value>,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now_secs: i64,
) -> Result<(), String> {
    let num = |n: &str| claims.get(n).and_then(Value::as_i64);
    sso::check_token_times(num("exp"), num("iat"), now_secs, LEEWAY_SECS)?;
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err("the ID token's iss is not the issuer".to_string());
    }
    if !sso::audience_matches(claims.get("aud").unwrap_or(&Value::Null), client_id) {
        return Err("the ID token's aud does not name this client".to_string());
    }
    if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
        return Err("the ID token's nonce is not the one of this sign-in".to_string());
    }
    if claims
        .get("sub")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err("the ID token has no sub".to_string());
    }
    Ok(())
}

/// The `alg` of a JWS header, read without knowing the algorithm.
fn header_alg(token: &str) -> Option<String> {
    let header = URL_SAFE_NO_PAD.decode(token.split('.').next()?).ok()?;
    let header: Map<String, Value> = serde_json::from_slice(&header).ok()?;
    header.get("alg")?.as_str().map(str::to_string)
}

/// RSP-575: an ES512 ID token (ECDSA on P-521 with SHA-512), verified with the RustCrypto
/// `p521` crate against the JWKS's P-521 signing keys (by `kid` when the header names one).
/// Returns its claims, not yet checked.
fn verify_es512(token: &str, jwks: &[Value]) -> Result<Map<String, Value>, String> {
    use p521::ecdsa::signature::Verifier;
    use p521::ecdsa::{Signature, VerifyingKey};
    let malformed = || "the ID token is malformed".to_string();
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let head: Map<String, Value> = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or_else(malformed)?;
    let kid = head.get("kid").and_then(Value::as_str);
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|s| Signature::from_slice(&s).ok())
        .ok_or_else(|| "the ID token's ES512 signature is malformed".to_string())?;
    let coordinate = |jwk: &Value, name: &str| -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(jwk.get(name)?.as_str()?).ok()?;
        (bytes.len() == 66).then_some(bytes)
    };
    let keys: Vec<VerifyingKey> = jwks
        .iter()
        .filter(|k| k.get("kty").and_then(Value::as_str) == Some("EC"))
        .filter(|k| k.get("crv").and_then(Value::as_str) == Some("P-521"))
        .filter(|k| k.get("use").and_then(Value::as_str) != Some("enc"))
        .filter(|k| kid.is_none() || k.get("kid").and_then(Value::as_str) == kid)
        .filter_map(|k| {
            let mut sec1 = vec![0x04];
            sec1.extend(coordinate(k, "x")?);
            sec1.extend(coordinate(k, "y")?);
            VerifyingKey::from_sec1_bytes(&sec1).ok()
        })
        .collect();
    if keys.is_empty() {
        return Err("no key of the provider's JWKS matches the ID token".to_string());
    }
    let signed = &token[..header.len() + 1 + payload.len()];
    if !keys
        .iter()
        .any(|k| k.verify(signed.as_bytes(), &signature).is_ok())
    {
        return Err(
            "the ID token does not verify: its ES512 signature is not by a key of the provider"
                .to_string(),
        );
    }
    URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or_else(|| "the ID token's claims are not a JSON object".to_string())
}

async fn oidc_callback(
    State(state): State<AppState>,
    Path(login_domain): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    let ip = crate::openapi::client_ip(&extensions);
    match oidc_callback_inner(&state, &login_domain, &pairs, &headers, &ip).await {
        Ok(resp) => resp,
        Err(r) => {
            let mut resp = refused_page(&state, &login_domain, START, r).await;
            set_state_cookie(&state, &mut resp, "", 0);
            resp
        }
    }
}

async fn oidc_callback_inner(
    state: &AppState,
    login_domain: &str,
    pairs: &[(String, String)],
    headers: &HeaderMap,
    ip: &str,
) -> Result<Response, Refused> {
    let given_state = param(pairs, "state");
    if given_state.is_empty() {
        return Err(Refused::bad(
            "the identity provider sent no state; start the sign-in again",
        ));
    }
    // The state must be the one this browser was given (no sign-in can be slipped into
    // someone else's browser), and is used once.
    if cookie(headers, STATE_COOKIE) != Some(given_state.as_str()) {
        return Err(Refused::bad(
            "this sign-in was not started in this browser (state mismatch); start it again",
        ));
    }
    let now = state.clock.now();
    let login = state
        .store
        .take_sso_login(&given_state, now)
        .await
        .map_err(Refused::internal)?
        .ok_or_else(|| {
            Refused::bad("the sign-in has expired or was already used; start it again")
        })?;
    if login.login_domain != login_domain {
        return Err(Refused::bad(
            "the sign-in was started for another login domain",
        ));
    }
    let error = param(pairs, "error");
    if !error.is_empty() {
        let detail = param(pairs, "error_description");
        return Err(Refused::forbidden(format!(
            "the identity provider refused the sign-in: {error} {detail}"
        )));
    }
    let code = param(pairs, "code");
    if code.is_empty() {
        return Err(Refused::bad("the identity provider sent no code"));
    }
    let found = enabled_config(state, login_domain).await?;
    if found.account_id != login.account_id || found.config.protocol != "oidc" {
        return Err(Refused::bad(
            "the single sign-on of this login domain has changed; start again",
        ));
    }
    let oidc = &found.config.oidc;
    let client = http_client()?;
    let discovery = discover(&client, &oidc.issuer).await?;
    // Token request (client_secret_basic unless the provider only takes client_secret_post).
    let redirect_uri = oidc_redirect_url(&state.base_url, login_domain);
    let mut form = vec![
        ("grant_type", "authorization_code".to_string()),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", login.code_verifier.clone()),
    ];
    let mut request = client.post(&discovery.token_endpoint);
    if discovery.client_secret_post_only {
        form.push(("client_id", oidc.client_id.clone()));
        form.push(("client_secret", found.secret.clone()));
    } else {
        let enc =
            |s: &str| serde_urlencoded::to_string([("", s)]).unwrap_or_default()[1..].to_string();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            enc(&oidc.client_id),
            enc(&found.secret)
        ));
        request = request.header(header::AUTHORIZATION, format!("Basic {basic}"));
    }
    let body = serde_urlencoded::to_string(&form).map_err(Refused::internal)?;
    let resp = request
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| Refused::provider(format!("token request failed: {e}")))?;
    let tokens = provider_json(resp, "token request").await?;
    let id_token = tokens
        .get("id_token")
        .and_then(Value::as_str)
        .ok_or_else(|| Refused::provider("token request: no id_token in the answer"))?;
    let resp = client
        .get(&discovery.jwks_uri)
        .send()
        .await
        .map_err(|e| Refused::provider(format!("cannot fetch the provider's keys: {e}")))?;
    let jwks = provider_json(resp, "JWKS").await?;
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut claims = verify_id_token(
        id_token,
        &keys,
        &oidc.issuer,
        &oidc.client_id,
        &login.nonce,
        now.div_euclid(1000),
    )
    .map_err(Refused::forbidden)?;
    // RSP-575: claims come from the ID token, completed by the userinfo endpoint.
    if let (Some(endpoint), Some(access)) = (
        discovery.userinfo_endpoint.as_deref(),
        tokens.get("access_token").and_then(Value::as_str),
    ) {
        let resp = client
            .get(endpoint)
            .bearer_auth(access)
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| Refused::provider(format!("userinfo request failed: {e}")))?;
        let info = provider_json(resp, "userinfo").await?;
        if info.get("sub") != claims.get("sub") {
            return Err(Refused::forbidden(
                "userinfo describes another user than the ID token",
            ));
        }
        for (k, v) in info {
            claims.entry(k).or_insert(v);
        }
    }
    let (token, csrf, ttl_secs) = finish_sign_in(
        state,
        found.account_id,
        &found.config,
        &claims,
        "sso_login",
        ip,
    )
    .await
    .map_err(|(status, message)| Refused { status, message })?;
    let next = local_path(&login.next_path).unwrap_or(START).to_string();
    let mut resp = redirect(&HeaderMap::new(), &next);
    session_cookies(state, &mut resp, &token, &csrf, ttl_secs);
    set_state_cookie(state, &mut resp, "", 0);
    Ok(resp)
}

/// The end of every SSO sign-in once the identity provider vouched for the user (RSP-572,
/// RSP-573): maps the claims (or LDAP attributes), matches or creates the member, adds it to
/// the teams of the team mapping, opens the console session and audits the sign-in as
/// `event`. Returns the session token, its CSRF token and its lifetime in seconds.
pub(crate) async fn finish_sign_in(
    state: &AppState,
    account_id: i64,
    config: &sso::SsoConfig,
    claims: &Map<String, Value>,
    event: &str,
    ip: &str,
) -> Result<(String, String, i64), (StatusCode, String)> {
    let internal = |e: &dyn std::fmt::Display| {
        let r = Refused::internal(e);
        (r.status, r.message)
    };
    let forbidden = |m: String| (StatusCode::FORBIDDEN, m);
    let now = state.clock.now();
    let user =
        sso::map_claims(&config.field_mapping, claims).map_err(|r| forbidden(r.message()))?;
    let outcome = state
        .store
        .sso_member(
            account_id,
            &user,
            config.create_account_on_login,
            &config.default_role_ids,
            now,
        )
        .await
        .map_err(|e| internal(&e))?
        .map_err(|r| match r {
            klaxon_store::Refusal::Conflict(m) | klaxon_store::Refusal::Invalid(m) => forbidden(m),
            other => internal(&format!("{other:?}")),
        })?;
    let member =
        match sso::provisioning(outcome.map(|m| m.member_id), config.create_account_on_login) {
            Ok(Provisioning::Existing(id)) => id,
            Ok(Provisioning::Create) => {
                return Err(internal(&"the member was neither found nor created"));
            }
            Err(r) => return Err(forbidden(r.message())),
        };
    if outcome.is_some_and(|m| m.created) {
        tracing::info!(
            account_id,
            member_id = member,
            "member created by single sign-on"
        );
    }
    let teams = sso::mapped_teams(&config.team_mapping, claims);
    if !teams.is_empty() {
        let (joined, unknown) = state
            .store
            .sso_join_teams(account_id, member, &teams, now)
            .await
            .map_err(|e| internal(&e))?;
        if !joined.is_empty() {
            tracing::info!(account_id, member_id = member, teams = ?joined, "joined teams by single sign-on");
        }
        if !unknown.is_empty() {
            tracing::warn!(account_id, teams = ?unknown, "the SSO team mapping names teams that do not exist");
        }
    }
    let ttl_ms = state.config.auth.session_ttl_minutes.max(1) * 60_000;
    let created = state
        .store
        .create_session(account_id, member, ttl_ms, now)
        .await
        .map_err(|e| internal(&e))?;
    crate::audit::record_signin(state, account_id, member, event, ip, "ok").await;
    tracing::info!(account_id, member_id = member, event, "signed in with SSO");
    Ok((created.token, created.session.csrf_token, ttl_ms / 1000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    #[test]
    fn pkce_challenge_is_base64url_sha256() {
        // BASE64URL(SHA-256(verifier)) without padding; the expected value was computed
        // independently (Python's hashlib and base64).
        assert_eq!(
            pkce_challenge("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            "qK5ubukpq-o6_PxSWMjM1vhSc-DUYm0mxyefMlD3fI4"
        );
    }

    #[test]
    fn an_hs256_id_token_is_refused() {
        // spec: RSP-575
        let claims = json!({"iss": "https://id.example.com", "aud": "klaxon", "sub": "u1",
                            "nonce": "n", "exp": 2_000, "iat": 1_000});
        let token = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"the client secret"),
        )
        .unwrap_or_default();
        assert!(!token.is_empty());
        // Even a JWKS holding the shared secret as an "oct" key does not make it acceptable.
        let jwks = vec![json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode(b"the client secret")})];
        let err = verify_id_token(
            &token,
            &jwks,
            "https://id.example.com",
            "klaxon",
            "n",
            1_500,
        )
        .err()
        .unwrap_or_default();
        assert!(err.contains("HS256"), "{err}");
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        // spec: RSP-575
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://id.example.com","aud":"klaxon"}"#);
        let token = format!("{header}.{body}.");
        assert!(verify_id_token(&token, &[], "https://id.example.com", "klaxon", "n", 1).is_err());
    }

    /// A freshly generated P-521 key, with its JWK.
    fn p521_key(kid: &str) -> (p521::ecdsa::SigningKey, Value) {
        let key = p521::ecdsa::SigningKey::random(&mut p521::elliptic_curve::rand_core::OsRng);
        let point = p521::ecdsa::VerifyingKey::from(&key).to_encoded_point(false);
        let jwk = json!({"kty": "EC", "crv": "P-521", "kid": kid, "use": "sig",
                         "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
                         "y": URL_SAFE_NO_PAD.encode(point.y().unwrap())});
        (key, jwk)
    }

    fn es512_token(key: &p521::ecdsa::SigningKey, kid: &str, claims: &Value) -> String {
        use p521::ecdsa::signature::Signer;
        let header =
            URL_SAFE_NO_PAD.encode(json!({"alg": "ES512", "typ": "JWT", "kid": kid}).to_string());
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{body}");
        // ES512: ECDSA P-521 over the SHA-512 of the signing input.
        let signature: p521::ecdsa::Signature = key.sign(signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    #[test]
    fn an_es512_id_token_verifies_against_the_jwks() {
        // spec: RSP-575 — ES512 (P-521, SHA-512) is accepted; its claims are checked as any.
        let (key, jwk) = p521_key("k1");
        let (other, other_jwk) = p521_key("k2");
        let claims = json!({"iss": "https://id.example.com", "aud": "klaxon", "sub": "u1",
                            "nonce": "n", "exp": 2_000, "iat": 1_000, "email": "a@example.com"});
        let token = es512_token(&key, "k1", &claims);
        let jwks = vec![other_jwk.clone(), jwk.clone()];
        let verify = |t: &str, jwks: &[Value], now| {
            verify_id_token(t, jwks, "https://id.example.com", "klaxon", "n", now)
        };
        let got = verify(&token, &jwks, 1_500).unwrap();
        assert_eq!(got["email"], "a@example.com");
        // Signed by a key the JWKS does not hold (or not under the named kid): refused.
        let forged = es512_token(&other, "k1", &claims);
        let e = verify(&forged, std::slice::from_ref(&jwk), 1_500).unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
        let e = verify(&forged, &[other_jwk], 1_500).unwrap_err();
        assert!(e.contains("no key"), "{e}");
        // A changed claim breaks the signature.
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string().replace("u1", "u2"));
        let e = verify(&parts.join("."), &jwks, 1_500).unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
        // Expired, or for another nonce: refused like any ID token.
        assert!(verify(&token, &jwks, 9_000).unwrap_err().contains("exp"));
        let e = verify_id_token(
            &token,
            &jwks,
            "https://id.example.com",
            "klaxon",
            "m",
            1_500,
        )
        .unwrap_err();
        assert!(e.contains("nonce"), "{e}");
    }

    #[test]
    fn the_redirect_url_follows_the_base_url() {
        assert_eq!(
            oidc_redirect_url("https://klaxon.example.com/", "acme"),
            "https://klaxon.example.com/sso/oidc/callback/acme"
        );
    }
}
