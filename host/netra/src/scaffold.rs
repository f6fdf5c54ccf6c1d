//! `netra plugin new` and `netra plugin build`: a tool plugin in Rust,
//! Python or JavaScript from the SDK's template, and one command that builds
//! any of them into a component with its manifest beside it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

/// The languages a plugin can be written in.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// Rust, with `netra-sdk` (sdk/rust).
    Rust,
    /// Python, with componentize-py (sdk/python).
    Python,
    /// JavaScript, with componentize-js (sdk/js).
    Js,
}

/// Arguments of `netra plugin new`.
#[derive(clap::Args, Debug)]
pub struct NewArgs {
    /// The plugin's language.
    #[arg(long, value_enum)]
    pub lang: Lang,
    /// The plugin's name: letters, digits, `-` and `_`.
    pub name: String,
    /// Where to create it [default: ./NAME].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The netra source tree holding `sdk/` and `wit/` [default:
    /// $NETRA_SDK_ROOT, else the tree this netra was built from].
    #[arg(long, value_name = "DIR")]
    pub sdk_root: Option<PathBuf>,
}

/// Arguments of `netra plugin build`.
#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// The plugin's directory: a cargo crate, or `app.py` / `app.js` with a
    /// `plugin.toml`.
    pub dir: PathBuf,
    /// The component to write [default: DIR/NAME.wasm]; the manifest is
    /// copied beside it as NAME.toml.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The netra source tree holding `sdk/` and `wit/` [default:
    /// $NETRA_SDK_ROOT, else the tree this netra was built from].
    #[arg(long, value_name = "DIR")]
    pub sdk_root: Option<PathBuf>,
}

/// The templates, as shipped in the SDKs.
mod templates {
    pub const RUST_CARGO: &str = include_str!("../../../sdk/rust/template/Cargo.toml.in");
    pub const RUST_LIB: &str = include_str!("../../../sdk/rust/template/src/lib.rs");
    pub const RUST_MANIFEST: &str = include_str!("../../../sdk/rust/template/plugin.toml");
    pub const PYTHON_APP: &str = include_str!("../../../sdk/python/template/app.py");
    pub const PYTHON_MANIFEST: &str = include_str!("../../../sdk/python/template/plugin.toml");
    pub const JS_APP: &str = include_str!("../../../sdk/js/template/app.js");
    pub const JS_MANIFEST: &str = include_str!("../../../sdk/js/template/plugin.toml");
}

