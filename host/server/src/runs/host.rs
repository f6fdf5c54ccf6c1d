//! What an agent run's imports talk to: `RunHost`, the run's `AgentHost`.
//! Its events go to the run's log; its tool calls are counted against the
//! run's budgets, checked against its grant and sent to this run's instance
//! of the tool's plugin; an agent granted as a tool runs nested (agent-as-
//! tool), and `llm.chat` goes to a granted model.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use netra_config::Budgets;
use netra_llm::Delta;
use netra_runtime::{
    AgentHost, AskFuture, CallObserver, ChatFuture, InvokeError, Question, RunContext,
    ToolCallFuture, ToolDescriptor, ToolError, ToolInstance, llm, tool_error_message,
};
use netra_store::{NewRun, Store};
use tokio_util::sync::CancellationToken;

use super::{Runs, drive, event_budget};
use crate::ids;
use crate::llm::Models;
use crate::protocol::{Code, ToolFailure, Usage};
use crate::registry::{AgentEntry, Registry, ToolEntry};
use crate::run_log::{Overspent, RunEvents, RunLog, RunLogSpec, ToolSpan};

/// Events of all of one user's runs that may wait for the store at once; a
/// user's run emitting faster waits for commits (back-pressure on the
/// flood). The store's queue is one for everybody, so this bounds what any
/// other user's event waits behind, whatever number of runs a user floods
/// with.
const MAX_USER_EVENTS_IN_FLIGHT: usize = 64;

/// How deep agents may delegate to agents: a run started by a client is at
/// depth 0; a delegation that would start a run deeper ends the chain.
pub const MAX_DELEGATION_DEPTH: usize = 4;

/// The arguments of an agent called as a tool.
const DELEGATION_SCHEMA: &str = r#"{"type":"object","properties":{"input":{"type":"string","description":"The task for the agent, in words."}},"required":["input"]}"#;

/// What an agent run's imports talk to.
pub(super) struct RunHost {
    pub(super) ctx: RunContext,
    pub(super) events: RunEvents,
    tools: BTreeMap<String, ToolEntry>,
    registry: Arc<Registry>,
    /// One instance per tool plugin used in this run, created on first use.
    instances: tokio::sync::Mutex<HashMap<String, ToolInstance>>,
    /// Fired when the agent breaks its grant; the run then ends with an error.
    pub(super) abort: CancellationToken,
    /// The `agent_error` (code, message) the broken rule ends the run with.
    pub(super) violation: Mutex<Option<(Code, String)>>,
    /// Agents it may delegate to, called like tools (agent-as-tool).
    agents: BTreeMap<String, AgentEntry>,
    /// The agents from the root run down to this one.
    chain: Vec<String>,
    /// Where nested runs are recorded.
    store: Arc<dyn Store>,
    /// The host's runs (a nested run's host is made from them).
    pub(super) runs: Arc<Runs>,
    /// The models this run's agent may use.
    llm: Llm,
    /// Tokens used by the run's completions so far.
    pub(super) usage: Mutex<Option<Usage>>,
    /// What the run may spend.
    pub(super) budgets: Budgets,
    /// Tool calls made so far (agents called as tools included).
    tool_calls: AtomicU64,
    /// Nested runs started so far.
    nested_runs: AtomicU64,
}

/// An agent's access to language models.
struct Llm {
    models: Option<Arc<Models>>,
    /// The agent's plugin (file) name, for messages.
    plugin: String,
    /// Its `llm` grant.
    grant: Vec<String>,
}

impl AgentHost for RunHost {
    fn thinking(&self, text: String) {
        if let Err(overspent) = self.events.thinking(text) {
            self.overspend(overspent);
        }
    }

    fn message_delta(&self, text: String) {
        if let Err(overspent) = self.events.message_delta(text) {
            self.overspend(overspent);
        }
    }

    fn settle(self: Arc<Self>) -> netra_runtime::SettleFuture {
        Box::pin(async move { self.events.log().settled(MAX_USER_EVENTS_IN_FLIGHT).await })
    }

