//! The IdP's `Response` at the assertion consumer service (RSP-574): verified whole before
//! anything in it is believed. The checks, in order:
//! 1. exactly one `Assertion` (or one `EncryptedAssertion`, decrypted with the SP's key, see
//!    [`super::xmlenc`] and put back in its place), a direct child of the `Response`: a second
//!    (forged) assertion beside or inside a signed one is how signature-wrapping attacks
//!    work, so a document with two is refused outright;
//! 2. the Response or the Assertion (or both) signed by a certificate of the IdP metadata
//!    (see [`super::dsig`]); a signature that is present must verify;
//! 3. `Status` success, `Destination` the ACS URL, `Issuer` the IdP's entity ID;
//! 4. `InResponseTo` the ID of the request this sign-in sent, read from a signed element; an
//!    IdP-initiated (unsolicited) response, when accepted, names no request at all;
//! 5. a bearer `SubjectConfirmation` for the ACS URL, not expired, and `Conditions` whose
//!    `NotBefore`/`NotOnOrAfter` hold at `now` and whose audience is the SP entity ID.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use roxmltree::Node;
use serde_json::{Map, Value};

use super::der::{PublicKey, certificate_key};
use super::dsig::{signature_of, verify_enveloped};
use super::metadata::{EMAIL_FORMAT, parse_options};
use super::xmlenc::{SpKey, decrypt_assertion};
use crate::sso::FieldMapping;

pub const PROTOCOL_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const ASSERTION_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
/// Clock skew allowed between the IdP and Klaxon on every time condition.
pub const CLOCK_SKEW_MS: i64 = 60_000;
/// A response is a few kilobytes; this is far beyond any real one.
pub const MAX_RESPONSE_BYTES: usize = 512 * 1024;

/// What the response must match.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    pub idp_entity_id: &'a str,
    /// The IdP's signing certificates, base64 DER.
    pub certificates: &'a [String],
    pub sp_entity_id: &'a str,
    pub acs_url: &'a str,
    /// The ID of the AuthnRequest this sign-in sent; `None` for an IdP-initiated sign-in,
    /// whose response must then name no request.
    pub request_id: Option<&'a str>,
    /// The SP's decryption keys (none: an encrypted assertion is refused).
    pub decryption_keys: &'a [SpKey],
    pub now_ms: i64,
}

/// The authenticated user, as the verified assertion states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name_id: String,
    pub name_id_format: String,
    /// The NameID's `NameQualifier` and `SPNameQualifier` ('' when absent): a LogoutRequest
    /// names the subject exactly as the assertion did.
    pub name_qualifier: String,
    pub sp_name_qualifier: String,
    /// Attribute name (and friendly name) → list of values.
    pub attributes: Map<String, Value>,
    /// The assertion's `ID`.
    pub assertion_id: String,
    /// Until when (skew included) the assertion could be presented: how long its ID must be
    /// remembered to refuse a replay.
    pub valid_until_ms: i64,
    /// The `SessionIndex` of its `AuthnStatement` ('' when none).
    pub session_index: String,
    /// Whether the assertion came encrypted.
    pub encrypted: bool,
}

/// The `SAMLResponse` form field: base64 of the XML (line breaks allowed).
pub fn decode_post(field: &str) -> Result<String, String> {
    let text: String = field.chars().filter(|c| !c.is_whitespace()).collect();
    if text.is_empty() {
        return Err("the identity provider sent no SAMLResponse".to_string());
    }
    if text.len() > MAX_RESPONSE_BYTES * 4 / 3 + 4 {
        return Err("the SAMLResponse is too large".to_string());
    }
    let raw = STANDARD
        .decode(text.as_bytes())
        .map_err(|_| "the SAMLResponse is not base64".to_string())?;
    String::from_utf8(raw).map_err(|_| "the SAMLResponse is not UTF-8 XML".to_string())
}

fn saml_children<'a, 'i>(node: Node<'a, 'i>, ns: &str, name: &str) -> Vec<Node<'a, 'i>> {
    node.children()
        .filter(|c| c.is_element() && c.has_tag_name((ns, name)))
        .collect()
}

