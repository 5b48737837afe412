//! Tenant data keys and the sealing of stored credentials (service-agreement.md SVC-185,
//! SVC-190; response.md 1.21, 1.23, 1.24 "credentials (encrypted at rest)"; docs/security.md).
//!
//! - [`Kek`]: the deployment's key-encryption key (`deployment.key_encryption_key`, required
//!   in SaaS mode, optional when self-hosted). It wraps each tenant's 256-bit data key with
//!   AES-256-GCM; only wrapped keys are stored (`tenant_keys`), and a purge destroys them.
//! - [`DataKey`]: a tenant's data key, unwrapped in memory only. Backups seal whole archives
//!   with it (klaxon-server `backup`); the store seals single column values with it.
//! - A sealed column value is `klxs1:` followed by the hex of nonce, ciphertext and tag. The
//!   associated data names the account, table, column and row, so a sealed value copied into
//!   another row, column or account does not open. The prefix marks values already sealed:
//!   the start-up pass ([`Store::seal_stored_secrets`]) seals clear values left by earlier
//!   versions (or by an installation that had no key-encryption key yet) and skips the rest.
//! - Without a key-encryption key (self-hosted, not configured) values are stored as given.
//!
//! Keys are never cached across calls: each read of a sealed value looks the tenant's key row
//! up, so once a purge destroyed it no node can open the tenant's values again.

use std::collections::HashMap;
use std::fmt::Display;

use klaxon_core::model::Millis;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

use crate::db::Sql;
use crate::purge::TenantKeyRecord;
use crate::rows::{get_i64, get_str};
use crate::{Result, Store, StoreError};

/// Marks a sealed column value (format version 1).
pub const SEALED_PREFIX: &str = "klxs1:";

/// Why a key could not be made, unwrapped or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(String),
    #[error("the data key of account {0} was destroyed by its purge")]
    KeyDestroyed(i64),
    #[error("decryption failed: wrong key, or the sealed data was altered or moved")]
    Decrypt,
}

impl From<KeyError> for StoreError {
    fn from(e: KeyError) -> Self {
        StoreError::Secret(e.to_string())
    }
}

/// The key-encryption key: 32 bytes given as 64 hex digits. Its id is the first 16 hex
/// digits of its SHA-256, so a stored wrapped key names the key that can unwrap it.
#[derive(Clone)]
pub struct Kek {
    key: [u8; 32],
    id: String,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kek({})", self.id)
    }
}

fn aead_key(bytes: &[u8; 32]) -> std::result::Result<LessSafeKey, KeyError> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| KeyError::Invalid("cannot use the key".into()))
}

/// `N` bytes from the system random source.
pub fn random<const N: usize>() -> std::result::Result<[u8; N], KeyError> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| KeyError::Invalid("the system random source failed".into()))?;
    Ok(out)
}

