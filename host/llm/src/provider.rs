//! [`Provider`]: one configured endpoint, and the call loop of a chat
//! completion (breaker check, attempt, classification, retry).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER, USER_AGENT};
use hyper::{Request, Response, StatusCode, Uri};
use tokio::time::{Instant, timeout, timeout_at};

use crate::error::LlmError;
use crate::http::{self, HttpClient};
use crate::retry;
use crate::sse::SseParser;
use crate::stream::{Accumulator, Progress, StreamError};
use crate::types::{ChatRequest, ChatResponse, Delta};
use crate::url::BaseUrl;
use crate::wire;

/// Retries after the first attempt when the configuration does not say.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Bound on a whole call when the configuration does not say: long enough
/// for a local model to write a long answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// A stream that sends nothing for this long (or for the whole timeout, if
/// shorter) is given up.
const STALL_LIMIT: Duration = Duration::from_secs(30);
/// Longest SSE event (one chunk of JSON).
const MAX_EVENT_BYTES: usize = 8 << 20;
/// Longest non-streamed completion body.
const MAX_WHOLE_BYTES: usize = 32 << 20;
/// How much of an error body is read for its message.
const MAX_ERROR_BYTES: usize = 64 << 10;
/// Longest server message quoted in an error.
const MAX_MESSAGE_CHARS: usize = 500;
/// After `[DONE]`, how long to wait for the body's end so the connection can
/// go back to the pool; a server that keeps it open loses it instead.
const DRAIN: Duration = Duration::from_millis(100);
const AGENT: &str = concat!("netra/", env!("CARGO_PKG_VERSION"));

/// What receives the deltas of a call.
pub(crate) type Sink<'a> = dyn FnMut(Delta) + Send + 'a;

/// One OpenAI-compatible endpoint, as the operator configured it.
#[derive(Clone)]
pub struct ProviderConfig {
    /// The provider's name in config, logs and errors (`openai`, `local`).
    pub name: String,
    /// The API's base URL, ending in `/v1` for all the servers netra knows
    /// (`http://127.0.0.1:11434/v1`); `/chat/completions` is appended.
    pub base_url: String,
    /// Sent as `Authorization: Bearer KEY`; `None` (or empty) sends nothing.
    pub api_key: Option<String>,
    /// Models this provider serves; the first is the default.
    pub models: Vec<String>,
    /// Bound on one whole call: every attempt, every wait and the stream.
    pub timeout: Duration,
    /// Attempts after the first one, for 429, 5xx and connection failures.
    pub max_retries: u32,
}

impl ProviderConfig {
    /// A configuration with no key, no models, [`DEFAULT_TIMEOUT`] and
    /// [`DEFAULT_MAX_RETRIES`].
    pub fn new(name: impl Into<String>, base_url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            base_url: base_url.into(),
            api_key: None,
            models: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| Redacted))
            .field("models", &self.models)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

/// Stands in for a secret in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Told about every upstream attempt: a circuit breaker implements it
/// (`netra_server::health::Health::record` and `check` have this shape, with
/// the endpoint name bound).
pub trait Outcomes: Send + Sync {
    /// How an attempt ended: `Ok` when the endpoint answered as an endpoint
    /// that is up does (a completed stream, or a 4xx other than 429), `Err`
    /// with the reason for 5xx, 429, connection failures, timeouts, stalls,
    /// broken or malformed streams.
    fn record(&self, outcome: Result<(), String>);
    /// Asked before every attempt; `Err` fails the call at once with
    /// [`LlmError::Unavailable`] and sends nothing.
    fn check(&self) -> Result<(), String>;
}

/// A configured endpoint. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct Provider {
    inner: Arc<Inner>,
    outcomes: Option<Arc<dyn Outcomes>>,
}

struct Inner {
    config: ProviderConfig,
    /// `{base_url}/chat/completions`.
    endpoint: Uri,
    /// `Bearer KEY`, marked sensitive.
    authorization: Option<HeaderValue>,
    client: HttpClient,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.inner.config;
        f.debug_struct("Provider")
            .field("name", &config.name)
            .field("endpoint", &self.inner.endpoint)
            .field(
                "api_key",
                &self.inner.authorization.as_ref().map(|_| Redacted),
            )
            .field("models", &config.models)
            .field("timeout", &config.timeout)
            .field("max_retries", &config.max_retries)
            .field("outcomes", &self.outcomes.is_some())
            .finish()
    }
}

