//! What goes over the wire, and what never does.

use netra_llm::{ChatMessage, ChatRequest, Provider, ToolCall, ToolSpec};
use serde_json::json;

use crate::{chat, config, question};
use netra_tests::openai::{self as fake, ScriptedServer};

#[tokio::test]
async fn the_request_has_the_openai_shape() {
    let server = ScriptedServer::start(vec![fake::answer("ok")]);
    let mut config = config(&format!("{}/", server.base_url()));
    config.api_key = Some("sk-test-key".to_owned());
    config.models = vec!["default-model".to_owned(), "other".to_owned()];
    let provider = Provider::new(config).unwrap();
    let request = ChatRequest {
        model: Some("other".to_owned()),
        messages: vec![
            ChatMessage::system("You are terse."),
            ChatMessage::user("Weather in Oslo?"),
            ChatMessage::assistant_tool_calls(
                "",
                vec![ToolCall {
                    id: "call_1".into(),
                    name: "get_weather".into(),
                    arguments: r#"{"city":"Oslo"}"#.into(),
                }],
            ),
            ChatMessage::tool("call_1", r#"{"temp_c":4}"#),
        ],
        tools: vec![ToolSpec {
            name: "get_weather".into(),
            description: "Current weather for a city.".into(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        }],
        temperature: Some(0.25),
        max_tokens: Some(256),
    };
    let (_, result) = chat(&provider, request).await;
    result.unwrap();

    let captured = &server.requests()[0];
    assert_eq!(captured.method, "POST");
    assert_eq!(captured.path, "/v1/chat/completions");
    assert_eq!(captured.header("authorization"), Some("Bearer sk-test-key"));
    assert_eq!(captured.header("content-type"), Some("application/json"));
    assert_eq!(
        captured.header("host"),
        Some(server.addr.to_string().as_str())
    );
    assert_eq!(
        captured.json(),
        json!({
            "model": "other",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Weather in Oslo?"},
                {"role": "assistant", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}
                ]},
                {"role": "tool", "content": "{\"temp_c\":4}", "tool_call_id": "call_1"}
            ],
            "tools": [{"type": "function", "function": {
                "name": "get_weather",
                "description": "Current weather for a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
            }}],
            "temperature": 0.25,
            "max_tokens": 256,
            "stream": true,
            "stream_options": {"include_usage": true}
        })
    );
}

#[tokio::test]
async fn unset_fields_are_omitted_and_the_first_model_is_the_default() {
    let server = ScriptedServer::start(vec![fake::answer("ok")]);
    let provider = Provider::new(config(&server.base_url())).unwrap();
    chat(&provider, question()).await.1.unwrap();
    let captured = &server.requests()[0];
    assert_eq!(captured.header("authorization"), None);
    assert_eq!(
        captured.json(),
        json!({
            "model": "test-model",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": true,
            "stream_options": {"include_usage": true}
        })
    );
}

#[test]
fn the_api_key_is_not_in_debug_output() {
    let mut config = config("https://api.openai.com/v1");
    config.api_key = Some("sk-proj-verysecret".to_owned());
    let provider = Provider::new(config.clone()).unwrap();
    for text in [
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{provider:?}"),
    ] {
        assert!(!text.contains("verysecret"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
}

#[tokio::test]
async fn https_speaks_tls_and_a_plain_peer_is_unavailable() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut first = [0u8; 3];
        socket.read_exact(&mut first).await.unwrap();
        // Not TLS: an HTTP answer where a ServerHello belongs.
        let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        first
    });
    let mut config = config(&format!("https://{addr}/v1"));
    config.max_retries = 0;
    let (_, result) = chat(&Provider::new(config).unwrap(), question()).await;
    let first = peer.await.unwrap();
    // A TLS handshake record (0x16), version 3.x: a ClientHello.
    assert_eq!(first[..2], [0x16, 0x03], "{first:?}");
    assert!(
        matches!(&result, Err(netra_llm::LlmError::Unavailable(m)) if m.contains("cannot connect")),
        "{result:?}"
    );
}
