//! Streamable HTTP on `/mcp`. In order, each request is checked for:
//! 1. its `Host` and `Origin` (DNS rebinding: 403, before anything else);
//! 2. its bearer token, the WebSocket's JWTs (401 with `WWW-Authenticate`
//!    pointing at `/.well-known/oauth-protected-resource`);
//! 3. its session: a session belongs to the user who opened it (another
//!    user's id is 404, as an unknown one), and a user holds at most
//!    `max_sessions_per_user` (429);
//! 4. its body: at most `server.max_body_bytes` (413), one well-formed
//!    JSON-RPC message ([`super::wire`]: 400 with a JSON-RPC error);
//!
//! then `rmcp` serves it (JSON-RPC, `MCP-Protocol-Version`, sessions, SSE),
//! with the user in the request's extensions, except the one hot request:
//! a plain `tools/call` of a tool in a live session of the caller (no
//! progress asked, no log level set) is answered here, as JSON, the same
//! result rmcp would send. rmcp's session worker, channels and SSE stream
//! cost about 0.23 ms a request on the 2 cores, 15 times the call itself
//! (BENCHMARKS.md, "MCP"). `notifications/cancelled` reaches such a call
//! here too.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use netra_auth::Authenticator;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{Handler, Mcp};
use crate::lock;

type Body = BoxBody<Bytes, Infallible>;

/// The path of the protected-resource metadata (RFC 9728).
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

const SESSION_HEADER: &str = "mcp-session-id";

/// `/mcp` and its metadata document.
pub struct McpHttp {
    mcp: Arc<Mcp>,
    service: StreamableHttpService<Handler, LocalSessionManager>,
    sessions: Arc<LocalSessionManager>,
    /// Each session's user, by session id.
    owners: Mutex<HashMap<String, String>>,
    /// Direct calls going, by (session, request id), to cancel them.
    inflight: Mutex<HashMap<(String, String), CancellationToken>>,
}

impl McpHttp {
    /// Serves `mcp` over HTTP.
    pub fn new(mcp: Arc<Mcp>) -> Self {
        let settings = mcp.settings().clone();
        let mut manager = LocalSessionManager::default();
        manager.session_config.keep_alive = Some(settings.session_idle_timeout);
        let sessions = Arc::new(manager);
        // Host and Origin are checked here, before authentication.
        let config = StreamableHttpServerConfig::default()
            .disable_allowed_hosts()
            .disable_allowed_origins()
            .with_legacy_session_mode(settings.sessions)
            .with_json_response(true)
            .with_max_request_body_bytes(settings.max_body_bytes);
        // One handler per session (its log level is the session's).
        let for_sessions = mcp.clone();
        let service = StreamableHttpService::new(
            move || Ok(Handler::http(for_sessions.clone())),
            sessions.clone(),
            config,
        );
        Self {
            mcp,
            service,
            sessions,
            owners: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
        }
    }

