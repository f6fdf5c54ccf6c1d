//! An agent's questions to its run's user (`interaction.ask`): the run
//! emits `input_requested` and waits, holding no CPU and no thread, until
//! the owner answers with `run.respond` from any of their sessions (checked
//! against the question's schema; a wrong answer is refused and the question
//! stays open), the wait runs out (`expired`: the guest gets `timeout`), or
//! the run is cancelled; an MCP client may also decline it. Each question
//! ends with `input_closed`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use netra_runtime::{AskError, AskFuture, Question};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::host::RunHost;
use super::{RunRefused, Runs};
use crate::protocol::{ErrorCode, EventKind, timestamp_of};
use crate::{ids, lock};

/// The open questions of the host's runs, by run (a run asks one at a time:
/// its guest waits for the answer).
#[derive(Default)]
pub(super) struct Questions {
    open: HashMap<String, Open>,
}

/// A question waiting for its answer.
struct Open {
    user: String,
    request_id: String,
    validator: jsonschema::Validator,
    answer: oneshot::Sender<Result<Value, AskError>>,
}

impl Runs {
    /// Answers the question `request_id` of `user`'s run `run_id`.
    pub fn respond(
        &self,
        user: &str,
        run_id: &str,
        request_id: &str,
        value: Value,
    ) -> Result<(), RunRefused> {
        self.answer(user, run_id, request_id, Ok(value))
    }

    /// Answers the question, or refuses it (`Err`: the user declined or
    /// dismissed it, as an MCP client may say).
    pub fn answer(
        &self,
        user: &str,
        run_id: &str,
        request_id: &str,
        answer: Result<Value, AskError>,
    ) -> Result<(), RunRefused> {
        let mut questions = lock(&self.questions);
        let Some(open) = questions
            .open
            .get(run_id)
            .filter(|open| open.user == user && open.request_id == request_id)
        else {
            return Err(RunRefused::new(
                ErrorCode::NotFound,
                format!("no open question {request_id:?} in run {run_id:?}"),
            ));
        };
        if let Ok(value) = &answer
            && let Err(err) = open.validator.validate(value)
        {
            return Err(RunRefused::new(
                ErrorCode::InvalidValue,
                format!("the answer does not match the question's schema: {err}"),
            ));
        }
        if let Some(open) = questions.open.remove(run_id) {
            // The run may have ended this instant; then nobody hears it.
            let _ = open.answer.send(answer);
        }
        Ok(())
    }
}

impl RunHost {
    /// Asks the run's user `question` (see the module docs).
    pub(super) fn ask_user(self: Arc<Self>, question: Question) -> AskFuture<Value> {
        Box::pin(async move {
            let schema = question.schema.unwrap_or_else(|| json!({"type": "string"}));
            let validator = jsonschema::validator_for(&schema).map_err(|err| {
                AskError::Invalid(format!("the schema is not a valid JSON Schema: {err}"))
            })?;
            let request_id = ids::request_id();
            let (answer, answered) = oneshot::channel();
            let run_id = self.ctx.run_id.clone();
            lock(&self.runs.questions).open.insert(
                run_id.clone(),
                Open {
                    user: self.ctx.user_id.clone(),
                    request_id: request_id.clone(),
                    validator,
                    answer,
                },
            );
            let mut waiting = Waiting {
                host: &self,
                request_id: request_id.clone(),
                until: Instant::now() + question.wait,
                closed: false,
            };
            let asked = self.events.emit(EventKind::InputRequested {
                request_id,
                prompt: question.prompt,
                schema,
                expires_at: timestamp_of(SystemTime::now() + question.wait),
            });
            if let Err(overspent) = asked {
                waiting.closed = true;
                lock(&self.runs.questions).open.remove(&run_id);
                let message = overspent.message.clone();
                self.overspend(overspent);
                return Err(AskError::Failed(message));
            }
            match answered.await {
                Ok(Ok(value)) => {
                    waiting.close("answered", Some(value.clone()));
                    Ok(value)
                }
                Ok(Err(refused)) => {
                    let outcome = match refused {
                        AskError::Declined => "declined",
                        _ => "cancelled",
                    };
                    waiting.close(outcome, None);
                    Err(refused)
                }
                Err(_) => Err(AskError::Cancelled),
            }
        })
    }
}

/// A question being waited for: dropped before an answer (the wait ran
/// out, the run was cancelled), it closes the question as `expired` or
/// `cancelled`.
struct Waiting<'a> {
    host: &'a RunHost,
    request_id: String,
    until: Instant,
    closed: bool,
}

impl Waiting<'_> {
    fn close(&mut self, outcome: &str, value: Option<Value>) {
        self.closed = true;
        lock(&self.host.runs.questions)
            .open
            .remove(&self.host.ctx.run_id);
        // Never refused: it closes an `input_requested` already written.
        let _ = self.host.events.emit(EventKind::InputClosed {
            request_id: std::mem::take(&mut self.request_id),
            outcome: outcome.to_string(),
            value,
        });
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.closed {
            // The runtime's timeout fires at `until`, give or take a tick.
            let expired = Instant::now() + Duration::from_millis(100) >= self.until;
            self.close(if expired { "expired" } else { "cancelled" }, None);
        }
    }
}
