//! The rules a candidate set of plugins must pass before it is served: pure
//! functions of what was built and what is served now.

use crate::deps::Dependencies;
use crate::registry::Conflict;

use super::Built;

/// Whether the candidate `built` for a change to `subject` may replace what
/// is served (`before`, the graph served now): the subject must load,
/// implement its declared kind, be granted what it needs, provide no tool or
/// agent another plugin provides, and have all it needs; and no plugin whole
/// now may be left degraded. `Err` holds every reason, for the operator.
pub(super) fn verdict(
    built: &Built,
    before: Option<&Dependencies>,
    subject: &str,
) -> Result<(), Vec<String>> {
    let mut reasons = Vec::new();
    if let Some(node) = built.nodes.iter().find(|n| n.name == subject) {
        reasons.extend(node.refused.iter().cloned());
        // Hot-loading never degrades: grants must be satisfied.
        reasons.extend(node.ungranted.iter().cloned());
    }
    if reasons.is_empty() {
        reasons.extend(built.deps.problems(subject).iter().cloned());
    }
    for conflict in built.registry.conflicts() {
        if conflict.involves(subject) {
            let why = conflict_reason(conflict, conflict.other(subject));
            if !reasons.contains(&why) {
                reasons.push(why);
            }
        }
    }
    for name in newly_degraded(before, &built.deps, subject) {
        let why = built.deps.problems(&name).join("; ");
        reasons.push(format!("it would leave plugin {name} degraded: {why}"));
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

/// Plugins whole in `before` (other than `subject`) that `after` degrades.
pub(super) fn newly_degraded(
    before: Option<&Dependencies>,
    after: &Dependencies,
    subject: &str,
) -> Vec<String> {
    let Some(before) = before else {
        return Vec::new();
    };
    before
        .order()
        .iter()
        .filter_map(|id| id.strip_prefix("plugin."))
        .filter(|name| *name != subject)
        .filter(|name| before.problems(name).is_empty() && !before.is_refused(name))
        .filter(|name| !after.problems(name).is_empty())
        .map(str::to_string)
        .collect()
}

/// Why `conflict` refuses a plugin: `other` already provides the name.
pub(super) fn conflict_reason(conflict: &Conflict, other: &str) -> String {
    format!(
        "{} {:?} is already provided by plugin {other}",
        conflict.kind, conflict.name
    )
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet, HashMap};

    use super::*;
    use crate::deps::PluginNode;
    use crate::health::{Health, HealthPolicy};
    use crate::registry::Registry;

    fn node(name: &str) -> PluginNode {
        PluginNode {
            name: name.into(),
            kind: Some("agent".into()),
            manifest: true,
            ..PluginNode::default()
        }
    }

    fn graph(nodes: &[PluginNode]) -> Dependencies {
        let providers: BTreeSet<String> = ["local".to_string()].into();
        let health = Health::new(HealthPolicy::default());
        Dependencies::build(
            &Registry::default(),
            nodes.to_vec(),
            &providers,
            health,
            "memory",
        )
    }

    fn built(nodes: &[PluginNode]) -> Built {
        Built {
            registry: Registry::default(),
            deps: graph(nodes),
            nodes: nodes.to_vec(),
            loaded: HashMap::new(),
            failures: BTreeMap::new(),
        }
    }

    #[test]
    fn a_whole_candidate_passes() {
        let nodes = [node("helper"), node("other")];
        assert_eq!(
            verdict(&built(&nodes), Some(&graph(&nodes)), "helper"),
            Ok(())
        );
    }

    #[test]
    fn a_subject_that_did_not_load_or_is_not_granted_says_why() {
        let mut refused = node("helper");
        refused
            .refused
            .push("failed to load: not a component".into());
        let reasons = verdict(&built(&[refused]), None, "helper").unwrap_err();
        assert_eq!(reasons, ["failed to load: not a component"]);

        let mut ungranted = node("helper");
        ungranted
            .ungranted
            .push("needs kv, not granted (plugin.helper.kv)".into());
        let reasons = verdict(&built(&[ungranted]), None, "helper").unwrap_err();
        assert_eq!(reasons, ["needs kv, not granted (plugin.helper.kv)"]);
    }

    #[test]
    fn a_subject_missing_what_it_needs_is_refused() {
        let mut needy = node("helper");
        needy.needs_tools.insert("calculate".into());
        let reasons = verdict(&built(&[needy]), None, "helper").unwrap_err();
        assert!(reasons[0].contains("calculate"), "{reasons:?}");
    }

    #[test]
    fn a_change_that_degrades_another_plugin_is_refused() {
        let before = graph(&[node("helper"), node("reporter")]);
        // After the change, `reporter` needs a provider nobody configures.
        let mut reporter = node("reporter");
        reporter.needs_llm.insert("gone".into());
        let after = built(&[node("helper"), reporter]);
        let reasons = verdict(&after, Some(&before), "helper").unwrap_err();
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(
            reasons[0].starts_with("it would leave plugin reporter degraded: "),
            "{reasons:?}"
        );
        // A plugin already degraded, or the subject itself, does not count.
        assert!(newly_degraded(Some(&after.deps), &after.deps, "helper").is_empty());
        assert!(newly_degraded(Some(&before), &after.deps, "reporter").is_empty());
    }
}
