//! `netra chat`: a terminal client that starts runs and shows their events as they
//! stream.
//!
//! Every line read from stdin is handled in order, one at a time: a line is either a
//! command (`/agents`, `/tools`, `/cancel`, `/quit`) or the input of a new run in the
//! chat's thread. Lines that arrive while a run streams wait for it to end, so a
//! script can pipe several questions in; only `/cancel` (and Ctrl-C) act at once.
//! When the run asks its user a question (`input_requested`), the next line is the
//! answer (`run.respond`): as it is when the answer is text, else read as JSON.

use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use netra_server::protocol::admin::PluginChange;
use netra_server::protocol::{
    AckPayload, Command, CommandKind, EventKind, Outcome, Reply, RunEvent, ServerFrame,
};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::{Instant, interval_at};
use tokio_tungstenite::tungstenite::Message;

use super::{DEFAULT_URL, Ws, connect};

/// Arguments of `netra chat`.
#[derive(clap::Args, Debug)]
pub struct ChatArgs {
    /// The host's WebSocket URL.
    #[arg(long, default_value = DEFAULT_URL)]
    pub url: String,
    /// The bearer token (a JWT). `netra serve` prints one in dev mode, and
    /// `netra token` makes more.
    #[arg(long, env = "NETRA_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The agent that answers.
    #[arg(long, default_value = "helper")]
    pub agent: String,
    /// Continue this thread (`thr_...`) instead of starting a new one.
    #[arg(long, value_name = "THR")]
    pub thread: Option<String>,
}

/// How often the chat sends a `ping` command: the host closes a connection that sends
/// no command for 10 minutes, and a chat may sit at its prompt longer than that.
const KEEPALIVE: Duration = Duration::from_secs(240);

/// Tool arguments and results longer than this are cut when shown.
const SHOW_AT_MOST: usize = 200;

/// The exit code after a second Ctrl-C, as a shell reports a SIGINT.
const INTERRUPTED: u8 = 130;

const HELP: &str = "Type a message to start a run. Commands: /agents, /tools, /cancel, /quit. \
Ctrl-C cancels a running run (twice quits), Ctrl-D quits. When the agent asks (?), the next \
line is your answer.";

/// Runs the chat until `/quit`, end of input, or a lost connection.
pub async fn chat(args: ChatArgs) -> anyhow::Result<ExitCode> {
    let mut ws = match connect(&args.url, args.token.trim(), None).await {
        Ok(ws) => ws,
        Err(err) => {
            eprintln!("error: cannot connect to {}: {err}", args.url);
            return Ok(ExitCode::FAILURE);
        }
    };
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        println!(
            "connected to {} as agent {:?}. {HELP}",
            args.url, args.agent
        );
    }
    let mut chat = Chat {
        agent: args.agent,
        thread: args.thread,
        term: Term {
            interactive,
            line_open: false,
            prompted: false,
        },
        next_id: 0,
        busy: None,
        queue: VecDeque::new(),
        quiet_refs: HashSet::new(),
        failed: false,
        question: None,
    };
    let code = chat.run(&mut ws).await;
    // A polite close; the host goes on either way, and a disconnect cancels nothing.
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    code
}

/// What the chat is waiting for.
enum Busy {
    /// A run it started: from `run.start` to the run's terminal event.
    Run(RunView),
    /// The answer to `agents.list` or `tools.list`.
    List { id: String },
}

#[derive(Clone, Copy)]
enum List {
    Agents,
    Tools,
}

/// A run being shown.
struct RunView {
    /// The `id` of its `run.start`.
    command: String,
    /// Known once the ack arrives.
    run_id: Option<String>,
    /// A cancel was asked for (it is sent as soon as the run id is known).
    cancel_wanted: bool,
    cancel_sent: bool,
    /// Some answer text was shown.
    streamed: bool,
}

/// What to do after a line.
enum Flow {
    Continue,
    Quit,
}

