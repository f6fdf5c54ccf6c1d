//! Builds every guest crate in `plugins/` for wasm32-wasip2 (wasmtime's
//! test-programs pattern), so `cargo test` on a fresh clone needs no other step.
//! The components land in `target/guests/wasm32-wasip2/release/`, the same
//! place `cargo xtask plugins` builds them.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    // Without the `harness` feature (xtask's use: the HTTP client alone)
    // there is nothing that needs a guest.
    if std::env::var_os("CARGO_FEATURE_HARNESS").is_none() {
        return;
    }
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("the tests crate lives one level below the workspace root")
        .to_path_buf();
    for dir in ["plugins", "sdk/rust", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let target_dir = root.join("target").join("guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(root.join("plugins").join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    // The outer build's flags are for the host, not for the guests.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PROFILE_RELEASE_DEBUG",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .expect("failed to run cargo for the guest plugins");
    assert!(
        status.success(),
        "building the guest plugins failed; is the wasm32-wasip2 target installed? (rustup target add wasm32-wasip2)"
    );
    let out = target_dir.join("wasm32-wasip2").join("release");
    println!("cargo:rustc-env=NETRA_GUESTS_DIR={}", out.display());
    check_exists(&out);
}

fn check_exists(out: &Path) {
    assert!(
        out.is_dir(),
        "guest output dir {} is missing",
        out.display()
    );
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}
