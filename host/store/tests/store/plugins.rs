//! What only the SQLite store does for plugins: keep them across a restart.
//! Everything it shares with the in-memory store is in `conformance`.

use netra_store::{AuditEntry, PluginState, PluginVersion, SqliteStore, Store, StoreOptions};

use crate::{at, digest, open, plugin_version};

#[test]
fn plugin_versions_and_states_survive_reopening() {
    let (_dir, path, store) = open();
    store
        .add_plugin_version(&plugin_version("helper", 'a', 1_000))
        .unwrap();
    let upload = PluginVersion {
        version: None,
        source: "upload".into(),
        created_by: "admin:root".into(),
        ..plugin_version("helper", 'b', 2_000)
    };
    store.add_plugin_version(&upload).unwrap();
    store
        .activate_plugin_version("helper", &digest('b'), at(3_000))
        .unwrap();
    store.set_plugin_enabled("helper", false).unwrap();
    store.set_plugin_enabled("echo", true).unwrap();
    store
        .audit(&AuditEntry {
            actor: "admin:root".into(),
            action: "plugin.activate".into(),
            subject: "helper".into(),
            detail: r#"{"digest":"b"}"#.into(),
        })
        .unwrap();
    let versions = store.plugin_versions(None).unwrap();
    let audit = store.audit_entries(10).unwrap();
    drop(store);

    let store = SqliteStore::open(&path, StoreOptions::default()).unwrap();
    assert_eq!(
        store.plugin_states().unwrap(),
        [
            PluginState {
                plugin: "echo".into(),
                active: None,
                enabled: true,
            },
            PluginState {
                plugin: "helper".into(),
                active: Some(digest('b')),
                enabled: false,
            },
        ]
    );
    assert_eq!(store.plugin_versions(None).unwrap(), versions);
    assert_eq!(versions[0].activated_at, Some(at(3_000)));
    assert_eq!(store.audit_entries(10).unwrap(), audit);
    // The active version is still protected after the restart.
    assert!(store.delete_plugin_version("helper", &digest('b')).is_err());
}
