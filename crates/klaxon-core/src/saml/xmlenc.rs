//! XML Encryption of the assertion (RSP-574): an IdP may send the assertion as an
//! `EncryptedAssertion`, readable only with the SP's private key. What is accepted:
//! - key transport: RSA-OAEP (`rsa-oaep-mgf1p`, or XML Encryption 1.1 `rsa-oaep` with its
//!   digest and MGF1 hash), with the `EncryptedKey` inside the `EncryptedData`'s `KeyInfo` or
//!   beside it in the `EncryptedAssertion`. RSA PKCS#1 v1.5 (`rsa-1_5`) is refused by name:
//!   an endpoint that decrypts it for anyone who posts a response is a padding oracle
//!   (Bleichenbacher; XML Encryption 1.1 deprecates it), and the RSA implementation's
//!   decryption is not constant-time;
//! - content: AES-128/256-CBC or AES-128/256-GCM; Triple-DES is refused.
//!
//! Decryption proves nothing about who wrote the assertion (the SP's certificate is public):
//! the decrypted assertion is verified exactly as a plain one (see [`super::response`]).
//! Every failure to unwrap the key or the content answers the same message, so the answer
//! does not tell a padding error from another.

use aes::{Aes128, Aes256};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, KeyIvInit};
use ring::aead;
use roxmltree::Node;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use sha2::digest::DynDigest;
use sha2::{Sha256, Sha384, Sha512};

use super::der::{PublicKey, certificate_key};
use super::dsig::DSIG_NS;

pub const XENC_NS: &str = "http://www.w3.org/2001/04/xmlenc#";
pub const XENC11_NS: &str = "http://www.w3.org/2009/xmlenc11#";
const ELEMENT_TYPE: &str = "http://www.w3.org/2001/04/xmlenc#Element";
const RSA_1_5: &str = "http://www.w3.org/2001/04/xmlenc#rsa-1_5";
const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
const RSA_OAEP_11: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";
/// The one message of every failure to decrypt (see the module documentation).
const UNREADABLE: &str = "the encrypted assertion cannot be decrypted with the SP's encryption key (is the IdP using the certificate of Klaxon's SP metadata?)";
/// The `SigAlg` of what the SP signs.
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
/// The smallest SP key accepted, in bits.
pub const MIN_KEY_BITS: usize = 2048;

/// The SP's decryption key.
#[derive(Clone)]
pub struct SpKey(RsaPrivateKey);

impl std::fmt::Debug for SpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpKey(..)")
    }
}

impl SpKey {
    /// An RSA private key in PEM: PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1
    /// (`BEGIN RSA PRIVATE KEY`), unencrypted, at least [`MIN_KEY_BITS`].
    pub fn from_pem(pem: &str) -> Result<SpKey, String> {
        let pem = pem.trim();
        let key = if pem.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
            RsaPrivateKey::from_pkcs1_pem(pem).map_err(|e| format!("not an RSA key: {e}"))?
        } else if pem.starts_with("-----BEGIN PRIVATE KEY-----") {
            RsaPrivateKey::from_pkcs8_pem(pem)
                .map_err(|e| format!("not an RSA key in PKCS#8: {e}"))?
        } else if pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err("the key is protected by a passphrase; give it unencrypted".to_string());
        } else {
            return Err(
                "must be an RSA private key in PEM (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)"
                    .to_string(),
            );
        };
        if key.size() * 8 < MIN_KEY_BITS {
            return Err(format!(
                "the RSA key must have at least {MIN_KEY_BITS} bits"
            ));
        }
        Ok(SpKey(key))
    }

    /// RSA PKCS#1 v1.5 with SHA-256 over `data`: the `Signature` of an HTTP-Redirect message
    /// (SAML bindings §3.4.4.1, `SigAlg` [`RSA_SHA256`]). The SP key pair both decrypts
    /// assertions and signs what the SP sends.
    pub fn sign_rsa_sha256(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        use sha2::Digest;
        // DigestInfo prefix of SHA-256 (RFC 8017 §9.2, note 1).
        const PREFIX: [u8; 19] = [
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ];
        let mut info = PREFIX.to_vec();
        info.extend_from_slice(&Sha256::digest(data));
        self.0
            .sign(rsa::Pkcs1v15Sign::new_unprefixed(), &info)
            .map_err(|e| format!("cannot sign with the SP key: {e}"))
    }

    /// Whether the certificate (DER) carries this key's public half.
    pub fn matches_certificate(&self, der: &[u8]) -> bool {
        match certificate_key(der) {
            Ok(PublicKey::Rsa(pkcs1)) => RsaPublicKey::from_pkcs1_der(&pkcs1)
                .is_ok_and(|public| public == self.0.to_public_key()),
            _ => false,
        }
    }
}

