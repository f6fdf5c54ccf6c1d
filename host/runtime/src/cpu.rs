//! Fair shares of the CPU between users' guests.
//!
//! Guests run on the async threads and yield at every epoch tick. Without
//! more, a user with eight runs spinning gets eight turns for every one of a
//! bystander's, and the host's own work (sockets, the store's callbacks)
//! queues behind all of them. The [`CpuGate`] bounds how many guests compute
//! at once (`slots`, by default one fewer than the machine's cores, so one is
//! always left for the host) and hands its slots out by user, in turn:
//!
//! - a slot is a lease of one tick. A guest takes one at an epoch tick and
//!   renews it at the next; when someone is waiting it gives it to them
//!   instead and queues for the next. A guest blocked in the host (on I/O,
//!   or on a tool or nested run of its user, which may need the slot) does
//!   not renew, and the epoch ticker takes its slot back after two ticks;
//! - a guest that finds no slot free at a tick waits in its user's queue;
//!   users with waiting guests are served round-robin, and each user's
//!   guests in the order they came, so with `n` users contending each gets
//!   about `1/n` of the slots' time whatever number of guests they run, be
//!   they computing or calling the host in a loop;
//! - a guest that has not yet reached a tick since its call began runs
//!   without a slot: a short call never waits.
//!
//! A slot is given back when the call returns or the store is dropped. The
//! deadline still bounds a waiting guest: its call is dropped at the deadline
//! (`plugin::until`), and with it its place in the queue.
//!
//! The gate shares the guests' time among users; the operating system
//! shares the cores between guests and the host. A call starts on the
//! thread that made it, and once it is past its first tick (a grace tick
//! after each start or return from the host, for a user within their share,
//! see [`AtTick::Grace`]) moves to the [`GuestThreads`], which run at the
//! kernel's lowest priority (`SCHED_IDLE`, else `nice` +10): a guest
//! computing never delays the host's sockets and store by a time slice of
//! the kernel's. A user's memory growth is charged to a rate of theirs at
//! each tick; a guest that grew past it waits, holding no slot. Short calls,
//! most tool calls, never move, unless their user has recently taken more
//! CPU time in calls than an even share among the users active lately
//! ([`CpuGate::over_share`]): then all their calls start on the guest
//! threads, so a user making many short heavy calls cannot crowd the host's
//! threads either.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::rate::{Bucket, ByteRate};

/// Ticks a holder may go without renewing its lease before the ticker takes
/// the slot back: the tick it was renewed in and the next.
const LEASE_TICKS: u64 = 2;

/// The slots guests compute in, shared by every store of a runtime.
pub(crate) struct CpuGate {
    state: Mutex<GateState>,
}

struct GateState {
    slots: usize,
    /// Ticks seen by [`CpuGate::sweep`].
    now: u64,
    /// The seats holding a slot.
    holders: Vec<Arc<Ticket>>,
    /// Users with waiting guests, in the order they are served.
    turns: VecDeque<Arc<str>>,
    /// Each waiting user's guests, in the order they came.
    queues: HashMap<Arc<str>, VecDeque<Arc<Ticket>>>,
    /// The CPU time each user's calls took recently, in nanoseconds, decayed
    /// at every tick; a user leaves the map once theirs is under
    /// [`USAGE_FLOOR`].
    usage: HashMap<Arc<str>, f64>,
    /// How fast a user's guests may grow their memories; `None` is unlimited.
    memory_rate: Option<ByteRate>,
    /// The memory growth of users who grew lately; a user leaves the map
    /// once their bucket is full again.
    memory: HashMap<Arc<str>, Bucket>,
}

/// Ticks between two looks for users whose memory bucket is full again.
const MEMORY_SWEEP_TICKS: u64 = 128;

/// How much of a user's recent CPU time is left after a tick: a half-life
/// of about 35 ticks.
const USAGE_DECAY: f64 = 0.98;
/// Recent CPU time under which a user no longer counts as active.
const USAGE_FLOOR: f64 = 1_000.0;

