//! Single sign-on decisions (response.md §1.24, §2.31): what a valid SSO configuration is, how
//! an update changes it, how the identity provider's claims map to a member, and what a
//! sign-in does with the member it finds. Pure: the server fetches, verifies and stores.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// §1.24: the roles given to members created by SSO when none are configured (Viewer).
pub const DEFAULT_ROLE_IDS: [i64; 1] = [8];

/// The protocols of §1.24. This version signs in with OIDC, CAS, LDAP and (with the `saml`
/// feature) SAML 2.0; the others are refused on update.
pub const PROTOCOLS: [&str; 4] = ["saml2", "oidc", "cas", "ldap"];
#[cfg(not(feature = "saml"))]
pub const SUPPORTED_PROTOCOLS: [&str; 3] = ["oidc", "cas", "ldap"];
#[cfg(feature = "saml")]
pub const SUPPORTED_PROTOCOLS: [&str; 4] = ["oidc", "cas", "ldap", "saml2"];

/// RSP-576: the usual login path of a CAS server (Apereo CAS and its kin).
pub const CAS_DEFAULT_LOGIN_PATH: &str = "/login";

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

impl FieldMapping {
    /// The usual attribute names of an LDAP directory (inetOrgPerson).
    pub fn ldap_default() -> Self {
        FieldMapping {
            email: "mail".to_string(),
            name: "cn".to_string(),
            phone: "telephoneNumber".to_string(),
        }
    }
}

/// The OIDC settings of §1.24 (the client secret is kept apart, see [`SsoUpdate`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
}

/// The LDAP settings of §1.24 and RSP-577 (the bind password is kept apart, see
/// [`SsoUpdate`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LdapSettings {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    pub url: String,
    /// The entry the search binds as; empty = an anonymous search.
    pub bind_dn: String,
    pub tls_skip_verify: bool,
    pub start_tls: bool,
    /// The search base.
    pub user_dn: String,
    /// The search filter; `%s` stands for the escaped login name.
    pub auth_filter: String,
}

/// The CAS settings of §1.24 and RSP-576. CAS needs no secret: the ticket is validated by
/// asking the CAS server itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CasSettings {
    /// The CAS server's base URL, e.g. `https://cas.example.com/cas`; the validation
    /// endpoints `p3/serviceValidate` and `serviceValidate` sit below it.
    pub server_url: String,
    /// Appended to `server_url` for the browser's login redirect.
    pub login_path: String,
}

impl Default for CasSettings {
    fn default() -> Self {
        CasSettings {
            server_url: String::new(),
            login_path: CAS_DEFAULT_LOGIN_PATH.to_string(),
        }
    }
}

/// One rule of the team mapping: members whose attribute holds `value` join `team_name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamRule {
    pub value: String,
    pub team_name: String,
}

/// Team mapping for SSO sign-ins: the values of one claim (OIDC) or attribute (LDAP), such as
/// `groups` or `memberOf`, mapped to Klaxon team names. At each SSO sign-in the member is
/// added to every mapped team; membership is never removed by a sign-in (teams are also
/// edited by hand, and an identity provider that stops sending a group must not silently
/// take people off call).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TeamMapping {
    pub attribute: String,
    pub rules: Vec<TeamRule>,
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
    pub ldap: LdapSettings,
    pub cas: CasSettings,
    pub saml: crate::saml::SamlSettings,
    pub team_mapping: TeamMapping,
    /// Whether a secret (the OIDC client secret or the LDAP bind password) is stored; the
    /// secret itself is never read back.
    pub has_secret: bool,
}

/// A validated update: the new configuration and, when the request set one, the new secret.
/// `Some("")` clears the stored secret (the protocol changed and the old protocol's secret
/// must not be used by the new one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoUpdate {
    pub config: SsoConfig,
    pub secret: Option<String>,
}

