//! The provider against a scripted server on 127.0.0.1 that writes what
//! OpenAI-compatible servers write. One test binary, one module per theme.

mod failures;
mod request;
mod streaming;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use netra_llm::{ChatMessage, ChatRequest, Delta, Outcomes, Provider, ProviderConfig};

/// A provider for the fake server, with quick retries and a short timeout.
pub fn provider(base_url: &str) -> Provider {
    Provider::new(config(base_url)).expect("valid config")
}

pub fn config(base_url: &str) -> ProviderConfig {
    ProviderConfig {
        name: "fake".to_owned(),
        base_url: base_url.to_owned(),
        api_key: None,
        models: vec!["test-model".to_owned()],
        timeout: Duration::from_secs(10),
        max_retries: 3,
    }
}

pub fn question() -> ChatRequest {
    ChatRequest {
        messages: vec![ChatMessage::user("hi")],
        ..ChatRequest::default()
    }
}

/// Runs one chat, collecting the deltas.
pub async fn chat(
    provider: &Provider,
    request: ChatRequest,
) -> (
    Vec<Delta>,
    Result<netra_llm::ChatResponse, netra_llm::LlmError>,
) {
    let mut deltas = Vec::new();
    let result = provider.chat(request, &mut |d| deltas.push(d)).await;
    (deltas, result)
}

/// An [`Outcomes`] that remembers what it was told and may refuse.
#[derive(Default)]
pub struct Recorder {
    pub refuse: Option<String>,
    pub records: Mutex<Vec<Result<(), String>>>,
    pub checks: Mutex<u32>,
}

impl Recorder {
    pub fn outcomes(&self) -> Vec<Result<(), String>> {
        self.records.lock().unwrap().clone()
    }

    pub fn attach(provider: Provider) -> (Provider, Arc<Recorder>) {
        let recorder = Arc::new(Recorder::default());
        (provider.with_outcomes(recorder.clone()), recorder)
    }
}

impl Outcomes for Recorder {
    fn record(&self, outcome: Result<(), String>) {
        self.records.lock().unwrap().push(outcome);
    }

    fn check(&self) -> Result<(), String> {
        *self.checks.lock().unwrap() += 1;
        match &self.refuse {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }
}
