//! Single sign-on decisions (response.md §1.24, §2.31): what a valid SSO configuration is, how
//! an update changes it, how the identity provider's claims map to a member, and what a
//! sign-in does with the member it finds. Pure: the server fetches, verifies and stores.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// §1.24: the roles given to members created by SSO when none are configured (Viewer).
pub const DEFAULT_ROLE_IDS: [i64; 1] = [8];

/// The protocols of §1.24. This version signs in with OIDC; the others are refused on update.
pub const PROTOCOLS: [&str; 4] = ["saml2", "oidc", "cas", "ldap"];
pub const SUPPORTED_PROTOCOLS: [&str; 1] = ["oidc"];

/// `field_mapping` (§1.24): claim names at the identity provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldMapping {
    pub email: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub phone: String,
}

impl Default for FieldMapping {
    fn default() -> Self {
        FieldMapping {
            email: "email".to_string(),
            name: "name".to_string(),
            phone: "phone_number".to_string(),
        }
    }
}

/// The OIDC settings of §1.24 (the client secret is kept apart, see [`SsoUpdate`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
}

/// An account's SSO configuration without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoConfig {
    pub enabled: bool,
    pub protocol: String,
    pub login_domain: String,
    pub create_account_on_login: bool,
    pub field_mapping: FieldMapping,
    pub default_role_ids: Vec<i64>,
    pub oidc: OidcSettings,
    /// Whether a secret (the OIDC client secret) is stored; the secret itself is never read.
    pub has_secret: bool,
}

/// A validated update: the new configuration and, when the request set one, the new secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoUpdate {
    pub config: SsoConfig,
    pub secret: Option<String>,
}

/// §1.24: `^[a-z0-9][a-z0-9-]{1,62}$`.
pub fn valid_login_domain(domain: &str) -> bool {
    let bytes = domain.as_bytes();
    (2..=63).contains(&bytes.len())
        && matches!(bytes[0], b'a'..=b'z' | b'0'..=b'9')
        && bytes[1..]
            .iter()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
}

/// §1.24: the issuer is an http(s) URL without a query or fragment, kept as typed (it is
/// compared case-sensitively with the `iss` of ID tokens).
pub fn check_issuer(issuer: &str) -> Result<(), ApiError> {
    let rest = issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"))
        .ok_or_else(|| ApiError::invalid("oidc.issuer: must be an http:// or https:// URL"))?;
    if issuer.len() > 1024 {
        return Err(ApiError::invalid("oidc.issuer: at most 1024 characters"));
    }
    if rest.contains('?') {
        return Err(ApiError::invalid("oidc.issuer: must not contain a query"));
    }
    if rest.contains('#') {
        return Err(ApiError::invalid(
            "oidc.issuer: must not contain a fragment",
        ));
    }
    if rest.chars().any(char::is_whitespace) {
        return Err(ApiError::invalid("oidc.issuer: must not contain spaces"));
    }
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() {
        return Err(ApiError::invalid("oidc.issuer: has no host"));
    }
    Ok(())
}

fn text(args: &Map<String, Value>, name: &str, shown: &str) -> Result<Option<String>, ApiError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(_) => Err(ApiError::invalid(format!("{shown}: must be a string"))),
    }
}

fn flag(args: &Map<String, Value>, name: &str) -> Result<Option<bool>, ApiError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::invalid(format!("{name}: must be true or false"))),
    }
}

fn claim_name(value: Option<String>, shown: &str) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.chars().count() > 128 => Err(ApiError::invalid(format!(
            "{shown}: at most 128 characters"
        ))),
        other => Ok(other),
    }
}

