//! The multipart/form-data body (RFC 7578) of an upload.

use std::time::{SystemTime, UNIX_EPOCH};

/// One part of a multipart/form-data body.
pub(super) struct Part {
    /// The form field.
    pub(super) name: &'static str,
    pub(super) filename: String,
    pub(super) content_type: &'static str,
    pub(super) data: Vec<u8>,
}

/// A boundary that occurs in none of the parts: the first candidate, from
/// `seed`, that no part contains.
pub(super) fn boundary(seed: u64, parts: &[Part]) -> String {
    let mut state = seed;
    loop {
        let candidate = format!("netra-boundary-{state:016x}");
        let needle = candidate.as_bytes();
        if !parts.iter().any(|part| contains(&part.data, needle)) {
            return candidate;
        }
        // splitmix64's step: the next candidate shares nothing with this one.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        state = (state ^ (state >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        state = (state ^ (state >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        state ^= state >> 31;
    }
}

/// Some bits that differ from one run to the next, for the first boundary.
pub(super) fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ u64::from(std::process::id()).rotate_left(32)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// The multipart/form-data body (RFC 7578) of `parts`, delimited by `boundary`.
pub(super) fn multipart(boundary: &str, parts: &[Part]) -> Vec<u8> {
    let size: usize = parts.iter().map(|p| p.data.len() + 256).sum();
    let mut body = Vec::with_capacity(size);
    for part in parts {
        // A quote or line break would end the header early.
        let filename: String = part
            .filename
            .chars()
            .map(|c| match c {
                '"' | '\\' | '\r' | '\n' => '_',
                c => c,
            })
            .collect();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\n\
                 Content-Disposition: form-data; name=\"{}\"; filename=\"{filename}\"\r\n\
                 Content-Type: {}\r\n\r\n",
                part.name, part.content_type
            )
            .as_bytes(),
        );
        body.extend_from_slice(&part.data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(name: &'static str, filename: &str, data: &[u8]) -> Part {
        Part {
            name,
            filename: filename.to_string(),
            content_type: if name == "wasm" {
                "application/wasm"
            } else {
                "application/toml"
            },
            data: data.to_vec(),
        }
    }

    #[test]
    fn multipart_frames_each_part_with_headers_and_crlfs() {
        let parts = [
            part("wasm", "helper.wasm", b"\0asm\x0d\x00\x01\x00"),
            part("manifest", "plugin.toml", b"name = \"helper\"\n"),
        ];
        let body = multipart("B0UND", &parts);
        let want = b"--B0UND\r\n\
Content-Disposition: form-data; name=\"wasm\"; filename=\"helper.wasm\"\r\n\
Content-Type: application/wasm\r\n\
\r\n\
\0asm\x0d\x00\x01\x00\r\n\
--B0UND\r\n\
Content-Disposition: form-data; name=\"manifest\"; filename=\"plugin.toml\"\r\n\
Content-Type: application/toml\r\n\
\r\n\
name = \"helper\"\n\r\n\
--B0UND--\r\n";
        assert_eq!(
            String::from_utf8_lossy(&body),
            String::from_utf8_lossy(want)
        );
    }

    #[test]
    fn multipart_without_a_manifest_has_one_part() {
        let body = multipart("b", &[part("wasm", "x.wasm", b"abc")]);
        let text = String::from_utf8_lossy(&body);
        assert_eq!(text.matches("--b\r\n").count(), 1);
        assert!(text.ends_with("\r\nabc\r\n--b--\r\n"), "{text:?}");
        assert!(!text.contains("manifest"));
    }

    #[test]
    fn filenames_cannot_break_the_header() {
        let body = multipart("b", &[part("wasm", "a\"b\r\nc.wasm", b"")]);
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("filename=\"a_b__c.wasm\"\r\n"), "{text:?}");
    }

    #[test]
    fn the_boundary_is_not_in_the_data() {
        let seed = 42;
        let first = boundary(seed, &[part("wasm", "x", b"plain")]);
        assert_eq!(first, "netra-boundary-000000000000002a");
        // Data that holds the first candidate gets another one.
        let tricky = [
            part("wasm", "x", format!("..{first}..").as_bytes()),
            part("manifest", "y", b"z"),
        ];
        let second = boundary(seed, &tricky);
        assert_ne!(second, first);
        assert!(tricky.iter().all(|p| !contains(&p.data, second.as_bytes())));
        // RFC 2046: at most 70 characters.
        assert!(second.len() <= 70);
        // It is also absent from the whole body except as delimiters.
        let body = multipart(&second, &tricky);
        let text = String::from_utf8_lossy(&body);
        assert_eq!(text.matches(second.as_str()).count(), 3);
    }
}
