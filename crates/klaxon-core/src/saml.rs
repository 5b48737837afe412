//! SAML 2.0 sign-in (response.md RSP-574, docs/sign-in.md): Klaxon is the service provider.
//!
//! The settings below are always compiled, so a stored configuration reads back the same in
//! every build. Everything that parses XML or checks signatures is behind the `saml` cargo
//! feature (on by default in the `klaxon` binary): [`metadata`] reads the IdP metadata and
//! writes the SP metadata, [`request`] builds the AuthnRequest, [`response`] verifies the
//! IdP's answer, with [`c14n`] and [`dsig`] doing exclusive canonicalization and XML-DSig.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

#[cfg(feature = "saml")]
pub mod c14n;
#[cfg(feature = "saml")]
pub mod der;
#[cfg(feature = "saml")]
pub mod dsig;
#[cfg(feature = "saml")]
pub mod metadata;
#[cfg(feature = "saml")]
pub mod request;
#[cfg(feature = "saml")]
pub mod response;

/// Whether this build signs in with SAML.
pub const AVAILABLE: bool = cfg!(feature = "saml");

/// The SAML settings of an account (RSP-574), taken from the uploaded IdP metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamlSettings {
    /// The IdP's `entityID`: the `Issuer` its responses must carry.
    pub idp_entity_id: String,
    /// Where the AuthnRequest goes (the IdP's HTTP-Redirect SingleSignOnService).
    pub idp_sso_url: String,
    /// The IdP's signing certificates (base64 DER): a response or assertion must be signed
    /// by one of them.
    pub idp_certificates: Vec<String>,
    /// The SP entity ID; empty means the default, Klaxon's `base_url`.
    pub sp_entity_id: String,
}

/// RSP-574: the SP entity ID, by default the `base_url`.
pub fn sp_entity_id(settings: &SamlSettings, base_url: &str) -> String {
    if settings.sp_entity_id.is_empty() {
        base_url.trim_end_matches('/').to_string()
    } else {
        settings.sp_entity_id.clone()
    }
}

/// RSP-574: the assertion consumer service URL, `{base_url}/sso/saml/acs/{login_domain}`.
pub fn acs_url(base_url: &str, login_domain: &str) -> String {
    format!(
        "{}/sso/saml/acs/{login_domain}",
        base_url.trim_end_matches('/')
    )
}

/// RSP-574: where the SP metadata is published.
pub fn metadata_url(base_url: &str, login_domain: &str) -> String {
    format!(
        "{}/sso/saml/metadata/{login_domain}",
        base_url.trim_end_matches('/')
    )
}

/// The SHA-256 fingerprint of a base64 DER certificate, as IdP consoles show it
/// (`AB:CD:…`), so an administrator can check which certificates were taken.
pub fn certificate_fingerprint(base64_der: &str) -> String {
    let der = base64_decode(base64_der);
    Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A small standard base64 decoder (whitespace ignored, invalid input gives what decoded so
/// far): the fingerprint is informative and must not need the `saml` feature.
fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ if c.is_ascii_whitespace() => continue,
            _ => break,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    out
}

/// The `saml` object of `/account/sso/update`: `idp_metadata` (the IdP metadata XML, which
/// replaces the IdP settings) and `sp_entity_id` (empty = `base_url`).
#[cfg(feature = "saml")]
pub fn apply_update(settings: &mut SamlSettings, m: &Map<String, Value>) -> Result<(), ApiError> {
    match m.get("idp_metadata") {
        None | Some(Value::Null) => {}
        Some(Value::String(xml)) if xml.trim().is_empty() => {}
        Some(Value::String(xml)) => {
            let idp = metadata::parse_idp_metadata(xml)
                .map_err(|e| ApiError::invalid(format!("saml.idp_metadata: {e}")))?;
            settings.idp_entity_id = idp.entity_id;
            settings.idp_sso_url = idp.sso_url;
            settings.idp_certificates = idp.certificates;
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "saml.idp_metadata: must be the metadata XML as a string",
            ));
        }
    }
    match m.get("sp_entity_id") {
        None | Some(Value::Null) => {}
        Some(Value::String(id)) => {
            let id = id.trim();
            if id.chars().count() > 1024 || id.chars().any(char::is_whitespace) {
                return Err(ApiError::invalid(
                    "saml.sp_entity_id: at most 1024 characters, without spaces",
                ));
            }
            settings.sp_entity_id = id.to_string();
        }
        Some(_) => return Err(ApiError::invalid("saml.sp_entity_id: must be a string")),
    }
    Ok(())
}

