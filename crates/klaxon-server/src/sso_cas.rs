//! Single sign-on with CAS (response.md RSP-576, RSP-571…RSP-573, docs/sign-in.md):
//!
//! - `GET /sso/cas/start/{login_domain}` — records the pending sign-in (its `state` goes into a
//!   cookie of this browser) and redirects to `{server_url}{login_path}?service=<service URL>`;
//! - `GET /sso/cas/callback/{login_domain}?ticket=…` — the service URL: takes the sign-in back
//!   by the browser's cookie (once), validates the ticket with CAS 3.0 `p3/serviceValidate`,
//!   falling back to CAS 2.0 `serviceValidate` when the server has no CAS 3.0 endpoint, maps
//!   the attributes and signs the member in exactly as an OIDC sign-in does.
//!
//! The service URL carries no query of its own: CAS servers compare it with their service
//! registry, and it must be the same at login and at validation. The browser binding that
//! OIDC gets from `state` comes from the cookie alone.

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use klaxon_core::sso;
use klaxon_store::SsoLogin;
use serde_json::{Map, Value};

use crate::console::{local_path, redirect};
use crate::signin::{cookie, session_cookies};
use crate::sso::{
    LOGIN_TTL_MS, MAX_PROVIDER_BODY, Refused, START, STATE_COOKIE, enabled_config, finish_sign_in,
    http_client, next_of, param, query_pairs, refused_page, set_state_cookie,
};
use crate::state::{AppState, random_hex};

/// The XML namespace of CAS 2.0 and 3.0 service responses.
const CAS_NS: &str = "http://www.yale.edu/tp/cas";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sso/cas/start/{login_domain}", get(start))
        .route("/sso/cas/callback/{login_domain}", get(callback))
}

/// RSP-576: the service (redirect) URL to register at the CAS server.
pub fn cas_service_url(base_url: &str, login_domain: &str) -> String {
    format!(
        "{}/sso/cas/callback/{login_domain}",
        base_url.trim_end_matches('/')
    )
}

/// A CAS server's answer to a ticket validation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CasAnswer {
    /// `cas:authenticationSuccess`: the user and the released attributes (each a string, or a
    /// list when the attribute came several times).
    Success {
        user: String,
        attributes: Map<String, Value>,
    },
    /// `cas:authenticationFailure` with its `code` (`INVALID_TICKET`, `INVALID_SERVICE`, …).
    Failure { code: String, message: String },
}

fn is_cas(node: &roxmltree::Node, name: &str) -> bool {
    node.is_element()
        && node.tag_name().name() == name
        // Some servers leave the namespace out; the local name is what counts then.
        && matches!(node.tag_name().namespace(), None | Some(CAS_NS))
}

fn node_text(node: &roxmltree::Node) -> String {
    node.descendants()
        .filter(roxmltree::Node::is_text)
        .filter_map(|t| t.text())
        .collect::<String>()
        .trim()
        .to_string()
}

/// Parses a CAS 2.0/3.0 `serviceResponse` (the XML of the CAS protocol specification,
/// sections 2.5 and 2.6). Attributes come from `cas:attributes` (CAS 3.0, and CAS 2.0 servers
/// that release them the same way). A document type declaration is refused by the parser, so
/// no entity can be expanded.
pub(crate) fn parse_service_response(xml: &str) -> Result<CasAnswer, String> {
    let doc = roxmltree::Document::parse(xml)
        .map_err(|e| format!("the answer is not well-formed XML: {e}"))?;
    let root = doc.root_element();
    if !is_cas(&root, "serviceResponse") {
        return Err(format!(
            "the answer is not a CAS serviceResponse (root element <{}>)",
            root.tag_name().name()
        ));
    }
    for child in root.children().filter(roxmltree::Node::is_element) {
        if is_cas(&child, "authenticationFailure") {
            return Ok(CasAnswer::Failure {
                code: child.attribute("code").unwrap_or("").trim().to_string(),
                message: node_text(&child),
            });
        }
        if is_cas(&child, "authenticationSuccess") {
            let user = child
                .children()
                .find(|n| is_cas(n, "user"))
                .map(|n| node_text(&n))
                .unwrap_or_default();
            if user.is_empty() {
                return Err("the CAS server answered success without a user".to_string());
            }
            let mut attributes = Map::new();
            for attrs in child.children().filter(|n| is_cas(n, "attributes")) {
                for a in attrs.children().filter(roxmltree::Node::is_element) {
                    let name = a.tag_name().name().to_string();
                    let value = Value::String(node_text(&a));
                    match attributes.get_mut(&name) {
                        None => {
                            attributes.insert(name, value);
                        }
                        Some(Value::Array(list)) => list.push(value),
                        Some(first) => *first = Value::Array(vec![first.take(), value]),
                    }
                }
            }
            return Ok(CasAnswer::Success { user, attributes });
        }
    }
    Err("the CAS serviceResponse holds neither success nor failure".to_string())
}

