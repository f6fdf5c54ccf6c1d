//! What the operator decides for a plugin (its grant, limits and memory
//! strategy) and what every store of a loaded plugin shares, read-only.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::Component;

use crate::allowlist::Allowlist;
use crate::config::Limits;
use crate::error::LoadError;
use crate::kv::KvStore;

/// Longest tool name.
pub(crate) const MAX_TOOL_NAME: usize = 64;

/// Which world a component implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum World {
    /// `netra:plugin/tool-plugin`.
    Tool,
    /// `netra:plugin/agent-plugin`.
    Agent,
}

impl World {
    /// The world's WIT name.
    pub fn wit_name(self) -> &'static str {
        match self {
            World::Tool => "netra:plugin/tool-plugin@0.1.0",
            World::Agent => "netra:plugin/agent-plugin@0.1.0",
        }
    }
}

/// What the operator decided for one plugin.
#[derive(Clone)]
pub struct PluginSettings {
    /// The plugin's name (used in logs and to scope kv).
    pub name: String,
    /// Limits of each of its stores; `None` uses the runtime's defaults.
    pub limits: Option<Limits>,
    /// Values the plugin reads through the `config` interface.
    pub config: BTreeMap<String, String>,
    /// Its key-value backend; `None` means kv is not granted.
    pub kv: Option<Arc<dyn KvStore>>,
    /// What it may see of the host through WASI: nothing by default.
    pub sandbox: Sandbox,
    /// How its instances get their memory; `None` picks by the component
    /// ([`MemoryInit::for_component`]).
    pub memory_init: Option<MemoryInit>,
}

impl PluginSettings {
    /// Settings with nothing granted and default limits.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            limits: None,
            config: BTreeMap::new(),
            kv: None,
            sandbox: Sandbox::default(),
            memory_init: None,
        }
    }
}

/// The part of the host a plugin may see through WASI. The default is
/// nothing: no environment, no directories, no network (and never sockets).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sandbox {
    /// Environment variables it sees, with their values.
    pub env: Vec<(String, String)>,
    /// Directories it sees.
    pub dirs: Vec<DirGrant>,
    /// Hosts it may send HTTP requests to (wasi:http): `api.example.com`
    /// (that name, any port), `*.example.com` (any name under it, not the
    /// name itself), `127.0.0.1:8081` or `[::1]:8080` (that port only).
    /// Requests to any other host fail with `HTTP-request-denied`.
    pub network: Vec<String>,
}

/// A host directory a plugin sees at a path of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: std::path::PathBuf,
    /// Where the plugin sees it (an absolute path).
    pub guest: String,
    /// Whether it may create, change and delete files in it (else read-only).
    pub writable: bool,
}

impl Sandbox {
    /// Checks that every granted directory exists and is a directory, and
    /// parses the network grant.
    pub(crate) fn check(&self) -> Result<Allowlist, LoadError> {
        for dir in &self.dirs {
            match std::fs::metadata(&dir.host) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(LoadError::Io(format!(
                        "granted directory {} is not a directory",
                        dir.host.display()
                    )));
                }
                Err(err) => {
                    return Err(LoadError::Io(format!(
                        "granted directory {}: {err}",
                        dir.host.display()
                    )));
                }
            }
        }
        Allowlist::parse(&self.network).map_err(LoadError::Io)
    }
}

/// How a plugin's fresh instances get their initial linear memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemoryInit {
    /// Map the component's memory image copy-on-write: instantiation is
    /// nearly free and a call pays one page fault per page it first writes.
    /// Best for components whose calls write few pages (Rust, JavaScript).
    Map,
    /// Copy the memory image into the instance's own memory when it is
    /// created: instantiation costs a copy of the image (done ahead of the
    /// request when instances are prepared) and calls then fault nothing.
    /// Best for runtimes whose every call writes across the heap (CPython's
    /// reference counts).
    Copy,
}

impl MemoryInit {
    /// The default for a component: `Copy` for components that embed
    /// CPython (componentize-py's), `Map` for everything else.
    pub fn for_component(wasm: &[u8]) -> Self {
        if embeds_cpython(wasm) {
            MemoryInit::Copy
        } else {
            MemoryInit::Map
        }
    }
}

