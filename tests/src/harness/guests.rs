//! Where the guest components are: the Rust ones this crate's build script
//! builds, and the Python and JavaScript ones `cargo xtask plugins` builds.

use std::path::PathBuf;

/// The directory holding every built guest component.
pub fn guests_dir() -> PathBuf {
    PathBuf::from(env!("NETRA_GUESTS_DIR"))
}

/// The path of the guest component built from crate `crate_name`.
///
/// Cargo names a library's output after its crate name, in which dashes become
/// underscores (`fixture-agent-echo` -> `fixture_agent_echo.wasm`), but keeps a
/// binary's name as it is (`fixture-wrong-world` -> `fixture-wrong-world.wasm`).
/// Every plugin is a library (`cdylib`); the few binary fixtures are found by
/// the second rule when no library output of that name exists.
pub fn guest(crate_name: &str) -> PathBuf {
    let dir = guests_dir();
    let library = dir.join(format!("{}.wasm", crate_name.replace('-', "_")));
    let binary = dir.join(format!("{crate_name}.wasm"));
    if !library.exists() && binary.exists() {
        binary
    } else {
        library
    }
}

/// The bytes of a guest component; panics with a clear message if missing.
pub fn guest_bytes(crate_name: &str) -> Vec<u8> {
    let path = guest(crate_name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read guest {}: {e}", path.display()))
}

/// The path of a Python (`lang` = `py`) or JavaScript (`js`) guest built by
/// `cargo xtask plugins` into `target/guests/LANG/NAME.wasm`. Those need
/// componentize-py / componentize-js, which `cargo xtask plugins` installs
/// (pinned) into `target/tools/`; a missing component fails the test that
/// needs it with that instruction, so CI never skips them.
pub fn polyglot_guest(lang: &str, name: &str) -> PathBuf {
    let path = guests_dir()
        .join("..")
        .join("..")
        .join(lang)
        .join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: build the Python and JavaScript plugins with `cargo xtask plugins` \
         (the README's `cargo xtask test` does it first)",
        path.display()
    );
    path
}
