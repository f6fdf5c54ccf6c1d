//! Turns parsed chunks into deltas for the sink and, at the end, one
//! [`ChatResponse`]: content concatenated, tool-call fragments joined per
//! index, the usage of the final chunk.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::provider::Sink;
use crate::types::{ChatResponse, Delta, ToolCall, Usage};
use crate::wire::{self, Chunk, DeltaIn, ToolCallIn};

/// Longest data snippet quoted in a "malformed stream" error.
const SNIPPET: usize = 120;

/// Whether the stream has more to say.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    More,
    /// `data: [DONE]`: the server is finished.
    Done,
}

/// Why a stream could not be read to its end.
#[derive(Debug)]
pub(crate) enum StreamError {
    /// The bytes are not what the protocol says.
    Malformed(String),
    /// The server reported a failure inside the stream.
    Upstream(String),
}

#[derive(Default)]
pub(crate) struct Accumulator {
    content: String,
    calls: BTreeMap<u32, ToolCall>,
    /// The index a tool-call fragment without `index` belongs to.
    last_call: Option<u32>,
    usage: Usage,
    /// A choice said why it stopped (`finish_reason`).
    finished: bool,
    /// Some delta reached the sink: the attempt must not be repeated.
    delivered: bool,
}

impl Accumulator {
    pub(crate) fn delivered(&self) -> bool {
        self.delivered
    }

    /// The stream reached a natural end (a `finish_reason` was seen).
    pub(crate) fn finished(&self) -> bool {
        self.finished
    }

    /// One SSE event's data.
    pub(crate) fn on_event(
        &mut self,
        data: &str,
        sink: &mut Sink<'_>,
    ) -> Result<Progress, StreamError> {
        let data = data.trim();
        if data == "[DONE]" {
            return Ok(Progress::Done);
        }
        if data.is_empty() {
            return Ok(Progress::More);
        }
        let chunk: Chunk =
            serde_json::from_str(data).map_err(|e| StreamError::Malformed(malformed(&e, data)))?;
        self.apply(chunk, false, sink)?;
        Ok(Progress::More)
    }

    /// A whole completion from a server that did not stream.
    pub(crate) fn on_whole(&mut self, body: &[u8], sink: &mut Sink<'_>) -> Result<(), StreamError> {
        let chunk: Chunk = serde_json::from_slice(body)
            .map_err(|e| StreamError::Malformed(malformed(&e, &String::from_utf8_lossy(body))))?;
        self.apply(chunk, true, sink)?;
        self.finished = true;
        Ok(())
    }

    fn apply(&mut self, chunk: Chunk, whole: bool, sink: &mut Sink<'_>) -> Result<(), StreamError> {
        if let Some(error) = &chunk.error
            && !error.is_null()
        {
            let value = serde_json::json!({ "error": error });
            let message = wire::error_value_message(&value).unwrap_or_else(|| error.to_string());
            return Err(StreamError::Upstream(message));
        }
        if let Some(usage) = chunk.usage {
            self.usage = Usage {
                prompt_tokens: saturate(usage.prompt_tokens),
                completion_tokens: saturate(usage.completion_tokens),
            };
        }
        // Only one choice is asked for (no `n`): take index 0, or the first.
        let mut choices = chunk.choices.unwrap_or_default();
        let position = choices.iter().position(|c| c.index.unwrap_or(0) == 0);
        let Some(choice) = position.map(|at| choices.swap_remove(at)) else {
            return Ok(());
        };
        if choice.finish_reason.is_some() {
            self.finished = true;
        }
        if let Some(delta) = choice.delta.or(choice.message) {
            self.apply_delta(delta, whole, sink);
        }
        Ok(())
    }

    fn apply_delta(&mut self, delta: DeltaIn, whole: bool, sink: &mut Sink<'_>) {
        let reasoning = delta.reasoning_content.or(delta.reasoning);
        if let Some(text) = reasoning.filter(|t| !t.is_empty()) {
            self.delivered = true;
            sink(Delta::Reasoning(text));
        }
        if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
            self.content.push_str(&text);
            self.delivered = true;
            sink(Delta::Content(text));
        }
        for (position, call) in delta.tool_calls.unwrap_or_default().into_iter().enumerate() {
            // In a whole completion each entry is a whole call.
            let position = whole.then(|| u32::try_from(position).unwrap_or(u32::MAX));
            self.apply_call(call, position);
        }
    }

    fn apply_call(&mut self, call: ToolCallIn, position: Option<u32>) {
        let id = call.id.filter(|id| !id.is_empty());
        let index = match (call.index.or(position), self.last_call) {
            (Some(index), _) => index,
            // No index: a new id starts a new call, anything else continues
            // the last one.
            (None, Some(last))
                if id
                    .as_ref()
                    .is_none_or(|id| self.calls.get(&last).is_some_and(|c| c.id == *id)) =>
            {
                last
            }
            (None, _) => self
                .calls
                .keys()
                .next_back()
                .map_or(0, |last| last.saturating_add(1)),
        };
        self.last_call = Some(index);
        let entry = self.calls.entry(index).or_default();
        if let Some(id) = id {
            entry.id = id;
        }
        let Some(function) = call.function else {
            return;
        };
        if let Some(name) = function.name.filter(|n| !n.is_empty()) {
            // The name normally comes whole in the first fragment; servers
            // that repeat it in later fragments must not double it.
            if entry.name.is_empty() {
                entry.name = name;
            } else if entry.name != name {
                entry.name.push_str(&name);
            }
        }
        match function.arguments {
            Some(Value::String(fragment)) => entry.arguments.push_str(&fragment),
            Some(Value::Null) | None => {}
            Some(object) => entry.arguments.push_str(&object.to_string()),
        }
    }

    pub(crate) fn into_response(self) -> ChatResponse {
        let tool_calls = self
            .calls
            .into_iter()
            .map(|(index, mut call)| {
                if call.id.is_empty() {
                    call.id = format!("call_{index}");
                }
                if call.arguments.trim().is_empty() {
                    call.arguments = "{}".to_owned();
                }
                call
            })
            .collect();
        ChatResponse {
            content: self.content,
            tool_calls,
            usage: self.usage,
        }
    }
}