/// The DER of a certificate in PEM (`BEGIN CERTIFICATE`) or bare base64.
pub fn certificate_der(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    let body = match text.strip_prefix("-----BEGIN CERTIFICATE-----") {
        Some(rest) => rest.split("-----END CERTIFICATE-----").next().unwrap_or(""),
        None => text,
    };
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| "must be an X.509 certificate in PEM (BEGIN CERTIFICATE)".to_string())?;
    certificate_key(&der)?;
    Ok(der)
}

fn children<'a, 'i>(node: Node<'a, 'i>, ns: &str, name: &str) -> Vec<Node<'a, 'i>> {
    node.children()
        .filter(|c| c.is_element() && c.has_tag_name((ns, name)))
        .collect()
}

fn one<'a, 'i>(node: Node<'a, 'i>, ns: &str, name: &str) -> Result<Node<'a, 'i>, String> {
    match children(node, ns, name).as_slice() {
        [one] => Ok(*one),
        [] => Err(format!("the encrypted assertion has no {name}")),
        _ => Err(format!("the encrypted assertion has more than one {name}")),
    }
}

fn algorithm<'a>(node: Node<'a, '_>) -> &'a str {
    node.attribute("Algorithm").unwrap_or("")
}

fn cipher_value(node: Node<'_, '_>) -> Result<Vec<u8>, String> {
    let data = one(node, XENC_NS, "CipherData")?;
    if !children(data, XENC_NS, "CipherReference").is_empty() {
        return Err("the encrypted assertion refers to its cipher text elsewhere (CipherReference), which is not supported".to_string());
    }
    let value = one(data, XENC_NS, "CipherValue")?;
    let text: String = value
        .text()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD
        .decode(text.as_bytes())
        .map_err(|_| "the encrypted assertion's CipherValue is not base64".to_string())
}

/// The content algorithms: (key length, GCM or CBC).
fn content_algorithm(uri: &str) -> Result<(usize, bool), String> {
    match uri {
        "http://www.w3.org/2001/04/xmlenc#aes128-cbc" => Ok((16, false)),
        "http://www.w3.org/2001/04/xmlenc#aes256-cbc" => Ok((32, false)),
        "http://www.w3.org/2009/xmlenc11#aes128-gcm" => Ok((16, true)),
        "http://www.w3.org/2009/xmlenc11#aes256-gcm" => Ok((32, true)),
        "http://www.w3.org/2001/04/xmlenc#tripledes-cbc" => Err(
            "the assertion is encrypted with Triple-DES, which is refused; use AES-GCM or AES-CBC"
                .to_string(),
        ),
        other => Err(format!(
            "the assertion's encryption method {other:?} is not supported"
        )),
    }
}

fn boxed_digest(uri: &str) -> Result<Box<dyn DynDigest + Send + Sync>, String> {
    Ok(match uri {
        "" | "http://www.w3.org/2000/09/xmldsig#sha1" => Box::new(sha1::Sha1::default()),
        "http://www.w3.org/2001/04/xmlenc#sha256" => Box::new(Sha256::default()),
        "http://www.w3.org/2001/04/xmldsig-more#sha384" => Box::new(Sha384::default()),
        "http://www.w3.org/2001/04/xmlenc#sha512" => Box::new(Sha512::default()),
        other => return Err(format!("the OAEP digest {other:?} is not supported")),
    })
}

fn mgf_digest(uri: &str) -> Result<Box<dyn DynDigest + Send + Sync>, String> {
    boxed_digest(match uri {
        "" | "http://www.w3.org/2009/xmlenc11#mgf1sha1" => "",
        "http://www.w3.org/2009/xmlenc11#mgf1sha256" => "http://www.w3.org/2001/04/xmlenc#sha256",
        "http://www.w3.org/2009/xmlenc11#mgf1sha384" => {
            "http://www.w3.org/2001/04/xmldsig-more#sha384"
        }
        "http://www.w3.org/2009/xmlenc11#mgf1sha512" => "http://www.w3.org/2001/04/xmlenc#sha512",
        other => {
            return Err(format!(
                "the OAEP mask generation {other:?} is not supported"
            ));
        }
    })
}

/// How an `EncryptedKey` was wrapped.
/// RSA-OAEP key transport: its digest and MGF1 hash algorithm URIs (empty: SHA-1).
struct Transport {
    digest: String,
    mgf: String,
}

