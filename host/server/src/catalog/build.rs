//! Building a candidate set: planning grants, loading (reusing what is
//! loaded), graphing, and checking it with [`super::candidate::verdict`].

use super::*;

impl Catalog {
    /// Builds the candidate for a change to `subject` and checks it against
    /// what is served (see [`candidate::verdict`]).
    pub(super) async fn candidate(
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

    pub(super) async fn build(&self, state: &State) -> Built {
        self.build_with(state, &state.active, &state.disabled).await
    }

    /// Plans, loads (reusing what `state` has loaded) and graphs `active`.
    pub(super) async fn build_with(
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
}
