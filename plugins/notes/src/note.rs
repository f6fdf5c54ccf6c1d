//! What a note is, the key it is stored under, and the checks on its title and
//! text. Nothing here touches the host, so it is tested on the build machine.

use netra_sdk::ToolError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The longest title, in characters (Unicode scalar values).
pub const MAX_TITLE_CHARS: usize = 200;
/// The longest text, in UTF-8 bytes.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Every note's key starts with this, so `note_list` finds notes and nothing else.
pub const KEY_PREFIX: &str = "note:";
/// The longest slug, in UTF-8 bytes. With the prefix it stays under the host's
/// 512-byte key limit; a title of 200 Latin-script characters never reaches
/// it, so only long titles in other scripts are cut.
const MAX_SLUG_BYTES: usize = 400;

/// A saved note, as stored and as `note_get` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Note {
    /// The title, as given when the note was saved (without surrounding spaces).
    pub title: String,
    /// The text of the note.
    pub text: String,
    /// When the note was saved, in seconds since 1970-01-01T00:00:00Z.
    pub saved_at_unix: u64,
}

/// Checks a title and returns it without surrounding whitespace.
pub fn title(raw: &str) -> Result<&str, ToolError> {
    let title = raw.trim();
    if title.is_empty() {
        return Err(ToolError::invalid(
            "the title is empty; give the note a title",
        ));
    }
    let chars = title.chars().count();
    if chars > MAX_TITLE_CHARS {
        return Err(ToolError::invalid(format!(
            "the title has {chars} characters; the limit is {MAX_TITLE_CHARS}"
        )));
    }
    Ok(title)
}

/// Checks the text of a note.
pub fn text(text: &str) -> Result<(), ToolError> {
    if text.trim().is_empty() {
        return Err(ToolError::invalid(
            "the text is empty; there is nothing to save",
        ));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(ToolError::invalid(format!(
            "the text is {} bytes; the limit is {MAX_TEXT_BYTES} bytes (64 KiB)",
            text.len()
        )));
    }
    Ok(())
}

/// Checks a title and returns the key of the note it names.
///
/// Titles that differ only in case, spacing or punctuation name the same note:
/// "Shopping list" and "shopping-list!" share the key `note:shopping-list`.
pub fn key(raw_title: &str) -> Result<String, ToolError> {
    let slug = slug(title(raw_title)?);
    if slug.is_empty() {
        return Err(ToolError::invalid(
            "the title has no letters or digits; use a title with at least one",
        ));
    }
    Ok(format!("{KEY_PREFIX}{slug}"))
}

/// Lowercases `title` and joins its runs of letters and digits with single `-`;
/// everything else separates words.
///
/// Letters of every script are kept as they are (`Crème` gives `crème`, `日記`
/// stays `日記`), so a title in any language has a non-empty slug and titles in
/// different scripts do not collide.
fn slug(title: &str) -> String {
    let mut slug = String::with_capacity(title.len().min(MAX_SLUG_BYTES));
    // A separator is written only when another word follows, so the slug never
    // starts or ends with `-` and never has two in a row.
    let mut separate = false;
    for c in title.chars().flat_map(char::to_lowercase) {
        if !c.is_alphanumeric() {
            separate = true;
            continue;
        }
        let separator = usize::from(separate && !slug.is_empty());
        if slug.len() + separator + c.len_utf8() > MAX_SLUG_BYTES {
            break;
        }
        if separator == 1 {
            slug.push('-');
        }
        separate = false;
        slug.push(c);
    }
    slug
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_lowercase_and_hyphenate() {
        assert_eq!(slug("Shopping"), "shopping");
        assert_eq!(slug("  Shopping   List!! "), "shopping-list");
        assert_eq!(slug("a -- b__c"), "a-b-c");
        assert_eq!(slug("Q3 2025 / plans"), "q3-2025-plans");
    }

    #[test]
    fn slugs_keep_letters_of_every_script() {
        assert_eq!(slug("Crème Brûlée"), "crème-brûlée");
        assert_eq!(slug("日記 2025"), "日記-2025");
        // Letters are lowercased one by one, so a final sigma is `σ`, not `ς`:
        // the key only has to be stable, not well spelled.
        assert_eq!(slug("ΣΗΜΕΙΩΣΕΙΣ"), "σημειωσεισ");
    }

    #[test]
    fn slugs_stay_under_the_key_limit() {
        let long = "日".repeat(MAX_TITLE_CHARS);
        let slug = slug(&long);
        assert!(slug.len() <= MAX_SLUG_BYTES);
        assert!(KEY_PREFIX.len() + slug.len() <= 512);
        assert_eq!(slug, "日".repeat(MAX_SLUG_BYTES / 3));
        // The longest Latin-script title is never cut.
        let latin = "é".repeat(MAX_TITLE_CHARS);
        assert_eq!(super::slug(&latin), latin);
    }

    #[test]
    fn keys_name_the_same_note_for_equivalent_titles() {
        assert_eq!(key("Shopping"), Ok("note:shopping".into()));
        assert_eq!(key("shopping!"), Ok("note:shopping".into()));
        assert_eq!(key("Shopping list"), key("shopping-list"));
        assert_ne!(key("Shopping list"), key("Shopping"));
    }

    #[test]
    fn titles_are_trimmed_and_must_not_be_blank() {
        assert_eq!(title("  Shopping \n"), Ok("Shopping"));
        assert!(matches!(title(""), Err(ToolError::InvalidArguments(_))));
        assert!(matches!(title(" \t "), Err(ToolError::InvalidArguments(_))));
        assert!(matches!(key("!!!"), Err(ToolError::InvalidArguments(m)) if m.contains("letters")));
    }

    #[test]
    fn titles_are_limited_in_characters_not_bytes() {
        assert!(title(&"x".repeat(MAX_TITLE_CHARS)).is_ok());
        assert!(title(&"é".repeat(MAX_TITLE_CHARS)).is_ok());
        assert!(matches!(
            title(&"x".repeat(MAX_TITLE_CHARS + 1)),
            Err(ToolError::InvalidArguments(m)) if m.contains("201 characters")
        ));
    }

    #[test]
    fn texts_must_not_be_blank_or_over_64_kib() {
        assert_eq!(text("milk"), Ok(()));
        assert_eq!(text(&"x".repeat(MAX_TEXT_BYTES)), Ok(()));
        assert!(matches!(text(""), Err(ToolError::InvalidArguments(_))));
        assert!(matches!(text("\n\n"), Err(ToolError::InvalidArguments(_))));
        assert!(matches!(
            text(&"x".repeat(MAX_TEXT_BYTES + 1)),
            Err(ToolError::InvalidArguments(m)) if m.contains("65537 bytes")
        ));
    }

    #[test]
    fn notes_round_trip_through_json() {
        let note = Note {
            title: "Shopping".into(),
            text: "milk".into(),
            saved_at_unix: 1_700_000_000,
        };
        let json = netra_sdk::serde_json::to_string(&note).expect("encodes");
        assert_eq!(
            json,
            r#"{"title":"Shopping","text":"milk","saved_at_unix":1700000000}"#
        );
        assert_eq!(
            netra_sdk::serde_json::from_str::<Note>(&json).ok(),
            Some(note)
        );
    }
}
