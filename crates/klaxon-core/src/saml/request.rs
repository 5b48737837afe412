//! The SP-initiated AuthnRequest (RSP-574) and the HTTP-Redirect binding (SAML bindings
//! §3.4): encoding a message into a query, signing it (§3.4.4.1) when the SP has a key and
//! signing is asked for, and reading a signed message the IdP redirected to Klaxon.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::write::DeflateEncoder;

use super::der::PublicKey;
use super::dsig::signature_algorithm;
use super::metadata::{EMAIL_FORMAT, POST_BINDING};
use super::response::keys_of;
use super::xmlenc::{RSA_SHA256, SpKey};

/// The largest inflated message read from a redirect (a LogoutRequest is a few hundred bytes).
pub const MAX_REDIRECT_XML_BYTES: usize = 64 * 1024;

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

/// Percent-encoding of a query value: everything but the RFC 3986 unreserved characters.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3 / 2);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a query value as browsers send it (`+` is a space); `None` when not UTF-8 or a
/// `%` escape is broken.
pub fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The query of an HTTP-Redirect message (without `?`): `param` (`SAMLRequest` or
/// `SAMLResponse`) with the deflated message, `RelayState` when not empty and, with a key,
/// `SigAlg` and `Signature`: RSA-SHA256 over the exact octets
/// `param=…&RelayState=…&SigAlg=…` as they appear in the query (SAML bindings §3.4.4.1).
pub fn redirect_query(
    param: &str,
    xml: &str,
    relay_state: &str,
    key: Option<&SpKey>,
) -> Result<String, String> {
    let mut query = format!("{param}={}", percent_encode(&redirect_encode(xml)));
    if !relay_state.is_empty() {
        query.push_str(&format!("&RelayState={}", percent_encode(relay_state)));
    }
    if let Some(key) = key {
        query.push_str(&format!("&SigAlg={}", percent_encode(RSA_SHA256)));
        let signature = key.sign_rsa_sha256(query.as_bytes())?;
        query.push_str(&format!(
            "&Signature={}",
            percent_encode(&STANDARD.encode(signature))
        ));
    }
    Ok(query)
}

/// `url` with `query` appended (after `&` when it already has a query).
pub fn with_query(url: &str, query: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

/// A message the IdP sent by the HTTP-Redirect binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectMessage {
    /// The inflated XML.
    pub xml: String,
    pub relay_state: String,
    /// Whether it carried a signature (verified by a certificate of the IdP metadata).
    pub signed: bool,
}

/// Reads `param` (`SAMLRequest` or `SAMLResponse`) from the raw query of a redirect. A
/// `Signature` must verify against one of `certificates` (base64 DER from the IdP metadata)
/// over the octets exactly as received; without one, the message is refused when
/// `require_signature`. SHA-1 is refused.
pub fn read_redirect(
    raw_query: &str,
    param: &str,
    certificates: &[String],
    require_signature: bool,
) -> Result<RedirectMessage, String> {
    let mut raw: Vec<(&str, &str)> = Vec::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if raw.iter().any(|(seen, _)| *seen == k) {
            return Err(format!("the query carries {k} more than once"));
        }
        raw.push((k, v));
    }
    let get = |name: &str| raw.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let message = get(param).ok_or_else(|| format!("the query has no {param}"))?;
    let relay_raw = get("RelayState");
    let decode = |name: &str, v: &str| {
        percent_decode(v).ok_or_else(|| format!("the query's {name} is not percent-encoded UTF-8"))
    };
    let relay_state = match relay_raw {
        Some(v) => decode("RelayState", v)?,
        None => String::new(),
    };
    let signed = match (get("SigAlg"), get("Signature")) {
        (Some(sig_alg), Some(signature)) => {
            let mut octets = format!("{param}={message}");
            if let Some(r) = relay_raw {
                octets.push_str(&format!("&RelayState={r}"));
            }
            octets.push_str(&format!("&SigAlg={sig_alg}"));
            let method = decode("SigAlg", sig_alg)?;
            let signature: String = decode("Signature", signature)?
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let signature = STANDARD
                .decode(signature.as_bytes())
                .map_err(|_| "the query's Signature is not base64".to_string())?;
            verify_octets(
                octets.as_bytes(),
                &method,
                &signature,
                &keys_of(certificates),
            )?;
            true
        }
        (None, None) if require_signature => {
            return Err(format!(
                "the {param} is not signed (the redirect has no Signature and SigAlg)"
            ));
        }
        (None, None) => false,
        _ => return Err("the query has a Signature without SigAlg or the reverse".to_string()),
    };
    let xml = redirect_decode(&decode(param, message)?)?;
    Ok(RedirectMessage {
        xml,
        relay_state,
        signed,
    })
}

