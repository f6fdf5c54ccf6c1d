//! Every version of every plugin, and which one is served: loading at start,
//! hot-loading from the watched plugins directory and the admin API,
//! validation of candidates, atomic swaps, rollback, and the audit trail.
//!
//! A change (a file dropped in, an upload, activate, rollback, enable) is
//! built into a whole candidate — every plugin planned against its grant,
//! loaded (unchanged ones reused), the dependency graph rebuilt — and
//! checked against what is served now. Only a candidate that passes is
//! swapped in, in one step ([`Current::swap`]); runs going keep the plugins
//! they started with, and old instances drain as those runs end. A rejected
//! candidate changes nothing but the audit log.
//!
//! Versions are identified by their content (see [`digest`]). Their bytes
//! are kept in the versions directory (`DATA_DIR/plugins/HEX.wasm` and
//! `HEX.toml`), their records and which one is active in the store, so
//! rollback works after the file in the plugins directory was replaced, and
//! an operator's choice survives a restart.

mod build;
mod candidate;
mod changes;
pub mod plan;
mod restore;
mod version;
mod views;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use netra_config::Config;
use netra_runtime::{KvStore, Plugin, Runtime};
use netra_store::{AuditEntry, PluginState, PluginVersion, Store, StoreError};
use tokio::sync::broadcast;

use crate::deps::{Dependencies, PluginNode};
use crate::health::Health;
use crate::protocol::admin::{
    self as wire, AuditDetail, AuditPage, Changed, PluginChange, PluginInfo, PluginsChanged,
};
use crate::protocol::ready::NodeStatus;
use crate::protocol::timestamp_of;
use crate::registry::Registry;

use crate::runs::{Current, Served};
pub use version::{Version, VersionInfo, digest};
use version::{is_plugin_name, read_version, short, version_info, write_atomic};

/// Largest component an upload may carry.
pub const MAX_UPLOAD_BYTES: usize = 64 << 20;

/// What the catalog works with.
pub struct CatalogSettings {
    /// The configuration: plugins dir, grants, limits, LLM providers.
    pub config: Arc<Config>,
    /// Loads components.
    pub runtime: Runtime,
    /// Keeps versions, which are active, and the audit log.
    pub store: Arc<dyn Store>,
    /// The endpoints' breakers, for the graph.
    pub health: Arc<Health>,
    /// Plugins' key-value storage.
    pub kv: Option<Arc<dyn KvStore>>,
    /// Where versions' contents are kept.
    pub versions_dir: PathBuf,
    /// What the store is, for the graph.
    pub store_note: String,
}

/// Why an admin action did nothing.
#[derive(Debug)]
pub enum AdminError {
    /// No such plugin or version.
    NotFound(String),
    /// Not possible in the current state (deleting the active version).
    Conflict(String),
    /// The candidate failed validation; every reason.
    Rejected {
        /// The plugin.
        plugin: String,
        /// Why.
        reasons: Vec<String>,
    },
    /// The request itself is wrong.
    Invalid(String),
    /// The request is larger than allowed.
    TooLarge(String),
    /// The host failed (store, files).
    Internal(String),
}

impl From<StoreError> for AdminError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Conflict(what) => Self::Conflict(what),
            other => Self::Internal(format!("store: {other}")),
        }
    }
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound(what) => write!(f, "{what} not found"),
            Self::Conflict(what)
            | Self::Invalid(what)
            | Self::TooLarge(what)
            | Self::Internal(what) => f.write_str(what),
            Self::Rejected { plugin, reasons } => {
                write!(f, "{plugin} rejected: {}", reasons.join("; "))
            }
        }
    }
}

/// The plugins served and the versions behind them.
#[derive(Default)]
struct State {
    /// Per plugin: the version served (or that would be, if disabled).
    active: BTreeMap<String, Arc<Version>>,
    /// Plugins an operator disabled.
    disabled: BTreeSet<String>,
    /// Loaded plugins by digest: the active versions and the one before each.
    loaded: HashMap<String, Plugin>,
    /// Per plugin: the version active before the current one, kept loaded.
    previous: BTreeMap<String, String>,
    /// Per plugin: why its last candidate was rejected (cleared by a change).
    rejected: BTreeMap<String, Vec<String>>,
}