/// The claims a CAS sign-in maps: the released attributes, plus the CAS user name as `user`
/// (unless an attribute of that name was released), so a server whose user names are e-mail
/// addresses works with `field_mapping.email = "user"`.
pub(crate) fn cas_claims(user: String, mut attributes: Map<String, Value>) -> Map<String, Value> {
    attributes
        .entry("user".to_string())
        .or_insert(Value::String(user));
    attributes
}

async fn start(
    State(state): State<AppState>,
    Path(login_domain): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    let next = next_of(&pairs);
    match start_inner(&state, &login_domain, &next).await {
        Ok(resp) => resp,
        Err(r) => refused_page(&state, &login_domain, &next, r).await,
    }
}

async fn start_inner(
    state: &AppState,
    login_domain: &str,
    next: &str,
) -> Result<Response, Refused> {
    let found = enabled_config(state, login_domain).await?;
    if found.config.protocol != "cas" {
        return Err(Refused::bad(format!(
            "the login domain \"{login_domain}\" does not sign in with CAS"
        )));
    }
    let login_state = random_hex(32);
    let login = SsoLogin {
        account_id: found.account_id,
        login_domain: login_domain.to_string(),
        nonce: String::new(),
        code_verifier: String::new(),
        next_path: next.to_string(),
    };
    state
        .store
        .start_sso_login(&login_state, &login, state.clock.now(), LOGIN_TTL_MS)
        .await
        .map_err(Refused::internal)?;
    let service = cas_service_url(&state.base_url, login_domain);
    let to = sso::cas_login_url(&found.config.cas, &service);
    let mut resp = redirect(&HeaderMap::new(), &to);
    set_state_cookie(state, &mut resp, &login_state, LOGIN_TTL_MS / 1000);
    Ok(resp)
}

async fn callback(
    State(state): State<AppState>,
    Path(login_domain): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    let ip = crate::openapi::client_ip(&extensions);
    match callback_inner(&state, &login_domain, &pairs, &headers, &ip).await {
        Ok(resp) => resp,
        Err(r) => {
            let mut resp = refused_page(&state, &login_domain, START, r).await;
            set_state_cookie(&state, &mut resp, "", 0);
            resp
        }
    }
}

async fn callback_inner(
    state: &AppState,
    login_domain: &str,
    pairs: &[(String, String)],
    headers: &HeaderMap,
    ip: &str,
) -> Result<Response, Refused> {
    // Only the browser that started the sign-in can finish it, and only once.
    let Some(login_state) = cookie(headers, STATE_COOKIE) else {
        return Err(Refused::bad(
            "this sign-in was not started in this browser; start it again",
        ));
    };
    let now = state.clock.now();
    let login = state
        .store
        .take_sso_login(login_state, now)
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
    let ticket = param(pairs, "ticket");
    if ticket.is_empty() {
        return Err(Refused::bad("the CAS server sent no ticket"));
    }
    let found = enabled_config(state, login_domain).await?;
    if found.account_id != login.account_id || found.config.protocol != "cas" {
        return Err(Refused::bad(
            "the single sign-on of this login domain has changed; start again",
        ));
    }
    let service = cas_service_url(&state.base_url, login_domain);
    let (user, attributes) = validate_ticket(&found.config.cas, &service, &ticket).await?;
    let claims = cas_claims(user, attributes);
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

/// One validation request: `Ok(None)` when this endpoint does not exist on the server (any
/// non-2xx answer, or a 2xx page that is no CAS serviceResponse), so the caller may fall back.
async fn ask(
    client: &reqwest::Client,
    url: &str,
    service: &str,
    ticket: &str,
) -> Result<Option<CasAnswer>, Refused> {
    let mut url = reqwest::Url::parse(url)
        .map_err(|e| Refused::provider(format!("cas.server_url is not usable: {e}")))?;
    url.query_pairs_mut()
        .append_pair("service", service)
        .append_pair("ticket", ticket);
    let resp = client
        .get(url.clone())
        .header(header::ACCEPT, "application/xml, text/xml")
        .send()
        .await
        .map_err(|e| Refused::provider(format!("cannot reach the CAS server: {e}")))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| Refused::provider(format!("cannot read the CAS server's answer: {e}")))?;
    if !status.is_success() {
        tracing::info!(url = %url.path(), %status, "CAS validation endpoint answered an error");
        return Ok(None);
    }
    if body.len() > MAX_PROVIDER_BODY {
        return Err(Refused::provider("the CAS server's answer is too large"));
    }
    let text = String::from_utf8_lossy(&body);
    match parse_service_response(&text) {
        Ok(answer) => Ok(Some(answer)),
        Err(why) => {
            tracing::info!(url = %url.path(), reason = %why, "CAS validation endpoint gave no serviceResponse");
            Ok(None)
        }
    }
}