/// Creates a tool plugin that builds and answers `greet` out of the box.
pub fn new(args: NewArgs) -> anyhow::Result<ExitCode> {
    let name = args.name.trim();
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("{name:?} is not a plugin name: use letters, digits, - and _ (at most 64)");
    }
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{} exists and is not empty", dir.display());
    }
    let root = sdk_root(args.sdk_root.as_deref())?;
    let files: Vec<(&str, String)> = match args.lang {
        Lang::Rust => {
            let sdk = std::path::absolute(root.join("sdk").join("rust"))?;
            vec![
                (
                    "Cargo.toml",
                    fill(templates::RUST_CARGO, name)
                        .replace("{{sdk}}", &sdk.display().to_string()),
                ),
                ("src/lib.rs", fill(templates::RUST_LIB, name)),
                ("plugin.toml", manifest(templates::RUST_MANIFEST, name)),
            ]
        }
        Lang::Python => vec![
            ("app.py", fill(templates::PYTHON_APP, name)),
            ("plugin.toml", manifest(templates::PYTHON_MANIFEST, name)),
        ],
        Lang::Js => vec![
            ("app.js", fill(templates::JS_APP, name)),
            ("plugin.toml", manifest(templates::JS_MANIFEST, name)),
        ],
    };
    for (file, text) in &files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("created {} ({:?} tool plugin)", dir.display(), args.lang);
    println!("  build: netra plugin build {}", dir.display());
    println!(
        "  try:   netra tool call {} greet '{{\"name\": \"Ada\"}}'",
        dir.join(format!("{name}.wasm")).display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Builds the plugin in `args.dir` with its language's toolchain.
pub fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let dir = &args.dir;
    let manifest_file = dir.join("plugin.toml");
    let manifest = netra_config::Manifest::load(&manifest_file)
        .map_err(|problems| anyhow::anyhow!("{problems}"))
        .with_context(|| format!("{} needs a valid plugin.toml", dir.display()))?;
    let output = match args.output {
        Some(output) => output,
        None => dir.join(format!("{}.wasm", manifest.name)),
    };
    let output = std::path::absolute(&output)?;
    if let Some(parent) = output.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let root = sdk_root(args.sdk_root.as_deref());
    if dir.join("Cargo.toml").is_file() {
        build_rust(dir, &output)?;
    } else if dir.join("app.py").is_file() {
        let script = root?.join("sdk").join("python").join("build.py");
        let mut command = Command::new("python3");
        command.arg(script).arg(dir).arg("-o").arg(&output);
        run(command, "the Python build")?;
    } else if dir.join("app.js").is_file() {
        let script = root?.join("sdk").join("js").join("build.mjs");
        let mut command = Command::new("node");
        command.arg(script).arg(dir).arg("-o").arg(&output);
        run(command, "the JavaScript build")?;
    } else {
        bail!(
            "{} holds no Cargo.toml, app.py or app.js: nothing to build",
            dir.display()
        );
    }
    let beside = output.with_extension("toml");
    if beside != manifest_file {
        std::fs::copy(&manifest_file, &beside)
            .with_context(|| format!("cannot copy the manifest to {}", beside.display()))?;
    }
    let size = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
    println!(
        "built {} ({} {}, {:.1} MiB) with its manifest {}",
        output.display(),
        manifest.kind.as_str(),
        manifest.name,
        size as f64 / f64::from(1 << 20),
        beside.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `cargo build` for wasm32-wasip2 in release, then copies the component.
fn build_rust(dir: &Path, output: &Path) -> anyhow::Result<()> {
    let cargo_toml = std::fs::read_to_string(dir.join("Cargo.toml"))?;
    let package: toml::Table = cargo_toml.parse().context("Cargo.toml is not TOML")?;
    let crate_name = package
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(toml::Value::as_str)
        .context("Cargo.toml has no package.name")?
        .replace('-', "_");
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("target"));
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    run(command, "cargo build")?;
    let built = target_dir
        .join("wasm32-wasip2")
        .join("release")
        .join(format!("{crate_name}.wasm"));
    std::fs::copy(&built, output)
        .with_context(|| format!("cannot copy {} to {}", built.display(), output.display()))?;
    Ok(())
}

fn run(mut command: Command, what: &str) -> anyhow::Result<()> {
    eprintln!("$ {command:?}");
    let status = command
        .status()
        .with_context(|| format!("cannot start {what} ({command:?})"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Where `sdk/` and `wit/` are.
fn sdk_root(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let root = given
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("NETRA_SDK_ROOT").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")));
    if !root.join("sdk").is_dir() || !root.join("wit").is_dir() {
        bail!(
            "{} does not hold netra's sdk/ and wit/; pass --sdk-root or set NETRA_SDK_ROOT",
            root.display()
        );
    }
    Ok(root)
}

/// `template` with the plugin's name in place of `{{name}}`.
fn fill(template: &str, name: &str) -> String {
    template.replace("{{name}}", name)
}

/// A template manifest naming the plugin `name`.
fn manifest(template: &str, name: &str) -> String {
    fill(template, name)
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("name =") || line.trim_start().starts_with("name=") {
                format!("name = {name:?}")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_get_the_plugin_name() {
        let manifest = manifest(
            "# a comment\nname = \"greet\"\nkind = \"tool\"\n",
            "hello-py",
        );
        assert!(manifest.contains("name = \"hello-py\"\n"), "{manifest}");
        assert!(manifest.contains("kind = \"tool\""), "{manifest}");
        assert_eq!(fill("crate {{name}}", "x"), "crate x");
    }
}
