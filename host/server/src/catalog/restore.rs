//! Restoring the catalog at start: the plugins dir's files with the versions
//! and choices the store remembers.

use super::*;

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
}
