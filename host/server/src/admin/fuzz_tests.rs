//! Property tests over arbitrary inputs (issue 15, "Fuzzing") for the admin
//! upload's multipart reader ([`upload_parts`]), with the boundary taken
//! from a `Content-Type` header as the route does.
//!
//! A body built from arbitrary parts (any names, file names, contents that
//! contain CRLFs, dashes and pieces of the boundary) and a random boundary
//! must read back as a model of the route says: the last `wasm` and
//! `manifest` parts, or the error for the first unexpected part, a manifest
//! that is not UTF-8, a missing `wasm`. Arbitrary, mutated and truncated
//! bodies must end in a value, never a panic.

use futures_util::FutureExt;
use proptest::prelude::*;

use super::upload_parts;
use crate::catalog::AdminError;
use crate::protocol::fuzz_tests::{config, mutated, text};

type Parts = (Vec<u8>, Option<String>);

/// Runs [`upload_parts`]; its body is one chunk already in memory, so it
/// never waits.
fn read(body: &[u8], boundary: &str) -> Result<Result<Parts, AdminError>, TestCaseError> {
    upload_parts(bytes::Bytes::copy_from_slice(body), boundary.to_string())
        .now_or_never()
        .ok_or_else(|| TestCaseError::fail("upload_parts waited on a body already in memory"))
}

/// Reading `body` with `boundary` ends in parts or an error with a message.
fn check(body: &[u8], boundary: &str) -> Result<(), TestCaseError> {
    if let Err(err) = read(body, boundary)? {
        prop_assert!(!err.to_string().trim().is_empty(), "{err:?}");
    }
    Ok(())
}

#[derive(Clone, Debug)]
struct Part {
    name: String,
    file_name: Option<String>,
    content_type: Option<&'static str>,
    content: Vec<u8>,
}

/// RFC 2046 `bchars`: 1 to 70 of them, not ending in a space.
fn boundary() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9A-Za-z'()+_,./:=? -]{0,69}[0-9A-Za-z'()+_,./:=?-]",
        // What clients send: many dashes and a random tail.
        "-{2,30}[0-9a-f]{8,24}",
    ]
}

/// Text that can stand in a quoted header parameter: no quote, backslash,
/// or control character.
fn header_text() -> impl Strategy<Value = String> {
    text(20).prop_map(|s| {
        s.chars()
            .filter(|c| !matches!(c, '"' | '\\') && !c.is_control())
            .collect()
    })
}

/// A part's content: arbitrary bytes with CRLFs, dashes and prefixes of
/// the boundary mixed in.
fn content(boundary: String) -> impl Strategy<Value = Vec<u8>> {
    let prefix = (1..=boundary.len()).prop_map(move |n| {
        let mut piece = b"\r\n--".to_vec();
        piece.extend_from_slice(&boundary.as_bytes()[..n - 1]);
        piece
    });
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::collection::vec(any::<u8>(), 0..32),
            1 => proptest::sample::select(vec![
                b"\r\n".to_vec(),
                b"\r".to_vec(),
                b"\n".to_vec(),
                b"--".to_vec(),
                b"\r\n\r\n".to_vec(),
                b"\0asm\x01\0\0\0".to_vec(),
            ]),
            1 => prefix,
        ],
        0..8,
    )
    .prop_map(|pieces| pieces.concat())
}

fn part(boundary: String) -> impl Strategy<Value = Part> {
    (
        prop_oneof![
            2 => Just("wasm".to_string()),
            2 => Just("manifest".to_string()),
            1 => header_text(),
        ],
        proptest::option::of(header_text()),
        proptest::option::of(proptest::sample::select(vec![
            "application/wasm",
            "application/octet-stream",
            "text/plain; charset=utf-8",
        ])),
        prop_oneof![
            3 => content(boundary),
            1 => "[a-z =\"\n]{0,40}".prop_map(String::into_bytes),
        ],
    )
        .prop_map(|(name, file_name, content_type, content)| Part {
            name,
            file_name,
            content_type,
            content,
        })
}

