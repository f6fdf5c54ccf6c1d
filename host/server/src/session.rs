//! One WebSocket connection: a reader that handles commands and a writer fed
//! by a bounded queue. Generic over the socket so it can be driven without a
//! network.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use hyper_tungstenite::tungstenite::protocol::CloseFrame;
use hyper_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use hyper_tungstenite::tungstenite::{Error as WsError, Message};
use netra_auth::Principal;
use tokio::sync::mpsc;

use crate::App;
use crate::protocol::admin::{PluginChange, PluginsChanged};
use crate::protocol::{
    self, AckPayload, AgentInfo, AgentState, CommandKind, ErrorCode, MessageInfo, MessageRole,
    Reply, ThreadInfo, ToolInfo, timestamp_of,
};
use crate::run_log::{Inbox, Outbox};
use crate::runs::{Followed, RunRefused, StartedRun};

/// Close code for a token that expired during the session.
const TOKEN_EXPIRED: u16 = 4401;

/// What the writer sends besides queued frames.
enum Control {
    Ping,
    Pong(bytes::Bytes),
    Close(u16, &'static str),
}

/// Serves one authenticated connection until it closes.
pub async fn serve<S>(socket: S, principal: Principal, app: Arc<App>)
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Send + 'static,
{
    let (sink, mut stream) = socket.split();
    let (outbox, rx, overflow) =
        Outbox::bounded(app.config.send_queue, app.config.send_queue_bytes);
    let (control, control_rx) = mpsc::channel(4);
    let sent_at = Arc::new(std::sync::Mutex::new(tokio::time::Instant::now()));
    let mut writer = tokio::spawn(write_loop(
        sink,
        rx,
        control_rx,
        sent_at.clone(),
        app.config.write_timeout,
    ));
    let session = Session {
        app: app.clone(),
        user: principal.user_id.clone(),
        outbox,
    };
    tracing::debug!(user = %session.user, "session opened");

    let config = &app.config;
    let expires = tokio::time::Instant::now()
        + principal
            .expires_at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
    let mut keepalive = tokio::time::interval(config.keepalive);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    keepalive.tick().await;
    let mut last_seen = Instant::now();
    let mut abuse = Strikes::default();
    let idle = tokio::time::sleep(config.idle_timeout);
    tokio::pin!(idle);
    // `plugins.changed` notices; a session that lags behind misses some and
    // is told to list again.
    let mut changes = app.catalog.as_ref().map(|catalog| catalog.subscribe());

    let close = loop {
        tokio::select! {
            message = stream.next() => match message {
                None => break None,
                Some(Ok(Message::Text(text))) => {
                    last_seen = Instant::now();
                    idle.as_mut().reset(tokio::time::Instant::now() + config.idle_timeout);
                    if !session.handle(text.as_str()).await && abuse.strike() {
                        break Some(Control::Close(1008, "too many invalid frames"));
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    last_seen = Instant::now();
                    session.reject(None, ErrorCode::BinaryNotSupported, "netra.v1 uses text frames only");
                    if abuse.strike() {
                        break Some(Control::Close(1008, "too many invalid frames"));
                    }
                }
                Some(Ok(Message::Ping(data))) => {
                    last_seen = Instant::now();
                    let _ = control.try_send(Control::Pong(data));
                }
                Some(Ok(Message::Pong(_) | Message::Frame(_))) => last_seen = Instant::now(),
                Some(Ok(Message::Close(_))) => break None,
                Some(Err(WsError::Capacity(err))) => {
                    tracing::debug!(user = %session.user, "closing: {err}");
                    break Some(Control::Close(1009, "message too big"));
                }
                Some(Err(err)) => {
                    tracing::debug!(user = %session.user, "socket error: {err}");
                    break None;
                }
            },
            change = next_change(&mut changes) => match change {
                Ok(frame) => {
                    session.outbox.push(frame);
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    let frame = PluginsChanged::new(PluginChange::Many { missed });
                    session.outbox.push(frame.to_text().into());
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => changes = None,
            },
            () = overflow.cancelled() => {
                break Some(Control::Close(1013, "send queue full: the client is not reading fast enough"));
            }
            ended = &mut writer => {
                // The writer stopped on its own: the socket failed or the
                // client stopped reading. It sent a close frame if it could;
                // the session ends with it, never half-alive.
                let reason = ended.unwrap_or(WriterEnd::Failed);
                tracing::debug!(user = %session.user, ?reason, "closing: the writer stopped");
                drop(stream);
                tracing::debug!(user = %session.user, "session closed");
                return;
            }
            () = tokio::time::sleep_until(expires) => {
                break Some(Control::Close(TOKEN_EXPIRED, "token expired"));
            }
            () = &mut idle => {
                // Frames still flowing to the client (a run it follows) count
                // as activity: re-arm from the last one sent.
                let last_sent = *sent_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let until = last_sent + config.idle_timeout;
                if until > tokio::time::Instant::now() {
                    idle.as_mut().reset(until);
                } else {
                    break Some(Control::Close(1000, "idle timeout"));
                }
            }
            _ = keepalive.tick() => {
                if last_seen.elapsed() > config.keepalive * 2 {
                    break Some(Control::Close(1001, "keepalive timeout"));
                }
                let _ = control.try_send(Control::Ping);
            }
        }
    };
    match close {
        Some(close) => {
            let _ = control.send(close).await;
        }
        None => drop(control),
    }
    // The writer ends once it has sent the close frame or its channels close.
    let _ = tokio::time::timeout(Duration::from_secs(5), &mut writer).await;
    writer.abort();
    tracing::debug!(user = %session.user, "session closed");
}

/// The next `plugins.changed` frame; never, without a catalog.
async fn next_change(
    changes: &mut Option<tokio::sync::broadcast::Receiver<Arc<str>>>,
) -> Result<Arc<str>, tokio::sync::broadcast::error::RecvError> {
    match changes {
        Some(changes) => changes.recv().await,
        None => std::future::pending().await,
    }
}

/// Why the writer stopped.
#[derive(Debug)]
enum WriterEnd {
    /// It sent the close frame it was asked to, or the session ended.
    Closed,
    /// The socket refused a write.
    Failed,
    /// The socket took no write for `write_timeout`: the client stopped
    /// reading (its receive window is full).
    TimedOut,
}

async fn write_loop<S>(
    mut sink: S,
    mut frames: Inbox,
    mut control: mpsc::Receiver<Control>,
    sent_at: Arc<std::sync::Mutex<tokio::time::Instant>>,
    write_timeout: Duration,
) -> WriterEnd
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    let end = loop {
        let message = tokio::select! {
            biased;
            ctrl = control.recv() => match ctrl {
                Some(Control::Ping) => Message::Ping(bytes::Bytes::new()),
                Some(Control::Pong(data)) => Message::Pong(data),
                Some(Control::Close(code, reason)) => {
                    let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
                    let _ = tokio::time::timeout(write_timeout, sink.send(Message::Close(Some(frame)))).await;
                    return WriterEnd::Closed;
                }
                None => {
                    let _ = tokio::time::timeout(write_timeout, sink.close()).await;
                    return WriterEnd::Closed;
                }
            },
            frame = frames.recv() => match frame {
                Some(frame) => {
                    *sent_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                        tokio::time::Instant::now();
                    // Frames often come in bursts (a commit releases several
                    // events at once): write what is queued with one flush,
                    // so a burst costs one syscall instead of one per frame.
                    let burst = async {
                        sink.feed(Message::Text((*frame).into())).await?;
                        for _ in 1..MAX_FRAMES_PER_FLUSH {
                            let Some(frame) = frames.try_recv() else { break };
                            sink.feed(Message::Text((*frame).into())).await?;
                        }
                        sink.flush().await
                    };
                    match tokio::time::timeout(write_timeout, burst).await {
                        Ok(Ok(())) => continue,
                        Ok(Err(err)) => {
                            tracing::debug!("write failed: {err}");
                            break WriterEnd::Failed;
                        }
                        Err(_) => break WriterEnd::TimedOut,
                    }
                }
                None => return WriterEnd::Closed,
            },
        };
        match tokio::time::timeout(write_timeout, sink.send(message)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break WriterEnd::Failed,
            Err(_) => break WriterEnd::TimedOut,
        }
    };
    // Say why, if the socket still takes a frame; the close code tells a
    // client that reconnects what happened.
    let (code, reason) = match end {
        WriterEnd::TimedOut => (1013, "write timeout: the client is not reading"),
        _ => (1011, "the host could not write to the connection"),
    };
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        sink.send(Message::Close(Some(frame))),
    )
    .await;
    end
}

/// Most queued frames written with one flush.
const MAX_FRAMES_PER_FLUSH: usize = 64;

/// Invalid frames tolerated per minute before the session is closed with
/// 1008: a client that keeps sending garbage is broken or hostile.
const MAX_STRIKES_PER_MINUTE: u32 = 100;

/// Counts invalid frames in a one-minute window.
struct Strikes {
    window: Instant,
    count: u32,
}

impl Default for Strikes {
    fn default() -> Self {
        Self {
            window: Instant::now(),
            count: 0,
        }
    }
}

impl Strikes {
    /// Records an invalid frame; true when the limit is exceeded.
    fn strike(&mut self) -> bool {
        if self.window.elapsed() > Duration::from_secs(60) {
            *self = Self::default();
        }
        self.count += 1;
        self.count > MAX_STRIKES_PER_MINUTE
    }
}

struct Session {
    app: Arc<App>,
    user: String,
    outbox: Outbox,
}

impl Session {
    fn reply(&self, reply: Reply<'_>) {
        self.outbox.push(reply.to_text().into());
    }

