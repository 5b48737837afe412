//! LDAP sign-in (response.md RSP-577, RSP-578, docs/sign-in.md): the login domain's users sign
//! in with their directory user name and password on Klaxon's own form.
//!
//! - `GET /sso/ldap/{login_domain}` — the form (the sign-in page's "Sign in with SSO" sends
//!   an LDAP domain here);
//! - `POST /sso/ldap/{login_domain}` — binds as `bind_dn`, searches below `user_dn` with
//!   `auth_filter` (`%s` = the RFC 4515-escaped user name), requires exactly one entry, binds
//!   as that entry with the password, maps its attributes and signs the member in exactly as
//!   an OIDC sign-in does (match by email or create just in time, team mapping, console
//!   session). Failures count toward the same throttle and lockout as password sign-ins,
//!   keyed by login domain and user name.
//!
//! "Test connection" is part of saving an enabled LDAP configuration
//! ([`test_connection`]): a configuration whose bind or search base fails is refused.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use klaxon_core::sso::{self, FieldMapping, LdapSettings};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, SearchOptions};
use serde_json::{Map, Value};

use crate::console::local_path;
use crate::console::signin::ldap_form;
use crate::state::AppState;

/// A whole LDAP exchange (connect, binds, search) must finish within this.
const LDAP_TIMEOUT: Duration = Duration::from_secs(15);
/// LDAP result code 49: invalidCredentials.
const INVALID_CREDENTIALS: u32 = 49;
/// LDAP result code 4: sizeLimitExceeded (more entries than asked for).
const SIZE_LIMIT_EXCEEDED: u32 = 4;
const START: &str = "/incidents";

pub fn routes() -> Router<AppState> {
    Router::new().route("/sso/ldap/{login_domain}", get(form_page).post(submit))
}

/// Why the directory did not vouch for a user.
#[derive(Debug)]
pub(crate) enum LdapFailure {
    /// Unknown user name or wrong password: counts toward the lockout.
    Credentials,
    /// RSP-577: the filter matches more than one entry.
    Ambiguous,
    /// The directory could not be used (unreachable, the service bind failed, bad base…).
    Directory(String),
}

async fn connect(settings: &LdapSettings) -> Result<Ldap, String> {
    klaxon_notify::install_crypto_provider();
    let conn_settings = LdapConnSettings::new()
        .set_conn_timeout(Duration::from_secs(10))
        .set_starttls(settings.start_tls)
        .set_no_tls_verify(settings.tls_skip_verify);
    let (conn, ldap) = LdapConnAsync::with_settings(conn_settings, &settings.url)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", settings.url))?;
    tokio::spawn(async move {
        if let Err(e) = conn.drive().await {
            tracing::debug!(error = %e, "LDAP connection closed with an error");
        }
    });
    Ok(ldap)
}

/// Binds as the configured service entry (an anonymous session when `bind_dn` is empty).
async fn service_bind(
    ldap: &mut Ldap,
    settings: &LdapSettings,
    bind_password: &str,
) -> Result<(), String> {
    if settings.bind_dn.is_empty() {
        return Ok(());
    }
    let res = ldap
        .simple_bind(&settings.bind_dn, bind_password)
        .await
        .map_err(|e| format!("the bind as bind_dn failed: {e}"))?;
    if res.rc != 0 {
        return Err(format!(
            "the bind as bind_dn was refused (LDAP result {}: {})",
            res.rc,
            if res.text.is_empty() {
                "invalid credentials"
            } else {
                res.text.as_str()
            }
        ));
    }
    Ok(())
}