fn encode(boundary: &str, parts: &[Part]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", part.name);
        if let Some(file_name) = &part.file_name {
            disposition.push_str(&format!("; filename=\"{file_name}\""));
        }
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"\r\n");
        if let Some(content_type) = part.content_type {
            body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&part.content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

/// What the route must make of `parts`: the parts, or a piece of the error.
fn model(parts: &[Part]) -> Result<Parts, String> {
    let (mut wasm, mut manifest) = (None, None);
    for part in parts {
        match part.name.as_str() {
            "wasm" => wasm = Some(part.content.clone()),
            "manifest" => match String::from_utf8(part.content.clone()) {
                Ok(text) => manifest = Some(text),
                Err(_) => return Err("the manifest is not UTF-8 text".into()),
            },
            other => return Err(format!("unexpected part {other:?}")),
        }
    }
    match wasm {
        Some(wasm) => Ok((wasm, manifest)),
        None => Err("the `wasm` part is missing".into()),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A boundary and parts whose contents do not contain its delimiter.
fn form() -> impl Strategy<Value = (String, Vec<Part>)> {
    boundary()
        .prop_flat_map(|boundary| {
            let parts = proptest::collection::vec(part(boundary.clone()), 0..5);
            (Just(boundary), parts)
        })
        .prop_filter("a content holds the delimiter", |(boundary, parts)| {
            let delimiter = format!("\r\n--{boundary}");
            parts
                .iter()
                .all(|p| !contains(&p.content, delimiter.as_bytes()))
        })
}

/// Valid bodies, for mutation (boundary `XyZ-boundary-42`).
fn samples() -> Vec<Vec<u8>> {
    let part = |name: &str, content: &[u8]| Part {
        name: name.into(),
        file_name: Some(format!("{name}.bin")),
        content_type: Some("application/octet-stream"),
        content: content.to_vec(),
    };
    vec![
        encode(SAMPLE_BOUNDARY, &[part("wasm", b"\0asm\x0d\0\x01\0")]),
        encode(
            SAMPLE_BOUNDARY,
            &[
                part("wasm", b"\0asm\x0d\0\x01\0\r\n--XyZ"),
                part("manifest", b"name = \"helper\"\nversion = \"0.1.0\"\n"),
            ],
        ),
        encode(
            SAMPLE_BOUNDARY,
            &[part("manifest", b""), part("other", b"x")],
        ),
    ]
}

const SAMPLE_BOUNDARY: &str = "XyZ-boundary-42";

const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b"--",
    b"--XyZ-boundary-42",
    b"--XyZ-boundary-42--",
    b"\r\n--XyZ-boundary-42\r\n",
    b"Content-Disposition: form-data; name=\"wasm\"\r\n",
    b"name=",
    b"\"",
    b";",
    b"Content-Type: ",
    b"\xff\xfe",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parts_read_back_as_they_were_written((boundary, parts) in form()) {
        // The boundary as the route gets it: from the Content-Type header.
        let header = format!("multipart/form-data; boundary=\"{boundary}\"");
        let parsed = multer::parse_boundary(&header);
        prop_assert_eq!(parsed.as_deref().ok(), Some(boundary.as_str()), "{}", header);
        let body = encode(&boundary, &parts);
        let got = read(&body, &boundary)?;
        match (model(&parts), got) {
            (Ok(want), Ok(got)) => prop_assert_eq!(got, want),
            (Err(want), Err(got)) => {
                let got = got.to_string();
                prop_assert!(got.contains(&want), "{:?} instead of {:?}", got, want);
            }
            (want, got) => {
                prop_assert!(false, "{:?} instead of {:?}", got, want);
            }
        }
    }

    #[test]
    fn arbitrary_bodies_are_never_a_panic(
        boundary in prop_oneof![boundary(), text(16)],
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        check(&body, &boundary)?;
    }

    #[test]
    fn mutated_and_truncated_bodies_are_never_a_panic(body in mutated(samples(), TOKENS)) {
        check(&body, SAMPLE_BOUNDARY)?;
    }

    #[test]
    fn bodies_of_boundary_lines_and_headers_are_never_a_panic(
        pieces in proptest::collection::vec(
            prop_oneof![
                3 => proptest::sample::select(TOKENS).prop_map(<[u8]>::to_vec),
                1 => proptest::collection::vec(any::<u8>(), 0..16),
            ],
            0..24,
        ),
    ) {
        check(&pieces.concat(), SAMPLE_BOUNDARY)?;
    }

    #[test]
    fn arbitrary_content_types_are_never_a_panic(header in text(80)) {
        // The route's first step, on the client's header.
        let _ = multer::parse_boundary(&header);
        let _ = multer::parse_boundary(format!("multipart/form-data; boundary={header}"));
    }
}