/// One store's claim on a slot. `holding` and `renewed` change only under
/// the gate's lock.
#[derive(Default)]
struct Ticket {
    holding: AtomicBool,
    /// The tick its lease was last taken or renewed in.
    renewed: AtomicU64,
    waker: Mutex<Option<Waker>>,
    /// Set by the epoch callback when it lets the guest go on, cleared by
    /// the call's next `Pending`: the guest is yielding at a tick, not
    /// blocked in the host.
    yielding: AtomicBool,
    /// While a [`Turn`] of it is outstanding: the guest waits for its turn.
    waiting: AtomicBool,
    /// While it is in a queue (changes under the gate's lock).
    queued: AtomicBool,
    /// Set at the store's first tick: its call should move to the guest
    /// threads.
    ticked: AtomicBool,
    /// Set when the guest starts computing (its call begins, or it comes
    /// back from a wait in the host), cleared at its next tick: that tick
    /// only starts the count (see [`AtTick::Grace`]).
    fresh: AtomicBool,
}

impl Ticket {
    fn holding(&self) -> bool {
        self.holding.load(Ordering::Relaxed)
    }
}

impl CpuGate {
    /// A gate of `slots` slots (at least one); each user's guests may grow
    /// their memories at `memory_rate`.
    pub(crate) fn new(slots: usize, memory_rate: Option<ByteRate>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(GateState {
                slots: slots.max(1),
                now: 0,
                holders: Vec::new(),
                turns: VecDeque::new(),
                queues: HashMap::new(),
                usage: HashMap::new(),
                memory_rate,
                memory: HashMap::new(),
            }),
        })
    }

    /// The number of cores minus one, at least one: the default number of
    /// slots, which leaves a core to the host's own work.
    pub(crate) fn default_slots() -> usize {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get().saturating_sub(1))
            .max(1)
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        // Nothing under the lock can panic half-way; a poisoned state is whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A seat for one store, holding nothing.
    pub(crate) fn seat(self: &Arc<Self>) -> CpuSeat {
        CpuSeat(SeatHandle {
            gate: self.clone(),
            ticket: Arc::new(Ticket::default()),
        })
    }

    /// Called by the epoch ticker at every tick: takes back the slots of
    /// guests that have not renewed their lease (they are blocked in the
    /// host) and gives them to waiting guests.
    pub(crate) fn sweep(&self) {
        let wakers = {
            let mut state = self.lock();
            state.now += 1;
            let now = state.now;
            state.usage.retain(|_, ns| {
                *ns *= USAGE_DECAY;
                *ns >= USAGE_FLOOR
            });
            if now.is_multiple_of(MEMORY_SWEEP_TICKS) {
                let at = Instant::now();
                state.memory.retain(|_, bucket| bucket.full_at(at) > at);
            }
            let mut wakers = Vec::new();
            let mut i = 0;
            while i < state.holders.len() {
                let ticket = &state.holders[i];
                if now.saturating_sub(ticket.renewed.load(Ordering::Relaxed)) > LEASE_TICKS {
                    ticket.holding.store(false, Ordering::Relaxed);
                    state.holders.swap_remove(i);
                    wakers.extend(state.hand_over());
                } else {
                    i += 1;
                }
            }
            wakers
        };
        for waker in wakers {
            waker.wake();
        }
    }

    /// Adds `spent` to `user`'s recent CPU time.
    fn charge(&self, user: &str, spent: Duration) {
        let ns = spent.as_nanos() as f64;
        let mut state = self.lock();
        if let Some(usage) = state.usage.get_mut(user) {
            *usage += ns;
        } else {
            state.usage.insert(Arc::from(user), ns);
        }
    }

    /// Whether `user` has recently taken more CPU than an even share among
    /// the users active lately: their calls then start on the guest threads
    /// rather than on the host's. Alone, a user is never over.
    pub(crate) fn over_share(&self, user: &str) -> bool {
        self.lock().over_share(user)
    }
}

impl GateState {
    /// Charges `user` with `grown` bytes of memory growth; how long their
    /// guest must wait for the debt to be repaid, if there is one.
    fn charge_memory(&mut self, user: &str, grown: u64) -> Option<Duration> {
        let rate = self.memory_rate?;
        if grown == 0 {
            return None;
        }
        let now = Instant::now();
        let bucket = match self.memory.get_mut(user) {
            Some(bucket) => bucket,
            None => self
                .memory
                .entry(Arc::from(user))
                .or_insert_with(|| Bucket::new(rate, now)),
        };
        bucket.charge(grown, now);
        bucket.debt(now)
    }

