//! `cargo xtask`: netra's build steps that are not a plain `cargo build`.
//!
//! - `cargo xtask plugins`: build every plugin in `plugins/` for wasm32-wasip2
//!   and copy the examples to `target/plugins/NAME.wasm`.
//! - `cargo xtask tools`: install the pinned componentize-py (PyPI) and
//!   componentize-js (npm) that build the Python and JavaScript plugins.
//! - `cargo xtask test`: the whole test suite (what README.md and CI run).
//! - `cargo xtask demo`: build the plugins and show them working.
//! - `cargo xtask bench runtime`: the runtime benchmark (see BENCHMARKS.md).
//! - `cargo xtask bench server|breaker|swap`: benchmarks against a release
//!   `netra serve` (see BENCHMARKS.md).
//! - `cargo xtask bench hostile`: a bystander's `helper` latency with no
//!   attack and during each hostile-plugin attack, the server's RSS and the
//!   database's growth per attacking run (see BENCHMARKS.md).
//! - `cargo xtask fuzz [SECONDS]`: the parsers' property tests over arbitrary
//!   inputs with many cases (100 000 per property, or as many as fit in
//!   SECONDS), and how many ran.
//! - `cargo xtask ci`: formatting, lints, then the test suite.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

mod bench;
mod fuzz;
mod hostile;
mod mcp;
mod polyglot;

use bench::{bench_breaker, bench_runtime, bench_server, bench_start, bench_swap};
use fuzz::fuzz;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["plugins"] => plugins().map(|_| ()),
        ["tools"] => {
            let root = root();
            polyglot::install(&root, polyglot::Lang::Python)?;
            polyglot::install(&root, polyglot::Lang::Js)?;
            mcp::install(&root)
        }
        ["test"] => test(),
        ["demo"] => demo(),
        ["bench", "runtime"] => bench_runtime(),
        ["bench", "server"] => bench_server(),
        ["bench", "breaker"] => bench_breaker(),
        ["bench", "swap"] => bench_swap(),
        ["bench", "start"] => bench_start(),
        ["bench", "mcp"] => mcp::bench_mcp(),
        ["conformance"] => mcp::conformance(),
        ["bench", "hostile", only @ ..] => hostile::bench_hostile(only),
        ["ci"] => ci(),
        ["fuzz"] => fuzz(None),
        ["fuzz", seconds] => {
            fuzz(Some(seconds.parse().with_context(|| {
                format!("`{seconds}` is not a number of seconds")
            })?))
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 plugins        build the plugins into target/plugins/, each with its manifest\n  \
                 tools          install the pinned componentize-py and componentize-js\n  \
                 test           run the whole test suite\n  \
                 demo           build the plugins and run the demo\n  \
                 bench runtime  benchmark fresh-instance calls (see BENCHMARKS.md)\n  \
                 bench server   loadgen against a release server (memory vs SQLite store), idle-session RSS\n  \
                 bench breaker  how fast a run fails while its model endpoint's breaker is open, beside a helper run\n  \
                 bench swap     hot-loading: loadgen with and without activations, rollback and drop-in latency\n  \
                 bench start    start to ready with every example plugin, cold vs warm compile cache\n  \
                 bench mcp      tools/call of calculate over Streamable HTTP, 1 and 4 clients, vs the runtime alone\n  \
                 conformance    the official MCP conformance suite against netra serve\n  \
                 bench hostile [ATTACK..]  a bystander's helper runs with no attack and during each hostile-plugin attack (or those named, e.g. `loop`); RSS, database growth\n  \
                 fuzz [SECONDS] the parsers' property tests with many cases (100000 each, or SECONDS in all)\n  \
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

/// Builds the plugins (see [`plugins`]) and a release `netra`; its path.
fn release_netra() -> Result<PathBuf> {
    plugins()?;
    let mut build = cargo();
    build.args(["build", "--release", "--package", "netra"]);
    run(build)?;
    Ok(root().join("target").join("release").join("netra"))
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
        // Its manifest beside it: what it is and what it needs.
        let manifest = root.join("plugins").join(&name).join("plugin.toml");
        let to_manifest = out.join(format!("{name}.toml"));
        std::fs::copy(&manifest, &to_manifest).with_context(|| {
            format!(
                "copying {} to {}",
                manifest.display(),
                to_manifest.display()
            )
        })?;
        copied.push(to);
    }
    // Python and JavaScript plugins (componentize-py, componentize-js).
    for plugin in polyglot::build(&root)? {
        if !plugin.example {
            continue;
        }
        let name = plugin.name();
        let to = out.join(format!("{name}.wasm"));
        std::fs::copy(plugin.output(&root), &to)
            .with_context(|| format!("copying {name} to {}", to.display()))?;
        std::fs::copy(
            plugin.dir.join("plugin.toml"),
            out.join(format!("{name}.toml")),
        )?;
        copied.push(to);
    }
    eprintln!("built {} plugins into {}", copied.len(), out.display());
    Ok(copied)
}

/// The package names of the example plugins: every crate directly under
/// `plugins/` (fixtures live in `plugins/fixtures/` and are not examples;
/// neither is `plugins/conformance`, the MCP conformance suite's tools).
fn example_plugins(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.file_name().is_some_and(|n| n == "conformance") {
            continue;
        }
        let manifest = path.join("Cargo.toml");
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
    // Every plugin, Python and JavaScript ones included (their toolchains
    // are installed, pinned, on first use): the tests serve them. The MCP
    // tests drive the host with the official Python SDK, pinned too.
    plugins()?;
    mcp::install(&root())?;
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--no-fail-fast"]);
    run(cmd)?;
    // The SDKs' and the polyglot plugins' own tests, in their languages.
    let root = root();
    for dir in ["sdk/python/tests", "plugins/units", "plugins/pyagent"] {
        let mut python = Command::new("python3");
        python
            .current_dir(&root)
            .args(["-m", "unittest", "discover", "-s", dir]);
        run(python)?;
    }
    let mut node = Command::new("node");
    node.current_dir(&root).args(["--test", "plugins/jsonq/"]);
    run(node)?;
    // The official MCP conformance suite against `netra serve`.
    mcp::conformance()?;
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

/// Builds the plugins and the host, then serves the examples with
/// `examples/netra.toml` (127.0.0.1:8080, an embedded SQLite file in
/// ./netra-data), printing how to connect.
fn demo() -> Result<()> {
    plugins()?;
    let mut build = cargo();
    build.args(["build", "--package", "netra"]);
    run(build)?;
    let root = root();
    let netra = root.join("target").join("debug").join("netra");
    let mut serve = Command::new(&netra);
    serve
        .current_dir(&root)
        // examples/netra.toml: 127.0.0.1:8080, ./netra-data, target/plugins,
        // the grants of the examples and the golden-path self-check.
        .args(["serve", "--config"])
        .arg(root.join("examples").join("netra.toml"));
    eprintln!("\nStarting the demo server (Ctrl-C stops it). In another terminal:");
    eprintln!(
        "  {} chat --url ws://127.0.0.1:8080/v1/ws --agent helper --token \"$({} token --data-dir netra-data --sub you | tail -n1)\"\n",
        netra.display(),
        netra.display()
    );
    run(serve)
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
