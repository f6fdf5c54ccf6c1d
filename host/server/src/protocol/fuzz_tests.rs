//! Property tests over arbitrary inputs (issue 15, "Fuzzing"; cargo-fuzz
//! needs a nightly toolchain, these run on stable) for `parse`, the decoder
//! of every WebSocket text frame. The input strategies here are shared with
//! the admin upload's tests (`admin/fuzz_tests.rs`). Each property runs 256
//! cases by default (`PROPTEST_CASES` overrides it); `cargo xtask fuzz`
//! runs them with many more.
//!
//! The oracle ([`check`]) holds for any input: no panic; a rejection has a
//! message; text that is not a JSON object is `bad_frame` without `ref`; an
//! object with a usable `id` (a string of 1-128 bytes) is either accepted
//! with that id or rejected with it as `ref`; an object without one is
//! `invalid_command` without `ref`; an accepted command has the frame's
//! `type`.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value};

use super::{CommandKind, ErrorCode, parse};

/// proptest's default config (256 cases, or `PROPTEST_CASES`), without
/// `proptest-regressions` files: a failure found is kept as a plain test.
pub(crate) fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One edit of a valid sample.
#[derive(Clone, Debug)]
enum Edit {
    /// XOR one byte with a non-zero mask.
    Flip(Index, u8),
    /// Insert one byte.
    Insert(Index, u8),
    /// Insert one of the dictionary's tokens.
    Token(Index, Index),
    /// Delete up to this many bytes.
    Delete(Index, u8),
    /// Cut the input short.
    Truncate(Index),
    /// Copy a slice of the input (start, length) to another place.
    Splice(Index, Index, u8, Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), 1u8..=255).prop_map(|(at, mask)| Edit::Flip(at, mask)),
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Edit::Insert(at, byte)),
        (any::<Index>(), any::<Index>()).prop_map(|(at, token)| Edit::Token(at, token)),
        (any::<Index>(), 1u8..16).prop_map(|(at, n)| Edit::Delete(at, n)),
        any::<Index>().prop_map(Edit::Truncate),
        (any::<Index>(), any::<Index>(), 1u8..32, any::<Index>())
            .prop_map(|(from, len, max, to)| Edit::Splice(from, len, max, to)),
    ]
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit, tokens: &[&[u8]]) {
    let len = bytes.len();
    match edit {
        Edit::Flip(at, mask) => {
            if len > 0 {
                bytes[at.index(len)] ^= mask;
            }
        }
        Edit::Insert(at, byte) => bytes.insert(at.index(len + 1), *byte),
        Edit::Token(at, token) => {
            if !tokens.is_empty() {
                let at = at.index(len + 1);
                let token = tokens[token.index(tokens.len())];
                bytes.splice(at..at, token.iter().copied());
            }
        }
        Edit::Delete(at, n) => {
            if len > 0 {
                let at = at.index(len);
                let end = (at + usize::from(*n)).min(len);
                bytes.drain(at..end);
            }
        }
        Edit::Truncate(at) => bytes.truncate(at.index(len + 1)),
        Edit::Splice(from, span, max, to) => {
            if len > 0 {
                let from = from.index(len);
                let span = span.index(usize::from(*max).min(len - from)) + 1;
                let piece = bytes[from..from + span].to_vec();
                let to = to.index(len + 1);
                bytes.splice(to..to, piece);
            }
        }
    }
}

/// One of `samples` with up to 8 edits: bytes flipped, inserted, deleted,
/// `tokens` inserted, slices copied, the end cut off. Shrinks towards the
/// unedited sample.
pub(crate) fn mutated(
    samples: Vec<Vec<u8>>,
    tokens: &'static [&'static [u8]],
) -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::sample::select(samples),
        proptest::collection::vec(edit(), 0..8),
    )
        .prop_map(move |(mut bytes, edits)| {
            for edit in &edits {
                apply(&mut bytes, edit, tokens);
            }
            bytes
        })
}

