//! Property tests over arbitrary inputs (issue 15, "Fuzzing"; cargo-fuzz
//! needs a nightly toolchain, these run on stable) for the incremental SSE
//! parser and what reads its events (`stream::Accumulator`). Each property
//! runs 256 cases by default (`PROPTEST_CASES` overrides it); `cargo xtask
//! fuzz` runs them with many more.
//!
//! - Any bytes, cut anywhere, with any limit: no panic, errors print.
//! - The same bytes cut at any chunk boundaries (empty chunks included)
//!   give the same events and the same end (error or not) as one chunk.
//! - Within the limit, the events are those of a plain reference parser
//!   written from the WHATWG rules (lines end in CRLF, LF or CR; a leading
//!   byte order mark is dropped; `:` lines are comments; `data` lines join
//!   with `\n`; a blank line dispatches; an unterminated last event counts).
//! - Events of chat-completion chunks with any shape fed to the
//!   accumulator: no panic, a malformed chunk's error has a message, the
//!   content deltas add up to the answer, every tool call has an id and
//!   arguments.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

use super::{SseError, SseParser};
use crate::stream::{Accumulator, Progress, StreamError};
use crate::types::Delta;

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The events and the end of `input` fed as `chunks`; feeding stops at the
/// first error, as the provider does.
fn parse(chunks: &[&[u8]], limit: usize) -> (Vec<String>, Result<(), SseError>) {
    let mut parser = SseParser::new(limit);
    let mut events = Vec::new();
    for chunk in chunks {
        if let Err(err) = parser.feed(chunk, &mut events) {
            return (events, Err(err));
        }
    }
    let end = parser.finish(&mut events);
    (events, end)
}

/// `input` cut at `cuts` (positions, in any order, repeats give empty chunks).
fn cut<'a>(input: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
    at.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for end in at {
        chunks.push(&input[start..end]);
        start = end;
    }
    chunks.push(&input[start..]);
    chunks
}

/// The WHATWG rules, written plainly, without a limit.
fn reference(input: &[u8]) -> (Vec<String>, Result<(), SseError>) {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'\r' | b'\n' => {
                lines.push(&input[start..i]);
                if input[i] == b'\r' && input.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < input.len() {
        lines.push(&input[start..]);
    }
    let mut events = Vec::new();
    let mut data: Option<String> = None;
    for line in lines {
        if line.is_empty() {
            events.extend(data.take());
            continue;
        }
        if line[0] == b':' {
            continue;
        }
        let Ok(text) = std::str::from_utf8(line) else {
            return (events, Err(SseError::NotUtf8));
        };
        let (field, value) = match text.find(':') {
            Some(at) => {
                let value = &text[at + 1..];
                (&text[..at], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (text, ""),
        };
        if field == "data" {
            match &mut data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => data = Some(value.to_string()),
            }
        }
    }
    events.extend(data);
    (events, Ok(()))
}

const TOKENS: &[&[u8]] = &[
    b"data:",
    b"data: ",
    b"data",
    b": keep-alive",
    b":",
    b"event: message",
    b"id: 7",
    b"retry: 100",
    b"\r",
    b"\n",
    b"\r\n",
    b"\n\n",
    b"\r\n\r\n",
    b"\xEF\xBB\xBF",
    b"[DONE]",
    b"{\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}",
    b"\xff",
    b"\xc3",
    b"\xe2\x82\xac",
    b" ",
];

/// A stream of SSE lines: tokens, text and raw bytes.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            6 => proptest::sample::select(TOKENS).prop_map(<[u8]>::to_vec),
            2 => "\\PC{0,12}".prop_map(String::into_bytes),
            1 => proptest::collection::vec(any::<u8>(), 0..8),
        ],
        0..40,
    )
    .prop_map(|pieces| pieces.concat())
}

/// Real streams (OpenAI, vLLM, Ollama shapes), for mutation.
fn samples() -> Vec<Vec<u8>> {
    [
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n",
        "\u{feff}: ping\r\ndata: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"function\":{\"name\":\"calc\",\"arguments\":\"{\\\"x\\\"\"}}]}}]}\r\n\r\ndata: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":1}\"}}]}}]}\r\n\r\ndata: [DONE]",
        "event: error\rdata: {\"error\":{\"message\":\"overloaded\"}}\r\r",
        "data: {\"choices\":[{\"delta\":{\"reasoning\":\"hmm\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"\u{e9}\u{20ac}\u{1f600}\"}}]}\n\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

#[derive(Clone, Debug)]
enum Edit {
    Flip(Index, u8),
    Insert(Index, Index),
    Delete(Index, u8),
    Truncate(Index),
}

/// A sample with up to 8 bytes flipped, tokens inserted, bytes deleted, or
/// its end cut off.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let edit = prop_oneof![
        (any::<Index>(), 1u8..=255).prop_map(|(at, mask)| Edit::Flip(at, mask)),
        (any::<Index>(), any::<Index>()).prop_map(|(at, token)| Edit::Insert(at, token)),
        (any::<Index>(), 1u8..16).prop_map(|(at, n)| Edit::Delete(at, n)),
        any::<Index>().prop_map(Edit::Truncate),
    ];
    (
        proptest::sample::select(samples()),
        proptest::collection::vec(edit, 0..8),
    )
        .prop_map(|(mut bytes, edits)| {
            for edit in edits {
                let len = bytes.len();
                match edit {
                    Edit::Flip(at, mask) if len > 0 => bytes[at.index(len)] ^= mask,
                    Edit::Insert(at, token) => {
                        let at = at.index(len + 1);
                        let token = TOKENS[token.index(TOKENS.len())];
                        bytes.splice(at..at, token.iter().copied());
                    }
                    Edit::Delete(at, n) if len > 0 => {
                        let at = at.index(len);
                        bytes.drain(at..(at + usize::from(n)).min(len));
                    }
                    Edit::Truncate(at) => bytes.truncate(at.index(len + 1)),
                    Edit::Flip(..) | Edit::Delete(..) => {}
                }
            }
            bytes
        })
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => stream(),
        2 => mutated(),
        1 => proptest::collection::vec(any::<u8>(), 0..256),
    ]
}