fn one_child<'a, 'i>(
    node: Node<'a, 'i>,
    ns: &str,
    name: &str,
) -> Result<Option<Node<'a, 'i>>, String> {
    let found = saml_children(node, ns, name);
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(format!("more than one {name}")),
    }
}

pub(crate) fn text_of(node: Node<'_, '_>) -> String {
    node.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect::<String>()
        .trim()
        .to_string()
}

pub(crate) fn time_ms(value: &str, what: &str) -> Result<i64, String> {
    value
        .trim()
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| format!("{what} is not a date and time: {value:?}"))
}

pub(crate) fn keys_of(certificates: &[String]) -> Vec<PublicKey> {
    certificates
        .iter()
        .filter_map(|c| STANDARD.decode(c.as_bytes()).ok())
        .filter_map(|der| certificate_key(&der).ok())
        .collect()
}

fn parse_response(xml: &str) -> Result<roxmltree::Document<'_>, String> {
    let doc = roxmltree::Document::parse_with_options(xml, parse_options())
        .map_err(|e| format!("the SAML response is not well-formed XML: {e}"))?;
    let response = doc.root_element();
    if !response.has_tag_name((PROTOCOL_NS, "Response")) {
        return Err("the message is not a SAML Response".to_string());
    }
    if response.attribute("Version") != Some("2.0") {
        return Err("the SAML response is not version 2.0".to_string());
    }
    Ok(doc)
}

/// Verifies the response and returns who signed in (see the module documentation).
pub fn verify(xml: &str, expected: &Expected<'_>) -> Result<Identity, String> {
    if xml.len() > MAX_RESPONSE_BYTES {
        return Err("the SAML response is too large".to_string());
    }
    let doc = parse_response(xml)?;
    let response = doc.root_element();
    let encrypted: Vec<Node<'_, '_>> = doc
        .descendants()
        .filter(|n| n.has_tag_name((ASSERTION_NS, "EncryptedAssertion")))
        .collect();
    let encrypted = match encrypted.as_slice() {
        [] => return verify_plain(&doc, expected, None),
        [one] if one.parent_element() == Some(response) => *one,
        [_] => {
            return Err(
                "the encrypted assertion is not where a SAML response carries it".to_string(),
            );
        }
        _ => {
            return Err(
                "the SAML response carries more than one assertion; refused (signature wrapping)"
                    .to_string(),
            );
        }
    };
    if doc
        .descendants()
        .any(|n| n.has_tag_name((ASSERTION_NS, "Assertion")))
    {
        return Err(
            "the SAML response carries more than one assertion; refused (signature wrapping)"
                .to_string(),
        );
    }
    // A signature of the Response covers the assertion either in its encrypted form (the
    // IdP encrypted, then signed: checked on the document as sent) or in the clear (signed,
    // then encrypted: checked once the assertion is back in its place, below).
    let keys = keys_of(expected.certificates);
    let response_signed = !signature_of(response).is_empty();
    let as_sent = response_signed.then(|| verify_enveloped(response, &keys));
    let plain = decrypt_assertion(encrypted, expected.decryption_keys)?;
    let plain = plain.trim();
    // The assertion takes the place of its encrypted form, in the namespace context it was
    // signed in; it must be exactly one element there.
    let range = encrypted.range();
    let spliced = format!("{}{plain}{}", &xml[..range.start], &xml[range.end..]);
    if spliced.len() > MAX_RESPONSE_BYTES {
        return Err("the SAML response is too large".to_string());
    }
    let doc = parse_response(&spliced)
        .map_err(|e| format!("the decrypted assertion does not fit its response: {e}"))?;
    let whole = doc
        .root_element()
        .children()
        .find(|c| c.range().start == range.start)
        .is_some_and(|c| {
            c.has_tag_name((ASSERTION_NS, "Assertion"))
                && c.range().end == range.start + plain.len()
        });
    if !whole {
        return Err("the encrypted assertion does not hold exactly one assertion".to_string());
    }
    if let Some(Err(e)) = as_sent {
        verify_enveloped(doc.root_element(), &keys)
            .map_err(|_| format!("the SAML response's signature: {e}"))?;
    }
    let mut identity = verify_plain(&doc, expected, Some(response_signed))?;
    identity.encrypted = true;
    Ok(identity)
}