    fn over_share(&self, user: &str) -> bool {
        let active = self.usage.len();
        if active < 2 {
            return false;
        }
        let total: f64 = self.usage.values().sum();
        self.usage
            .get(user)
            .is_some_and(|mine| *mine > total / active as f64)
    }

    /// Gives `ticket` a free slot.
    fn grant(&mut self, ticket: &Arc<Ticket>) {
        ticket.holding.store(true, Ordering::Relaxed);
        ticket.renewed.store(self.now, Ordering::Relaxed);
        self.holders.push(ticket.clone());
    }

    /// Takes `ticket`'s slot back.
    fn release(&mut self, ticket: &Arc<Ticket>) {
        ticket.holding.store(false, Ordering::Relaxed);
        self.holders.retain(|t| !Arc::ptr_eq(t, ticket));
    }

    /// Gives a free slot to the next waiting guest, if any; its waker, to
    /// wake once the lock is released.
    fn hand_over(&mut self) -> Option<Waker> {
        if self.holders.len() >= self.slots {
            return None;
        }
        while let Some(user) = self.turns.pop_front() {
            let Some(queue) = self.queues.get_mut(&user) else {
                continue;
            };
            let next = queue.pop_front();
            if queue.is_empty() {
                self.queues.remove(&user);
            } else {
                self.turns.push_back(user);
            }
            if let Some(ticket) = next {
                ticket.queued.store(false, Ordering::Relaxed);
                self.grant(&ticket);
                return ticket
                    .waker
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
            }
        }
        None
    }

    fn contended(&self) -> bool {
        !self.turns.is_empty()
    }

    /// Takes a free slot for `ticket` if one is free and nobody waits.
    fn try_take(&mut self, ticket: &Arc<Ticket>) -> bool {
        if self.holders.len() < self.slots && !self.contended() {
            self.grant(ticket);
            true
        } else {
            false
        }
    }

    fn enqueue(&mut self, user: &str, ticket: Arc<Ticket>) {
        ticket.queued.store(true, Ordering::Relaxed);
        if let Some(queue) = self.queues.get_mut(user) {
            queue.push_back(ticket);
        } else {
            let user: Arc<str> = Arc::from(user);
            self.queues.insert(user.clone(), VecDeque::from([ticket]));
            self.turns.push_back(user);
        }
    }

    /// Takes `ticket` out of `user`'s queue, if it is there.
    fn dequeue(&mut self, user: &str, ticket: &Arc<Ticket>) {
        let Some(queue) = self.queues.get_mut(user) else {
            return;
        };
        queue.retain(|t| !Arc::ptr_eq(t, ticket));
        ticket.queued.store(false, Ordering::Relaxed);
        if queue.is_empty() {
            self.queues.remove(user);
            self.turns.retain(|u| &**u != user);
        }
    }
}

/// What one store holds of the gate. Dropping it gives back its slot.
pub(crate) struct CpuSeat(SeatHandle);

impl std::ops::Deref for CpuSeat {
    type Target = SeatHandle;

    fn deref(&self) -> &SeatHandle {
        &self.0
    }
}

/// A seat, for the code that drives its store's calls.
#[derive(Clone)]
pub(crate) struct SeatHandle {
    gate: Arc<CpuGate>,
    ticket: Arc<Ticket>,
}

/// What the epoch callback should do at a tick.
pub(crate) enum AtTick {
    /// The guest holds a slot: yield to other tasks and go on.
    Go,
    /// The guest has just started computing and its user is not over their
    /// share: go on without a slot until the next tick. The epoch keeps
    /// wall time, so the tick a guest meets first after a wait in the host
    /// comes however little it has computed since; a light user's short
    /// call that happens to span one (an agent back from its tool) neither
    /// queues behind a heavy user nor moves to the guest threads.
    Grace,
    /// Wait for this, then go on.
    Wait(Pin<Box<dyn Future<Output = ()> + Send>>),
}

impl CpuSeat {
    /// A handle for the code that drives the store's calls.
    pub(crate) fn handle(&self) -> SeatHandle {
        self.0.clone()
    }
}

