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
        digest: &str,
    ) -> Result<(Component, CacheOutcome), LoadError> {
        if let Some(component) = self.lookup(engine, digest) {
            return Ok((component, CacheOutcome::Hit));
        }
        let component = compile(engine, wasm)?;
        self.put(&component, digest);
        Ok((component, CacheOutcome::Compiled))
    }

    fn path(&self, name: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{name}-{}.cwasm", self.engine_key)))
    }

    /// The cached component stored under `name`, if any.
    pub(crate) fn lookup(&self, engine: &Engine, name: &str) -> Option<Component> {
        let path = self.path(name)?;
        if !path.exists() {
            return None;
        }
        // SAFETY: files matching this name are only written by `put` below
        // from `Component::serialize` of this engine configuration (the engine
        // key is in the name), and the cache directory is trusted (see the
        // module docs).
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => Some(component),
            Err(err) => {
                tracing::warn!(path = %path.display(), "ignoring unusable cache entry: {err}");
                None
            }
        }
    }

    /// Stores `component` under `name` (when there is a cache directory).
    pub(crate) fn put(&self, component: &Component, name: &str) {
        let Some(path) = self.path(name) else {
            return;
        };
        if let Err(err) = store(component, &path) {
            tracing::warn!(path = %path.display(), "could not write cache entry: {err}");
        }
    }

    /// Whether `name` was marked with [`Self::mark`] (always false without a
    /// cache directory).
    pub(crate) fn marked(&self, name: &str) -> bool {
        self.path(name)
            .is_some_and(|path| path.with_extension("none").exists())
    }

    /// Remembers that `name` has no entry and should not be tried again.
    pub(crate) fn mark(&self, name: &str) {
        if let Some(path) = self.path(name)
            && let Err(err) = std::fs::write(path.with_extension("none"), b"")
        {
            tracing::warn!("could not write cache marker: {err}");
        }
    }
}

/// The SHA-256 of `wasm`, hex encoded: the cache's key.
pub(crate) fn digest(wasm: &[u8]) -> String {
    hex(&Sha256::digest(wasm))
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
