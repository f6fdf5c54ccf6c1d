//! `netra admin`: a client of the host's admin HTTP API (`/v1/admin/...`), to
//! list, upload, activate, roll back, disable, enable and delete plugin
//! versions and to read the audit log.
//!
//! It speaks plain HTTP/1.1 with hyper, one connection per command: the admin
//! API is meant for loopback or an admin network, so there is no TLS here.
//! Every command is a [`Call`] (built from the arguments without touching the
//! network), one request, and either the raw JSON body (`--json`) or a few
//! lines for people ([`render`]).

mod multipart;
mod render;
mod transport;
mod url;

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use hyper::Method;
use netra_server::protocol::admin::Activate;

use multipart::{Part, boundary, multipart, seed};
use render::{refusal, render};
use transport::send;
use url::Base;

/// The URL `netra serve` listens on by default.
const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// The largest upload body (the component, the manifest and the multipart
/// framing together).
const MAX_UPLOAD: usize = 64 << 20;

/// The largest response body read; answers are small JSON documents.
const MAX_RESPONSE: usize = 16 << 20;

/// How long to wait for the TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a whole request may take: an upload is compiled and checked
/// before the host answers, which can take a while for a large component.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Digests are shown by their first this many hex digits.
const SHORT_DIGEST: usize = 12;

/// Arguments of `netra admin`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
A VERSION is a digest (sha256:...), a unique prefix of one (at least 8 hex digits), or \
a manifest version (0.2.0) that only one version of the plugin has.

