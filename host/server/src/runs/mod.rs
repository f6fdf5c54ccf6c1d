//! Starting, running, cancelling and following agent runs, with per-user and
//! global limits. Each run gets a fresh agent instance and, lazily, one fresh
//! instance of each tool plugin it calls; all are dropped when it ends.
//!
//! Threads, runs and their event logs live in the [`Store`]: a run is
//! recorded (with its new thread) before its `run.start` is acknowledged, its
//! events are durable before anyone sees them (see [`crate::run_log`]), and
//! its end, with the messages it adds to the thread, is one atomic write.
//! A thread has at most one run going at a time, so every run sees the whole
//! history of the runs before it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Instant, SystemTime};

use netra_config::Budgets;
use netra_runtime::{InvokeError, Message, Role, RunContext};
use netra_store::{NewRun, NewThread, RunRecord, Store, StoreError, StoredMessage, ThreadSummary};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

mod admission;
mod ask;
mod host;
mod reads;

use admission::{ActiveRun, Refusal, RunsState};
pub use host::MAX_DELEGATION_DEPTH;
use host::RunHost;
use reads::title;

use crate::deps::Dependencies;
use crate::ids;
use crate::llm::Models;
use crate::protocol::{Code, ErrorCode};
use crate::registry::Registry;
use crate::run_log::{Backlog, EventBudget, Outbox, RunEnd, RunLog, RunLogSpec};
use netra_runtime::rate::ByteRate;

/// Limits on runs.
#[derive(Clone, Debug)]
pub struct RunLimits {
    /// Runs one user may have going at once.
    pub per_user: usize,
    /// Runs the host may have going at once.
    pub global: usize,
    /// Most messages of its thread's history a run gets (the latest).
    pub history_messages: usize,
    /// Most bytes of history a run gets (the latest messages that fit).
    pub history_bytes: usize,
    /// How fast one user's runs may put events into the store (each event
    /// charged its bytes there plus
    /// [`EVENT_RATE_OVERHEAD`](crate::run_log::EVENT_RATE_OVERHEAD)); `None` is
    /// unlimited.
    pub user_event_rate: Option<ByteRate>,
}

impl Default for RunLimits {
    fn default() -> Self {
        Self {
            per_user: 8,
            global: 256,
            history_messages: 200,
            history_bytes: 1 << 20,
            user_event_rate: Some(ByteRate {
                per_sec: 16 << 20,
                burst: 16 << 20,
            }),
        }
    }
}

/// Why a command about runs or threads was refused.
#[derive(Debug)]
pub struct RunRefused {
    /// Protocol error code.
    pub code: ErrorCode,
    /// What was wrong.
    pub message: String,
}

impl RunRefused {
    fn new(code: ErrorCode, message: String) -> Self {
        Self { code, message }
    }

    fn store(err: &StoreError) -> Self {
        tracing::error!("store read failed: {err}");
        Self::new(
            ErrorCode::Unavailable,
            format!("the host cannot read its store right now: {err}"),
        )
    }
}

/// Longest thread title, in characters (taken from the first message).
const TITLE_CHARS: usize = 80;

/// What runs are served from: the plugins and their dependency graph.
/// Hot-loading builds a new one and swaps it in whole; a run reads it once,
/// when it starts, and keeps it to its end (nested runs included), so every
/// run uses one version of every plugin throughout.
pub struct Served {
    /// The plugins.
    pub registry: Arc<Registry>,
    /// What each agent needs and whether it is there now; `None` starts
    /// every run.
    pub deps: Option<Arc<Dependencies>>,
}

/// The [`Served`] plugins now, swapped atomically.
pub struct Current(RwLock<Arc<Served>>);

impl Current {
    /// Serving `served`.
    pub fn new(served: Served) -> Arc<Self> {
        Arc::new(Self(RwLock::new(Arc::new(served))))
    }

    /// What new runs are served from.
    pub fn get(&self) -> Arc<Served> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Makes `served` what new runs use; runs going keep theirs.
    pub fn swap(&self, served: Served) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(served);
    }
}

/// All runs of the host.
pub struct Runs {
    /// The plugins and graph new runs are served from.
    current: Arc<Current>,
    /// The language models agents may be granted.
    models: Option<Arc<Models>>,
    store: Arc<dyn Store>,
    limits: RunLimits,
    global: Arc<Semaphore>,
    state: Mutex<RunsState>,
    /// The questions runs wait on.
    questions: Mutex<ask::Questions>,
}

/// What runs use besides the plugins and the store.
#[derive(Clone, Default)]
pub struct Services {
    /// The language models; `None` denies every `llm.chat`.
    pub models: Option<Arc<Models>>,
}