struct Chat {
    agent: String,
    thread: Option<String>,
    term: Term,
    next_id: u64,
    busy: Option<Busy>,
    /// Lines read while busy, handled in order once idle.
    queue: VecDeque<String>,
    /// `run.cancel` and `ping` commands, whose answers are not shown.
    quiet_refs: HashSet<String>,
    /// A run or command failed; the exit code says so.
    failed: bool,
    /// The shown run's question, waiting for the next line.
    question: Option<Question>,
}

/// A question of the run being shown (`input_requested`).
struct Question {
    run_id: String,
    request_id: String,
    /// The answer is text (its schema's type is `string`): a line as it is.
    text: bool,
    /// The `id` of the `run.respond` in flight.
    respond: Option<String>,
}

impl Chat {
    async fn run(&mut self, ws: &mut Ws) -> anyhow::Result<ExitCode> {
        let mut lines = stdin_lines();
        let mut eof = false;
        let mut interrupt = Box::pin(tokio::signal::ctrl_c());
        let mut keepalive = interval_at(Instant::now() + KEEPALIVE, KEEPALIVE);
        loop {
            while self.busy.is_none() {
                let Some(line) = self.queue.pop_front() else {
                    break;
                };
                if let Flow::Quit = self.handle_line(ws, &line).await? {
                    return Ok(self.exit_code());
                }
            }
            if self.busy.is_none() {
                if eof {
                    self.term.leave_prompt();
                    return Ok(self.exit_code());
                }
                self.term.prompt();
            }
            tokio::select! {
                line = lines.recv(), if !eof => match line {
                    Some(line) if self.busy.is_some() && line.trim() == "/cancel" => {
                        self.cancel(ws).await?;
                    }
                    Some(line) if self.awaits_answer() => self.answer(ws, &line).await?,
                    Some(line) => self.queue.push_back(line),
                    None => eof = true,
                },
                frame = ws.next() => match frame {
                    Some(Ok(Message::Text(text))) => self.on_text(ws, &text).await?,
                    Some(Ok(Message::Close(frame))) => {
                        self.term.end_line();
                        match frame {
                            Some(frame) => eprintln!(
                                "error: the host closed the connection: {} {}",
                                u16::from(frame.code),
                                frame.reason
                            ),
                            None => eprintln!("error: the host closed the connection"),
                        }
                        return Ok(ExitCode::FAILURE);
                    }
                    // Pings are answered by the WebSocket layer; binary frames aren't netra.v1.
                    Some(Ok(_)) => {}
                    Some(Err(err)) => {
                        self.term.end_line();
                        eprintln!("error: connection lost: {err}");
                        return Ok(ExitCode::FAILURE);
                    }
                    None => {
                        self.term.end_line();
                        eprintln!("error: the connection closed");
                        return Ok(ExitCode::FAILURE);
                    }
                },
                signal = &mut interrupt => {
                    signal?;
                    interrupt = Box::pin(tokio::signal::ctrl_c());
                    match &self.busy {
                        Some(Busy::Run(run)) if run.cancel_wanted => {
                            self.term.end_line();
                            eprintln!("interrupted; the cancel was already sent");
                            return Ok(ExitCode::from(INTERRUPTED));
                        }
                        Some(Busy::Run(_)) => self.cancel(ws).await?,
                        Some(Busy::List { .. }) => {}
                        None => {
                            self.term.leave_prompt();
                            return Ok(self.exit_code());
                        }
                    }
                },
                _ = keepalive.tick() => {
                    let id = self.quiet_id();
                    send(ws, id, CommandKind::Ping).await?;
                }
            }
        }
    }

    /// Whether the next line answers the shown run's question.
    fn awaits_answer(&self) -> bool {
        self.question.as_ref().is_some_and(|q| q.respond.is_none())
    }

    /// Sends `line` as the answer to the open question.
    async fn answer(&mut self, ws: &mut Ws, line: &str) -> anyhow::Result<()> {
        let id = self.next_id();
        let Some(question) = &mut self.question else {
            return Ok(());
        };
        let line = line.trim_end_matches(['\r', '\n']);
        let value = if question.text {
            Value::String(line.to_string())
        } else {
            serde_json::from_str(line).unwrap_or_else(|_| Value::String(line.to_string()))
        };
        question.respond = Some(id.clone());
        let kind = CommandKind::RunRespond {
            run_id: question.run_id.clone(),
            request_id: question.request_id.clone(),
            value,
        };
        send(ws, id, kind).await
    }

