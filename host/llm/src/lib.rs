//! `netra-llm`: a streaming client for OpenAI-compatible chat-completions
//! endpoints (OpenAI, vLLM, Ollama, the llama.cpp server).
//!
//! A [`Provider`] sends one `POST {base_url}/chat/completions` per attempt
//! with `stream: true`, parses the server-sent events as the bytes arrive and
//! hands every content or reasoning token to the caller's sink before the
//! stream ends. Tool-call fragments are put back together per index, and the
//! usage from the final chunk is returned with the whole answer.
//!
//! ```no_run
//! # async fn demo() -> Result<(), netra_llm::LlmError> {
//! use netra_llm::{ChatMessage, ChatRequest, Delta, Provider, ProviderConfig};
//!
//! let mut config = ProviderConfig::new("ollama", "http://127.0.0.1:11434/v1");
//! config.models = vec!["qwen3:8b".to_owned()];
//! let provider = Provider::new(config)?;
//! let request = ChatRequest {
//!     messages: vec![ChatMessage::user("What is 2 + 2?")],
//!     ..ChatRequest::default()
//! };
//! let answer = provider
//!     .chat(request, &mut |delta| {
//!         if let Delta::Content(text) = delta {
//!             print!("{text}");
//!         }
//!     })
//!     .await?;
//! println!("\n{} completion tokens", answer.usage.completion_tokens);
//! # Ok(())
//! # }
//! ```
//!
//! # Configuring a provider
//!
//! [`ProviderConfig::base_url`] is the URL that ends in `/v1`, the one the
//! server documents as its OpenAI-compatible base; the client appends
//! `/chat/completions`. The first entry of [`ProviderConfig::models`] is used
//! when a request names no model.
//!
//! | server | `base_url` | `api_key` | `models` |
//! |---|---|---|---|
//! | OpenAI | `https://api.openai.com/v1` | required (`sk-...`) | e.g. `gpt-4o-mini` |
//! | vLLM (`vllm serve MODEL`) | `http://127.0.0.1:8000/v1` | only if started with `--api-key` | the served model name, e.g. `Qwen/Qwen2.5-7B-Instruct` |
//! | Ollama | `http://127.0.0.1:11434/v1` | none (any value is ignored) | a pulled tag, e.g. `llama3.1:8b` |
//! | llama.cpp (`llama-server -m FILE`) | `http://127.0.0.1:8080/v1` | only if started with `--api-key` | any name (it serves its one model) |
//!
//! Notes per server:
//!
//! - **OpenAI** speaks HTTPS; the client verifies the certificate against the
//!   Mozilla roots compiled in (`webpki-roots`), not the system store.
//! - **vLLM** needs `--enable-auto-tool-choice --tool-call-parser NAME` for
//!   tool calls, and a reasoning parser (`--reasoning-parser`) to stream
//!   reasoning separately (`reasoning_content`).
//! - **Ollama** streams tool calls as whole calls in one chunk; reasoning
//!   models send their thinking as `reasoning`. Both are handled.
//! - **llama.cpp** needs `--jinja` for tool calls; with a reasoning model it
//!   streams `reasoning_content` (see `--reasoning-format`).
//!
//! The API key is sent as `Authorization: Bearer KEY`. It never appears in the
//! `Debug` output of [`ProviderConfig`] or [`Provider`], in logs or in errors
//! (an error message that quotes it has it replaced by `<redacted>`).
//!
//! # Failures
//!
//! Every call ends in a [`ChatResponse`] or one [`LlmError`]:
//!
//! - HTTP 429 is retried after `Retry-After` (seconds or an HTTP date, each
//!   wait at most 30 s), then [`LlmError::RateLimited`].
//! - 408, 500, 502, 503, 504 and connection failures are retried with
//!   exponential backoff and jitter (100 ms base), then
//!   [`LlmError::Unavailable`]. Other 5xx answers are not retried.
//! - 400, 404, 422 and other 4xx become [`LlmError::InvalidRequest`] with the
//!   server's `error.message`; 401, 403 and 407 become [`LlmError::Denied`].
//! - A failure once a token was handed to the sink is never retried: the
//!   answer would be streamed twice. A malformed stream is not retried either.
//! - [`ProviderConfig::timeout`] bounds the whole call, retries included; a
//!   stream that sends no byte for `min(timeout, 30 s)` is `Unavailable`.
//! - Dropping the future returned by [`Provider::chat`] closes the upstream
//!   connection: that is how a cancelled run stops the model.
//!
//! An [`Outcomes`] (the host's circuit breaker) may be attached with
//! [`Provider::with_outcomes`]: it is asked before every attempt and told
//! how every attempt ended.
//!
//! # Shared with the host
//!
//! [`BaseUrl`] is the one parser of a provider's base URL, [`Backoff`] and
//! [`jitter`] the one retry schedule, and [`Probe`] the health monitor's
//! question "does this endpoint answer?", asked through the same client (so
//! with TLS for `https://`).

mod error;
mod http;
mod probe;
mod provider;
mod retry;
mod sse;
mod stream;
mod types;
mod url;
mod wire;

pub use error::LlmError;
pub use probe::Probe;
pub use provider::{DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, Outcomes, Provider, ProviderConfig};
pub use retry::{Backoff, jitter};
pub use types::{ChatMessage, ChatRequest, ChatResponse, Delta, Role, ToolCall, ToolSpec, Usage};
pub use url::BaseUrl;
