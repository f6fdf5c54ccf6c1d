//! Counting the parts of a text.

use schemars::JsonSchema;
use serde::Serialize;

/// The counts `text_stats` returns.
#[derive(Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Stats {
    /// Runs of non-whitespace characters.
    pub words: usize,
    /// Unicode scalar values (not grapheme clusters: `é` written as `e` plus a
    /// combining accent counts 2).
    pub characters: usize,
    /// Lines, as `str::lines` counts them: a final line break does not start a
    /// new line, and the empty text has none.
    pub lines: usize,
    /// The length in UTF-8 bytes.
    pub bytes: usize,
}

impl Stats {
    /// Counts the parts of `text`.
    pub fn of(text: &str) -> Self {
        Self {
            words: text.split_whitespace().count(),
            characters: text.chars().count(),
            lines: text.lines().count(),
            bytes: text.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(words: usize, characters: usize, lines: usize, bytes: usize) -> Stats {
        Stats {
            words,
            characters,
            lines,
            bytes,
        }
    }

    #[test]
    fn empty_text_has_nothing() {
        assert_eq!(Stats::of(""), stats(0, 0, 0, 0));
    }

    #[test]
    fn counts_ascii() {
        assert_eq!(Stats::of("hello world\nbye\n"), stats(3, 16, 2, 16));
        assert_eq!(Stats::of("  spaced   out  "), stats(2, 16, 1, 16));
        assert_eq!(Stats::of("a\r\nb"), stats(2, 4, 2, 4));
    }

    #[test]
    fn characters_are_scalar_values_not_bytes() {
        assert_eq!(Stats::of("héllo wörld"), stats(2, 11, 1, 13));
        assert_eq!(Stats::of("🦀"), stats(1, 1, 1, 4));
        assert_eq!(Stats::of("e\u{301}"), stats(1, 2, 1, 3));
    }
}
