//! SAML single logout (RSP-574, docs/sign-in.md "Single logout"): the `LogoutRequest` and
//! `LogoutResponse` messages Klaxon writes, and reading the ones the IdP sends. They travel
//! by the HTTP-Redirect binding, whose signature covers the query (see
//! [`super::request::read_redirect`]), so the XML itself carries no signature here.

use roxmltree::Node;

use super::metadata::parse_options;
use super::request::{instant, xml_escape};
use super::response::{ASSERTION_NS, PROTOCOL_NS, text_of, time_ms};

pub const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
/// The request was wrong (bad issuer, expired, names nobody known…).
pub const REQUESTER: &str = "urn:oasis:names:tc:SAML:2.0:status:Requester";
/// Klaxon could not carry the request out.
pub const RESPONDER: &str = "urn:oasis:names:tc:SAML:2.0:status:Responder";

/// Who is logged out: the assertion's NameID with its qualifiers, as the IdP issued it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub name_id: String,
    pub format: String,
    pub name_qualifier: String,
    pub sp_name_qualifier: String,
}

fn name_id_xml(subject: &Subject) -> String {
    let mut attrs = String::new();
    for (name, value) in [
        ("NameQualifier", &subject.name_qualifier),
        ("SPNameQualifier", &subject.sp_name_qualifier),
        ("Format", &subject.format),
    ] {
        if !value.is_empty() {
            attrs.push_str(&format!(" {name}=\"{}\"", xml_escape(value)));
        }
    }
    format!(
        "<saml:NameID{attrs}>{}</saml:NameID>",
        xml_escape(&subject.name_id)
    )
}

/// The SP's `LogoutRequest` for one session (`session_index` '' when the assertion had
/// none), valid until `not_on_or_after_ms`.
pub fn logout_request(
    request_id: &str,
    now_ms: i64,
    not_on_or_after_ms: i64,
    destination: &str,
    sp_entity_id: &str,
    subject: &Subject,
    session_index: &str,
) -> String {
    let index = if session_index.is_empty() {
        String::new()
    } else {
        format!(
            "<samlp:SessionIndex>{}</samlp:SessionIndex>",
            xml_escape(session_index)
        )
    };
    format!(
        concat!(
            "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ",
            "xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{id}\" Version=\"2.0\" ",
            "IssueInstant=\"{at}\" NotOnOrAfter=\"{until}\" Destination=\"{dest}\">",
            "<saml:Issuer>{issuer}</saml:Issuer>{name_id}{index}</samlp:LogoutRequest>"
        ),
        id = xml_escape(request_id),
        at = instant(now_ms),
        until = instant(not_on_or_after_ms),
        dest = xml_escape(destination),
        issuer = xml_escape(sp_entity_id),
        name_id = name_id_xml(subject),
        index = index,
    )
}

/// The SP's `LogoutResponse` to the IdP's request `in_response_to` ('' when the request
/// could not be read far enough to know its ID), with a top-level `status` and an optional
/// message.
pub fn logout_response(
    response_id: &str,
    now_ms: i64,
    destination: &str,
    sp_entity_id: &str,
    in_response_to: &str,
    status: &str,
    message: &str,
) -> String {
    let in_response_to = if in_response_to.is_empty() {
        String::new()
    } else {
        format!(" InResponseTo=\"{}\"", xml_escape(in_response_to))
    };
    let message = if message.is_empty() {
        String::new()
    } else {
        format!(
            "<samlp:StatusMessage>{}</samlp:StatusMessage>",
            xml_escape(message)
        )
    };
    format!(
        concat!(
            "<samlp:LogoutResponse xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ",
            "xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{id}\" Version=\"2.0\" ",
            "IssueInstant=\"{at}\" Destination=\"{dest}\"{irt}>",
            "<saml:Issuer>{issuer}</saml:Issuer>",
            "<samlp:Status><samlp:StatusCode Value=\"{status}\"/>{message}</samlp:Status>",
            "</samlp:LogoutResponse>"
        ),
        id = xml_escape(response_id),
        at = instant(now_ms),
        dest = xml_escape(destination),
        irt = in_response_to,
        issuer = xml_escape(sp_entity_id),
        status = xml_escape(status),
        message = message,
    )
}

/// A `LogoutRequest` from the IdP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequest {
    pub id: String,
    pub issuer: String,
    /// '' when absent.
    pub destination: String,
    pub subject: Subject,
    /// Empty: every session of the subject.
    pub session_indexes: Vec<String>,
    pub not_on_or_after_ms: Option<i64>,
}

/// A `LogoutResponse` from the IdP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutResponse {
    pub id: String,
    pub issuer: String,
    pub destination: String,
    pub in_response_to: String,
    /// The top-level status code.
    pub status: String,
    pub status_message: String,
}

fn document<'i>(xml: &'i str, name: &str) -> Result<roxmltree::Document<'i>, String> {
    let doc = roxmltree::Document::parse_with_options(xml, parse_options())
        .map_err(|e| format!("the {name} is not well-formed XML: {e}"))?;
    let root = doc.root_element();
    if !root.has_tag_name((PROTOCOL_NS, name)) {
        return Err(format!(
            "the message is a {} where a {name} was expected",
            root.tag_name().name()
        ));
    }
    if root.attribute("Version") != Some("2.0") {
        return Err(format!("the {name} is not version 2.0"));
    }
    if root.attribute("ID").is_none_or(str::is_empty) {
        return Err(format!("the {name} has no ID"));
    }
    Ok(doc)
}

