//! Closing the runs a crash left running.
//!
//! A run is `running` in the store from its `begin_run` until the atomic
//! write of its terminal event. Any run still `running` when the host starts
//! was interrupted: recovery appends `agent_error {code: "host_restarted",
//! retryable: true}` after its last stored event, adds the user's message to
//! its thread, marks it failed and writes an audit entry, so clients that
//! resubscribe see a proper end and the thread keeps what the user said.

use std::borrow::Cow;
use std::sync::mpsc;
use std::time::SystemTime;

use netra_store::{
    AuditEntry, EventRecord, NewMessage, Role, RunEnd, RunStatus, Store, StoreError,
};

use crate::protocol::admin::AuditDetail;
use crate::protocol::{Code, EventKind, RunEvent, timestamp_of};
use crate::run_log::unix_ms;

/// The `agent_error` code of a run the host's restart interrupted.
pub const HOST_RESTARTED: Code = Code::HostRestarted;

/// Closes every run left running; returns their ids. Call it before serving.
pub fn recover_interrupted(store: &dyn Store) -> Result<Vec<String>, StoreError> {
    let interrupted = store.running_runs()?;
    let (tx, rx) = mpsc::channel();
    for run in &interrupted {
        let now = SystemTime::now();
        let kind = EventKind::AgentError {
            code: HOST_RESTARTED,
            message: "the host restarted while the run was going; start it again".into(),
            retryable: true,
        };
        let seq = run.last_seq + 1;
        let event = RunEvent {
            run_id: Cow::Borrowed(&run.id),
            thread_id: Cow::Borrowed(&run.thread_id),
            seq,
            ts: timestamp_of(now),
            parent_run_id: None,
            kind: Cow::Borrowed(&kind),
        };
        let frame = serde_json::to_string(&event)
            .map_err(|err| StoreError::Internal(format!("cannot serialize an event: {err}")))?;
        let terminal = EventRecord {
            run_id: run.id.clone(),
            seq,
            ts_ms: unix_ms(now),
            frame: frame.into(),
        };
        // A nested run's input never was a message of the thread.
        let messages = match run.parent_run_id {
            Some(_) => Vec::new(),
            None => vec![NewMessage {
                role: Role::User,
                content: run.input.clone(),
            }],
        };
        let end = RunEnd {
            status: RunStatus::Failed,
            ended_at: now,
            error_code: Some(HOST_RESTARTED.to_string()),
            usage: None,
        };
        let tx = tx.clone();
        let id = run.id.clone();
        store.end_run(
            terminal,
            messages,
            end,
            Box::new(move |result| {
                let _ = tx.send((id, result));
            }),
        );
    }
    drop(tx);
    let mut closed = Vec::with_capacity(interrupted.len());
    for (id, result) in rx {
        result?;
        closed.push(id);
    }
    if !closed.is_empty() {
        store.audit(&AuditEntry {
            actor: "host".into(),
            action: "run.recover".into(),
            subject: format!("{} runs", closed.len()),
            detail: AuditDetail::Recovered {
                runs: closed.clone(),
                code: HOST_RESTARTED.to_string(),
            }
            .to_text(),
        })?;
        tracing::warn!(
            runs = closed.len(),
            "closed the runs a previous process left running with {HOST_RESTARTED}"
        );
    }
    Ok(closed)
}
