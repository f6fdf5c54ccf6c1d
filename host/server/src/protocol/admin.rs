//! The HTTP bodies: every error response, and the `/v1/admin` API
//! (plugins, their versions, changes, uploads, deletions, the audit log).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Codes of an HTTP error body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpErrorCode {
    /// No such route, plugin or version.
    NotFound,
    /// The request is malformed.
    BadRequest,
    /// The body is over `server.max_body_bytes`.
    BodyTooLarge,
    /// An admin body (an upload) is over its limit.
    TooLarge,
    /// The upgrade offered no netra.v1 subprotocol.
    UnsupportedSubprotocol,
    /// The user has `server.max_sessions_per_user` sessions open.
    TooManySessions,
    /// No valid token.
    Unauthorized,
    /// The token lacks the admin role.
    Forbidden,
    /// The change conflicts with the plugin's state.
    Conflict,
    /// The candidate set was rejected; `reasons` say why.
    Rejected,
    /// The host failed.
    Internal,
}

/// `{"error": CODE, "reason": TEXT}`, and for a rejected candidate the
/// plugin and every reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpError {
    /// Machine-readable code.
    pub error: HttpErrorCode,
    /// What was wrong, in a sentence.
    pub reason: String,
    /// The plugin a rejection is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// Every reason of a rejection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

impl HttpError {
    /// An error with `code` and `reason`.
    pub fn new(error: HttpErrorCode, reason: impl Into<String>) -> Self {
        Self {
            error,
            reason: reason.into(),
            plugin: None,
            reasons: Vec::new(),
        }
    }
}

/// `GET /v1/admin/plugins`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PluginList {
    /// Every plugin, by name.
    pub plugins: Vec<PluginInfo>,
}

/// A plugin as the admin API shows it (`GET /v1/admin/plugins/NAME`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Its name.
    pub name: String,
    /// `tool` or `agent`, if known.
    pub kind: Option<String>,
    /// Whether an operator left it enabled.
    pub enabled: bool,
    /// `ready`, `degraded`, `refused` or `disabled`.
    pub state: String,
    /// Why it is not ready.
    pub reasons: Vec<String>,
    /// The version new runs use.
    pub active: Option<VersionInfo>,
    /// Every version kept, newest first.
    pub versions: Vec<VersionInfo>,
    /// Why the last candidate for it was rejected, if the last change was a
    /// rejection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rejection: Option<Vec<String>>,
}

/// A version as the admin API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// Content hash.
    pub digest: String,
    /// Its manifest's version.
    pub version: Option<String>,
    /// `tool` or `agent`.
    pub kind: String,
    /// Bytes of the component.
    pub size: u64,
    /// `dir` or `upload`.
    pub source: String,
    /// When the host first saw it (RFC 3339).
    pub created_at: String,
    /// `host` or `admin:USER`.
    pub created_by: String,
    /// Whether new runs use it.
    pub active: bool,
}

/// What a change did (activate, rollback, disable, enable).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Changed {
    /// The plugin.
    pub plugin: String,
    /// The version now active, if any.
    pub active: Option<VersionInfo>,
    /// Whether it is enabled.
    pub enabled: bool,
    /// Plugins this change left degraded (disable only).
    pub degraded: Vec<String>,
}

/// `POST /v1/admin/plugins/NAME/activate`'s body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Activate {
    /// A digest, a prefix of one, or a manifest version.
    pub version: String,
}

/// `POST /v1/admin/plugins/NAME/versions`: the version kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Uploaded {
    /// The plugin.
    pub plugin: String,
    /// The version kept.
    pub version: VersionInfo,
    /// Whether it was activated.
    pub activated: bool,
}

/// `DELETE /v1/admin/plugins/NAME/versions/VERSION`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deleted {
    /// The plugin.
    pub plugin: String,
    /// The digest of the version deleted.
    pub deleted: String,
}

/// `GET /v1/admin/audit`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    /// The newest entries first.
    pub entries: Vec<AuditEntry>,
}

/// One entry of the audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When (RFC 3339).
    pub ts: String,
    /// `host` or `admin:USER`.
    pub actor: String,
    /// `plugin.load`, `plugin.activate`, ...
    pub action: String,
    /// The plugin.
    pub subject: String,
    /// What the action recorded (see [`AuditDetail`] for what the host
    /// writes); `null` when the stored detail is not JSON.
    pub detail: Value,
}

