//! The SP-initiated AuthnRequest (RSP-574), sent unsigned by the HTTP-Redirect binding.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::write::DeflateEncoder;

use super::metadata::{EMAIL_FORMAT, POST_BINDING};

pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// An xs:dateTime in UTC, to the second.
pub(crate) fn instant(now_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(now_ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The AuthnRequest XML. `request_id` must be an xs:ID (start with a letter or `_`); the
/// response's `InResponseTo` must name it.
pub fn authn_request(
    request_id: &str,
    now_ms: i64,
    destination: &str,
    acs_url: &str,
    sp_entity_id: &str,
) -> String {
    format!(
        concat!(
            "<samlp:AuthnRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ",
            "xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{id}\" Version=\"2.0\" ",
            "IssueInstant=\"{at}\" Destination=\"{dest}\" ProtocolBinding=\"{post}\" ",
            "AssertionConsumerServiceURL=\"{acs}\">",
            "<saml:Issuer>{issuer}</saml:Issuer>",
            "<samlp:NameIDPolicy Format=\"{email}\" AllowCreate=\"true\"/>",
            "</samlp:AuthnRequest>"
        ),
        id = xml_escape(request_id),
        at = instant(now_ms),
        dest = xml_escape(destination),
        post = POST_BINDING,
        acs = xml_escape(acs_url),
        issuer = xml_escape(sp_entity_id),
        email = EMAIL_FORMAT,
    )
}

/// The `SAMLRequest` parameter of the HTTP-Redirect binding: raw DEFLATE, then base64 (the
/// caller URL-encodes it as a query parameter).
pub fn redirect_encode(xml: &str) -> String {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(xml.as_bytes());
    let deflated = encoder.finish().unwrap_or_default();
    STANDARD.encode(deflated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::DeflateDecoder;
    use std::io::Read;

    #[test]
    fn the_request_round_trips_through_the_redirect_encoding() {
        // spec: RSP-574 — unsigned, naming the ACS URL and the SP entity ID.
        let xml = authn_request(
            "_0123abcd",
            1_795_000_000_000,
            "https://idp.example.com/sso",
            "https://k.example.com/sso/saml/acs/acme",
            "https://k.example.com",
        );
        let encoded = redirect_encode(&xml);
        let raw = STANDARD.decode(encoded).unwrap();
        let mut back = String::new();
        DeflateDecoder::new(raw.as_slice())
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, xml);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let root = doc.root_element();
        assert_eq!(root.attribute("ID"), Some("_0123abcd"));
        assert_eq!(root.attribute("IssueInstant"), Some("2026-11-18T11:06:40Z"));
        assert_eq!(
            root.attribute("AssertionConsumerServiceURL"),
            Some("https://k.example.com/sso/saml/acs/acme")
        );
        assert!(!xml.contains("Signature"));
    }
}
