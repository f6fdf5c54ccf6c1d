//! The admin API under `/v1/admin`: plugins and their versions (list,
//! upload, activate, roll back, disable, enable, delete), the audit log, and
//! the self-check. Every route needs a token with the `admin` role: none or
//! a bad one is 401, one without the role 403, before anything else.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header;
use hyper::{Method, Request, Response, StatusCode};

use crate::App;
use crate::catalog::{AdminError, Catalog, MAX_UPLOAD_BYTES};
use crate::http::{json as error, json_body, unauthorized};
use crate::protocol::admin::{Activate, Deleted, HttpError, HttpErrorCode, PluginList, Uploaded};
use crate::protocol::ready::GoldenPathResult;

use crate::http::Body;

/// Largest JSON body of the other admin routes.
const MAX_JSON_BYTES: usize = 64 * 1024;

/// Answers a request whose path starts with `/v1/admin`.
pub async fn route(request: Request<Incoming>, app: &App) -> Response<Body> {
    let actor = match gate(&request, app) {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let path = request.uri().path().to_string();
    let segments: Vec<&str> = path
        .trim_start_matches("/v1/admin")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let method = request.method().clone();
    if let (&Method::POST, ["self-check"]) = (&method, segments.as_slice()) {
        return self_check(app).await;
    }
    let Some(catalog) = &app.catalog else {
        return error(
            StatusCode::NOT_FOUND,
            HttpErrorCode::NotFound,
            "this host does not manage plugin versions",
        );
    };
    let result = match (&method, segments.as_slice()) {
        (&Method::GET, ["plugins"]) => catalog
            .list()
            .await
            .map(|plugins| json_body(StatusCode::OK, &PluginList { plugins })),
        (&Method::GET, ["plugins", name]) => catalog
            .show(name)
            .await
            .map(|plugin| json_body(StatusCode::OK, &plugin)),
        (&Method::POST, ["plugins", name, "versions"]) => {
            upload(request, catalog, name, &actor).await
        }
        (&Method::POST, ["plugins", name, "activate"]) => match version_of(request).await {
            Ok(reference) => catalog
                .activate(name, &reference, &actor)
                .await
                .map(|changed| json_body(StatusCode::OK, &changed)),
            Err(err) => Err(err),
        },
        (&Method::POST, ["plugins", name, "rollback"]) => catalog
            .rollback(name, &actor)
            .await
            .map(|changed| json_body(StatusCode::OK, &changed)),
        (&Method::POST, ["plugins", name, "disable"]) => catalog
            .disable(name, &actor)
            .await
            .map(|changed| json_body(StatusCode::OK, &changed)),
        (&Method::POST, ["plugins", name, "enable"]) => catalog
            .enable(name, &actor)
            .await
            .map(|changed| json_body(StatusCode::OK, &changed)),
        (&Method::DELETE, ["plugins", name, "versions", version]) => {
            catalog.delete(name, version, &actor).await.map(|deleted| {
                let plugin = name.to_string();
                json_body(StatusCode::OK, &Deleted { plugin, deleted })
            })
        }
        (&Method::GET, ["audit"]) => {
            let limit = query(&request, "limit")
                .and_then(|l| l.parse::<usize>().ok())
                .unwrap_or(50)
                .clamp(1, 1000);
            catalog
                .audit_entries(limit)
                .await
                .map(|page| json_body(StatusCode::OK, &page))
        }
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                HttpErrorCode::NotFound,
                &format!("no admin route {method} {path}"),
            );
        }
    };
    result.unwrap_or_else(|err| admin_error(&err))
}

/// The admin's actor name for the audit log, or the 401/403 response.
#[allow(clippy::result_large_err)]
fn gate(request: &Request<Incoming>, app: &App) -> Result<String, Response<Body>> {
    match app.auth.authenticate(request.headers()) {
        Ok(principal) if principal.is_admin() => Ok(format!("admin:{}", principal.user_id)),
        Ok(_) => Err(error(
            StatusCode::FORBIDDEN,
            HttpErrorCode::Forbidden,
            "the admin API needs a token with the admin role",
        )),
        Err(rejection) => Err(unauthorized(&rejection.reason)),
    }
}

/// Runs the golden path now and answers with its result.
async fn self_check(app: &App) -> Response<Body> {
    let Some(readiness) = &app.readiness else {
        return json_body(StatusCode::OK, &GoldenPathResult::NotConfigured);
    };
    let result = readiness.self_check(&app.runs).await;
    json_body(StatusCode::OK, &result)
}