impl SeatHandle {
    /// Gives the slot back, if this seat holds one: the guest's call ended.
    pub(crate) fn leave(&self) {
        if !self.ticket.holding() {
            return;
        }
        let waker = {
            let mut state = self.gate.lock();
            if !self.ticket.holding() {
                // Taken back by the ticker meanwhile.
                return;
            }
            state.release(&self.ticket);
            state.hand_over()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// At an epoch tick of a guest of `user` whose memories grew by `grown`
    /// bytes since the last one: renew or take a lease if that is fair,
    /// otherwise give back the slot held and queue for the next. A guest
    /// that grew while its user is over their memory rate first waits for
    /// the debt to be repaid, holding no slot.
    pub(crate) fn tick(&self, user: &str, grown: u64) -> AtTick {
        let fresh = self.ticket.fresh.swap(false, Ordering::Relaxed);
        let (waker, pause) = {
            let mut state = self.gate.lock();
            let pause = state.charge_memory(user, grown);
            if pause.is_none() && fresh && !self.ticket.holding() && !state.over_share(user) {
                return AtTick::Grace;
            }
            self.ticket.ticked.store(true, Ordering::Relaxed);
            let waker = if self.ticket.holding() {
                if pause.is_none() && !state.contended() {
                    self.ticket.renewed.store(state.now, Ordering::Relaxed);
                    self.ticket.yielding.store(true, Ordering::Relaxed);
                    return AtTick::Go;
                }
                state.release(&self.ticket);
                state.hand_over()
            } else if pause.is_none() && state.try_take(&self.ticket) {
                self.ticket.yielding.store(true, Ordering::Relaxed);
                return AtTick::Go;
            } else {
                None
            };
            (waker, pause)
        };
        self.ticket.waiting.store(true, Ordering::Relaxed);
        if let Some(waker) = waker {
            waker.wake();
        }
        let turn = Turn {
            gate: self.gate.clone(),
            ticket: self.ticket.clone(),
            user: Arc::from(user),
            done: false,
        };
        match pause {
            None => AtTick::Wait(Box::pin(turn)),
            Some(pause) => AtTick::Wait(Box::pin(async move {
                tokio::time::sleep(pause).await;
                turn.await;
            })),
        }
    }
}

impl Drop for CpuSeat {
    fn drop(&mut self) {
        self.leave();
    }
}

/// Waits for a seat's turn: ready once the gate has handed it a slot.
struct Turn {
    gate: Arc<CpuGate>,
    ticket: Arc<Ticket>,
    user: Arc<str>,
    done: bool,
}

impl Future for Turn {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut state = this.gate.lock();
        // Not queued: not yet, or handed a slot that the ticker took back
        // before this guest ran (it did not renew in time).
        let queued = this.ticket.queued.load(Ordering::Relaxed);
        if this.ticket.holding() || (!queued && state.try_take(&this.ticket)) {
            this.done = true;
            this.ticket.waiting.store(false, Ordering::Relaxed);
            return Poll::Ready(());
        }
        *this
            .ticket
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
        if !queued {
            state.enqueue(&this.user, this.ticket.clone());
        }
        Poll::Pending
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        // Dropped waiting (the call's deadline passed): leave the queue. A
        // slot handed over meanwhile stays the seat's, which gives it back
        // when its store is dropped, or the ticker when it is not renewed.
        if !self.done {
            self.ticket.waiting.store(false, Ordering::Relaxed);
            let mut state = self.gate.lock();
            if self.ticket.queued.load(Ordering::Relaxed) {
                state.dequeue(&self.user, &self.ticket);
            }
        }
    }
}

/// How much nicer than the host the guest threads are where they cannot be
/// SCHED_IDLE.
const GUEST_NICE: i32 = 10;

thread_local! {
    static ON_GUEST_THREAD: Cell<bool> = const { Cell::new(false) };
    /// Set while a [`Metered`] call is polled: a call nested in it (a tool
    /// an agent calls) is not charged a second time.
    static METERING: Cell<bool> = const { Cell::new(false) };
}

/// The threads guest calls move to once they have computed for a tick: an
/// event loop of its own, at a lower priority than the host's.
pub(crate) struct GuestThreads {
    handle: tokio::runtime::Handle,
    /// Only `None` while being dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl GuestThreads {
    pub(crate) fn start(threads: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("netra-guest")
            .on_thread_start(|| {
                ON_GUEST_THREAD.with(|on| on.set(true));
                lower_priority();
            })
            .enable_all()
            .build()?;
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// Runs `call`, a call into the store that `seat` belongs to, on this
    /// thread until the guest reaches a tick, then on the guest threads.
    /// Whenever the call waits in the host (not at a tick), its CPU slot is
    /// given back. `None` if the guest threads stopped under it (the runtime
    /// is being dropped). Dropping the future drops the call wherever it runs.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        seat: SeatHandle,
        user: &str,
        call: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let over_share = seat.gate.over_share(user);
        seat.ticket.fresh.store(true, Ordering::Relaxed);
        let mut call = Metered {
            seat,
            user: Arc::from(user),
            call: Box::pin(call),
        };
        if ON_GUEST_THREAD.with(Cell::get) {
            return Some(call.await);
        }
        if over_share {
            // A user taking more than their share computes where the host's
            // threads go first, short calls too.
            return Moved(self.handle.spawn(call)).await;
        }
        let here = std::future::poll_fn(|cx| match Pin::new(&mut call).poll(cx) {
            Poll::Ready(out) => Poll::Ready(Some(out)),
            // Computed for a tick: the epoch callback has yielded (woken
            // this task already); the rest runs on the guest threads.
            Poll::Pending if call.seat.ticket.ticked.load(Ordering::Relaxed) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        })
        .await;
        if here.is_some() {
            return here;
        }
        Moved(self.handle.spawn(call)).await
    }
}

impl Drop for GuestThreads {
    fn drop(&mut self) {
        // Dropped from async code too: do not wait for the threads.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A call into a store that gives the store's CPU slot back whenever the
/// call waits for anything but its turn: a guest blocked in the host (on
/// I/O, on a tool or a nested run of its user) holds no slot.
struct Metered<F> {
    seat: SeatHandle,
    /// Charged with the time its polls take.
    user: Arc<str>,
    call: Pin<Box<F>>,
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let outermost = !METERING.with(|m| m.replace(true));
        let began = Instant::now();
        let polled = self.call.as_mut().poll(cx);
        if outermost {
            METERING.with(|m| m.set(false));
            self.seat.gate.charge(&self.user, began.elapsed());
        }
        let ticket = &self.seat.ticket;
        if polled.is_pending()
            && !ticket.yielding.swap(false, Ordering::Relaxed)
            && !ticket.waiting.load(Ordering::Relaxed)
        {
            self.seat.leave();
            ticket.fresh.store(true, Ordering::Relaxed);
        }
        polled
    }
}

/// A call moved to the guest threads; dropping it drops the call.
struct Moved<T>(tokio::task::JoinHandle<T>);

impl<T> Future for Moved<T> {
    type Output = Option<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        Pin::new(&mut self.0).poll(cx).map(|joined| match joined {
            Ok(out) => Some(out),
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_) => None,
        })
    }
}

