//! Watches the plugins directory and hands each plugin whose files changed
//! to the catalog, once the changes have settled.
//!
//! Only `NAME.wasm` and `NAME.toml` count: a writer that writes a temporary
//! name and renames it into place (the safe way) triggers one change, on
//! the rename. Changes to one plugin within [`DEBOUNCE`] of each other (a
//! component and its manifest, a copy written in pieces) are one candidate.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Catalog;

/// How long a plugin's files must be quiet before it is loaded.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// Starts watching the catalog's plugins directory until `shutdown`.
pub fn spawn(
    catalog: Arc<Catalog>,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, notify::Error> {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                tracing::warn!("plugins dir watch error: {err}");
                return;
            }
        };
        if matches!(event.kind, EventKind::Access(_) | EventKind::Other) {
            return;
        }
        for path in &event.paths {
            if let Some(name) = plugin_of(path) {
                // The receiver is gone only at shutdown.
                let _ = tx.send(name);
            }
        }
    })?;
    watcher.watch(catalog.plugins_dir(), RecursiveMode::NonRecursive)?;
    Ok(tokio::spawn(async move {
        // The watcher lives as long as this task.
        let _watcher = watcher;
        loop {
            let first = tokio::select! {
                name = rx.recv() => match name {
                    Some(name) => name,
                    None => return,
                },
                () = shutdown.cancelled() => return,
            };
            let mut names = BTreeSet::from([first]);
            loop {
                tokio::select! {
                    name = rx.recv() => match name {
                        Some(name) => { names.insert(name); }
                        None => return,
                    },
                    () = tokio::time::sleep(DEBOUNCE) => break,
                    () = shutdown.cancelled() => return,
                }
            }
            for name in names {
                catalog.file_changed(&name).await;
            }
        }
    }))
}

/// The plugin a path in the plugins directory belongs to: `NAME` for
/// `NAME.wasm` and `NAME.toml`; nothing for temporary and hidden files.
fn plugin_of(path: &Path) -> Option<String> {
    let ext = path.extension()?.to_str()?;
    if ext != "wasm" && ext != "toml" {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    if stem.is_empty() || stem.starts_with('.') || stem.contains('.') {
        return None;
    }
    Some(stem.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_components_and_manifests_name_a_plugin() {
        assert_eq!(
            plugin_of(Path::new("/p/helper.wasm")).as_deref(),
            Some("helper")
        );
        assert_eq!(
            plugin_of(Path::new("/p/helper.toml")).as_deref(),
            Some("helper")
        );
        assert_eq!(plugin_of(Path::new("/p/helper.wasm.tmp")), None);
        assert_eq!(plugin_of(Path::new("/p/.helper.wasm")), None);
        assert_eq!(plugin_of(Path::new("/p/helper.v2.wasm")), None);
        assert_eq!(plugin_of(Path::new("/p/helper")), None);
        assert_eq!(plugin_of(Path::new("/p/netra.json")), None);
    }
}