    fn list_tools(&self) -> Vec<ToolDescriptor> {
        let tools = self.tools.values().map(|t| t.descriptor.clone());
        let agents = self.agents.iter().map(|(name, entry)| ToolDescriptor {
            name: name.clone(),
            description: format!(
                "Delegates a task to the agent {name}: {}",
                entry.plugin.descriptor().description
            ),
            input_schema: DELEGATION_SCHEMA.to_string(),
            output_schema: None,
        });
        tools.chain(agents).collect()
    }

    fn ask(self: Arc<Self>, question: Question) -> AskFuture<serde_json::Value> {
        self.ask_user(question)
    }

    fn call_tool(self: Arc<Self>, name: String, arguments: String) -> ToolCallFuture {
        Box::pin(async move { self.call(&name, &arguments).await })
    }

    fn chat(self: Arc<Self>, request: llm::ChatRequest) -> ChatFuture {
        Box::pin(async move {
            let llm = &self.llm;
            let route = match &llm.models {
                Some(models) => models.route(&llm.plugin, &llm.grant, request.model.as_deref()),
                None => Err(format!(
                    "plugin {} is granted no language model (no provider is configured)",
                    llm.plugin
                )),
            }
            .map_err(llm::LlmError::Denied)?;
            let events = &self.events;
            // Tokens reach the client while the guest waits for the answer.
            let mut sink = |delta: Delta| {
                let sent = match delta {
                    Delta::Content(text) => events.message_delta(text),
                    Delta::Reasoning(text) => events.thinking(text),
                };
                if let Err(overspent) = sent {
                    self.overspend(overspent);
                }
            };
            let response = route.chat(request, &mut sink).await?;
            let mut usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
            let total = usage.get_or_insert(Usage {
                prompt_tokens: 0,
                completion_tokens: 0,
            });
            total.prompt_tokens += u64::from(response.usage.prompt_tokens);
            total.completion_tokens += u64::from(response.usage.completion_tokens);
            Ok(response)
        })
    }
}

impl RunHost {
    /// The host of a run of `agent` from `registry`, started by `runs`;
    /// `chain` are the agents above it (empty for a run a client started).
    pub(super) fn new(
        runs: &Arc<Runs>,
        registry: &Arc<Registry>,
        agent: &AgentEntry,
        ctx: RunContext,
        events: RunEvents,
        mut chain: Vec<String>,
    ) -> Arc<Self> {
        chain.push(agent.plugin.descriptor().name.clone());
        let agents = agent
            .allowed_tools
            .iter()
            .flatten()
            .filter_map(|name| Some((name.clone(), registry.agent(name)?.clone())))
            .collect();
        Arc::new(RunHost {
            ctx,
            events,
            tools: registry.tools_for(agent),
            registry: registry.clone(),
            instances: tokio::sync::Mutex::new(HashMap::new()),
            abort: CancellationToken::new(),
            violation: Mutex::new(None),
            agents,
            chain,
            store: runs.store.clone(),
            runs: runs.clone(),
            llm: Llm {
                models: runs.models.clone(),
                plugin: agent.plugin.name().to_string(),
                grant: agent.llm.clone(),
            },
            usage: Mutex::new(None),
            budgets: agent.budgets,
            tool_calls: AtomicU64::new(0),
            nested_runs: AtomicU64::new(0),
        })
    }