/// The checks on a response whose assertion is in the clear. `response_verified`: the
/// Response's signature was already checked (`Some(signed)`) on the encrypted form.
fn verify_plain(
    doc: &roxmltree::Document<'_>,
    expected: &Expected<'_>,
    response_verified: Option<bool>,
) -> Result<Identity, String> {
    let response = doc.root_element();
    // 1. Exactly one assertion, where it belongs.
    if doc
        .descendants()
        .any(|n| n.has_tag_name((ASSERTION_NS, "EncryptedAssertion")))
    {
        return Err(
            "the SAML response carries more than one assertion; refused (signature wrapping)"
                .to_string(),
        );
    }
    let assertions: Vec<Node<'_, '_>> = doc
        .descendants()
        .filter(|n| n.has_tag_name((ASSERTION_NS, "Assertion")))
        .collect();
    let assertion = match assertions.as_slice() {
        [one] if one.parent_element() == Some(response) => *one,
        [_] => return Err("the assertion is not where a SAML response carries it".to_string()),
        [] => return Err("the SAML response has no assertion".to_string()),
        _ => {
            return Err(
                "the SAML response carries more than one assertion; refused (signature wrapping)"
                    .to_string(),
            );
        }
    };
    // 2. Signed by the IdP.
    let keys = keys_of(expected.certificates);
    let response_signed = response_verified.unwrap_or_else(|| !signature_of(response).is_empty());
    let assertion_signed = !signature_of(assertion).is_empty();
    if !response_signed && !assertion_signed {
        return Err("neither the SAML response nor its assertion is signed; refused".to_string());
    }
    if response_signed && response_verified.is_none() {
        verify_enveloped(response, &keys)
            .map_err(|e| format!("the SAML response's signature: {e}"))?;
    }
    if assertion_signed {
        verify_enveloped(assertion, &keys)
            .map_err(|e| format!("the assertion's signature: {e}"))?;
    }
    // 3. Status, destination, issuer.
    let status_code = one_child(response, PROTOCOL_NS, "Status")?
        .and_then(|s| one_child(s, PROTOCOL_NS, "StatusCode").ok().flatten());
    let status = status_code.and_then(|c| c.attribute("Value")).unwrap_or("");
    if status != SUCCESS {
        let detail = status_code
            .and_then(|c| one_child(c, PROTOCOL_NS, "StatusCode").ok().flatten())
            .and_then(|c| c.attribute("Value"))
            .unwrap_or("");
        return Err(format!(
            "the identity provider did not sign you in (status {} {})",
            status.rsplit(':').next().unwrap_or(status),
            detail.rsplit(':').next().unwrap_or(detail)
        ));
    }
    if let Some(dest) = response.attribute("Destination")
        && dest != expected.acs_url
    {
        return Err(format!(
            "the SAML response is addressed to {dest:?}, not to this ACS URL"
        ));
    }
    if let Some(issuer) = one_child(response, ASSERTION_NS, "Issuer")?
        && text_of(issuer) != expected.idp_entity_id
    {
        return Err("the SAML response's issuer is not the configured IdP".to_string());
    }
    let issuer = one_child(assertion, ASSERTION_NS, "Issuer")?
        .ok_or_else(|| "the assertion has no issuer".to_string())?;
    if text_of(issuer) != expected.idp_entity_id {
        return Err("the assertion's issuer is not the configured IdP".to_string());
    }
    // 4 and 5. The subject, confirmed for this request and this ACS.
    let response_irt = response.attribute("InResponseTo");
    if let Some(irt) = response_irt
        && Some(irt) != expected.request_id
    {
        return Err(match expected.request_id {
            Some(_) => "the SAML response answers another sign-in request (InResponseTo)",
            None => "the SAML response answers a sign-in request (InResponseTo) this sign-in did not send",
        }
        .to_string());
    }
    let subject = one_child(assertion, ASSERTION_NS, "Subject")?
        .ok_or_else(|| "the assertion has no subject".to_string())?;
    let now = expected.now_ms;
    let mut confirmed = None;
    let mut last = "the assertion has no bearer subject confirmation".to_string();
    for confirmation in saml_children(subject, ASSERTION_NS, "SubjectConfirmation") {
        if confirmation.attribute("Method") != Some(BEARER) {
            continue;
        }
        let Some(data) = one_child(confirmation, ASSERTION_NS, "SubjectConfirmationData")? else {
            last = "the bearer subject confirmation has no data".to_string();
            continue;
        };
        let Some(not_on_or_after) = data.attribute("NotOnOrAfter") else {
            last = "the bearer subject confirmation has no NotOnOrAfter".to_string();
            continue;
        };
        let confirmed_until =
            time_ms(not_on_or_after, "SubjectConfirmationData NotOnOrAfter")? + CLOCK_SKEW_MS;
        if now >= confirmed_until {
            last = "the assertion has expired (SubjectConfirmationData NotOnOrAfter)".to_string();
            continue;
        }
        if data.attribute("NotBefore").is_some() {
            last = "a bearer subject confirmation must not have NotBefore".to_string();
            continue;
        }
        if let Some(recipient) = data.attribute("Recipient")
            && recipient != expected.acs_url
        {
            last = "the assertion is for another recipient than this ACS URL".to_string();
            continue;
        }
        let irt = data.attribute("InResponseTo");
        if irt.is_some() && irt != expected.request_id {
            last = "the assertion answers another sign-in request (InResponseTo)".to_string();
            continue;
        }
        // The request ID must come from a signed element: the assertion's own confirmation,
        // or the Response when the Response is the signed one. An unsolicited response names
        // none (checked above).
        let signed_irt = expected.request_id.is_none()
            || irt == expected.request_id
            || (response_signed && response_irt == expected.request_id);
        if !signed_irt {
            last = "the assertion does not name the sign-in request it answers (InResponseTo)"
                .to_string();
            continue;
        }
        confirmed = Some(confirmed_until);
        break;
    }
    let Some(mut valid_until_ms) = confirmed else {
        return Err(last);
    };
    let conditions = one_child(assertion, ASSERTION_NS, "Conditions")?
        .ok_or_else(|| "the assertion has no conditions (audience)".to_string())?;
    if let Some(nb) = conditions.attribute("NotBefore")
        && now + CLOCK_SKEW_MS < time_ms(nb, "Conditions NotBefore")?
    {
        return Err("the assertion is not valid yet (Conditions NotBefore)".to_string());
    }
    if let Some(na) = conditions.attribute("NotOnOrAfter") {
        let until = time_ms(na, "Conditions NotOnOrAfter")? + CLOCK_SKEW_MS;
        if now >= until {
            return Err("the assertion has expired (Conditions NotOnOrAfter)".to_string());
        }
        valid_until_ms = valid_until_ms.min(until);
    }
    let restrictions = saml_children(conditions, ASSERTION_NS, "AudienceRestriction");
    if restrictions.is_empty() {
        return Err("the assertion has no audience restriction".to_string());
    }
    for r in restrictions {
        let ours = saml_children(r, ASSERTION_NS, "Audience")
            .into_iter()
            .any(|a| text_of(a) == expected.sp_entity_id);
        if !ours {
            return Err(format!(
                "the assertion is for another audience, not this SP entity ID {:?}",
                expected.sp_entity_id
            ));
        }
    }
    let name_id = one_child(subject, ASSERTION_NS, "NameID")?;
    let mut attributes = Map::new();
    for statement in saml_children(assertion, ASSERTION_NS, "AttributeStatement") {
        for attr in saml_children(statement, ASSERTION_NS, "Attribute") {
            let values: Vec<Value> = saml_children(attr, ASSERTION_NS, "AttributeValue")
                .into_iter()
                .map(|v| Value::String(text_of(v)))
                .collect();
            for key in [attr.attribute("Name"), attr.attribute("FriendlyName")]
                .into_iter()
                .flatten()
            {
                attributes
                    .entry(key.to_string())
                    .or_insert_with(|| Value::Array(values.clone()));
            }
        }
    }
    let session_index = saml_children(assertion, ASSERTION_NS, "AuthnStatement")
        .into_iter()
        .find_map(|s| s.attribute("SessionIndex"))
        .unwrap_or("")
        .to_string();
    Ok(Identity {
        name_id: name_id.map(text_of).unwrap_or_default(),
        name_id_format: name_id
            .and_then(|n| n.attribute("Format"))
            .unwrap_or("")
            .to_string(),
        name_qualifier: name_id
            .and_then(|n| n.attribute("NameQualifier"))
            .unwrap_or("")
            .to_string(),
        sp_name_qualifier: name_id
            .and_then(|n| n.attribute("SPNameQualifier"))
            .unwrap_or("")
            .to_string(),
        attributes,
        assertion_id: assertion.attribute("ID").unwrap_or("").to_string(),
        valid_until_ms,
        session_index,
        encrypted: false,
    })
}

