//! Exclusive XML canonicalization without comments (<https://www.w3.org/TR/xml-exc-c14n/>)
//! of one element subtree of a parsed document, leaving out one descendant (the enveloped
//! signature). This is the only canonicalization XML-DSig signatures are accepted with, so a
//! document is always verified on the very tree the sign-in then reads.

use std::collections::BTreeMap;

use roxmltree::{Node, NodeId};

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// The canonical form of `apex` and its descendants, without the subtree `skip` (if any).
/// `inclusive` is the `InclusiveNamespaces PrefixList` of the transform: those prefixes are
/// rendered as in inclusive canonicalization (`#default` names the default namespace).
pub fn canonicalize(apex: Node<'_, '_>, skip: Option<NodeId>, inclusive: &[String]) -> String {
    let mut out = String::new();
    let rendered: BTreeMap<String, String> = BTreeMap::new();
    element(apex, skip, inclusive, &rendered, &mut out);
    out
}

/// The prefix an element or attribute was written with (`""` for none), read from the
/// source: roxmltree resolves names to URIs, but the canonical form keeps the prefixes.
fn prefix_of(qname: &str) -> &str {
    qname.split_once(':').map(|(p, _)| p).unwrap_or("")
}

fn element_qname<'a>(node: Node<'_, 'a>) -> &'a str {
    let text = node.document().input_text();
    let rest = &text[node.range().start + 1..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
        .unwrap_or(rest.len());
    &rest[..end]
}

fn attribute_qname<'a>(node: Node<'_, 'a>, attr: &roxmltree::Attribute<'_, 'a>) -> &'a str {
    &node.document().input_text()[attr.range_qname()]
}

fn element(
    node: Node<'_, '_>,
    skip: Option<NodeId>,
    inclusive: &[String],
    rendered: &BTreeMap<String, String>,
    out: &mut String,
) {
    let qname = element_qname(node);
    let own_prefix = prefix_of(qname);
    // The namespaces this element visibly uses (its own prefix and its attributes'), plus
    // those of the inclusive prefix list that are in scope.
    let mut wanted: BTreeMap<String, String> = BTreeMap::new();
    wanted.insert(
        own_prefix.to_string(),
        node.tag_name().namespace().unwrap_or("").to_string(),
    );
    for attr in node.attributes() {
        let aq = attribute_qname(node, &attr);
        let p = prefix_of(aq);
        if !p.is_empty() && p != "xml" {
            wanted.insert(p.to_string(), attr.namespace().unwrap_or("").to_string());
        }
    }
    for p in inclusive {
        let (key, lookup) = if p == "#default" {
            (String::new(), None)
        } else {
            (p.clone(), Some(p.as_str()))
        };
        if key == "xml" {
            continue;
        }
        if let Some(uri) = node.lookup_namespace_uri(lookup) {
            wanted.entry(key).or_insert_with(|| uri.to_string());
        }
    }
    let mut now_rendered = rendered.clone();
    let mut decls: Vec<(String, String)> = Vec::new();
    for (prefix, uri) in wanted {
        let before = rendered.get(&prefix).map(String::as_str).unwrap_or("");
        // An unprefixed element without namespace needs `xmlns=""` only when an output
        // ancestor declared a default namespace.
        let same = if prefix.is_empty() {
            before == uri
        } else {
            rendered.get(&prefix) == Some(&uri)
        };
        if !same {
            now_rendered.insert(prefix.clone(), uri.clone());
            decls.push((prefix, uri));
        }
    }
    out.push('<');
    out.push_str(qname);
    // Namespace declarations sorted by prefix, the default one first (BTreeMap order).
    for (prefix, uri) in &decls {
        if prefix.is_empty() {
            out.push_str(" xmlns=\"");
        } else {
            out.push_str(" xmlns:");
            out.push_str(prefix);
            out.push_str("=\"");
        }
        escape_attr(uri, out);
        out.push('"');
    }
    // Attributes sorted by namespace URI then local name; no namespace sorts first.
    let mut attrs: Vec<(&str, &str, &str, &str)> = node
        .attributes()
        .map(|a| {
            let ns = a.namespace().unwrap_or("");
            let ns = if prefix_of(attribute_qname(node, &a)) == "xml" {
                XML_NS
            } else {
                ns
            };
            (ns, a.name(), attribute_qname(node, &a), a.value())
        })
        .collect();
    attrs.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    for (_, _, aq, value) in attrs {
        out.push(' ');
        out.push_str(aq);
        out.push_str("=\"");
        escape_attr(value, out);
        out.push('"');
    }
    out.push('>');
    for child in node.children() {
        if Some(child.id()) == skip {
            continue;
        }
        match child.node_type() {
            roxmltree::NodeType::Element => element(child, skip, inclusive, &now_rendered, out),
            roxmltree::NodeType::Text => escape_text(child.text().unwrap_or(""), out),
            roxmltree::NodeType::PI => {
                if let Some(pi) = child.pi() {
                    out.push_str("<?");
                    out.push_str(pi.target);
                    if let Some(v) = pi.value {
                        out.push(' ');
                        out.push_str(v);
                    }
                    out.push_str("?>");
                }
            }
            _ => {}
        }
    }
    out.push_str("</");
    out.push_str(qname);
    out.push('>');
}

fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

fn escape_attr(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c14n(xml: &str, path: &[&str]) -> String {
        let doc = roxmltree::Document::parse(xml).unwrap();
        let mut node = doc.root_element();
        for name in path {
            node = node
                .children()
                .find(|c| c.tag_name().name() == *name)
                .unwrap();
        }
        canonicalize(node, None, &[])
    }

    #[test]
    fn only_visibly_used_namespaces_are_rendered() {
        // The example of the exc-c14n recommendation, section 2.2: the unused `n1` of the
        // ancestor is not rendered, and neither is the inherited `xml:lang`.
        let xml = r#"<n0:local xmlns:n0="foo:bar" xmlns:n3="ftp://example.org" xml:lang="en"><n1:elem2 xmlns:n1="http://example.net" xml:lang="en"><n3:stuff xmlns:n3="ftp://example.org"/></n1:elem2></n0:local>"#;
        assert_eq!(
            c14n(xml, &["elem2"]),
            r#"<n1:elem2 xmlns:n1="http://example.net" xml:lang="en"><n3:stuff xmlns:n3="ftp://example.org"></n3:stuff></n1:elem2>"#
        );
    }

    #[test]
    fn attributes_sort_and_values_escape() {
        let xml = "<r xmlns=\"urn:d\" xmlns:b=\"urn:b\" xmlns:a=\"urn:a\"><e z=\"1\" b:y=\"2\" a:y=\"&#9;&lt;&quot;\" x=\"&amp;\">a &gt; b &amp; c<!-- gone --></e></r>";
        assert_eq!(
            c14n(xml, &["e"]),
            "<e xmlns=\"urn:d\" xmlns:a=\"urn:a\" xmlns:b=\"urn:b\" x=\"&amp;\" z=\"1\" a:y=\"&#x9;&lt;&quot;\" b:y=\"2\">a &gt; b &amp; c</e>"
        );
    }

    #[test]
    fn a_default_namespace_is_undeclared_below_a_default_one() {
        let xml = r#"<r xmlns="urn:d"><e><f xmlns=""/></e></r>"#;
        assert_eq!(
            c14n(xml, &["e"]),
            r#"<e xmlns="urn:d"><f xmlns=""></f></e>"#
        );
        // At the apex nothing was rendered yet, so an element without namespace needs none.
        let xml = r#"<r xmlns="urn:d"><e xmlns=""><f/></e></r>"#;
        assert_eq!(c14n(xml, &["e"]), "<e><f></f></e>");
    }
}