/// How an attempt failed and what to do about it.
struct Failure {
    error: LlmError,
    /// `None`: never retry this.
    wait: Option<Wait>,
    /// What the breaker is told.
    outcome: Result<(), String>,
    /// A delta reached the sink during the attempt.
    delivered: bool,
}

enum Wait {
    Backoff,
    /// The server's `Retry-After`.
    After(Duration),
}

impl Failure {
    /// Not retried; the endpoint is up (the request is at fault).
    fn refused(error: LlmError) -> Self {
        Self {
            error,
            wait: None,
            outcome: Ok(()),
            delivered: false,
        }
    }

    /// Not retried; the endpoint is at fault.
    fn broken(error: LlmError) -> Self {
        let outcome = Err(error.message().to_owned());
        Self {
            error,
            wait: None,
            outcome,
            delivered: false,
        }
    }

    /// Retried (if nothing was delivered and retries are left).
    fn transient(error: LlmError, wait: Wait) -> Self {
        Self {
            wait: Some(wait),
            ..Self::broken(error)
        }
    }
}

/// Reports one attempt's outcome exactly once. If the call's future is
/// dropped (the run was cancelled) after the endpoint answered, the attempt
/// counts as a success: the endpoint was up, and a half-open breaker's trial
/// must not wait for its lease to run out.
struct Report<'a> {
    outcomes: Option<&'a dyn Outcomes>,
    answered: bool,
    done: bool,
}

impl Report<'_> {
    fn record(&mut self, outcome: Result<(), String>) {
        if !std::mem::replace(&mut self.done, true)
            && let Some(outcomes) = self.outcomes
        {
            outcomes.record(outcome);
        }
    }
}

impl Drop for Report<'_> {
    fn drop(&mut self) {
        if self.answered {
            self.record(Ok(()));
        }
    }
}

/// How the body of a 2xx answer is to be read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Body {
    Events,
    Whole,
    /// No telling content type: the first byte decides (`{` is JSON).
    Unknown,
}

