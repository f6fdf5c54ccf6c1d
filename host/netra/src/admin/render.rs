//! What `netra admin` prints: the host's answers decoded as the admin API's
//! wire types, in a few lines for people.

use anyhow::anyhow;
use hyper::StatusCode;
use netra_server::protocol::admin::{
    AuditPage, Changed, Deleted, HttpError, HttpErrorCode, PluginInfo, PluginList, Uploaded,
    VersionInfo,
};
use serde_json::Value;

use super::{AdminCommand, SHORT_DIGEST};

/// What a refused request prints after `error: `: the body's `reason`, or
/// for a rejected candidate (422 `rejected`) every reason on its own line.
pub(super) fn refusal(status: StatusCode, body: &[u8]) -> String {
    let Ok(error) = serde_json::from_slice::<HttpError>(body) else {
        let text = String::from_utf8_lossy(body).trim().to_string();
        return if text.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {text}")
        };
    };
    if error.error == HttpErrorCode::Rejected || !error.reasons.is_empty() {
        let plugin = error.plugin.as_deref().unwrap_or("the plugin");
        let mut text = format!("{plugin} was rejected:");
        for reason in &error.reasons {
            // A reason may span lines (a guest's panic message does); its
            // later lines are indented further, so each reason stands apart.
            text.push_str("\n  ");
            text.push_str(&reason.trim_end().replace('\n', "\n    "));
        }
        return text;
    }
    error.reason
}

/// The host's answer to `command`, decoded as the wire type it sends.
fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> anyhow::Result<T> {
    serde_json::from_slice(body).map_err(|err| anyhow!("unexpected answer: {err}"))
}

/// The lines `netra admin` prints for a successful answer `body`.
pub(super) fn render(command: &AdminCommand, body: &[u8]) -> anyhow::Result<Vec<String>> {
    let label =
        |version: &Option<VersionInfo>| version.as_ref().map_or_else(String::new, version_label);
    Ok(match command {
        AdminCommand::List => {
            let list: PluginList = decode(body)?;
            if list.plugins.is_empty() {
                return Ok(vec!["no plugins".to_string()]);
            }
            plugin_lines(&list.plugins)
        }
        AdminCommand::Show { .. } => {
            let plugin: PluginInfo = decode(body)?;
            let mut lines = plugin_lines(std::slice::from_ref(&plugin));
            for reason in &plugin.reasons {
                lines.push(format!("  reason: {reason}"));
            }
            for version in &plugin.versions {
                let mark = if version.active { '*' } else { ' ' };
                lines.push(format!(
                    "{mark} {:<24} {:<6} {} {}",
                    version_label(version),
                    version.source,
                    version.created_at,
                    version.created_by,
                ));
            }
            lines
        }
        AdminCommand::Upload { .. } => {
            let uploaded: Uploaded = decode(body)?;
            let state = if uploaded.activated {
                "now active"
            } else {
                "stored, not activated"
            };
            vec![format!(
                "uploaded {} {}: {state}",
                uploaded.plugin,
                version_label(&uploaded.version)
            )]
        }
        AdminCommand::Activate { .. } => {
            let changed: Changed = decode(body)?;
            vec![format!(
                "{}: activated {}",
                changed.plugin,
                label(&changed.active)
            )]
        }
        AdminCommand::Rollback { .. } => {
            let changed: Changed = decode(body)?;
            vec![format!(
                "{}: rolled back to {}",
                changed.plugin,
                label(&changed.active)
            )]
        }
        AdminCommand::Disable { .. } => {
            let changed: Changed = decode(body)?;
            if changed.degraded.is_empty() {
                vec![format!("{}: disabled", changed.plugin)]
            } else {
                vec![format!(
                    "{}: disabled; this leaves degraded: {}",
                    changed.plugin,
                    changed.degraded.join(", ")
                )]
            }
        }
        AdminCommand::Enable { .. } => {
            let changed: Changed = decode(body)?;
            vec![format!("{}: enabled", changed.plugin)]
        }
        AdminCommand::Delete { .. } => {
            let deleted: Deleted = decode(body)?;
            vec![format!("{}: deleted {}", deleted.plugin, deleted.deleted)]
        }
        AdminCommand::Audit { .. } => {
            let page: AuditPage = decode(body)?;
            if page.entries.is_empty() {
                return Ok(vec!["no audit entries".to_string()]);
            }
            page.entries
                .iter()
                .map(|entry| {
                    let detail = match &entry.detail {
                        Value::Null => String::new(),
                        Value::String(text) => text.clone(),
                        detail => detail.to_string(),
                    };
                    let line = format!(
                        "{} {} {} {} {detail}",
                        entry.ts, entry.actor, entry.action, entry.subject
                    );
                    line.trim_end().to_string()
                })
                .collect()
        }
    })
}