fn saturate(tokens: Option<u64>) -> u32 {
    tokens.map_or(0, |t| u32::try_from(t).unwrap_or(u32::MAX))
}

fn malformed(error: &serde_json::Error, data: &str) -> String {
    let mut snippet: String = data.chars().take(SNIPPET).collect();
    if snippet.len() < data.len() {
        snippet.push_str("...");
    }
    format!("{error} in {snippet:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(events: &[&str]) -> (Vec<Delta>, Result<ChatResponse, String>) {
        let mut deltas = Vec::new();
        let mut acc = Accumulator::default();
        let mut sink = |d: Delta| deltas.push(d);
        for event in events {
            match acc.on_event(event, &mut sink) {
                Ok(Progress::Done) => break,
                Ok(Progress::More) => {}
                Err(e) => return (deltas, Err(format!("{e:?}"))),
            }
        }
        (deltas, Ok(acc.into_response()))
    }

    #[test]
    fn tool_calls_join_per_index() {
        let (deltas, response) = run(&[
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"ci"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","function":{"name":"get_time","arguments":"{\"tz\""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ty\":\"Oslo\"}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":":\"CET\"}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42}}"#,
            "[DONE]",
        ]);
        assert!(deltas.is_empty());
        let response = response.unwrap();
        assert_eq!(
            response.tool_calls,
            vec![
                ToolCall {
                    id: "call_a".into(),
                    name: "get_weather".into(),
                    arguments: r#"{"city":"Oslo"}"#.into()
                },
                ToolCall {
                    id: "call_b".into(),
                    name: "get_time".into(),
                    arguments: r#"{"tz":"CET"}"#.into()
                },
            ]
        );
        assert_eq!(
            response.usage,
            Usage {
                prompt_tokens: 12,
                completion_tokens: 30
            }
        );
    }

    #[test]
    fn whole_calls_without_index_or_id() {
        // Ollama's shape: each call whole, object arguments tolerated, no
        // index; a server without ids gets `call_N`.
        let (_, response) = run(&[
            r#"{"choices":[{"delta":{"tool_calls":[{"id":"x1","function":{"name":"a","arguments":{"q":1}}},{"id":"x2","function":{"name":"b"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"{}"}}]}}]}"#,
        ]);
        let calls = response.unwrap().tool_calls;
        let got: Vec<_> = calls
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.as_str()))
            .collect();
        // The last fragment has no id and no index: it continues the last call.
        assert_eq!(got, vec![("x1", "a", r#"{"q":1}"#), ("x2", "b", "{}")]);
    }

    #[test]
    fn content_and_reasoning_go_to_the_sink() {
        let (deltas, response) = run(&[
            r#"{"choices":[{"index":0,"delta":{"reasoning_content":"hmm"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"reasoning":"ok"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":""}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":" there"}}],"usage":null}"#,
        ]);
        assert_eq!(
            deltas,
            vec![
                Delta::Reasoning("hmm".into()),
                Delta::Reasoning("ok".into()),
                Delta::Content("Hi".into()),
                Delta::Content(" there".into()),
            ]
        );
        assert_eq!(response.unwrap().content, "Hi there");
    }

    #[test]
    fn malformed_and_upstream_errors() {
        let (_, response) = run(&["{\"choices\": ["]);
        assert!(response.unwrap_err().contains("Malformed"));
        let (_, response) = run(&[r#"{"error":{"message":"overloaded"}}"#]);
        assert!(response.unwrap_err().contains("overloaded"));
    }

    #[test]
    fn a_whole_completion() {
        let mut deltas = Vec::new();
        let mut acc = Accumulator::default();
        let body = br#"{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"4","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}},{"type":"function","function":{"name":"g","arguments":"{}"}}]},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#;
        acc.on_whole(body, &mut |d| deltas.push(d)).unwrap();
        assert!(acc.finished());
        let response = acc.into_response();
        assert_eq!(deltas, vec![Delta::Content("4".into())]);
        assert_eq!(response.tool_calls.len(), 2);
        assert_eq!(response.tool_calls[1].id, "call_1");
        assert_eq!(response.usage.prompt_tokens, 3);
    }
}
