//! Starting, running and cancelling agent runs, with per-user and global
//! limits. Each run gets a fresh agent instance and, lazily, one fresh
//! instance of each tool plugin it calls; all are dropped when it ends.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use netra_runtime::{
    AgentHost, InvokeError, Message, Role, RunContext, ToolCallFuture, ToolDescriptor, ToolError,
    ToolInstance, tool_error_message,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::ids;
use crate::protocol::{ErrorCode, ToolFailure};
use crate::registry::{Registry, ToolEntry};
use crate::run_log::{Outbox, RunEnd, RunEvents, RunLog};

/// Limits on runs.
#[derive(Clone, Debug)]
pub struct RunLimits {
    /// Runs one user may have going at once.
    pub per_user: usize,
    /// Runs the host may have going at once.
    pub global: usize,
}

impl Default for RunLimits {
    fn default() -> Self {
        Self {
            per_user: 8,
            global: 256,
        }
    }
}

/// Why a run could not start (or be found).
#[derive(Debug)]
pub struct RunRefused {
    /// Protocol error code.
    pub code: ErrorCode,
    /// What was wrong.
    pub message: String,
}

/// All runs of the host.
pub struct Runs {
    registry: Arc<Registry>,
    limits: RunLimits,
    global: Arc<Semaphore>,
    state: Mutex<RunsState>,
}

#[derive(Default)]
struct RunsState {
    active: HashMap<String, ActiveRun>,
    per_user: HashMap<String, usize>,
    threads: HashMap<String, Thread>,
}

struct ActiveRun {
    owner: String,
    log: Arc<RunLog>,
    cancel: CancellationToken,
}

/// A conversation thread kept in memory (the store issue makes it durable).
struct Thread {
    owner: String,
    messages: Vec<Message>,
}

/// What the session learns about a run it started.
pub struct StartedRun {
    /// The run.
    pub run_id: String,
    /// Its thread.
    pub thread_id: String,
}

impl Runs {
    /// Runs served from `registry`.
    pub fn new(registry: Arc<Registry>, limits: RunLimits) -> Arc<Self> {
        Arc::new(Self {
            registry,
            global: Arc::new(Semaphore::new(limits.global)),
            limits,
            state: Mutex::new(RunsState::default()),
        })
    }