/// Applies an `/account/sso/update` body to the stored configuration (or to the defaults of
/// §1.24 when there is none). Absent fields keep their value; the result is checked whole,
/// so an enabled configuration always has what a sign-in needs.
pub fn apply_update(current: Option<&SsoConfig>, body: &Value) -> Result<SsoUpdate, ApiError> {
    let args = body
        .as_object()
        .ok_or_else(|| ApiError::invalid("body must be a JSON object"))?;
    let mut config = current.cloned().unwrap_or_else(|| SsoConfig {
        enabled: false,
        protocol: "oidc".to_string(),
        login_domain: String::new(),
        create_account_on_login: true,
        field_mapping: FieldMapping::default(),
        default_role_ids: DEFAULT_ROLE_IDS.to_vec(),
        oidc: OidcSettings::default(),
        has_secret: false,
    });
    if let Some(b) = flag(args, "enabled")? {
        config.enabled = b;
    }
    if let Some(p) = text(args, "protocol", "protocol")? {
        if !PROTOCOLS.contains(&p.as_str()) {
            return Err(ApiError::invalid(format!(
                "protocol: must be one of {}",
                PROTOCOLS.join(", ")
            )));
        }
        if !SUPPORTED_PROTOCOLS.contains(&p.as_str()) {
            return Err(ApiError::invalid(format!(
                "protocol: {p} is not available in this version; use oidc"
            )));
        }
        config.protocol = p;
    }
    if let Some(d) = text(args, "login_domain", "login_domain")? {
        if !valid_login_domain(&d) {
            return Err(ApiError::invalid(
                "login_domain: 2 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit",
            ));
        }
        config.login_domain = d;
    }
    if let Some(b) = flag(args, "create_account_on_login")? {
        config.create_account_on_login = b;
    }
    match args.get("field_mapping") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            if let Some(e) = claim_name(
                text(m, "email", "field_mapping.email")?,
                "field_mapping.email",
            )? {
                if e.is_empty() {
                    return Err(ApiError::invalid("field_mapping.email: required"));
                }
                config.field_mapping.email = e;
            }
            if let Some(n) =
                claim_name(text(m, "name", "field_mapping.name")?, "field_mapping.name")?
            {
                config.field_mapping.name = n;
            }
            if let Some(p) = claim_name(
                text(m, "phone", "field_mapping.phone")?,
                "field_mapping.phone",
            )? {
                config.field_mapping.phone = p;
            }
        }
        Some(_) => return Err(ApiError::invalid("field_mapping: must be an object")),
    }
    match args.get("default_role_ids") {
        None | Some(Value::Null) => {}
        Some(Value::Array(ids)) => {
            let mut out = Vec::with_capacity(ids.len());
            for (i, v) in ids.iter().enumerate() {
                match v.as_i64() {
                    Some(id) if id > 0 => {
                        if !out.contains(&id) {
                            out.push(id);
                        }
                    }
                    _ => {
                        return Err(ApiError::invalid(format!(
                            "default_role_ids[{i}]: must be a positive role id"
                        )));
                    }
                }
            }
            if out.len() > 50 {
                return Err(ApiError::invalid("default_role_ids: at most 50 roles"));
            }
            config.default_role_ids = if out.is_empty() {
                DEFAULT_ROLE_IDS.to_vec()
            } else {
                out
            };
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "default_role_ids: must be a list of role ids",
            ));
        }
    }
    let mut secret = None;
    match args.get("oidc") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            if let Some(i) = text(m, "issuer", "oidc.issuer")? {
                check_issuer(&i)?;
                config.oidc.issuer = i;
            }
            if let Some(c) = text(m, "client_id", "oidc.client_id")? {
                if c.chars().count() > 255 {
                    return Err(ApiError::invalid("oidc.client_id: at most 255 characters"));
                }
                config.oidc.client_id = c;
            }
            if let Some(s) = text(m, "client_secret", "oidc.client_secret")? {
                if s.len() > 1024 {
                    return Err(ApiError::invalid("oidc.client_secret: at most 1024 bytes"));
                }
                // An empty secret keeps the stored one (reads never return it, so a form
                // sent back unchanged must not wipe it).
                if !s.is_empty() {
                    config.has_secret = true;
                    secret = Some(s);
                }
            }
        }
        Some(_) => return Err(ApiError::invalid("oidc: must be an object")),
    }
    if config.login_domain.is_empty() {
        return Err(ApiError::invalid("login_domain: required"));
    }
    if config.enabled && config.protocol == "oidc" {
        if config.oidc.issuer.is_empty() {
            return Err(ApiError::invalid(
                "oidc.issuer: required to enable OIDC sign-in",
            ));
        }
        if config.oidc.client_id.is_empty() {
            return Err(ApiError::invalid(
                "oidc.client_id: required to enable OIDC sign-in",
            ));
        }
        if !config.has_secret {
            return Err(ApiError::invalid(
                "oidc.client_secret: required to enable OIDC sign-in",
            ));
        }
    }
    Ok(SsoUpdate { config, secret })
}

