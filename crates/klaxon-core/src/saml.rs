//! SAML 2.0 sign-in (response.md RSP-574, docs/sign-in.md): Klaxon is the service provider.
//!
//! The settings below are always compiled, so a stored configuration reads back the same in
//! every build. Everything that parses XML or checks signatures is behind the `saml` cargo
//! feature (on by default in the `klaxon` binary): [`metadata`] reads the IdP metadata and
//! writes the SP metadata, [`request`] builds the AuthnRequest, [`response`] verifies the
//! IdP's answer, with [`c14n`] and [`dsig`] doing exclusive canonicalization and XML-DSig and
//! [`xmlenc`] decrypting an encrypted assertion.

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
pub mod logout;
#[cfg(feature = "saml")]
pub mod metadata;
#[cfg(feature = "saml")]
pub mod request;
#[cfg(feature = "saml")]
pub mod response;
#[cfg(feature = "saml")]
pub mod xmlenc;

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
    /// The SP's encryption certificate (base64 DER), published in the SP metadata; its
    /// private key is the configuration's sealed secret. Empty: assertions are not encrypted.
    pub sp_encryption_certificate: String,
    /// Whether an IdP-initiated (unsolicited) response signs in (off by default).
    pub allow_idp_initiated: bool,
    /// The IdP's HTTP-Redirect SingleLogoutService ('' when its metadata has none: signing
    /// out of Klaxon then stays local).
    pub idp_slo_url: String,
    /// The IdP metadata says `WantAuthnRequestsSigned="true"`.
    pub idp_wants_signed_requests: bool,
    /// The administrator asks for signed AuthnRequests (`saml.sign_requests`, off by
    /// default).
    pub sign_requests: bool,
}

/// Whether the AuthnRequest is signed: the configuration or the IdP metadata asks for it.
pub fn signs_requests(settings: &SamlSettings) -> bool {
    settings.sign_requests || settings.idp_wants_signed_requests
}

/// RSP-574: the single logout service, `{base_url}/sso/saml/slo/{login_domain}`.
pub fn slo_url(base_url: &str, login_domain: &str) -> String {
    format!(
        "{}/sso/saml/slo/{login_domain}",
        base_url.trim_end_matches('/')
    )
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
/// replaces the IdP settings), `sp_entity_id` (empty = `base_url`), the encryption key pair
/// `sp_private_key` + `sp_certificate` (PEM; an empty `sp_private_key` removes it) and
/// `allow_idp_initiated`, `sign_requests`. Returns the new secret (the private key PEM; `Some("")` removes
/// it) when the update sets one.
#[cfg(feature = "saml")]
pub fn apply_update(
    settings: &mut SamlSettings,
    m: &Map<String, Value>,
) -> Result<Option<String>, ApiError> {
    match m.get("idp_metadata") {
        None | Some(Value::Null) => {}
        Some(Value::String(xml)) if xml.trim().is_empty() => {}
        Some(Value::String(xml)) => {
            let idp = metadata::parse_idp_metadata(xml)
                .map_err(|e| ApiError::invalid(format!("saml.idp_metadata: {e}")))?;
            settings.idp_entity_id = idp.entity_id;
            settings.idp_sso_url = idp.sso_url;
            settings.idp_certificates = idp.certificates;
            settings.idp_slo_url = idp.slo_url;
            settings.idp_wants_signed_requests = idp.want_authn_requests_signed;
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
    match m.get("allow_idp_initiated") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => settings.allow_idp_initiated = *b,
        Some(_) => {
            return Err(ApiError::invalid(
                "saml.allow_idp_initiated: must be true or false",
            ));
        }
    }
    match m.get("sign_requests") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => settings.sign_requests = *b,
        Some(_) => {
            return Err(ApiError::invalid(
                "saml.sign_requests: must be true or false",
            ));
        }
    }
    let string = |name: &str| -> Result<Option<String>, ApiError> {
        match m.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(_) => Err(ApiError::invalid(format!(
                "saml.{name}: must be a PEM string"
            ))),
        }
    };
    match (string("sp_private_key")?, string("sp_certificate")?) {
        (None, None) => Ok(None),
        (Some(key), cert) if key.is_empty() && cert.as_deref().is_none_or(str::is_empty) => {
            settings.sp_encryption_certificate.clear();
            Ok(Some(String::new()))
        }
        (Some(key), Some(cert)) if !key.is_empty() && !cert.is_empty() => {
            if key.len() > 16 * 1024 || cert.len() > 16 * 1024 {
                return Err(ApiError::invalid(
                    "saml.sp_private_key: at most 16 KiB each for the key and the certificate",
                ));
            }
            let sp_key = xmlenc::SpKey::from_pem(&key)
                .map_err(|e| ApiError::invalid(format!("saml.sp_private_key: {e}")))?;
            let der = xmlenc::certificate_der(&cert)
                .map_err(|e| ApiError::invalid(format!("saml.sp_certificate: {e}")))?;
            if !sp_key.matches_certificate(&der) {
                return Err(ApiError::invalid(
                    "saml.sp_certificate: does not carry the public key of saml.sp_private_key",
                ));
            }
            use base64::Engine;
            settings.sp_encryption_certificate =
                base64::engine::general_purpose::STANDARD.encode(der);
            Ok(Some(key))
        }
        _ => Err(ApiError::invalid(
            "saml.sp_private_key: give it together with saml.sp_certificate (an empty sp_private_key alone removes the pair)",
        )),
    }
}