    /// Runs the agent `name` as a tool call of this run: a nested run of its
    /// own (fresh instances, its own run id and events, linked by
    /// `parent_run_id`) whose events go to this run's followers; its answer
    /// is the call's result.
    async fn delegate(
        &self,
        name: &str,
        agent: AgentEntry,
        arguments: &str,
    ) -> Result<String, ToolError> {
        let span = self.span(name, arguments)?;
        let input = match serde_json::from_str::<serde_json::Value>(arguments) {
            Ok(serde_json::Value::Object(map)) => match map.get("input") {
                Some(serde_json::Value::String(input)) => input.clone(),
                _ => String::new(),
            },
            Ok(serde_json::Value::String(input)) => input,
            _ => String::new(),
        };
        if input.trim().is_empty() {
            let err = ToolError::InvalidArguments(format!(
                "call the agent {name} with {{\"input\": \"the task\"}}"
            ));
            span.finish(Err(failure(&err)));
            return Err(err);
        }
        if self.chain.len() > MAX_DELEGATION_DEPTH {
            // A chain this deep is a cycle in all likelihood: end it here,
            // and every run above it with the same error.
            let message = format!(
                "delegation depth limit ({MAX_DELEGATION_DEPTH}) reached: {} -> {name}",
                self.chain.join(" -> ")
            );
            let err = ToolError::Denied(message.clone());
            span.finish(Err(failure(&err)));
            self.break_rule(Code::DelegationTooDeep, message);
            return Err(err);
        }
        let started = self.nested_runs.fetch_add(1, Ordering::Relaxed);
        if started >= self.budgets.max_nested_runs {
            let message = format!(
                "the run started {started} agents as tools; the limit is {} (limits.max_nested_runs)",
                self.budgets.max_nested_runs
            );
            let err = ToolError::Denied(message.clone());
            span.finish(Err(failure(&err)));
            self.break_rule(Code::BudgetNestedRuns, message);
            return Err(err);
        }
        // Held until the nested run returns: it counts like any other run.
        let slot = match self.runs.claim_nested(&self.ctx.user_id) {
            Ok(slot) => slot,
            Err(refused) => {
                let err =
                    ToolError::Failed(format!("agent {name} not started: {}", refused.message));
                span.finish(Err(ToolFailure {
                    code: Code::parse(refused.code.as_str()),
                    message: refused.message,
                }));
                return Err(err);
            }
        };
        let run_id = ids::run_id();
        let cancel = CancellationToken::new();
        let unstarted = RunLog::create(RunLogSpec {
            run_id: run_id.clone(),
            thread_id: self.ctx.thread_id.clone(),
            parent_run_id: Some(self.ctx.run_id.clone()),
            input: input.clone(),
            store: self.store.clone(),
            abort: cancel.clone(),
            budget: event_budget(&agent.budgets),
            user_backlog: slot.backlog.clone(),
        });
        for outbox in self.events.log().followers() {
            unstarted.subscribe(outbox);
        }
        let recorded = unstarted.log().clone();
        self.store.begin_run(
            None,
            NewRun {
                id: run_id.clone(),
                thread_id: self.ctx.thread_id.clone(),
                user: self.ctx.user_id.clone(),
                agent: name.to_string(),
                plugin_version: agent.version.clone(),
                input: input.clone(),
                started_at: SystemTime::now(),
                parent_run_id: Some(self.ctx.run_id.clone()),
            },
            Box::new(move |result| {
                if let Err(err) = result {
                    tracing::error!(run_id = %recorded.run_id(), "cannot record the nested run: {err}");
                    recorded.abandon();
                }
            }),
        );
        let (events, end) = unstarted.start(name.to_string(), agent.version.clone());
        let ctx = RunContext {
            user_id: self.ctx.user_id.clone(),
            thread_id: self.ctx.thread_id.clone(),
            run_id,
        };
        let host = RunHost::new(
            &self.runs,
            &self.registry,
            &agent,
            ctx,
            events,
            self.chain.clone(),
        );
        // Inline: cancelling this run drops the nested one with it.
        let nested = drive(host, agent.plugin.clone(), input, Vec::new(), end, cancel).await;
        match nested {
            Ok(answer) => {
                let result = serde_json::json!({ "output": answer }).to_string();
                span.finish(Ok(&result));
                Ok(result)
            }
            Err(failed) => {
                let err = ToolError::Failed(format!(
                    "agent {name} failed ({}): {}",
                    failed.code, failed.message
                ));
                span.finish(Err(failure(&err)));
                if failed.code == Code::DelegationTooDeep {
                    self.break_rule(Code::DelegationTooDeep, failed.message);
                }
                Err(err)
            }
        }
    }

    /// Ends the run: it spent one of its budgets.
    pub(super) fn overspend(&self, overspent: Overspent) {
        self.break_rule(overspent.code, overspent.message);
    }