/// "Test connection" (RSP-577): binds as `bind_dn` and reads the search base.
pub(crate) async fn test_connection(
    settings: &LdapSettings,
    bind_password: &str,
) -> Result<(), String> {
    let run = async {
        let mut ldap = connect(settings).await?;
        service_bind(&mut ldap, settings, bind_password).await?;
        let res = ldap
            .search(
                &settings.user_dn,
                Scope::Base,
                "(objectClass=*)",
                vec!["1.1"],
            )
            .await
            .map_err(|e| format!("the search below user_dn failed: {e}"))?;
        let ldap3::SearchResult(entries, result) = res;
        let _ = ldap.unbind().await;
        if result.rc != 0 || entries.is_empty() {
            return Err(format!(
                "user_dn {} cannot be read (LDAP result {}{})",
                settings.user_dn,
                result.rc,
                if result.text.is_empty() {
                    String::new()
                } else {
                    format!(": {}", result.text)
                }
            ));
        }
        Ok(())
    };
    tokio::time::timeout(LDAP_TIMEOUT, run)
        .await
        .map_err(|_| "the directory did not answer in time".to_string())?
}

/// RSP-577: authenticates `login` with `password` and returns the entry's attributes, keyed
/// by lower-cased attribute name (attribute names are case-insensitive in LDAP), each a list
/// of its values.
pub(crate) async fn authenticate(
    settings: &LdapSettings,
    bind_password: &str,
    login: &str,
    password: &str,
    attributes: &[String],
) -> Result<Map<String, Value>, LdapFailure> {
    // An empty password would make a "simple bind" unauthenticated, which many directories
    // accept: never let it through.
    if password.is_empty() || login.is_empty() {
        return Err(LdapFailure::Credentials);
    }
    let run = async {
        let mut ldap = connect(settings).await.map_err(LdapFailure::Directory)?;
        service_bind(&mut ldap, settings, bind_password)
            .await
            .map_err(LdapFailure::Directory)?;
        let filter = sso::ldap_filter(&settings.auth_filter, login);
        let mut wanted: Vec<String> = attributes
            .iter()
            .filter(|a| !a.is_empty())
            .cloned()
            .collect();
        if wanted.is_empty() {
            wanted.push("1.1".to_string());
        }
        let ldap3::SearchResult(entries, result) = ldap
            .with_search_options(SearchOptions::new().sizelimit(2))
            .search(&settings.user_dn, Scope::Subtree, &filter, wanted)
            .await
            .map_err(|e| LdapFailure::Directory(format!("the user search failed: {e}")))?;
        let entries: Vec<_> = entries
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .collect();
        if result.rc == SIZE_LIMIT_EXCEEDED || entries.len() > 1 {
            return Err(LdapFailure::Ambiguous);
        }
        if result.rc != 0 {
            return Err(LdapFailure::Directory(format!(
                "the user search was refused (LDAP result {}: {})",
                result.rc, result.text
            )));
        }
        let Some(entry) = entries.into_iter().next() else {
            return Err(LdapFailure::Credentials);
        };
        let entry = SearchEntry::construct(entry);
        let res = ldap
            .simple_bind(&entry.dn, password)
            .await
            .map_err(|e| LdapFailure::Directory(format!("the user bind failed: {e}")))?;
        let _ = ldap.unbind().await;
        match res.rc {
            0 => {}
            INVALID_CREDENTIALS => return Err(LdapFailure::Credentials),
            rc => {
                return Err(LdapFailure::Directory(format!(
                    "the user bind was refused (LDAP result {rc}: {})",
                    res.text
                )));
            }
        }
        let mut claims = Map::new();
        for (name, values) in entry.attrs {
            claims.insert(
                name.to_lowercase(),
                Value::Array(values.into_iter().map(Value::String).collect()),
            );
        }
        Ok(claims)
    };
    tokio::time::timeout(LDAP_TIMEOUT, run)
        .await
        .map_err(|_| LdapFailure::Directory("the directory did not answer in time".to_string()))?
}

/// The attribute names a sign-in reads: the field mapping and the team mapping's attribute.
fn wanted_attributes(mapping: &FieldMapping, team_attribute: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in [
        mapping.email.as_str(),
        mapping.name.as_str(),
        mapping.phone.as_str(),
        team_attribute,
    ] {
        if !a.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(a)) {
            out.push(a.to_string());
        }
    }
    out
}