/// Arbitrary text that is not completely random: any characters, with the
/// characters that matter to the parsers over-represented.
pub(crate) fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            4 => any::<char>(),
            2 => proptest::char::range(' ', '~'),
            1 => proptest::sample::select(vec!['"', '\\', '\r', '\n', '\0', '\u{feff}', '-', ':', ';', '=']),
        ],
        0..=max,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// What `parse` must do with `text`, whatever it is.
fn check(text: &str) -> Result<(), TestCaseError> {
    let result = parse(text);
    if let Err(rejected) = &result {
        prop_assert!(
            !rejected.message.trim().is_empty(),
            "a rejection without a message for {text:?}"
        );
    }
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
        let rejected = result.as_ref().err();
        prop_assert_eq!(
            rejected.map(|r| (r.code, r.reference.clone())),
            Some((ErrorCode::BadFrame, None)),
            "not a JSON object: {:?}",
            text
        );
        return Ok(());
    };
    match map.get("id") {
        Some(Value::String(id)) if (1..=128).contains(&id.len()) => match &result {
            Ok(command) => prop_assert_eq!(&command.id, id),
            Err(rejected) => {
                prop_assert_eq!(rejected.reference.as_deref(), Some(id.as_str()));
                prop_assert!(
                    matches!(
                        rejected.code,
                        ErrorCode::UnknownCommand | ErrorCode::InvalidCommand
                    ),
                    "{rejected:?}"
                );
            }
        },
        _ => {
            let rejected = result.as_ref().err();
            prop_assert_eq!(
                rejected.map(|r| (r.code, r.reference.clone())),
                Some((ErrorCode::InvalidCommand, None)),
                "no usable id in {:?}",
                text
            );
        }
    }
    if let Ok(command) = &result {
        prop_assert_eq!(
            map.get("type").and_then(Value::as_str),
            Some(type_of(&command.kind))
        );
    }
    Ok(())
}

fn type_of(kind: &CommandKind) -> &'static str {
    match kind {
        CommandKind::RunStart { .. } => "run.start",
        CommandKind::RunCancel { .. } => "run.cancel",
        CommandKind::RunRespond { .. } => "run.respond",
        CommandKind::RunSubscribe { .. } => "run.subscribe",
        CommandKind::ThreadGet { .. } => "thread.get",
        CommandKind::ThreadsList { .. } => "threads.list",
        CommandKind::AgentsList => "agents.list",
        CommandKind::ToolsList => "tools.list",
        CommandKind::Ping => "ping",
    }
}

/// A usable command id: 1-128 bytes of any characters.
fn id() -> impl Strategy<Value = String> {
    (any::<char>(), text(40)).prop_map(|(first, rest)| {
        let mut id = String::from(first);
        for c in rest.chars() {
            if id.len() + c.len_utf8() > 128 {
                break;
            }
            id.push(c);
        }
        id
    })
}

fn kind() -> impl Strategy<Value = CommandKind> {
    let s = || text(24);
    prop_oneof![
        (s(), s(), proptest::option::of(s())).prop_map(|(agent, input, thread_id)| {
            CommandKind::RunStart {
                agent,
                input,
                thread_id,
            }
        }),
        s().prop_map(|run_id| CommandKind::RunCancel { run_id }),
        (s(), s(), s()).prop_map(|(run_id, request_id, value)| CommandKind::RunRespond {
            run_id,
            request_id,
            value: Value::String(value),
        }),
        (s(), any::<u64>())
            .prop_map(|(run_id, after_seq)| CommandKind::RunSubscribe { run_id, after_seq }),
        (s(), any::<u64>(), proptest::option::of(any::<u32>())).prop_map(
            |(thread_id, after_seq, limit)| CommandKind::ThreadGet {
                thread_id,
                after_seq,
                limit
            }
        ),
        proptest::option::of(any::<u32>()).prop_map(|limit| CommandKind::ThreadsList { limit }),
        Just(CommandKind::AgentsList),
        Just(CommandKind::ToolsList),
        Just(CommandKind::Ping),
    ]
}

