//! SAML metadata (RSP-574): reading the IdP's uploaded metadata, writing Klaxon's SP metadata.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::der::certificate_key;
use super::dsig::DSIG_NS;
use super::request::xml_escape;

pub const MD_NS: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
pub const REDIRECT_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
pub const POST_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
pub const EMAIL_FORMAT: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";

/// Metadata is a few kilobytes; a few hundred is already far more than any IdP sends.
pub const MAX_METADATA_BYTES: usize = 512 * 1024;

/// What a sign-in needs from the IdP metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpMetadata {
    pub entity_id: String,
    /// The HTTP-Redirect SingleSignOnService location.
    pub sso_url: String,
    /// The signing certificates, base64 DER, without duplicates.
    pub certificates: Vec<String>,
    /// The HTTP-Redirect SingleLogoutService location ('' when the IdP has none: sign-out
    /// stays local).
    pub slo_url: String,
    /// `WantAuthnRequestsSigned="true"`: the IdP wants signed AuthnRequests.
    pub want_authn_requests_signed: bool,
}

pub(crate) fn parse_options<'i>() -> roxmltree::ParsingOptions<'i> {
    roxmltree::ParsingOptions {
        // No DTD: no entity expansion, no external references.
        allow_dtd: false,
        nodes_limit: 200_000,
        entity_resolver: None,
    }
}

/// Reads the IdP's `EntityDescriptor` (alone or the only IdP of an `EntitiesDescriptor`).
pub fn parse_idp_metadata(xml: &str) -> Result<IdpMetadata, String> {
    if xml.len() > MAX_METADATA_BYTES {
        return Err(format!("at most {MAX_METADATA_BYTES} bytes"));
    }
    let doc = roxmltree::Document::parse_with_options(
        xml.trim_start_matches('\u{feff}'),
        parse_options(),
    )
    .map_err(|e| format!("not well-formed XML: {e}"))?;
    let idps: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name((MD_NS, "EntityDescriptor")))
        .filter_map(|e| {
            e.children()
                .find(|c| c.has_tag_name((MD_NS, "IDPSSODescriptor")))
                .map(|d| (e, d))
        })
        .collect();
    let (entity, descriptor) = match idps.as_slice() {
        [one] => *one,
        [] => {
            return Err(
                "no EntityDescriptor with an IDPSSODescriptor (is this the IdP's metadata?)"
                    .to_string(),
            );
        }
        _ => return Err("describes more than one identity provider".to_string()),
    };
    let entity_id = entity
        .attribute("entityID")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| "the EntityDescriptor has no entityID".to_string())?
        .to_string();
    let sso_url = descriptor
        .children()
        .filter(|c| c.has_tag_name((MD_NS, "SingleSignOnService")))
        .find(|c| c.attribute("Binding") == Some(REDIRECT_BINDING))
        .and_then(|c| c.attribute("Location"))
        .map(str::trim)
        .ok_or_else(|| {
            "no SingleSignOnService with the HTTP-Redirect binding (Klaxon sends its AuthnRequest by redirect)"
                .to_string()
        })?
        .to_string();
    if !(sso_url.starts_with("https://") || sso_url.starts_with("http://")) {
        return Err(format!(
            "the SingleSignOnService location {sso_url:?} is not an http(s) URL"
        ));
    }
    let slo_url = descriptor
        .children()
        .filter(|c| c.has_tag_name((MD_NS, "SingleLogoutService")))
        .find(|c| c.attribute("Binding") == Some(REDIRECT_BINDING))
        .and_then(|c| c.attribute("Location"))
        .map(str::trim)
        .unwrap_or("")
        .to_string();
    if !(slo_url.is_empty() || slo_url.starts_with("https://") || slo_url.starts_with("http://")) {
        return Err(format!(
            "the SingleLogoutService location {slo_url:?} is not an http(s) URL"
        ));
    }
    let want_authn_requests_signed = matches!(
        descriptor
            .attribute("WantAuthnRequestsSigned")
            .map(str::trim),
        Some("true" | "1")
    );
    let mut certificates: Vec<String> = Vec::new();
    for key in descriptor
        .children()
        .filter(|c| c.has_tag_name((MD_NS, "KeyDescriptor")))
        .filter(|k| matches!(k.attribute("use"), None | Some("signing")))
    {
        for cert in key
            .descendants()
            .filter(|n| n.has_tag_name((DSIG_NS, "X509Certificate")))
        {
            let text: String = cert
                .text()
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let der = STANDARD
                .decode(text.as_bytes())
                .map_err(|_| "an X509Certificate is not base64".to_string())?;
            certificate_key(&der).map_err(|e| format!("a signing certificate: {e}"))?;
            if !certificates.contains(&text) {
                certificates.push(text);
            }
        }
    }
    if certificates.is_empty() {
        return Err(
            "no signing certificate (KeyDescriptor use=\"signing\" with an X509Certificate)"
                .to_string(),
        );
    }
    Ok(IdpMetadata {
        entity_id,
        sso_url,
        certificates,
        slo_url,
        want_authn_requests_signed,
    })
}