/// The field mapping with lower-cased names, to read the lower-cased attribute map.
fn lowercase_mapping(mapping: &FieldMapping) -> FieldMapping {
    FieldMapping {
        email: mapping.email.to_lowercase(),
        name: mapping.name.to_lowercase(),
        phone: mapping.phone.to_lowercase(),
    }
}

fn next_of(query: Option<&str>) -> String {
    query
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "next").map(|(_, v)| v))
        .and_then(|n| local_path(&n).map(str::to_string))
        .unwrap_or_else(|| START.to_string())
}

async fn form_page(
    State(state): State<AppState>,
    Path(login_domain): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let next = next_of(query.as_deref());
    match crate::sso::enabled_config(&state, &login_domain)
        .await
        .map_err(|r| (r.status, r.message))
    {
        Ok(found) if found.config.protocol == "ldap" => {
            ldap_form(&state, StatusCode::OK, &login_domain, "", "", &next).await
        }
        Ok(_) => {
            crate::sso::refused_domain(
                &state,
                &login_domain,
                &next,
                StatusCode::BAD_REQUEST,
                &format!("the login domain \"{login_domain}\" does not sign in with LDAP"),
            )
            .await
        }
        Err((status, message)) => {
            crate::sso::refused_domain(&state, &login_domain, &next, status, &message).await
        }
    }
}

/// The lockout key of an LDAP user name: its own space, apart from e-mail addresses.
fn lockout_key(login_domain: &str, username: &str) -> String {
    format!("ldap:{login_domain}:{}", username.trim().to_lowercase())
}