/// Without the `saml` feature no SAML setting can be changed.
#[cfg(not(feature = "saml"))]
pub fn apply_update(_settings: &mut SamlSettings, _m: &Map<String, Value>) -> Result<(), ApiError> {
    Err(ApiError::invalid(
        "saml: this build of Klaxon has no SAML support (built without the `saml` feature)",
    ))
}

/// An enabled SAML configuration has what a sign-in needs: the IdP metadata.
pub fn check_complete(settings: &SamlSettings) -> Result<(), ApiError> {
    if settings.idp_sso_url.is_empty() || settings.idp_certificates.is_empty() {
        return Err(ApiError::invalid(
            "saml.idp_metadata: required to enable SAML sign-in (upload the IdP metadata XML)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_base_url() {
        // spec: RSP-574
        let s = SamlSettings::default();
        assert_eq!(
            sp_entity_id(&s, "https://klaxon.example.com/"),
            "https://klaxon.example.com"
        );
        assert_eq!(
            acs_url("https://klaxon.example.com/", "acme"),
            "https://klaxon.example.com/sso/saml/acs/acme"
        );
        let s = SamlSettings {
            sp_entity_id: "urn:klaxon".into(),
            ..SamlSettings::default()
        };
        assert_eq!(sp_entity_id(&s, "https://x"), "urn:klaxon");
    }

    #[cfg(feature = "saml")]
    #[test]
    fn the_update_takes_the_idp_metadata() {
        // spec: RSP-570, RSP-574
        use crate::sso::apply_update as update;
        use serde_json::json;
        let xml = include_str!("saml/testdata/idp-metadata.xml");
        let e = update(
            None,
            &json!({"login_domain": "acme", "protocol": "saml2", "enabled": true}),
        )
        .unwrap_err();
        assert!(
            e.message.starts_with("saml.idp_metadata: required"),
            "{}",
            e.message
        );
        let on = update(
            None,
            &json!({"login_domain": "acme", "protocol": "saml2", "enabled": true,
                    "saml": {"idp_metadata": xml}}),
        )
        .unwrap();
        assert_eq!(on.config.saml.idp_sso_url, "http://127.0.0.1:18082/sso");
        assert_eq!(on.config.saml.idp_certificates.len(), 1);
        assert_eq!(on.secret, None);
        // Other fields keep the uploaded metadata.
        let again = update(
            Some(&on.config),
            &json!({"saml": {"sp_entity_id": "urn:klaxon"}}),
        )
        .unwrap();
        assert_eq!(
            again.config.saml.idp_entity_id,
            "http://127.0.0.1:18082/metadata"
        );
        assert_eq!(again.config.saml.sp_entity_id, "urn:klaxon");
        let e = update(Some(&on.config), &json!({"saml": {"idp_metadata": "<x"}})).unwrap_err();
        assert!(
            e.message.starts_with("saml.idp_metadata: not well-formed"),
            "{}",
            e.message
        );
        let e = update(None, &json!({"login_domain": "acme", "saml": {}})).unwrap_err();
        assert!(
            e.message.starts_with("saml: only for protocol saml2"),
            "{}",
            e.message
        );
    }

    #[test]
    fn fingerprints_are_sha256_of_the_der() {
        // "hello" in base64; its SHA-256 starts 2C:F2:4D:BA.
        assert!(certificate_fingerprint("aGVs\nbG8=").starts_with("2C:F2:4D:BA:"));
    }
}
