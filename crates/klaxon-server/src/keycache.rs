//! A short-lived cache of push keys → integrations.
//!
//! Every push resolves its key; at thousands of pushes a second a database read per push
//! would cost a good share of a core. Entries live one second, so a key that is disabled,
//! rotated or deleted (through any node) stops working within a second; misses are not cached,
//! so a new key works at once.

use std::collections::HashMap;
use std::sync::Mutex;

use klaxon_core::model::Millis;
use klaxon_store::{Integration, Store, StoreError};

const TTL_MS: Millis = 1000;
/// Only valid keys are cached, so this bound is reached only by very large installations;
/// the cache is then cleared wholesale rather than tracking recency.
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, (Integration, Millis)>>,
}

impl KeyCache {
    pub async fn integration(
        &self,
        store: &Store,
        key: &str,
        now: Millis,
    ) -> Result<Option<Integration>, StoreError> {
        if let Ok(entries) = self.entries.lock()
            && let Some((integration, at)) = entries.get(key)
            && now - at < TTL_MS
            && now >= *at
        {
            return Ok(Some(integration.clone()));
        }
        let found = store.integration_by_key(key).await?;
        if let (Some(integration), Ok(mut entries)) = (&found, self.entries.lock()) {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(key.to_string(), (integration.clone(), now));
        }
        Ok(found)
    }

    /// Drops the cached entries of one integration, so a delete, disable or key rotation
    /// made through this node takes effect on it at once (other nodes: within the TTL).
    pub fn forget(&self, integration_id: i64) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (i, _)| i.integration_id != integration_id);
        }
    }
}
