//! The runtime's [`KvStore`] on top of a [`Store`]: the one place the two
//! crates meet, so `netra-store` does not depend on the runtime.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use netra_runtime::{KvError, KvScope, KvStore, KvUsage};
use netra_store::{SqliteStore, Store, StoreError};

type Usage = Arc<Mutex<HashMap<KvScope, KvUsage>>>;

fn lock(usage: &Usage) -> MutexGuard<'_, HashMap<KvScope, KvUsage>> {
    usage.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Applies a write to `scope`'s cached usage, if it is cached (else the
/// next read takes it from the store, write included).
fn adjust(usage: &Usage, scope: &KvScope, change: impl FnOnce(&mut KvUsage)) {
    if let Some(known) = lock(usage).get_mut(scope) {
        change(known);
    }
}

/// The future type of [`KvStore`]'s methods (the runtime does not export its alias).
type KvFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, KvError>> + Send + 'a>>;

/// Serves the `kv` host interface from a store. Every call runs on tokio's
/// blocking pool, so a slow disk never stalls the async workers, and every
/// call is addressed by the [`KvScope`] the host built, never by guest input.
pub struct StoreKv<S: ?Sized = dyn Store> {
    store: Arc<S>,
    /// Each scope's usage, read from the store once and then kept up to date
    /// by this host's writes (all of a scope's writes go through it), so a
    /// quota check costs no scan of the scope.
    usage: Arc<Mutex<HashMap<KvScope, KvUsage>>>,
}

/// The kv of a [`SqliteStore`].
pub type SqliteKv = StoreKv<SqliteStore>;

impl<S: ?Sized> StoreKv<S> {
    /// Serves kv from `store`.
    pub fn new(store: Arc<S>) -> Self {
        Self {
            store,
            usage: Arc::default(),
        }
    }
}

impl<S: Store + ?Sized> StoreKv<S> {
    /// Runs `op` with the store on the blocking pool.
    fn blocking<'a, T: Send + 'static>(
        &self,
        scope: &KvScope,
        key: &str,
        op: impl FnOnce(&S, &str, &str, &str) -> Result<T, StoreError> + Send + 'static,
    ) -> KvFuture<'a, T> {
        let store = self.store.clone();
        let (user, plugin, key) = (scope.user.clone(), scope.plugin.clone(), key.to_owned());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || op(&store, &user, &plugin, &key))
                .await
                .map_err(|err| KvError(format!("kv task failed: {err}")))?
                .map_err(|err| KvError(err.to_string()))
        })
    }
}

impl<S: Store + ?Sized> KvStore for StoreKv<S> {
    fn get<'a>(&'a self, scope: &'a KvScope, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        self.blocking(scope, key, |store, user, plugin, key| {
            store.kv_get(user, plugin, key)
        })
    }

    fn set<'a>(&'a self, scope: &'a KvScope, key: &'a str, value: Vec<u8>) -> KvFuture<'a, ()> {
        let (usage, scoped) = (self.usage.clone(), scope.clone());
        self.blocking(scope, key, move |store, user, plugin, key| {
            let old = store.kv_get(user, plugin, key)?.map(|v| v.len());
            let new = value.len();
            store.kv_set(user, plugin, key, value)?;
            adjust(&usage, &scoped, |u| {
                if old.is_none() {
                    u.keys += 1;
                }
                let before = old.map_or(0, |len| (key.len() + len) as u64);
                u.bytes = (u.bytes + (key.len() + new) as u64).saturating_sub(before);
            });
            Ok(())
        })
    }

    fn delete<'a>(&'a self, scope: &'a KvScope, key: &'a str) -> KvFuture<'a, bool> {
        let (usage, scoped) = (self.usage.clone(), scope.clone());
        self.blocking(scope, key, move |store, user, plugin, key| {
            let old = store.kv_get(user, plugin, key)?.map(|v| v.len());
            let deleted = store.kv_delete(user, plugin, key)?;
            if let (true, Some(len)) = (deleted, old) {
                adjust(&usage, &scoped, |u| {
                    u.keys = u.keys.saturating_sub(1);
                    u.bytes = u.bytes.saturating_sub((key.len() + len) as u64);
                });
            }
            Ok(deleted)
        })
    }

    fn usage<'a>(&'a self, scope: &'a KvScope) -> KvFuture<'a, KvUsage> {
        if let Some(known) = lock(&self.usage).get(scope).copied() {
            return Box::pin(async move { Ok(known) });
        }
        let (usage, scoped) = (self.usage.clone(), scope.clone());
        self.blocking(scope, "", move |store, user, plugin, _| {
            let (keys, bytes) = store.kv_usage(user, plugin)?;
            let read = KvUsage { keys, bytes };
            // A write that raced this read already counted itself in the
            // store's answer; keep the first value cached.
            Ok(*lock(&usage).entry(scoped).or_insert(read))
        })
    }

    fn list_keys<'a>(&'a self, scope: &'a KvScope, prefix: &'a str) -> KvFuture<'a, Vec<String>> {
        // The runtime's interface has no limit; the runtime bounds key sizes.
        self.blocking(scope, prefix, |store, user, plugin, prefix| {
            store.kv_list(user, plugin, prefix, usize::MAX)
        })
    }
}

