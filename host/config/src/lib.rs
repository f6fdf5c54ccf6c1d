//! `netra.toml`: the operator's one configuration file.
//!
//! Reading happens in two steps. First the file (and any `NETRA_*`
//! environment overrides, see [`env`]) is read section by section out of a
//! TOML table, with every mistake collected instead of stopping at the first:
//! unknown keys (with the closest known one), wrong types, values out of
//! range, empty paths, unset secret variables. Then the values are resolved
//! into a [`Config`] (defaults filled in, relative paths made absolute
//! against the file's directory, secrets read, cross-references such as a
//! plugin's LLM grant checked against the providers). [`load`] returns the
//! config or [`Problems`], every one with its key path and a hint; that is
//! what `netra config check` prints.
//!
//! Secrets (the JWT secret, API keys) are never written in the file: it names
//! an environment variable (`*_env`) or a file (`*_file`), and the value is a
//! [`Secret`] whose `Debug` and `Display` print `***`.

#![warn(missing_docs)]

mod budgets;
mod config;
pub mod env;
mod host_pattern;
pub mod manifest;
mod mcp;
mod problem;
mod read;
mod secret;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use budgets::{BudgetOverrides, Budgets};
pub use config::{
    Auth, Config, Durability, FileGrant, GoldenPath, Health, LimitOverrides, Limits, LlmProvider,
    PluginConfig, PluginLimits, Plugins, Server, Store, StoreKind, Ungranted,
};
pub use host_pattern::{BadHostPattern, HostPattern};
pub use manifest::{Manifest, Needs, PluginKind};
pub use mcp::{Exposed, Mcp};
pub use problem::{Problem, Problems};
pub use secret::Secret;

use problem::Report;

/// The file [`load`] reads when none is named: `NETRA_CONFIG`, else
/// `./netra.toml` if it exists.
pub fn default_file() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NETRA_CONFIG") {
        return Some(PathBuf::from(path));
    }
    let local = PathBuf::from("netra.toml");
    local.exists().then_some(local)
}

/// A TOML value, for [`load_with`]'s overrides.
pub use toml::Value;

/// Reads `file` (or [`default_file`], or nothing: all defaults) with the
/// process's environment.
pub fn load(file: Option<&Path>) -> Result<Config, Problems> {
    load_with(file, Vec::new())
}

/// [`load`], then `overrides` (dotted key path, value) over the file and the
/// environment: command-line flags. They are checked like the file.
pub fn load_with(file: Option<&Path>, overrides: Vec<(String, Value)>) -> Result<Config, Problems> {
    let file = file.map(Path::to_path_buf).or_else(default_file);
    let vars: Vec<(String, String)> = std::env::vars().collect();
    let Some(file) = file else {
        return parse(None, Path::new("."), vars, overrides);
    };
    let text = std::fs::read_to_string(&file).map_err(|err| {
        Problems(vec![Problem {
            path: file.display().to_string(),
            message: format!("cannot read the config file: {err}"),
            hint: Some("pass an existing file with --config".into()),
        }])
    })?;
    let base = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let parsed = parse(Some(&text), &base, vars, overrides).map(|mut config| {
        config.file = Some(file.clone());
        config
    });
    parsed.map_err(|mut problems| {
        for problem in &mut problems.0 {
            if problem.path.is_empty() {
                problem.path = file.display().to_string();
            }
        }
        problems
    })
}

/// Reads a configuration from TOML text; relative paths are resolved against
/// `base`; `vars` are the environment (overrides and secret variables).
pub fn from_toml(
    text: &str,
    base: &Path,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, Problems> {
    parse(Some(text), base, vars.into_iter().collect(), Vec::new())
}

fn parse(
    text: Option<&str>,
    base: &Path,
    vars: Vec<(String, String)>,
    overrides: Vec<(String, Value)>,
) -> Result<Config, Problems> {
    let vars: HashMap<String, String> = vars.into_iter().collect();
    let mut table: toml::Table = match text.unwrap_or("").parse() {
        Ok(table) => table,
        Err(err) => {
            return Err(Problems(vec![Problem {
                path: String::new(),
                message: format!("not valid TOML: {}", err.to_string().trim()),
                hint: None,
            }]));
        }
    };
    let mut report = Report::default();
    env::apply(&mut table, vars.clone(), &mut report);
    env::apply_values(&mut table, overrides, &mut report);
    let lookup = |name: &str| vars.get(name).cloned();
    let config = config::resolve(&table, base, &lookup, &mut report);
    if report.0.is_empty() {
        Ok(config)
    } else {
        Err(Problems(report.0))
    }
}