/// RSP-576: validates a service ticket with `p3/serviceValidate` (CAS 3.0), falling back to
/// `serviceValidate` (CAS 2.0) when the server has no CAS 3.0 endpoint. A failure answered by
/// the CAS 3.0 endpoint is final: the ticket is spent, asking again cannot succeed.
async fn validate_ticket(
    cas: &sso::CasSettings,
    service: &str,
    ticket: &str,
) -> Result<(String, Map<String, Value>), Refused> {
    let client = http_client()?;
    let base = cas.server_url.trim_end_matches('/');
    let mut answer = ask(
        &client,
        &format!("{base}/p3/serviceValidate"),
        service,
        ticket,
    )
    .await?;
    if answer.is_none() {
        answer = ask(&client, &format!("{base}/serviceValidate"), service, ticket).await?;
    }
    match answer {
        Some(CasAnswer::Success { user, attributes }) => Ok((user, attributes)),
        Some(CasAnswer::Failure { code, message }) => Err(Refused {
            status: StatusCode::FORBIDDEN,
            message: format!("the CAS server refused the ticket: {code} {message}")
                .trim()
                .to_string(),
        }),
        None => Err(Refused::provider(
            "the CAS server answered neither p3/serviceValidate nor serviceValidate with a \
             CAS serviceResponse; check cas.server_url",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_cas3_success_carries_the_attributes() {
        // spec: RSP-576 — the response format of the CAS protocol 3.0 specification.
        let xml = r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
  <cas:authenticationSuccess>
    <cas:user>ann</cas:user>
    <cas:attributes>
      <cas:email>ann@example.com</cas:email>
      <cas:displayName>Ann Lee</cas:displayName>
      <cas:memberOf>sre</cas:memberOf>
      <cas:memberOf>dba</cas:memberOf>
      <cas:isFromNewLogin>true</cas:isFromNewLogin>
    </cas:attributes>
  </cas:authenticationSuccess>
</cas:serviceResponse>"#;
        let CasAnswer::Success { user, attributes } = parse_service_response(xml).unwrap() else {
            panic!("a success");
        };
        assert_eq!(user, "ann");
        assert_eq!(attributes["email"], "ann@example.com");
        assert_eq!(attributes["displayName"], "Ann Lee");
        assert_eq!(attributes["memberOf"], json!(["sre", "dba"]));
        let claims = cas_claims(user, attributes);
        assert_eq!(claims["user"], "ann");
    }

    #[test]
    fn a_failure_names_its_code() {
        // spec: RSP-576
        let xml = r#"<cas:serviceResponse xmlns:cas='http://www.yale.edu/tp/cas'>
    <cas:authenticationFailure code="INVALID_TICKET">
        Ticket ST-1856339-aA5Yuvrxzpv8Tau1cYQ7 not recognized
    </cas:authenticationFailure>
</cas:serviceResponse>"#;
        assert_eq!(
            parse_service_response(xml).unwrap(),
            CasAnswer::Failure {
                code: "INVALID_TICKET".into(),
                message: "Ticket ST-1856339-aA5Yuvrxzpv8Tau1cYQ7 not recognized".into(),
            }
        );
    }

    #[test]
    fn other_documents_are_not_answers() {
        assert!(parse_service_response("<html><body>Not found</body></html>").is_err());
        assert!(parse_service_response("not xml").is_err());
        // No entity expansion: a document type declaration is refused outright.
        let dtd = r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>
<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess>
<cas:user>&a;</cas:user></cas:authenticationSuccess></cas:serviceResponse>"#;
        assert!(parse_service_response(dtd).is_err());
        let empty = r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
<cas:authenticationSuccess><cas:user> </cas:user></cas:authenticationSuccess></cas:serviceResponse>"#;
        assert!(parse_service_response(empty).is_err());
    }

    #[test]
    fn a_released_user_attribute_wins_over_the_cas_user() {
        let mut attrs = Map::new();
        attrs.insert("user".into(), json!("u@example.com"));
        assert_eq!(cas_claims("ann".into(), attrs)["user"], "u@example.com");
    }

    #[test]
    fn the_service_url_follows_the_base_url() {
        assert_eq!(
            cas_service_url("https://klaxon.example.com/", "acme"),
            "https://klaxon.example.com/sso/cas/callback/acme"
        );
    }
}
