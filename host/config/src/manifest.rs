//! Plugin manifests: `NAME.toml` beside `NAME.wasm`, written by the plugin's
//! author, saying what the plugin is and what it needs. The operator's grant
//! (`[plugin.NAME]` in netra.toml) decides what it gets; [`ungranted`] lists
//! the difference.
//!
//! ```toml
//! name = "helper"
//! version = "0.1.0"
//! kind = "agent"                      # or "tool"
//! description = "Answers arithmetic, time and notes questions."
//!
//! [needs]
//! tools = ["calculate", "now"]        # tools it calls (agents)
//! agents = []                         # agents it delegates to (agent-as-tool)
//! llm = ["local"]                     # LLM providers, or "provider/model"
//! kv = true
//! network = ["api.example.com"]       # hosts it calls over HTTP
//! files = ["/data"]                   # directories it expects to see
//! env = ["TZ"]                        # environment variables it reads
//!
//! [limits]                            # what it asks for; the grant caps it
//! memory = "32MiB"
//! deadline = "5s"
//! fuel = 100000000
//! ```

use std::collections::BTreeSet;
use std::path::Path;

use crate::config::{LimitOverrides, PluginConfig, PluginLimits, limit_overrides};
use crate::host_pattern::HostPattern;
use crate::problem::{Problem, Problems, Report};
use crate::read::Section;

/// What a plugin is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PluginKind {
    /// Exports `tool` (the `tool-plugin` world).
    Tool,
    /// Exports `agent` (the `agent-plugin` world).
    Agent,
}

impl PluginKind {
    /// `tool` or `agent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tool => "tool",
            Self::Agent => "agent",
        }
    }
}

/// A plugin's manifest, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// `name`: must equal the file's stem.
    pub name: String,
    /// `version`: the author's version, e.g. `0.1.0`.
    pub version: String,
    /// `kind`.
    pub kind: PluginKind,
    /// `description`.
    pub description: Option<String>,
    /// `[needs]`.
    pub needs: Needs,
    /// `[limits]`: what it asks for.
    pub limits: LimitOverrides,
}

/// `[needs]`: what a plugin cannot work without.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// `tools`: tools it calls.
    pub tools: BTreeSet<String>,
    /// `agents`: agents it delegates to (called like tools).
    pub agents: BTreeSet<String>,
    /// `llm`: LLM providers (`local`) or provider models (`local/llama3.1`).
    pub llm: Vec<String>,
    /// `kv`: whether it keeps data in kv.
    pub kv: bool,
    /// `network`: hosts it calls.
    pub network: Vec<String>,
    /// `files`: directories (guest paths) it expects.
    pub files: Vec<String>,
    /// `env`: environment variables it reads.
    pub env: Vec<String>,
}

impl Needs {
    /// The LLM providers named in `llm` (without models).
    pub fn llm_providers(&self) -> BTreeSet<String> {
        self.llm
            .iter()
            .map(|entry| entry.split_once('/').map_or(entry.as_str(), |(p, _)| p))
            .map(String::from)
            .collect()
    }
}

impl Manifest {
    /// Reads the manifest at `path`; problems carry the file's name.
    pub fn load(path: &Path) -> Result<Self, Problems> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            Problems(vec![Problem {
                path: path.display().to_string(),
                message: format!("cannot read the manifest: {err}"),
                hint: None,
            }])
        })?;
        Self::parse(&text).map_err(|mut problems| {
            for problem in &mut problems.0 {
                problem.path = if problem.path.is_empty() {
                    path.display().to_string()
                } else {
                    format!("{}: {}", path.display(), problem.path)
                };
            }
            problems
        })
    }

    /// Reads a manifest from TOML text, collecting every problem.
    pub fn parse(text: &str) -> Result<Self, Problems> {
        let table: toml::Table = text.parse().map_err(|err: toml::de::Error| {
            Problems(vec![Problem {
                path: String::new(),
                message: format!("not valid TOML: {}", err.to_string().trim()),
                hint: None,
            }])
        })?;
        let mut report = Report::default();
        let root = Section::root(&table);
        let name = required(&root, "name", &mut report);
        if let Some(name) = &name
            && !is_plugin_name(name)
        {
            report.hint(
                "name",
                format!("{name:?} is not a plugin name"),
                "use letters, digits, '-' and '_' (it is the .wasm file's name)",
            );
        }
        let version = required(&root, "version", &mut report);
        let kind = match root.string("kind", &mut report).as_deref() {
            Some("tool") => Some(PluginKind::Tool),
            Some("agent") => Some(PluginKind::Agent),
            Some(other) => {
                report.hint(
                    "kind",
                    format!("{other:?} is not a plugin kind"),
                    "use \"tool\" or \"agent\"",
                );
                None
            }
            None => {
                report.hint("kind", "missing", "use \"tool\" or \"agent\"");
                None
            }
        };
        let description = root.string("description", &mut report);
        let needs = needs(&root.table("needs", &mut report), &mut report);
        let limits = limit_overrides(&root.table("limits", &mut report), &mut report);
        root.finish(&mut report);
        if kind == Some(PluginKind::Tool) && !(needs.tools.is_empty() && needs.agents.is_empty()) {
            report.hint(
                "needs.tools",
                "a tool plugin cannot call tools or agents",
                "only agents list needs.tools and needs.agents",
            );
        }
        match (name, version, kind) {
            (Some(name), Some(version), Some(kind)) if report.0.is_empty() => Ok(Self {
                name,
                version,
                kind,
                description,
                needs,
                limits,
            }),
            _ => Err(Problems(report.0)),
        }
    }
}

