//! One request on a new plain HTTP/1.1 connection.

use anyhow::{Context as _, anyhow};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::url::Base;
use super::{Body, CONNECT_TIMEOUT, Call, MAX_RESPONSE, REQUEST_TIMEOUT};

/// A response: its status and whole body.
pub(super) struct Reply {
    pub(super) status: StatusCode,
    pub(super) body: Bytes,
}

/// Makes one request on a new connection.
pub(super) async fn send(base: &Base, token: &str, call: Call) -> anyhow::Result<Reply> {
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