/// The frame a client would send for `kind`. Fields at their default are
/// left out or written (`0`, `null`) as `explicit` says; `extra` are fields
/// the host must ignore.
fn encode(id: &str, kind: &CommandKind, explicit: bool, extra: &[(String, Value)]) -> Value {
    let mut map = Map::new();
    for (key, value) in extra {
        map.insert(key.clone(), value.clone());
    }
    map.insert("type".into(), type_of(kind).into());
    map.insert("id".into(), id.into());
    let mut put = |key: &str, value: Value, default: bool| {
        if explicit || !default {
            map.insert(key.into(), value);
        }
    };
    match kind {
        CommandKind::RunStart {
            agent,
            input,
            thread_id,
        } => {
            put("agent", agent.as_str().into(), false);
            put("input", input.as_str().into(), false);
            put("thread_id", thread_id.clone().into(), thread_id.is_none());
        }
        CommandKind::RunCancel { run_id } => put("run_id", run_id.as_str().into(), false),
        CommandKind::RunRespond {
            run_id,
            request_id,
            value,
        } => {
            put("run_id", run_id.as_str().into(), false);
            put("request_id", request_id.as_str().into(), false);
            put("value", value.clone(), false);
        }
        CommandKind::RunSubscribe { run_id, after_seq } => {
            put("run_id", run_id.as_str().into(), false);
            put("after_seq", (*after_seq).into(), *after_seq == 0);
        }
        CommandKind::ThreadGet {
            thread_id,
            after_seq,
            limit,
        } => {
            put("thread_id", thread_id.as_str().into(), false);
            put("after_seq", (*after_seq).into(), *after_seq == 0);
            put("limit", (*limit).into(), limit.is_none());
        }
        CommandKind::ThreadsList { limit } => put("limit", (*limit).into(), limit.is_none()),
        CommandKind::AgentsList | CommandKind::ToolsList | CommandKind::Ping => {}
    }
    Value::Object(map)
}

const FIELDS: &[&str] = &[
    "type",
    "id",
    "agent",
    "input",
    "thread_id",
    "run_id",
    "request_id",
    "value",
    "after_seq",
    "limit",
];

/// Any JSON value, a few levels deep.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text(16).prop_map(Value::String),
        proptest::sample::select(vec![
            "run.start",
            "run.cancel",
            "run.respond",
            "run.subscribe",
            "thread.get",
            "threads.list",
            "agents.list",
            "tools.list",
            "ping",
            "",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..5)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(FIELDS).prop_map(String::from),
        1 => text(8),
    ]
}

/// Fields whose names no command uses.
fn extra() -> impl Strategy<Value = Vec<(String, Value)>> {
    proptest::collection::vec(
        (
            text(8).prop_filter("not a field", |k| !FIELDS.contains(&k.as_str())),
            json(),
        ),
        0..3,
    )
}

