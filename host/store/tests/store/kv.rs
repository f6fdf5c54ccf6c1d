use netra_store::Store;

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