/// `POST /v1/admin/plugins/NAME/versions`: a multipart body with a `wasm`
/// part and an optional `manifest` part; `?activate=false` keeps it only.
async fn upload(
    request: Request<Incoming>,
    catalog: &Catalog,
    name: &str,
    actor: &str,
) -> Result<Response<Body>, AdminError> {
    let activate = query(&request, "activate").is_none_or(|v| v != "false");
    let boundary = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| multer::parse_boundary(v).ok())
        .ok_or_else(|| {
            AdminError::Invalid(
                "send the version as multipart/form-data with a `wasm` part and an optional `manifest` part"
                    .into(),
            )
        })?;
    let body = read_body(request, MAX_UPLOAD_BYTES + 64 * 1024).await?;
    let (wasm, manifest) = upload_parts(body, boundary).await?;
    let (version, activated) = catalog
        .upload(name, wasm, manifest, activate, actor)
        .await?;
    let uploaded = Uploaded {
        plugin: name.to_string(),
        version,
        activated,
    };
    Ok(json_body(StatusCode::CREATED, &uploaded))
}

/// The `wasm` part and the optional `manifest` part of an upload's
/// multipart body (a later part of the same name wins).
pub(crate) async fn upload_parts(
    body: Bytes,
    boundary: String,
) -> Result<(Vec<u8>, Option<String>), AdminError> {
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let (mut wasm, mut manifest) = (None, None);
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(err) => return Err(AdminError::Invalid(format!("bad multipart body: {err}"))),
        };
        let part = field.name().unwrap_or_default().to_string();
        let bytes = field
            .bytes()
            .await
            .map_err(|err| AdminError::Invalid(format!("bad multipart part {part}: {err}")))?;
        match part.as_str() {
            "wasm" => wasm = Some(bytes.to_vec()),
            "manifest" => {
                let text = String::from_utf8(bytes.to_vec())
                    .map_err(|_| AdminError::Invalid("the manifest is not UTF-8 text".into()))?;
                manifest = Some(text);
            }
            other => {
                return Err(AdminError::Invalid(format!(
                    "unexpected part {other:?}: send `wasm` and optionally `manifest`"
                )));
            }
        }
    }
    let wasm = wasm.ok_or_else(|| AdminError::Invalid("the `wasm` part is missing".into()))?;
    Ok((wasm, manifest))
}

/// The `version` of an activate request's JSON body.
async fn version_of(request: Request<Incoming>) -> Result<String, AdminError> {
    let body = read_body(request, MAX_JSON_BYTES).await?;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|err| AdminError::Invalid(format!("the body is not JSON: {err}")))?;
    serde_json::from_value::<Activate>(value)
        .map(|activate| activate.version)
        .map_err(|_| AdminError::Invalid("send {\"version\": \"DIGEST or VERSION\"}".into()))
}

async fn read_body(request: Request<Incoming>, limit: usize) -> Result<Bytes, AdminError> {
    match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(AdminError::TooLarge(
            format!("the body is larger than {limit} bytes"),
        )),
        Err(err) => Err(AdminError::Invalid(format!("cannot read the body: {err}"))),
    }
}

/// The value of `key` in the query string.
fn query(request: &Request<Incoming>, key: &str) -> Option<String> {
    request.uri().query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| v.to_string())
    })
}

fn admin_error(err: &AdminError) -> Response<Body> {
    match err {
        AdminError::NotFound(_) => error(
            StatusCode::NOT_FOUND,
            HttpErrorCode::NotFound,
            &err.to_string(),
        ),
        AdminError::Conflict(_) => error(
            StatusCode::CONFLICT,
            HttpErrorCode::Conflict,
            &err.to_string(),
        ),
        AdminError::Invalid(_) => error(
            StatusCode::BAD_REQUEST,
            HttpErrorCode::BadRequest,
            &err.to_string(),
        ),
        AdminError::TooLarge(_) => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            HttpErrorCode::TooLarge,
            &err.to_string(),
        ),
        AdminError::Rejected { plugin, reasons } => json_body(
            StatusCode::UNPROCESSABLE_ENTITY,
            &HttpError {
                plugin: Some(plugin.clone()),
                reasons: reasons.clone(),
                ..HttpError::new(HttpErrorCode::Rejected, err.to_string())
            },
        ),
        AdminError::Internal(_) => {
            tracing::error!("admin request failed: {err}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                HttpErrorCode::Internal,
                &err.to_string(),
            )
        }
    }
}

#[cfg(test)]
mod fuzz_tests;
