//! The operator's signing key (service-agreement.md SVC-191; migration 0087): an Ed25519
//! key that signs the evidence the operator hands out — purge certificates — so anyone
//! holding the published public key can check one offline.
//!
//! The key is made once, on first use, from 32 random bytes; only its seed sealed under the
//! key-encryption key is stored (`operator_signing_keys`), with the public key in clear. Two
//! nodes making one at the same moment cannot both win: the first row stays and both use it.
//! The public key is published (`GET /signing-keys`, `klaxon admin signing-key`).
//! `klaxon admin signing-key --rotate` retires the signing key and makes a new one; retired
//! keys stay published, so what they signed still verifies.

use klaxon_core::model::Millis;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sha2::{Digest, Sha256};

use crate::db::Sql;
use crate::rows::{get_i64, get_str};
use crate::sealing::{Kek, KeyError, random};
use crate::{Result, Store};

/// The algorithm every signature names.
pub const ALGORITHM: &str = "ed25519";

/// A published signing key (never the seed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicSigningKey {
    pub key_id: String,
    /// Hex of the 32-byte Ed25519 public key.
    pub public_key: String,
    pub created_at: Millis,
    /// 0 while it signs.
    pub retired_at: Millis,
}

/// The key in memory, able to sign.
pub struct OperatorSigner {
    pair: Ed25519KeyPair,
    pub key_id: String,
    pub public_key: String,
}

impl std::fmt::Debug for OperatorSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OperatorSigner({})", self.key_id)
    }
}

impl OperatorSigner {
    /// Hex of the Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        hex::encode(self.pair.sign(message).as_ref())
    }
}

/// A key's id: the first 16 hex digits of the SHA-256 of its public key.
pub fn key_id(public_key: &[u8]) -> String {
    hex::encode(Sha256::digest(public_key))[..16].to_string()
}

/// Whether `signature` (hex) is `public_key`'s (hex) Ed25519 signature of `message`.
pub fn verify(public_key: &str, message: &[u8], signature: &str) -> bool {
    let (Ok(key), Ok(sig)) = (
        hex::decode(public_key.trim()),
        hex::decode(signature.trim()),
    ) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, key)
        .verify(message, &sig)
        .is_ok()
}

fn pair_from_seed(seed: &[u8]) -> std::result::Result<Ed25519KeyPair, KeyError> {
    Ed25519KeyPair::from_seed_unchecked(seed)
        .map_err(|_| KeyError::Invalid("the stored signing key is not an Ed25519 seed".into()))
}

const COLUMNS: &str = "key_id, public_key, sealed_seed, kek_id, created_at, retired_at";

/// A key just made: the signer, and its seed sealed under the key-encryption key.
struct NewKey {
    signer: OperatorSigner,
    sealed_seed: String,
}

fn new_key(kek: &Kek) -> std::result::Result<NewKey, KeyError> {
    let seed = random::<32>()?;
    let pair = pair_from_seed(&seed)?;
    let public = pair.public_key().as_ref().to_vec();
    let id = key_id(&public);
    let sealed_seed = kek.seal_secret(&format!("signing-key:{id}"), &seed)?;
    Ok(NewKey {
        signer: OperatorSigner {
            pair,
            key_id: id,
            public_key: hex::encode(&public),
        },
        sealed_seed,
    })
}

/// Stores `key` as the signing key, only when no key signs: a second node racing to make
/// the first key leaves the winner's alone.
fn insert_when_none_signs(key: &NewKey, kek: &Kek, now: Millis) -> Sql {
    let mut sql = Sql::new(&format!(
        "INSERT INTO operator_signing_keys ({COLUMNS}) SELECT "
    ));
    sql.bind(key.signer.key_id.as_str())
        .push(", ")
        .bind(key.signer.public_key.as_str())
        .push(", ")
        .bind(key.sealed_seed.as_str())
        .push(", ")
        .bind(kek.id().to_string())
        .push(", ")
        .bind(now)
        .push(", 0 WHERE NOT EXISTS (SELECT 1 FROM operator_signing_keys WHERE retired_at = 0)");
    sql
}

impl Store {
    /// The operator's signing key, made (and stored sealed under `kek`) on first use.
    pub async fn operator_signer(&self, kek: &Kek, now: Millis) -> Result<OperatorSigner> {
        if let Some(s) = self.current_signer(kek).await? {
            return Ok(s);
        }
        let key = new_key(kek)?;
        insert_when_none_signs(&key, kek, now)
            .query()
            .execute(&self.inner.write)
            .await?;
        self.current_signer(kek)
            .await?
            .ok_or_else(|| KeyError::Invalid("the signing key could not be stored".into()).into())
    }

    /// Rotates the signing key: the key that signs now is retired at `now` (it stays
    /// published, so what it signed still verifies) and a new one signs from now on. One
    /// transaction: a failure leaves the old key signing.
    pub async fn rotate_operator_signer(&self, kek: &Kek, now: Millis) -> Result<OperatorSigner> {
        // The current key must open under this KEK: rotating with the wrong key-encryption
        // key would otherwise retire a good key for one that other nodes cannot open.
        self.current_signer(kek).await?;
        let key = new_key(kek)?;
        let mut tx = self.inner.write.begin().await?;
        let mut retire = Sql::new("UPDATE operator_signing_keys SET retired_at = ");
        retire.bind(now).push(" WHERE retired_at = 0");
        retire.query_on(&tx).execute(&mut *tx).await?;
        let insert = insert_when_none_signs(&key, kek, now);
        insert.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(key.signer)
    }

    async fn current_signer(&self, kek: &Kek) -> Result<Option<OperatorSigner>> {
        let sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM operator_signing_keys WHERE retired_at = 0 ORDER BY created_at DESC, key_id LIMIT 1"
        ));
        let Some(row) = sql.query().fetch_optional(&self.inner.write).await? else {
            return Ok(None);
        };
        let id = get_str(&row, "key_id")?;
        if get_str(&row, "kek_id")? != kek.id() {
            return Err(KeyError::Invalid(format!(
                "signing key {id} is sealed under key-encryption key {}, not the configured {}",
                get_str(&row, "kek_id")?,
                kek.id()
            ))
            .into());
        }
        let seed = kek.open_secret(&format!("signing-key:{id}"), &get_str(&row, "sealed_seed")?)?;
        let pair = pair_from_seed(&seed)?;
        let public_key = hex::encode(pair.public_key().as_ref());
        if public_key != get_str(&row, "public_key")? {
            return Err(KeyError::Invalid(format!(
                "signing key {id}: the stored public key does not match its seed"
            ))
            .into());
        }
        Ok(Some(OperatorSigner {
            pair,
            key_id: id,
            public_key,
        }))
    }

    /// Every signing key the operator has had, newest first (public parts only).
    pub async fn operator_signing_keys(&self) -> Result<Vec<PublicSigningKey>> {
        let sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM operator_signing_keys ORDER BY created_at DESC, key_id"
        ));
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        rows.iter()
            .map(|r| {
                Ok(PublicSigningKey {
                    key_id: get_str(r, "key_id")?,
                    public_key: get_str(r, "public_key")?,
                    created_at: get_i64(r, "created_at")?,
                    retired_at: get_i64(r, "retired_at")?,
                })
            })
            .collect()
    }
}