/// What the session learns about a run it started.
pub struct StartedRun {
    /// The run.
    pub run_id: String,
    /// Its thread.
    pub thread_id: String,
}

/// Where `run.subscribe` finds a run.
pub enum Followed {
    /// Still going (or just ended): its log in memory.
    Active(Arc<RunLog>),
    /// Ended: its log in the store.
    Stored(Box<RunRecord>),
}

impl Runs {
    /// Runs served from `registry`, recorded in `store`.
    pub fn new(registry: Arc<Registry>, store: Arc<dyn Store>, limits: RunLimits) -> Arc<Self> {
        let current = Current::new(Served {
            registry,
            deps: None,
        });
        Self::with_services(current, store, limits, Services::default())
    }

    /// Runs served from `current` (which hot-loading swaps) with the host's
    /// services: runs of an agent whose dependencies are degraded or down
    /// end at once with `dependency_unavailable`; agents reach the models
    /// they are granted.
    pub fn with_services(
        current: Arc<Current>,
        store: Arc<dyn Store>,
        limits: RunLimits,
        services: Services,
    ) -> Arc<Self> {
        Arc::new(Self {
            current,
            models: services.models,
            store,
            global: Arc::new(Semaphore::new(limits.global)),
            limits,
            state: Mutex::new(RunsState::default()),
            questions: Mutex::new(ask::Questions::default()),
        })
    }

    /// What new runs are served from now.
    pub fn served(&self) -> Arc<Served> {
        self.current.get()
    }

    /// The plugins new runs use now.
    pub fn registry(&self) -> Arc<Registry> {
        self.current.get().registry.clone()
    }

