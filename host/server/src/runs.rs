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

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Instant, SystemTime};

use netra_config::Budgets;
use netra_llm::Delta;
use netra_runtime::{
    AgentHost, ChatFuture, InvokeError, Message, Role, RunContext, ToolCallFuture, ToolDescriptor,
    ToolError, ToolInstance, llm, tool_error_message,
};
use netra_store::{NewRun, NewThread, RunRecord, Store, StoreError, StoredMessage, ThreadSummary};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::deps::Dependencies;
use crate::ids;
use crate::llm::Models;
use crate::protocol::{Code, ErrorCode, ToolFailure, Usage};
use crate::registry::{AgentEntry, Registry, ToolEntry};
use crate::run_log::{
    Backlog, EventBudget, Outbox, Overspent, RunEnd, RunEvents, RunLog, RunLogSpec, ToolSpan,
};
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
}

/// What a user with runs going has: how many, and their events waiting for
/// the store.
struct UserRuns {
    running: usize,
    backlog: Arc<Backlog>,
}

#[derive(Default)]
struct RunsState {
    active: HashMap<String, ActiveRun>,
    /// Users with runs going, and users whose last run ended while their
    /// event rate was spent (kept until it is back, so ending every run does
    /// not buy a new burst).
    per_user: HashMap<String, UserRuns>,
    /// Users in `per_user` with no run going, and when they may be forgotten.
    idle: VecDeque<(Instant, String)>,
    /// Threads with a run going.
    busy_threads: HashSet<String>,
}

