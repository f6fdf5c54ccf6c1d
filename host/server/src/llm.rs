//! The language models agents may use: the configured providers, which
//! models each agent is granted, and the bridge between an agent's `llm.chat`
//! and a provider's streamed completion.

use std::collections::BTreeMap;
use std::sync::Arc;

use netra_llm::{Delta, Outcomes, Provider};
use netra_runtime::llm::{ChatMessage, ChatRequest, ChatResponse, LlmError, ToolCall, Usage};
use netra_runtime::{Role, ToolDescriptor};

use crate::deps::llm_node;
use crate::health::Health;

/// Every configured provider, by name.
#[derive(Clone, Default)]
pub struct Models {
    providers: BTreeMap<String, (Provider, Vec<String>)>,
}

/// The provider and model one completion goes to.
pub struct Route {
    /// `provider/model`, for errors and logs.
    pub label: String,
    provider: Provider,
    model: String,
}

impl Models {
    /// No providers: every agent's `llm.chat` is denied.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds provider `name` serving `models` (the first is its default).
    /// With `health`, each upstream attempt is checked against and reported
    /// to the endpoint's circuit breaker (`llm.NAME`).
    pub fn add(
        &mut self,
        name: &str,
        provider: Provider,
        models: Vec<String>,
        health: Option<Arc<Health>>,
    ) {
        let provider = match health {
            Some(health) => provider.with_outcomes(Arc::new(Breaker {
                health,
                endpoint: llm_node(name),
            })),
            None => provider,
        };
        self.providers.insert(name.to_string(), (provider, models));
    }

    /// Whether any provider is configured.
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// Where a completion asking for `requested` (or the default) goes for
    /// an agent granted `grant` (`provider` or `provider/model` entries).
    pub fn route(
        &self,
        plugin: &str,
        grant: &[String],
        requested: Option<&str>,
    ) -> Result<Route, String> {
        if grant.is_empty() {
            return Err(format!(
                "plugin {plugin} is granted no language model (plugin.{plugin}.llm)"
            ));
        }
        for entry in grant {
            let (name, only) = match entry.split_once('/') {
                Some((name, model)) => (name, Some(model)),
                None => (entry.as_str(), None),
            };
            let Some((provider, models)) = self.providers.get(name) else {
                continue;
            };
            let model = match (requested, only) {
                (Some(wanted), Some(only)) if wanted == only => only.to_string(),
                (Some(_), Some(_)) => continue,
                (Some(wanted), None) if models.is_empty() || models.iter().any(|m| m == wanted) => {
                    wanted.to_string()
                }
                (Some(_), None) => continue,
                (None, Some(only)) => only.to_string(),
                (None, None) => match models.first() {
                    Some(first) => first.clone(),
                    None => continue,
                },
            };
            return Ok(Route {
                label: format!("{name}/{model}"),
                provider: provider.clone(),
                model,
            });
        }
        Err(match requested {
            Some(model) => {
                format!("plugin {plugin} is not granted the model {model:?} (plugin.{plugin}.llm)")
            }
            None => format!("plugin {plugin} is granted no configured model (plugin.{plugin}.llm)"),
        })
    }
}

impl Route {
    /// Runs the completion, handing each streamed piece to `sink`.
    pub async fn chat(
        &self,
        request: ChatRequest,
        sink: &mut (dyn FnMut(Delta) + Send),
    ) -> Result<ChatResponse, LlmError> {
        let request = netra_llm::ChatRequest {
            model: Some(self.model.clone()),
            messages: request.messages.into_iter().map(message).collect(),
            tools: request.tools.into_iter().map(tool).collect(),
            temperature: request.temperature,
            max_tokens: request.max_tokens,
        };
        match self.provider.chat(request, sink).await {
            Ok(response) => Ok(ChatResponse {
                content: response.content,
                tool_calls: response
                    .tool_calls
                    .into_iter()
                    .map(|call| ToolCall {
                        id: call.id,
                        name: call.name,
                        arguments: call.arguments,
                    })
                    .collect(),
                usage: Usage {
                    prompt_tokens: response.usage.prompt_tokens,
                    completion_tokens: response.usage.completion_tokens,
                },
            }),
            Err(err) => Err(match err {
                netra_llm::LlmError::RateLimited(why) => LlmError::RateLimited(why),
                netra_llm::LlmError::Unavailable(why) => LlmError::Unavailable(why),
                netra_llm::LlmError::InvalidRequest(why) => LlmError::InvalidRequest(why),
                netra_llm::LlmError::Denied(why) => LlmError::Denied(why),
            }),
        }
    }
}

fn message(m: ChatMessage) -> netra_llm::ChatMessage {
    netra_llm::ChatMessage {
        role: match m.role {
            Role::System => netra_llm::Role::System,
            Role::User => netra_llm::Role::User,
            Role::Assistant => netra_llm::Role::Assistant,
            Role::Tool => netra_llm::Role::Tool,
        },
        content: m.content,
        tool_calls: m
            .tool_calls
            .into_iter()
            .map(|call| netra_llm::ToolCall {
                id: call.id,
                name: call.name,
                arguments: call.arguments,
            })
            .collect(),
        tool_call_id: m.tool_call_id,
    }
}

fn tool(descriptor: ToolDescriptor) -> netra_llm::ToolSpec {
    netra_llm::ToolSpec {
        parameters: serde_json::from_str(&descriptor.input_schema)
            .unwrap_or_else(|_| serde_json::json!({ "type": "object" })),
        name: descriptor.name,
        description: descriptor.description,
    }
}

/// A provider's attempts, told to its endpoint's circuit breaker.
struct Breaker {
    health: Arc<Health>,
    endpoint: String,
}

impl Outcomes for Breaker {
    fn record(&self, outcome: Result<(), String>) {
        self.health.record(&self.endpoint, outcome);
    }

    fn check(&self) -> Result<(), String> {
        self.health.check(&self.endpoint)
    }
}
