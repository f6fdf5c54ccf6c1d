//! ARCHITECTURE.md's invariants that a program can check: its code map
//! names every module, only the protocol tree derives serde in the server,
//! only the store speaks SQL, and the crates depend on each other the way
//! the map says.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the workspace")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Every `.rs` file under `dir`, recursively.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The crates under `host/`.
fn host_crates() -> Vec<PathBuf> {
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root().join("host"))
        .expect("host/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").exists())
        .collect();
    crates.sort();
    crates
}

/// The `[dependencies]` table of a manifest, as text.
fn dependencies(manifest: &Path) -> String {
    let text = read(manifest);
    let start = text.find("[dependencies]").unwrap_or(text.len());
    let rest = &text[start..];
    let end = rest[1..].find("\n[").map_or(rest.len(), |i| i + 1);
    rest[..end].to_string()
}

#[test]
fn the_code_map_names_every_module_of_every_host_crate() {
    let map = read(&root().join("ARCHITECTURE.md"));
    let table: Vec<&str> = map.lines().filter(|l| l.starts_with("| `")).collect();
    let mut missing = Vec::new();
    for krate in host_crates() {
        let name = krate
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let prefix = format!("host/{name}/");
        // The rows about this crate: their first cell names a path in it.
        let rows: String = table
            .iter()
            .filter(|row| {
                row.split('|')
                    .nth(1)
                    .is_some_and(|cell| cell.contains(&prefix))
            })
            .copied()
            .collect::<Vec<_>>()
            .join("\n");
        let src = krate.join("src");
        for file in sources(&src) {
            let relative = file.strip_prefix(&src).expect("under src");
            let stem = file.file_stem().expect("stem").to_string_lossy();
            if matches!(stem.as_ref(), "lib" | "main") || stem.ends_with("fuzz_tests") {
                continue;
            }
            // A directory module (`catalog/mod.rs`) is named by its folder.
            let module = if stem == "mod" {
                relative
                    .parent()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            } else {
                stem.into_owned()
            };
            if !rows.contains(&module) {
                missing.push(format!("{prefix}src/{}", relative.display()));
            }
        }
    }
    for top in [
        "examples/",
        "docs/",
        "plugins/",
        "sdk/",
        "tests/",
        "xtask/",
        "wit/",
    ] {
        if !table.iter().any(|row| row.contains(&format!("`{top}"))) {
            missing.push(top.to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map does not name:\n{}",
        missing.join("\n")
    );
}

#[test]
fn only_the_protocol_tree_derives_serde_in_the_server() {
    let src = root().join("host/server/src");
    let offenders: Vec<String> = sources(&src)
        .into_iter()
        .filter(|file| !file.starts_with(src.join("protocol")))
        .filter(|file| {
            let text = read(file);
            text.lines().any(|line| {
                let line = line.trim_start();
                line.starts_with("#[derive(")
                    && (line.contains("Serialize") || line.contains("Deserialize"))
            })
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "serialized types outside host/server/src/protocol/: {offenders:?}"
    );
}

#[test]
fn only_the_store_speaks_sql() {
    let mut offenders = Vec::new();
    for krate in host_crates() {
        if krate.ends_with("store") {
            continue;
        }
        if dependencies(&krate.join("Cargo.toml")).contains("rusqlite") {
            offenders.push(format!("{} depends on rusqlite", krate.display()));
        }
        for file in sources(&krate.join("src")) {
            if read(&file).contains("rusqlite::") {
                offenders.push(format!("{} uses rusqlite", file.display()));
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:?}");
}

#[test]
fn crates_depend_on_each_other_as_the_map_says() {
    let deps = |name: &str| dependencies(&root().join("host").join(name).join("Cargo.toml"));
    // The server reaches wasmtime only through netra-runtime.
    assert!(!deps("server").contains("wasmtime"), "{}", deps("server"));
    for file in sources(&root().join("host/server/src")) {
        assert!(
            !read(&file).contains("wasmtime::"),
            "{} names wasmtime",
            file.display()
        );
    }
    // The SQL crate compiles without the runtime (so without wasmtime).
    assert!(
        !deps("store").contains("netra-runtime"),
        "{}",
        deps("store")
    );
    // The leaf crates know nothing of runs, WIT or sockets.
    for leaf in ["config", "auth", "llm", "store"] {
        let text = deps(leaf);
        for upper in ["netra-server", "netra-runtime", "netra-store", "netra-llm"] {
            if upper.ends_with(leaf) {
                continue;
            }
            assert!(!text.contains(upper), "host/{leaf} depends on {upper}");
        }
    }
}
