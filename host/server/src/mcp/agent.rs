//! `tools/call` of an exposed agent: a full run, admitted, recorded and
//! budgeted like a run a WebSocket client starts. While it runs, its answer
//! deltas and thoughts go to the client as progress notifications (when it
//! asked for progress) and its thoughts and tool calls as log notifications
//! (when it set a level); its answer is the result. Cancelling the request
//! cancels the run. A question the agent asks its user (`input_requested`)
//! is put to the client as `elicitation/create` when it declared the
//! capability; otherwise it stays open for the user's other clients
//! (`run.respond` over the WebSocket) until it expires.

use std::sync::Arc;

use netra_runtime::{AskError, Interaction, Question};
use rmcp::ErrorData;
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock, LoggingLevel};
use rmcp::service::{RequestContext, RoleServer};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::ask::ClientAsk;
use super::call::{Notes, cancelled, failure};
use super::handler::Handler;
use crate::protocol::{Code, EventKind, Outcome, ServerFrame};
use crate::run_log::Outbox;
use crate::runs::Runs;

/// Frames of one run queued for the call before it counts as too slow.
const RUN_QUEUE: usize = 4096;

/// How long a cancelled call waits for its run to end.
const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub(super) async fn run(
    handler: &Handler,
    runs: &Arc<Runs>,
    user: &str,
    request: CallToolRequestParams,
    cx: &RequestContext<RoleServer>,
) -> Result<CallToolResult, ErrorData> {
    let agent = request.name.to_string();
    let arguments = request.arguments.unwrap_or_default();
    let input = match arguments.get("input") {
        Some(Value::String(input)) if !input.trim().is_empty() => input.clone(),
        _ => {
            return Err(ErrorData::invalid_params(
                format!("call the agent {agent} with {{\"input\": \"the task\"}}"),
                None,
            ));
        }
    };
    let thread_id = match arguments.get("thread_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(thread)) => Some(thread.clone()),
        Some(_) => {
            return Err(ErrorData::invalid_params(
                "thread_id must be a string",
                None,
            ));
        }
    };
    let (outbox, mut inbox, _overflow) = Outbox::new(RUN_QUEUE);
    let (started_tx, started_rx) = oneshot::channel();
    let started = runs
        .start(user, &agent, input, thread_id, outbox, move |started| {
            let _ = started_tx.send(
                started
                    .map(|s| (s.run_id.clone(), s.thread_id.clone()))
                    .map_err(|refused| (refused.code, refused.message)),
            );
        })
        .await;
    if let Err(refused) = started {
        return Ok(failure(
            Code::parse(refused.code.as_str()),
            &refused.message,
        ));
    }
    let (run_id, thread_id) = match started_rx.await {
        Ok(Ok(ids)) => ids,
        Ok(Err((code, message))) => return Ok(failure(Code::parse(code.as_str()), &message)),
        Err(_) => return Ok(failure(Code::Internal, "the run was not started")),
    };
    let notes = Notes::start(handler, cx, &agent);
    let asker = Asker {
        runs,
        user,
        client: ClientAsk::new(cx),
    };
    let outcome = tokio::select! {
        outcome = follow(&mut inbox, &run_id, notes.as_deref(), Some(&asker)) => outcome,
        () = cx.ct.cancelled() => {
            if let Err(refused) = runs.cancel(user, &run_id) {
                tracing::debug!(%run_id, "cancel of an MCP run: {}", refused.message);
            }
            // The request ends with its run (bounded): the run's slot is
            // free again when the client hears back.
            let ending = follow(&mut inbox, &run_id, None, None);
            let _ = tokio::time::timeout(CANCEL_WAIT, ending).await;
            if let Some(notes) = notes {
                notes.finish().await;
            }
            return Err(cancelled());
        }
    };
    if let Some(notes) = notes {
        notes.finish().await;
    }
    Ok(match outcome {
        End::Answer(output) => {
            let mut result = CallToolResult::success(vec![ContentBlock::text(output.clone())]);
            result.structured_content = Some(json!({
                "output": output,
                "run_id": run_id,
                "thread_id": thread_id,
            }));
            result
        }
        End::Cancelled => failure(Code::Cancelled, "the run was cancelled"),
        End::Failed(code, message) => failure(code, &format!("{message} (run {run_id})")),
    })
}

