//! `netra plugin new` + `netra plugin build` + `netra tool call`, for each
//! language: the three templates build with their real toolchains
//! (cargo for wasm32-wasip2, componentize-py, componentize-js) and answer
//! out of the box, alike.

use std::path::Path;
use std::process::Output;

fn netra(args: &[&str], dir: &Path) -> Output {
    netra_tests::serve::netra()
        .args(args)
        .current_dir(dir)
        // The Rust template's dependencies come from the guests' target dir.
        .env(
            "CARGO_TARGET_DIR",
            netra_tests::guests_dir().join("..").join(".."),
        )
        .env(
            "NETRA_CACHE_DIR",
            netra_tests::guests_dir()
                .join("..")
                .join("..")
                .join("test-cache"),
        )
        .output()
        .expect("netra runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn new_build_call(lang: &str) {
    let work = tempfile::tempdir().expect("tempdir");
    let name = format!("hello-{lang}");
    let out = netra(&["plugin", "new", "--lang", lang, &name], work.path());
    assert!(out.status.success(), "{}", text(&out));
    let dir = work.path().join(&name);
    assert!(dir.join("plugin.toml").is_file(), "{}", text(&out));
    let manifest = std::fs::read_to_string(dir.join("plugin.toml")).expect("manifest");
    assert!(
        manifest.contains(&format!("name = \"{name}\"")),
        "{manifest}"
    );

    // A second `new` into the same place refuses to overwrite it.
    let again = netra(&["plugin", "new", "--lang", lang, &name], work.path());
    assert!(!again.status.success());
    assert!(text(&again).contains("not empty"), "{}", text(&again));

    let out = netra(&["plugin", "build", &name], work.path());
    assert!(out.status.success(), "{}", text(&out));
    let wasm = dir.join(format!("{name}.wasm"));
    assert!(wasm.is_file(), "{}", text(&out));
    assert!(dir.join(format!("{name}.toml")).is_file());

    let wasm = wasm.display().to_string();
    let out = netra(
        &["tool", "call", &wasm, "greet", r#"{"name": "Ada"}"#],
        work.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let answer: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    assert_eq!(answer["greeting"], "Hello, Ada!", "{lang}: {answer}");

    // A blank name is the tool's own invalid-arguments error, exit 1.
    let out = netra(
        &["tool", "call", &wasm, "greet", r#"{"name": " "}"#],
        work.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("invalid arguments"),
        "{lang}: {}",
        text(&out)
    );
}

#[test]
fn a_new_rust_tool_builds_and_answers() {
    new_build_call("rust");
}

#[test]
fn a_new_python_tool_builds_and_answers() {
    new_build_call("python");
}

#[test]
fn a_new_javascript_tool_builds_and_answers() {
    new_build_call("js");
}
