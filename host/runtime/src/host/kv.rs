//! `netra:plugin/kv`: forwards to the [`KvStore`](crate::KvStore) with a scope
//! the host builds from the request, never from guest input.

use crate::bindings::kv::{Host, KvError};
use crate::host::GuestCtx;
use crate::kv::{KvScope, KvStore};

/// Longest key a guest may use, in bytes.
const MAX_KEY: usize = 512;
/// Largest value a guest may store, in bytes.
const MAX_VALUE: usize = 1 << 20;

impl GuestCtx {
    fn kv(&self) -> Result<(&dyn KvStore, KvScope), KvError> {
        let store = self.plugin.kv.as_deref().ok_or_else(|| {
            KvError::Denied(format!("plugin `{}` is not granted kv", self.plugin.name))
        })?;
        let scope = KvScope {
            user: self.user_id.clone(),
            plugin: self.plugin.name.to_string(),
        };
        Ok((store, scope))
    }
}

fn check_key(key: &str) -> Result<(), KvError> {
    if key.len() > MAX_KEY {
        return Err(KvError::TooLarge(format!(
            "key is {} bytes; the limit is {MAX_KEY}",
            key.len()
        )));
    }
    Ok(())
}

fn unavailable(err: crate::kv::KvError) -> KvError {
    KvError::Unavailable(err.0)
}

impl Host for GuestCtx {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, KvError> {
        check_key(&key)?;
        let (store, scope) = self.kv()?;
        store.get(&scope, &key).await.map_err(unavailable)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), KvError> {
        check_key(&key)?;
        if value.len() > MAX_VALUE {
            return Err(KvError::TooLarge(format!(
                "value is {} bytes; the limit is {MAX_VALUE}",
                value.len()
            )));
        }
        let (store, scope) = self.kv()?;
        // The quota of (user, plugin). Checked before the write, so runs of
        // one user writing at once may pass it by what they write together.
        let limits = &self.plugin.limits;
        let usage = store.usage(&scope).await.map_err(unavailable)?;
        let old = store.get(&scope, &key).await.map_err(unavailable)?;
        let (keys, bytes) = match &old {
            // Saturating: a concurrent delete may have shrunk the usage read.
            Some(old) => (
                usage.keys,
                usage.bytes.saturating_sub((key.len() + old.len()) as u64),
            ),
            None => (usage.keys + 1, usage.bytes),
        };
        if keys > limits.kv_max_keys {
            return Err(KvError::TooLarge(format!(
                "quota: this plugin may keep {} keys per user (limits.kv_max_keys)",
                limits.kv_max_keys
            )));
        }
        let after = bytes + (key.len() + value.len()) as u64;
        if after > limits.kv_max_bytes {
            return Err(KvError::TooLarge(format!(
                "quota: this plugin may keep {} bytes per user (limits.kv_max_bytes); this write would make {after}",
                limits.kv_max_bytes
            )));
        }
        store.set(&scope, &key, value).await.map_err(unavailable)
    }

    async fn delete(&mut self, key: String) -> Result<bool, KvError> {
        check_key(&key)?;
        let (store, scope) = self.kv()?;
        store.delete(&scope, &key).await.map_err(unavailable)
    }

    async fn list_keys(&mut self, prefix: String) -> Result<Vec<String>, KvError> {
        check_key(&prefix)?;
        let (store, scope) = self.kv()?;
        store.list_keys(&scope, &prefix).await.map_err(unavailable)
    }
}
