//! Compiled components cached on disk, keyed by the component's content hash
//! and the engine's compatibility hash, so a second start compiles nothing.
//!
//! Invariant: the cache directory is trusted like the netra binary itself.
//! Entries are only ever written by this module (to a temporary file, then
//! renamed into place), because loading one maps native code into the process.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::LoadError;

/// Whether a load compiled the component or found it in the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded precompiled code from the cache; nothing was compiled.
    Hit,
    /// Compiled the component (and stored it, when a cache is configured).
    Compiled,
}

/// The cache directory plus this engine's key suffix.
pub(crate) struct ComponentCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

impl ComponentCache {
    pub(crate) fn new(engine: &Engine, dir: Option<PathBuf>) -> Result<Self, LoadError> {
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir).map_err(|e| {
                LoadError::Io(format!("cannot create cache dir {}: {e}", dir.display()))
            })?;
        }
        // The compatibility hash covers wasmtime's version and every engine
        // setting that affects compiled code.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
        })
    }

    /// Returns the compiled component for `wasm` and whether it was compiled.
    /// Compilation takes seconds for large components, so callers run this on
    /// a blocking thread.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
    ) -> Result<(Component, CacheOutcome, String), LoadError> {
        let digest = hex(&Sha256::digest(wasm));
        let Some(dir) = &self.dir else {
            return Ok((compile(engine, wasm)?, CacheOutcome::Compiled, digest));
        };
        let path = dir.join(format!("{digest}-{}.cwasm", self.engine_key));
        if path.exists() {
            // SAFETY: files matching this name are only written by `store`
            // below from `Component::serialize` of this engine configuration
            // (the engine key is in the name), and the cache directory is
            // trusted (see the module docs).
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit, digest)),
                Err(err) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable cache entry: {err}");
                }
            }
        }
        let component = compile(engine, wasm)?;
        if let Err(err) = store(&component, &path) {
            tracing::warn!(path = %path.display(), "could not write cache entry: {err}");
        }
        Ok((component, CacheOutcome::Compiled, digest))
    }
}

fn compile(engine: &Engine, wasm: &[u8]) -> Result<Component, LoadError> {
    Component::new(engine, wasm).map_err(|e| LoadError::Compile(format!("{e:#}")))
}

fn store(component: &Component, path: &Path) -> anyhow::Result<()> {
    let bytes = component.serialize()?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