fn verify_octets(
    octets: &[u8],
    method: &str,
    signature: &[u8],
    keys: &[PublicKey],
) -> Result<(), String> {
    let mut usable = false;
    for key in keys {
        let Some(alg) = signature_algorithm(method, key)? else {
            continue;
        };
        usable = true;
        let bytes = match key {
            PublicKey::Rsa(b) | PublicKey::P256(b) | PublicKey::P384(b) => b,
        };
        if ring::signature::UnparsedPublicKey::new(alg, bytes)
            .verify(octets, signature)
            .is_ok()
        {
            return Ok(());
        }
    }
    if !usable {
        return Err(format!(
            "no certificate of the IdP metadata fits the signature method {method:?}"
        ));
    }
    Err("the redirect's signature is not by a certificate of the IdP metadata".to_string())
}

/// The XML of a redirect parameter: base64, then raw DEFLATE, at most
/// [`MAX_REDIRECT_XML_BYTES`] inflated.
pub fn redirect_decode(value: &str) -> Result<String, String> {
    use std::io::Read;
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    let raw = STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| "the SAML message is not base64".to_string())?;
    let mut xml = Vec::new();
    flate2::read::DeflateDecoder::new(raw.as_slice())
        .take(MAX_REDIRECT_XML_BYTES as u64 + 1)
        .read_to_end(&mut xml)
        .map_err(|_| "the SAML message is not DEFLATE-compressed".to_string())?;
    if xml.len() > MAX_REDIRECT_XML_BYTES {
        return Err("the SAML message is too large".to_string());
    }
    String::from_utf8(xml).map_err(|_| "the SAML message is not UTF-8 XML".to_string())
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

    #[test]
    fn a_signed_redirect_signs_the_exact_query_octets() {
        // spec: RSP-574 — SAML bindings §3.4.4.1: RSA-SHA256 over
        // `SAMLRequest=…&RelayState=…&SigAlg=…` exactly as they appear in the query.
        let key = SpKey::from_pem(include_str!("testdata/sp-enc-key.pem")).unwrap();
        let cert = include_str!("testdata/sp-enc-cert.pem");
        let cert_b64: String = cert
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>();
        let xml = authn_request(
            "_r1",
            1_795_000_000_000,
            "https://idp/sso",
            "https://k/acs",
            "https://k",
        );
        let query = redirect_query("SAMLRequest", &xml, "relay 1/2", Some(&key)).unwrap();
        let (signed, signature) = query.split_once("&Signature=").unwrap();
        assert!(signed.starts_with("SAMLRequest="));
        assert!(signed.contains("&RelayState=relay%201%2F2&SigAlg="));
        assert!(
            signed.ends_with(
                "&SigAlg=http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256"
            )
        );
        // An independent verifier (ring) accepts the signature over exactly those octets.
        let der = STANDARD.decode(cert_b64.as_bytes()).unwrap();
        let PublicKey::Rsa(public) = super::super::der::certificate_key(&der).unwrap() else {
            panic!("an RSA certificate");
        };
        let sig = STANDARD
            .decode(percent_decode(signature).unwrap().as_bytes())
            .unwrap();
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            &public,
        )
        .verify(signed.as_bytes(), &sig)
        .unwrap();
        // Read back: verified, and one changed octet breaks it.
        let back =
            read_redirect(&query, "SAMLRequest", std::slice::from_ref(&cert_b64), true).unwrap();
        assert!(back.signed);
        assert_eq!(back.xml, xml);
        assert_eq!(back.relay_state, "relay 1/2");
        let tampered = query.replace("RelayState=relay", "RelayState=relaz");
        assert!(
            read_redirect(
                &tampered,
                "SAMLRequest",
                std::slice::from_ref(&cert_b64),
                true
            )
            .unwrap_err()
            .contains("not by a certificate")
        );
        // Unsigned: refused when a signature is required, read otherwise.
        let plain = redirect_query("SAMLRequest", &xml, "", None).unwrap();
        assert!(!plain.contains("Signature"));
        assert!(
            read_redirect(&plain, "SAMLRequest", std::slice::from_ref(&cert_b64), true)
                .unwrap_err()
                .contains("not signed")
        );
        assert!(
            !read_redirect(&plain, "SAMLRequest", &[cert_b64], false)
                .unwrap()
                .signed
        );
    }
}