    /// The registry the runs use.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    fn lock(&self) -> MutexGuard<'_, RunsState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a run for `user`. `outbox` is subscribed before the first
    /// event; `before_start` runs after the run exists and before any of its
    /// events, so the session can acknowledge first.
    pub fn start(
        self: &Arc<Self>,
        user: &str,
        agent_name: &str,
        input: String,
        thread_id: Option<String>,
        outbox: Outbox,
        before_start: impl FnOnce(&StartedRun),
    ) -> Result<StartedRun, RunRefused> {
        let agent = self
            .registry
            .agent(agent_name)
            .cloned()
            .ok_or_else(|| RunRefused {
                code: ErrorCode::UnknownAgent,
                message: format!("no agent named {agent_name:?}"),
            })?;
        let permit = self
            .global
            .clone()
            .try_acquire_owned()
            .map_err(|_| RunRefused {
                code: ErrorCode::AtCapacity,
                message: format!(
                    "the host is running its limit of {} runs; retry shortly",
                    self.limits.global
                ),
            })?;
        let run_id = ids::run_id();
        let cancel = CancellationToken::new();
        let (thread_id, history, unstarted) = {
            let mut state = self.lock();
            let running = state.per_user.get(user).copied().unwrap_or(0);
            if running >= self.limits.per_user {
                return Err(RunRefused {
                    code: ErrorCode::TooManyRuns,
                    message: format!(
                        "you already have {running} runs going (the limit is {}); wait for one to end or cancel one",
                        self.limits.per_user
                    ),
                });
            }
            let (thread_id, history) = match thread_id {
                Some(id) => match state.threads.get(&id) {
                    // A thread of another user is reported exactly like a
                    // missing one, so existence does not leak.
                    Some(thread) if thread.owner == user => (id, thread.messages.clone()),
                    _ => {
                        return Err(RunRefused {
                            code: ErrorCode::NotFound,
                            message: format!("no thread {id:?}"),
                        });
                    }
                },
                None => {
                    let id = ids::thread_id();
                    state.threads.insert(
                        id.clone(),
                        Thread {
                            owner: user.to_string(),
                            messages: Vec::new(),
                        },
                    );
                    (id, Vec::new())
                }
            };
            let unstarted = RunLog::create(run_id.clone(), thread_id.clone(), None);
            unstarted.log().subscribe(outbox, 0);
            state.active.insert(
                run_id.clone(),
                ActiveRun {
                    owner: user.to_string(),
                    log: unstarted.log().clone(),
                    cancel: cancel.clone(),
                },
            );
            *state.per_user.entry(user.to_string()).or_default() += 1;
            (thread_id, history, unstarted)
        };
        let started = StartedRun {
            run_id: run_id.clone(),
            thread_id: thread_id.clone(),
        };
        before_start(&started);
        let (events, end) = unstarted.start(agent_name.to_string(), agent.version.clone());
        let ctx = RunContext {
            user_id: user.to_string(),
            thread_id,
            run_id,
        };
        let tools = self.registry.tools_for(&agent);
        let runs = self.clone();
        let guard = RunGuard {
            runs: self.clone(),
            run_id: ctx.run_id.clone(),
            user: user.to_string(),
            _permit: permit,
        };
        tokio::spawn(async move {
            runs.execute(
                agent.plugin,
                ctx,
                input,
                history,
                tools,
                events,
                end,
                cancel,
                guard,
            )
            .await;
        });
        Ok(started)
    }

    #[allow(clippy::too_many_arguments)]
    async fn execute(
        self: Arc<Self>,
        agent: netra_runtime::AgentPlugin,
        ctx: RunContext,
        input: String,
        history: Vec<Message>,
        tools: BTreeMap<String, ToolEntry>,
        events: RunEvents,
        end: RunEnd,
        cancel: CancellationToken,
        _guard: RunGuard,
    ) {
        let abort = CancellationToken::new();
        let host = Arc::new(RunHost {
            ctx: ctx.clone(),
            events,
            tools,
            registry: self.registry.clone(),
            instances: tokio::sync::Mutex::new(HashMap::new()),
            abort: abort.clone(),
            violation: Mutex::new(None),
        });
        let thread_id = ctx.thread_id.clone();
        let run = agent.run(ctx, input.clone(), history, host.clone());
        let result = tokio::select! {
            result = run => Some(result),
            () = cancel.cancelled() => None,
            () = abort.cancelled() => None,
        };
        // A grant violation wins even if the agent finished in the meantime.
        if abort.is_cancelled() {
            let message = host
                .violation
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            end.failed("tool_denied", message.unwrap_or_default(), false);
            return;
        }
        match result {
            None => end.cancelled(None),
            Some(Ok(answer)) => {
                self.remember(&thread_id, input, answer.clone());
                end.completed(answer, None);
            }
            Some(Err(err)) => {
                let retryable = matches!(
                    err,
                    InvokeError::Capacity(_)
                        | InvokeError::Agent(netra_runtime::AgentError::Unavailable(_))
                );
                end.failed(err.code(), err.to_string(), retryable);
            }
        }
    }

    fn remember(&self, thread_id: &str, input: String, answer: String) {
        if let Some(thread) = self.lock().threads.get_mut(thread_id) {
            thread.messages.push(Message {
                role: Role::User,
                content: input,
            });
            thread.messages.push(Message {
                role: Role::Assistant,
                content: answer,
            });
        }
    }