impl Provider {
    /// Checks the configuration and builds the connection pool. A bad
    /// `base_url`, a zero timeout or a key that cannot be a header value is
    /// [`LlmError::InvalidRequest`] with the reason. Needs no runtime.
    pub fn new(config: ProviderConfig) -> Result<Self, LlmError> {
        let invalid = |reason: String| {
            LlmError::InvalidRequest(format!("provider {:?}: {reason}", config.name))
        };
        let endpoint = endpoint(&config.base_url).map_err(invalid)?;
        if config.timeout.is_zero() {
            return Err(invalid("timeout must be more than zero".to_owned()));
        }
        let authorization = match config.api_key.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(key) => {
                let mut value = HeaderValue::try_from(format!("Bearer {key}")).map_err(|_| {
                    invalid("api_key holds characters a header cannot carry".to_owned())
                })?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        let client = http::client().map_err(invalid)?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                endpoint,
                authorization,
                client,
            }),
            outcomes: None,
        })
    }

    /// Reports every attempt to `outcomes` and asks it before each one.
    pub fn with_outcomes(mut self, outcomes: Arc<dyn Outcomes>) -> Self {
        self.outcomes = Some(outcomes);
        self
    }

    /// The configured name.
    pub fn name(&self) -> &str {
        &self.inner.config.name
    }

    /// The configured models; the first is the default.
    pub fn models(&self) -> &[String] {
        &self.inner.config.models
    }

    /// The URL requests go to: `{base_url}/chat/completions`.
    pub fn endpoint(&self) -> &Uri {
        &self.inner.endpoint
    }

    /// Streams one completion. `sink` gets content tokens and reasoning
    /// tokens as they arrive (before the stream ends). Dropping the returned
    /// future closes the upstream connection.
    pub async fn chat(
        &self,
        request: ChatRequest,
        sink: &mut Sink<'_>,
    ) -> Result<ChatResponse, LlmError> {
        let config = &self.inner.config;
        let deadline = Instant::now() + config.timeout;
        let model = request
            .model
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .or_else(|| config.models.first().map(String::as_str))
            .ok_or_else(|| {
                LlmError::InvalidRequest(format!(
                    "the request names no model and provider {:?} has none configured",
                    config.name
                ))
            })?;
        let body = Bytes::from(wire::encode(&request, model).map_err(LlmError::InvalidRequest)?);
        let mut attempt = 0u32;
        loop {
            if let Some(outcomes) = &self.outcomes {
                outcomes.check().map_err(LlmError::Unavailable)?;
            }
            let mut report = Report {
                outcomes: self.outcomes.as_deref(),
                answered: false,
                done: false,
            };
            tracing::debug!(provider = %config.name, model, attempt, "chat completion request");
            let failure = match self
                .attempt(body.clone(), deadline, sink, &mut report)
                .await
            {
                Ok(response) => {
                    report.record(Ok(()));
                    tracing::debug!(
                        provider = %config.name,
                        model,
                        prompt_tokens = response.usage.prompt_tokens,
                        completion_tokens = response.usage.completion_tokens,
                        tool_calls = response.tool_calls.len(),
                        "chat completion done"
                    );
                    return Ok(response);
                }
                Err(failure) => failure,
            };
            report.record(failure.outcome.clone());
            let error = self.scrub(failure.error);
            let wait = match failure.wait {
                Some(wait) if !failure.delivered && attempt < config.max_retries => wait,
                _ => return Err(error),
            };
            let pause = match wait {
                Wait::Backoff => retry::backoff(attempt),
                Wait::After(pause) => pause.min(retry::RETRY_AFTER_MAX),
            };
            // Waiting past the deadline only to time out would hide the
            // real error behind a timeout.
            if Instant::now() + pause >= deadline {
                return Err(error);
            }
            tracing::info!(
                provider = %config.name,
                attempt,
                pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                %error,
                "chat completion failed, retrying"
            );
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        body: Bytes,
        deadline: Instant,
        sink: &mut Sink<'_>,
        report: &mut Report<'_>,
    ) -> Result<ChatResponse, Failure> {
        let inner = &self.inner;
        let mut request = Request::post(inner.endpoint.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "text/event-stream, application/json")
            .header(USER_AGENT, AGENT);
        if let Some(authorization) = &inner.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        let request = request.body(Full::new(body)).map_err(|e| {
            Failure::refused(LlmError::InvalidRequest(format!(
                "cannot build the request: {e}"
            )))
        })?;
        let response = match timeout_at(deadline, inner.client.request(request)).await {
            Err(_) => return Err(self.timed_out()),
            Ok(Err(e)) => {
                let authority = inner.endpoint.authority().map_or("", |a| a.as_str());
                let what = if e.is_connect() {
                    "cannot connect to"
                } else {
                    "request failed:"
                };
                let message = format!("{what} {authority}: {}", chain(&e));
                return Err(Failure::transient(
                    LlmError::Unavailable(message),
                    Wait::Backoff,
                ));
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status.is_success() {
            report.answered = true;
            return self.read_stream(response, deadline, sink).await;
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry::retry_after(v, SystemTime::now()));
        let wait = retry_after.map_or(Wait::Backoff, Wait::After);
        let text = read_limited(
            response.into_body(),
            deadline.min(Instant::now() + self.stall()),
        )
        .await;
        let message = describe(status, &text);
        let failure = match status.as_u16() {
            429 => Failure::transient(LlmError::RateLimited(message), wait),
            408 | 500 | 502 | 503 | 504 => Failure::transient(LlmError::Unavailable(message), wait),
            401 | 403 | 407 => Failure::refused(LlmError::Denied(message)),
            400..=499 => Failure::refused(LlmError::InvalidRequest(message)),
            500..=599 => Failure::broken(LlmError::Unavailable(message)),
            _ => Failure::refused(LlmError::InvalidRequest(format!(
                "{message} (expected a chat completion; is base_url the API's /v1 URL?)"
            ))),
        };
        report.answered = failure.outcome.is_ok();
        Err(failure)
    }

    async fn read_stream(
        &self,
        response: Response<Incoming>,
        deadline: Instant,
        sink: &mut Sink<'_>,
    ) -> Result<ChatResponse, Failure> {
        let mut acc = Accumulator::default();
        match self.read_into(&mut acc, response, deadline, sink).await {
            Ok(()) => Ok(acc.into_response()),
            Err(mut failure) => {
                failure.delivered = acc.delivered();
                Err(failure)
            }
        }
    }

    async fn read_into(
        &self,
        acc: &mut Accumulator,
        response: Response<Incoming>,
        deadline: Instant,
        sink: &mut Sink<'_>,
    ) -> Result<(), Failure> {
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let mut kind = if content_type.starts_with("text/event-stream") {
            Body::Events
        } else if content_type.contains("json") {
            Body::Whole
        } else {
            Body::Unknown
        };
        let mut body = response.into_body();
        let stall = self.stall();
        let mut parser = SseParser::new(MAX_EVENT_BYTES);
        let mut events = Vec::new();
        let mut whole = Vec::new();
        let mut last_byte = Instant::now();
        loop {
            let frame = match timeout_at(deadline.min(last_byte + stall), body.frame()).await {
                Err(_) if Instant::now() >= deadline => return Err(self.timed_out()),
                Err(_) => {
                    let message = format!("stream stalled: no data for {}", seconds(stall));
                    return Err(Failure::transient(
                        LlmError::Unavailable(message),
                        Wait::Backoff,
                    ));
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    let message = format!("stream broken: {}", chain(&e));
                    return Err(Failure::transient(
                        LlmError::Unavailable(message),
                        Wait::Backoff,
                    ));
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if data.is_empty() {
                continue;
            }
            last_byte = Instant::now();
            if kind == Body::Unknown {
                // Leading whitespace means nothing in either format.
                match data.iter().find(|b| !b.is_ascii_whitespace()) {
                    None => continue,
                    Some(b'{') => kind = Body::Whole,
                    Some(_) => kind = Body::Events,
                }
            }
            if kind == Body::Whole {
                if whole.len() + data.len() > MAX_WHOLE_BYTES {
                    let message =
                        format!("malformed response: body longer than {MAX_WHOLE_BYTES} bytes");
                    return Err(Failure::broken(LlmError::Unavailable(message)));
                }
                whole.extend_from_slice(&data);
                continue;
            }
            parser.feed(&data, &mut events).map_err(malformed)?;
            if dispatch(acc, &mut events, sink)? == Progress::Done {
                // Let the connection return to the pool when its end is at
                // hand; never wait long for it.
                let _ = timeout(DRAIN, async {
                    while let Some(Ok(_)) = body.frame().await {}
                })
                .await;
                return Ok(());
            }
        }
        match kind {
            Body::Whole => acc.on_whole(&whole, sink).map_err(stream_failure),
            Body::Events | Body::Unknown => {
                parser.finish(&mut events).map_err(malformed)?;
                if dispatch(acc, &mut events, sink)? == Progress::Done || acc.finished() {
                    return Ok(());
                }
                let message = "stream ended before the answer was complete".to_owned();
                Err(Failure::transient(
                    LlmError::Unavailable(message),
                    Wait::Backoff,
                ))
            }
        }
    }

    fn stall(&self) -> Duration {
        self.inner.config.timeout.min(STALL_LIMIT)
    }

    fn timed_out(&self) -> Failure {
        let message = format!(
            "no complete answer within the {} request timeout",
            seconds(self.inner.config.timeout)
        );
        Failure::broken(LlmError::Unavailable(message))
    }

    /// A server may quote the key back (OpenAI does, partly, on 401): it
    /// must not travel on in an error.
    fn scrub(&self, error: LlmError) -> LlmError {
        match self.inner.config.api_key.as_deref().map(str::trim) {
            Some(key) if key.len() >= 4 => error.map_message(|m| m.replace(key, "<redacted>")),
            _ => error,
        }
    }
}

/// Hands the events parsed so far to the accumulator.
fn dispatch(
    acc: &mut Accumulator,
    events: &mut Vec<String>,
    sink: &mut Sink<'_>,
) -> Result<Progress, Failure> {
    for event in events.drain(..) {
        if acc.on_event(&event, sink).map_err(stream_failure)? == Progress::Done {
            return Ok(Progress::Done);
        }
    }
    Ok(Progress::More)
}

fn malformed(error: crate::sse::SseError) -> Failure {
    Failure::broken(LlmError::Unavailable(format!("malformed stream: {error}")))
}

fn stream_failure(error: StreamError) -> Failure {
    let message = match error {
        StreamError::Malformed(detail) => format!("malformed stream: {detail}"),
        StreamError::Upstream(detail) => {
            format!("the server failed mid-stream: {}", clean(&detail))
        }
    };
    Failure::broken(LlmError::Unavailable(message))
}

/// `{base_url}/chat/completions`.
fn endpoint(base_url: &str) -> Result<Uri, String> {
    BaseUrl::parse(base_url)
        .and_then(|base| base.join("chat/completions"))
        .map_err(|why| format!("base_url {why}"))
}

/// Reads at most [`MAX_ERROR_BYTES`] of an error body before `until`;
/// whatever arrived by then.
async fn read_limited(mut body: Incoming, until: Instant) -> Vec<u8> {
    let mut text = Vec::new();
    while text.len() < MAX_ERROR_BYTES {
        match timeout_at(until, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    let room = MAX_ERROR_BYTES - text.len();
                    text.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            _ => break,
        }
    }
    text
}

/// `HTTP 400: the server's message`.
fn describe(status: StatusCode, body: &[u8]) -> String {
    let detail = wire::error_message(body).or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_owned())
    });
    match detail {
        Some(detail) => format!("HTTP {}: {}", status.as_u16(), clean(&detail)),
        None => format!("HTTP {}", status),
    }
}

/// A server's message made fit for an error: one line, bounded.
fn clean(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGE_CHARS)
        .collect();
    if text.chars().count() > MAX_MESSAGE_CHARS {
        out.push_str("...");
    }
    out.trim().to_owned()
}