/// A candidate built from a [`State`].
struct Built {
    registry: Registry,
    deps: Dependencies,
    nodes: Vec<PluginNode>,
    loaded: HashMap<String, Plugin>,
    /// Per plugin that did not load: why.
    failures: BTreeMap<String, String>,
}

/// The host's plugins: what is served and every version kept.
pub struct Catalog {
    settings: CatalogSettings,
    current: Arc<Current>,
    /// One change at a time.
    state: tokio::sync::Mutex<State>,
    /// `plugins.changed` frames for connected sessions.
    changes: broadcast::Sender<Arc<str>>,
}

/// What [`Catalog::open`] found worth telling the operator.
pub struct Opened {
    /// The catalog.
    pub catalog: Arc<Catalog>,
    /// What new runs are served from.
    pub current: Arc<Current>,
    /// Warnings: plugins not loaded, capability gaps, degraded nodes.
    pub warnings: Vec<String>,
}

impl Catalog {
    /// Frames (`plugins.changed`) for a session to forward.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.changes.subscribe()
    }

    /// What is served from the plugins directory.
    pub fn plugins_dir(&self) -> &Path {
        &self.settings.config.plugins.dir
    }

    /// Validates an uploaded version of `name` and keeps it; with
    /// `activate`, makes it the active one.
    pub async fn upload(
        &self,
        name: &str,
        wasm: Vec<u8>,
        manifest: Option<String>,
        activate: bool,
        actor: &str,
    ) -> Result<(VersionInfo, bool), AdminError> {
        if !is_plugin_name(name) {
            return Err(AdminError::Invalid(format!(
                "{name:?} is not a plugin name (letters, digits, - and _)"
            )));
        }
        let version = Arc::new(Version::new(name, wasm, manifest, "upload"));
        let mut state = self.state.lock().await;
        let mut next = state.active.clone();
        next.insert(name.to_string(), version.clone());
        let built = match self
            .candidate(&state, next.clone(), state.disabled.clone(), name)
            .await
        {
            Ok(built) => built,
            Err(reasons) => {
                return Err(self.reject(&mut state, &version, actor, reasons).await);
            }
        };
        let kind = kind_of(&built, &version);
        self.keep(&version, &kind, actor, false).await?;
        if activate && !state.disabled.contains(name) {
            self.commit(&mut state, next, built, name).await?;
            self.activated(&version, actor, "plugin.upload").await;
        } else {
            self.audit(
                actor,
                "plugin.upload",
                name,
                AuditDetail::Kept {
                    digest: version.digest.clone(),
                    activated: false,
                },
            )
            .await;
        }
        let info = self.version_info_of(&state, &version).await?;
        Ok((info, activate))
    }

    /// Makes `reference` (a digest, a prefix of one, or a manifest version)
    /// the active version of `name`.
    pub async fn activate(
        &self,
        name: &str,
        reference: &str,
        actor: &str,
    ) -> Result<Changed, AdminError> {
        let mut state = self.state.lock().await;
        let record = self.resolve(name, reference).await?;
        self.switch(&mut state, &record, actor, "plugin.activate")
            .await
    }

    /// Makes the version active before the current one active again.
    pub async fn rollback(&self, name: &str, actor: &str) -> Result<Changed, AdminError> {
        let mut state = self.state.lock().await;
        let plugin = name.to_string();
        let versions = self
            .blocking(move |store| store.plugin_versions(Some(&plugin)))
            .await?;
        if versions.is_empty() {
            return Err(AdminError::NotFound(format!("plugin {name:?}")));
        }
        let current = state.active.get(name).map(|v| v.digest.clone());
        let previous = versions
            .iter()
            .filter(|v| Some(&v.digest) != current.as_ref())
            .filter_map(|v| Some((v.activated_at?, v)))
            .max_by_key(|(at, _)| *at)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                AdminError::Conflict(format!("plugin {name} has no earlier active version"))
            })?;
        self.switch(&mut state, &previous, actor, "plugin.rollback")
            .await
    }

    /// Makes the kept version `record` active.
    async fn switch(
        &self,
        state: &mut State,
        record: &PluginVersion,
        actor: &str,
        action: &str,
    ) -> Result<Changed, AdminError> {
        let name = record.plugin.as_str();
        let version = match state.active.get(name) {
            Some(active) if active.digest == record.digest => active.clone(),
            _ => Arc::new(
                read_version(
                    &self.settings.versions_dir,
                    name,
                    &record.digest,
                    &record.source,
                )
                .map_err(|err| AdminError::Internal(err.to_string()))?,
            ),
        };
        let mut next = state.active.clone();
        next.insert(name.to_string(), version.clone());
        if !state.disabled.contains(name) {
            let built = match self
                .candidate(state, next.clone(), state.disabled.clone(), name)
                .await
            {
                Ok(built) => built,
                Err(reasons) => return Err(self.reject(state, &version, actor, reasons).await),
            };
            self.commit(state, next, built, name).await?;
        } else {
            state.active = next;
        }
        self.activated(&version, actor, action).await;
        Ok(Changed {
            plugin: name.to_string(),
            active: Some(self.version_info_of(state, &version).await?),
            enabled: !state.disabled.contains(name),
            degraded: Vec::new(),
        })
    }

    /// Stops serving `name`; what needs it degrades.
    pub async fn disable(&self, name: &str, actor: &str) -> Result<Changed, AdminError> {
        let mut state = self.state.lock().await;
        if !state.active.contains_key(name) {
            return Err(AdminError::NotFound(format!("plugin {name:?}")));
        }
        let mut disabled = state.disabled.clone();
        disabled.insert(name.to_string());
        let before = self.current.get();
        let built = self.build_with(&state, &state.active, &disabled).await;
        let degraded = candidate::newly_degraded(before.deps.as_deref(), &built.deps, name);
        let plugin = name.to_string();
        self.blocking(move |store| store.set_plugin_enabled(&plugin, false))
            .await?;
        state.disabled = disabled;
        let active = state.active.clone();
        self.commit(&mut state, active, built, name).await?;
        self.audit(
            actor,
            "plugin.disable",
            name,
            AuditDetail::Disabled {
                degraded: degraded.clone(),
            },
        )
        .await;
        self.notify(name, "disabled", None);
        Ok(Changed {
            plugin: name.to_string(),
            active: None,
            enabled: false,
            degraded,
        })
    }

    /// Serves `name` again, if its active version still passes validation.
    pub async fn enable(&self, name: &str, actor: &str) -> Result<Changed, AdminError> {
        let mut state = self.state.lock().await;
        let Some(version) = state.active.get(name).cloned() else {
            return Err(AdminError::NotFound(format!("plugin {name:?}")));
        };
        let mut disabled = state.disabled.clone();
        disabled.remove(name);
        let active = state.active.clone();
        let built = match self
            .candidate(&state, active.clone(), disabled.clone(), name)
            .await
        {
            Ok(built) => built,
            Err(reasons) => return Err(self.reject(&mut state, &version, actor, reasons).await),
        };
        let plugin = name.to_string();
        self.blocking(move |store| store.set_plugin_enabled(&plugin, true))
            .await?;
        state.disabled = disabled;
        self.commit(&mut state, active, built, name).await?;
        self.audit(actor, "plugin.enable", name, AuditDetail::Empty {})
            .await;
        self.notify(name, "enabled", Some(&version));
        Ok(Changed {
            plugin: name.to_string(),
            active: Some(self.version_info_of(&state, &version).await?),
            enabled: true,
            degraded: Vec::new(),
        })
    }

    /// Deletes a version that is not active.
    pub async fn delete(
        &self,
        name: &str,
        reference: &str,
        actor: &str,
    ) -> Result<String, AdminError> {
        let state = self.state.lock().await;
        let record = self.resolve(name, reference).await?;
        if state
            .active
            .get(name)
            .is_some_and(|v| v.digest == record.digest)
        {
            return Err(AdminError::Conflict(format!(
                "{} is the active version of {name}; activate another first",
                record.digest
            )));
        }
        let (plugin, digest) = (name.to_string(), record.digest.clone());
        // The kept files are named by content, so another plugin's version
        // can be the same bytes (same component, same or no manifest): they
        // go only when no version of any plugin refers to them any more.
        let mut users = self
            .blocking(move |store| {
                store.delete_plugin_version(&plugin, &digest)?;
                Ok(store
                    .plugin_versions(None)?
                    .into_iter()
                    .filter(|v| v.digest == digest)
                    .map(|v| v.plugin)
                    .collect::<BTreeSet<String>>())
            })
            .await?;
        users.extend(
            state
                .active
                .values()
                .filter(|v| v.digest == record.digest && v.plugin != name)
                .map(|v| v.plugin.clone()),
        );
        if users.is_empty() {
            let hex = record.digest.trim_start_matches("sha256:");
            for ext in ["wasm", "toml"] {
                let _ =
                    std::fs::remove_file(self.settings.versions_dir.join(format!("{hex}.{ext}")));
            }
        }
        self.audit(
            actor,
            "plugin.delete",
            name,
            AuditDetail::Deletion {
                digest: record.digest.clone(),
                files_kept_for: users.into_iter().collect(),
            },
        )
        .await;
        Ok(record.digest)
    }

    /// A file in the plugins directory changed: `name.wasm` (and its
    /// manifest) is a candidate version, validated and activated like an
    /// upload. A file that vanished unloads nothing (disable does).
    pub async fn file_changed(&self, name: &str) {
        let dir = self.plugins_dir().to_path_buf();
        let wasm = match std::fs::read(dir.join(format!("{name}.wasm"))) {
            Ok(wasm) => wasm,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                tracing::info!(
                    plugin = name,
                    "plugin file removed; still served until disabled"
                );
                return;
            }
            Err(err) => {
                tracing::warn!(plugin = name, "cannot read the plugin file: {err}");
                return;
            }
        };
        let manifest = std::fs::read_to_string(dir.join(format!("{name}.toml"))).ok();
        let version = Arc::new(Version::new(name, wasm, manifest, "dir"));
        let mut state = self.state.lock().await;
        if state
            .active
            .get(name)
            .is_some_and(|v| v.digest == version.digest)
        {
            return;
        }
        let mut next = state.active.clone();
        next.insert(name.to_string(), version.clone());
        let built = match self
            .candidate(&state, next.clone(), state.disabled.clone(), name)
            .await
        {
            Ok(built) => built,
            Err(reasons) => {
                let err = self.reject(&mut state, &version, "host", reasons).await;
                tracing::warn!(plugin = name, "dropped-in version rejected: {err}");
                return;
            }
        };
        let kind = kind_of(&built, &version);
        if let Err(err) = self.keep(&version, &kind, "host", false).await {
            tracing::error!(plugin = name, "cannot record the new version: {err}");
            return;
        }
        if state.disabled.contains(name) {
            state.active = next;
        } else if let Err(err) = self.commit(&mut state, next, built, name).await {
            tracing::error!(plugin = name, "cannot activate the new version: {err}");
            return;
        }
        tracing::info!(plugin = name, digest = %version.digest, "new version loaded from the plugins dir");
        self.activated(&version, "host", "plugin.load").await;
    }

    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, AdminError> {
        let store = self.settings.store.clone();
        match tokio::task::spawn_blocking(move || call(&*store)).await {
            Ok(result) => result.map_err(AdminError::from),
            Err(err) => Err(AdminError::Internal(format!("store call failed: {err}"))),
        }
    }
}

fn kind_of(built: &Built, version: &Version) -> String {
    match built.loaded.get(&version.digest) {
        Some(Plugin::Agent(_)) => "agent".into(),
        Some(Plugin::Tool(_)) => "tool".into(),
        None => "unknown".into(),
    }
}

/// What plugins import but are not granted, per plugin.
fn gaps(registry: &Registry) -> BTreeMap<String, Vec<String>> {
    registry
        .agents()
        .map(|a| {
            (
                a.plugin.name().to_string(),
                a.plugin.capability_gaps().to_vec(),
            )
        })
        .chain(registry.tools().map(|t| {
            (
                t.plugin.name().to_string(),
                t.plugin.capability_gaps().to_vec(),
            )
        }))
        .filter(|(_, gaps)| !gaps.is_empty())
        .collect()
}
