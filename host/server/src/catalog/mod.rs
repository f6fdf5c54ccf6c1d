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

mod candidate;
pub mod plan;
mod version;
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
    /// Loads the plugins: the plugins dir's files, with the versions and
    /// choices the store remembers (an operator's rollback or disable, an
    /// uploaded plugin). A file the store has not seen is a new version and
    /// becomes active. Nothing is rejected at start: what cannot load is
    /// reported, and its dependents degrade.
    pub async fn open(settings: CatalogSettings) -> anyhow::Result<Opened> {
        std::fs::create_dir_all(&settings.versions_dir)?;
        let dir = settings.config.plugins.dir.clone();
        let store = settings.store.clone();
        let (known, states) = tokio::task::spawn_blocking(move || {
            Ok::<_, StoreError>((store.plugin_versions(None)?, store.plugin_states()?))
        })
        .await??;
        let known: BTreeSet<(String, String)> =
            known.into_iter().map(|v| (v.plugin, v.digest)).collect();
        let states: BTreeMap<String, PluginState> =
            states.into_iter().map(|s| (s.plugin.clone(), s)).collect();
        let mut active = BTreeMap::new();
        let mut fresh = Vec::new();
        let mut warnings = Vec::new();
        for (name, manifest) in plan::scan_dir(&dir) {
            let path = dir.join(format!("{name}.wasm"));
            let wasm = match std::fs::read(&path) {
                Ok(wasm) => wasm,
                Err(err) => {
                    warnings.push(format!("{} not read: {err}", path.display()));
                    continue;
                }
            };
            let version = Version::new(&name, wasm, manifest, "dir");
            let seen = known.contains(&(name.clone(), version.digest.clone()));
            let chosen = states.get(&name).and_then(|s| s.active.clone());
            let version = match chosen {
                // An operator chose another version since this file was
                // first seen: keep their choice.
                Some(chosen) if seen && chosen != version.digest => {
                    match read_version(&settings.versions_dir, &name, &chosen, "upload") {
                        Ok(kept) => kept,
                        Err(err) => {
                            warnings.push(format!(
                                "plugin {name}: the active version {chosen} cannot be read ({err}); serving {}",
                                path.display()
                            ));
                            version
                        }
                    }
                }
                _ => version,
            };
            if !seen || states.get(&name).and_then(|s| s.active.as_ref()) != Some(&version.digest) {
                fresh.push(name.clone());
            }
            active.insert(name, Arc::new(version));
        }
        // Plugins only the store knows: uploaded through the admin API.
        for (name, state) in &states {
            if active.contains_key(name) {
                continue;
            }
            if let Some(chosen) = &state.active {
                match read_version(&settings.versions_dir, name, chosen, "upload") {
                    Ok(version) => {
                        active.insert(name.clone(), Arc::new(version));
                    }
                    Err(err) => warnings.push(format!(
                        "plugin {name}: its active version {chosen} cannot be read: {err}"
                    )),
                }
            }
        }
        let disabled = states
            .values()
            .filter(|s| !s.enabled)
            .map(|s| s.plugin.clone())
            .collect();
        let mut state = State {
            active,
            disabled,
            ..State::default()
        };
        let current = Current::new(Served {
            registry: Arc::new(Registry::default()),
            deps: None,
        });
        let (changes, _) = broadcast::channel(64);
        let catalog = Arc::new(Self {
            settings,
            current: current.clone(),
            state: tokio::sync::Mutex::new(State::default()),
            changes,
        });
        let built = catalog.build(&state).await;
        for (name, why) in &built.failures {
            warnings.push(format!("{name} not loaded: {why}"));
        }
        for conflict in built.registry.conflicts() {
            if conflict.kind == "tool" {
                warnings.push(format!(
                    "plugin {}: {}; {} serves it",
                    conflict.ignored,
                    candidate::conflict_reason(conflict, &conflict.kept),
                    conflict.kept
                ));
            }
        }
        for (name, gaps) in gaps(&built.registry) {
            for gap in gaps {
                warnings.push(format!("plugin {name} {gap}"));
            }
        }
        for status in built.deps.statuses() {
            for reason in &status.reasons {
                warnings.push(format!(
                    "{} is {}: {reason}",
                    status.id,
                    status.state.as_str()
                ));
            }
        }
        // Record the new versions, with their contents.
        for name in fresh {
            let Some(version) = state.active.get(&name).cloned() else {
                continue;
            };
            let kind = kind_of(&built, &version);
            if let Err(err) = catalog.keep(&version, &kind, "host", true).await {
                warnings.push(format!("plugin {name}: version not recorded: {err}"));
                continue;
            }
            catalog
                .audit(
                    "host",
                    "plugin.load",
                    &name,
                    AuditDetail::Version {
                        digest: version.digest.clone(),
                        version: version.manifest_version(),
                        source: version.source.clone(),
                        at: Some("start".into()),
                    },
                )
                .await;
        }
        state.loaded = built.loaded;
        current.swap(Served {
            registry: Arc::new(built.registry),
            deps: Some(Arc::new(built.deps)),
        });
        *catalog.state.lock().await = state;
        Ok(Opened {
            catalog,
            current,
            warnings,
        })
    }

    /// Frames (`plugins.changed`) for a session to forward.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.changes.subscribe()
    }

    /// What is served from the plugins directory.
    pub fn plugins_dir(&self) -> &Path {
        &self.settings.config.plugins.dir
    }

    /// Every plugin with its versions.
    pub async fn list(&self) -> Result<Vec<PluginInfo>, AdminError> {
        let state = self.state.lock().await;
        let versions = self.blocking(|store| store.plugin_versions(None)).await?;
        let mut names: BTreeSet<String> = state.active.keys().cloned().collect();
        names.extend(versions.iter().map(|v| v.plugin.clone()));
        names.extend(state.rejected.keys().cloned());
        let statuses = self.statuses();
        Ok(names
            .into_iter()
            .map(|name| info(&state, &statuses, &name, &versions))
            .collect())
    }

    /// One plugin with its versions.
    pub async fn show(&self, name: &str) -> Result<PluginInfo, AdminError> {
        let state = self.state.lock().await;
        let plugin = name.to_string();
        let versions = self
            .blocking(move |store| store.plugin_versions(Some(&plugin)))
            .await?;
        if versions.is_empty()
            && !state.active.contains_key(name)
            && !state.rejected.contains_key(name)
        {
            return Err(AdminError::NotFound(format!("plugin {name:?}")));
        }
        Ok(info(&state, &self.statuses(), name, &versions))
    }

    /// Every node of the served graph, by id.
    fn statuses(&self) -> BTreeMap<String, NodeStatus> {
        self.current
            .get()
            .deps
            .as_ref()
            .map(|deps| {
                deps.statuses()
                    .into_iter()
                    .map(|s| (s.id.clone(), s))
                    .collect()
            })
            .unwrap_or_default()
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

    /// Builds the candidate for a change to `subject` and checks it against
    /// what is served (see [`candidate::verdict`]).
    async fn candidate(
        &self,
        state: &State,
        active: BTreeMap<String, Arc<Version>>,
        disabled: BTreeSet<String>,
        subject: &str,
    ) -> Result<Built, Vec<String>> {
        let built = self.build_with(state, &active, &disabled).await;
        let before = self.current.get();
        candidate::verdict(&built, before.deps.as_deref(), subject).map(|()| built)
    }

    async fn build(&self, state: &State) -> Built {
        self.build_with(state, &state.active, &state.disabled).await
    }

    /// Plans, loads (reusing what `state` has loaded) and graphs `active`.
    async fn build_with(
        &self,
        state: &State,
        active: &BTreeMap<String, Arc<Version>>,
        disabled: &BTreeSet<String>,
    ) -> Built {
        let config = &self.settings.config;
        let origins: Vec<String> = active
            .values()
            .map(|v| match v.source.as_str() {
                "dir" => format!("{}.toml", v.plugin),
                _ => format!("{} ({})", v.plugin, short(&v.digest)),
            })
            .collect();
        let offered: Vec<plan::Offered<'_>> = active
            .values()
            .zip(&origins)
            .map(|(v, origin)| plan::Offered {
                name: &v.plugin,
                manifest: v.manifest.as_deref(),
                origin,
            })
            .collect();
        let mut plan = plan::plan(config, &offered, disabled);
        let grants = plan::grants(config, &plan, self.settings.kv.clone());
        let mut registry = Registry::default();
        let mut loaded = HashMap::new();
        let mut failures = BTreeMap::new();
        for name in plan.order.clone() {
            if plan.skip.contains(&name) {
                continue;
            }
            let Some(version) = active.get(&name) else {
                continue;
            };
            let plugin = match state.loaded.get(&version.digest) {
                Some(plugin) => Ok(plugin.clone()),
                None => {
                    Registry::load_one(
                        &self.settings.runtime,
                        &name,
                        version.wasm.to_vec(),
                        &grants,
                    )
                    .await
                }
            };
            let declared = plan
                .nodes
                .iter()
                .find(|n| n.name == name)
                .and_then(|n| n.kind.clone());
            let outcome = plugin.map_err(|err| format!("failed to load: {err}")).and_then(|plugin| {
                let kind = match &plugin {
                    Plugin::Tool(_) => "tool",
                    Plugin::Agent(_) => "agent",
                };
                match declared.as_deref() {
                    Some(declared) if declared != kind => Err(format!(
                        "its manifest declares kind {declared}, but the component implements the {kind} world"
                    )),
                    _ => Ok(plugin),
                }
            });
            match outcome {
                Ok(plugin) => {
                    loaded.insert(version.digest.clone(), plugin.clone());
                    registry.add(plugin, &grants, Some(version.tag()));
                }
                Err(why) => {
                    if let Some(node) = plan.nodes.iter_mut().find(|n| n.name == name) {
                        node.refused.push(why.clone());
                    }
                    failures.insert(name, why);
                }
            }
        }
        // An agent name two plugins export: the one that did not keep it
        // serves nothing, so it is refused, naming the one that did (a tool
        // plugin whose tool is taken still serves its other tools).
        for conflict in registry.conflicts().iter().filter(|c| c.kind == "agent") {
            let why = candidate::conflict_reason(conflict, &conflict.kept);
            if let Some(node) = plan.nodes.iter_mut().find(|n| n.name == conflict.ignored) {
                node.kind.get_or_insert_with(|| "agent".into());
                node.refused.push(why.clone());
            }
            failures.insert(conflict.ignored.clone(), why);
        }
        // Kinds the manifests did not tell come from the loaded components.
        for node in &mut plan.nodes {
            if node.kind.is_none() {
                if registry.agents().any(|a| a.plugin.name() == node.name) {
                    node.kind = Some("agent".into());
                } else if registry.tools().any(|t| t.plugin.name() == node.name) {
                    node.kind = Some("tool".into());
                }
            }
        }
        let providers = config.llm.keys().cloned().collect();
        let deps = Dependencies::build(
            &registry,
            plan.nodes.clone(),
            &providers,
            self.settings.health.clone(),
            &self.settings.store_note,
        );
        Built {
            registry,
            deps,
            nodes: plan.nodes,
            loaded,
            failures,
        }
    }

    /// Swaps `built` in: new runs use it from now on.
    async fn commit(
        &self,
        state: &mut State,
        active: BTreeMap<String, Arc<Version>>,
        built: Built,
        subject: &str,
    ) -> Result<(), AdminError> {
        if let Some(version) = active.get(subject) {
            let at = SystemTime::now();
            let (plugin, digest) = (subject.to_string(), version.digest.clone());
            self.blocking(move |store| store.activate_plugin_version(&plugin, &digest, at))
                .await?;
        }
        if let (Some(old), Some(new)) = (state.active.get(subject), active.get(subject))
            && old.digest != new.digest
        {
            state
                .previous
                .insert(subject.to_string(), old.digest.clone());
        }
        // Keep the active versions and the one before each loaded.
        let mut keep: BTreeSet<&String> = active.values().map(|v| &v.digest).collect();
        keep.extend(state.previous.values());
        let mut loaded = built.loaded;
        for (digest, plugin) in &state.loaded {
            if keep.contains(digest) && !loaded.contains_key(digest) {
                loaded.insert(digest.clone(), plugin.clone());
            }
        }
        loaded.retain(|digest, _| keep.contains(digest));
        state.loaded = loaded;
        state.active = active;
        state.rejected.remove(subject);
        self.current.swap(Served {
            registry: Arc::new(built.registry),
            deps: Some(Arc::new(built.deps)),
        });
        Ok(())
    }

    /// Records a rejection and says why.
    async fn reject(
        &self,
        state: &mut State,
        version: &Version,
        actor: &str,
        reasons: Vec<String>,
    ) -> AdminError {
        state
            .rejected
            .insert(version.plugin.clone(), reasons.clone());
        self.audit(
            actor,
            "plugin.reject",
            &version.plugin,
            AuditDetail::Rejected {
                digest: version.digest.clone(),
                source: version.source.clone(),
                reasons: reasons.clone(),
            },
        )
        .await;
        AdminError::Rejected {
            plugin: version.plugin.clone(),
            reasons,
        }
    }

    async fn activated(&self, version: &Version, actor: &str, action: &str) {
        self.audit(
            actor,
            action,
            &version.plugin,
            AuditDetail::Version {
                digest: version.digest.clone(),
                version: version.manifest_version(),
                source: version.source.clone(),
                at: None,
            },
        )
        .await;
        self.notify(&version.plugin, "activated", Some(version));
    }

    /// Tells connected sessions.
    fn notify(&self, plugin: &str, change: &str, version: Option<&Version>) {
        let plugin = plugin.to_string();
        let version_label = version.map(|v| v.tag().label);
        let digest = version.map(|v| v.digest.clone());
        let change = match change {
            "disabled" => PluginChange::Disabled {
                plugin,
                version: version_label,
                digest,
            },
            "enabled" => PluginChange::Enabled {
                plugin,
                version: version_label,
                digest,
            },
            _ => PluginChange::Activated {
                plugin,
                version: version_label,
                digest,
            },
        };
        // No session listening is fine.
        let _ = self
            .changes
            .send(Arc::from(PluginsChanged::new(change).to_text()));
    }

    /// Keeps `version`'s content and record (once).
    async fn keep(
        &self,
        version: &Version,
        kind: &str,
        actor: &str,
        activate: bool,
    ) -> Result<(), AdminError> {
        let dir = &self.settings.versions_dir;
        let hex = version.hex();
        write_atomic(&dir.join(format!("{hex}.wasm")), &version.wasm)
            .map_err(|err| AdminError::Internal(format!("cannot keep the version: {err}")))?;
        if let Some(manifest) = &version.manifest {
            write_atomic(&dir.join(format!("{hex}.toml")), manifest.as_bytes())
                .map_err(|err| AdminError::Internal(format!("cannot keep the manifest: {err}")))?;
        }
        let record = PluginVersion {
            plugin: version.plugin.clone(),
            digest: version.digest.clone(),
            version: version.manifest_version(),
            kind: kind.to_string(),
            size: version.wasm.len() as u64,
            source: version.source.to_string(),
            created_at: SystemTime::now(),
            created_by: actor.to_string(),
            activated_at: None,
        };
        let (plugin, digest) = (version.plugin.clone(), version.digest.clone());
        self.blocking(move |store| {
            store.add_plugin_version(&record)?;
            if activate {
                store.activate_plugin_version(&plugin, &digest, SystemTime::now())?;
            }
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// The record of `version`, marked active if `state` serves it.
    async fn version_info_of(
        &self,
        state: &State,
        version: &Version,
    ) -> Result<VersionInfo, AdminError> {
        let (plugin, digest) = (version.plugin.clone(), version.digest.clone());
        let records = self
            .blocking(move |store| store.plugin_versions(Some(&plugin)))
            .await?;
        let active = state.active.get(&version.plugin).map(|v| v.digest.as_str());
        records
            .iter()
            .find(|r| r.digest == digest)
            .map(|r| version_info(r, active))
            .ok_or_else(|| AdminError::NotFound(format!("version {}", version.digest)))
    }

    /// The version of `name` that `reference` names.
    async fn resolve(&self, name: &str, reference: &str) -> Result<PluginVersion, AdminError> {
        let plugin = name.to_string();
        let versions = self
            .blocking(move |store| store.plugin_versions(Some(&plugin)))
            .await?;
        if versions.is_empty() {
            return Err(AdminError::NotFound(format!("plugin {name:?}")));
        }
        let wanted = reference
            .trim()
            .trim_start_matches("sha256:")
            .to_lowercase();
        let matches: Vec<&PluginVersion> = versions
            .iter()
            .filter(|v| {
                let hex = v.digest.trim_start_matches("sha256:");
                (wanted.len() >= 8 && hex.starts_with(&wanted))
                    || v.version.as_deref() == Some(reference.trim())
            })
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(AdminError::NotFound(format!(
                "version {reference:?} of plugin {name}"
            ))),
            many => Err(AdminError::Conflict(format!(
                "{reference:?} names {} versions of {name}; give more of the digest",
                many.len()
            ))),
        }
    }

    async fn audit(&self, actor: &str, action: &str, subject: &str, detail: AuditDetail) {
        let entry = AuditEntry {
            actor: actor.to_string(),
            action: action.to_string(),
            subject: subject.to_string(),
            detail: detail.to_text(),
        };
        if let Err(err) = self.blocking(move |store| store.audit(&entry)).await {
            tracing::error!("cannot write the audit log: {err}");
        }
    }

    /// The newest `limit` audit entries.
    pub async fn audit_entries(&self, limit: usize) -> Result<AuditPage, AdminError> {
        let entries = self
            .blocking(move |store| store.audit_entries(limit))
            .await?;
        let entries: Vec<_> = entries
            .into_iter()
            .map(|record| {
                let detail: serde_json::Value =
                    serde_json::from_str(&record.entry.detail).unwrap_or(serde_json::Value::Null);
                wire::AuditEntry {
                    ts: timestamp_of(record.ts),
                    actor: record.entry.actor,
                    action: record.entry.action,
                    subject: record.entry.subject,
                    detail,
                }
            })
            .collect();
        Ok(AuditPage { entries })
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

/// `name` as the admin API shows it; `statuses` are the served graph's nodes.
fn info(
    state: &State,
    statuses: &BTreeMap<String, NodeStatus>,
    name: &str,
    versions: &[PluginVersion],
) -> PluginInfo {
    let active_digest = state.active.get(name).map(|v| v.digest.clone());
    let versions: Vec<VersionInfo> = versions
        .iter()
        .filter(|v| v.plugin == name)
        .map(|v| version_info(v, active_digest.as_deref()))
        .collect();
    let enabled = !state.disabled.contains(name);
    let status = statuses.get(&format!("plugin.{name}"));
    let (state_name, reasons, kind) = match (&status, enabled) {
        (_, false) => ("disabled".to_string(), Vec::new(), None),
        (Some(status), true) => (
            status.state.as_str().to_string(),
            status.reasons.clone(),
            Some(status.kind.as_str().to_string()),
        ),
        (None, true) => ("refused".to_string(), Vec::new(), None),
    };
    let active = versions.iter().find(|v| v.active).cloned();
    PluginInfo {
        name: name.to_string(),
        kind: active.as_ref().map(|v| v.kind.clone()).or(kind),
        enabled,
        state: state_name,
        reasons,
        active,
        versions,
        last_rejection: state.rejected.get(name).cloned(),
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
