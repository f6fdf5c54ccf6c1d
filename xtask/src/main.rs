//! `cargo xtask`: netra's build steps that are not a plain `cargo build`.
//!
//! - `cargo xtask plugins`: build every plugin in `plugins/` for wasm32-wasip2
//!   and copy the examples to `target/plugins/NAME.wasm`.
//! - `cargo xtask test`: the whole test suite (what README.md and CI run).
//! - `cargo xtask demo`: build the plugins and show them working.
//! - `cargo xtask bench runtime`: the runtime benchmark (see BENCHMARKS.md).
//! - `cargo xtask ci`: formatting, lints, then the test suite.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["plugins"] => plugins().map(|_| ()),
        ["test"] => test(),
        ["demo"] => demo(),
        ["bench", "runtime"] => bench_runtime(),
        ["ci"] => ci(),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 plugins        build the plugins into target/plugins/\n  \
                 test           run the whole test suite\n  \
                 demo           build the plugins and run the demo\n  \
                 bench runtime  benchmark fresh-instance calls (see BENCHMARKS.md)\n  \
                 ci             fmt --check, clippy -D warnings, then test"
            );
            bail!("unknown or missing command: {args:?}");
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn run(mut cmd: Command) -> Result<()> {
    eprintln!("$ {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("failed to start {cmd:?}"))?;
    if !status.success() {
        bail!("command failed ({status}): {cmd:?}");
    }
    Ok(())
}

/// Builds every guest crate and copies the example plugins (not the test
/// fixtures) to `target/plugins/`. Returns the copied paths.
fn plugins() -> Result<Vec<PathBuf>> {
    let root = root();
    let guests = root.join("target").join("guests");
    let mut cmd = cargo();
    cmd.args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip2",
        "--manifest-path",
    ])
    .arg(root.join("plugins").join("Cargo.toml"))
    .arg("--target-dir")
    .arg(&guests);
    run(cmd)?;
    let built = guests.join("wasm32-wasip2").join("release");
    let out = root.join("target").join("plugins");
    std::fs::create_dir_all(&out)?;
    let mut copied = Vec::new();
    for name in example_plugins(&root.join("plugins"))? {
        let file = format!("{}.wasm", name.replace('-', "_"));
        let from = built.join(&file);
        let to = out.join(format!("{name}.wasm"));
        std::fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        copied.push(to);
    }
    eprintln!("built {} plugins into {}", copied.len(), out.display());
    Ok(copied)
}

/// The package names of the example plugins: every crate directly under
/// `plugins/` (fixtures live in `plugins/fixtures/` and are not examples).
fn example_plugins(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let manifest = entry?.path().join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&manifest)?;
        let name = text
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once('=')?;
                (key.trim() == "name").then(|| value.trim().trim_matches('"').to_string())
            })
            .with_context(|| format!("no package name in {}", manifest.display()))?;
        names.push(name);
    }
    names.sort();
    Ok(names)
}

fn test() -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["test", "--workspace"]);
    run(cmd)?;
    // The plugins' own logic, compiled for the host.
    let mut cmd = cargo();
    cmd.args([
        "test",
        "--manifest-path",
        "plugins/Cargo.toml",
        "--target-dir",
        "target/guests-host",
    ]);
    run(cmd)
}

fn demo() -> Result<()> {
    let plugins = plugins()?;
    let mut build = cargo();
    build.args(["build", "--release", "--package", "netra"]);
    run(build)?;
    let netra = root().join("target").join("release").join("netra");
    for plugin in &plugins {
        let mut cmd = Command::new(&netra);
        cmd.args(["plugin", "inspect"]).arg(plugin);
        run(cmd)?;
    }
    let calculator = root()
        .join("target")
        .join("plugins")
        .join("calculator.wasm");
    let mut cmd = Command::new(&netra);
    cmd.args(["tool", "call"])
        .arg(&calculator)
        .args(["calculate", r#"{"expression":"2+3*4"}"#]);
    run(cmd)?;
    eprintln!(
        "\nTry a tool yourself:\n  {} tool call {} calculate '{{\"expression\":\"(1+2)^3\"}}'",
        netra.display(),
        calculator.display()
    );
    Ok(())
}

fn bench_runtime() -> Result<()> {
    plugins()?;
    let mut cmd = cargo();
    cmd.args(["bench", "--package", "netra-runtime", "--bench", "runtime"]);
    run(cmd)
}

fn ci() -> Result<()> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    run(fmt)?;
    let mut fmt_plugins = cargo();
    fmt_plugins.args([
        "fmt",
        "--all",
        "--check",
        "--manifest-path",
        "plugins/Cargo.toml",
    ]);
    run(fmt_plugins)?;
    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run(clippy)?;
    let mut clippy_plugins = cargo();
    clippy_plugins.args([
        "clippy",
        "--manifest-path",
        "plugins/Cargo.toml",
        "--target",
        "wasm32-wasip2",
        "--target-dir",
        "target/guests",
        "--release",
        "--",
        "-D",
        "warnings",
    ]);
    run(clippy_plugins)?;
    test()
}