/// The member fields read from the identity provider's claims (RSP-572, RSP-573).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedUser {
    pub email: String,
    pub name: String,
    pub phone: String,
}

fn claim_text(claims: &Map<String, Value>, name: &str) -> String {
    if name.is_empty() {
        return String::new();
    }
    match claims.get(name) {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// Why a sign-in is refused after the identity provider vouched for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInRefusal {
    /// RSP-572: no email in the claims (or not an address).
    NoEmail { claim: String },
    /// RSP-572: no member with this email and `create_account_on_login = false`.
    NotInvited,
}

impl SignInRefusal {
    pub fn message(&self) -> String {
        match self {
            SignInRefusal::NoEmail { claim } => format!(
                "the identity provider sent no email address (claim \"{claim}\"); sign-in refused"
            ),
            SignInRefusal::NotInvited => {
                "not invited: this account has no member with your email address; ask an \
                 administrator to invite you"
                    .to_string()
            }
        }
    }
}

/// RSP-572: maps the claims through `field_mapping`; without an email the sign-in is refused.
/// The name defaults to the email's local part; a phone that is not E.164 is dropped.
pub fn map_claims(
    mapping: &FieldMapping,
    claims: &Map<String, Value>,
) -> Result<MappedUser, SignInRefusal> {
    let email = claim_text(claims, &mapping.email);
    let looks_like_address = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && email.chars().count() <= 254
        && !email.chars().any(char::is_whitespace);
    if !looks_like_address {
        return Err(SignInRefusal::NoEmail {
            claim: mapping.email.clone(),
        });
    }
    let mut name: String = claim_text(claims, &mapping.name).chars().take(39).collect();
    if name.is_empty() {
        name = email
            .split('@')
            .next()
            .unwrap_or("")
            .chars()
            .take(39)
            .collect();
    }
    let raw_phone: String = claim_text(claims, &mapping.phone)
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect();
    let phone = if raw_phone.starts_with('+')
        && (8..=16).contains(&raw_phone.len())
        && raw_phone[1..].bytes().all(|b| b.is_ascii_digit())
    {
        raw_phone
    } else {
        String::new()
    };
    Ok(MappedUser { email, name, phone })
}

/// What a sign-in does with the member matched by email (RSP-572).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioning {
    /// Log the existing member in (a pending one becomes enabled); nothing is overwritten.
    Existing(i64),
    /// Create the member just in time.
    Create,
}

pub fn provisioning(
    existing_member: Option<i64>,
    create_account_on_login: bool,
) -> Result<Provisioning, SignInRefusal> {
    match existing_member {
        Some(id) => Ok(Provisioning::Existing(id)),
        None if create_account_on_login => Ok(Provisioning::Create),
        None => Err(SignInRefusal::NotInvited),
    }
}

/// RSP-575: the signature algorithms an ID token may use. HS256 (a secret shared with the
/// client) and `none` are refused.
pub const ID_TOKEN_ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512",
];

/// The time checks of an ID token against the injected clock, in seconds: `exp` must be in
/// the future and `iat` not in the future, each with `leeway` seconds of clock skew.
pub fn check_token_times(
    exp: Option<i64>,
    iat: Option<i64>,
    now_secs: i64,
    leeway: i64,
) -> Result<(), String> {
    let exp = exp.ok_or_else(|| "the ID token has no exp".to_string())?;
    if exp + leeway <= now_secs {
        return Err("the ID token has expired".to_string());
    }
    if let Some(iat) = iat
        && iat - leeway > now_secs
    {
        return Err("the ID token was issued in the future".to_string());
    }
    Ok(())
}