/// Without the `saml` feature no SAML setting can be changed.
#[cfg(not(feature = "saml"))]
pub fn apply_update(
    _settings: &mut SamlSettings,
    _m: &Map<String, Value>,
) -> Result<Option<String>, ApiError> {
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

    #[cfg(feature = "saml")]
    #[test]
    fn the_encryption_key_pair_is_the_secret_and_must_match() {
        // spec: RSP-570, RSP-574 — the SP's private key is kept as the sealed secret, its
        // certificate in the settings; a key that does not fit the certificate is refused.
        use crate::sso::apply_update as update;
        use serde_json::json;
        let xml = include_str!("saml/testdata/idp-metadata.xml");
        let key = include_str!("saml/testdata/sp-enc-key.pem");
        let cert = include_str!("saml/testdata/sp-enc-cert.pem");
        let on = update(
            None,
            &json!({"login_domain": "acme", "protocol": "saml2", "enabled": true,
                    "saml": {"idp_metadata": xml, "sp_private_key": key, "sp_certificate": cert,
                             "allow_idp_initiated": true}}),
        )
        .unwrap();
        assert_eq!(on.secret.as_deref(), Some(key.trim()));
        assert!(on.config.has_secret);
        assert!(on.config.saml.allow_idp_initiated);
        assert!(on.config.saml.sp_encryption_certificate.starts_with("MII"));
        let other = include_str!("saml/testdata/other-key.pem");
        for (body, message) in [
            (
                json!({"saml": {"sp_private_key": other, "sp_certificate": cert}}),
                "saml.sp_certificate: does not carry the public key",
            ),
            (
                json!({"saml": {"sp_private_key": key}}),
                "saml.sp_private_key: give it together",
            ),
            (
                json!({"saml": {"sp_private_key": "x", "sp_certificate": cert}}),
                "saml.sp_private_key: must be an RSA private key",
            ),
            (
                json!({"saml": {"sp_private_key": key, "sp_certificate": "x"}}),
                "saml.sp_certificate: must be an X.509 certificate",
            ),
            (
                json!({"saml": {"allow_idp_initiated": "yes"}}),
                "saml.allow_idp_initiated: must be true or false",
            ),
            (
                json!({"saml": {"sign_requests": 1}}),
                "saml.sign_requests: must be true or false",
            ),
        ] {
            let e = update(Some(&on.config), &body).unwrap_err();
            assert!(e.message.starts_with(message), "{body}: {}", e.message);
        }
        // Other updates keep the key; an empty key removes the pair.
        let kept = update(
            Some(&on.config),
            &json!({"saml": {"sp_entity_id": "urn:k"}}),
        )
        .unwrap();
        assert_eq!(kept.secret, None);
        assert_eq!(
            kept.config.saml.sp_encryption_certificate,
            on.config.saml.sp_encryption_certificate
        );
        let off = update(Some(&on.config), &json!({"saml": {"sp_private_key": ""}})).unwrap();
        assert_eq!(off.secret.as_deref(), Some(""));
        assert!(!off.config.has_secret);
        assert!(off.config.saml.sp_encryption_certificate.is_empty());
        // Another protocol drops the key with the certificate.
        let oidc = update(
            Some(&on.config),
            &json!({"protocol": "oidc", "enabled": false}),
        )
        .unwrap();
        assert_eq!(oidc.secret.as_deref(), Some(""));
        assert!(oidc.config.saml.sp_encryption_certificate.is_empty());
    }

    #[test]
    fn fingerprints_are_sha256_of_the_der() {
        // "hello" in base64; its SHA-256 starts 2C:F2:4D:BA.
        assert!(certificate_fingerprint("aGVs\nbG8=").starts_with("2C:F2:4D:BA:"));
    }
}
