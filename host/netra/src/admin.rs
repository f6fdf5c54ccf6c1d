//! `netra admin`: a client of the host's admin HTTP API (`/v1/admin/...`), to
//! list, upload, activate, roll back, disable, enable and delete plugin
//! versions and to read the audit log.
//!
//! It speaks plain HTTP/1.1 with hyper, one connection per command: the admin
//! API is meant for loopback or an admin network, so there is no TLS here.
//! Every command is a [`Call`] (built from the arguments without touching the
//! network), one request, and either the raw JSON body (`--json`) or a few
//! lines for people ([`render`]).

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use netra_server::protocol::admin::{
    Activate, AuditPage, Changed, Deleted, HttpError, HttpErrorCode, PluginInfo, PluginList,
    Uploaded, VersionInfo,
};
use serde_json::Value;
use tokio::net::TcpStream;

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

/// Where the admin API is: what `--url` names.
#[derive(Debug, PartialEq, Eq)]
struct Base {
    /// The URL as given, for messages.
    url: String,
    /// The host to connect to, without IPv6 brackets.
    host: String,
    port: u16,
    /// The `Host` header: the URL's authority.
    authority: String,
    /// The URL's path without a trailing `/` (usually empty).
    prefix: String,
}

impl Base {
    fn parse(url: &str) -> anyhow::Result<Self> {
        let uri: Uri = url.parse().map_err(|e| anyhow!("bad URL {url:?}: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => bail!(
                "{url}: netra admin speaks plain http:// only (loopback or an admin network); \
                 reach a remote host through a local TLS-terminating proxy or tunnel"
            ),
            _ => bail!("bad URL {url:?}: expected http://HOST[:PORT]"),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow!("bad URL {url:?}: no host"))?;
        if authority.as_str().contains('@') {
            bail!("bad URL {url:?}: credentials go in --token, not in the URL");
        }
        if uri.query().is_some() {
            bail!("bad URL {url:?}: a base URL has no query");
        }
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        Ok(Self {
            url: url.to_string(),
            host: host.to_string(),
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_string(),
            prefix: uri.path().trim_end_matches('/').to_string(),
        })
    }

    /// The origin-form target (path and query) of an admin route.
    fn target(&self, segments: &[String], query: Option<&str>) -> String {
        let mut target = format!("{}/v1/admin", self.prefix);
        for segment in segments {
            target.push('/');
            target.push_str(&encode_segment(segment));
        }
        if let Some(query) = query {
            target.push('?');
            target.push_str(query);
        }
        target
    }
}