/// AES-256-GCM: nonce || ciphertext || tag.
fn encrypt(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> std::result::Result<Vec<u8>, KeyError> {
    let nonce = random::<NONCE_LEN>()?;
    let mut body = plain.to_vec();
    aead_key(key)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut body,
        )
        .map_err(|_| KeyError::Invalid("encryption failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&body);
    Ok(out)
}

fn decrypt(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> std::result::Result<Vec<u8>, KeyError> {
    if sealed.len() < NONCE_LEN {
        return Err(KeyError::Decrypt);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::Decrypt)?;
    let mut body = body.to_vec();
    let plain = aead_key(key)?
        .open_in_place(nonce, Aad::from(aad), &mut body)
        .map_err(|_| KeyError::Decrypt)?;
    Ok(plain.to_vec())
}

fn wrap_aad(account_id: i64, key_id: &str) -> Vec<u8> {
    format!("klaxon-tenant-key:{account_id}:{key_id}").into_bytes()
}

impl Kek {
    /// Parses 64 hex digits; the error never repeats the value.
    pub fn parse(text: &str) -> std::result::Result<Kek, String> {
        let bytes = hex::decode(text.trim())
            .map_err(|_| "must be 64 hex digits (32 random bytes)".to_string())?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "must be 64 hex digits (32 random bytes)".to_string())?;
        if key.iter().all(|b| *b == 0) {
            return Err("must not be all zeros".into());
        }
        let id = hex::encode(Sha256::digest(key))[..16].to_string();
        Ok(Kek { key, id })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals an operator secret (e.g. the signing key's seed) for storage; `label` names it
    /// and is bound as associated data, so a sealed value does not open under another name.
    pub fn seal_secret(&self, label: &str, plain: &[u8]) -> std::result::Result<String, KeyError> {
        Ok(hex::encode(encrypt(
            &self.key,
            format!("klaxon-operator-secret:{label}").as_bytes(),
            plain,
        )?))
    }

    /// Opens a secret sealed by [`Kek::seal_secret`] under the same label.
    pub fn open_secret(&self, label: &str, sealed: &str) -> std::result::Result<Vec<u8>, KeyError> {
        let body = hex::decode(sealed).map_err(|_| KeyError::Decrypt)?;
        decrypt(
            &self.key,
            format!("klaxon-operator-secret:{label}").as_bytes(),
            &body,
        )
    }

    /// A new random data key for the tenant, wrapped for storage.
    pub fn new_tenant_key(
        &self,
        account_id: i64,
        now: Millis,
    ) -> std::result::Result<TenantKeyRecord, KeyError> {
        let data_key = random::<32>()?;
        let key_id = format!("tk-{account_id}-{}", hex::encode(random::<8>()?));
        let wrapped = encrypt(&self.key, &wrap_aad(account_id, &key_id), &data_key)?;
        Ok(TenantKeyRecord {
            account_id,
            key_id,
            kek_id: self.id.clone(),
            wrapped_key: hex::encode(wrapped),
            created_at: now,
            destroyed_at: 0,
        })
    }

    /// The data key of a stored record.
    pub fn unwrap(&self, rec: &TenantKeyRecord) -> std::result::Result<DataKey, KeyError> {
        if rec.destroyed_at != 0 || rec.wrapped_key.is_empty() {
            return Err(KeyError::KeyDestroyed(rec.account_id));
        }
        if rec.kek_id != self.id {
            return Err(KeyError::Invalid(format!(
                "the data key of account {} is wrapped by key-encryption key {}, not by the \
                 configured {}",
                rec.account_id, rec.kek_id, self.id
            )));
        }
        let wrapped = hex::decode(&rec.wrapped_key).map_err(|_| KeyError::Decrypt)?;
        let plain = decrypt(&self.key, &wrap_aad(rec.account_id, &rec.key_id), &wrapped)?;
        let key: [u8; 32] = plain.try_into().map_err(|_| KeyError::Decrypt)?;
        Ok(DataKey {
            account_id: rec.account_id,
            key_id: rec.key_id.clone(),
            key,
        })
    }
}

/// A tenant's data key, unwrapped (in memory only).
pub struct DataKey {
    pub account_id: i64,
    pub key_id: String,
    key: [u8; 32],
}

impl DataKey {
    /// AES-256-GCM under this key: nonce || ciphertext || tag.
    pub fn encrypt(&self, aad: &[u8], plain: &[u8]) -> std::result::Result<Vec<u8>, KeyError> {
        encrypt(&self.key, aad, plain)
    }

    pub fn decrypt(&self, aad: &[u8], sealed: &[u8]) -> std::result::Result<Vec<u8>, KeyError> {
        decrypt(&self.key, aad, sealed)
    }
}

/// Where a secret column value lives: the associated data it is sealed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSlot {
    pub account_id: i64,
    pub table: &'static str,
    pub column: &'static str,
    pub row_id: String,
}

impl SecretSlot {
    pub fn new(
        account_id: i64,
        table: &'static str,
        column: &'static str,
        row_id: impl Display,
    ) -> SecretSlot {
        SecretSlot {
            account_id,
            table,
            column,
            row_id: row_id.to_string(),
        }
    }

    fn aad(&self) -> Vec<u8> {
        format!(
            "klaxon-secret:1:{}:{}:{}:{}",
            self.account_id, self.table, self.column, self.row_id
        )
        .into_bytes()
    }
}

/// Is this stored value sealed?
pub fn is_sealed_value(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

/// Seals `plain` for `slot` under `key`. No key (sealing is off) or an empty value: stored
/// as given.
pub fn seal_value(
    key: Option<&DataKey>,
    slot: &SecretSlot,
    plain: &str,
) -> std::result::Result<String, KeyError> {
    let Some(key) = key else {
        return Ok(plain.to_string());
    };
    if plain.is_empty() {
        return Ok(String::new());
    }
    if key.account_id != slot.account_id {
        return Err(KeyError::Invalid(format!(
            "the data key of account {} cannot seal a value of account {}",
            key.account_id, slot.account_id
        )));
    }
    let body = key.encrypt(&slot.aad(), plain.as_bytes())?;
    Ok(format!("{SEALED_PREFIX}{}", hex::encode(body)))
}

/// Opens a value sealed by [`seal_value`] for the same slot; a clear value is returned as is.
pub fn open_value(
    key: &DataKey,
    slot: &SecretSlot,
    stored: &str,
) -> std::result::Result<String, KeyError> {
    let Some(body) = stored.strip_prefix(SEALED_PREFIX) else {
        return Ok(stored.to_string());
    };
    if key.account_id != slot.account_id {
        return Err(KeyError::Decrypt);
    }
    let body = hex::decode(body).map_err(|_| KeyError::Decrypt)?;
    let plain = key.decrypt(&slot.aad(), &body)?;
    String::from_utf8(plain).map_err(|_| KeyError::Decrypt)
}

/// The secret columns sealed at rest: table, row id column, columns. Every row also has an
/// `account_id`. Hashed secrets (passwords, APP keys, reset and session tokens) are not here.
/// HTTP-pull headers live inside `integrations.settings` and are sealed as a member of it
/// (`crate::integrations::seal_settings`).
pub const SEALED_COLUMNS: &[(&str, &str, &[&str])] = &[
    (
        "im_integrations",
        "integration_id",
        &["bot_token", "signing_secret", "encrypt_key"],
    ),
    (
        "webhook_integrations",
        "integration_id",
        &["signing_secret", "headers"],
    ),
    ("custom_integrations", "integration_id", &["headers"]),
    (
        "ticket_sync_integrations",
        "integration_id",
        &["secret", "push_token"],
    ),
    (
        "ticket_sync_tokens",
        "integration_id",
        &["access_token", "refresh_token"],
    ),
    ("sso_configs", "account_id", &["secret"]),
    ("mapping_services", "service_id", &["headers"]),
];

/// Opens sealed values for one call, unwrapping each tenant's key once.
pub(crate) struct Opener<'a> {
    store: &'a Store,
    keys: HashMap<i64, DataKey>,
}

impl<'a> Opener<'a> {
    pub(crate) fn new(store: &'a Store) -> Opener<'a> {
        Opener {
            store,
            keys: HashMap::new(),
        }
    }

    /// The clear value of `stored` in `slot`.
    pub(crate) async fn open(&mut self, slot: SecretSlot, stored: &str) -> Result<String> {
        if !is_sealed_value(stored) {
            return Ok(stored.to_string());
        }
        let key = match self.keys.entry(slot.account_id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(self.store.live_data_key(slot.account_id).await?)
            }
        };
        open_value(key, &slot, stored).map_err(|e| {
            StoreError::Secret(format!(
                "{}.{} of row {}: {e}",
                slot.table, slot.column, slot.row_id
            ))
        })
    }

    /// Opens `stored` in place.
    pub(crate) async fn open_in_place(
        &mut self,
        account_id: i64,
        table: &'static str,
        column: &'static str,
        row_id: impl Display,
        stored: &mut String,
    ) -> Result<()> {
        let slot = SecretSlot::new(account_id, table, column, row_id);
        *stored = self.open(slot, stored).await?;
        Ok(())
    }
}

impl Store {
    /// Sealing is on: a key-encryption key is configured.
    pub fn seals_secrets(&self) -> bool {
        self.inner.kek.is_some()
    }

    /// The configured key-encryption key, if any.
    pub fn key_encryption_key(&self) -> Option<&Kek> {
        self.inner.kek.as_ref()
    }

    /// The tenant's data key, created (and stored wrapped) on first use; `None` when no
    /// key-encryption key is configured. Call it before a write transaction begins.
    pub async fn sealing_key(&self, account_id: i64, now: Millis) -> Result<Option<DataKey>> {
        let Some(kek) = &self.inner.kek else {
            return Ok(None);
        };
        let rec = match self.tenant_key(account_id).await? {
            Some(rec) => rec,
            None => {
                self.create_tenant_key(&kek.new_tenant_key(account_id, now)?)
                    .await?
            }
        };
        Ok(Some(kek.unwrap(&rec)?))
    }

    /// The tenant's existing, live data key (to open sealed values).
    async fn live_data_key(&self, account_id: i64) -> Result<DataKey> {
        let Some(kek) = &self.inner.kek else {
            return Err(StoreError::Secret(
                "a sealed value cannot be opened: no key-encryption key is configured \
                 (deployment.key_encryption_key)"
                    .into(),
            ));
        };
        let rec = self
            .tenant_key(account_id)
            .await?
            .ok_or_else(|| StoreError::Secret(format!("account {account_id} has no data key")))?;
        Ok(kek.unwrap(&rec)?)
    }

    /// Opens one sealed value of `slot` (a clear value is returned as is). Fails once the
    /// account's key was destroyed by its purge, and for a value sealed for another slot.
    pub async fn open_secret(&self, slot: SecretSlot, stored: &str) -> Result<String> {
        Opener::new(self).open(slot, stored).await
    }

    /// The start-up pass: seals every clear value of [`SEALED_COLUMNS`] (idempotent: sealed
    /// values are skipped, and a row changed meanwhile is left for the next start). Returns
    /// the number of values sealed; 0 when no key-encryption key is configured.
    pub async fn seal_stored_secrets(&self, now: Millis) -> Result<u64> {
        if self.inner.kek.is_none() {
            return Ok(0);
        }
        let mut sealed = 0;
        for (table, id_col, columns) in SEALED_COLUMNS {
            for column in *columns {
                let rows = {
                    let mut conn = self.inner.read.acquire().await?;
                    // Row ids are integers or text; compared as text, so one pass serves both.
                    // `{}` is an empty header set: nothing to seal.
                    let mut sql = Sql::new(&format!(
                        "SELECT account_id, CAST({id_col} AS TEXT) AS row_id, {column} AS value \
                         FROM {table} WHERE {column} <> '' AND {column} <> '{{}}' \
                         AND {column} NOT LIKE "
                    ));
                    sql.bind(format!("{SEALED_PREFIX}%"));
                    sql.query_on(&conn).fetch_all(&mut *conn).await?
                };
                let mut keys: HashMap<i64, DataKey> = HashMap::new();
                for row in rows {
                    let account_id = get_i64(&row, "account_id")?;
                    let row_id = get_str(&row, "row_id")?;
                    let value = get_str(&row, "value")?;
                    let key = match keys.entry(account_id) {
                        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::hash_map::Entry::Vacant(e) => {
                            let Some(key) = self.sealing_key(account_id, now).await? else {
                                return Ok(sealed);
                            };
                            e.insert(key)
                        }
                    };
                    let slot = SecretSlot::new(account_id, table, column, &row_id);
                    let value_sealed = seal_value(Some(key), &slot, &value)?;
                    let mut conn = self.inner.write.acquire().await?;
                    let mut sql = Sql::new(&format!("UPDATE {table} SET {column} = "));
                    sql.bind(value_sealed)
                        .push(&format!(" WHERE CAST({id_col} AS TEXT) = "))
                        .bind(row_id)
                        .push(" AND account_id = ")
                        .bind(account_id)
                        .push(&format!(" AND {column} = "))
                        .bind(value);
                    sealed += sql
                        .query_on(&conn)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                }
            }
        }
        sealed += self.seal_stored_pull_headers(now).await?;
        Ok(sealed)
    }

    /// The start-up pass for HTTP-pull headers, a member of `integrations.settings`.
    async fn seal_stored_pull_headers(&self, now: Millis) -> Result<u64> {
        let rows = {
            let mut conn = self.inner.read.acquire().await?;
            let sql = Sql::new(
                "SELECT account_id, integration_id, settings FROM integrations \
                 WHERE integration_type = 'http_pull' AND deleted = 0",
            );
            sql.query_on(&conn).fetch_all(&mut *conn).await?
        };
        let mut sealed = 0;
        for row in rows {
            let settings = get_str(&row, "settings")?;
            if !crate::integrations::has_clear_headers(&settings) {
                continue;
            }
            let account_id = get_i64(&row, "account_id")?;
            let integration_id = get_i64(&row, "integration_id")?;
            let key = self.sealing_key(account_id, now).await?;
            let value_sealed = crate::integrations::seal_settings(
                key.as_ref(),
                account_id,
                integration_id,
                &settings,
            )?;
            let mut conn = self.inner.write.acquire().await?;
            let mut sql = Sql::new("UPDATE integrations SET settings = ");
            sql.bind(value_sealed)
                .push(" WHERE integration_id = ")
                .bind(integration_id)
                .push(" AND account_id = ")
                .bind(account_id)
                .push(" AND settings = ")
                .bind(settings);
            sealed += sql
                .query_on(&conn)
                .execute(&mut *conn)
                .await?
                .rows_affected();
        }
        Ok(sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> Kek {
        Kek::parse(&"11".repeat(32)).unwrap()
    }

    #[test]
    fn the_key_encryption_key_must_be_32_bytes_of_hex() {
        assert!(Kek::parse("abc").is_err());
        assert!(Kek::parse(&"00".repeat(32)).is_err());
        assert!(Kek::parse(&"zz".repeat(32)).is_err());
        assert_eq!(kek().id().len(), 16);
    }

    // spec: SVC-185
    #[test]
    fn a_wrapped_key_unwraps_only_with_its_kek_and_not_once_destroyed() {
        let rec = kek().new_tenant_key(7, 1).unwrap();
        assert_eq!(kek().unwrap(&rec).unwrap().account_id, 7);
        let other = Kek::parse(&"22".repeat(32)).unwrap();
        assert!(other.unwrap(&rec).is_err());
        let mut forged = rec.clone();
        forged.account_id = 8;
        assert!(
            kek().unwrap(&forged).is_err(),
            "the account id is authenticated"
        );
        let mut gone = rec;
        gone.wrapped_key.clear();
        gone.destroyed_at = 5;
        assert!(matches!(
            kek().unwrap(&gone),
            Err(KeyError::KeyDestroyed(7))
        ));
    }

    // spec: SVC-185
    #[test]
    fn a_sealed_value_opens_only_in_its_own_slot() {
        let key = kek().unwrap(&kek().new_tenant_key(3, 1).unwrap()).unwrap();
        let slot = SecretSlot::new(3, "im_integrations", "bot_token", 41);
        let sealed = seal_value(Some(&key), &slot, "xoxb-secret").unwrap();
        assert!(is_sealed_value(&sealed));
        assert!(!sealed.contains("xoxb-secret"));
        assert_eq!(open_value(&key, &slot, &sealed).unwrap(), "xoxb-secret");
        for wrong in [
            SecretSlot::new(3, "im_integrations", "bot_token", 42),
            SecretSlot::new(3, "im_integrations", "signing_secret", 41),
            SecretSlot::new(3, "webhook_integrations", "bot_token", 41),
        ] {
            assert_eq!(open_value(&key, &wrong, &sealed), Err(KeyError::Decrypt));
        }
        let other = kek().unwrap(&kek().new_tenant_key(4, 1).unwrap()).unwrap();
        let moved = SecretSlot::new(4, "im_integrations", "bot_token", 41);
        assert_eq!(open_value(&other, &moved, &sealed), Err(KeyError::Decrypt));
        // Clear and empty values pass through; without a key nothing is sealed.
        assert_eq!(open_value(&key, &slot, "clear").unwrap(), "clear");
        assert_eq!(seal_value(Some(&key), &slot, "").unwrap(), "");
        assert_eq!(seal_value(None, &slot, "clear").unwrap(), "clear");
        // Two seals of one value differ (fresh nonce).
        assert_ne!(
            seal_value(Some(&key), &slot, "x").unwrap(),
            seal_value(Some(&key), &slot, "x").unwrap()
        );
    }
}