    /// Answers the open question with the next line already read, if any.
    async fn answer_queued(&mut self, ws: &mut Ws) -> anyhow::Result<()> {
        if self.awaits_answer()
            && let Some(line) = self.queue.pop_front()
        {
            self.answer(ws, &line).await?;
        }
        Ok(())
    }

    fn exit_code(&self) -> ExitCode {
        if self.failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }

    fn next_id(&mut self) -> String {
        self.next_id += 1;
        format!("c{}", self.next_id)
    }

    /// An id for a command whose answer isn't shown.
    fn quiet_id(&mut self) -> String {
        let id = self.next_id();
        self.quiet_refs.insert(id.clone());
        id
    }

    async fn handle_line(&mut self, ws: &mut Ws, line: &str) -> anyhow::Result<Flow> {
        self.term.prompted = false;
        let text = line.trim();
        match text {
            "" => {}
            "/quit" | "/exit" => return Ok(Flow::Quit),
            "/agents" => self.list(ws, List::Agents).await?,
            "/tools" => self.list(ws, List::Tools).await?,
            "/cancel" => self.term.line("no run to cancel"),
            "/help" => self.term.line(HELP),
            _ if text.starts_with('/') => {
                self.term.line(&format!("unknown command {text}. {HELP}"))
            }
            _ => self.start(ws, text).await?,
        }
        Ok(Flow::Continue)
    }

    async fn list(&mut self, ws: &mut Ws, list: List) -> anyhow::Result<()> {
        let id = self.next_id();
        let kind = match list {
            List::Agents => CommandKind::AgentsList,
            List::Tools => CommandKind::ToolsList,
        };
        send(ws, id.clone(), kind).await?;
        self.busy = Some(Busy::List { id });
        Ok(())
    }

    async fn start(&mut self, ws: &mut Ws, input: &str) -> anyhow::Result<()> {
        let id = self.next_id();
        let command = CommandKind::RunStart {
            agent: self.agent.clone(),
            input: input.to_string(),
            thread_id: self.thread.clone(),
        };
        send(ws, id.clone(), command).await?;
        self.busy = Some(Busy::Run(RunView {
            command: id,
            run_id: None,
            cancel_wanted: false,
            cancel_sent: false,
            streamed: false,
        }));
        Ok(())
    }

    /// Cancels the current run now, or as soon as its id is known.
    async fn cancel(&mut self, ws: &mut Ws) -> anyhow::Result<()> {
        let Some(Busy::Run(run)) = &mut self.busy else {
            self.term.line("no run to cancel");
            return Ok(());
        };
        run.cancel_wanted = true;
        let Some(run_id) = run.run_id.clone() else {
            return Ok(());
        };
        if run.cancel_sent {
            return Ok(());
        }
        run.cancel_sent = true;
        let id = self.quiet_id();
        send(ws, id, CommandKind::RunCancel { run_id }).await
    }