    /// The store the runs are recorded in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn lock(&self) -> MutexGuard<'_, RunsState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a blocking store call off the async threads.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, RunRefused> {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || read(&*store)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(RunRefused::store(&err)),
            Err(err) => Err(RunRefused::store(&StoreError::Internal(err.to_string()))),
        }
    }

    /// Starts a run for `user`. `outbox` is subscribed to all its events;
    /// `acknowledge` gets the run's ids once the run is recorded (before any
    /// of its events reaches the outbox), or the reason it could not be.
    pub async fn start(
        self: &Arc<Self>,
        user: &str,
        agent_name: &str,
        input: String,
        thread_id: Option<String>,
        outbox: Outbox,
        acknowledge: impl FnOnce(Result<&StartedRun, RunRefused>) + Send + 'static,
    ) -> Result<(), RunRefused> {
        // One read: the whole run, nested runs included, uses these plugins.
        let served = self.current.get();
        let agent = served.registry.agent(agent_name).cloned().ok_or_else(|| {
            let refused = served
                .deps
                .as_ref()
                .filter(|deps| deps.is_refused(agent_name))
                .map(|deps| deps.problems(agent_name).join("; "));
            RunRefused::new(
                ErrorCode::UnknownAgent,
                match refused {
                    Some(why) => format!("agent {agent_name:?} is not served: {why}"),
                    None => format!("no agent named {agent_name:?}"),
                },
            )
        })?;
        let permit = self.global.clone().try_acquire_owned().map_err(|_| {
            RunRefused::new(
                ErrorCode::AtCapacity,
                format!(
                    "the host is running its limit of {} runs; retry shortly",
                    self.limits.global
                ),
            )
        })?;
        let run_id = ids::run_id();
        let (thread_id, new_thread) = match thread_id {
            Some(id) => (id, false),
            None => (ids::thread_id(), true),
        };
        // Claiming the slot and the thread first means the history read
        // below happens after the thread's previous run has fully ended.
        let guard = self.claim(user, &thread_id, &run_id, permit)?;
        let history = if new_thread {
            Vec::new()
        } else {
            self.history(user, &thread_id).await?
        };

        let cancel = CancellationToken::new();
        let unstarted = RunLog::create(RunLogSpec {
            run_id: run_id.clone(),
            thread_id: thread_id.clone(),
            parent_run_id: None,
            input: input.clone(),
            store: self.store.clone(),
            abort: cancel.clone(),
            budget: event_budget(&agent.budgets),
            user_backlog: guard.backlog.clone(),
        });
        let log = unstarted.log().clone();
        unstarted.subscribe(outbox);
        self.lock().active.insert(
            run_id.clone(),
            ActiveRun {
                owner: user.to_string(),
                log: log.clone(),
                cancel: cancel.clone(),
            },
        );
        // The slot is released once the terminal event is stored, so a
        // thread's next run reads the complete history.
        log.on_closed(Box::new(move || drop(guard)));

        let started = StartedRun {
            run_id: run_id.clone(),
            thread_id: thread_id.clone(),
        };
        let new_thread = new_thread.then(|| NewThread {
            id: thread_id.clone(),
            owner: user.to_string(),
            title: Some(title(&input)),
        });
        let record = NewRun {
            id: run_id.clone(),
            thread_id: thread_id.clone(),
            user: user.to_string(),
            agent: agent_name.to_string(),
            plugin_version: agent.version.clone(),
            input: input.clone(),
            started_at: SystemTime::now(),
            parent_run_id: None,
        };
        let recorded = log.clone();
        self.store.begin_run(
            new_thread,
            record,
            Box::new(move |result| match result {
                Ok(()) => acknowledge(Ok(&started)),
                Err(err) => {
                    tracing::error!(run_id = %started.run_id, "cannot record the run: {err}");
                    recorded.abandon();
                    acknowledge(Err(RunRefused::new(
                        ErrorCode::Unavailable,
                        format!("the host cannot record the run right now: {err}"),
                    )));
                }
            }),
        );

        let (events, end) = unstarted.start(agent_name.to_string(), agent.version.clone());
        if let Some(deps) = &served.deps
            && let Err(unavailable) = deps.check_agent(agent_name)
        {
            // Fail fast: the agent would only wait on what is missing.
            drop(events);
            end.failed(
                Code::DependencyUnavailable,
                unavailable.reason,
                unavailable.retryable,
            );
            return Ok(());
        }
        let ctx = RunContext {
            user_id: user.to_string(),
            thread_id,
            run_id,
        };
        let host = RunHost::new(self, &served.registry, &agent, ctx, events, Vec::new());
        tokio::spawn(async move {
            // The run's end is in its log; nothing waits for the result here.
            let _ = drive(host, agent.plugin, input, history, end, cancel).await;
        });
        Ok(())
    }

    /// Takes a run slot for `user` on `thread_id`, or says why not.
    fn claim(
        self: &Arc<Self>,
        user: &str,
        thread_id: &str,
        run_id: &str,
        permit: OwnedSemaphorePermit,
    ) -> Result<RunGuard, RunRefused> {
        let limits = &self.limits;
        let backlog = self
            .lock()
            .admit(
                user,
                thread_id,
                limits.per_user,
                limits.user_event_rate,
                Instant::now(),
            )
            .map_err(|refusal| refused(refusal, thread_id))?;
        Ok(RunGuard {
            backlog,
            runs: self.clone(),
            run_id: run_id.to_string(),
            user: user.to_string(),
            thread_id: thread_id.to_string(),
            _permit: permit,
        })
    }

    /// Takes a run slot for a nested run of `user`: it counts against the
    /// host's and the user's limits like a run a client starts.
    fn claim_nested(self: &Arc<Self>, user: &str) -> Result<NestedSlot, RunRefused> {
        let permit = self.global.clone().try_acquire_owned().map_err(|_| {
            RunRefused::new(
                ErrorCode::AtCapacity,
                format!(
                    "the host is running its limit of {} runs",
                    self.limits.global
                ),
            )
        })?;
        let limits = &self.limits;
        let backlog = self
            .lock()
            .admit_nested(
                user,
                limits.per_user,
                limits.user_event_rate,
                Instant::now(),
            )
            .map_err(|refusal| refused(refusal, ""))?;
        Ok(NestedSlot {
            backlog,
            runs: self.clone(),
            user: user.to_string(),
            _permit: permit,
        })
    }

    /// Cancels a run of `user`. Another user's run is "not found".
    pub fn cancel(&self, user: &str, run_id: &str) -> Result<(), RunRefused> {
        match self.lock().active.get(run_id) {
            Some(run) if run.owner == user => {
                run.cancel.cancel();
                Ok(())
            }
            _ => Err(no_run(run_id)),
        }
    }

    /// Finds a run of `user` to follow: its live log while it is going,
    /// otherwise its record in the store. Another user's run is "not found".
    pub async fn find(&self, user: &str, run_id: &str) -> Result<Followed, RunRefused> {
        if let Some(run) = self.lock().active.get(run_id) {
            return if run.owner == user {
                Ok(Followed::Active(run.log.clone()))
            } else {
                Err(no_run(run_id))
            };
        }
        // Not active: ended, and removed only after its terminal event was
        // stored, so the store holds the whole log.
        let id = run_id.to_string();
        match self.read(move |store| store.run(&id)).await? {
            Some(record) if record.user == user => {
                if record.events_pruned {
                    return Err(RunRefused::new(
                        ErrorCode::Expired,
                        format!(
                            "the events of run {run_id:?} were deleted by the retention policy"
                        ),
                    ));
                }
                Ok(Followed::Stored(Box::new(record)))
            }
            _ => Err(no_run(run_id)),
        }
    }

    /// How many runs are going.
    pub fn active_count(&self) -> usize {
        self.lock().active.len()
    }
}

