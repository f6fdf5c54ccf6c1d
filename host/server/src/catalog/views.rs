//! What the admin API shows: plugins with their versions and state.

use super::*;

impl Catalog {
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
    pub(super) fn statuses(&self) -> BTreeMap<String, NodeStatus> {
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

    /// The record of `version`, marked active if `state` serves it.
    pub(super) async fn version_info_of(
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
    pub(super) async fn resolve(
        &self,
        name: &str,
        reference: &str,
    ) -> Result<PluginVersion, AdminError> {
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
}

/// `name` as the admin API shows it; `statuses` are the served graph's nodes.
pub(super) fn info(
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