/// Percent-encodes one path segment: everything but RFC 3986's unreserved
/// characters and `:`, so a name or version can never add a segment (`/`),
/// start a query (`?`) or be read as `.`/`..`.
fn encode_segment(segment: &str) -> String {
    let dots_only = segment.bytes().all(|b| b == b'.');
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'_' | b'~' | b':')
            || (byte == b'.' && !dots_only);
        if keep {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// One part of a multipart/form-data body.
struct Part {
    /// The form field.
    name: &'static str,
    filename: String,
    content_type: &'static str,
    data: Vec<u8>,
}

/// A boundary that occurs in none of the parts: the first candidate, from
/// `seed`, that no part contains.
fn boundary(seed: u64, parts: &[Part]) -> String {
    let mut state = seed;
    loop {
        let candidate = format!("netra-boundary-{state:016x}");
        let needle = candidate.as_bytes();
        if !parts.iter().any(|part| contains(&part.data, needle)) {
            return candidate;
        }
        // splitmix64's step: the next candidate shares nothing with this one.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        state = (state ^ (state >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        state = (state ^ (state >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        state ^= state >> 31;
    }
}

/// Some bits that differ from one run to the next, for the first boundary.
fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ u64::from(std::process::id()).rotate_left(32)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// The multipart/form-data body (RFC 7578) of `parts`, delimited by `boundary`.
fn multipart(boundary: &str, parts: &[Part]) -> Vec<u8> {
    let size: usize = parts.iter().map(|p| p.data.len() + 256).sum();
    let mut body = Vec::with_capacity(size);
    for part in parts {
        // A quote or line break would end the header early.
        let filename: String = part
            .filename
            .chars()
            .map(|c| match c {
                '"' | '\\' | '\r' | '\n' => '_',
                c => c,
            })
            .collect();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\n\
                 Content-Disposition: form-data; name=\"{}\"; filename=\"{filename}\"\r\n\
                 Content-Type: {}\r\n\r\n",
                part.name, part.content_type
            )
            .as_bytes(),
        );
        body.extend_from_slice(&part.data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

/// A response: its status and whole body.
struct Reply {
    status: StatusCode,
    body: Bytes,
}

/// Makes one request on a new connection.
async fn send(base: &Base, token: &str, call: Call) -> anyhow::Result<Reply> {
    let target = base.target(&call.segments, call.query.as_deref());
    let url = format!("http://{}{target}", base.authority);
    let (content_type, body) = match call.body {
        Body::Empty => (None, Bytes::new()),
        Body::Json(activate) => (
            Some("application/json".to_string()),
            Bytes::from(serde_json::to_string(&activate)?),
        ),
        Body::Multipart { boundary, bytes } => (
            Some(format!("multipart/form-data; boundary={boundary}")),
            Bytes::from(bytes),
        ),
    };
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| anyhow!("the token has characters an HTTP header cannot carry"))?;
    let mut request = Request::builder()
        .method(call.method)
        .uri(&target)
        .header(HOST, &base.authority)
        .header(AUTHORIZATION, bearer);
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    let request = request
        .body(Full::new(body))
        .with_context(|| format!("cannot make a request for {url}"))?;

    let stream = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((base.host.as_str(), base.port)),
    )
    .await
    .map_err(|_| anyhow!("cannot connect to {}: timed out", base.url))?
    .with_context(|| format!("cannot connect to {}", base.url))?;
    // Requests are single writes; waiting to batch them only adds latency.
    let _ = stream.set_nodelay(true);
    let exchange = async {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        // The connection is driven until the response has been read; it is
        // dropped, and closed, when this function returns.
        let connection = tokio::spawn(connection);
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| anyhow!(e))?
            .to_bytes();
        connection.abort();
        anyhow::Ok(Reply { status, body })
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| anyhow!("{url}: no answer within {} s", REQUEST_TIMEOUT.as_secs()))?
        .with_context(|| format!("request to {url} failed"))
}