/// What a client is told when admission refuses its run.
fn refused(refusal: Refusal, thread_id: &str) -> RunRefused {
    match refusal {
        Refusal::TooManyRuns { running, limit } => RunRefused::new(
            ErrorCode::TooManyRuns,
            format!(
                "you already have {running} runs going (the limit is {limit}); wait for one to end or cancel one"
            ),
        ),
        Refusal::ThreadBusy => RunRefused::new(
            ErrorCode::ThreadBusy,
            format!(
                "thread {thread_id:?} already has a run going; wait for it to end or cancel it"
            ),
        ),
        Refusal::NoSuchThread => no_thread(thread_id),
    }
}

fn no_run(run_id: &str) -> RunRefused {
    RunRefused::new(ErrorCode::NotFound, format!("no run {run_id:?}"))
}

fn no_thread(thread_id: &str) -> RunRefused {
    RunRefused::new(ErrorCode::NotFound, format!("no thread {thread_id:?}"))
}

/// How a run that did not answer ended.
struct Failure {
    /// Its `agent_error` code (`cancelled` for a cancelled run).
    code: Code,
    /// What went wrong.
    message: String,
}

/// Runs `agent` for `host`'s run until it answers, fails, breaks its grant
/// or `cancel` fires, and ends the run's log accordingly.
async fn drive(
    host: Arc<RunHost>,
    agent: netra_runtime::AgentPlugin,
    input: String,
    history: Vec<Message>,
    end: RunEnd,
    cancel: CancellationToken,
) -> Result<String, Failure> {
    let abort = host.abort.clone();
    let run = agent.run(host.ctx.clone(), input, history, host.clone());
    let result = tokio::select! {
        result = run => Some(result),
        () = cancel.cancelled() => None,
        () = abort.cancelled() => None,
    };
    // A grant violation wins even if the agent finished in the meantime.
    if abort.is_cancelled() {
        let (code, message) = host
            .violation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_else(|| (Code::ToolDenied, String::new()));
        end.failed(code.clone(), message.clone(), false);
        return Err(Failure { code, message });
    }
    let usage = host
        .usage
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    match result {
        None => {
            end.cancelled(usage);
            Err(Failure {
                code: Code::Cancelled,
                message: "the run was cancelled".into(),
            })
        }
        Some(Ok(answer)) if answer.len() as u64 > host.budgets.max_answer_bytes => {
            let (code, message) = (
                Code::BudgetAnswerBytes,
                format!(
                    "the answer is {} bytes; the limit is {} (limits.max_answer_bytes)",
                    answer.len(),
                    host.budgets.max_answer_bytes
                ),
            );
            end.failed(code.clone(), message.clone(), false);
            Err(Failure { code, message })
        }
        Some(Ok(answer)) => {
            end.completed(answer.clone(), usage);
            Ok(answer)
        }
        Some(Err(err)) => {
            let retryable = matches!(
                err,
                InvokeError::Capacity(_)
                    | InvokeError::Agent(netra_runtime::AgentError::Unavailable(_))
            );
            let (code, message) = (Code::from(&err), err.to_string());
            end.failed(code.clone(), message.clone(), retryable);
            Err(Failure { code, message })
        }
    }
}

/// A run's slot (global permit, per-user count, its thread), released when
/// its terminal event has been stored.
struct RunGuard {
    /// The user's events waiting for the store.
    backlog: Arc<Backlog>,
    runs: Arc<Runs>,
    run_id: String,
    user: String,
    thread_id: String,
    _permit: OwnedSemaphorePermit,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let mut state = self.runs.lock();
        state.end_run(&self.run_id, &self.thread_id);
        state.release(&self.user, Instant::now());
    }
}

/// A nested run's slot (global permit, per-user count), released when the
/// nested run returns to its caller.
struct NestedSlot {
    backlog: Arc<Backlog>,
    runs: Arc<Runs>,
    user: String,
    _permit: OwnedSemaphorePermit,
}

impl Drop for NestedSlot {
    fn drop(&mut self) {
        self.runs.lock().release(&self.user, Instant::now());
    }
}

/// The part of `budgets` a run's log enforces.
fn event_budget(budgets: &Budgets) -> EventBudget {
    EventBudget {
        max_events: budgets.max_events,
        max_bytes: budgets.max_event_bytes,
    }
}