#[cfg(test)]
mod tests {
    use netra_store::{MemoryStore, StoreOptions};

    use super::*;

    fn scope(user: &str, plugin: &str) -> KvScope {
        KvScope {
            user: user.into(),
            plugin: plugin.into(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_runtime_kv_interface_is_scoped() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            SqliteStore::open(&dir.path().join("netra.db"), StoreOptions::default()).unwrap();
        let kv: Arc<dyn KvStore> = Arc::new(SqliteKv::new(Arc::new(store)));
        let (a, b, x) = (
            scope("alice", "notes"),
            scope("bob", "notes"),
            scope("alice", "x"),
        );
        kv.set(&a, "k1", b"1".to_vec()).await.unwrap();
        kv.set(&a, "k2", b"2".to_vec()).await.unwrap();
        kv.set(&a, "other", b"3".to_vec()).await.unwrap();
        assert_eq!(kv.get(&a, "k1").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(kv.get(&b, "k1").await.unwrap(), None);
        assert_eq!(kv.get(&x, "k1").await.unwrap(), None);
        assert_eq!(kv.list_keys(&a, "k").await.unwrap(), ["k1", "k2"]);
        assert!(kv.list_keys(&b, "").await.unwrap().is_empty());
        assert!(kv.list_keys(&x, "").await.unwrap().is_empty());
        assert!(!kv.delete(&b, "k1").await.unwrap());
        assert!(kv.delete(&a, "k1").await.unwrap());
        assert_eq!(kv.get(&a, "k1").await.unwrap(), None);
        // Usage is read once, then kept up to date by the writes.
        let usage = kv.usage(&a).await.unwrap();
        assert_eq!((usage.keys, usage.bytes), (2, 2 + 1 + 5 + 1));
        kv.set(&a, "k2", b"22".to_vec()).await.unwrap();
        assert_eq!(kv.usage(&a).await.unwrap().bytes, 2 + 2 + 5 + 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn any_store_serves_behind_a_trait_object() {
        let dynamic: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let kv = StoreKv::new(dynamic);
        let (alice, bob) = (scope("alice", "notes"), scope("bob", "notes"));
        kv.set(&alice, "k1", b"1".to_vec()).await.unwrap();
        kv.set(&alice, "k2", b"2".to_vec()).await.unwrap();
        assert_eq!(kv.get(&alice, "k1").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(kv.get(&bob, "k1").await.unwrap(), None);
        assert_eq!(kv.list_keys(&alice, "k").await.unwrap(), ["k1", "k2"]);
        assert!(kv.delete(&alice, "k1").await.unwrap());
        assert!(!kv.delete(&bob, "k2").await.unwrap());
    }
}