/// The details the host records with each audit action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AuditDetail {
    /// `plugin.reject`: the candidate and why it was refused.
    Rejected {
        /// Its digest.
        digest: String,
        /// `dir` or `upload`.
        source: String,
        /// Why.
        reasons: Vec<String>,
    },
    /// `plugin.load`, `plugin.activate`, `plugin.upload` (activated),
    /// `plugin.rollback`, `plugin.change`: the version now served.
    Version {
        /// Its digest.
        digest: String,
        /// Its manifest's version.
        version: Option<String>,
        /// `dir` or `upload`.
        source: String,
        /// `start` for a load at start.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<String>,
    },
    /// `plugin.delete`: the version deleted, and the plugins whose versions
    /// still use its file.
    Deletion {
        /// Its digest.
        digest: String,
        /// Plugins still using the file, which was then kept.
        files_kept_for: Vec<String>,
    },
    /// `plugin.upload` without activation.
    Kept {
        /// Its digest.
        digest: String,
        /// Always false.
        activated: bool,
    },
    /// `plugin.disable`: what it left degraded.
    Disabled {
        /// The plugins degraded.
        degraded: Vec<String>,
    },
    /// `run.recover`: runs a crash left running, closed at start.
    Recovered {
        /// Their ids.
        runs: Vec<String>,
        /// The code they were closed with.
        code: String,
    },
    /// `plugin.enable`: nothing more.
    Empty {},
}

impl AuditDetail {
    /// As the store keeps it.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// `plugins.changed`, sent to every session when the served plugins change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PluginsChanged {
    /// Always `plugins.changed`.
    #[serde(rename = "type")]
    pub frame: PluginsChangedType,
    /// What changed.
    #[serde(flatten)]
    pub change: PluginChange,
}

/// The `type` of [`PluginsChanged`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PluginsChangedType {
    /// `plugins.changed`.
    #[serde(rename = "plugins.changed")]
    PluginsChanged,
}

/// What a `plugins.changed` says; list agents or tools again to see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum PluginChange {
    /// A new or earlier version is what new runs get.
    Activated {
        /// The plugin.
        plugin: String,
        /// Its version's label: the manifest's `version`, else the start
        /// of the hash.
        version: Option<String>,
        /// Its content hash.
        digest: Option<String>,
    },
    /// An operator disabled the plugin (`version` and `digest` are null).
    Disabled {
        /// The plugin.
        plugin: String,
        /// Always null.
        version: Option<String>,
        /// Always null.
        digest: Option<String>,
    },
    /// An operator enabled it again.
    Enabled {
        /// The plugin.
        plugin: String,
        /// Its version's label.
        version: Option<String>,
        /// Its content hash.
        digest: Option<String>,
    },
    /// This session fell behind and missed notices: list again.
    Many {
        /// How many it missed.
        missed: u64,
    },
}

impl PluginsChanged {
    /// The frame for `change`.
    pub fn new(change: PluginChange) -> Self {
        Self {
            frame: PluginsChangedType::PluginsChanged,
            change,
        }
    }

    /// The frame's text.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugins_changed_round_trips_with_nulls_for_a_disabled_plugin() {
        let frame = PluginsChanged::new(PluginChange::Disabled {
            plugin: "calc".into(),
            version: None,
            digest: None,
        });
        let text = frame.to_text();
        assert_eq!(
            text,
            r#"{"type":"plugins.changed","change":"disabled","plugin":"calc","version":null,"digest":null}"#
        );
        let back: PluginsChanged = serde_json::from_str(&text).expect("decodes");
        assert_eq!(back, frame);
        let many = PluginsChanged::new(PluginChange::Many { missed: 3 }).to_text();
        assert_eq!(
            many,
            r#"{"type":"plugins.changed","change":"many","missed":3}"#
        );
    }

    #[test]
    fn audit_details_decode_as_what_was_written() {
        for detail in [
            AuditDetail::Rejected {
                digest: "sha256:1".into(),
                source: "dir".into(),
                reasons: vec!["no".into()],
            },
            AuditDetail::Version {
                digest: "sha256:1".into(),
                version: Some("1.0.0".into()),
                source: "upload".into(),
                at: None,
            },
            AuditDetail::Deletion {
                digest: "sha256:1".into(),
                files_kept_for: vec!["other".into()],
            },
            AuditDetail::Kept {
                digest: "sha256:1".into(),
                activated: false,
            },
            AuditDetail::Disabled {
                degraded: vec!["helper".into()],
            },
            AuditDetail::Empty {},
        ] {
            let back: AuditDetail = serde_json::from_str(&detail.to_text()).expect("decodes");
            assert_eq!(back, detail);
        }
    }
}