    fn ack(&self, reference: &str, payload: AckPayload) {
        self.reply(Reply::Ack {
            reference: Cow::Borrowed(reference),
            payload,
        });
    }

    fn reject(&self, reference: Option<&str>, code: ErrorCode, message: &str) {
        self.reply(Reply::Error {
            reference: reference.map(Cow::Borrowed),
            code,
            message: Cow::Borrowed(message),
        });
    }

    /// Handles one text frame; false if it was not a valid command.
    async fn handle(&self, text: &str) -> bool {
        let command = match protocol::parse(text) {
            Ok(command) => command,
            Err(rejected) => {
                self.reject(
                    rejected.reference.as_deref(),
                    rejected.code,
                    &rejected.message,
                );
                return false;
            }
        };
        let id = command.id.as_str();
        let runs = &self.app.runs;
        match command.kind {
            CommandKind::RunStart {
                agent,
                input,
                thread_id,
            } => {
                let outbox = self.outbox.clone();
                let reference = id.to_string();
                let acknowledge = move |started: Result<&StartedRun, RunRefused>| {
                    let reply = match &started {
                        Ok(run) => Reply::Ack {
                            reference: Cow::Borrowed(&reference),
                            payload: AckPayload::RunStarted {
                                run_id: run.run_id.clone(),
                                thread_id: run.thread_id.clone(),
                            },
                        },
                        Err(refused) => Reply::Error {
                            reference: Some(Cow::Borrowed(&reference)),
                            code: refused.code,
                            message: Cow::Borrowed(&refused.message),
                        },
                    };
                    outbox.push(reply.to_text().into());
                };
                let started = runs
                    .start(
                        &self.user,
                        &agent,
                        input,
                        thread_id,
                        self.outbox.clone(),
                        acknowledge,
                    )
                    .await;
                if let Err(refused) = started {
                    self.reject(Some(id), refused.code, &refused.message);
                }
            }
            CommandKind::RunCancel { run_id } => match runs.cancel(&self.user, &run_id) {
                Ok(()) => self.ack(id, AckPayload::Run { run_id }),
                Err(refused) => self.reject(Some(id), refused.code, &refused.message),
            },
            CommandKind::RunRespond {
                run_id,
                request_id,
                value,
            } => match runs.respond(&self.user, &run_id, &request_id, value) {
                Ok(()) => self.ack(id, AckPayload::Run { run_id }),
                Err(refused) => self.reject(Some(id), refused.code, &refused.message),
            },
            CommandKind::RunSubscribe { run_id, after_seq } => {
                // Acknowledge first so the replayed events follow the ack. The
                // replay runs on its own task, so a long one does not hold up
                // this connection's other commands.
                match runs.find(&self.user, &run_id).await {
                    Ok(Followed::Active(log)) => {
                        self.ack(id, AckPayload::Run { run_id });
                        let outbox = self.outbox.clone();
                        tokio::spawn(async move { log.follow(outbox, after_seq).await });
                    }
                    Ok(Followed::Stored(record)) => {
                        self.ack(id, AckPayload::Run { run_id });
                        let (runs, outbox, reference) =
                            (runs.clone(), self.outbox.clone(), id.to_string());
                        tokio::spawn(async move {
                            if let Err(refused) = runs.replay(&record, after_seq, &outbox).await {
                                let reply = Reply::Error {
                                    reference: Some(Cow::Borrowed(&reference)),
                                    code: refused.code,
                                    message: Cow::Borrowed(&refused.message),
                                };
                                outbox.push(reply.to_text().into());
                            }
                        });
                    }
                    Err(refused) => self.reject(Some(id), refused.code, &refused.message),
                }
            }
            CommandKind::ThreadGet {
                thread_id,
                after_seq,
                limit,
            } => {
                let limit = clamp_limit(limit, 100, 1000);
                let max_bytes = self.app.config.page_bytes;
                match runs
                    .thread(&self.user, &thread_id, after_seq, limit, max_bytes)
                    .await
                {
                    Ok((messages, has_more)) => {
                        let messages = messages
                            .into_iter()
                            .map(|m| MessageInfo {
                                seq: m.seq,
                                role: message_role(m.role),
                                content: m.content,
                                run_id: m.run_id,
                                created_at: timestamp_of(m.created_at),
                            })
                            .collect();
                        self.ack(
                            id,
                            AckPayload::Thread {
                                thread_id,
                                messages,
                                has_more,
                            },
                        );
                    }
                    Err(refused) => self.reject(Some(id), refused.code, &refused.message),
                }
            }
            CommandKind::ThreadsList { limit } => {
                let limit = clamp_limit(limit, 50, 500);
                match runs.threads(&self.user, limit).await {
                    Ok(threads) => {
                        let threads = threads
                            .into_iter()
                            .map(|t| ThreadInfo {
                                thread_id: t.id,
                                title: t.title,
                                created_at: timestamp_of(t.created_at),
                                last_activity: timestamp_of(t.last_activity),
                                message_count: t.message_count,
                            })
                            .collect();
                        self.ack(id, AckPayload::Threads { threads });
                    }
                    Err(refused) => self.reject(Some(id), refused.code, &refused.message),
                }
            }
            CommandKind::AgentsList => {
                let served = runs.served();
                let agents = served
                    .registry
                    .agents()
                    .map(|a| {
                        let name = &a.plugin.descriptor().name;
                        let reason = served
                            .deps
                            .as_ref()
                            .and_then(|deps| deps.check_agent(name).err())
                            .map(|u| u.reason);
                        AgentInfo {
                            name: name.clone(),
                            description: a.plugin.descriptor().description.clone(),
                            version: a.version.clone(),
                            digest: a.digest.clone(),
                            state: if reason.is_some() {
                                AgentState::Degraded
                            } else {
                                AgentState::Ready
                            },
                            reason,
                        }
                    })
                    .collect();
                self.ack(id, AckPayload::Agents { agents });
            }
            CommandKind::ToolsList => {
                let tools = runs
                    .registry()
                    .tools()
                    .map(|t| ToolInfo {
                        name: t.descriptor.name.clone(),
                        description: t.descriptor.description.clone(),
                        input_schema: serde_json::from_str(&t.descriptor.input_schema)
                            .unwrap_or(serde_json::Value::Null),
                        plugin: t.plugin.name().to_string(),
                    })
                    .collect();
                self.ack(id, AckPayload::Tools { tools });
            }
            CommandKind::Ping => self.ack(id, AckPayload::Pong { pong: true }),
        }
        true
    }
}

/// A client's page size, defaulted and capped.
fn clamp_limit(limit: Option<u32>, default: usize, max: usize) -> usize {
    limit.map_or(default, |l| usize::try_from(l).unwrap_or(max).clamp(1, max))
}

/// A stored message's role as `thread.get` writes it.
fn message_role(role: netra_store::Role) -> MessageRole {
    match role {
        netra_store::Role::System => MessageRole::System,
        netra_store::Role::User => MessageRole::User,
        netra_store::Role::Assistant => MessageRole::Assistant,
        netra_store::Role::Tool => MessageRole::Tool,
    }
}

#[cfg(test)]
mod tests {
    //! A session driven through its `Sink`/`Stream` generic: no socket, no
    //! HTTP, the frames a client would send and what the host answers.

    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::{Duration, SystemTime};

