//! The HTTP side: the accept loop, routes, and the WebSocket upgrade with
//! authentication checked before the upgrade (a bad token gets a 401, never
//! an upgrade followed by a close).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_tungstenite::tungstenite::protocol::WebSocketConfig;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::App;
use crate::protocol::SUBPROTOCOL;
use crate::protocol::admin::{HttpError, HttpErrorCode};
use crate::protocol::ready::{GoldenPathState, PublicReadyReport, StateOnly};

pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// One open connection's share of `max_connections`; an upgraded WebSocket
/// keeps it until the session ends.
type ConnectionPermit = Arc<OwnedSemaphorePermit>;

/// Accepts connections until `shutdown` fires. At most `max_connections` are
/// open at once: over it, new ones wait in the kernel's accept queue, so the
/// host never runs out of file descriptors for the connections it serves.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: CancellationToken) {
    let open = Arc::new(Semaphore::new(app.config.max_connections.max(1)));
    loop {
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => match permit {
                Ok(permit) => Arc::new(permit),
                Err(_) => return,
            },
            () = shutdown.cancelled() => return,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!("accept failed: {err}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => return,
        };
        // Without it, small responses wait for a delayed ACK (tens of ms).
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let header_read_timeout = app.config.header_read_timeout;
            let service = service_fn(move |request| route(request, app.clone(), permit.clone()));
            // The header-read timeout runs from when the server waits for a
            // request (the connection opened, or the last response was sent)
            // to the end of its headers: it closes a connection that sends
            // nothing, a partial request and an idle keep-alive connection.
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(err) = connection.await {
                tracing::debug!(%peer, "connection ended with an error: {err}");
            }
        });
    }
}

async fn route(
    request: Request<Incoming>,
    app: Arc<App>,
    permit: ConnectionPermit,
) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path();
    let admin = path == "/v1/admin" || path.starts_with("/v1/admin/");
    if path == "/mcp"
        && let Some(mcp) = &app.mcp
    {
        // Bodies are bounded by the MCP service (413), streamed or not.
        return Ok(mcp.handle(request, &app.auth).await);
    }
    // The admin routes bound their own bodies (uploads are larger); no other
    // route reads one, so a large one is refused before anything else.
    if let Some(length) = content_length(&request).filter(|_| !admin)
        && length > app.config.max_body_bytes as u64
    {
        return Ok(json(
            StatusCode::PAYLOAD_TOO_LARGE,
            HttpErrorCode::BodyTooLarge,
            &format!(
                "the body is {length} bytes; the limit is {} (server.max_body_bytes)",
                app.config.max_body_bytes
            ),
        ));
    }
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") => readyz(&app, request.headers()),
        (
            &Method::GET,
            crate::mcp::http::METADATA_PATH | "/.well-known/oauth-protected-resource/mcp",
        ) => match &app.mcp {
            Some(mcp) => mcp.metadata(&request, app.auth.issuer()),
            None => json(
                StatusCode::NOT_FOUND,
                HttpErrorCode::NotFound,
                "no such route",
            ),
        },
        _ if admin => crate::admin::route(request, &app).await,
        (_, "/v1/ws") => upgrade(request, app, permit),
        _ => json(
            StatusCode::NOT_FOUND,
            HttpErrorCode::NotFound,
            "no such route",
        ),
    };
    Ok(response)
}

/// 200 when ready, else 503. With a token that has the admin role (the
/// admin routes' check) the body is the whole report, with the reasons,
/// paths and endpoint URLs; anyone else gets the states only.
fn readyz(app: &App, headers: &hyper::HeaderMap) -> Response<Body> {
    let Some(readiness) = &app.readiness else {
        let report = PublicReadyReport {
            ready: true,
            golden_path: StateOnly {
                state: GoldenPathState::NotConfigured,
            },
            nodes: Vec::new(),
            endpoints: Vec::new(),
        };
        return json_body(StatusCode::OK, &report);
    };
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let admin = app
        .auth
        .authenticate(headers)
        .is_ok_and(|principal| principal.is_admin());
    let report = readiness.report();
    if admin {
        json_body(status, &report)
    } else {
        json_body(status, &report.public())
    }
}

/// The request's `Content-Length`, when it has a valid one.
fn content_length(request: &Request<Incoming>) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn upgrade(
    mut request: Request<Incoming>,
    app: Arc<App>,
    permit: ConnectionPermit,
) -> Response<Body> {
    if !hyper_tungstenite::is_upgrade_request(&request) {
        return json(
            StatusCode::BAD_REQUEST,
            HttpErrorCode::BadRequest,
            "expected a WebSocket upgrade",
        );
    }
    let offered: Vec<String> = request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if !offered.is_empty() && !offered.iter().any(|p| p == SUBPROTOCOL) {
        return json(
            StatusCode::BAD_REQUEST,
            HttpErrorCode::UnsupportedSubprotocol,
            "offer the netra.v1 subprotocol",
        );
    }
    let principal = match app.auth.authenticate(request.headers()) {
        Ok(principal) => principal,
        Err(rejection) => {
            tracing::debug!(reason = %rejection.reason, "upgrade refused");
            return unauthorized(&rejection.reason);
        }
    };
    let Some(slot) = app
        .sessions
        .claim(&principal.user_id, app.config.max_sessions_per_user)
    else {
        return json(
            StatusCode::TOO_MANY_REQUESTS,
            HttpErrorCode::TooManySessions,
            &format!(
                "you already have {} sessions open (server.max_sessions_per_user); close one",
                app.config.max_sessions_per_user
            ),
        );
    };
    let limits = &app.config;
    // The write buffer has no limit of its own: what a session may queue is
    // bounded by its outbox (`send_queue`, `send_queue_bytes`), so no frame
    // the host sends can overflow it, whatever `max_message_bytes` is.
    let config = WebSocketConfig::default()
        .read_buffer_size(limits.read_buffer_bytes)
        .write_buffer_size(limits.write_buffer_bytes)
        .max_write_buffer_size(usize::MAX)
        .max_message_size(Some(limits.max_message_bytes))
        .max_frame_size(Some(limits.max_message_bytes));
    let (mut response, websocket) = match hyper_tungstenite::upgrade(&mut request, Some(config)) {
        Ok(upgrade) => upgrade,
        Err(err) => {
            return json(
                StatusCode::BAD_REQUEST,
                HttpErrorCode::BadRequest,
                &err.to_string(),
            );
        }
    };
    if !offered.is_empty() {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    tokio::spawn(async move {
        // Both are held for as long as the session lives.
        let (_permit, _slot) = (permit, slot);
        match websocket.await {
            Ok(socket) => crate::session::serve(socket, principal, app).await,
            Err(err) => tracing::debug!("upgrade failed: {err}"),
        }
    });
    response.map(BodyExt::boxed)
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// 401 with the reason and a `WWW-Authenticate` challenge.
pub(crate) fn unauthorized(reason: &str) -> Response<Body> {
    let mut response = json(
        StatusCode::UNAUTHORIZED,
        HttpErrorCode::Unauthorized,
        reason,
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    response
}

/// `{"error": ERROR, "reason": REASON}` with `status`.
pub(crate) fn json(status: StatusCode, error: HttpErrorCode, reason: &str) -> Response<Body> {
    json_body(status, &HttpError::new(error, reason))
}

/// A wire type as a JSON response with `status`.
pub(crate) fn json_body(status: StatusCode, body: &impl serde::Serialize) -> Response<Body> {
    // The wire types serialize infallibly: string keys, no fallible values.
    let body = serde_json::to_string(body).unwrap_or_else(|_| String::from("{}"));
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
