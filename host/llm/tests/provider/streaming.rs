//! Successful streams: deltas as they arrive, tool calls, usage, reasoning,
//! and the shapes servers other than OpenAI produce.

use std::time::{Duration, Instant};

use netra_llm::{Delta, ToolCall, Usage};
use serde_json::json;
use tokio::sync::mpsc;

use crate::{chat, provider, question};
use netra_tests::openai::{
    self as fake, ScriptedServer, Step, content, delta, done, end, event, http_chunk, sse_head,
    usage,
};

#[tokio::test]
async fn content_reaches_the_sink_before_the_stream_ends() {
    let server = ScriptedServer::start(vec![vec![
        sse_head(),
        event(&delta(json!({"role": "assistant", "content": ""}), None)),
        event(&content("Hel")),
        Step::Pause(Duration::from_millis(300)),
        Step::Mark("resumed"),
        event(&content("lo")),
        event(&content(" world")),
        event(&delta(json!({}), Some("stop"))),
        event(&usage(9, 3)),
        done(),
        end(),
    ]]);
    let provider = provider(&server.base_url());
    let mut seen: Vec<(Instant, Delta)> = Vec::new();
    let response = provider
        .chat(question(), &mut |d| seen.push((Instant::now(), d)))
        .await
        .unwrap();

    let resumed = server.mark("resumed").expect("the server paused");
    assert_eq!(seen[0].1, Delta::Content("Hel".into()));
    assert!(
        seen[0].0 < resumed,
        "the first delta must arrive while the server pauses"
    );
    let texts: Vec<_> = seen.into_iter().map(|(_, d)| d).collect();
    assert_eq!(
        texts,
        vec![
            Delta::Content("Hel".into()),
            Delta::Content("lo".into()),
            Delta::Content(" world".into()),
        ]
    );
    assert_eq!(response.content, "Hello world");
    assert!(response.tool_calls.is_empty());
    assert_eq!(
        response.usage,
        Usage {
            prompt_tokens: 9,
            completion_tokens: 3
        }
    );
}

#[tokio::test]
async fn tool_call_fragments_accumulate_per_index() {
    // Two calls, arguments in fragments, one SSE event split across two
    // writes in the middle of its JSON and of its line end.
    let first = json!({"role": "assistant", "content": null, "tool_calls": [
        {"index": 0, "id": "call_weather", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    ]});
    let split = format!(
        "data: {}\r\n\r\n",
        delta(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
            None
        )
    );
    let (a, b) = split.split_at(split.len() / 2);
    let (b, c) = b.split_at(b.len() - 3);
    let server = ScriptedServer::start(vec![vec![
        sse_head(),
        event(&delta(first, None)),
        http_chunk(a),
        Step::Pause(Duration::from_millis(20)),
        http_chunk(b),
        Step::Pause(Duration::from_millis(20)),
        http_chunk(c),
        event(&delta(
            json!({"tool_calls": [{"index": 1, "id": "call_time", "type": "function", "function": {"name": "get_time", "arguments": ""}}]}),
            None,
        )),
        event(&delta(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Oslo\"}"}}]}),
            None,
        )),
        event(&delta(
            json!({"tool_calls": [{"index": 1, "function": {"arguments": "{\"tz\":"}}]}),
            None,
        )),
        event(&delta(
            json!({"tool_calls": [{"index": 1, "function": {"arguments": "\"CET\"}"}}]}),
            None,
        )),
        event(&delta(json!({}), Some("tool_calls"))),
        event(&usage(40, 25)),
        done(),
        end(),
    ]]);
    let (deltas, result) = chat(&provider(&server.base_url()), question()).await;
    let response = result.unwrap();
    assert!(deltas.is_empty(), "tool calls are not deltas: {deltas:?}");
    assert_eq!(
        response.tool_calls,
        vec![
            ToolCall {
                id: "call_weather".into(),
                name: "get_weather".into(),
                arguments: r#"{"city":"Oslo"}"#.into()
            },
            ToolCall {
                id: "call_time".into(),
                name: "get_time".into(),
                arguments: r#"{"tz":"CET"}"#.into()
            },
        ]
    );
    assert_eq!(response.content, "");
    assert_eq!(
        response.usage,
        Usage {
            prompt_tokens: 40,
            completion_tokens: 25
        }
    );
}