    use netra_store::MemoryStore;
    use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

    use super::*;
    use crate::protocol::{Code, ServerFrame};
    use crate::registry::Registry;
    use crate::{RunLimits, Runs, ServerConfig};

    /// One end of an in-memory WebSocket.
    struct Duplex {
        incoming: UnboundedReceiver<Message>,
        outgoing: UnboundedSender<Message>,
    }

    impl Stream for Duplex {
        type Item = Result<Message, WsError>;

        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.get_mut().incoming.poll_recv(cx).map(|m| m.map(Ok))
        }
    }

    impl Sink<Message> for Duplex {
        type Error = WsError;

        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            Poll::Ready(Ok(()))
        }

        fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), WsError> {
            self.outgoing
                .send(item)
                .map_err(|_| WsError::ConnectionClosed)
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A client's end: what it sends, and the host's frames in order.
    struct Client {
        send: UnboundedSender<Message>,
        receive: UnboundedReceiver<Message>,
    }

    impl Client {
        fn send(&self, text: &str) {
            self.send
                .send(Message::text(text))
                .expect("session is reading");
        }

        async fn next(&mut self) -> Message {
            tokio::time::timeout(Duration::from_secs(5), self.receive.recv())
                .await
                .expect("a frame within 5 s")
                .expect("the session is open")
        }

        async fn next_text(&mut self) -> String {
            match self.next().await {
                Message::Text(text) => text.to_string(),
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// A session of `user` on a host with no plugins and a memory store.
    fn session(user: &str) -> Client {
        let data = tempfile::tempdir().expect("temp dir");
        let auth = netra_auth::Authenticator::dev(data.path()).expect("dev auth");
        let store: Arc<dyn netra_store::Store> = Arc::new(MemoryStore::new());
        let app = Arc::new(App {
            config: ServerConfig::default(),
            auth,
            runs: Runs::new(Arc::new(Registry::default()), store, RunLimits::default()),
            readiness: None,
            catalog: None,
            sessions: Default::default(),
            mcp: None,
        });
        let principal = Principal {
            user_id: user.to_string(),
            roles: Vec::new(),
            expires_at: SystemTime::now() + Duration::from_secs(3600),
        };
        let (to_session, incoming) = unbounded_channel();
        let (outgoing, from_session) = unbounded_channel();
        tokio::spawn(serve(Duplex { incoming, outgoing }, principal, app));
        Client {
            send: to_session,
            receive: from_session,
        }
    }

    #[tokio::test]
    async fn commands_get_typed_answers_and_bad_frames_get_errors() {
        let mut client = session("alice");
        client.send(r#"{"type":"ping","id":"p1"}"#);
        let text = client.next_text().await;
        assert!(
            matches!(
                ServerFrame::parse(&text),
                Ok(ServerFrame::Reply(Reply::Ack {
                    payload: AckPayload::Pong { pong: true },
                    ..
                }))
            ),
            "{text}"
        );

        client.send("{not json");
        let text = client.next_text().await;
        assert!(
            matches!(
                ServerFrame::parse(&text),
                Ok(ServerFrame::Reply(Reply::Error {
                    code: ErrorCode::BadFrame,
                    reference: None,
                    ..
                }))
            ),
            "{text}"
        );

        client.send(r#"{"type":"run.start","id":"r1","agent":"nobody","input":"hi"}"#);
        let text = client.next_text().await;
        match ServerFrame::parse(&text) {
            Ok(ServerFrame::Reply(Reply::Error {
                code, reference, ..
            })) => {
                assert_eq!(code, ErrorCode::UnknownAgent);
                assert_eq!(reference.as_deref(), Some("r1"));
            }
            other => panic!("{other:?}"),
        }

        client.send(r#"{"type":"agents.list","id":"a1"}"#);
        let text = client.next_text().await;
        assert!(
            matches!(
                ServerFrame::parse(&text),
                Ok(ServerFrame::Reply(Reply::Ack {
                    payload: AckPayload::Agents { ref agents },
                    ..
                })) if agents.is_empty()
            ),
            "{text}"
        );
        // Unused here, but decodable: the codes a run could end with.
        assert_eq!(Code::parse("timeout"), Code::Timeout);
    }

    #[tokio::test]
    async fn another_users_run_is_not_found_and_binary_frames_are_refused() {
        let mut client = session("bob");
        client.send(r#"{"type":"run.subscribe","id":"s1","run_id":"run_nope"}"#);
        let text = client.next_text().await;
        assert!(
            matches!(
                ServerFrame::parse(&text),
                Ok(ServerFrame::Reply(Reply::Error {
                    code: ErrorCode::NotFound,
                    ..
                }))
            ),
            "{text}"
        );
        client
            .send
            .send(Message::binary(vec![1, 2, 3]))
            .expect("session is reading");
        let text = client.next_text().await;
        assert!(
            matches!(
                ServerFrame::parse(&text),
                Ok(ServerFrame::Reply(Reply::Error {
                    code: ErrorCode::BinaryNotSupported,
                    ..
                }))
            ),
            "{text}"
        );
    }
}