struct ActiveRun {
    owner: String,
    log: Arc<RunLog>,
    cancel: CancellationToken,
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
        let mut state = self.lock();
        self.check_user(&state, user)?;
        if !state.busy_threads.insert(thread_id.to_string()) {
            // Another user's busy thread must look missing, like any thread
            // of theirs.
            let owner_is_user = state
                .active
                .values()
                .any(|run| run.owner == user && run.log.thread_id() == thread_id);
            return Err(if owner_is_user {
                RunRefused::new(
                    ErrorCode::ThreadBusy,
                    format!(
                        "thread {thread_id:?} already has a run going; wait for it to end or cancel it"
                    ),
                )
            } else {
                no_thread(thread_id)
            });
        }
        let backlog = state.count_run(user, self.limits.user_event_rate);
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
        let mut state = self.lock();
        self.check_user(&state, user)?;
        let backlog = state.count_run(user, self.limits.user_event_rate);
        Ok(NestedSlot {
            backlog,
            runs: self.clone(),
            user: user.to_string(),
            _permit: permit,
        })
    }

    /// Refuses one more run of `user` when they have their limit going.
    fn check_user(&self, state: &RunsState, user: &str) -> Result<(), RunRefused> {
        let running = state.per_user.get(user).map_or(0, |u| u.running);
        if running < self.limits.per_user {
            return Ok(());
        }
        Err(RunRefused::new(
            ErrorCode::TooManyRuns,
            format!(
                "you already have {running} runs going (the limit is {}); wait for one to end or cancel one",
                self.limits.per_user
            ),
        ))
    }

    /// Gives back one of `user`'s run slots.
    fn release_user(&self, user: &str) {
        let mut state = self.lock();
        let now = Instant::now();
        if let Some(runs) = state.per_user.get_mut(user) {
            runs.running -= 1;
            if runs.running == 0 {
                match runs.backlog.forgettable_at() {
                    Some(at) if at > now => state.idle.push_back((at, user.to_string())),
                    _ => {
                        state.per_user.remove(user);
                    }
                }
            }
        }
        state.forget_idle(now);
    }

    /// Messages of `user`'s thread, as `read` picks them from the store.
    /// Another user's thread is reported exactly like a missing one, so
    /// existence does not leak.
    async fn owned_messages(
        &self,
        user: &str,
        thread_id: &str,
        read: impl FnOnce(&dyn Store, &str) -> Result<Vec<StoredMessage>, StoreError> + Send + 'static,
    ) -> Result<Vec<StoredMessage>, RunRefused> {
        let id = thread_id.to_string();
        let (owner, messages) = self
            .read(move |store| {
                let owner = store.thread_owner(&id)?;
                let messages = match owner {
                    Some(_) => read(store, &id)?,
                    None => Vec::new(),
                };
                Ok((owner, messages))
            })
            .await?;
        if owner.as_deref() != Some(user) {
            return Err(no_thread(thread_id));
        }
        Ok(messages)
    }

    /// The history of `user`'s thread for its next run: its latest messages,
    /// at most `history_messages` of them and `history_bytes` of content.
    async fn history(&self, user: &str, thread_id: &str) -> Result<Vec<Message>, RunRefused> {
        let count = self.limits.history_messages;
        let mut messages = self
            .owned_messages(user, thread_id, move |store, id| {
                store.thread_tail(id, count)
            })
            .await?;
        let mut bytes = 0;
        let keep = messages
            .iter()
            .rev()
            .take_while(|m| {
                bytes += m.content.len();
                bytes <= self.limits.history_bytes
            })
            .count();
        let skip = messages.len() - keep;
        messages.drain(..skip);
        Ok(messages.into_iter().map(to_message).collect())
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

    /// Sends the stored events of an ended run after `after_seq`, page by
    /// page, waiting for room in the outbox. Stops quietly if the session
    /// goes away; an error if the store fails part-way.
    pub async fn replay(
        &self,
        record: &RunRecord,
        after_seq: u64,
        outbox: &Outbox,
    ) -> Result<(), RunRefused> {
        const PAGE: usize = 256;
        let mut cursor = after_seq;
        while cursor < record.last_seq {
            let (id, after) = (record.id.clone(), cursor);
            let frames = self
                .read(move |store| store.events_after(&id, after, PAGE))
                .await?;
            if frames.is_empty() {
                break;
            }
            for frame in frames {
                if !outbox.send(frame.into()).await {
                    return Ok(());
                }
                cursor += 1;
            }
        }
        Ok(())
    }

    /// `user`'s thread: messages with seq > `after_seq`, at most `limit` and
    /// `max_bytes` of content (but at least one), and whether more follow.
    pub async fn thread(
        &self,
        user: &str,
        thread_id: &str,
        after_seq: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<(Vec<StoredMessage>, bool), RunRefused> {
        let mut page = self
            .owned_messages(user, thread_id, move |store, id| {
                store.thread_page(id, after_seq, limit.saturating_add(1))
            })
            .await?;
        let mut bytes = 0;
        let fit = page
            .iter()
            .take(limit)
            .enumerate()
            .take_while(|(i, m)| {
                bytes += m.content.len();
                *i == 0 || bytes <= max_bytes
            })
            .count();
        let more = page.len() > fit;
        page.truncate(fit);
        Ok((page, more))
    }

    /// `user`'s threads, most recently active first.
    pub async fn threads(
        &self,
        user: &str,
        limit: usize,
    ) -> Result<Vec<ThreadSummary>, RunRefused> {
        let user = user.to_string();
        self.read(move |store| store.list_threads(&user, limit))
            .await
    }

    /// How many runs are going.
    pub fn active_count(&self) -> usize {
        self.lock().active.len()
    }
}

fn no_run(run_id: &str) -> RunRefused {
    RunRefused::new(ErrorCode::NotFound, format!("no run {run_id:?}"))
}

fn no_thread(thread_id: &str) -> RunRefused {
    RunRefused::new(ErrorCode::NotFound, format!("no thread {thread_id:?}"))
}

/// A thread's title: the start of its first message, on one line.
fn title(input: &str) -> String {
    let line: String = input.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(TITLE_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

fn to_message(message: StoredMessage) -> Message {
    let role = match message.role {
        netra_store::Role::System => Role::System,
        netra_store::Role::User => Role::User,
        netra_store::Role::Assistant => Role::Assistant,
        netra_store::Role::Tool => Role::Tool,
    };
    Message {
        role,
        content: message.content,
    }
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

impl RunsState {
    /// Counts one more run of `user`; their backlog.
    fn count_run(&mut self, user: &str, rate: Option<ByteRate>) -> Arc<Backlog> {
        self.forget_idle(Instant::now());
        let runs = self
            .per_user
            .entry(user.to_string())
            .or_insert_with(|| UserRuns {
                running: 0,
                backlog: Arc::new(Backlog::new(rate)),
            });
        runs.running += 1;
        runs.backlog.clone()
    }

    /// Forgets the users without runs whose event rate is back to full.
    /// Each waits at most one burst's time, so `idle` holds only users
    /// seen within that time.
    fn forget_idle(&mut self, now: Instant) {
        while let Some((at, _)) = self.idle.front() {
            if *at > now {
                return;
            }
            let Some((_, user)) = self.idle.pop_front() else {
                return;
            };
            // They may have started a run again since.
            if self
                .per_user
                .get(&user)
                .is_some_and(|runs| runs.running == 0)
            {
                self.per_user.remove(&user);
            }
        }
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let mut state = self.runs.lock();
        state.active.remove(&self.run_id);
        state.busy_threads.remove(&self.thread_id);
        drop(state);
        self.runs.release_user(&self.user);
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
        self.runs.release_user(&self.user);
    }
}

/// The part of `budgets` a run's log enforces.
fn event_budget(budgets: &Budgets) -> EventBudget {
    EventBudget {
        max_events: budgets.max_events,
        max_bytes: budgets.max_event_bytes,
    }
}

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
struct RunHost {
    ctx: RunContext,
    events: RunEvents,
    tools: BTreeMap<String, ToolEntry>,
    registry: Arc<Registry>,
    /// One instance per tool plugin used in this run, created on first use.
    instances: tokio::sync::Mutex<HashMap<String, ToolInstance>>,
    /// Fired when the agent breaks its grant; the run then ends with an error.
    abort: CancellationToken,
    /// The `agent_error` (code, message) the broken rule ends the run with.
    violation: Mutex<Option<(Code, String)>>,
    /// Agents it may delegate to, called like tools (agent-as-tool).
    agents: BTreeMap<String, AgentEntry>,
    /// The agents from the root run down to this one.
    chain: Vec<String>,
    /// Where nested runs are recorded.
    store: Arc<dyn Store>,
    /// The host's runs (a nested run's host is made from them).
    runs: Arc<Runs>,
    /// The models this run's agent may use.
    llm: Llm,
    /// Tokens used by the run's completions so far.
    usage: Mutex<Option<Usage>>,
    /// What the run may spend.
    budgets: Budgets,
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
    fn new(
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
    fn overspend(&self, overspent: Overspent) {
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
    ToolFailure {
        code: Code::from(err),
        message: tool_error_message(err),
    }
}