async fn submit(
    State(state): State<AppState>,
    Path(login_domain): Path<String>,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let ip = crate::openapi::client_ip(&extensions);
    let pairs = crate::console::form_pairs(&body);
    let get = |name: &str| crate::console::form_value(&pairs, name);
    let username = get("username").trim().to_string();
    let password = get("password");
    let next = local_path(&get("next")).unwrap_or(START).to_string();
    let refuse = |status: StatusCode, message: String| {
        let state = state.clone();
        let login_domain = login_domain.clone();
        let username = username.clone();
        let next = next.clone();
        async move {
            tracing::info!(login_domain = %login_domain, reason = %message, "LDAP sign-in refused");
            ldap_form(&state, status, &login_domain, &username, &message, &next).await
        }
    };
    let found = match crate::sso::enabled_config(&state, &login_domain)
        .await
        .map_err(|r| (r.status, r.message))
    {
        Ok(found) if found.config.protocol == "ldap" => found,
        Ok(_) => {
            return crate::sso::refused_domain(
                &state,
                &login_domain,
                &next,
                StatusCode::BAD_REQUEST,
                &format!("the login domain \"{login_domain}\" does not sign in with LDAP"),
            )
            .await;
        }
        Err((status, message)) => {
            return crate::sso::refused_domain(&state, &login_domain, &next, status, &message)
                .await;
        }
    };
    if username.is_empty() {
        return refuse(StatusCode::BAD_REQUEST, "username: required".to_string()).await;
    }
    if username.chars().count() > 256 {
        return refuse(
            StatusCode::BAD_REQUEST,
            "username: at most 256 characters".to_string(),
        )
        .await;
    }
    if password.is_empty() {
        return refuse(StatusCode::BAD_REQUEST, "password: required".to_string()).await;
    }
    if password.len() > 1024 {
        return refuse(
            StatusCode::BAD_REQUEST,
            "password: at most 1024 bytes".to_string(),
        )
        .await;
    }
    let now = state.clock.now();
    // The node-wide throttle and the per-name lockout of password sign-ins apply.
    let throttled = match state.signin_window.lock() {
        Ok(mut window) if window.limit() > 0 => {
            if window.has_room(now) {
                window.admit(now);
                false
            } else {
                true
            }
        }
        _ => false,
    };
    if throttled {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "too many sign-in attempts on this server right now; try again in a second".to_string(),
        )
        .await;
    }
    let key = lockout_key(&login_domain, &username);
    match state.store.login_locked_until(&key, now).await {
        Ok(Some(until)) => {
            let secs = (until - now).div_euclid(1000).max(1);
            return refuse(
                StatusCode::LOCKED,
                format!("too many failed sign-ins for this user name; try again in {secs} s"),
            )
            .await;
        }
        Ok(None) => {}
        Err(e) => {
            tracing::error!(error = %e, "LDAP sign-in failed");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the sign-in could not be completed; try again".to_string(),
            )
            .await;
        }
    }
    let config = &found.config;
    let attributes = wanted_attributes(&config.field_mapping, &config.team_mapping.attribute);
    let claims = match authenticate(
        &config.ldap,
        &found.secret,
        &username,
        &password,
        &attributes,
    )
    .await
    {
        Ok(claims) => claims,
        Err(LdapFailure::Credentials) => {
            let locked = state
                .store
                .record_login_failure(&key, now, crate::signin::lockout_policy(&state))
                .await;
            crate::audit::record_directory_signin_refused(
                &state,
                found.account_id,
                &username,
                &ip,
                klaxon_core::error::ErrorCode::Unauthorized.as_str(),
            )
            .await;
            return match locked {
                Ok(Some(until)) => {
                    let secs = (until - now).div_euclid(1000).max(1);
                    refuse(
                        StatusCode::LOCKED,
                        format!(
                            "too many failed sign-ins for this user name; try again in {secs} s"
                        ),
                    )
                    .await
                }
                Ok(None) => {
                    refuse(
                        StatusCode::UNAUTHORIZED,
                        "user name or password is incorrect".to_string(),
                    )
                    .await
                }
                Err(e) => {
                    tracing::error!(error = %e, "LDAP sign-in failed");
                    refuse(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the sign-in could not be completed; try again".to_string(),
                    )
                    .await
                }
            };
        }
        Err(LdapFailure::Ambiguous) => {
            return refuse(
                StatusCode::FORBIDDEN,
                "several directory entries match this user name; ask an administrator to \
                 narrow the LDAP filter"
                    .to_string(),
            )
            .await;
        }
        Err(LdapFailure::Directory(why)) => {
            tracing::warn!(login_domain = %login_domain, error = %why, "LDAP directory error");
            return refuse(
                StatusCode::BAD_GATEWAY,
                format!("the directory could not be used: {why}"),
            )
            .await;
        }
    };
    if let Err(e) = state.store.clear_login_failures(&key).await {
        tracing::error!(error = %e, "cannot clear LDAP sign-in failures");
    }
    let mut config = config.clone();
    config.field_mapping = lowercase_mapping(&config.field_mapping);
    config.team_mapping.attribute = config.team_mapping.attribute.to_lowercase();
    match crate::sso::finish_sign_in(
        &state,
        found.account_id,
        &config,
        &claims,
        "ldap_login",
        &ip,
    )
    .await
    {
        Ok((token, csrf, ttl_secs)) => {
            let mut resp = crate::console::redirect(&HeaderMap::new(), &next);
            crate::signin::session_cookies(&state, &mut resp, &token, &csrf, ttl_secs);
            resp
        }
        Err((status, message)) => refuse(status, message).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_asked_once() {
        let m = FieldMapping::ldap_default();
        assert_eq!(
            wanted_attributes(&m, "memberOf"),
            vec!["mail", "cn", "telephoneNumber", "memberOf"]
        );
        assert_eq!(
            wanted_attributes(&m, "MAIL"),
            vec!["mail", "cn", "telephoneNumber"]
        );
    }

    #[test]
    fn lockout_keys_do_not_collide_with_addresses() {
        assert_eq!(lockout_key("acme", " Ann "), "ldap:acme:ann");
        assert!(lockout_key("acme", "ann@example.com").starts_with("ldap:acme:"));
    }
}
