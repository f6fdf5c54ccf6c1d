//! An incremental parser of `text/event-stream` (the WHATWG server-sent
//! events format), fed with the body's bytes as they arrive.
//!
//! Only `data` fields matter to chat completions: every event's data lines
//! are joined with `\n` and handed out when the blank line that ends the
//! event arrives. Comments (`:` lines, used as keep-alives) and the other
//! fields (`event`, `id`, `retry`) are skipped. Lines end with `\n`, `\r\n`
//! or `\r`, and any of them may be split across two reads.

/// What can make a stream unreadable.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SseError {
    /// A line or an event grew past the limit: a broken or hostile server.
    TooLong(usize),
    /// A line is not UTF-8.
    NotUtf8,
}

impl std::fmt::Display for SseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SseError::TooLong(limit) => write!(f, "an event is longer than {limit} bytes"),
            SseError::NotUtf8 => f.write_str("a line is not valid UTF-8"),
        }
    }
}

pub(crate) struct SseParser {
    /// The current line so far, without its end.
    line: Vec<u8>,
    /// The current event's data so far (each line followed by `\n`).
    data: String,
    has_data: bool,
    /// The last read ended in `\r`; a `\n` starting the next one belongs to it.
    skip_lf: bool,
    /// Nothing was read yet (a UTF-8 byte order mark may start the stream).
    at_start: bool,
    limit: usize,
}

impl SseParser {
    /// A parser that refuses lines and events longer than `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            line: Vec::new(),
            data: String::new(),
            has_data: false,
            skip_lf: false,
            at_start: true,
            limit,
        }
    }

    /// Consumes `bytes` and appends the data of every event they complete.
    pub(crate) fn feed(
        &mut self,
        mut bytes: &[u8],
        events: &mut Vec<String>,
    ) -> Result<(), SseError> {
        if self.skip_lf && !bytes.is_empty() {
            self.skip_lf = false;
            if bytes[0] == b'\n' {
                bytes = &bytes[1..];
            }
        }
        while let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.push(&bytes[..end])?;
            self.end_line(events)?;
            let crlf = bytes[end] == b'\r';
            bytes = &bytes[end + 1..];
            if crlf {
                match bytes.first() {
                    Some(b'\n') => bytes = &bytes[1..],
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
        }
        self.push(bytes)
    }

    /// The body ended: a last line or event that was not terminated is still
    /// handed out (the standard drops it, but servers that close right after
    /// `data: [DONE]` without the blank line are common enough).
    pub(crate) fn finish(&mut self, events: &mut Vec<String>) -> Result<(), SseError> {
        if !self.line.is_empty() {
            self.end_line(events)?;
        }
        self.dispatch(events);
        Ok(())
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.line.len() + bytes.len() > self.limit {
            return Err(SseError::TooLong(self.limit));
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn end_line(&mut self, events: &mut Vec<String>) -> Result<(), SseError> {
        let mut line = std::mem::take(&mut self.line);
        if std::mem::take(&mut self.at_start) && line.starts_with(b"\xEF\xBB\xBF") {
            line.drain(..3);
        }
        if line.is_empty() {
            self.dispatch(events);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let text = std::str::from_utf8(&line).map_err(|_| SseError::NotUtf8)?;
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (text, ""),
        };
        if field == "data" {
            if self.data.len() + value.len() + 1 > self.limit {
                return Err(SseError::TooLong(self.limit));
            }
            self.data.push_str(value);
            self.data.push('\n');
            self.has_data = true;
        }
        // Keep the line's allocation for the next one.
        line.clear();
        self.line = line;
        Ok(())
    }

    fn dispatch(&mut self, events: &mut Vec<String>) {
        if std::mem::take(&mut self.has_data) {
            let mut data = std::mem::take(&mut self.data);
            data.pop();
            events.push(data);
        }
        self.data.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(input: &[u8], piece: usize) -> Vec<String> {
        let mut parser = SseParser::new(1 << 20);
        let mut events = Vec::new();
        for chunk in input.chunks(piece.max(1)) {
            parser.feed(chunk, &mut events).unwrap();
        }
        parser.finish(&mut events).unwrap();
        events
    }

    #[test]
    fn same_events_whatever_the_split() {
        let input = "\u{feff}: keep-alive\r\ndata: {\"a\":1}\r\n\r\nevent: x\nid: 7\ndata: é€😀\n\ndata: one\rdata:two\r\rretry: 5\ndata: [DONE]\n\n";
        let expected = vec!["{\"a\":1}", "é€😀", "one\ntwo", "[DONE]"];
        for piece in 1..input.len() + 1 {
            assert_eq!(
                parse_in_pieces(input.as_bytes(), piece),
                expected,
                "piece {piece}"
            );
        }
    }

    #[test]
    fn every_two_way_split() {
        let input = b"data: a\r\n\r\ndata: b\r\rdata: c\n\n";
        for at in 0..=input.len() {
            let mut parser = SseParser::new(1024);
            let mut events = Vec::new();
            parser.feed(&input[..at], &mut events).unwrap();
            parser.feed(&input[at..], &mut events).unwrap();
            parser.finish(&mut events).unwrap();
            assert_eq!(events, vec!["a", "b", "c"], "split at {at}");
        }
    }

    #[test]
    fn events_come_out_as_soon_as_they_end() {
        let mut parser = SseParser::new(1024);
        let mut events = Vec::new();
        parser
            .feed(b"data: first\n\ndata: sec", &mut events)
            .unwrap();
        assert_eq!(events, vec!["first"]);
        parser.feed(b"ond\n", &mut events).unwrap();
        assert_eq!(events, vec!["first"]);
        parser.feed(b"\n", &mut events).unwrap();
        assert_eq!(events, vec!["first", "second"]);
    }

    #[test]
    fn comments_and_empty_events_are_skipped() {
        assert_eq!(
            parse_in_pieces(b": ping\n\n\n\nevent: only\n\ndata\n\n", 3),
            vec![""]
        );
    }

    #[test]
    fn an_unterminated_last_event_is_kept() {
        assert_eq!(
            parse_in_pieces(b"data: x\n\ndata: [DONE]", 4),
            vec!["x", "[DONE]"]
        );
    }

    #[test]
    fn limits_and_encoding() {
        let mut parser = SseParser::new(8);
        let mut events = Vec::new();
        assert_eq!(
            parser.feed(b"data: 0123456789", &mut events),
            Err(SseError::TooLong(8))
        );
        let mut parser = SseParser::new(64);
        assert_eq!(
            parser.feed(b"data: \xff\n", &mut events),
            Err(SseError::NotUtf8)
        );
    }
}

#[cfg(test)]
mod fuzz_tests;