/// §1.24: the LDAP URL is `ldap://` or `ldaps://` with a host, an optional port and nothing
/// else (no DN, query or user part).
pub fn check_ldap_url(url: &str) -> Result<(), ApiError> {
    let rest = url
        .strip_prefix("ldaps://")
        .or_else(|| url.strip_prefix("ldap://"))
        .ok_or_else(|| ApiError::invalid("ldap.url: must start with ldap:// or ldaps://"))?;
    if url.len() > 1024 {
        return Err(ApiError::invalid("ldap.url: at most 1024 characters"));
    }
    let hostport = rest.strip_suffix('/').unwrap_or(rest);
    if hostport.is_empty() {
        return Err(ApiError::invalid("ldap.url: has no host"));
    }
    if hostport
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '@'))
    {
        return Err(ApiError::invalid(
            "ldap.url: only a host and a port may follow the scheme",
        ));
    }
    if let Some((host, port)) = hostport.rsplit_once(':')
        && !host.ends_with(']')
        && !host.contains(':')
        && (host.is_empty() || port.parse::<u16>().ok().is_none_or(|p| p == 0))
    {
        return Err(ApiError::invalid("ldap.url: the port must be 1 to 65535"));
    }
    Ok(())
}

/// §1.24: the filter starts with `(` and ends with `)`, its parentheses balance, and it
/// names the login with `%s`.
pub fn check_auth_filter(filter: &str) -> Result<(), ApiError> {
    if !(filter.starts_with('(') && filter.ends_with(')')) {
        return Err(ApiError::invalid(
            "ldap.auth_filter: must start with \"(\" and end with \")\"",
        ));
    }
    if filter.len() > 1024 {
        return Err(ApiError::invalid(
            "ldap.auth_filter: at most 1024 characters",
        ));
    }
    let mut depth = 0i64;
    let mut escaped = false;
    for c in filter.chars() {
        match c {
            '\\' => escaped = true,
            _ if escaped => escaped = false,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    break;
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(ApiError::invalid(
            "ldap.auth_filter: the parentheses do not balance",
        ));
    }
    if !filter.contains("%s") {
        return Err(ApiError::invalid(
            "ldap.auth_filter: must contain %s where the login name goes",
        ));
    }
    Ok(())
}

/// RFC 4515 escaping of a value placed in a search filter: `\`, `*`, `(`, `)` and NUL become
/// `\XX`, so a login name can never add conditions or wildcards to the filter.
pub fn ldap_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\5c"),
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\0' => out.push_str("\\00"),
            other => out.push(other),
        }
    }
    out
}

/// RSP-577 step 2: the configured filter with every `%s` replaced by the escaped login.
pub fn ldap_filter(auth_filter: &str, login: &str) -> String {
    auth_filter.replace("%s", &ldap_escape(login))
}

/// The Klaxon team names a sign-in maps to (deduplicated, in rule order): the rules whose
/// value is one of the claim's values. Values compare case-insensitively (LDAP DNs and
/// most group names are).
pub fn mapped_teams(mapping: &TeamMapping, claims: &Map<String, Value>) -> Vec<String> {
    if mapping.attribute.is_empty() || mapping.rules.is_empty() {
        return Vec::new();
    }
    let values: Vec<String> = match claims.get(&mapping.attribute) {
        Some(Value::String(s)) => vec![s.trim().to_lowercase()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(|s| s.trim().to_lowercase())
            .collect(),
        _ => Vec::new(),
    };
    let mut out: Vec<String> = Vec::new();
    for rule in &mapping.rules {
        if values.contains(&rule.value.trim().to_lowercase()) && !out.contains(&rule.team_name) {
            out.push(rule.team_name.clone());
        }
    }
    out
}

fn parse_team_mapping(value: &Value) -> Result<TeamMapping, ApiError> {
    let Value::Object(m) = value else {
        return Err(ApiError::invalid("team_mapping: must be an object"));
    };
    let attribute = claim_name(
        text(m, "attribute", "team_mapping.attribute")?,
        "team_mapping.attribute",
    )?
    .unwrap_or_default();
    let mut rules = Vec::new();
    match m.get("rules") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            if list.len() > 100 {
                return Err(ApiError::invalid("team_mapping.rules: at most 100 rules"));
            }
            for (i, r) in list.iter().enumerate() {
                let Value::Object(r) = r else {
                    return Err(ApiError::invalid(format!(
                        "team_mapping.rules[{i}]: must be an object"
                    )));
                };
                let value = text(r, "value", &format!("team_mapping.rules[{i}].value"))?
                    .unwrap_or_default();
                if value.is_empty() || value.chars().count() > 512 {
                    return Err(ApiError::invalid(format!(
                        "team_mapping.rules[{i}].value: 1 to 512 characters"
                    )));
                }
                let team_name = text(
                    r,
                    "team_name",
                    &format!("team_mapping.rules[{i}].team_name"),
                )?
                .unwrap_or_default();
                if team_name.is_empty() || team_name.chars().count() > 255 {
                    return Err(ApiError::invalid(format!(
                        "team_mapping.rules[{i}].team_name: 1 to 255 characters"
                    )));
                }
                rules.push(TeamRule { value, team_name });
            }
        }
        Some(_) => {
            return Err(ApiError::invalid("team_mapping.rules: must be a list"));
        }
    }
    if attribute.is_empty() && !rules.is_empty() {
        return Err(ApiError::invalid(
            "team_mapping.attribute: required when rules are given",
        ));
    }
    Ok(TeamMapping { attribute, rules })
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

