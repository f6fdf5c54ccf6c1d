//! Shared helpers of netra's end-to-end tests: where the guest components
//! built by this crate's build script are.

use std::path::PathBuf;

/// The directory holding every built guest component.
pub fn guests_dir() -> PathBuf {
    PathBuf::from(env!("NETRA_GUESTS_DIR"))
}

/// The path of the guest component built from crate `crate_name` (dashes
/// become underscores, as cargo names the output).
pub fn guest(crate_name: &str) -> PathBuf {
    guests_dir().join(format!("{}.wasm", crate_name.replace('-', "_")))
}

/// The bytes of a guest component; panics with a clear message if missing.
pub fn guest_bytes(crate_name: &str) -> Vec<u8> {
    let path = guest(crate_name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read guest {}: {e}", path.display()))
}