/// What Klaxon's SP metadata publishes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpMetadata<'a> {
    pub entity_id: &'a str,
    pub acs_url: &'a str,
    /// The SingleLogoutService (HTTP-Redirect) location.
    pub slo_url: &'a str,
    /// The SP certificate (base64 DER), '' when none: published for encryption and, since
    /// the same key pair signs what the SP sends, for signing.
    pub certificate: &'a str,
    /// Whether AuthnRequests are signed (`AuthnRequestsSigned`).
    pub authn_requests_signed: bool,
}

/// Klaxon's SP metadata (RSP-574): entity ID, the HTTP-POST assertion consumer service,
/// the HTTP-Redirect single logout service, signed assertions wanted, and, when one is
/// configured, the SP certificate (base64 DER) both for encryption (IdPs encrypt assertions
/// for it) and for signing (AuthnRequests when signed, logout messages).
pub fn sp_metadata(sp: &SpMetadata<'_>) -> String {
    let key_info = |cert: &str| {
        format!(
            concat!(
                "<ds:KeyInfo xmlns:ds=\"{ds}\"><ds:X509Data>",
                "<ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
            ),
            ds = DSIG_NS,
            cert = xml_escape(cert),
        )
    };
    let keys = if sp.certificate.is_empty() {
        String::new()
    } else {
        format!(
            concat!(
                "<md:KeyDescriptor use=\"signing\">{key}</md:KeyDescriptor>",
                "<md:KeyDescriptor use=\"encryption\">{key}",
                "<md:EncryptionMethod Algorithm=\"http://www.w3.org/2009/xmlenc11#aes256-gcm\"/>",
                "<md:EncryptionMethod Algorithm=\"http://www.w3.org/2009/xmlenc11#aes128-gcm\"/>",
                "<md:EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#aes256-cbc\"/>",
                "<md:EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#aes128-cbc\"/>",
                "<md:EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p\"/>",
                "</md:KeyDescriptor>"
            ),
            key = key_info(sp.certificate),
        )
    };
    let slo = if sp.slo_url.is_empty() {
        String::new()
    } else {
        format!(
            "<md:SingleLogoutService Binding=\"{REDIRECT_BINDING}\" Location=\"{}\"/>",
            xml_escape(sp.slo_url)
        )
    };
    format!(
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<md:EntityDescriptor xmlns:md=\"{md}\" entityID=\"{entity}\">",
            "<md:SPSSODescriptor AuthnRequestsSigned=\"{signed}\" WantAssertionsSigned=\"true\" ",
            "protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">",
            "{keys}{slo}",
            "<md:NameIDFormat>{email}</md:NameIDFormat>",
            "<md:AssertionConsumerService Binding=\"{post}\" Location=\"{acs}\" index=\"0\" isDefault=\"true\"/>",
            "</md:SPSSODescriptor></md:EntityDescriptor>\n"
        ),
        md = MD_NS,
        entity = xml_escape(sp.entity_id),
        signed = sp.authn_requests_signed,
        email = EMAIL_FORMAT,
        post = POST_BINDING,
        acs = xml_escape(sp.acs_url),
        keys = keys,
        slo = slo,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idp_metadata_gives_entity_sso_url_and_certificates() {
        // spec: RSP-574 — metadata written by a real IdP implementation (samlify).
        let idp = parse_idp_metadata(include_str!("testdata/idp-metadata.xml")).unwrap();
        assert_eq!(idp.entity_id, "http://127.0.0.1:18082/metadata");
        assert_eq!(idp.sso_url, "http://127.0.0.1:18082/sso");
        assert_eq!(idp.certificates.len(), 1);
        assert!(idp.certificates[0].starts_with("MIID"));
    }

    #[test]
    fn bad_metadata_is_refused_with_the_reason() {
        assert!(
            parse_idp_metadata("<x")
                .unwrap_err()
                .contains("well-formed")
        );
        let dtd = "<!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>";
        assert!(parse_idp_metadata(dtd).is_err());
        let sp = sp_metadata(&SpMetadata {
            entity_id: "https://k.example.com",
            acs_url: "https://k.example.com/sso/saml/acs/a",
            ..SpMetadata::default()
        });
        assert!(
            parse_idp_metadata(&sp)
                .unwrap_err()
                .contains("IDPSSODescriptor")
        );
        let no_redirect =
            include_str!("testdata/idp-metadata.xml").replace(REDIRECT_BINDING, POST_BINDING);
        assert!(
            parse_idp_metadata(&no_redirect)
                .unwrap_err()
                .contains("HTTP-Redirect")
        );
    }

    #[test]
    fn sp_metadata_names_entity_and_acs() {
        // spec: RSP-574
        let xml = sp_metadata(&SpMetadata {
            entity_id: "https://k.example.com",
            acs_url: "https://k.example.com/sso/saml/acs/acme",
            ..SpMetadata::default()
        });
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let root = doc.root_element();
        assert_eq!(root.attribute("entityID"), Some("https://k.example.com"));
        let sp = root.first_element_child().unwrap();
        assert_eq!(sp.attribute("AuthnRequestsSigned"), Some("false"));
        let acs = sp
            .children()
            .find(|c| c.has_tag_name((MD_NS, "AssertionConsumerService")))
            .unwrap();
        assert_eq!(
            acs.attribute("Location"),
            Some("https://k.example.com/sso/saml/acs/acme")
        );
        assert_eq!(acs.attribute("Binding"), Some(POST_BINDING));
        assert!(!xml.contains("SingleLogoutService"));
    }

    #[test]
    fn sp_metadata_publishes_slo_and_the_signing_key() {
        // spec: RSP-574 — signed AuthnRequests: AuthnRequestsSigned="true" and the SP key as
        // use="signing"; the single logout service by the Redirect binding.
        let xml = sp_metadata(&SpMetadata {
            entity_id: "https://k",
            acs_url: "https://k/sso/saml/acs/a",
            slo_url: "https://k/sso/saml/slo/a",
            certificate: "MIIBcert",
            authn_requests_signed: true,
        });
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let sp = doc.root_element().first_element_child().unwrap();
        assert_eq!(sp.attribute("AuthnRequestsSigned"), Some("true"));
        let uses: Vec<_> = sp
            .children()
            .filter(|c| c.has_tag_name((MD_NS, "KeyDescriptor")))
            .map(|k| k.attribute("use").unwrap())
            .collect();
        assert_eq!(uses, ["signing", "encryption"]);
        let slo = sp
            .children()
            .find(|c| c.has_tag_name((MD_NS, "SingleLogoutService")))
            .unwrap();
        assert_eq!(slo.attribute("Binding"), Some(REDIRECT_BINDING));
        assert_eq!(slo.attribute("Location"), Some("https://k/sso/saml/slo/a"));
    }

    #[test]
    fn the_idp_metadata_gives_slo_and_signed_request_wish() {
        // spec: RSP-574
        let plain = parse_idp_metadata(include_str!("testdata/idp-metadata.xml")).unwrap();
        assert!(!plain.want_authn_requests_signed);
        let xml = include_str!("testdata/idp-metadata.xml")
            .replacen(
                "WantAuthnRequestsSigned=\"false\"",
                "WantAuthnRequestsSigned=\"true\"",
                1,
            )
            .replacen(
                "<SingleSignOnService",
                &format!(
                    "<SingleLogoutService Binding=\"{REDIRECT_BINDING}\" Location=\"http://127.0.0.1:18082/slo\"/><SingleSignOnService"
                ),
                1,
            );
        let idp = parse_idp_metadata(&xml).unwrap();
        assert!(idp.want_authn_requests_signed, "{xml}");
        assert_eq!(idp.slo_url, "http://127.0.0.1:18082/slo");
    }
}