/// §1.24: the CAS server URL is an http(s) URL with a host and no query or fragment (the
/// login path and the validation paths are appended to it).
pub fn check_cas_server_url(url: &str) -> Result<(), ApiError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| ApiError::invalid("cas.server_url: must be an http:// or https:// URL"))?;
    if url.len() > 1024 {
        return Err(ApiError::invalid("cas.server_url: at most 1024 characters"));
    }
    if rest.contains('?') || rest.contains('#') {
        return Err(ApiError::invalid(
            "cas.server_url: must not contain a query or a fragment",
        ));
    }
    if rest.chars().any(char::is_whitespace) {
        return Err(ApiError::invalid("cas.server_url: must not contain spaces"));
    }
    if rest.split('/').next().unwrap_or("").is_empty() {
        return Err(ApiError::invalid("cas.server_url: has no host"));
    }
    Ok(())
}

/// §1.24: the login path is a path (`/login`), without a query: the `service` parameter is
/// the only one Klaxon adds.
pub fn check_cas_login_path(path: &str) -> Result<(), ApiError> {
    if !path.starts_with('/') {
        return Err(ApiError::invalid("cas.login_path: must start with \"/\""));
    }
    if path.len() > 255 {
        return Err(ApiError::invalid("cas.login_path: at most 255 characters"));
    }
    if path
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '?' | '#'))
    {
        return Err(ApiError::invalid(
            "cas.login_path: a path without spaces, query or fragment",
        ));
    }
    Ok(())
}