    /// Answers one request to `/mcp`.
    pub async fn handle(&self, request: Request<Incoming>, auth: &Authenticator) -> Response<Body> {
        let settings = self.mcp.settings();
        if let Err(reason) = check_host(&request, &settings.allowed_hosts) {
            return error(StatusCode::FORBIDDEN, "forbidden", &reason);
        }
        if let Err(reason) = check_origin(&request, &settings.allowed_origins) {
            return error(StatusCode::FORBIDDEN, "forbidden", &reason);
        }
        let principal = match auth.authenticate(request.headers()) {
            Ok(principal) => principal,
            Err(rejection) => return unauthorized(&request, &rejection.reason),
        };
        let user = principal.user_id.clone();
        let session = request
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if let Some(id) = &session {
            let owner = lock(&self.owners).get(id).cloned();
            if owner.is_some_and(|owner| owner != user) {
                return error(
                    StatusCode::NOT_FOUND,
                    "session_not_found",
                    "no such session (sessions belong to the user who opened them)",
                );
            }
        }
        let deleting = request.method() == Method::DELETE;
        let (mut parts, body) = request.into_parts();
        let limit = settings.max_body_bytes;
        let body = match http_body_util::Limited::new(body, limit).collect().await {
            Ok(body) => body.to_bytes(),
            Err(err) if err.is::<http_body_util::LengthLimitError>() => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    &format!("the body is over {limit} bytes (server.max_body_bytes)"),
                );
            }
            Err(err) => {
                return error(StatusCode::BAD_REQUEST, "bad_request", &err.to_string());
            }
        };
        if parts.method == Method::POST
            && let Err(refused) = super::wire::check(&body)
        {
            return json_response(StatusCode::BAD_REQUEST, &refused.to_json());
        }
        // An `initialize` opens a session (2026-07-28 has none).
        let opening = settings.sessions
            && session.is_none()
            && parts.method == Method::POST
            && serde_json::from_slice::<Value>(&body).is_ok_and(|m| {
                m.get("method").and_then(Value::as_str) == Some("initialize")
                    && m.pointer("/params/protocolVersion").and_then(Value::as_str)
                        < Some("2026-07-28")
            });
        if opening && let Err(response) = self.admit(&user).await {
            return response;
        }
        if parts.method == Method::POST
            && let Some(session) = &session
        {
            match self.direct(&parts, session, &user, &body).await {
                Direct::Answered(response) => return response,
                Direct::Cancelled(key) => {
                    if let Some(token) = lock(&self.inflight).get(&key) {
                        token.cancel();
                    }
                }
                Direct::No => {}
            }
        }
        parts.extensions.insert(principal);
        let request = Request::from_parts(parts, http_body_util::Full::new(body));
        let mut response = self.service.handle(request).await;
        if opening
            && let Some(id) = response
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
        {
            lock(&self.owners).insert(id.to_string(), user);
        }
        if deleting
            && response.status().is_success()
            && let Some(id) = session
        {
            lock(&self.owners).remove(&id);
            // The session is gone; nothing is left to accept (clients
            // expect 200 or 204 here).
            *response.status_mut() = StatusCode::NO_CONTENT;
        }
        response
    }

    /// Answers a plain `tools/call` in `session` of `user` directly, or
    /// says it is a cancel (which rmcp gets too), or not for here.
    async fn direct(
        &self,
        parts: &hyper::http::request::Parts,
        session: &str,
        user: &str,
        body: &Bytes,
    ) -> Direct {
        let version = parts
            .headers
            .get("mcp-protocol-version")
            .and_then(|v| v.to_str().ok());
        if !matches!(version, Some("2025-11-25" | "2025-06-18" | "2025-03-26")) {
            return Direct::No;
        }
        let Ok(message) = serde_json::from_slice::<Value>(body) else {
            return Direct::No;
        };
        let method = message.get("method").and_then(Value::as_str);
        let params = message.get("params");
        if method == Some("notifications/cancelled")
            && let Some(id) = params.and_then(|p| p.get("requestId"))
        {
            return Direct::Cancelled((session.to_string(), id.to_string()));
        }
        let (Some("tools/call"), Some(id), Some(params)) = (method, message.get("id"), params)
        else {
            return Direct::No;
        };
        let Some(name) = params.get("name").and_then(Value::as_str) else {
            return Direct::No;
        };
        let wants_progress = params
            .get("_meta")
            .is_some_and(|meta| meta.get("progressToken").is_some());
        let owned = lock(&self.owners).get(session).is_some_and(|o| o == user);
        if wants_progress || !owned || lock(&self.mcp.logging).contains(session) {
            return Direct::No;
        }
        let registry = self.mcp.runs.registry();
        if self.mcp.kind(&registry, name) != Some(super::Kind::Tool) {
            return Direct::No;
        }
        let Some(entry) = registry.tool(name).cloned() else {
            return Direct::No;
        };
        drop(registry);
        // Its questions go to the client on the call's own stream.
        if entry.plugin.asks() {
            return Direct::No;
        }
        if !self.sessions.sessions.read().await.contains_key(session) {
            return Direct::No;
        }
        let arguments = match params.get("arguments") {
            None | Some(Value::Null) => String::from("{}"),
            Some(arguments) => arguments.to_string(),
        };
        let key = (session.to_string(), id.to_string());
        let cancel = CancellationToken::new();
        lock(&self.inflight).insert(key.clone(), cancel.clone());
        let follow = super::call::Follow::default();
        let result = super::call::invoke(user, &entry, name, &arguments, follow, &cancel).await;
        lock(&self.inflight).remove(&key);
        let Some(mut result) = result else {
            // Cancelled: the client stopped waiting; nothing to answer.
            return Direct::Answered(empty(StatusCode::ACCEPTED));
        };
        // Revisions before 2026-07-28 have no `resultType`.
        result.result_type = None;
        let answer = json!({"jsonrpc": "2.0", "id": id, "result": result});
        Direct::Answered(json_response(StatusCode::OK, &answer))
    }

    /// Room for one more session of `user`, or the response refusing it.
    async fn admit(&self, user: &str) -> Result<(), Response<Body>> {
        let settings = self.mcp.settings();
        let live: Vec<String> = self
            .sessions
            .sessions
            .read()
            .await
            .keys()
            .map(|id| id.to_string())
            .collect();
        let mut owners = lock(&self.owners);
        // Sessions that ended (idle, deleted, closed) give their place back.
        owners.retain(|id, _| live.contains(id));
        if owners.len() >= settings.max_sessions {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_sessions",
                &format!(
                    "the host holds its limit of {} MCP sessions (mcp.max_sessions)",
                    settings.max_sessions
                ),
            ));
        }
        let held = owners.values().filter(|owner| *owner == user).count();
        if held >= settings.max_sessions_per_user {
            return Err(error(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_sessions",
                &format!(
                    "you hold {held} MCP sessions (mcp.max_sessions_per_user is {}); end one with DELETE",
                    settings.max_sessions_per_user
                ),
            ));
        }
        Ok(())
    }

    /// The protected-resource metadata of `/mcp` (RFC 9728), as the MCP
    /// authorization spec asks: where the resource is and how to present
    /// a token.
    pub fn metadata(&self, request: &Request<Incoming>, issuer: &str) -> Response<Body> {
        let base = base_url(request);
        let mut document = json!({
            "resource": format!("{base}/mcp"),
            "bearer_methods_supported": ["header"],
            "resource_name": "netra",
        });
        // Tokens come from the operator's issuer; a URL is an
        // authorization server clients may discover.
        if issuer.starts_with("https://") || issuer.starts_with("http://") {
            document["authorization_servers"] = json!([issuer]);
        }
        json_response(StatusCode::OK, &document)
    }
}