/// The claims a SAML sign-in maps (RSP-572, RSP-574): the attributes, and the NameID as the
/// email when it is in email format and no attribute named by `field_mapping.email` came.
pub fn claims(identity: &Identity, mapping: &FieldMapping) -> Map<String, Value> {
    let mut claims = identity.attributes.clone();
    let email_format = identity.name_id_format == EMAIL_FORMAT
        || identity.name_id_format == "urn:oasis:names:tc:SAML:2.0:nameid-format:emailAddress";
    let has_email = claims
        .get(&mapping.email)
        .is_some_and(|v| v.as_array().is_some_and(|a| !a.is_empty()));
    if !has_email && email_format && !identity.name_id.is_empty() {
        claims.insert(
            mapping.email.clone(),
            Value::String(identity.name_id.clone()),
        );
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = include_str!("testdata/idp-metadata.xml");

    fn certs() -> Vec<String> {
        super::super::metadata::parse_idp_metadata(CERT)
            .unwrap()
            .certificates
    }

    fn issued_at(xml: &str) -> i64 {
        let doc = roxmltree::Document::parse(xml).unwrap();
        time_ms(doc.root_element().attribute("IssueInstant").unwrap(), "x").unwrap()
    }

    fn check(xml: &str, f: impl FnOnce(&mut Expected<'_>)) -> Result<Identity, String> {
        let certs = certs();
        let mut e = Expected {
            idp_entity_id: "http://127.0.0.1:18082/metadata",
            certificates: &certs,
            sp_entity_id: "http://127.0.0.1:18081",
            acs_url: "http://127.0.0.1:18081/sso/saml/acs/acme",
            request_id: Some("_abc123"),
            decryption_keys: &[],
            now_ms: issued_at(xml) + 1_000,
        };
        f(&mut e);
        verify(xml, &e)
    }

    const OK: &str = include_str!("testdata/response-ok.xml");

    #[test]
    fn a_signed_assertion_verifies() {
        // spec: RSP-574 — a response of a real IdP (samlify, xml-crypto): assertion signed
        // with RSA-SHA256 and exclusive c14n.
        let id = check(OK, |_| {}).unwrap();
        assert_eq!(id.name_id, "ann.saml@example.com");
        assert_eq!(id.name_id_format, EMAIL_FORMAT);
        assert_eq!(
            id.attributes["mail"],
            serde_json::json!(["Ann.Saml@example.com"])
        );
        assert_eq!(
            id.attributes["groups"],
            serde_json::json!(["oncall-sre", "everyone"])
        );
    }

    #[test]
    fn a_signed_response_verifies_and_so_do_both() {
        // spec: RSP-574 — the response or the assertion may carry the signature.
        check(include_str!("testdata/response-response.xml"), |_| {}).unwrap();
        check(include_str!("testdata/response-both.xml"), |_| {}).unwrap();
    }

    #[test]
    fn unsigned_tampered_and_foreign_signatures_are_refused() {
        // spec: RSP-574
        let e = check(include_str!("testdata/response-unsigned.xml"), |_| {}).unwrap_err();
        assert!(e.contains("signed"), "{e}");
        let e = check(include_str!("testdata/response-tamper.xml"), |_| {}).unwrap_err();
        assert!(e.contains("digest"), "{e}");
        let e = check(include_str!("testdata/response-otherkey.xml"), |_| {}).unwrap_err();
        assert!(e.contains("not by a certificate"), "{e}");
        let e = check(include_str!("testdata/response-wrap.xml"), |_| {}).unwrap_err();
        assert!(e.contains("more than one assertion"), "{e}");
        // No certificate at all verifies nothing.
        let e = check(OK, |x| x.certificates = &[]).unwrap_err();
        assert!(e.contains("signature"), "{e}");
    }

    #[test]
    fn audience_times_request_and_destination_are_checked() {
        // spec: RSP-574
        let e = check(OK, |x| x.sp_entity_id = "https://other.example.com").unwrap_err();
        assert!(e.contains("audience"), "{e}");
        let e = check(OK, |x| x.now_ms += 7 * 60_000).unwrap_err();
        assert!(e.contains("expired"), "{e}");
        let e = check(OK, |x| x.now_ms -= 5 * 60_000).unwrap_err();
        assert!(e.contains("not valid yet"), "{e}");
        let e = check(OK, |x| x.request_id = Some("_other")).unwrap_err();
        assert!(e.contains("InResponseTo"), "{e}");
        let e = check(OK, |x| x.acs_url = "https://elsewhere/acs").unwrap_err();
        assert!(e.contains("addressed"), "{e}");
        let e = check(OK, |x| x.idp_entity_id = "https://other-idp").unwrap_err();
        assert!(e.contains("issuer"), "{e}");
    }

    #[test]
    fn the_nameid_is_the_email_when_no_attribute_is() {
        // spec: RSP-572, RSP-574
        let mut id = check(OK, |_| {}).unwrap();
        let mut mapping = FieldMapping {
            email: "mail".into(),
            ..FieldMapping::default()
        };
        assert_eq!(
            claims(&id, &mapping)["mail"],
            serde_json::json!(["Ann.Saml@example.com"])
        );
        mapping.email = "email".into();
        assert_eq!(claims(&id, &mapping)["email"], "ann.saml@example.com");
        id.name_id_format = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent".into();
        assert!(!claims(&id, &mapping).contains_key("email"));
    }

    /// The SP's key (static: the checks' expectations borrow it for any lifetime).
    fn sp_keys() -> &'static [SpKey] {
        static KEYS: std::sync::LazyLock<Vec<SpKey>> = std::sync::LazyLock::new(|| {
            vec![SpKey::from_pem(include_str!("testdata/sp-enc-key.pem")).unwrap()]
        });
        &KEYS
    }

    #[test]
    fn encrypted_assertions_are_decrypted_then_verified() {
        // spec: RSP-574 — assertions a real IdP (samlify, xml-encryption) signed and then
        // encrypted for the SP's certificate: AES-256-CBC with RSA-OAEP, and AES-256-GCM
        // inside a signed Response (assertion unsigned).
        let keys = sp_keys();
        // RSA PKCS#1 v1.5 key transport is refused by name (a padding oracle), before any
        // decryption is tried.
        let e = check(include_str!("testdata/response-encrypted-gcm.xml"), |x| {
            x.decryption_keys = keys
        })
        .unwrap_err();
        assert!(e.contains("rsa-1_5") && e.contains("RSA-OAEP"), "{e}");
        for file in [
            include_str!("testdata/response-encrypted-cbc.xml"),
            include_str!("testdata/response-encrypted-signed.xml"),
        ] {
            assert!(file.contains("EncryptedAssertion"));
            let id = check(file, |x| x.decryption_keys = keys).unwrap();
            assert_eq!(id.name_id, "ann.saml@example.com");
            assert!(id.encrypted);
            assert_eq!(
                id.attributes["mail"],
                serde_json::json!(["Ann.Saml@example.com"])
            );
            assert_eq!(id.session_index, "_session42");
            assert!(id.assertion_id.starts_with('_'));
            // Remembered for replays until the assertion's 5 minutes and the skew are over.
            assert_eq!(
                id.valid_until_ms,
                issued_at(file) + 5 * 60_000 + CLOCK_SKEW_MS
            );
            // Decrypted, the assertion is checked exactly as a plain one.
            let e = check(file, |x| {
                x.decryption_keys = keys;
                x.sp_entity_id = "https://other.example.com";
            })
            .unwrap_err();
            assert!(e.contains("audience"), "{e}");
            let e = check(file, |x| {
                x.decryption_keys = keys;
                x.certificates = &[];
            })
            .unwrap_err();
            assert!(e.contains("signature"), "{e}");
        }
    }

    #[test]
    fn encrypted_assertions_without_the_right_key_or_altered_are_refused() {
        // spec: RSP-574
        let file = include_str!("testdata/response-encrypted-cbc.xml");
        let e = check(file, |_| {}).unwrap_err();
        assert!(e.contains("no SP encryption key"), "{e}");
        let other = Box::leak(Box::new([SpKey::from_pem(include_str!(
            "testdata/other-key.pem"
        ))
        .unwrap()]));
        let e = check(file, |x| x.decryption_keys = other).unwrap_err();
        assert!(e.contains("cannot be decrypted"), "{e}");
        let keys = sp_keys();
        // Any other byte of the content: CBC decrypts to garbage that is no assertion (or no
        // UTF-8), GCM's tag refuses it.
        for file in [file, include_str!("testdata/response-encrypted-gcm.xml")] {
            let doc = roxmltree::Document::parse(file).unwrap();
            let value = doc
                .descendants()
                .rfind(|n| n.has_tag_name((super::super::xmlenc::XENC_NS, "CipherValue")))
                .unwrap()
                .text()
                .unwrap()
                .trim()
                .to_string();
            let mut raw = STANDARD.decode(&value).unwrap();
            let n = raw.len();
            raw[n - 40] ^= 1;
            let altered = file.replace(&value, &STANDARD.encode(&raw));
            assert!(check(&altered, |x| x.decryption_keys = keys).is_err());
        }
        // Triple-DES is refused by name.
        let tdes = file.replace(
            "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
            "http://www.w3.org/2001/04/xmlenc#tripledes-cbc",
        );
        let e = check(&tdes, |x| x.decryption_keys = keys).unwrap_err();
        assert!(e.contains("Triple-DES"), "{e}");
        // A plain assertion beside the encrypted one: refused before anything is decrypted.
        let start = OK.find("<saml:Assertion").unwrap();
        let end = OK.find("</saml:Assertion>").unwrap() + "</saml:Assertion>".len();
        let at = file.find("<saml:EncryptedAssertion").unwrap();
        let both = format!("{}{}{}", &file[..at], &OK[start..end], &file[at..]);
        let e = check(&both, |x| x.decryption_keys = keys).unwrap_err();
        assert!(e.contains("more than one assertion"), "{e}");
    }

    #[test]
    fn an_unsolicited_response_names_no_request() {
        // spec: RSP-574 — IdP-initiated: no InResponseTo anywhere, verified with no request;
        // a solicited response is not accepted as unsolicited, nor the other way round.
        let keys = sp_keys();
        let file = include_str!("testdata/response-unsolicited.xml");
        assert!(!file.contains("InResponseTo"));
        let id = check(file, |x| {
            x.decryption_keys = keys;
            x.request_id = None;
        })
        .unwrap();
        assert_eq!(id.name_id, "ann.saml@example.com");
        let e = check(file, |x| x.decryption_keys = keys).unwrap_err();
        assert!(e.contains("InResponseTo"), "{e}");
        let e = check(OK, |x| x.request_id = None).unwrap_err();
        assert!(e.contains("InResponseTo"), "{e}");
    }

    #[test]
    fn the_sp_key_must_fit_its_certificate() {
        // spec: RSP-574
        use super::super::xmlenc::certificate_der;
        let key = SpKey::from_pem(include_str!("testdata/sp-enc-key.pem")).unwrap();
        let der = certificate_der(include_str!("testdata/sp-enc-cert.pem")).unwrap();
        assert!(key.matches_certificate(&der));
        let idp = STANDARD.decode(&certs()[0]).unwrap();
        assert!(!key.matches_certificate(&idp));
        assert!(SpKey::from_pem("nonsense").is_err());
        assert!(
            certificate_der("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----")
                .is_err()
        );
    }
}