fn cuts() -> impl Strategy<Value = Vec<Index>> {
    proptest::collection::vec(any::<Index>(), 0..12)
}

/// Limits from tiny (every line too long) to what the provider uses.
fn limit() -> impl Strategy<Value = usize> {
    prop_oneof![1usize..64, Just(1 << 20)]
}

/// Any JSON value, a few levels deep, with chat-completion keys.
fn json() -> impl Strategy<Value = Value> {
    const KEYS: &[&str] = &[
        "choices",
        "index",
        "delta",
        "message",
        "finish_reason",
        "content",
        "reasoning",
        "reasoning_content",
        "tool_calls",
        "id",
        "function",
        "name",
        "arguments",
        "usage",
        "prompt_tokens",
        "completion_tokens",
        "error",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (0u64..4).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 48, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(
                (
                    prop_oneof![
                        4 => proptest::sample::select(KEYS).prop_map(String::from),
                        1 => "\\PC{0,6}",
                    ],
                    inner,
                ),
                0..5,
            )
            .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// A well-formed chunk with any of its fields replaced by any JSON.
fn chunk() -> impl Strategy<Value = Value> {
    let junk = || proptest::option::of(json());
    (
        proptest::option::of(0u32..3),
        proptest::option::of("\\PC{0,4}"),
        proptest::option::of("\\PC{0,6}"),
        proptest::option::of("\\PC{0,6}"),
        (junk(), junk(), junk(), any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(index, id, content, arguments, (junk1, junk2, junk3, finish, reasoning))| {
                let mut call = serde_json::json!({ "function": { "name": "calc" } });
                if let Some(index) = index {
                    call["index"] = index.into();
                }
                if let Some(id) = id {
                    call["id"] = id.into();
                }
                if let Some(arguments) = arguments {
                    call["function"]["arguments"] = arguments.into();
                }
                if let Some(junk) = junk1 {
                    call["function"]["arguments"] = junk;
                }
                let mut delta = serde_json::json!({ "tool_calls": [call] });
                if let Some(content) = content {
                    delta[if reasoning { "reasoning" } else { "content" }] = content.into();
                }
                if let Some(junk) = junk2 {
                    delta["tool_calls"] = junk;
                }
                let mut chunk = serde_json::json!({ "choices": [{ "index": 0, "delta": delta }] });
                if finish {
                    chunk["choices"][0]["finish_reason"] = "stop".into();
                }
                if let Some(junk) = junk3 {
                    chunk["usage"] = junk;
                }
                chunk
            },
        )
}

/// Feeds `events` to an accumulator as the provider does.
fn accumulate(events: &[String]) -> Result<(), TestCaseError> {
    let mut deltas = Vec::new();
    let mut sink = |delta: Delta| deltas.push(delta);
    let mut acc = Accumulator::default();
    for event in events {
        match acc.on_event(event, &mut sink) {
            Ok(Progress::More) => {}
            Ok(Progress::Done) => break,
            Err(StreamError::Malformed(message)) => {
                prop_assert!(!message.trim().is_empty(), "an error without a message");
                break;
            }
            // The server's own message, which may be empty (`{"error": ""}`);
            // the provider reports it as "the server failed mid-stream: ...".
            Err(StreamError::Upstream(_)) => break,
        }
    }
    let delivered = acc.delivered();
    let response = acc.into_response();
    prop_assert_eq!(delivered, !deltas.is_empty());
    let content: String = deltas
        .iter()
        .filter_map(|d| match d {
            Delta::Content(text) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    prop_assert_eq!(&response.content, &content);
    for call in &response.tool_calls {
        prop_assert!(!call.id.is_empty() && !call.arguments.trim().is_empty());
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_cut_anywhere_are_never_a_panic(
        input in input(),
        cuts in cuts(),
        limit in limit(),
    ) {
        let (_, end) = parse(&cut(&input, &cuts), limit);
        if let Err(err) = end {
            prop_assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn the_same_events_whatever_the_chunk_boundaries(
        input in input(),
        cuts in cuts(),
        limit in limit(),
    ) {
        let whole = parse(&[input.as_slice()], limit);
        let pieces = parse(&cut(&input, &cuts), limit);
        prop_assert_eq!(&pieces, &whole, "{:?}", String::from_utf8_lossy(&input));
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        prop_assert_eq!(&parse(&bytes, limit), &whole);
    }

    #[test]
    fn the_events_are_those_of_the_reference_parser(input in input(), cuts in cuts()) {
        let got = parse(&cut(&input, &cuts), 1 << 20);
        prop_assert_eq!(&got, &reference(&input), "{:?}", String::from_utf8_lossy(&input));
    }

    #[test]
    fn sse_events_fed_to_the_accumulator_are_never_a_panic(input in input(), cuts in cuts()) {
        let (events, _) = parse(&cut(&input, &cuts), 1 << 20);
        accumulate(&events)?;
    }

    #[test]
    fn chunks_of_any_shape_are_never_a_panic(
        chunks in proptest::collection::vec(
            prop_oneof![3 => chunk(), 1 => json()],
            0..6,
        ),
        done in any::<bool>(),
    ) {
        let mut events: Vec<String> = chunks.iter().map(Value::to_string).collect();
        if done {
            events.push("[DONE]".into());
        }
        accumulate(&events)?;
    }
}