impl<T> Drop for Moved<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Puts the calling thread below the rest of the process, so the kernel
/// runs the host's threads first.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SCHED_IDLE: a thread of the host that wakes takes the core from a
        // guest thread at once. With only a lower nice value the kernel
        // (EEVDF) lets the running guest finish its slice first, a few ms
        // that a bystander's run waits for (`cargo xtask bench hostile`,
        // infinite loop: bystander p99 1.9x its baseline with nice +10,
        // 0.7x with SCHED_IDLE). Lowering one's own policy needs no
        // privilege; nice +10 is the fallback where it is refused.
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: plain system calls on the calling thread (pid 0 and its
        // tid); `param` outlives the call.
        let idle = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        if idle == 0 {
            return;
        }
        let refused = std::io::Error::last_os_error();
        // SAFETY: as above.
        let result = unsafe {
            let tid = libc::gettid();
            let now = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
            libc::setpriority(
                libc::PRIO_PROCESS,
                tid as libc::id_t,
                (now + GUEST_NICE).min(19),
            )
        };
        if result != 0 {
            tracing::warn!(
                "cannot lower the priority of a guest thread: SCHED_IDLE: {refused}; nice: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(turn: &mut AtTick) -> bool {
        match turn {
            AtTick::Go | AtTick::Grace => true,
            AtTick::Wait(fut) => {
                let mut cx = Context::from_waker(Waker::noop());
                fut.as_mut().poll(&mut cx).is_ready()
            }
        }
    }

    #[test]
    fn users_take_turns_whatever_number_of_guests_they_run() {
        let gate = CpuGate::new(1, None);
        let mallory: Vec<CpuSeat> = (0..4).map(|_| gate.seat()).collect();
        let bob = gate.seat();
        // Mallory's first guest takes the only slot; her others queue.
        assert!(matches!(mallory[0].tick("mallory", 0), AtTick::Go));
        let mut waiting: Vec<AtTick> = mallory[1..].iter().map(|s| s.tick("mallory", 0)).collect();
        for turn in &mut waiting {
            assert!(!ready(turn));
        }
        let mut bobs = bob.tick("bob", 0);
        assert!(!ready(&mut bobs));
        // At her next tick the slot goes to her second guest; the one after
        // that to Bob, before any third guest of hers.
        let mut again = mallory[0].tick("mallory", 0);
        assert!(!ready(&mut again));
        assert!(ready(&mut waiting[0]));
        assert!(!ready(&mut bobs));
        let mut second = mallory[1].tick("mallory", 0);
        assert!(!ready(&mut second));
        assert!(ready(&mut bobs));
        assert!(!ready(&mut waiting[1]));
    }

    #[test]
    fn a_guest_blocked_in_the_host_loses_its_slot_to_a_waiting_one() {
        let gate = CpuGate::new(1, None);
        let (agent, tool) = (gate.seat(), gate.seat());
        // The agent holds the slot, then waits in the host for a tool of the
        // same user, which reaches a tick and queues.
        assert!(matches!(agent.tick("u", 0), AtTick::Go));
        let mut turn = tool.tick("u", 0);
        assert!(!ready(&mut turn));
        gate.sweep();
        gate.sweep();
        assert!(!ready(&mut turn), "a lease lasts two ticks");
        gate.sweep();
        assert!(ready(&mut turn));
        // Back from the host, the agent queues for its next turn.
        let mut back = agent.tick("u", 0);
        assert!(!ready(&mut back));
        drop(back);
        // A renewed lease is not taken back.
        for _ in 0..5 {
            gate.sweep();
            assert!(matches!(tool.tick("u", 0), AtTick::Go));
        }
    }

    #[test]
    fn a_slot_taken_back_before_its_guest_ran_is_waited_for_again() {
        let gate = CpuGate::new(1, None);
        let (a, b, c) = (gate.seat(), gate.seat(), gate.seat());
        assert!(matches!(a.tick("u", 0), AtTick::Go));
        let mut b_turn = b.tick("v", 0);
        assert!(!ready(&mut b_turn));
        // Handed to B, whose thread does not run it for three ticks.
        a.leave();
        for _ in 0..3 {
            gate.sweep();
        }
        // C takes the free slot; B, polled at last, queues again.
        assert!(matches!(c.tick("w", 0), AtTick::Go));
        assert!(!ready(&mut b_turn));
        c.leave();
        assert!(ready(&mut b_turn));
    }

    #[test]
    fn a_user_over_an_even_share_of_recent_cpu_is_told_so_until_it_decays() {
        let gate = CpuGate::new(1, None);
        let ms = Duration::from_millis(1);
        // Alone, a user is never over their share, however much they take.
        gate.charge("mallory", 50 * ms);
        assert!(!gate.over_share("mallory"));
        // Beside a lighter user, the heavier one is over and the other not.
        gate.charge("bob", 10 * ms);
        assert!(gate.over_share("mallory"));
        assert!(!gate.over_share("bob"));
        assert!(!gate.over_share("carol"), "a user with no recent use");
        // Recent use decays at every tick; when bob's falls under the floor
        // he stops counting, and mallory is alone again.
        let mut ticks = 0;
        while gate.lock().usage.contains_key("bob") {
            gate.sweep();
            ticks += 1;
        }
        assert!((300..1000).contains(&ticks), "{ticks} ticks");
        assert!(!gate.over_share("mallory"));
    }

    #[test]
    fn the_end_of_a_call_or_a_dropped_wait_frees_the_slot() {
        let gate = CpuGate::new(1, None);
        let (a, b, c) = (gate.seat(), gate.seat(), gate.seat());
        assert!(matches!(a.tick("u", 0), AtTick::Go));
        let mut b_turn = b.tick("v", 0);
        assert!(!ready(&mut b_turn));
        let mut c_turn = c.tick("w", 0);
        assert!(!ready(&mut c_turn));
        // B gives up waiting (its deadline passed): C is next.
        drop(b_turn);
        a.leave();
        assert!(ready(&mut c_turn));
        // C's store is dropped holding the slot: it is free again.
        drop(c_turn);
        drop(c);
        assert!(matches!(b.tick("v", 0), AtTick::Go));
    }

    #[test]
    fn a_light_user_back_from_the_host_computes_one_tick_before_queueing() {
        let gate = CpuGate::new(1, None);
        let (mallory, bob) = (gate.seat(), gate.seat());
        let ms = Duration::from_millis(1);
        gate.charge("mallory", 50 * ms);
        gate.charge("bob", ms);
        assert!(matches!(mallory.tick("mallory", 0), AtTick::Go));
        // Bob's guest comes back from the host: its first tick is free, the
        // one after queues behind mallory's.
        bob.ticket.fresh.store(true, Ordering::Relaxed);
        assert!(matches!(bob.tick("bob", 0), AtTick::Grace));
        assert!(
            !bob.ticket.ticked.load(Ordering::Relaxed),
            "it stays where it is"
        );
        let mut turn = bob.tick("bob", 0);
        assert!(!ready(&mut turn));
        assert!(bob.ticket.ticked.load(Ordering::Relaxed));
        drop(turn);
        // A user over their share gets no grace.
        let other = gate.seat();
        other.ticket.fresh.store(true, Ordering::Relaxed);
        let mut turn = other.tick("mallory", 0);
        assert!(!ready(&mut turn));
    }

    #[test]
    fn a_user_growing_memory_past_their_rate_waits_at_the_tick() {
        const MIB: u64 = 1 << 20;
        let rate = ByteRate {
            per_sec: 64 * MIB,
            burst: 2 * MIB,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _in_runtime = runtime.enter();
        let gate = CpuGate::new(1, Some(rate));
        let (bomb, other) = (gate.seat(), gate.seat());
        // Within the burst: on at once, holding the slot.
        assert!(matches!(bomb.tick("mallory", MIB), AtTick::Go));
        // Past it: the slot goes back and the guest waits out the debt
        // (2 MiB at 64 MiB/s: about 31 ms).
        let mut paused = bomb.tick("mallory", 3 * MIB);
        assert!(!ready(&mut paused), "a pause holds no slot");
        assert!(matches!(other.tick("bob", 0), AtTick::Go));
        other.leave();
        // A guest that grows nothing is not paused for its user's debt.
        let quiet = gate.seat();
        assert!(matches!(quiet.tick("mallory", 0), AtTick::Go));
        quiet.leave();
        let began = Instant::now();
        runtime.block_on(async {
            let AtTick::Wait(pause) = paused else {
                unreachable!()
            };
            pause.await;
        });
        let waited = began.elapsed();
        assert!(waited >= Duration::from_millis(30), "{waited:?}");
        assert!(bomb.ticket.holding(), "then it has the slot");
        // Without a rate, growth is free.
        let free = CpuGate::new(1, None).seat();
        assert!(matches!(free.tick("mallory", 1 << 40), AtTick::Go));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn guest_threads_run_at_idle_priority() {
        let threads = GuestThreads::start(1).unwrap();
        let policy = threads
            .handle
            // SAFETY: reads the calling thread's policy.
            .block_on(async {
                threads
                    .handle
                    .spawn(async { unsafe { libc::sched_getscheduler(0) } })
                    .await
            })
            .unwrap();
        assert_eq!(policy, libc::SCHED_IDLE);
        // SAFETY: as above, on the test's own thread.
        assert_ne!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_IDLE);
    }

    #[test]
    fn a_slot_handed_to_a_dropped_wait_is_given_back_with_its_seat() {
        let gate = CpuGate::new(1, None);
        let (a, b) = (gate.seat(), gate.seat());
        assert!(matches!(a.tick("u", 0), AtTick::Go));
        let mut b_turn = b.tick("v", 0);
        assert!(!ready(&mut b_turn));
        a.leave();
        // Handed to B, whose call is dropped before it sees it.
        drop(b_turn);
        assert!(!matches!(a.tick("u", 0), AtTick::Go));
        drop(b);
        assert!(matches!(a.tick("u", 0), AtTick::Go));
    }
}