The admin API speaks plain http:// only: use it over loopback or an admin network. \
To reach a host anywhere else, put a TLS-terminating proxy or tunnel between (for \
example `ssh -L 8080:127.0.0.1:8080 HOST`) and point --url at its local end.")]
pub struct AdminArgs {
    /// The host's base URL; plain http:// only.
    #[arg(long, global = true, env = "NETRA_URL", default_value = DEFAULT_URL)]
    url: String,
    /// The bearer token: a JWT with the `admin` role (in dev mode,
    /// `netra token --sub NAME --role admin` prints one). Required.
    #[arg(long, global = true, env = "NETRA_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print the response body as the host sent it (JSON) instead of lines
    /// for people.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

/// The subcommands of `netra admin`.
#[derive(clap::Subcommand, Debug)]
enum AdminCommand {
    /// List the plugins: kind, state, active version and how many versions.
    List,
    /// Show a plugin and each of its versions (`*` marks the active one).
    Show {
        /// The plugin.
        name: String,
    },
    /// Upload a new version of a plugin; it is checked, stored and (unless
    /// --no-activate) made active.
    Upload {
        /// The plugin.
        name: String,
        /// The component (.wasm).
        #[arg(long, value_name = "FILE")]
        wasm: std::path::PathBuf,
        /// Its manifest (plugin.toml).
        #[arg(long, value_name = "FILE")]
        manifest: Option<std::path::PathBuf>,
        /// Store the version without making it active.
        #[arg(long)]
        no_activate: bool,
    },
    /// Make a stored version the active one.
    Activate {
        /// The plugin.
        name: String,
        /// The version to activate.
        version: String,
    },
    /// Activate the version that was active before the current one.
    Rollback {
        /// The plugin.
        name: String,
    },
    /// Stop serving a plugin; prints the plugins this leaves degraded.
    Disable {
        /// The plugin.
        name: String,
    },
    /// Serve a disabled plugin again.
    Enable {
        /// The plugin.
        name: String,
    },
    /// Delete a stored version (not the active one).
    Delete {
        /// The plugin.
        name: String,
        /// The version to delete.
        version: String,
    },
    /// Print the audit log, newest first.
    Audit {
        /// How many entries.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// Runs `netra admin`; a refused request is an error naming the reason.
pub async fn admin(args: AdminArgs) -> anyhow::Result<ExitCode> {
    let token = args
        .token
        .as_deref()
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            anyhow!(
                "a token is needed: pass --token or set NETRA_TOKEN (a JWT with the admin role)"
            )
        })?;
    let base = Base::parse(&args.url)?;
    let call = Call::of(&args.command)?;
    let reply = send(&base, token, call).await?;
    if !reply.status.is_success() {
        bail!("{}", refusal(reply.status, &reply.body));
    }
    if args.json {
        let text = String::from_utf8_lossy(&reply.body);
        println!("{}", text.trim_end());
        return Ok(ExitCode::SUCCESS);
    }
    let lines = render(&args.command, &reply.body).with_context(|| {
        format!(
            "the host answered HTTP {} with a body this client cannot read",
            reply.status
        )
    })?;
    for line in lines {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// One request to make: everything but the host and the token.
#[derive(Debug)]
struct Call {
    method: Method,
    /// The path segments after `/v1/admin/`, not yet percent-encoded.
    segments: Vec<String>,
    /// The query string, already encoded.
    query: Option<String>,
    body: Body,
}

#[derive(Debug)]
enum Body {
    Empty,
    Json(Activate),
    Multipart { boundary: String, bytes: Vec<u8> },
}

impl Call {
    /// The request of a command; reads the files an upload sends.
    fn of(command: &AdminCommand) -> anyhow::Result<Self> {
        let call = |method, segments: &[&str]| Self {
            method,
            segments: segments.iter().map(|s| s.to_string()).collect(),
            query: None,
            body: Body::Empty,
        };
        Ok(match command {
            AdminCommand::List => call(Method::GET, &["plugins"]),
            AdminCommand::Show { name } => call(Method::GET, &["plugins", name]),
            AdminCommand::Upload {
                name,
                wasm,
                manifest,
                no_activate,
            } => {
                let mut parts = vec![Part {
                    name: "wasm",
                    filename: file_name(wasm),
                    content_type: "application/wasm",
                    data: read(wasm)?,
                }];
                if let Some(manifest) = manifest {
                    parts.push(Part {
                        name: "manifest",
                        filename: file_name(manifest),
                        content_type: "application/toml",
                        data: read(manifest)?,
                    });
                }
                let boundary = boundary(seed(), &parts);
                let bytes = multipart(&boundary, &parts);
                if bytes.len() > MAX_UPLOAD {
                    bail!(
                        "the upload is {} bytes; the limit is {} MiB",
                        bytes.len(),
                        MAX_UPLOAD >> 20
                    );
                }
                Self {
                    query: no_activate.then(|| "activate=false".to_string()),
                    body: Body::Multipart { boundary, bytes },
                    ..call(Method::POST, &["plugins", name, "versions"])
                }
            }
            AdminCommand::Activate { name, version } => Self {
                body: Body::Json(Activate {
                    version: version.clone(),
                }),
                ..call(Method::POST, &["plugins", name, "activate"])
            },
            AdminCommand::Rollback { name } => call(Method::POST, &["plugins", name, "rollback"]),
            AdminCommand::Disable { name } => call(Method::POST, &["plugins", name, "disable"]),
            AdminCommand::Enable { name } => call(Method::POST, &["plugins", name, "enable"]),
            AdminCommand::Delete { name, version } => {
                call(Method::DELETE, &["plugins", name, "versions", version])
            }
            AdminCommand::Audit { limit } => Self {
                query: Some(format!("limit={limit}")),
                ..call(Method::GET, &["audit"])
            },
        })
    }
}

fn read(file: &Path) -> anyhow::Result<Vec<u8>> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    if size > MAX_UPLOAD as u64 {
        bail!(
            "{} is {size} bytes; uploads are limited to {} MiB",
            file.display(),
            MAX_UPLOAD >> 20
        );
    }
    std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
}

fn file_name(file: &Path) -> String {
    file.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_name_the_route() {
        let call = Call::of(&AdminCommand::Delete {
            name: "helper".into(),
            version: "0.2.0".into(),
        })
        .unwrap();
        assert_eq!(call.method, Method::DELETE);
        assert_eq!(call.segments, ["plugins", "helper", "versions", "0.2.0"]);
        let call = Call::of(&AdminCommand::Activate {
            name: "helper".into(),
            version: "sha256:3f9c2a7d".into(),
        })
        .unwrap();
        assert_eq!(call.method, Method::POST);
        assert!(matches!(&call.body, Body::Json(a) if a.version == "sha256:3f9c2a7d"));
        let call = Call::of(&AdminCommand::Audit { limit: 7 }).unwrap();
        assert_eq!(call.query.as_deref(), Some("limit=7"));
    }

    #[test]
    fn uploads_read_both_files_and_can_skip_activation() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("helper.wasm");
        let manifest = dir.path().join("plugin.toml");
        std::fs::write(&wasm, b"\0asm").unwrap();
        std::fs::write(&manifest, b"name = \"helper\"\n").unwrap();
        let call = Call::of(&AdminCommand::Upload {
            name: "helper".into(),
            wasm,
            manifest: Some(manifest),
            no_activate: true,
        })
        .unwrap();
        assert_eq!(call.segments, ["plugins", "helper", "versions"]);
        assert_eq!(call.query.as_deref(), Some("activate=false"));
        let Body::Multipart { boundary, bytes } = &call.body else {
            panic!("not multipart: {call:?}");
        };
        let text = String::from_utf8_lossy(bytes);
        assert!(text.starts_with(&format!("--{boundary}\r\n")), "{text:?}");
        assert!(text.contains("name=\"wasm\"; filename=\"helper.wasm\""));
        assert!(text.contains("name=\"manifest\"; filename=\"plugin.toml\""));
        let missing = Call::of(&AdminCommand::Upload {
            name: "helper".into(),
            wasm: dir.path().join("nope.wasm"),
            manifest: None,
            no_activate: false,
        })
        .unwrap_err();
        assert!(format!("{missing:#}").contains("nope.wasm"), "{missing:#}");
    }
}