/// How a followed run ended.
enum End {
    Answer(String),
    Cancelled,
    Failed(Code, String),
}

/// Puts a run's questions to the MCP client that started it.
struct Asker<'a> {
    runs: &'a Arc<Runs>,
    user: &'a str,
    client: Arc<ClientAsk>,
}

impl Asker<'_> {
    /// Asks the client; its answer (or refusal) goes to the run.
    async fn ask(&self, run_id: &str, request_id: &str, prompt: String, schema: Value) {
        let question = Question {
            prompt,
            schema: Some(schema),
            wait: std::time::Duration::ZERO,
        };
        let answer = self.client.clone().ask(question).await;
        let given = match answer {
            // Nobody to ask here: the question stays open for the user's
            // other clients until it expires.
            Err(AskError::Unsupported(_) | AskError::Timeout) => return,
            answer => self.runs.answer(self.user, run_id, request_id, answer),
        };
        if let Err(refused) = given {
            tracing::debug!(%run_id, "an MCP client's answer was refused: {}", refused.message);
        }
    }
}

/// Reads the run's frames until its end, sending notes on the way.
async fn follow(
    inbox: &mut crate::run_log::Inbox,
    run_id: &str,
    notes: Option<&Notes>,
    asker: Option<&Asker<'_>>,
) -> End {
    while let Some(frame) = inbox.recv().await {
        let Ok(ServerFrame::Event(event)) = ServerFrame::parse(&frame) else {
            continue;
        };
        // Nested runs' events come too; only this run's end ends the call.
        let own = event.run_id == run_id;
        match event.kind.into_owned() {
            EventKind::AgentCompleted {
                output, outcome, ..
            } if own => {
                return match outcome {
                    Outcome::Completed => End::Answer(output),
                    Outcome::Cancelled => End::Cancelled,
                };
            }
            EventKind::AgentError { code, message, .. } if own => {
                return End::Failed(code, message);
            }
            EventKind::InputRequested {
                request_id,
                prompt,
                schema,
                ..
            } if own => {
                if let Some(asker) = asker {
                    asker.ask(run_id, &request_id, prompt, schema).await;
                }
            }
            EventKind::MessageDelta { text } if own => {
                if let Some(notes) = notes {
                    notes.progress(Some(text), None);
                }
            }
            EventKind::AgentThinking { text } => {
                if let Some(notes) = notes {
                    notes.log(LoggingLevel::Debug, json!({"thinking": text}));
                }
            }
            EventKind::ToolExecuting {
                tool, arguments, ..
            } => {
                if let Some(notes) = notes {
                    notes.log(
                        LoggingLevel::Info,
                        json!({"tool_executing": tool, "arguments": arguments}),
                    );
                }
            }
            EventKind::ToolProgress {
                tool,
                text,
                fraction,
                ..
            } => {
                if let Some(notes) = notes {
                    notes.log(
                        LoggingLevel::Debug,
                        json!({"tool_progress": tool, "text": text, "fraction": fraction}),
                    );
                }
            }
            EventKind::ToolCompleted {
                tool,
                error,
                duration_ms,
                ..
            } => {
                if let Some(notes) = notes {
                    let ok = error.is_none();
                    notes.log(
                        LoggingLevel::Info,
                        json!({"tool_completed": tool, "ok": ok, "duration_ms": duration_ms}),
                    );
                }
            }
            _ => {}
        }
    }
    End::Failed(
        Code::Internal,
        "the run's events stopped before its end".to_string(),
    )
}