/// What a refused request prints after `error: `: the body's `reason`, or
/// for a rejected candidate (422 `rejected`) every reason on its own line.
fn refusal(status: StatusCode, body: &[u8]) -> String {
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
fn render(command: &AdminCommand, body: &[u8]) -> anyhow::Result<Vec<String>> {
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

    fn part(name: &'static str, filename: &str, data: &[u8]) -> Part {
        Part {
            name,
            filename: filename.to_string(),
            content_type: if name == "wasm" {
                "application/wasm"
            } else {
                "application/toml"
            },
            data: data.to_vec(),
        }
    }

    #[test]
    fn multipart_frames_each_part_with_headers_and_crlfs() {
        let parts = [
            part("wasm", "helper.wasm", b"\0asm\x0d\x00\x01\x00"),
            part("manifest", "plugin.toml", b"name = \"helper\"\n"),
        ];
        let body = multipart("B0UND", &parts);
        let want = b"--B0UND\r\n\
Content-Disposition: form-data; name=\"wasm\"; filename=\"helper.wasm\"\r\n\
Content-Type: application/wasm\r\n\
\r\n\
\0asm\x0d\x00\x01\x00\r\n\
--B0UND\r\n\
Content-Disposition: form-data; name=\"manifest\"; filename=\"plugin.toml\"\r\n\
Content-Type: application/toml\r\n\
\r\n\
name = \"helper\"\n\r\n\
--B0UND--\r\n";
        assert_eq!(
            String::from_utf8_lossy(&body),
            String::from_utf8_lossy(want)
        );
    }

    #[test]
    fn multipart_without_a_manifest_has_one_part() {
        let body = multipart("b", &[part("wasm", "x.wasm", b"abc")]);
        let text = String::from_utf8_lossy(&body);
        assert_eq!(text.matches("--b\r\n").count(), 1);
        assert!(text.ends_with("\r\nabc\r\n--b--\r\n"), "{text:?}");
        assert!(!text.contains("manifest"));
    }

    #[test]
    fn filenames_cannot_break_the_header() {
        let body = multipart("b", &[part("wasm", "a\"b\r\nc.wasm", b"")]);
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("filename=\"a_b__c.wasm\"\r\n"), "{text:?}");
    }

    #[test]
    fn the_boundary_is_not_in_the_data() {
        let seed = 42;
        let first = boundary(seed, &[part("wasm", "x", b"plain")]);
        assert_eq!(first, "netra-boundary-000000000000002a");
        // Data that holds the first candidate gets another one.
        let tricky = [
            part("wasm", "x", format!("..{first}..").as_bytes()),
            part("manifest", "y", b"z"),
        ];
        let second = boundary(seed, &tricky);
        assert_ne!(second, first);
        assert!(tricky.iter().all(|p| !contains(&p.data, second.as_bytes())));
        // RFC 2046: at most 70 characters.
        assert!(second.len() <= 70);
        // It is also absent from the whole body except as delimiters.
        let body = multipart(&second, &tricky);
        let text = String::from_utf8_lossy(&body);
        assert_eq!(text.matches(second.as_str()).count(), 3);
    }

    #[test]
    fn urls_join_with_and_without_a_prefix() {
        let base = Base::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (base.host.as_str(), base.port, base.authority.as_str()),
            ("127.0.0.1", 8080, "127.0.0.1:8080")
        );
        let segments = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            base.target(&segments(&["plugins"]), None),
            "/v1/admin/plugins"
        );
        assert_eq!(
            base.target(&segments(&["audit"]), Some("limit=50")),
            "/v1/admin/audit?limit=50"
        );
        for url in ["http://admin.local/netra/", "http://admin.local/netra"] {
            let base = Base::parse(url).unwrap();
            assert_eq!(base.port, 80);
            assert_eq!(
                base.target(&segments(&["plugins", "helper", "versions"]), None),
                "/netra/v1/admin/plugins/helper/versions"
            );
        }
        let base = Base::parse("http://[::1]:9000/").unwrap();
        assert_eq!((base.host.as_str(), base.port), ("::1", 9000));
        assert_eq!(base.authority, "[::1]:9000");
        assert_eq!(
            base.target(&segments(&["plugins"]), None),
            "/v1/admin/plugins"
        );
    }

    #[test]
    fn path_segments_are_encoded() {
        let base = Base::parse("http://h:1").unwrap();
        let target = base.target(
            &[
                "plugins".into(),
                "a/b?c".into(),
                "versions".into(),
                "sha256:3f9c2a7d".into(),
            ],
            None,
        );
        assert_eq!(
            target,
            "/v1/admin/plugins/a%2Fb%3Fc/versions/sha256:3f9c2a7d"
        );
        assert_eq!(encode_segment("0.2.0"), "0.2.0");
        assert_eq!(encode_segment(".."), "%2E%2E");
        assert_eq!(encode_segment("a b%"), "a%20b%25");
    }

    #[test]
    fn only_plain_http_urls_are_accepted() {
        let https = Base::parse("https://host").unwrap_err().to_string();
        assert!(https.contains("plain http://"), "{https}");
        assert!(Base::parse("ws://host/v1/ws").is_err());
        assert!(Base::parse("127.0.0.1:8080").is_err());
        assert!(Base::parse("http://user:pw@host").is_err());
        assert!(Base::parse("not a url").is_err());
    }

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