    /// Counts a tool call against the budget and emits its `tool_executing`;
    /// over a budget, the run ends and the guest gets `denied`. Arguments
    /// over their limit are not shown (their size is) and fail the call.
    fn span(&self, name: &str, arguments: &str) -> Result<ToolSpan, ToolError> {
        let calls = self.tool_calls.fetch_add(1, Ordering::Relaxed);
        let over = |overspent: Overspent| {
            let err = ToolError::Denied(overspent.message.clone());
            self.overspend(overspent);
            err
        };
        if calls >= self.budgets.max_tool_calls {
            return Err(over(Overspent {
                code: Code::BudgetToolCalls,
                message: format!(
                    "the run made {calls} tool calls; the limit is {} (limits.max_tool_calls)",
                    self.budgets.max_tool_calls
                ),
            }));
        }
        let limit = self.budgets.max_tool_arguments_bytes;
        if arguments.len() as u64 > limit {
            let shown = serde_json::json!({ "omitted_bytes": arguments.len() });
            let span = self.events.tool_call_with(name, shown).map_err(over)?;
            let err = ToolError::InvalidArguments(format!(
                "the arguments are {} bytes; the limit is {limit} (limits.max_tool_arguments_bytes)",
                arguments.len()
            ));
            span.finish(Err(ToolFailure {
                code: Code::ArgumentsTooLarge,
                message: tool_error_message(&err),
            }));
            return Err(err);
        }
        self.events.tool_call(name, arguments).map_err(over)
    }

    /// Ends the run with `agent_error {code}`: the agent broke a rule.
    fn break_rule(&self, code: Code, message: String) {
        *self
            .violation
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((code, message));
        self.abort.cancel();
    }

    async fn call(&self, name: &str, arguments: &str) -> Result<String, ToolError> {
        if let Some(agent) = self.agents.get(name) {
            return self.delegate(name, agent.clone(), arguments).await;
        }
        let span = self.span(name, arguments)?;
        self.events.log().settled(MAX_USER_EVENTS_IN_FLIGHT).await;
        let Some(entry) = self.tools.get(name) else {
            if self.registry.tools().any(|t| t.descriptor.name == name) {
                // The tool exists but was not granted: a policy violation that
                // ends the run, not a mistake the agent may retry.
                let message = format!("this agent is not granted the tool {name:?}");
                let err = ToolError::Denied(message.clone());
                span.finish(Err(failure(&err)));
                self.break_rule(Code::ToolDenied, message);
                return Err(err);
            }
            let err = ToolError::NotFound(format!("no tool named {name:?}"));
            span.finish(Err(failure(&err)));
            return Err(err);
        };
        if serde_json::from_str::<serde::de::IgnoredAny>(arguments).is_err() {
            let err = ToolError::InvalidArguments("arguments are not valid JSON".into());
            span.finish(Err(failure(&err)));
            return Err(err);
        }
        let progress = span.progress(self.budgets.tool_progress_per_second);
        let result = self.invoke(entry, name, arguments, progress).await;
        match result {
            Ok(json) => {
                span.finish(Ok(&json));
                Ok(json)
            }
            Err(InvokeError::Tool(err)) => {
                span.finish(Err(failure(&err)));
                Err(err)
            }
            Err(err) => {
                // The tool broke (trap, limit, timeout): the client sees the
                // runtime's code, the agent sees a plain tool error.
                span.finish(Err(ToolFailure {
                    code: Code::from(&err),
                    message: err.to_string(),
                }));
                Err(match err {
                    InvokeError::Timeout(_) => ToolError::Timeout,
                    other => ToolError::Failed(other.to_string()),
                })
            }
        }
    }

    async fn invoke(
        &self,
        entry: &ToolEntry,
        name: &str,
        arguments: &str,
        progress: Arc<dyn CallObserver>,
    ) -> Result<String, InvokeError> {
        let plugin = entry.plugin.name().to_string();
        let mut instances = self.instances.lock().await;
        if !instances.contains_key(&plugin) {
            let instance = entry.plugin.instantiate(self.ctx.clone()).await?;
            instances.insert(plugin.clone(), instance);
        }
        let Some(instance) = instances.get_mut(&plugin) else {
            return Err(InvokeError::Poisoned);
        };
        // This call's progress reports are its own `tool_progress` events.
        instance.observe(progress);
        let result = instance.invoke(name, arguments).await;
        if matches!(&result, Err(e) if !matches!(e, InvokeError::Tool(_))) {
            // A trapped instance cannot be reused; the next call gets a new one.
            instances.remove(&plugin);
        }
        result
    }
}

fn failure(err: &ToolError) -> ToolFailure {
    ToolFailure {
        code: Code::from(err),
        message: tool_error_message(err),
    }
}