/// One line per plugin, in aligned columns: name, kind, state, active
/// version, number of versions.
fn plugin_lines(plugins: &[PluginInfo]) -> Vec<String> {
    let rows: Vec<[String; 5]> = plugins
        .iter()
        .map(|plugin| {
            let active = plugin
                .active
                .as_ref()
                .map_or_else(|| "no active version".to_string(), version_label);
            let count = plugin.versions.len();
            [
                plugin.name.clone(),
                plugin.kind.clone().unwrap_or_else(|| "?".into()),
                plugin.state.clone(),
                active,
                format!("{count} version{}", if count == 1 { "" } else { "s" }),
            ]
        })
        .collect();
    let width = |column: usize| rows.iter().map(|row| row[column].len()).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2), width(3)];
    rows.iter()
        .map(|row| {
            format!(
                "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
            )
        })
        .collect()
}

/// A version as people read it: its manifest version, if any, and the first
/// hex digits of its digest (`0.2.0 3f9c2a7d41b0`).
fn version_label(version: &VersionInfo) -> String {
    let digest = version.digest.as_str();
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let short = hex.get(..SHORT_DIGEST).unwrap_or(hex);
    match &version.version {
        Some(manifest) => format!("{manifest} {short}"),
        None => short.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_show_the_reason_and_every_rejection() {
        let body = br#"{"error":"not_found","reason":"no plugin named \"x\""}"#;
        assert_eq!(
            refusal(StatusCode::NOT_FOUND, body),
            "no plugin named \"x\""
        );
        let body = br#"{"error":"rejected","reason":"helper rejected: ...","plugin":"helper","reasons":["needs tool \"calc\"","trapped:\npanicked\n","bad manifest"]}"#;
        assert_eq!(
            refusal(StatusCode::UNPROCESSABLE_ENTITY, body),
            "helper was rejected:\n  needs tool \"calc\"\n  trapped:\n    panicked\n  bad manifest"
        );
        assert_eq!(
            refusal(StatusCode::BAD_GATEWAY, b"upstream down\n"),
            "HTTP 502 Bad Gateway: upstream down"
        );
        assert_eq!(
            refusal(StatusCode::PAYLOAD_TOO_LARGE, b""),
            "HTTP 413 Payload Too Large"
        );
    }

    fn version(digest: &str, manifest: Option<&str>, active: bool) -> VersionInfo {
        VersionInfo {
            digest: digest.into(),
            version: manifest.map(String::from),
            kind: "agent".into(),
            size: 10,
            source: "upload".into(),
            created_at: "2026-11-25T01:00:00Z".into(),
            created_by: "admin:alice".into(),
            active,
        }
    }

    /// What `netra admin` prints for the host's answer `body`.
    fn shown(command: &AdminCommand, body: &impl serde::Serialize) -> Vec<String> {
        let bytes = serde_json::to_vec(body).expect("serializes");
        render(command, &bytes).expect("renders")
    }

    #[test]
    fn list_and_show_print_one_line_per_plugin_and_version() {
        let new = version(&format!("sha256:{}", "ab".repeat(32)), Some("0.2.0"), true);
        let old = version(&format!("sha256:{}", "cd".repeat(32)), None, false);
        let helper = PluginInfo {
            name: "helper".into(),
            kind: Some("agent".into()),
            enabled: true,
            state: "ready".into(),
            reasons: Vec::new(),
            active: Some(new.clone()),
            versions: vec![new, old.clone()],
            last_rejection: None,
        };
        let calc = PluginInfo {
            name: "calculator".into(),
            kind: Some("tool".into()),
            enabled: false,
            state: "disabled".into(),
            reasons: vec!["disabled by admin:alice".into()],
            active: None,
            versions: vec![old],
            last_rejection: None,
        };
        let list = PluginList {
            plugins: vec![helper.clone(), calc.clone()],
        };
        assert_eq!(
            shown(&AdminCommand::List, &list),
            [
                "helper      agent  ready     0.2.0 abababababab  2 versions",
                "calculator  tool   disabled  no active version   1 version",
            ]
        );
        let show = |name: &str| AdminCommand::Show { name: name.into() };
        let lines = shown(&show("calculator"), &calc);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[1], "  reason: disabled by admin:alice");
        let lines = shown(&show("helper"), &helper);
        assert_eq!(
            &lines[1..],
            [
                "* 0.2.0 abababababab       upload 2026-11-25T01:00:00Z admin:alice",
                "  cdcdcdcdcdcd             upload 2026-11-25T01:00:00Z admin:alice",
            ]
        );
        // An answer of the wrong shape is an error, not a line of `?`s.
        assert!(render(&show("helper"), br#"{"plugins": []}"#).is_err());
    }

    #[test]
    fn other_commands_print_what_happened() {
        let v = version(&format!("sha256:{}", "ab".repeat(32)), Some("0.2.0"), true);
        let name = || "helper".to_string();
        let upload = AdminCommand::Upload {
            name: name(),
            wasm: "x".into(),
            manifest: None,
            no_activate: false,
        };
        let uploaded = Uploaded {
            plugin: name(),
            version: v.clone(),
            activated: true,
        };
        assert_eq!(
            shown(&upload, &uploaded),
            ["uploaded helper 0.2.0 abababababab: now active"]
        );
        let changed = |active: Option<VersionInfo>, degraded: &[&str]| Changed {
            plugin: name(),
            active,
            enabled: degraded.is_empty(),
            degraded: degraded.iter().map(|d| d.to_string()).collect(),
        };
        let rollback = AdminCommand::Rollback { name: name() };
        assert_eq!(
            shown(&rollback, &changed(Some(v), &[])),
            ["helper: rolled back to 0.2.0 abababababab"]
        );
        let disable = AdminCommand::Disable { name: name() };
        assert_eq!(
            shown(&disable, &changed(None, &["a", "b"])),
            ["helper: disabled; this leaves degraded: a, b"]
        );
        let audit = AdminCommand::Audit { limit: 50 };
        let page = AuditPage {
            entries: vec![
                netra_server::protocol::admin::AuditEntry {
                    ts: "2026-11-25T01:00:00Z".into(),
                    actor: "admin:alice".into(),
                    action: "activate".into(),
                    subject: "helper".into(),
                    detail: serde_json::json!({"version": "0.2.0"}),
                },
                netra_server::protocol::admin::AuditEntry {
                    ts: "2026-11-25T00:00:00Z".into(),
                    actor: "host".into(),
                    action: "load".into(),
                    subject: "calculator".into(),
                    detail: Value::Null,
                },
            ],
        };
        assert_eq!(
            shown(&audit, &page),
            [
                r#"2026-11-25T01:00:00Z admin:alice activate helper {"version":"0.2.0"}"#,
                "2026-11-25T00:00:00Z host load calculator",
            ]
        );
    }
}
