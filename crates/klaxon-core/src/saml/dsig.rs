//! XML-DSig verification of an enveloped signature (RSP-574: the Response or the Assertion
//! must be signed with a certificate from the IdP metadata). Deliberately narrow, because
//! every freedom of XML-DSig is a known way around it:
//! - the `Signature` is a direct child of the element it signs, and the only one there;
//! - exactly one `Reference`, whose URI is `#` + that element's `ID`, an ID no other element
//!   of the document carries;
//! - transforms: enveloped-signature and exclusive c14n, nothing else (no XPath, no XSLT);
//! - SignedInfo canonicalized with exclusive c14n;
//! - RSA (PKCS#1 v1.5) or ECDSA with SHA-256/384/512; SHA-1 is refused;
//! - the key comes from the metadata's certificates only: a `KeyInfo` in the message is
//!   ignored, so an attacker's embedded certificate proves nothing.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::digest;
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use roxmltree::Node;

use super::c14n::canonicalize;
use super::der::PublicKey;

pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const EXC_C14N_NS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";

/// The signature element of `node`, if `node` carries one (a direct `ds:Signature` child).
pub fn signature_of<'a, 'i>(node: Node<'a, 'i>) -> Vec<Node<'a, 'i>> {
    node.children()
        .filter(|c| c.is_element() && c.has_tag_name((DSIG_NS, "Signature")))
        .collect()
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Result<Node<'a, 'i>, String> {
    let mut found = node
        .children()
        .filter(|c| c.is_element() && c.has_tag_name((DSIG_NS, name)));
    let first = found
        .next()
        .ok_or_else(|| format!("the signature has no {name}"))?;
    if found.next().is_some() {
        return Err(format!("the signature has more than one {name}"));
    }
    Ok(first)
}

fn algorithm<'a>(node: Node<'a, '_>) -> &'a str {
    node.attribute("Algorithm").unwrap_or("")
}

/// The `InclusiveNamespaces PrefixList` of a c14n method or transform.
fn prefix_list(node: Node<'_, '_>) -> Vec<String> {
    node.children()
        .find(|c| c.is_element() && c.has_tag_name((EXC_C14N_NS, "InclusiveNamespaces")))
        .and_then(|n| n.attribute("PrefixList"))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn base64_text(node: Node<'_, '_>, what: &str) -> Result<Vec<u8>, String> {
    let text: String = node
        .text()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD
        .decode(text.as_bytes())
        .map_err(|_| format!("the signature's {what} is not base64"))
}

fn digest_algorithm(uri: &str) -> Result<&'static digest::Algorithm, String> {
    match uri {
        "http://www.w3.org/2001/04/xmlenc#sha256" => Ok(&digest::SHA256),
        "http://www.w3.org/2001/04/xmldsig-more#sha384" => Ok(&digest::SHA384),
        "http://www.w3.org/2001/04/xmlenc#sha512" => Ok(&digest::SHA512),
        "http://www.w3.org/2000/09/xmldsig#sha1" => {
            Err("the signature digests with SHA-1, which is refused; use SHA-256".to_string())
        }
        other => Err(format!("the digest method {other:?} is not supported")),
    }
}

pub(crate) fn signature_algorithm(
    uri: &str,
    key: &PublicKey,
) -> Result<Option<&'static dyn VerificationAlgorithm>, String> {
    let alg: &'static dyn VerificationAlgorithm = match (uri, key) {
        ("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", PublicKey::Rsa(_)) => {
            &signature::RSA_PKCS1_2048_8192_SHA256
        }
        ("http://www.w3.org/2001/04/xmldsig-more#rsa-sha384", PublicKey::Rsa(_)) => {
            &signature::RSA_PKCS1_2048_8192_SHA384
        }
        ("http://www.w3.org/2001/04/xmldsig-more#rsa-sha512", PublicKey::Rsa(_)) => {
            &signature::RSA_PKCS1_2048_8192_SHA512
        }
        ("http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256", PublicKey::P256(_)) => {
            &signature::ECDSA_P256_SHA256_FIXED
        }
        ("http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384", PublicKey::P384(_)) => {
            &signature::ECDSA_P384_SHA384_FIXED
        }
        ("http://www.w3.org/2000/09/xmldsig#rsa-sha1", _) => {
            return Err(
                "the message is signed with RSA-SHA1, which is refused; use RSA-SHA256".into(),
            );
        }
        (
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
            | "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
            | "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
            | "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
            | "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
            _,
        ) => return Ok(None),
        (other, _) => return Err(format!("the signature method {other:?} is not supported")),
    };
    Ok(Some(alg))
}