#[tokio::test]
async fn usage_comes_from_the_final_chunk_without_choices() {
    let server = ScriptedServer::start(vec![fake::answer("ok")]);
    let (_, result) = chat(&provider(&server.base_url()), question()).await;
    let response = result.unwrap();
    assert_eq!(response.content, "ok");
    assert_eq!(
        response.usage,
        Usage {
            prompt_tokens: 5,
            completion_tokens: 2
        }
    );
}

#[tokio::test]
async fn reasoning_fields_become_reasoning_deltas() {
    let server = ScriptedServer::start(vec![vec![
        sse_head(),
        // vLLM and llama.cpp say reasoning_content, Ollama says reasoning.
        event(&delta(
            json!({"role": "assistant", "reasoning_content": "Let me think."}),
            None,
        )),
        event(&delta(json!({"reasoning": " Two plus two."}), None)),
        event(&delta(
            json!({"content": "4", "reasoning_content": null}),
            None,
        )),
        event(&delta(json!({}), Some("stop"))),
        done(),
        end(),
    ]]);
    let (deltas, result) = chat(&provider(&server.base_url()), question()).await;
    assert_eq!(
        deltas,
        vec![
            Delta::Reasoning("Let me think.".into()),
            Delta::Reasoning(" Two plus two.".into()),
            Delta::Content("4".into()),
        ]
    );
    let response = result.unwrap();
    assert_eq!(response.content, "4");
    assert_eq!(response.usage, Usage::default());
}

#[tokio::test]
async fn a_non_streamed_completion_is_read_whole() {
    let body = json!({
        "id": "chatcmpl-2", "object": "chat.completion", "created": 1, "model": "test-model",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Checking.",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"x\"}"}}]
        }}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}
    });
    let server = ScriptedServer::start(vec![vec![fake::response(
        "200 OK",
        &[("content-type", "application/json")],
        &body.to_string(),
    )]]);
    let (deltas, result) = chat(&provider(&server.base_url()), question()).await;
    let response = result.unwrap();
    assert_eq!(deltas, vec![Delta::Content("Checking.".into())]);
    assert_eq!(response.content, "Checking.");
    assert_eq!(response.tool_calls[0].name, "lookup");
    assert_eq!(
        response.usage,
        Usage {
            prompt_tokens: 7,
            completion_tokens: 4
        }
    );
}

#[tokio::test]
async fn a_close_delimited_stream_with_comments_and_no_final_blank_line() {
    // No content-type, no chunking, keep-alive comments, CRLF line ends,
    // and the server closes right after `data: [DONE]`.
    let server = ScriptedServer::start(vec![vec![
        Step::Write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_vec()),
        Step::Write(b": keep-alive\r\n\r\n".to_vec()),
        Step::Write(format!("data: {}\r\n\r\n", content("A")).into_bytes()),
        Step::Write(format!("event: message\r\ndata: {}\r\n\r\n", content("B")).into_bytes()),
        Step::Write(b"data: [DONE]".to_vec()),
    ]]);
    let (deltas, result) = chat(&provider(&server.base_url()), question()).await;
    assert_eq!(
        deltas,
        vec![Delta::Content("A".into()), Delta::Content("B".into())]
    );
    assert_eq!(result.unwrap().content, "AB");
}

#[tokio::test]
async fn dropping_the_call_closes_the_upstream_connection() {
    let server = ScriptedServer::start(vec![vec![
        sse_head(),
        event(&content("first")),
        Step::AwaitClose(Duration::from_secs(10)),
    ]]);
    let provider = provider(&server.base_url());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let call = tokio::spawn(async move {
        provider
            .chat(question(), &mut |d| {
                let _ = tx.send(d);
            })
            .await
    });
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap();
    assert_eq!(first, Some(Delta::Content("first".into())));
    let dropped = Instant::now();
    call.abort();
    // Waited for off the runtime's thread, which must drop the aborted call.
    let closed = tokio::task::spawn_blocking(move || server.client_closed(Duration::from_secs(2)))
        .await
        .expect("the waiting thread")
        .expect("the server sees the connection closed within 2 s");
    assert!(closed.duration_since(dropped) < Duration::from_secs(2));
}

#[tokio::test]
async fn the_chat_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let provider = provider("http://127.0.0.1:9/v1");
    let mut sink = |_: Delta| {};
    let future = provider.chat(question(), &mut sink);
    assert_send(&future);
}
