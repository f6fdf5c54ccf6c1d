//! The runtime's [`KvStore`] on top of a [`Store`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use netra_runtime::{KvError, KvScope, KvStore, KvUsage};

use crate::{SqliteStore, Store, StoreError};

/// The future type of [`KvStore`]'s methods (the runtime does not export its alias).
type KvFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, KvError>> + Send + 'a>>;

/// Serves the `kv` host interface from a store. Every call runs on tokio's
/// blocking pool, so a slow disk never stalls the async workers, and every
/// call is addressed by the [`KvScope`] the host built, never by guest input.
pub struct StoreKv<S: ?Sized = dyn Store>(pub Arc<S>);

/// The kv of a [`SqliteStore`].
pub type SqliteKv = StoreKv<SqliteStore>;

impl<S: ?Sized> StoreKv<S> {
    /// Serves kv from `store`.
    pub fn new(store: Arc<S>) -> Self {
        Self(store)
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
        let store = self.0.clone();
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
        self.blocking(scope, key, move |store, user, plugin, key| {
            store.kv_set(user, plugin, key, value)
        })
    }

    fn delete<'a>(&'a self, scope: &'a KvScope, key: &'a str) -> KvFuture<'a, bool> {
        self.blocking(scope, key, |store, user, plugin, key| {
            store.kv_delete(user, plugin, key)
        })
    }

    fn usage<'a>(&'a self, scope: &'a KvScope) -> KvFuture<'a, KvUsage> {
        self.blocking(scope, "", |store, user, plugin, _| {
            let (keys, bytes) = store.kv_usage(user, plugin)?;
            Ok(KvUsage { keys, bytes })
        })
    }

    fn list_keys<'a>(&'a self, scope: &'a KvScope, prefix: &'a str) -> KvFuture<'a, Vec<String>> {
        // The runtime's interface has no limit; the runtime bounds key sizes.
        self.blocking(scope, prefix, |store, user, plugin, prefix| {
            store.kv_list(user, plugin, prefix, usize::MAX)
        })
    }
}
