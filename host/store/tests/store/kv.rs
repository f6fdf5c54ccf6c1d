use std::sync::Arc;

use netra_runtime::{KvScope, KvStore};
use netra_store::{SqliteKv, Store, StoreKv};

use crate::open;

#[test]
fn kv_is_scoped_to_user_and_plugin() {
    let (_dir, _path, store) = open();
    store
        .kv_set("alice", "notes", "n/1", b"one".to_vec())
        .unwrap();
    store
        .kv_set("alice", "notes", "n/2", b"two".to_vec())
        .unwrap();
    store
        .kv_set("alice", "notes", "o/1", b"other".to_vec())
        .unwrap();
    store
        .kv_set("alice", "todo", "n/1", b"todo".to_vec())
        .unwrap();
    store
        .kv_set("bob", "notes", "n/1", b"bob's".to_vec())
        .unwrap();

    assert_eq!(
        store.kv_get("alice", "notes", "n/1").unwrap().as_deref(),
        Some(&b"one"[..])
    );
    assert_eq!(
        store.kv_get("bob", "notes", "n/1").unwrap().as_deref(),
        Some(&b"bob's"[..])
    );
    assert_eq!(
        store.kv_get("alice", "todo", "n/1").unwrap().as_deref(),
        Some(&b"todo"[..])
    );
    assert_eq!(store.kv_get("bob", "notes", "n/2").unwrap(), None);
    assert_eq!(store.kv_get("bob", "todo", "n/1").unwrap(), None);

    assert_eq!(
        store.kv_list("alice", "notes", "n/", 100).unwrap(),
        ["n/1", "n/2"]
    );
    assert_eq!(
        store.kv_list("alice", "notes", "", 100).unwrap(),
        ["n/1", "n/2", "o/1"]
    );
    assert_eq!(
        store.kv_list("alice", "notes", "", 2).unwrap(),
        ["n/1", "n/2"]
    );
    assert_eq!(store.kv_list("bob", "notes", "", 100).unwrap(), ["n/1"]);
    assert!(store.kv_list("carol", "notes", "", 100).unwrap().is_empty());

    // Overwrite, and delete only within the scope.
    store
        .kv_set("alice", "notes", "n/1", b"uno".to_vec())
        .unwrap();
    assert_eq!(
        store.kv_get("alice", "notes", "n/1").unwrap().as_deref(),
        Some(&b"uno"[..])
    );
    assert!(!store.kv_delete("bob", "notes", "n/2").unwrap());
    assert!(store.kv_delete("bob", "notes", "n/1").unwrap());
    assert_eq!(
        store.kv_get("alice", "notes", "n/1").unwrap().as_deref(),
        Some(&b"uno"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_kv_interface_is_scoped() {
    let (_dir, _path, store) = open();
    let kv: Arc<dyn KvStore> = Arc::new(SqliteKv::new(Arc::new(store)));
    let scope = |user: &str, plugin: &str| KvScope {
        user: user.into(),
        plugin: plugin.into(),
    };
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

    // Any `Store` serves, behind a trait object too.
    let (_dir2, _path2, other) = open();
    let dynamic: Arc<dyn Store> = Arc::new(other);
    let kv = StoreKv::new(dynamic);
    kv.set(&a, "k", b"v".to_vec()).await.unwrap();
    assert_eq!(kv.get(&a, "k").await.unwrap(), Some(b"v".to_vec()));
}
