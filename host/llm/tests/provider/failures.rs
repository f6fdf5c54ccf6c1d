//! HTTP errors, retries, timeouts, broken and malformed streams, and what
//! the breaker is told.

use std::time::{Duration, Instant};

use netra_llm::{Delta, LlmError, Provider};
use serde_json::json;

use crate::{Recorder, chat, config, provider, question};
use netra_tests::openai::{
    self as fake, ScriptedServer, Step, content, delta, error_response, event, sse_head,
};

#[tokio::test]
async fn rate_limited_then_success_waits_for_retry_after() {
    let server = ScriptedServer::start(vec![
        vec![error_response(
            "429 Too Many Requests",
            "Rate limit reached for requests",
            &[("retry-after", "1")],
        )],
        fake::answer("done"),
    ]);
    let (provider, recorder) = Recorder::attach(provider(&server.base_url()));
    let started = Instant::now();
    let (_, result) = chat(&provider, question()).await;
    assert_eq!(result.unwrap().content, "done");
    assert_eq!(server.request_count(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After: 1 was honoured"
    );
    let outcomes = recorder.outcomes();
    assert!(outcomes[0].is_err() && outcomes[1].is_ok(), "{outcomes:?}");
}

#[tokio::test]
async fn rate_limited_every_time_is_rate_limited() {
    let server = ScriptedServer::start(vec![vec![error_response(
        "429 Too Many Requests",
        "slow down",
        &[("retry-after", "0")],
    )]]);
    let mut config = config(&server.base_url());
    config.max_retries = 1;
    let (_, result) = chat(&Provider::new(config).unwrap(), question()).await;
    match result {
        Err(LlmError::RateLimited(message)) => assert!(message.contains("slow down"), "{message}"),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn a_retry_after_beyond_the_timeout_fails_at_once() {
    let server = ScriptedServer::start(vec![vec![error_response(
        "429 Too Many Requests",
        "wait",
        &[("retry-after", "20")],
    )]]);
    let mut config = config(&server.base_url());
    config.timeout = Duration::from_secs(2);
    let started = Instant::now();
    let (_, result) = chat(&Provider::new(config).unwrap(), question()).await;
    assert!(
        matches!(result, Err(LlmError::RateLimited(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn server_error_then_success() {
    let server = ScriptedServer::start(vec![
        vec![fake::response("500 Internal Server Error", &[], "boom")],
        fake::answer("recovered"),
    ]);
    let (provider, recorder) = Recorder::attach(provider(&server.base_url()));
    let (_, result) = chat(&provider, question()).await;
    assert_eq!(result.unwrap().content, "recovered");
    assert_eq!(server.request_count(), 2);
    assert_eq!(
        recorder.outcomes(),
        vec![Err("HTTP 500: boom".to_owned()), Ok(())]
    );
}

#[tokio::test]
async fn server_errors_every_time_give_up_after_max_retries() {
    let server = ScriptedServer::start(vec![vec![error_response(
        "503 Service Unavailable",
        "overloaded",
        &[],
    )]]);
    let mut config = config(&server.base_url());
    config.max_retries = 2;
    let (provider, recorder) = Recorder::attach(Provider::new(config).unwrap());
    let (_, result) = chat(&provider, question()).await;
    match result {
        Err(LlmError::Unavailable(message)) => assert!(message.contains("overloaded"), "{message}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(server.request_count(), 3);
    assert_eq!(recorder.outcomes().len(), 3);
    assert!(recorder.outcomes().iter().all(Result::is_err));
    assert_eq!(*recorder.checks.lock().unwrap(), 3);
}

#[tokio::test]
async fn bad_request_carries_the_server_message() {
    let server = ScriptedServer::start(vec![vec![error_response(
        "400 Bad Request",
        "This model's maximum context length is 8192 tokens.",
        &[],
    )]]);
    let (provider, recorder) = Recorder::attach(provider(&server.base_url()));
    let (_, result) = chat(&provider, question()).await;
    match result {
        Err(LlmError::InvalidRequest(message)) => {
            assert!(
                message.contains("maximum context length is 8192"),
                "{message}"
            )
        }
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
    assert_eq!(server.request_count(), 1);
    assert_eq!(recorder.outcomes(), vec![Ok(())]);
}

#[tokio::test]
async fn unknown_model_is_an_invalid_request() {
    let server = ScriptedServer::start(vec![vec![error_response(
        "404 Not Found",
        "model \"nope\" not found, try pulling it first",
        &[],
    )]]);
    let (_, result) = chat(&provider(&server.base_url()), question()).await;
    assert!(
        matches!(&result, Err(LlmError::InvalidRequest(m)) if m.contains("not found")),
        "{result:?}"
    );
}

#[tokio::test]
async fn unauthorized_is_denied_and_the_key_is_not_quoted() {
    let server = ScriptedServer::start(vec![vec![error_response(
        "401 Unauthorized",
        "Incorrect API key provided: sk-test-0123456789. You can find your API key in your account settings.",
        &[],
    )]]);
    let mut config = config(&server.base_url());
    config.api_key = Some("sk-test-0123456789".to_owned());
    let (provider, recorder) = Recorder::attach(Provider::new(config).unwrap());
    let (_, result) = chat(&provider, question()).await;
    let error = result.unwrap_err();
    assert!(matches!(error, LlmError::Denied(_)), "{error:?}");
    assert!(!error.to_string().contains("sk-test-0123456789"), "{error}");
    assert!(
        error
            .to_string()
            .contains("Incorrect API key provided: <redacted>")
    );
    assert_eq!(server.request_count(), 1);
    assert_eq!(recorder.outcomes(), vec![Ok(())]);
}

#[tokio::test]
async fn malformed_json_in_the_stream_is_unavailable() {
    let server = ScriptedServer::start(vec![vec![
        sse_head(),
        event(&content("partial")),
        fake::http_chunk("data: {\"choices\": [{\"delta\": {\"content\": \"x\"\n\n"),
        fake::end(),
    ]]);
    let (provider, recorder) = Recorder::attach(provider(&server.base_url()));
    let (deltas, result) = chat(&provider, question()).await;
    assert_eq!(deltas, vec![Delta::Content("partial".into())]);
    match result {
        Err(LlmError::Unavailable(message)) => {
            assert!(message.starts_with("malformed stream: "), "{message}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(server.request_count(), 1);
    assert!(recorder.outcomes()[0].is_err());
}

#[tokio::test]
async fn an_error_event_mid_stream_is_unavailable() {
    let server = ScriptedServer::start(vec![vec![
        sse_head(),
        event(&json!({"error": {"message": "model runner crashed", "type": "server_error"}})),
        fake::end(),
    ]]);
    let (_, result) = chat(&provider(&server.base_url()), question()).await;
    assert!(
        matches!(&result, Err(LlmError::Unavailable(m)) if m.contains("model runner crashed")),
        "{result:?}"
    );
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn a_stalled_stream_fails_within_the_timeout() {
    let server = ScriptedServer::start(vec![vec![
        sse_head(),
        event(&content("one")),
        Step::Pause(Duration::from_secs(10)),
    ]]);
    let mut config = config(&server.base_url());
    config.timeout = Duration::from_secs(1);
    let (provider, recorder) = Recorder::attach(Provider::new(config).unwrap());
    let started = Instant::now();
    let (deltas, result) = chat(&provider, question()).await;
    let elapsed = started.elapsed();
    assert_eq!(deltas, vec![Delta::Content("one".into())]);
    assert!(
        matches!(result, Err(LlmError::Unavailable(_))),
        "{result:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_eq!(
        server.request_count(),
        1,
        "a stream that delivered is not retried"
    );
    assert!(recorder.outcomes()[0].is_err());
}

#[tokio::test]
async fn a_stream_broken_after_a_delta_is_not_retried() {
    // The connection closes in the middle of the chunked body.
    let server = ScriptedServer::start(vec![
        vec![sse_head(), event(&content("half an ans"))],
        fake::answer("never asked for"),
    ]);
    let (deltas, result) = chat(&provider(&server.base_url()), question()).await;
    assert_eq!(deltas, vec![Delta::Content("half an ans".into())]);
    assert!(
        matches!(result, Err(LlmError::Unavailable(_))),
        "{result:?}"
    );
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn a_stream_broken_before_any_delta_is_retried() {
    let server = ScriptedServer::start(vec![
        vec![
            sse_head(),
            event(&delta(json!({"role": "assistant", "content": ""}), None)),
        ],
        fake::answer("second try"),
    ]);
    let (deltas, result) = chat(&provider(&server.base_url()), question()).await;
    assert_eq!(result.unwrap().content, "second try");
    assert_eq!(deltas, vec![Delta::Content("second try".into())]);
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn a_refused_connection_is_unavailable_after_retries() {
    let port = netra_tests::stub::closed_port();
    let mut config = config(&format!("http://127.0.0.1:{port}/v1"));
    config.max_retries = 2;
    let (provider, recorder) = Recorder::attach(Provider::new(config).unwrap());
    let (_, result) = chat(&provider, question()).await;
    match result {
        Err(LlmError::Unavailable(message)) => {
            assert!(message.contains("cannot connect"), "{message}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(recorder.outcomes().len(), 3);
}

#[tokio::test]
async fn an_open_breaker_fails_at_once_without_a_request() {
    let server = ScriptedServer::start(vec![fake::answer("unused")]);
    let recorder = std::sync::Arc::new(Recorder {
        refuse: Some("endpoint fake is unavailable: breaker open".to_owned()),
        ..Recorder::default()
    });
    let provider = provider(&server.base_url()).with_outcomes(recorder.clone());
    let (_, result) = chat(&provider, question()).await;
    assert_eq!(
        result,
        Err(LlmError::Unavailable(
            "endpoint fake is unavailable: breaker open".to_owned()
        ))
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.request_count(), 0);
    assert!(recorder.outcomes().is_empty());
}

#[tokio::test]
async fn no_model_anywhere_is_an_invalid_request() {
    let mut config = config("http://127.0.0.1:9/v1");
    config.models.clear();
    let (_, result) = chat(&Provider::new(config).unwrap(), question()).await;
    assert!(
        matches!(result, Err(LlmError::InvalidRequest(_))),
        "{result:?}"
    );
}

#[test]
fn bad_configurations_are_invalid_requests() {
    for base_url in [
        "",
        "localhost:11434/v1",
        "ftp://127.0.0.1/v1",
        "http://user:pw@127.0.0.1/v1",
    ] {
        let result = Provider::new(config(base_url));
        assert!(
            matches!(&result, Err(LlmError::InvalidRequest(m)) if m.contains("base_url")),
            "{base_url:?}: {result:?}"
        );
    }
    let mut zero = config("http://127.0.0.1:8080/v1");
    zero.timeout = Duration::ZERO;
    assert!(matches!(
        Provider::new(zero),
        Err(LlmError::InvalidRequest(_))
    ));
    let mut bad_key = config("http://127.0.0.1:8080/v1");
    bad_key.api_key = Some("sk-\nline".to_owned());
    let error = Provider::new(bad_key).unwrap_err();
    assert!(!error.to_string().contains("sk-"), "{error}");
}

/// With a long timeout the stall limit (30 s) is what ends a silent stream.
/// The clock is paused and jumps ahead whenever every task waits, so the
/// test takes milliseconds. The scripted server answers on a thread of its
/// own, in real time: until it has written the first event, a task keeps
/// the runtime busy so the clock cannot jump past it (once the bytes are in
/// the socket, tokio polls for them before it moves the clock).
#[tokio::test(start_paused = true)]
async fn a_silent_stream_stalls_after_thirty_seconds() {
    let server = std::sync::Arc::new(ScriptedServer::start(vec![vec![
        sse_head(),
        event(&content("one")),
        Step::Mark("sent"),
        Step::Pause(Duration::from_secs(600)),
    ]]));
    let mut config = config(&server.base_url());
    config.timeout = Duration::from_secs(300);
    let (provider, recorder) = Recorder::attach(Provider::new(config).unwrap());
    let busy = tokio::spawn({
        let server = server.clone();
        async move {
            while server.mark("sent").is_none() {
                tokio::task::yield_now().await;
            }
        }
    });
    let started = tokio::time::Instant::now();
    let (deltas, result) = chat(&provider, question()).await;
    busy.await.unwrap();
    let waited = started.elapsed();
    assert_eq!(deltas, vec![Delta::Content("one".into())]);
    assert_eq!(
        result,
        Err(LlmError::Unavailable(
            "stream stalled: no data for 30.0s".to_owned()
        ))
    );
    assert!(
        waited >= Duration::from_secs(30) && waited < Duration::from_secs(31),
        "{waited:?}"
    );
    assert_eq!(
        recorder.outcomes(),
        vec![Err("stream stalled: no data for 30.0s".to_owned())]
    );
}