/// An error with its sources, deduplicated (hyper's layers often repeat).
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let ok = |base: &str| endpoint(base).map(|u| u.to_string());
        assert_eq!(
            ok("http://127.0.0.1:11434/v1").unwrap(),
            "http://127.0.0.1:11434/v1/chat/completions"
        );
        assert_eq!(
            ok(" http://h:8000/v1/ ").unwrap(),
            "http://h:8000/v1/chat/completions"
        );
        assert_eq!(
            ok("HTTPS://api.example.com/v1").unwrap(),
            "https://api.example.com/v1/chat/completions"
        );
        assert_eq!(
            ok("http://[::1]:8080").unwrap(),
            "http://[::1]:8080/chat/completions"
        );
        for bad in [
            "",
            "127.0.0.1:8080/v1",
            "ftp://h/v1",
            "http://u:p@h/v1",
            "http://h/v1?x=1",
            "not a url",
        ] {
            assert!(endpoint(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn descriptions() {
        assert_eq!(
            describe(
                StatusCode::BAD_REQUEST,
                br#"{"error":{"message":"bad\nthing"}}"#
            ),
            "HTTP 400: bad thing"
        );
        assert_eq!(
            describe(StatusCode::BAD_GATEWAY, b""),
            "HTTP 502 Bad Gateway"
        );
        assert_eq!(
            describe(StatusCode::BAD_GATEWAY, b"upstream down"),
            "HTTP 502: upstream down"
        );
        assert!(clean(&"x".repeat(2000)).len() <= MAX_MESSAGE_CHARS + 3);
    }

    #[test]
    fn scrubbed_and_redacted() {
        let mut config = ProviderConfig::new("p", "http://127.0.0.1:9/v1");
        config.api_key = Some("sk-secret-123".into());
        let provider = Provider::new(config.clone()).unwrap();
        let error = provider.scrub(LlmError::Denied(
            "Incorrect API key provided: sk-secret-123".into(),
        ));
        assert_eq!(
            error,
            LlmError::Denied("Incorrect API key provided: <redacted>".into())
        );
        assert!(!format!("{config:?}").contains("sk-secret"));
        assert!(!format!("{provider:?}").contains("sk-secret"));
        assert!(format!("{provider:?}").contains("<redacted>"));
    }
}
