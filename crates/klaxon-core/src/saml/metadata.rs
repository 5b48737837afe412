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
    })
}

/// Klaxon's SP metadata (RSP-574): entity ID, the HTTP-POST assertion consumer service, no
/// signing key (the SP does not sign its requests), and signed assertions wanted.
pub fn sp_metadata(entity_id: &str, acs_url: &str) -> String {
    format!(
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<md:EntityDescriptor xmlns:md=\"{md}\" entityID=\"{entity}\">",
            "<md:SPSSODescriptor AuthnRequestsSigned=\"false\" WantAssertionsSigned=\"true\" ",
            "protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">",
            "<md:NameIDFormat>{email}</md:NameIDFormat>",
            "<md:AssertionConsumerService Binding=\"{post}\" Location=\"{acs}\" index=\"0\" isDefault=\"true\"/>",
            "</md:SPSSODescriptor></md:EntityDescriptor>\n"
        ),
        md = MD_NS,
        entity = xml_escape(entity_id),
        email = EMAIL_FORMAT,
        post = POST_BINDING,
        acs = xml_escape(acs_url),
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
        let sp = sp_metadata(
            "https://k.example.com",
            "https://k.example.com/sso/saml/acs/a",
        );
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
        let xml = sp_metadata(
            "https://k.example.com",
            "https://k.example.com/sso/saml/acs/acme",
        );
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
    }
}