    /// Cancels a run of `user`. Another user's run is "not found".
    pub fn cancel(&self, user: &str, run_id: &str) -> Result<(), RunRefused> {
        match self.lock().active.get(run_id) {
            Some(run) if run.owner == user => {
                run.cancel.cancel();
                Ok(())
            }
            _ => Err(not_found(run_id)),
        }
    }

    /// The log of an active run of `user`, for `run.subscribe`. A finished
    /// log still replays every event, so acknowledging and then subscribing
    /// cannot race with the run's end.
    pub fn log_of(&self, user: &str, run_id: &str) -> Result<Arc<RunLog>, RunRefused> {
        match self.lock().active.get(run_id) {
            Some(run) if run.owner == user => Ok(run.log.clone()),
            _ => Err(not_found(run_id)),
        }
    }

    /// How many runs are going.
    pub fn active_count(&self) -> usize {
        self.lock().active.len()
    }
}

fn not_found(run_id: &str) -> RunRefused {
    RunRefused {
        code: ErrorCode::NotFound,
        message: format!("no active run {run_id:?}"),
    }
}

/// Releases a run's slot when its task ends, however it ends.
struct RunGuard {
    runs: Arc<Runs>,
    run_id: String,
    user: String,
    _permit: OwnedSemaphorePermit,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let mut state = self.runs.lock();
        state.active.remove(&self.run_id);
        if let Some(count) = state.per_user.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                state.per_user.remove(&self.user);
            }
        }
    }
}

/// What an agent run's imports talk to.
struct RunHost {
    ctx: RunContext,
    events: RunEvents,
    tools: BTreeMap<String, ToolEntry>,
    registry: Arc<Registry>,
    /// One instance per tool plugin used in this run, created on first use.
    instances: tokio::sync::Mutex<HashMap<String, ToolInstance>>,
    /// Fired when the agent breaks its grant; the run then ends with an error.
    abort: CancellationToken,
    violation: Mutex<Option<String>>,
}

impl AgentHost for RunHost {
    fn thinking(&self, text: String) {
        self.events.thinking(text);
    }

    fn message_delta(&self, text: String) {
        self.events.message_delta(text);
    }

    fn list_tools(&self) -> Vec<ToolDescriptor> {
        self.tools.values().map(|t| t.descriptor.clone()).collect()
    }

    fn call_tool(self: Arc<Self>, name: String, arguments: String) -> ToolCallFuture {
        Box::pin(async move { self.call(&name, &arguments).await })
    }
}

impl RunHost {
    async fn call(&self, name: &str, arguments: &str) -> Result<String, ToolError> {
        let span = self.events.tool_call(name, arguments);
        let Some(entry) = self.tools.get(name) else {
            if self.registry.tools().any(|t| t.descriptor.name == name) {
                // The tool exists but was not granted: a policy violation that
                // ends the run, not a mistake the agent may retry.
                let message = format!("this agent is not granted the tool {name:?}");
                let err = ToolError::Denied(message.clone());
                span.finish(Err(failure(&err)));
                *self
                    .violation
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(message);
                self.abort.cancel();
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
        let result = self.invoke(entry, name, arguments).await;
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
                    code: err.code().to_string(),
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
        let result = instance.invoke(name, arguments).await;
        if matches!(&result, Err(e) if !matches!(e, InvokeError::Tool(_))) {
            // A trapped instance cannot be reused; the next call gets a new one.
            instances.remove(&plugin);
        }
        result
    }
}

fn failure(err: &ToolError) -> ToolFailure {
    let code = match err {
        ToolError::InvalidArguments(_) => "invalid_arguments",
        ToolError::Denied(_) => "denied",
        ToolError::NotFound(_) => "not_found",
        ToolError::Failed(_) => "failed",
        ToolError::Timeout => "timeout",
        ToolError::Cancelled => "cancelled",
    };
    ToolFailure {
        code: code.into(),
        message: tool_error_message(err),
    }
}
