//! Does a provider answer? One `GET {base_url}/models` through the same
//! client as chat calls, so an `https://` endpoint gets a real TLS handshake
//! and certificate check, not only a TCP connect.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::USER_AGENT;
use hyper::{Request, StatusCode, Uri};

use crate::http::{self, HttpClient};
use crate::url::BaseUrl;

/// A probe of one endpoint. Its connections are pooled, so a monitor that
/// probes every few seconds reuses one.
#[derive(Clone)]
pub struct Probe {
    client: HttpClient,
    url: Uri,
}

impl Probe {
    /// A probe of `base_url`'s model list. The error names the URL and what
    /// is wrong with it.
    pub fn new(base_url: &str) -> Result<Self, String> {
        let url = BaseUrl::parse(base_url)
            .and_then(|base| base.join("models"))
            .map_err(|why| format!("invalid URL {base_url:?}: {why}"))?;
        let client = http::client()?;
        Ok(Self { client, url })
    }

    /// The URL it asks.
    pub fn url(&self) -> &Uri {
        &self.url
    }

    /// One probe; `Err` carries a short reason. Up is "answers HTTP":
    /// everything below 500 but 429 (a 401 or 403 is between the provider
    /// and our key, a 404 or 405 a provider without a model list); a 5xx or
    /// 429, a refused or failed connection or TLS handshake, or a malformed
    /// answer is down. The caller bounds how long it may take.
    pub async fn check(&self) -> Result<(), String> {
        let request = Request::get(self.url.clone())
            .header(USER_AGENT, "netra-health")
            .body(Full::new(Bytes::new()))
            .map_err(|err| format!("cannot build the probe request: {err}"))?;
        match self.client.request(request).await {
            Ok(response) => classify(response.status()),
            Err(err) => Err(failure(&err)),
        }
    }
}

/// What a status says about the endpoint (see [`Probe::check`]).
pub fn classify(status: StatusCode) -> Result<(), String> {
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        Err(format!("HTTP {}", status.as_u16()))
    } else {
        Ok(())
    }
}

/// A short reason for a failed exchange.
fn failure(err: &hyper_util::client::legacy::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut hyper_error = None;
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return "connection refused".to_owned();
        }
        if let Some(found) = cause.downcast_ref::<hyper::Error>() {
            hyper_error = Some(found);
        }
        source = cause.source();
    }
    let detail = crate::provider::chain(err);
    if err.is_connect() {
        return format!("connect failed: {detail}");
    }
    match hyper_error {
        Some(e) if e.is_parse() => format!("malformed response: {detail}"),
        Some(e) if e.is_incomplete_message() || e.is_closed() => {
            "connection closed before a response".to_owned()
        }
        _ => format!("HTTP exchange failed: {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes() {
        for up in [200, 204, 301, 400, 401, 403, 404, 405] {
            let status = StatusCode::from_u16(up).expect("valid status");
            assert_eq!(classify(status), Ok(()), "{up}");
        }
        for down in [429, 500, 502, 503] {
            let status = StatusCode::from_u16(down).expect("valid status");
            assert_eq!(classify(status), Err(format!("HTTP {down}")));
        }
    }

    #[test]
    fn probes_ask_for_the_model_list() {
        let probe = Probe::new("http://127.0.0.1:11434/v1/").expect("valid");
        assert_eq!(probe.url().to_string(), "http://127.0.0.1:11434/v1/models");
        let err = Probe::new("ftp://llm.local/v1").err().unwrap_or_default();
        assert!(
            err.starts_with("invalid URL \"ftp://llm.local/v1\""),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_and_a_failed_tls_handshake_are_down() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let refused = Probe::new(&format!("http://{addr}/v1")).expect("valid");
        assert_eq!(refused.check().await, Err("connection refused".to_owned()));

        // A plain-HTTP server behind an https:// URL: the TCP connect works,
        // the TLS handshake does not, and that is down.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        let tls = Probe::new(&format!("https://{addr}/v1")).expect("valid");
        let err = tls.check().await.expect_err("no TLS server");
        assert!(err.starts_with("connect failed"), "{err}");
        server.abort();
    }
}