fn required(s: &Section<'_>, key: &str, report: &mut Report) -> Option<String> {
    match s.string(key, report) {
        Some(value) if !value.trim().is_empty() => Some(value),
        Some(_) => {
            report.add(&s.key_path(key), "empty");
            None
        }
        None => {
            report.add(&s.key_path(key), "missing");
            None
        }
    }
}

fn needs(s: &Section<'_>, report: &mut Report) -> Needs {
    let set = |key: &str, report: &mut Report| -> BTreeSet<String> {
        s.strings(key, report)
            .unwrap_or_default()
            .into_iter()
            .collect()
    };
    let needs = Needs {
        tools: set("tools", report),
        agents: set("agents", report),
        llm: s.strings("llm", report).unwrap_or_default(),
        kv: s.bool("kv", report).unwrap_or(false),
        network: s.strings("network", report).unwrap_or_default(),
        files: s.strings("files", report).unwrap_or_default(),
        env: s.strings("env", report).unwrap_or_default(),
    };
    for (i, host) in needs.network.iter().enumerate() {
        if host.parse::<HostPattern>().is_err() {
            report.add(
                &format!("{}[{i}]", s.key_path("network")),
                format!("{host:?} is not a host name or pattern"),
            );
        }
    }
    for (i, dir) in needs.files.iter().enumerate() {
        if !dir.starts_with('/') {
            report.add(
                &format!("{}[{i}]", s.key_path("files")),
                format!("{dir:?} is not an absolute guest path"),
            );
        }
    }
    s.finish(report);
    needs
}

fn is_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Every need in `manifest` that `grant` does not give, as one sentence each
/// naming the key the operator would change. `granted` are the limits the
/// plugin gets (its kind's defaults under the grant's overrides). With no
/// `[plugin.NAME]` section the plugin is granted nothing beyond kv.
pub fn ungranted(
    manifest: &Manifest,
    grant: Option<&PluginConfig>,
    granted: PluginLimits,
) -> Vec<String> {
    let name = &manifest.name;
    let empty = PluginConfig::default();
    let grant = grant.unwrap_or(&empty);
    let mut out = Vec::new();
    let tools = grant.tools.clone().unwrap_or_default();
    for tool in manifest.needs.tools.iter().chain(&manifest.needs.agents) {
        if !tools.contains(tool) {
            out.push(format!(
                "needs tool {tool:?}, not granted (plugin.{name}.tools)"
            ));
        }
    }
    let provider = |entry: &str| entry.split_once('/').map_or(entry, |(p, _)| p).to_string();
    for entry in &manifest.needs.llm {
        let wanted = provider(entry);
        let granted = grant
            .llm
            .iter()
            .any(|g| g == entry || *g == wanted || (*entry == wanted && provider(g) == wanted));
        if !granted {
            out.push(format!(
                "needs LLM {entry:?}, not granted (plugin.{name}.llm)"
            ));
        }
    }
    if manifest.needs.kv && !grant.kv {
        out.push(format!("needs kv, not granted (plugin.{name}.kv)"));
    }
    for host in &manifest.needs.network {
        if !grant.network.iter().any(|g| covers(g, host)) {
            out.push(format!(
                "needs network access to {host:?}, not granted (plugin.{name}.network)"
            ));
        }
    }
    for dir in &manifest.needs.files {
        let granted = grant.files.iter().any(|f| {
            let guest = f.guest.trim_end_matches('/');
            dir == guest || dir.starts_with(&format!("{guest}/"))
        });
        if !granted {
            out.push(format!(
                "needs the directory {dir:?}, not granted (plugin.{name}.files)"
            ));
        }
    }
    for var in &manifest.needs.env {
        if !grant.env.contains(var) {
            out.push(format!("needs ${var}, not granted (plugin.{name}.env)"));
        }
    }
    let asked = &manifest.limits;
    if let Some(memory) = asked.memory
        && memory > granted.memory
    {
        out.push(format!(
            "asks for {} of memory, granted {} (plugin.{name}.limits.memory)",
            crate::read::show_size(memory),
            crate::read::show_size(granted.memory)
        ));
    }
    if let Some(deadline) = asked.deadline
        && deadline > granted.deadline
    {
        out.push(format!(
            "asks for a {} deadline, granted {} (plugin.{name}.limits.deadline)",
            humantime::format_duration(deadline),
            humantime::format_duration(granted.deadline)
        ));
    }
    if let (Some(asked), Some(fuel)) = (asked.fuel, granted.fuel)
        && asked > fuel
    {
        out.push(format!(
            "asks for {asked} fuel, granted {fuel} (plugin.{name}.limits.fuel)"
        ));
    }
    out
}