/// What the direct path makes of a request.
enum Direct {
    /// Answered here.
    Answered(Response<Body>),
    /// A cancel of the request with this key (rmcp gets it too).
    Cancelled((String, String)),
    /// For rmcp.
    No,
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(http_body_util::Empty::new().boxed());
    *response.status_mut() = status;
    response
}

/// `scheme://host` of the request, for URLs pointing back at this host.
fn base_url(request: &Request<Incoming>) -> String {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// 401 with the reason and a challenge naming the metadata document.
fn unauthorized(request: &Request<Incoming>, reason: &str) -> Response<Body> {
    let mut response = error(StatusCode::UNAUTHORIZED, "unauthorized", reason);
    let challenge = format!(
        "Bearer error=\"invalid_token\", resource_metadata=\"{}{METADATA_PATH}\"",
        base_url(request)
    );
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// The host name of an authority (`host`, `host:port`, `[v6]:port`).
fn host_name(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest
            .split(']')
            .next()
            .map_or(authority, |inner| &authority[..inner.len() + 2]);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// The `Host` must be one `/mcp` answers to (an empty list allows any).
fn check_host(request: &Request<Incoming>, allowed: &[String]) -> Result<(), String> {
    if allowed.is_empty() {
        return Ok(());
    }
    let Some(host) = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
    else {
        return Err("the request has no Host header".into());
    };
    let host = host.to_ascii_lowercase();
    let name = host_name(&host);
    if allowed.iter().any(|a| a == name || *a == host) {
        return Ok(());
    }
    Err(format!(
        "Host {host:?} is not one this server answers to (mcp.allowed_hosts)"
    ))
}

/// A browser's `Origin`, when present, must be a loopback one or listed.
fn check_origin(request: &Request<Incoming>, allowed: &[String]) -> Result<(), String> {
    let Some(origin) = request.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("").to_ascii_lowercase();
    if origin_allowed(&origin, allowed) {
        return Ok(());
    }
    Err(format!(
        "Origin {origin:?} may not call this server (mcp.allowed_origins)"
    ))
}

fn origin_allowed(origin: &str, allowed: &[String]) -> bool {
    if allowed.iter().any(|a| a == origin) {
        return true;
    }
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    if !matches!(scheme, "http" | "https") {
        return false;
    }
    let name = host_name(authority);
    if matches!(name, "localhost" | "127.0.0.1" | "[::1]") {
        return true;
    }
    allowed.iter().any(|entry| {
        entry
            .strip_suffix(":*")
            .is_some_and(|base| base == format!("{scheme}://{name}"))
    })
}

fn error(status: StatusCode, code: &str, reason: &str) -> Response<Body> {
    json_response(status, &json!({ "error": code, "reason": reason }))
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut response =
        Response::new(http_body_util::Full::new(Bytes::from(body.to_string())).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_drop_the_port() {
        assert_eq!(host_name("localhost:8080"), "localhost");
        assert_eq!(host_name("[::1]:8080"), "[::1]");
        assert_eq!(host_name("example.com"), "example.com");
    }

    #[test]
    fn loopback_and_listed_origins_pass() {
        let listed = vec![
            "https://app.example.com".to_string(),
            "http://dev.example.com:*".to_string(),
        ];
        assert!(origin_allowed("http://localhost:5173", &listed));
        assert!(origin_allowed("http://127.0.0.1", &listed));
        assert!(origin_allowed("https://app.example.com", &listed));
        assert!(origin_allowed("http://dev.example.com:9000", &listed));
        assert!(!origin_allowed("http://evil.example.com", &listed));
        assert!(!origin_allowed("https://app.example.com:444", &listed));
        assert!(!origin_allowed("null", &listed));
    }
}