/// The `aud` of an ID token (a string or a list) names the client.
pub fn audience_matches(aud: &Value, client_id: &str) -> bool {
    match aud {
        Value::String(s) => s == client_id,
        Value::Array(list) => list.iter().any(|v| v.as_str() == Some(client_id)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn login_domain_pattern() {
        // spec: RSP-571
        assert!(valid_login_domain("acme"));
        assert!(valid_login_domain("0a-b"));
        assert!(!valid_login_domain("a"));
        assert!(!valid_login_domain("-acme"));
        assert!(!valid_login_domain("Acme"));
        assert!(!valid_login_domain("ac.me"));
        assert!(!valid_login_domain(&"a".repeat(64)));
        assert!(valid_login_domain(&"a".repeat(63)));
    }

    #[test]
    fn issuer_without_query() {
        assert!(check_issuer("https://id.example.com/realms/x").is_ok());
        assert!(check_issuer("https://id.example.com/?a=1").is_err());
        assert!(check_issuer("ftp://id.example.com").is_err());
        assert!(check_issuer("https://").is_err());
    }

    #[test]
    fn update_keeps_absent_fields_and_the_secret() {
        // spec: RSP-570
        let first = apply_update(
            None,
            &json!({"enabled": true, "login_domain": "acme",
                    "oidc": {"issuer": "https://id.example.com", "client_id": "k", "client_secret": "s"}}),
        )
        .unwrap();
        assert_eq!(first.secret.as_deref(), Some("s"));
        assert_eq!(first.config.default_role_ids, vec![8]);
        assert!(first.config.create_account_on_login);
        let second = apply_update(
            Some(&first.config),
            &json!({"create_account_on_login": false, "oidc": {"client_secret": ""}}),
        )
        .unwrap();
        assert_eq!(second.secret, None);
        assert!(second.config.has_secret);
        assert_eq!(second.config.login_domain, "acme");
        assert!(!second.config.create_account_on_login);
    }

    #[test]
    fn enabling_needs_the_client() {
        let e = apply_update(None, &json!({"enabled": true, "login_domain": "acme"})).unwrap_err();
        assert!(e.message.contains("oidc.issuer"));
        let e =
            apply_update(None, &json!({"protocol": "cas", "login_domain": "acme"})).unwrap_err();
        assert!(e.message.contains("protocol"));
        let e = apply_update(None, &json!({"login_domain": "Bad Domain"})).unwrap_err();
        assert!(e.message.starts_with("login_domain"));
    }

    #[test]
    fn claims_map_through_the_field_mapping() {
        // spec: RSP-572
        let m = FieldMapping::default();
        let claims =
            json!({"email": "Ann@Example.com", "name": "Ann", "phone_number": "+1 415 555 0100"});
        let u = map_claims(&m, claims.as_object().unwrap()).unwrap();
        assert_eq!(u.email, "Ann@Example.com");
        assert_eq!(u.name, "Ann");
        assert_eq!(u.phone, "+14155550100");
        let none = json!({"name": "Ann"});
        assert!(matches!(
            map_claims(&m, none.as_object().unwrap()),
            Err(SignInRefusal::NoEmail { .. })
        ));
        let bare = json!({"email": "bob@example.com"});
        assert_eq!(
            map_claims(&m, bare.as_object().unwrap()).unwrap().name,
            "bob"
        );
    }

    #[test]
    fn provisioning_follows_create_account_on_login() {
        // spec: RSP-572
        assert_eq!(provisioning(Some(3), false), Ok(Provisioning::Existing(3)));
        assert_eq!(provisioning(None, true), Ok(Provisioning::Create));
        assert_eq!(provisioning(None, false), Err(SignInRefusal::NotInvited));
    }

    #[test]
    fn token_times_use_the_given_clock() {
        assert!(check_token_times(Some(100), Some(50), 90, 0).is_ok());
        assert!(check_token_times(Some(100), Some(50), 100, 0).is_err());
        assert!(check_token_times(None, None, 0, 0).is_err());
        assert!(check_token_times(Some(100), Some(95), 90, 0).is_err());
        assert!(audience_matches(&json!(["a", "k"]), "k"));
        assert!(!audience_matches(&json!("a"), "k"));
    }
}