/// RSP-576: where the browser is sent to sign in at the CAS server:
/// `{server_url}{login_path}?service=<the service URL, percent-encoded>`.
pub fn cas_login_url(cas: &CasSettings, service: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut encoded = String::with_capacity(service.len() * 3);
    for b in service.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(b));
        } else {
            encoded.push('%');
            encoded.push(char::from(HEX[usize::from(b >> 4)]));
            encoded.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    format!(
        "{}{}?service={encoded}",
        cas.server_url.trim_end_matches('/'),
        cas.login_path
    )
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
        ldap: LdapSettings::default(),
        cas: CasSettings::default(),
        saml: crate::saml::SamlSettings::default(),
        team_mapping: TeamMapping::default(),
        has_secret: false,
    });
    let mut secret = None;
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
                "protocol: {p} is not available in this version; use oidc, cas or ldap"
            )));
        }
        if p != config.protocol {
            // The stored secret belongs to the old protocol: it is dropped, and the new
            // protocol's secret must be given again.
            if config.has_secret {
                secret = Some(String::new());
            }
            config.has_secret = false;
            // The SAML encryption key was that secret: its certificate goes with it.
            config.saml.sp_encryption_certificate.clear();
            if p == "ldap" && config.field_mapping == FieldMapping::default() {
                config.field_mapping = FieldMapping::ldap_default();
            } else if p != "ldap" && config.field_mapping == FieldMapping::ldap_default() {
                config.field_mapping = FieldMapping::default();
            }
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
    match args.get("team_mapping") {
        None | Some(Value::Null) => {}
        Some(v) => config.team_mapping = parse_team_mapping(v)?,
    }
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
                if !s.is_empty() && config.protocol != "oidc" {
                    return Err(ApiError::invalid(
                        "oidc.client_secret: only for protocol oidc",
                    ));
                }
                if !s.is_empty() {
                    config.has_secret = true;
                    secret = Some(s);
                }
            }
        }
        Some(_) => return Err(ApiError::invalid("oidc: must be an object")),
    }
    match args.get("ldap") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            if config.protocol != "ldap" {
                return Err(ApiError::invalid(
                    "ldap: only for protocol ldap (set \"protocol\": \"ldap\")",
                ));
            }
            if let Some(u) = text(m, "url", "ldap.url")? {
                check_ldap_url(&u)?;
                config.ldap.url = u;
            }
            if let Some(d) = text(m, "bind_dn", "ldap.bind_dn")? {
                if d.chars().count() > 1024 {
                    return Err(ApiError::invalid("ldap.bind_dn: at most 1024 characters"));
                }
                config.ldap.bind_dn = d;
            }
            if let Some(b) = flag(m, "tls_skip_verify")? {
                config.ldap.tls_skip_verify = b;
            }
            if let Some(b) = flag(m, "start_tls")? {
                config.ldap.start_tls = b;
            }
            if let Some(d) = text(m, "user_dn", "ldap.user_dn")? {
                if d.chars().count() > 1024 {
                    return Err(ApiError::invalid("ldap.user_dn: at most 1024 characters"));
                }
                config.ldap.user_dn = d;
            }
            if let Some(f) = text(m, "auth_filter", "ldap.auth_filter")? {
                check_auth_filter(&f)?;
                config.ldap.auth_filter = f;
            }
            match m.get("bind_password") {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => {
                    if s.len() > 1024 {
                        return Err(ApiError::invalid("ldap.bind_password: at most 1024 bytes"));
                    }
                    // Empty keeps the stored password, as for the OIDC client secret.
                    if !s.is_empty() {
                        config.has_secret = true;
                        secret = Some(s.clone());
                    }
                }
                Some(_) => {
                    return Err(ApiError::invalid("ldap.bind_password: must be a string"));
                }
            }
        }
        Some(_) => return Err(ApiError::invalid("ldap: must be an object")),
    }
    match args.get("cas") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            if config.protocol != "cas" {
                return Err(ApiError::invalid(
                    "cas: only for protocol cas (set \"protocol\": \"cas\")",
                ));
            }
            if let Some(u) = text(m, "server_url", "cas.server_url")? {
                check_cas_server_url(&u)?;
                config.cas.server_url = u.trim_end_matches('/').to_string();
            }
            if let Some(l) = text(m, "login_path", "cas.login_path")? {
                config.cas.login_path = if l.is_empty() {
                    CAS_DEFAULT_LOGIN_PATH.to_string()
                } else {
                    check_cas_login_path(&l)?;
                    l
                };
            }
        }
        Some(_) => return Err(ApiError::invalid("cas: must be an object")),
    }
    match args.get("saml") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) if config.protocol == "saml2" => {
            // The SP's encryption key is the SAML configuration's secret.
            if let Some(key) = crate::saml::apply_update(&mut config.saml, m)? {
                config.has_secret = !key.is_empty();
                secret = Some(key);
            }
        }
        Some(Value::Object(_)) => {
            return Err(ApiError::invalid(
                "saml: only for protocol saml2 (set \"protocol\": \"saml2\")",
            ));
        }
        Some(_) => return Err(ApiError::invalid("saml: must be an object")),
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
    if config.enabled && config.protocol == "cas" && config.cas.server_url.is_empty() {
        return Err(ApiError::invalid(
            "cas.server_url: required to enable CAS sign-in",
        ));
    }
    if config.enabled && config.protocol == "ldap" {
        let l = &config.ldap;
        if l.url.is_empty() {
            return Err(ApiError::invalid(
                "ldap.url: required to enable LDAP sign-in",
            ));
        }
        if l.user_dn.is_empty() {
            return Err(ApiError::invalid(
                "ldap.user_dn: required to enable LDAP sign-in",
            ));
        }
        if l.auth_filter.is_empty() {
            return Err(ApiError::invalid(
                "ldap.auth_filter: required to enable LDAP sign-in",
            ));
        }
        if l.start_tls && l.url.starts_with("ldaps://") {
            return Err(ApiError::invalid(
                "ldap.start_tls: not with an ldaps:// URL (the connection is already TLS)",
            ));
        }
        if !l.bind_dn.is_empty() && !config.has_secret {
            return Err(ApiError::invalid(
                "ldap.bind_password: required to enable LDAP sign-in with a bind_dn",
            ));
        }
    }
    if config.enabled && config.protocol == "saml2" {
        crate::saml::check_complete(&config.saml)?;
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
        // A multi-valued LDAP attribute: its first value.
        Some(Value::Array(list)) => list
            .iter()
            .find_map(Value::as_str)
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
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
        // Without the `saml` feature SAML is refused as a protocol; with it, turning it on
        // without the IdP's metadata is.
        #[cfg(not(feature = "saml"))]
        {
            let e = apply_update(None, &json!({"protocol": "saml2", "login_domain": "acme"}))
                .unwrap_err();
            assert!(e.message.contains("protocol"));
        }
        #[cfg(feature = "saml")]
        {
            let e = apply_update(
                None,
                &json!({"protocol": "saml2", "login_domain": "acme", "enabled": true}),
            )
            .unwrap_err();
            assert!(e.message.contains("saml"), "{}", e.message);
        }
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

    #[test]
    fn ldap_login_names_are_escaped_in_the_filter() {
        // spec: RSP-577
        assert_eq!(ldap_escape("ann"), "ann");
        assert_eq!(ldap_escape("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
        assert_eq!(ldap_escape("a\\b\0"), "a\\5cb\\00");
        assert_eq!(
            ldap_filter("(&(objectClass=person)(uid=%s))", "*)(uid=*"),
            "(&(objectClass=person)(uid=\\2a\\29\\28uid=\\2a))"
        );
    }

    #[test]
    fn ldap_settings_are_checked() {
        // spec: RSP-577
        assert!(check_ldap_url("ldap://127.0.0.1:389").is_ok());
        assert!(check_ldap_url("ldaps://ldap.example.com").is_ok());
        assert!(check_ldap_url("http://ldap.example.com").is_err());
        assert!(check_ldap_url("ldap://").is_err());
        assert!(check_ldap_url("ldap://host:0").is_err());
        assert!(check_ldap_url("ldap://host/dc=x?cn").is_err());
        assert!(check_auth_filter("(uid=%s)").is_ok());
        assert!(check_auth_filter("(&(objectClass=person)(|(uid=%s)(mail=%s)))").is_ok());
        assert!(check_auth_filter("uid=%s").is_err());
        assert!(check_auth_filter("(uid=%s))(").is_err());
        assert!(check_auth_filter("((uid=%s)").is_err());
        assert!(check_auth_filter("(uid=ann)").is_err());
        let e = apply_update(
            None,
            &json!({"login_domain": "acme", "protocol": "ldap", "ldap": {"url": "https://x"}}),
        )
        .unwrap_err();
        assert!(e.message.starts_with("ldap.url"), "{}", e.message);
        let e = apply_update(
            None,
            &json!({"login_domain": "acme", "ldap": {"url": "ldap://x"}}),
        )
        .unwrap_err();
        assert!(e.message.starts_with("ldap:"), "{}", e.message);
    }

    #[test]
    fn switching_protocol_drops_the_old_secret() {
        // spec: RSP-570
        let oidc = apply_update(
            None,
            &json!({"login_domain": "acme",
                    "oidc": {"issuer": "https://id.example.com", "client_id": "k", "client_secret": "s"}}),
        )
        .unwrap();
        let ldap = apply_update(
            Some(&oidc.config),
            &json!({"protocol": "ldap", "ldap": {"url": "ldap://h", "user_dn": "dc=x",
                    "auth_filter": "(uid=%s)", "bind_dn": "cn=admin,dc=x"}}),
        )
        .unwrap();
        assert_eq!(ldap.secret.as_deref(), Some(""));
        assert!(!ldap.config.has_secret);
        assert_eq!(ldap.config.field_mapping, FieldMapping::ldap_default());
        // Enabling with a bind DN needs the bind password.
        let e = apply_update(Some(&ldap.config), &json!({"enabled": true})).unwrap_err();
        assert!(e.message.starts_with("ldap.bind_password"), "{}", e.message);
        let on = apply_update(
            Some(&ldap.config),
            &json!({"enabled": true, "ldap": {"bind_password": "pw"}}),
        )
        .unwrap();
        assert_eq!(on.secret.as_deref(), Some("pw"));
    }

    #[test]
    fn cas_settings_are_checked() {
        // spec: RSP-576
        let e = apply_update(
            None,
            &json!({"login_domain": "acme", "protocol": "cas", "enabled": true}),
        )
        .unwrap_err();
        assert!(e.message.starts_with("cas.server_url"), "{}", e.message);
        let e = apply_update(
            None,
            &json!({"login_domain": "acme", "cas": {"server_url": "https://cas.example.com"}}),
        )
        .unwrap_err();
        assert!(e.message.starts_with("cas:"), "{}", e.message);
        for (cas, field) in [
            (json!({"server_url": "cas.example.com"}), "cas.server_url"),
            (json!({"server_url": "https://x/cas?a=1"}), "cas.server_url"),
            (json!({"server_url": "https:///cas"}), "cas.server_url"),
            (json!({"login_path": "login"}), "cas.login_path"),
            (json!({"login_path": "/login?x=1"}), "cas.login_path"),
        ] {
            let e = apply_update(
                None,
                &json!({"login_domain": "acme", "protocol": "cas", "cas": cas}),
            )
            .unwrap_err();
            assert!(e.message.starts_with(field), "{}", e.message);
        }
        let on = apply_update(
            None,
            &json!({"login_domain": "acme", "protocol": "cas", "enabled": true,
                    "cas": {"server_url": "https://cas.example.com/cas/"}}),
        )
        .unwrap();
        assert_eq!(on.config.cas.server_url, "https://cas.example.com/cas");
        assert_eq!(on.config.cas.login_path, "/login");
        assert_eq!(on.secret, None);
        assert_eq!(
            cas_login_url(
                &on.config.cas,
                "https://k.example.com/sso/cas/callback/acme"
            ),
            "https://cas.example.com/cas/login?service=https%3A%2F%2Fk.example.com%2Fsso%2Fcas%2Fcallback%2Facme"
        );
    }

    #[test]
    fn team_mapping_matches_claim_values() {
        let mapping = TeamMapping {
            attribute: "memberof".into(),
            rules: vec![
                TeamRule {
                    value: "cn=sre,ou=groups,dc=example,dc=org".into(),
                    team_name: "SRE".into(),
                },
                TeamRule {
                    value: "cn=dba,ou=groups,dc=example,dc=org".into(),
                    team_name: "DBA".into(),
                },
            ],
        };
        let claims = json!({"memberof": ["CN=SRE,ou=groups,dc=example,dc=org", "cn=other"]});
        assert_eq!(
            mapped_teams(&mapping, claims.as_object().unwrap()),
            vec!["SRE".to_string()]
        );
        let e = apply_update(
            None,
            &json!({"login_domain": "acme", "team_mapping": {"rules": [{"value": "a", "team_name": "b"}]}}),
        )
        .unwrap_err();
        assert!(
            e.message.starts_with("team_mapping.attribute"),
            "{}",
            e.message
        );
    }
}
