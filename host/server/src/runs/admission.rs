//! Admission: whether one more run of a user may start (on a thread, or
//! nested in another run), and the per-user counts and event backlogs that
//! runs hold. Plain state behind `Runs`'s lock: no I/O, and no clock but
//! the `now` each call is given.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use netra_runtime::rate::ByteRate;
use tokio_util::sync::CancellationToken;

use crate::run_log::{Backlog, RunLog};

/// What a user with runs going has: how many, and their events waiting for
/// the store.
struct UserRuns {
    running: usize,
    backlog: Arc<Backlog>,
}

/// A run going, for `run.cancel` and `run.subscribe`.
pub(super) struct ActiveRun {
    pub(super) owner: String,
    pub(super) log: Arc<RunLog>,
    pub(super) cancel: CancellationToken,
}

/// Every run going and what each user holds.
#[derive(Default)]
pub(super) struct RunsState {
    pub(super) active: HashMap<String, ActiveRun>,
    /// Users with runs going, and users whose last run ended while their
    /// event rate was spent (kept until it is back, so ending every run does
    /// not buy a new burst).
    per_user: HashMap<String, UserRuns>,
    /// Users in `per_user` with no run going, and when they may be forgotten.
    idle: VecDeque<(Instant, String)>,
    /// Threads with a run going, and the user who started it.
    busy_threads: HashMap<String, String>,
}

/// Why a run was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The user has `limit` runs going already.
    TooManyRuns { running: usize, limit: usize },
    /// The user's thread has a run going.
    ThreadBusy,
    /// Another user's run holds the thread: to this user it does not exist.
    NoSuchThread,
}

impl RunsState {
    /// Admits a run of `user` on `thread_id` when they have fewer than
    /// `limit` runs going and the thread none: counts it, marks the thread
    /// busy, and returns the user's backlog (a new one limited to `rate`
    /// for a user not seen lately).
    pub(super) fn admit(
        &mut self,
        user: &str,
        thread_id: &str,
        limit: usize,
        rate: Option<ByteRate>,
        now: Instant,
    ) -> Result<Arc<Backlog>, Refusal> {
        self.check_user(user, limit)?;
        if let Some(owner) = self.busy_threads.get(thread_id) {
            return Err(if owner == user {
                Refusal::ThreadBusy
            } else {
                Refusal::NoSuchThread
            });
        }
        self.busy_threads
            .insert(thread_id.to_string(), user.to_string());
        Ok(self.count_run(user, rate, now))
    }

    /// Admits a nested run of `user`: it counts against their limit like a
    /// run a client starts, and holds no thread.
    pub(super) fn admit_nested(
        &mut self,
        user: &str,
        limit: usize,
        rate: Option<ByteRate>,
        now: Instant,
    ) -> Result<Arc<Backlog>, Refusal> {
        self.check_user(user, limit)?;
        Ok(self.count_run(user, rate, now))
    }

    /// Frees `thread_id` and forgets `run_id` (a run that held the thread
    /// ended); its user's slot is given back with [`RunsState::release`].
    pub(super) fn end_run(&mut self, run_id: &str, thread_id: &str) {
        self.active.remove(run_id);
        self.busy_threads.remove(thread_id);
    }

    /// Gives back one of `user`'s run slots. A user left with none is
    /// forgotten once their event rate is back to full.
    pub(super) fn release(&mut self, user: &str, now: Instant) {
        if let Some(runs) = self.per_user.get_mut(user) {
            runs.running = runs.running.saturating_sub(1);
            if runs.running == 0 {
                match runs.backlog.forgettable_at() {
                    Some(at) if at > now => self.idle.push_back((at, user.to_string())),
                    _ => {
                        self.per_user.remove(user);
                    }
                }
            }
        }
        self.forget_idle(now);
    }

    /// How many runs `user` has going.
    pub(super) fn running(&self, user: &str) -> usize {
        self.per_user.get(user).map_or(0, |u| u.running)
    }

    fn check_user(&self, user: &str, limit: usize) -> Result<(), Refusal> {
        let running = self.running(user);
        if running < limit {
            Ok(())
        } else {
            Err(Refusal::TooManyRuns { running, limit })
        }
    }

    /// Counts one more run of `user`; their backlog.
    fn count_run(&mut self, user: &str, rate: Option<ByteRate>, now: Instant) -> Arc<Backlog> {
        self.forget_idle(now);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_their_limit_of_runs_and_no_more() {
        let mut state = RunsState::default();
        let now = Instant::now();
        for thread in ["t1", "t2"] {
            assert!(state.admit("alice", thread, 2, None, now).is_ok());
        }
        assert_eq!(
            state.admit("alice", "t3", 2, None, now).err(),
            Some(Refusal::TooManyRuns {
                running: 2,
                limit: 2
            })
        );
        // Nested runs count the same, and another user is not affected.
        assert!(state.admit_nested("alice", 2, None, now).is_err());
        assert!(state.admit("bob", "t4", 2, None, now).is_ok());
        state.end_run("r1", "t1");
        state.release("alice", now);
        assert_eq!(state.running("alice"), 1);
        assert!(state.admit_nested("alice", 2, None, now).is_ok());
        assert_eq!(state.running("alice"), 2);
    }

    #[test]
    fn a_busy_thread_is_busy_to_its_user_and_missing_to_others() {
        let mut state = RunsState::default();
        let now = Instant::now();
        assert!(state.admit("alice", "thr", 8, None, now).is_ok());
        assert_eq!(
            state.admit("alice", "thr", 8, None, now).err(),
            Some(Refusal::ThreadBusy)
        );
        assert_eq!(
            state.admit("mallory", "thr", 8, None, now).err(),
            Some(Refusal::NoSuchThread)
        );
        // A refused run takes no slot.
        assert_eq!(state.running("alice"), 1);
        assert_eq!(state.running("mallory"), 0);
        state.end_run("run", "thr");
        state.release("alice", now);
        assert!(state.admit("alice", "thr", 8, None, now).is_ok());
    }

    #[test]
    fn a_users_runs_share_one_backlog_until_their_rate_is_full_again() {
        let mut state = RunsState::default();
        let now = Instant::now();
        let rate = ByteRate {
            per_sec: 1024,
            burst: 1024,
        };
        let first = state
            .admit_nested("alice", 8, Some(rate), now)
            .expect("admitted");
        let second = state
            .admit_nested("alice", 8, Some(rate), now)
            .expect("admitted");
        assert!(Arc::ptr_eq(&first, &second));
        // Spend the burst: after the last run ends, the user is kept (and
        // their spent rate with them) until it has refilled.
        first.add(4096);
        first.done();
        state.release("alice", now);
        state.release("alice", now);
        let again = state
            .admit_nested("alice", 8, Some(rate), now)
            .expect("admitted");
        assert!(Arc::ptr_eq(&first, &again), "a new run bought a new burst");
        state.release("alice", now);
        let later = now + std::time::Duration::from_secs(10);
        state.release("nobody", later);
        let fresh = state
            .admit_nested("alice", 8, Some(rate), later)
            .expect("admitted");
        assert!(!Arc::ptr_eq(&first, &fresh));
    }
}
