//! The account's single sign-on configuration (response.md §1.24, RSP-570, RSP-571):
//! - `/account/sso/info` (`SSO Read`) answers the configuration without its client secret
//!   (`has_client_secret` says whether one is stored) and the redirect URL to register at the
//!   identity provider (for CAS, `cas.service_url`; for SAML: the SP entity ID, metadata URL and
//!   ACS URL, RSP-574);
//! - `/account/sso/update` (`SSO Manage`) changes it: absent fields keep their value, an
//!   empty `oidc.client_secret` or `ldap.bind_password` keeps the stored secret, and a login
//!   domain another account uses is refused (`InvalidParameter`, conflict) with nothing
//!   changed. Saving an enabled LDAP configuration first tests the connection (RSP-577: binds
//!   as `bind_dn` and reads `user_dn`); a failed test is refused and changes nothing.

use klaxon_core::error::ApiError;
use klaxon_core::saml;
use klaxon_core::sso::{self, SsoConfig};
use serde_json::{Value, json};

use super::teams::{refused, store_err};
use super::{Args, Caller};
use crate::state::AppState;

pub const PATHS: &[&str] = &["/account/sso/info", "/account/sso/update"];

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    match path {
        "/account/sso/info" => Some(info(state, caller).await.map(Some)),
        "/account/sso/update" => Some(update(state, caller, args).await.map(Some)),
        _ => None,
    }
}

fn shown(state: &AppState, c: &SsoConfig) -> Value {
    let redirect_url = if c.login_domain.is_empty() || c.protocol != "oidc" {
        String::new()
    } else {
        crate::sso::oidc_redirect_url(&state.base_url, &c.login_domain)
    };
    json!({
        "configured": true,
        "enabled": c.enabled,
        "protocol": c.protocol,
        "login_domain": c.login_domain,
        "create_account_on_login": c.create_account_on_login,
        "field_mapping": c.field_mapping,
        "default_role_ids": c.default_role_ids,
        "oidc": {
            "issuer": c.oidc.issuer,
            "client_id": c.oidc.client_id,
            "has_client_secret": c.protocol == "oidc" && c.has_secret,
            "redirect_url": redirect_url,
        },
        "ldap": ldap_shown(&c.ldap, c.protocol == "ldap" && c.has_secret),
        "cas": cas_shown(state, &c.cas, &c.login_domain, c.protocol == "cas"),
        "saml": saml_shown(state, &c.saml, &c.login_domain, c.protocol == "saml2"),
        "team_mapping": c.team_mapping,
    })
}

/// The CAS settings as answered, with the service URL to register at the CAS server
/// (§1.24: "shows the redirect (service) URL").
fn cas_shown(state: &AppState, cas: &sso::CasSettings, login_domain: &str, active: bool) -> Value {
    let service_url = if active && !login_domain.is_empty() {
        crate::sso_cas::cas_service_url(&state.base_url, login_domain)
    } else {
        String::new()
    };
    json!({
        "server_url": cas.server_url,
        "login_path": cas.login_path,
        "service_url": service_url,
    })
}

/// RSP-574: the SAML settings, with what the IdP needs from Klaxon (SP entity ID, metadata
/// URL, ACS URL) once the login domain uses SAML, and the fingerprints of the certificates
/// taken from the uploaded IdP metadata.
fn saml_shown(state: &AppState, s: &saml::SamlSettings, login_domain: &str, active: bool) -> Value {
    let urls = active && !login_domain.is_empty();
    let certificates: Vec<Value> = s
        .idp_certificates
        .iter()
        .map(|c| json!({"sha256_fingerprint": saml::certificate_fingerprint(c)}))
        .collect();
    json!({
        "available": saml::AVAILABLE,
        "idp_entity_id": s.idp_entity_id,
        "idp_sso_url": s.idp_sso_url,
        "idp_certificates": certificates,
        "sp_entity_id": saml::sp_entity_id(s, &state.base_url),
        // The private key is the configuration's secret and is never answered.
        "sp_encryption_certificate": if s.sp_encryption_certificate.is_empty() {
            Value::Null
        } else {
            json!({"sha256_fingerprint": saml::certificate_fingerprint(&s.sp_encryption_certificate)})
        },
        "allow_idp_initiated": s.allow_idp_initiated,
        "idp_slo_url": s.idp_slo_url,
        "idp_wants_signed_requests": s.idp_wants_signed_requests,
        "sign_requests": s.sign_requests,
        "metadata_url": if urls { saml::metadata_url(&state.base_url, login_domain) } else { String::new() },
        "acs_url": if urls { saml::acs_url(&state.base_url, login_domain) } else { String::new() },
        "slo_url": if urls { saml::slo_url(&state.base_url, login_domain) } else { String::new() },
    })
}

/// The LDAP settings as answered: never the bind password, only whether one is stored.
fn ldap_shown(l: &sso::LdapSettings, has_bind_password: bool) -> Value {
    json!({
        "url": l.url,
        "bind_dn": l.bind_dn,
        "has_bind_password": has_bind_password,
        "tls_skip_verify": l.tls_skip_verify,
        "start_tls": l.start_tls,
        "user_dn": l.user_dn,
        "auth_filter": l.auth_filter,
    })
}

async fn info(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    match state
        .store
        .sso_config(caller.account_id)
        .await
        .map_err(store_err)?
    {
        Some(c) => Ok(shown(state, &c)),
        None => Ok(json!({
            "configured": false,
            "enabled": false,
            "protocol": "oidc",
            "login_domain": "",
            "create_account_on_login": true,
            "field_mapping": sso::FieldMapping::default(),
            "default_role_ids": sso::DEFAULT_ROLE_IDS,
            "oidc": {"issuer": "", "client_id": "", "has_client_secret": false, "redirect_url": ""},
            "ldap": ldap_shown(&sso::LdapSettings::default(), false),
            "cas": cas_shown(state, &sso::CasSettings::default(), "", false),
            "saml": saml_shown(state, &saml::SamlSettings::default(), "", false),
            "team_mapping": sso::TeamMapping::default(),
        })),
    }
}

async fn update(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let current = state
        .store
        .sso_config(caller.account_id)
        .await
        .map_err(store_err)?;
    let body = Value::Object(args.raw().clone());
    let update = sso::apply_update(current.as_ref(), &body)?;
    let unknown = state
        .store
        .unknown_role_ids(caller.account_id, &update.config.default_role_ids)
        .await
        .map_err(store_err)?;
    if let Some(id) = unknown.first() {
        return Err(ApiError::invalid(format!(
            "default_role_ids: role {id} does not exist"
        )));
    }
    if update.config.enabled && update.config.protocol == "ldap" {
        let password = match update.secret.as_deref() {
            Some(s) => s.to_string(),
            None => state
                .store
                .sso_secret(caller.account_id)
                .await
                .map_err(store_err)?,
        };
        crate::sso_ldap::test_connection(&update.config.ldap, &password)
            .await
            .map_err(|why| ApiError::invalid(format!("ldap: test connection failed: {why}")))?;
    }
    state
        .store
        .put_sso_config(
            caller.account_id,
            &update.config,
            update.secret.as_deref(),
            state.clock.now(),
        )
        .await
        .map_err(store_err)?
        .map_err(refused)?;
    tracing::info!(
        account_id = caller.account_id,
        member_id = caller.member_id,
        enabled = update.config.enabled,
        login_domain = %update.config.login_domain,
        "SSO configuration changed"
    );
    Ok(shown(state, &update.config))
}
