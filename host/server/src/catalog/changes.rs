//! Making a change take effect: the swap, the record in the store, the audit
//! trail and `plugins.changed` for connected sessions.

use super::*;

impl Catalog {
    /// Swaps `built` in: new runs use it from now on.
    pub(super) async fn commit(
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
    pub(super) async fn reject(
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

    pub(super) async fn activated(&self, version: &Version, actor: &str, action: &str) {
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
    pub(super) fn notify(&self, plugin: &str, change: &str, version: Option<&Version>) {
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
    pub(super) async fn keep(
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

    pub(super) async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: AuditDetail,
    ) {
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
}