    async fn on_text(&mut self, ws: &mut Ws, text: &str) -> anyhow::Result<()> {
        let frame = match ServerFrame::parse(text) {
            Ok(frame) => frame,
            Err(err) => {
                self.term.line(&format!("(ignored a frame: {err})"));
                return Ok(());
            }
        };
        match frame {
            ServerFrame::Reply(Reply::Ack { reference, payload }) => {
                self.on_ack(ws, &reference, payload).await?;
            }
            ServerFrame::Reply(Reply::Error {
                reference,
                code,
                message,
            }) => {
                if let Some(reference) = &reference
                    && self.quiet_refs.remove(reference.as_ref())
                {
                    // A cancel that lost the race with the run's end gets `not_found`.
                    return Ok(());
                }
                if let Some(question) = &mut self.question
                    && reference.as_deref() == question.respond.as_deref()
                {
                    // A wrong answer: the question stays open for another.
                    question.respond = None;
                    self.term
                        .line(&format!("error {}: {message}", code.as_str()));
                    return self.answer_queued(ws).await;
                }
                let answers_busy = match (&self.busy, &reference) {
                    (Some(Busy::Run(run)), Some(r)) => run.command == *r,
                    (Some(Busy::List { id }), Some(r)) => id == r,
                    _ => false,
                };
                if answers_busy {
                    self.busy = None;
                    self.failed = true;
                }
                self.term
                    .line(&format!("error {}: {message}", code.as_str()));
            }
            ServerFrame::PluginsChanged(changed) => {
                let line = match changed.change {
                    PluginChange::Activated {
                        plugin, version, ..
                    } => format!(
                        "(plugins.changed: {plugin} activated{})",
                        version.map(|v| format!(" {v}")).unwrap_or_default()
                    ),
                    PluginChange::Enabled {
                        plugin, version, ..
                    } => format!(
                        "(plugins.changed: {plugin} enabled{})",
                        version.map(|v| format!(" {v}")).unwrap_or_default()
                    ),
                    PluginChange::Disabled { plugin, .. } => {
                        format!("(plugins.changed: {plugin} disabled)")
                    }
                    PluginChange::Many { missed } => {
                        format!("(plugins.changed: {missed} changes; list again to see them)")
                    }
                };
                self.term.line(&line);
            }
            ServerFrame::Event(event) => {
                let ours = matches!(
                    &self.busy,
                    Some(Busy::Run(run)) if run.run_id.as_deref() == Some(event.run_id.as_ref())
                );
                if ours {
                    self.show(&event);
                    self.answer_queued(ws).await?;
                }
            }
        }
        Ok(())
    }

    async fn on_ack(
        &mut self,
        ws: &mut Ws,
        reference: &str,
        payload: AckPayload,
    ) -> anyhow::Result<()> {
        if self.quiet_refs.remove(reference) {
            return Ok(());
        }
        if let Some(question) = &mut self.question
            && question.respond.as_deref() == Some(reference)
        {
            // Taken; `input_closed` follows.
            return Ok(());
        }
        match &mut self.busy {
            Some(Busy::Run(run)) if run.command == reference => {
                if let AckPayload::RunStarted { run_id, thread_id } = payload {
                    run.run_id = Some(run_id);
                    // Later runs continue this thread, so the agent sees the history.
                    self.thread = Some(thread_id);
                }
                let cancel_wanted = matches!(&self.busy, Some(Busy::Run(run)) if run.cancel_wanted);
                if cancel_wanted {
                    self.cancel(ws).await?;
                }
            }
            Some(Busy::List { id }) if id == reference => {
                self.busy = None;
                self.show_list(payload);
            }
            _ => {}
        }
        Ok(())
    }

    fn show(&mut self, event: &RunEvent<'_>) {
        match event.kind.as_ref() {
            EventKind::AgentStarted { .. } => {}
            EventKind::AgentThinking { text } => self.term.line(&format!("· thinking: {text}")),
            EventKind::ToolExecuting {
                tool, arguments, ..
            } => {
                self.term.line(&format!("→ {tool} {}", shorten(arguments)));
            }
            EventKind::InputRequested {
                prompt,
                request_id,
                schema,
                ..
            } => {
                let text = schema.get("type").and_then(Value::as_str) == Some("string");
                let how = if text { "" } else { ", as JSON" };
                self.term
                    .line(&format!("? {prompt} (answer on the next line{how})"));
                self.question = Some(Question {
                    run_id: event.run_id.to_string(),
                    request_id: request_id.clone(),
                    text,
                    respond: None,
                });
            }
            EventKind::InputClosed { outcome, value, .. } => {
                self.question = None;
                let answer = value.as_ref().map(|v| format!(": {}", shorten(v)));
                self.term.line(&format!(
                    "  question {outcome}{}",
                    answer.unwrap_or_default()
                ));
            }
            EventKind::ToolProgress {
                tool,
                text,
                fraction,
                ..
            } => {
                let done = fraction.map(|f| format!(" ({:.0}%)", f * 100.0));
                self.term
                    .line(&format!("  {tool}: {text}{}", done.unwrap_or_default()));
            }
            EventKind::ToolCompleted {
                tool,
                ok,
                error,
                duration_ms,
                ..
            } => {
                let line = match (ok, error) {
                    (Some(ok), _) => {
                        format!("← {tool}: {} ({duration_ms:.1} ms)", shorten(ok))
                    }
                    (None, Some(error)) => {
                        format!("← {tool} failed: {}: {}", error.code, error.message)
                    }
                    (None, None) => format!("← {tool} failed"),
                };
                self.term.line(&line);
            }
            EventKind::MessageDelta { text } => {
                self.term.inline(text);
                if let Some(Busy::Run(run)) = &mut self.busy {
                    run.streamed = true;
                }
            }
            EventKind::AgentCompleted {
                output, outcome, ..
            } => {
                let streamed = matches!(&self.busy, Some(Busy::Run(run)) if run.streamed);
                // `output` is authoritative; show it if no delta carried the answer.
                if !streamed {
                    self.term.inline(output);
                }
                self.term.end_line();
                if *outcome == Outcome::Cancelled {
                    self.term.line("[cancelled]");
                }
                self.busy = None;
            }
            EventKind::AgentError { code, message, .. } => {
                self.term.line(&format!("error {code}: {message}"));
                self.failed = true;
                self.busy = None;
            }
        }
    }