fn children<'a, 'i>(node: Node<'a, 'i>, ns: &str, name: &str) -> Vec<Node<'a, 'i>> {
    node.children()
        .filter(|c| c.is_element() && c.has_tag_name((ns, name)))
        .collect()
}

fn issuer_of(root: Node<'_, '_>, name: &str) -> Result<String, String> {
    match children(root, ASSERTION_NS, "Issuer").as_slice() {
        [one] => Ok(text_of(*one)),
        [] => Err(format!("the {name} has no Issuer")),
        _ => Err(format!("the {name} has more than one Issuer")),
    }
}

/// Reads the IdP's `LogoutRequest` (its signature is the redirect's, checked before).
pub fn parse_logout_request(xml: &str) -> Result<LogoutRequest, String> {
    let doc = document(xml, "LogoutRequest")?;
    let root = doc.root_element();
    let name_id = match children(root, ASSERTION_NS, "NameID").as_slice() {
        [one] => *one,
        [] if !children(root, ASSERTION_NS, "EncryptedID").is_empty() => {
            return Err("the LogoutRequest's NameID is encrypted, which is not supported".into());
        }
        [] => return Err("the LogoutRequest names no NameID".to_string()),
        _ => return Err("the LogoutRequest has more than one NameID".to_string()),
    };
    let subject = Subject {
        name_id: text_of(name_id),
        format: name_id.attribute("Format").unwrap_or("").to_string(),
        name_qualifier: name_id.attribute("NameQualifier").unwrap_or("").to_string(),
        sp_name_qualifier: name_id
            .attribute("SPNameQualifier")
            .unwrap_or("")
            .to_string(),
    };
    if subject.name_id.is_empty() {
        return Err("the LogoutRequest's NameID is empty".to_string());
    }
    let not_on_or_after_ms = root
        .attribute("NotOnOrAfter")
        .map(|v| time_ms(v, "the LogoutRequest's NotOnOrAfter"))
        .transpose()?;
    Ok(LogoutRequest {
        id: root.attribute("ID").unwrap_or("").to_string(),
        issuer: issuer_of(root, "LogoutRequest")?,
        destination: root.attribute("Destination").unwrap_or("").to_string(),
        subject,
        session_indexes: children(root, PROTOCOL_NS, "SessionIndex")
            .into_iter()
            .map(text_of)
            .filter(|s| !s.is_empty())
            .collect(),
        not_on_or_after_ms,
    })
}

/// Reads the IdP's `LogoutResponse`.
pub fn parse_logout_response(xml: &str) -> Result<LogoutResponse, String> {
    let doc = document(xml, "LogoutResponse")?;
    let root = doc.root_element();
    let status = match children(root, PROTOCOL_NS, "Status").as_slice() {
        [one] => *one,
        _ => return Err("the LogoutResponse has no single Status".to_string()),
    };
    let code = children(status, PROTOCOL_NS, "StatusCode")
        .first()
        .and_then(|c| c.attribute("Value"))
        .ok_or_else(|| "the LogoutResponse has no StatusCode".to_string())?
        .to_string();
    Ok(LogoutResponse {
        id: root.attribute("ID").unwrap_or("").to_string(),
        issuer: issuer_of(root, "LogoutResponse")?,
        destination: root.attribute("Destination").unwrap_or("").to_string(),
        in_response_to: root.attribute("InResponseTo").unwrap_or("").to_string(),
        status: code,
        status_message: children(status, PROTOCOL_NS, "StatusMessage")
            .first()
            .map(|m| text_of(*m))
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logout_request_names_the_subject_and_session() {
        // spec: RSP-574 — SP-initiated logout names the NameID exactly as the assertion did,
        // with its SessionIndex; it reads back as the IdP would read it.
        let subject = Subject {
            name_id: "ann@example.com".into(),
            format: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress".into(),
            name_qualifier: "idp & co".into(),
            sp_name_qualifier: String::new(),
        };
        let xml = logout_request(
            "_l1",
            1_795_000_000_000,
            1_795_000_300_000,
            "https://idp/slo",
            "https://k",
            &subject,
            "_s1",
        );
        assert!(xml.contains("NameQualifier=\"idp &amp; co\""), "{xml}");
        assert!(!xml.contains("SPNameQualifier"), "{xml}");
        let back = parse_logout_request(&xml).unwrap();
        assert_eq!(back.subject, subject);
        assert_eq!(back.session_indexes, vec!["_s1".to_string()]);
        assert_eq!(back.issuer, "https://k");
        assert_eq!(back.not_on_or_after_ms, Some(1_795_000_300_000));
        assert_eq!(back.destination, "https://idp/slo");
    }

    #[test]
    fn the_logout_response_carries_status_and_request() {
        // spec: RSP-574
        let xml = logout_response(
            "_r1",
            1_795_000_000_000,
            "https://idp/slo",
            "https://k",
            "_l1",
            REQUESTER,
            "expired",
        );
        let back = parse_logout_response(&xml).unwrap();
        assert_eq!(back.in_response_to, "_l1");
        assert_eq!(back.status, REQUESTER);
        assert_eq!(back.status_message, "expired");
        assert_eq!(back.issuer, "https://k");
        assert!(
            parse_logout_request(&xml)
                .unwrap_err()
                .contains("LogoutResponse where a LogoutRequest")
        );
        assert!(parse_logout_response("<x").is_err());
        let dtd = "<!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>";
        assert!(parse_logout_response(dtd).is_err());
    }
}
