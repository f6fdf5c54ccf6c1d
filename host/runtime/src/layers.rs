//! The runtime's modules are layered: each uses only modules below it, so
//! the crate reads from the bottom up and none of its files is part of an
//! import cycle. This test reads the sources and holds them to that.

use std::collections::BTreeMap;
use std::path::Path;

/// The modules from the bottom layer up. A module may name (`crate::x`)
/// only modules before it in this list.
const LAYERS: &[&str] = &[
    // Settings, errors and the pieces a store is made of.
    "rate",
    "bindings",
    "error",
    "config",
    "allowlist",
    "kv",
    "cache",
    "stdio",
    "cpu",
    "deadline",
    "settings",
    // The host interfaces a guest imports.
    "host",
    "http",
    // One request's store.
    "store",
    // The engines, linkers, CPU gate and threads.
    "engine",
    // Instances of either world.
    "tool",
    "agent",
    // Loading.
    "preinit",
    "load",
];

/// The `crate::` paths the code of a source file names (comments and docs
/// may link anywhere): a module's name, or the name of a re-export from
/// lib.rs, which hides the module it comes from.
fn dependencies(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in source.lines() {
        let code = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push(name);
            }
        }
    }
    found
}

/// Every source file's module (a file under `host/` belongs to `host`) and
/// its text, without its `#[cfg(test)]` tail.
fn modules(src: &Path) -> BTreeMap<String, Vec<(String, String)>> {
    let mut modules: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let relative = path.strip_prefix(src).expect("under src");
            let module = match relative.components().next() {
                Some(first) if relative.components().count() > 1 => {
                    first.as_os_str().to_string_lossy().into_owned()
                }
                _ => relative
                    .file_stem()
                    .expect("file name")
                    .to_string_lossy()
                    .into_owned(),
            };
            let text = std::fs::read_to_string(&path).expect("read source");
            let text = match text.find("#[cfg(test)]\nmod tests") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            modules
                .entry(module)
                .or_default()
                .push((relative.display().to_string(), text));
        }
    }
    modules
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&src);
    let rank = |name: &str| LAYERS.iter().position(|m| *m == name);
    let mut wrong = Vec::new();
    for (module, files) in &modules {
        if matches!(module.as_str(), "lib" | "layers") {
            continue;
        }
        let Some(own) = rank(module) else {
            wrong.push(format!("module `{module}` is not in LAYERS"));
            continue;
        };
        for (file, text) in files {
            for dependency in dependencies(text) {
                if dependency == *module {
                    continue;
                }
                match rank(&dependency) {
                    Some(theirs) if theirs < own => {}
                    Some(_) => wrong.push(format!("{file} uses `{dependency}`, a layer above it")),
                    None => wrong.push(format!(
                        "{file} uses `crate::{dependency}`: name the module it is in"
                    )),
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_check_sees_a_use_of_a_higher_layer() {
    assert_eq!(
        dependencies("use crate::engine::Runtime;\nlet x = crate::tool::ToolPlugin::load;"),
        ["engine", "tool"]
    );
    assert_eq!(dependencies("let r: crate::Runtime;"), ["Runtime"]);
    assert!(dependencies("/// [`crate::tool::ToolPlugin`]").is_empty());
}