    fn show_list(&mut self, payload: AckPayload) {
        let lines: Vec<String> = match payload {
            AckPayload::Agents { agents } if agents.is_empty() => vec!["no agents".into()],
            AckPayload::Agents { agents } => agents
                .iter()
                .map(|a| format!("{} ({}): {}", a.name, a.version, a.description))
                .collect(),
            AckPayload::Tools { tools } if tools.is_empty() => vec!["no tools".into()],
            AckPayload::Tools { tools } => tools
                .iter()
                .map(|t| format!("{} (from {}): {}", t.name, t.plugin, t.description))
                .collect(),
            _ => Vec::new(),
        };
        for line in lines {
            self.term.line(&line);
        }
    }
}

/// Stdout, tracking whether answer text left the cursor mid-line.
struct Term {
    /// Stdin is a terminal: show a prompt.
    interactive: bool,
    line_open: bool,
    prompted: bool,
}

impl Term {
    /// A whole line, on a line of its own.
    fn line(&mut self, text: &str) {
        self.end_line();
        println!("{text}");
    }

    /// Answer text, as it streams.
    fn inline(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        self.line_open = true;
    }

    fn end_line(&mut self) {
        if self.line_open {
            println!();
            self.line_open = false;
        }
    }

    fn prompt(&mut self) {
        if self.interactive && !self.prompted {
            self.end_line();
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(b"> ");
            let _ = out.flush();
            // The user's Enter ends the prompt's line.
            self.prompted = true;
        }
    }

    /// Ends the prompt's line when quitting from it (Ctrl-D, Ctrl-C).
    fn leave_prompt(&mut self) {
        if self.prompted {
            println!();
            self.prompted = false;
        }
        self.end_line();
    }
}

async fn send(ws: &mut Ws, id: String, kind: CommandKind) -> anyhow::Result<()> {
    ws.send(Message::text(Command { id, kind }.to_text()))
        .await
        .map_err(|e| anyhow::anyhow!("cannot send to the host: {e}"))
}

/// Compact JSON, cut to [`SHOW_AT_MOST`] characters.
fn shorten(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(SHOW_AT_MOST) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

/// Stdin's lines, read on a thread of their own.
///
/// A plain thread rather than tokio's stdin: a read blocked on a terminal would
/// otherwise keep the runtime from shutting down after `/quit`. The channel closes at
/// end of input.
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match stdin.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']).to_string();
                    if tx.blocking_send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortens_long_values() {
        assert_eq!(
            shorten(&serde_json::json!({"expression": "2+3*4"})),
            r#"{"expression":"2+3*4"}"#
        );
        let long = shorten(&Value::from("x".repeat(500)));
        assert_eq!(long.chars().count(), SHOW_AT_MOST + 1);
        assert!(long.ends_with('…'));
    }
}
