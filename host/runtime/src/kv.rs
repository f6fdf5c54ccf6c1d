//! The storage behind the `kv` interface.
//!
//! The host, never the guest, decides the [`KvScope`] of every operation, so a
//! plugin can only name keys inside (its user, itself).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};

/// Whose keys an operation may touch.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KvScope {
    /// The authenticated user of the request.
    pub user: String,
    /// The plugin making the call.
    pub plugin: String,
}

/// A failure of the storage itself (not of the guest's input).
#[derive(Debug, thiserror::Error)]
#[error("key-value store unavailable: {0}")]
pub struct KvError(pub String);

/// What one scope holds: its keys, and their bytes (keys plus values).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvUsage {
    /// Keys.
    pub keys: u64,
    /// Bytes of keys and values.
    pub bytes: u64,
}

/// A boxed future, so the trait stays object safe.
pub type KvFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, KvError>> + Send + 'a>>;

/// A key-value backend. The SQLite store implements it; [`MemoryKv`] serves
/// the CLI and tests.
pub trait KvStore: Send + Sync + 'static {
    /// Reads one key.
    fn get<'a>(&'a self, scope: &'a KvScope, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>>;
    /// Writes one key.
    fn set<'a>(&'a self, scope: &'a KvScope, key: &'a str, value: Vec<u8>) -> KvFuture<'a, ()>;
    /// Deletes one key; returns whether it existed.
    fn delete<'a>(&'a self, scope: &'a KvScope, key: &'a str) -> KvFuture<'a, bool>;
    /// How much the scope holds now.
    fn usage<'a>(&'a self, scope: &'a KvScope) -> KvFuture<'a, KvUsage>;
    /// Lists keys with a prefix, sorted.
    fn list_keys<'a>(&'a self, scope: &'a KvScope, prefix: &'a str) -> KvFuture<'a, Vec<String>>;
}

/// An in-process key-value store; contents are lost when the process exits.
#[derive(Default)]
pub struct MemoryKv {
    map: Mutex<BTreeMap<(KvScope, String), Vec<u8>>>,
}

impl MemoryKv {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<(KvScope, String), Vec<u8>>) -> T) -> T {
        f(&mut self.map.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl KvStore for MemoryKv {
    fn get<'a>(&'a self, scope: &'a KvScope, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        let value = self.with(|map| map.get(&(scope.clone(), key.to_string())).cloned());
        Box::pin(async move { Ok(value) })
    }

    fn set<'a>(&'a self, scope: &'a KvScope, key: &'a str, value: Vec<u8>) -> KvFuture<'a, ()> {
        self.with(|map| map.insert((scope.clone(), key.to_string()), value));
        Box::pin(async { Ok(()) })
    }

    fn delete<'a>(&'a self, scope: &'a KvScope, key: &'a str) -> KvFuture<'a, bool> {
        let existed = self.with(|map| map.remove(&(scope.clone(), key.to_string())).is_some());
        Box::pin(async move { Ok(existed) })
    }

    fn usage<'a>(&'a self, scope: &'a KvScope) -> KvFuture<'a, KvUsage> {
        let usage = self.with(|map| {
            map.range((scope.clone(), String::new())..)
                .take_while(|((s, _), _)| s == scope)
                .fold(KvUsage::default(), |u, ((_, k), v)| KvUsage {
                    keys: u.keys + 1,
                    bytes: u.bytes + (k.len() + v.len()) as u64,
                })
        });
        Box::pin(async move { Ok(usage) })
    }

    fn list_keys<'a>(&'a self, scope: &'a KvScope, prefix: &'a str) -> KvFuture<'a, Vec<String>> {
        let keys = self.with(|map| {
            map.range((scope.clone(), prefix.to_string())..)
                .take_while(|((s, k), _)| s == scope && k.starts_with(prefix))
                .map(|((_, k), _)| k.clone())
                .collect()
        });
        Box::pin(async move { Ok(keys) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(user: &str, plugin: &str) -> KvScope {
        KvScope {
            user: user.into(),
            plugin: plugin.into(),
        }
    }

    #[tokio::test]
    async fn scopes_do_not_see_each_other() {
        let kv = MemoryKv::default();
        let (a, b) = (scope("alice", "notes"), scope("bob", "notes"));
        kv.set(&a, "k1", b"1".to_vec()).await.unwrap();
        kv.set(&a, "k2", b"2".to_vec()).await.unwrap();
        kv.set(&a, "other", b"3".to_vec()).await.unwrap();
        assert_eq!(kv.get(&b, "k1").await.unwrap(), None);
        assert_eq!(kv.list_keys(&a, "k").await.unwrap(), vec!["k1", "k2"]);
        assert!(kv.list_keys(&b, "").await.unwrap().is_empty());
        assert!(!kv.delete(&b, "k1").await.unwrap());
        assert!(kv.delete(&a, "k1").await.unwrap());
        assert_eq!(kv.get(&a, "k1").await.unwrap(), None);
    }
}
