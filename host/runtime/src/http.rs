//! Outgoing HTTP for plugins (wasi:http/outgoing-handler): a request leaves
//! only for a host of the plugin's `network` grant, and nothing it starts
//! outlives the call's deadline.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks, default_send_request};

use crate::settings::PluginShared;

/// wasmtime-wasi-http's timeouts when the guest sets none (connect, first
/// byte, between bytes); each is cut to what is left of the call's deadline.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// What [`WasiHttpHooks::send_request`] returns: the response and the future
/// that drives the rest of the connection.
type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

/// The wasi:http hooks of one store: the plugin's grant and the deadline of
/// the call in progress (kept in step with the store's by
/// [`crate::store::StoreState`]'s `WasiHttpView`).
pub(crate) struct OutgoingHttp {
    pub(crate) plugin: Arc<PluginShared>,
    pub(crate) deadline: Instant,
}

impl OutgoingHttp {
    /// Whether the plugin's grant lets a request go to `uri`. The port, when
    /// the URI has none, is the scheme's (80 for http, 443 for https), as the
    /// connection will use.
    fn allows(&self, uri: &http::Uri) -> bool {
        let Some(authority) = uri.authority() else {
            return false;
        };
        // A user name in the authority is refused rather than interpreted:
        // the connection is made to the whole authority string.
        if authority.as_str().contains('@') {
            return false;
        }
        let default_port = if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
            443
        } else {
            80
        };
        let port = authority.port_u16().unwrap_or(default_port);
        self.plugin.network.allows(authority.host(), port)
    }
}

impl WasiHttpHooks for OutgoingHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_done: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        if !self.allows(request.uri()) {
            let authority = request
                .uri()
                .authority()
                .map_or_else(String::new, |a| a.to_string());
            tracing::info!(
                plugin = %self.plugin.name,
                %authority,
                "outgoing HTTP request denied: not in the plugin's network grant"
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        let options = bounded(options, self.deadline);
        let deadline = tokio::time::Instant::from_std(self.deadline);
        Box::new(async move {
            let sent = tokio::time::timeout_at(deadline, default_send_request(request, options));
            let (response, connection) = sent.await.map_err(|_| Error::HttpResponseTimeout)??;
            // The body arrives while this future drives the connection; ending
            // it at the deadline ends the body too.
            let connection = async move {
                tokio::time::timeout_at(deadline, connection)
                    .await
                    .map_err(|_| Error::HttpResponseTimeout)?
            };
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(connection) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

/// The guest's timeouts (or the defaults), none longer than the time left
/// until `deadline`.
fn bounded(options: Option<RequestOptions>, deadline: Instant) -> Option<RequestOptions> {
    let left = deadline.saturating_duration_since(Instant::now());
    let clamp = |timeout: Option<Duration>| Some(timeout.unwrap_or(DEFAULT_TIMEOUT).min(left));
    let options = options.unwrap_or_default();
    Some(RequestOptions {
        connect_timeout: clamp(options.connect_timeout),
        first_byte_timeout: clamp(options.first_byte_timeout),
        between_bytes_timeout: clamp(options.between_bytes_timeout),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_never_outlast_the_deadline() {
        let deadline = Instant::now() + Duration::from_secs(2);
        let Some(options) = bounded(None, deadline) else {
            panic!("no options");
        };
        for timeout in [
            options.connect_timeout,
            options.first_byte_timeout,
            options.between_bytes_timeout,
        ] {
            assert!(timeout.is_some_and(|t| t <= Duration::from_secs(2)));
        }

        let short = RequestOptions {
            connect_timeout: Some(Duration::from_millis(100)),
            ..RequestOptions::default()
        };
        let Some(options) = bounded(Some(short), deadline) else {
            panic!("no options");
        };
        assert_eq!(options.connect_timeout, Some(Duration::from_millis(100)));
        assert!(
            options
                .first_byte_timeout
                .is_some_and(|t| t <= Duration::from_secs(2))
        );

        let passed = Instant::now();
        std::thread::sleep(Duration::from_millis(1));
        let options = bounded(None, passed);
        assert_eq!(
            options.and_then(|o| o.between_bytes_timeout),
            Some(Duration::ZERO)
        );
    }
}