fn transport(encrypted_key: Node<'_, '_>) -> Result<Transport, String> {
    let method = one(encrypted_key, XENC_NS, "EncryptionMethod")?;
    let digest = children(method, DSIG_NS, "DigestMethod")
        .first()
        .map(|d| algorithm(*d).to_string())
        .unwrap_or_default();
    if children(method, XENC_NS, "OAEPparams")
        .iter()
        .any(|p| !p.text().unwrap_or("").trim().is_empty())
    {
        return Err("the encrypted key uses OAEP parameters, which are not supported".to_string());
    }
    match algorithm(method) {
        RSA_1_5 => Err(
            "the assertion's key transport rsa-1_5 (RSA PKCS#1 v1.5) is refused: it is open to \
             padding-oracle attacks; set the IdP to encrypt the key with RSA-OAEP"
                .to_string(),
        ),
        RSA_OAEP_MGF1P => Ok(Transport {
            digest,
            mgf: String::new(),
        }),
        RSA_OAEP_11 => Ok(Transport {
            digest,
            mgf: children(method, XENC11_NS, "MGF")
                .first()
                .map(|m| algorithm(*m).to_string())
                .unwrap_or_default(),
        }),
        other => Err(format!(
            "the assertion's key transport {other:?} is not supported; use RSA-OAEP"
        )),
    }
}

fn unwrap_key(encrypted_key: Node<'_, '_>, key: &SpKey) -> Result<Vec<u8>, String> {
    let Transport { digest, mgf } = transport(encrypted_key)?;
    let wrapped = cipher_value(encrypted_key)?;
    let padding = Oaep {
        digest: boxed_digest(&digest)?,
        mgf_digest: mgf_digest(&mgf)?,
        label: None,
    };
    key.0
        .decrypt(padding, &wrapped)
        .map_err(|_| UNREADABLE.to_string())
}

fn decrypt_cbc(key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < 32 || !data.len().is_multiple_of(16) {
        return None;
    }
    let (iv, cipher) = data.split_at(16);
    let mut buf = cipher.to_vec();
    let plain_len = match key.len() {
        16 => cbc::Decryptor::<Aes128>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .ok()?
            .len(),
        32 => cbc::Decryptor::<Aes256>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .ok()?
            .len(),
        _ => return None,
    };
    buf.truncate(plain_len);
    // XML Encryption padding: the last byte counts the padding bytes (1 to 16), whose other
    // values are arbitrary.
    let pad = usize::from(*buf.last()?);
    if pad == 0 || pad > 16 || pad > buf.len() {
        return None;
    }
    buf.truncate(buf.len() - pad);
    Some(buf)
}

fn decrypt_gcm(key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    const NONCE: usize = 12;
    if data.len() < NONCE + aead::AES_128_GCM.tag_len() {
        return None;
    }
    let alg = match key.len() {
        16 => &aead::AES_128_GCM,
        32 => &aead::AES_256_GCM,
        _ => return None,
    };
    let (nonce, sealed) = data.split_at(NONCE);
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(alg, key).ok()?);
    let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buf = sealed.to_vec();
    let plain_len = key
        .open_in_place(nonce, aead::Aad::empty(), &mut buf)
        .ok()?
        .len();
    buf.truncate(plain_len);
    Some(buf)
}

/// Decrypts an `EncryptedAssertion` with the SP's keys: the assertion's XML text.
pub fn decrypt_assertion(encrypted: Node<'_, '_>, keys: &[SpKey]) -> Result<String, String> {
    let data = one(encrypted, XENC_NS, "EncryptedData")?;
    if let Some(kind) = data.attribute("Type")
        && kind != ELEMENT_TYPE
    {
        return Err(format!(
            "the encrypted assertion is of type {kind:?}, not an element"
        ));
    }
    let (key_len, gcm) = content_algorithm(algorithm(one(data, XENC_NS, "EncryptionMethod")?))?;
    let cipher = cipher_value(data)?;
    let mut wrapped_keys = Vec::new();
    for info in children(data, DSIG_NS, "KeyInfo") {
        wrapped_keys.extend(children(info, XENC_NS, "EncryptedKey"));
    }
    wrapped_keys.extend(children(encrypted, XENC_NS, "EncryptedKey"));
    if wrapped_keys.is_empty() {
        return Err("the encrypted assertion carries no EncryptedKey".to_string());
    }
    if keys.is_empty() {
        return Err(
            "the assertion is encrypted, but no SP encryption key is configured (saml.sp_private_key)"
                .to_string(),
        );
    }
    for wrapped in wrapped_keys {
        for key in keys {
            let Ok(content_key) = unwrap_key(wrapped, key) else {
                // An unsupported method is worth telling; a failed unwrap is not.
                transport(wrapped)?;
                continue;
            };
            if content_key.len() != key_len {
                continue;
            }
            let plain = if gcm {
                decrypt_gcm(&content_key, &cipher)
            } else {
                decrypt_cbc(&content_key, &cipher)
            };
            if let Some(plain) = plain {
                return String::from_utf8(plain)
                    .map_err(|_| "the decrypted assertion is not UTF-8".to_string());
            }
        }
    }
    Err(UNREADABLE.to_string())
}