/// Verifies that `signed` carries a valid enveloped signature by one of `keys`.
pub fn verify_enveloped(signed: Node<'_, '_>, keys: &[PublicKey]) -> Result<(), String> {
    let signatures = signature_of(signed);
    let sig = match signatures.as_slice() {
        [one] => *one,
        [] => return Err("not signed".to_string()),
        _ => return Err("carries more than one signature".to_string()),
    };
    let id = signed
        .attribute("ID")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| "the signed element has no ID".to_string())?;
    let same_id = signed
        .document()
        .descendants()
        .filter(|n| n.is_element() && n.attribute("ID") == Some(id))
        .count();
    if same_id != 1 {
        return Err(format!(
            "the ID {id:?} is carried by {same_id} elements; it must be unique"
        ));
    }
    let signed_info = child(sig, "SignedInfo")?;
    let c14n_method = child(signed_info, "CanonicalizationMethod")?;
    if algorithm(c14n_method) != EXC_C14N {
        return Err(format!(
            "the signature is canonicalized with {:?}; only exclusive c14n is accepted",
            algorithm(c14n_method)
        ));
    }
    let method = algorithm(child(signed_info, "SignatureMethod")?).to_string();
    let reference = child(signed_info, "Reference")?;
    if reference.attribute("URI") != Some(format!("#{id}").as_str()) {
        return Err("the signature's reference is not the signed element".to_string());
    }
    let mut enveloped = false;
    let mut inclusive = Vec::new();
    if let Ok(transforms) = child(reference, "Transforms") {
        for t in transforms.children().filter(|c| c.is_element()) {
            if !t.has_tag_name((DSIG_NS, "Transform")) {
                return Err("the signature's transforms hold something else".to_string());
            }
            match algorithm(t) {
                ENVELOPED => enveloped = true,
                EXC_C14N => inclusive = prefix_list(t),
                other => {
                    return Err(format!(
                        "the signature uses the transform {other:?}; only enveloped-signature and exclusive c14n are accepted"
                    ));
                }
            }
        }
    }
    if !enveloped {
        return Err("the signature is not an enveloped signature".to_string());
    }
    let digest_alg = digest_algorithm(algorithm(child(reference, "DigestMethod")?))?;
    let expected = base64_text(child(reference, "DigestValue")?, "DigestValue")?;
    let content = canonicalize(signed, Some(sig.id()), &inclusive);
    let actual = digest::digest(digest_alg, content.as_bytes());
    if actual.as_ref() != expected.as_slice() {
        return Err("the signed content was changed (digest mismatch)".to_string());
    }
    let info = canonicalize(signed_info, None, &prefix_list(c14n_method));
    let value = base64_text(child(sig, "SignatureValue")?, "SignatureValue")?;
    let mut usable = false;
    for key in keys {
        let Some(alg) = signature_algorithm(&method, key)? else {
            continue;
        };
        usable = true;
        let bytes = match key {
            PublicKey::Rsa(b) | PublicKey::P256(b) | PublicKey::P384(b) => b,
        };
        if UnparsedPublicKey::new(alg, bytes)
            .verify(info.as_bytes(), &value)
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
    Err("the signature is not by a certificate of the IdP metadata".to_string())
}