/// Valid frames (one per command), for mutation.
fn samples() -> Vec<Vec<u8>> {
    [
        r#"{"type":"run.start","id":"c1","agent":"helper","input":"what is 2+3","thread_id":"thr_1"}"#,
        r#"{"type":"run.start","id":"c1","agent":"helper","input":"h\u00e9\"\\ \ud83d\ude00"}"#,
        r#"{"type":"run.cancel","id":"c2","run_id":"run_0192"}"#,
        r#"{"type":"run.subscribe","id":"c3","run_id":"run_0192","after_seq":18446744073709551615}"#,
        r#"{"type":"thread.get","id":"c4","thread_id":"thr_1","after_seq":3,"limit":100}"#,
        r#"{"type":"threads.list","id":"c5","limit":null}"#,
        r#"{"type":"agents.list","id":"c6"}"#,
        r#"{"type":"tools.list","id":"c7"}"#,
        r#"  {"id":"c8","type":"ping"}  "#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

const TOKENS: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"\\",
    b"\\u",
    b"\\ud800",
    b"null",
    b"0",
    b"-1",
    b"1e999",
    b"\"id\":",
    b"\"type\":",
    b"\"ping\"",
    b"\xff",
    b"\xf0\x9f",
    b"\0",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_text_is_never_a_panic(text in any::<String>()) {
        check(&text)?;
    }

    #[test]
    fn arbitrary_bytes_read_as_text_are_never_a_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        check(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn mutated_and_truncated_frames_follow_the_oracle(bytes in mutated(samples(), TOKENS)) {
        check(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn arbitrary_json_follows_the_oracle(value in json()) {
        check(&value.to_string())?;
    }

    #[test]
    fn a_valid_command_round_trips(
        id in id(),
        kind in kind(),
        explicit in any::<bool>(),
        extra in extra(),
        pretty in any::<bool>(),
    ) {
        let frame = encode(&id, &kind, explicit, &extra);
        let text = if pretty {
            serde_json::to_string_pretty(&frame)
        } else {
            serde_json::to_string(&frame)
        };
        let text = text.map_err(|e| TestCaseError::fail(e.to_string()))?;
        let command = parse(&text);
        prop_assert!(command.is_ok(), "{:?} rejected: {:?}", text, command);
        if let Ok(command) = command {
            prop_assert_eq!(command.id, id);
            prop_assert_eq!(command.kind, kind);
        }
        check(&text)?;
    }

    #[test]
    fn a_broken_command_with_an_id_is_rejected_with_that_id_as_ref(
        id in id(),
        kind in kind(),
        explicit in any::<bool>(),
        edits in proptest::collection::vec(
            (proptest::sample::select(FIELDS), proptest::option::of(json())),
            1..4,
        ),
    ) {
        let mut frame = encode(&id, &kind, explicit, &[]);
        if let Value::Object(map) = &mut frame {
            for (key, value) in &edits {
                if *key == "id" {
                    continue;
                }
                match value {
                    Some(value) => map.insert((*key).into(), value.clone()),
                    None => map.remove(*key),
                };
            }
        }
        let text = frame.to_string();
        if let Err(rejected) = parse(&text) {
            prop_assert_eq!(rejected.reference.as_deref(), Some(id.as_str()), "{}", text);
        }
        check(&text)?;
    }

    #[test]
    fn an_id_is_usable_only_as_a_string_of_1_to_128_bytes(
        id in prop_oneof![
            3 => text(140).prop_map(Value::String),
            1 => json(),
        ],
        kind in kind(),
    ) {
        let mut frame = encode("x", &kind, false, &[]);
        if let Value::Object(map) = &mut frame {
            map.insert("id".into(), id.clone());
        }
        let result = parse(&frame.to_string());
        match id.as_str() {
            Some(id) if (1..=128).contains(&id.len()) => {
                prop_assert_eq!(result.map(|c| c.id), Ok(id.to_string()));
            }
            _ => {
                let rejected = result.err();
                prop_assert_eq!(
                    rejected.map(|r| (r.code, r.reference)),
                    Some((ErrorCode::InvalidCommand, None))
                );
            }
        }
    }

    #[test]
    fn deep_nesting_is_a_bad_frame_not_a_stack_overflow(
        depth in prop_oneof![1usize..200, Just(127usize), Just(128), Just(129), 200usize..200_000],
        object in any::<bool>(),
    ) {
        let (open, close) = if object { ("{\"a\":", "}") } else { ("[", "]") };
        let text = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        check(&text)?;
        if depth > 128 {
            let rejected = parse(&text).err();
            prop_assert_eq!(
                rejected.map(|r| (r.code, r.reference)),
                Some((ErrorCode::BadFrame, None)),
                "depth {}",
                depth
            );
        }
    }
}
