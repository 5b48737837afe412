//! Just enough DER to take the public key out of an X.509 certificate from IdP metadata: the
//! certificate is a trust anchor by configuration (its issuer and dates are not what SAML
//! relies on), so only its `SubjectPublicKeyInfo` is read.

/// The key of a certificate, as the signature verifier needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// The PKCS#1 `RSAPublicKey` DER.
    Rsa(Vec<u8>),
    /// The uncompressed point of a P-256 key.
    P256(Vec<u8>),
    /// The uncompressed point of a P-384 key.
    P384(Vec<u8>),
}

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

/// One TLV: its tag, its content and what follows it.
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let bad = || "the certificate is not valid DER".to_string();
    let (&tag, rest) = input.split_first().ok_or_else(bad)?;
    let (&first, rest) = rest.split_first().ok_or_else(bad)?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(bad());
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(bad());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

fn expect(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), String> {
    let (t, content, rest) = tlv(input)?;
    if t != tag {
        return Err(format!(
            "the certificate is not an X.509 certificate (tag {t:#04x} where {tag:#04x} belongs)"
        ));
    }
    Ok((content, rest))
}

/// The public key of a DER X.509 certificate: RSA, or EC on P-256 or P-384.
pub fn certificate_key(der: &[u8]) -> Result<PublicKey, String> {
    const SEQUENCE: u8 = 0x30;
    let (cert, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(cert, SEQUENCE)?;
    let mut rest = tbs;
    // [0] version (optional), serialNumber, signature, issuer, validity, subject.
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    for _ in 0..5 {
        rest = tlv(rest)?.2;
    }
    let (spki, _) = expect(rest, SEQUENCE)?;
    let (algorithm, after) = expect(spki, SEQUENCE)?;
    let (bits, _) = expect(after, 0x03)?;
    let (&unused, key) = bits
        .split_first()
        .ok_or_else(|| "the certificate's key is empty".to_string())?;
    if unused != 0 {
        return Err("the certificate's key is not a whole number of bytes".to_string());
    }
    let (oid, params) = expect(algorithm, 0x06)?;
    if oid == OID_RSA {
        return Ok(PublicKey::Rsa(key.to_vec()));
    }
    if oid == OID_EC {
        let (curve, _) = expect(params, 0x06)?;
        if curve == OID_P256 {
            return Ok(PublicKey::P256(key.to_vec()));
        }
        if curve == OID_P384 {
            return Ok(PublicKey::P384(key.to_vec()));
        }
        return Err("the certificate's EC key is on a curve other than P-256 or P-384".into());
    }
    Err("the certificate's key is neither RSA nor EC".to_string())
}
