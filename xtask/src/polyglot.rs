//! Plugins written in Python and JavaScript: the pinned toolchains that
//! build them (componentize-py from PyPI into `target/tools/python`,
//! componentize-js from npm into `sdk/js/node_modules`), installed on first
//! use, and the builds into `target/guests/{py,js}/NAME.wasm`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

/// A plugin language other than Rust.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// `app.py`, built by sdk/python/build.py.
    Python,
    /// `app.js`, built by sdk/js/build.mjs.
    Js,
}

impl Lang {
    /// The output directory's name under `target/guests/`.
    pub fn dir(self) -> &'static str {
        match self {
            Lang::Python => "py",
            Lang::Js => "js",
        }
    }
}

/// A Python or JavaScript plugin in `plugins/`.
pub struct Polyglot {
    /// Its language.
    pub lang: Lang,
    /// Its directory (name = the plugin's name).
    pub dir: PathBuf,
    /// Whether it is an example (copied to `target/plugins/`), not a fixture.
    pub example: bool,
}

impl Polyglot {
    /// The plugin's name: its directory's.
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Where it is built.
    pub fn output(&self, root: &Path) -> PathBuf {
        root.join("target")
            .join("guests")
            .join(self.lang.dir())
            .join(format!("{}.wasm", self.name()))
    }
}

/// Every Python and JavaScript plugin: examples in `plugins/*/`, fixtures
/// in `plugins/fixtures/*/`.
pub fn find(root: &Path) -> Result<Vec<Polyglot>> {
    let mut found = Vec::new();
    for (dir, example) in [
        (root.join("plugins"), true),
        (root.join("plugins").join("fixtures"), false),
    ] {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let lang = if path.join("app.py").is_file() {
                Lang::Python
            } else if path.join("app.js").is_file() {
                Lang::Js
            } else {
                continue;
            };
            found.push(Polyglot {
                lang,
                dir: path,
                example,
            });
        }
    }
    found.sort_by_key(|p| p.dir.clone());
    Ok(found)
}

/// Installs the pinned toolchain of `lang` if it is missing or its pin
/// changed since it was installed.
pub fn install(root: &Path, lang: Lang) -> Result<()> {
    match lang {
        Lang::Python => {
            let pins = root.join("sdk").join("python").join("requirements.txt");
            let venv = root.join("target").join("tools").join("python");
            let stamp = venv.join("installed-requirements.txt");
            if same_file_text(&pins, &stamp) && venv.join("bin").join("componentize-py").is_file() {
                return Ok(());
            }
            eprintln!("installing componentize-py (pinned in {})", pins.display());
            let mut venv_cmd = Command::new("python3");
            venv_cmd.args(["-m", "venv"]).arg(&venv);
            run(venv_cmd)?;
            let mut pip = Command::new(venv.join("bin").join("pip"));
            pip.args(["install", "--disable-pip-version-check", "-r"])
                .arg(&pins);
            run(pip)?;
            std::fs::copy(&pins, &stamp)?;
        }
        Lang::Js => {
            let sdk = root.join("sdk").join("js");
            let lock = sdk.join("package-lock.json");
            let stamp = sdk.join("node_modules").join(".netra-installed-lock.json");
            if same_file_text(&lock, &stamp) {
                return Ok(());
            }
            eprintln!("installing componentize-js (pinned in {})", lock.display());
            let mut npm = Command::new("npm");
            npm.args([
                "ci",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                "--prefix",
            ])
            .arg(&sdk)
            .arg("--cache")
            .arg(root.join("target").join("tools").join("npm-cache"));
            run(npm)?;
            std::fs::copy(&lock, &stamp)?;
        }
    }
    Ok(())
}

/// Builds every Python and JavaScript plugin whose output is older than its
/// sources, the SDK or the WIT. Returns them all.
pub fn build(root: &Path) -> Result<Vec<Polyglot>> {
    let plugins = find(root)?;
    for lang in [Lang::Python, Lang::Js] {
        if plugins.iter().any(|p| p.lang == lang) {
            install(root, lang)?;
        }
    }
    let wit = root.join("wit");
    for plugin in &plugins {
        let output = plugin.output(root);
        let sdk = match plugin.lang {
            Lang::Python => root.join("sdk").join("python"),
            Lang::Js => root.join("sdk").join("js"),
        };
        let inputs = [plugin.dir.clone(), sdk, wit.clone()];
        if newest(&inputs)? <= modified(&output) {
            continue;
        }
        if let Some(parent) = output.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut cmd = match plugin.lang {
            Lang::Python => {
                let mut cmd = Command::new("python3");
                cmd.arg(root.join("sdk").join("python").join("build.py"));
                cmd
            }
            Lang::Js => {
                let mut cmd = Command::new("node");
                cmd.arg(root.join("sdk").join("js").join("build.mjs"));
                cmd
            }
        };
        cmd.arg(&plugin.dir).arg("-o").arg(&output);
        run(cmd).with_context(|| format!("building {}", plugin.dir.display()))?;
    }
    Ok(plugins)
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

/// Whether both files exist with the same text.
fn same_file_text(a: &Path, b: &Path) -> bool {
    match (std::fs::read(a), std::fs::read(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// When `path` was last modified; the epoch if it does not exist.
fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The newest modification time of any file under `paths` (skipping
/// `node_modules` and `__pycache__`).
fn newest(paths: &[PathBuf]) -> Result<SystemTime> {
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = stack.pop() {
        let meta = std::fs::metadata(&path)?;
        if meta.is_dir() {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            if matches!(name.as_deref(), Some("node_modules" | "__pycache__")) {
                continue;
            }
            for entry in std::fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        } else {
            newest = newest.max(meta.modified()?);
        }
    }
    Ok(newest)
}
