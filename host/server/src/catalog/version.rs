//! Versions: content hashes, the kept files, and how the admin API shows them.

use std::path::Path;
use std::sync::Arc;

use netra_store::PluginVersion;
use sha2::{Digest, Sha256};

use crate::protocol::timestamp_of;
use crate::registry::VersionTag;

/// The content hash of a version: SHA-256 over the component, a zero byte,
/// and the manifest (nothing if there is none), as `sha256:HEX`. The
/// manifest is part of a version: it decides what the plugin is granted.
pub fn digest(wasm: &[u8], manifest: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(wasm);
    hasher.update([0u8]);
    hasher.update(manifest.unwrap_or_default().as_bytes());
    let hash = hasher.finalize();
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256:");
    for byte in hash {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// One version of a plugin: its content.
pub struct Version {
    /// The plugin's name.
    pub plugin: String,
    /// Its content hash.
    pub digest: String,
    /// The component.
    pub wasm: Arc<Vec<u8>>,
    /// Its manifest's text.
    pub manifest: Option<String>,
    /// `dir` or `upload`.
    pub source: String,
}

impl Version {
    /// The version of `plugin` made of `wasm` and `manifest`.
    pub fn new(plugin: &str, wasm: Vec<u8>, manifest: Option<String>, source: &str) -> Self {
        Self {
            plugin: plugin.to_string(),
            digest: digest(&wasm, manifest.as_deref()),
            wasm: Arc::new(wasm),
            manifest,
            source: source.to_string(),
        }
    }

    /// Its manifest's `version`, if it has a readable manifest.
    pub(super) fn manifest_version(&self) -> Option<String> {
        netra_config::Manifest::parse(self.manifest.as_deref()?)
            .ok()
            .map(|m| m.version)
    }

    /// How clients see it.
    pub(super) fn tag(&self) -> VersionTag {
        VersionTag {
            label: self
                .manifest_version()
                .unwrap_or_else(|| short(&self.digest).to_string()),
            digest: self.digest.clone(),
        }
    }

    pub(super) fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }
}

/// `sha256:` and the first 12 hex digits.
pub(super) fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

pub use crate::protocol::admin::VersionInfo;

pub(super) fn version_info(record: &PluginVersion, active: Option<&str>) -> VersionInfo {
    VersionInfo {
        digest: record.digest.clone(),
        version: record.version.clone(),
        kind: record.kind.clone(),
        size: record.size,
        source: record.source.clone(),
        created_at: timestamp_of(record.created_at),
        created_by: record.created_by.clone(),
        active: active == Some(record.digest.as_str()),
    }
}

/// Reads a kept version's content.
pub(super) fn read_version(
    dir: &Path,
    plugin: &str,
    digest: &str,
    source: &str,
) -> std::io::Result<Version> {
    let hex = digest.trim_start_matches("sha256:");
    let wasm = std::fs::read(dir.join(format!("{hex}.wasm")))?;
    let manifest = match std::fs::read_to_string(dir.join(format!("{hex}.toml"))) {
        Ok(text) => Some(text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(err),
    };
    let version = Version::new(plugin, wasm, manifest, source);
    if version.digest != digest {
        return Err(std::io::Error::other(format!(
            "the kept content of {digest} does not match its digest"
        )));
    }
    Ok(version)
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a
/// reader never sees half a file.
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Letters, digits, `-` and `_`: safe as a file name.
pub(super) fn is_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_is_part_of_a_version() {
        let wasm = b"\0asm component bytes";
        let bare = digest(wasm, None);
        assert!(
            bare.starts_with("sha256:") && bare.len() == 7 + 64,
            "{bare}"
        );
        assert_eq!(bare, digest(wasm, None));
        assert_eq!(bare, digest(wasm, Some("")));
        assert_ne!(bare, digest(wasm, Some("version = \"0.2.0\"")));
        // The separator keeps component and manifest apart.
        assert_ne!(digest(b"ab", Some("c")), digest(b"a", Some("bc")));
        assert_eq!(short(&bare).len(), 19);
    }

    #[test]
    fn kept_versions_are_read_back_and_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let version = Version::new("helper", b"wasm".to_vec(), Some("m".into()), "upload");
        write_atomic(
            &dir.path().join(format!("{}.wasm", version.hex())),
            &version.wasm,
        )
        .expect("write");
        write_atomic(&dir.path().join(format!("{}.toml", version.hex())), b"m").expect("write");
        let read = read_version(dir.path(), "helper", &version.digest, "upload").expect("read");
        assert_eq!(read.digest, version.digest);
        assert_eq!(read.manifest.as_deref(), Some("m"));
        // A file whose content no longer matches its name is refused.
        std::fs::write(dir.path().join(format!("{}.toml", version.hex())), b"x").expect("write");
        assert!(read_version(dir.path(), "helper", &version.digest, "upload").is_err());
        assert!(read_version(dir.path(), "helper", "sha256:00", "upload").is_err());
    }

    #[test]
    fn plugin_names_are_safe_file_names() {
        for good in ["helper", "web-search", "notes_v2", "A1"] {
            assert!(is_plugin_name(good), "{good}");
        }
        for bad in ["", "..", "a/b", "a.b", "a b", &"x".repeat(65)] {
            assert!(!is_plugin_name(bad), "{bad}");
        }
    }
}