/// The limits a plugin runs with: what it asked for where that is tighter
/// than what it is granted.
pub fn effective_limits(manifest: &Manifest, granted: PluginLimits) -> PluginLimits {
    let asked = &manifest.limits;
    PluginLimits {
        memory: asked
            .memory
            .map_or(granted.memory, |m| m.min(granted.memory)),
        deadline: asked
            .deadline
            .map_or(granted.deadline, |d| d.min(granted.deadline)),
        fuel: match (asked.fuel, granted.fuel) {
            (Some(a), Some(g)) => Some(a.min(g)),
            (a, g) => g.or(a),
        },
        budgets: asked.budgets.tighter(granted.budgets),
    }
}

/// Whether the granted host pattern `grant` allows everything `need` names
/// (a pattern that does not parse, already reported, covers nothing).
fn covers(grant: &str, need: &str) -> bool {
    match (grant.parse::<HostPattern>(), need.parse::<HostPattern>()) {
        (Ok(grant), Ok(need)) => grant.covers(&need),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const HELPER: &str = r#"
name = "helper"
version = "0.1.0"
kind = "agent"
[needs]
tools = ["calculate", "now"]
kv = true
network = ["api.example.com"]
[limits]
memory = "32MiB"
deadline = "5s"
"#;

    fn granted() -> PluginLimits {
        PluginLimits {
            memory: 64 << 20,
            deadline: Duration::from_secs(60),
            fuel: None,
            budgets: crate::Budgets::default(),
        }
    }

    #[test]
    fn a_manifest_reads() {
        let m = Manifest::parse(HELPER).expect("valid");
        assert_eq!(m.name, "helper");
        assert_eq!(m.kind, PluginKind::Agent);
        assert_eq!(m.needs.tools.len(), 2);
        assert!(m.needs.kv);
        assert_eq!(m.limits.memory, Some(32 << 20));
    }

    #[test]
    fn every_mistake_in_a_manifest_is_reported() {
        let text = r#"
name = "bad name"
kind = "service"
colour = "red"
[needs]
network = ["http://x"]
files = ["data"]
[limits]
memory = "1TiB"
"#;
        let problems = Manifest::parse(text).expect_err("invalid").0;
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        for expected in [
            "name",
            "version",
            "kind",
            "colour",
            "needs.network[0]",
            "needs.files[0]",
            "limits.memory",
        ] {
            assert!(paths.contains(&expected), "{expected} missing in {paths:?}");
        }
    }

    #[test]
    fn ungranted_needs_name_the_key_to_change() {
        let m = Manifest::parse(HELPER).expect("valid");
        let reasons = ungranted(&m, None, granted());
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[0].contains("\"calculate\"") && reasons[0].contains("plugin.helper.tools"));
        assert!(reasons[2].contains("api.example.com"));

        let grant = PluginConfig {
            tools: Some(["calculate", "now"].map(String::from).into()),
            network: vec!["*.example.com".into()],
            ..PluginConfig::default()
        };
        assert!(ungranted(&m, Some(&grant), granted()).is_empty());

        let tight = PluginLimits {
            memory: 16 << 20,
            ..granted()
        };
        let reasons = ungranted(&m, Some(&grant), tight);
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].contains("32MiB") && reasons[0].contains("16MiB"));
    }

    #[test]
    fn a_plugin_gets_the_tighter_of_asked_and_granted() {
        let m = Manifest::parse(HELPER).expect("valid");
        let limits = effective_limits(&m, granted());
        assert_eq!(limits.memory, 32 << 20);
        assert_eq!(limits.deadline, Duration::from_secs(5));
    }
}