/// Whether `wasm` embeds CPython: componentize-py links `libpython3.*.so`
/// into the component as a core module whose imports and exports carry
/// that name.
pub(crate) fn embeds_cpython(wasm: &[u8]) -> bool {
    use wasmparser::{Parser, Payload};
    let python = |name: &str| name.starts_with("libpython3");
    for payload in Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(Payload::ImportSection(reader)) => {
                if reader
                    .into_imports()
                    .flatten()
                    .any(|import| python(import.module) || python(import.name))
                {
                    return true;
                }
            }
            Ok(Payload::ExportSection(reader)) => {
                if reader
                    .into_iter()
                    .flatten()
                    .any(|export| python(export.name))
                {
                    return true;
                }
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// Whether `name` is a valid tool or agent name.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOOL_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The read-only part of a plugin that every one of its stores points at.
pub(crate) fn shared_settings(
    default_limits: &Limits,
    component: &Component,
    settings: PluginSettings,
) -> Result<Arc<PluginShared>, LoadError> {
    let network = settings.sandbox.check()?;
    let imports: Vec<String> = component
        .component_type()
        .imports(component.engine())
        .map(|(name, _)| name.to_string())
        .collect();
    let gaps = capability_gaps(&imports, &settings.sandbox);
    for gap in &gaps {
        tracing::warn!(plugin = %settings.name, "{gap}");
    }
    let limits = settings.limits.unwrap_or_else(|| default_limits.clone());
    let asks = imports.iter().any(|i| i.starts_with(INTERACTION_PREFIX));
    Ok(Arc::new(PluginShared {
        memory: settings.memory_init.unwrap_or(MemoryInit::Map),
        name: settings.name.into(),
        limits,
        config: settings.config,
        kv: settings.kv,
        sandbox: settings.sandbox,
        network,
        gaps,
        asks,
    }))
}

/// The import of a plugin that may ask questions.
const INTERACTION_PREFIX: &str = "netra:plugin/interaction@";

/// What a component imports that its grant will not let it use: the
/// differences an operator should know about (the calls will fail).
pub fn capability_gaps(imports: &[String], sandbox: &Sandbox) -> Vec<String> {
    let imports_any = |prefix: &str| imports.iter().any(|i| i.starts_with(prefix));
    let mut gaps = Vec::new();
    if imports_any("wasi:filesystem/") && sandbox.dirs.is_empty() {
        gaps.push(
            "imports wasi:filesystem but is granted no directories: it will see none".to_string(),
        );
    }
    if imports_any("wasi:sockets/") {
        gaps.push(
            "imports wasi:sockets, which netra never grants: its connections will be refused"
                .to_string(),
        );
    }
    if imports_any("wasi:http/") && sandbox.network.is_empty() {
        gaps.push(
            "imports wasi:http but is granted no network hosts: its requests will be refused"
                .to_string(),
        );
    }
    gaps
}

/// Plugin-wide, read-only facts every store of a plugin points at.
pub(crate) struct PluginShared {
    pub(crate) name: Arc<str>,
    /// Which engine its stores are made in.
    pub(crate) memory: MemoryInit,
    pub(crate) limits: Limits,
    pub(crate) config: BTreeMap<String, String>,
    pub(crate) kv: Option<Arc<dyn KvStore>>,
    pub(crate) sandbox: Sandbox,
    /// `sandbox.network`, parsed.
    pub(crate) network: Allowlist,
    /// What its imports ask for that its grant does not give.
    pub(crate) gaps: Vec<String>,
    /// Whether it imports `interaction`: its calls may ask questions.
    pub(crate) asks: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasi_http_is_a_gap_only_without_network_hosts() {
        let imports = vec![
            "wasi:http/outgoing-handler@0.2.6".to_string(),
            "wasi:sockets/tcp@0.2.6".to_string(),
        ];
        let none = capability_gaps(&imports, &Sandbox::default());
        assert_eq!(none.len(), 2, "{none:?}");
        assert!(none.iter().any(|g| g.contains("granted no network hosts")));

        let granted = Sandbox {
            network: vec!["api.example.com".into()],
            ..Sandbox::default()
        };
        let gaps = capability_gaps(&imports, &granted);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert!(gaps[0].contains("wasi:sockets"), "{gaps:?}");
    }
}
