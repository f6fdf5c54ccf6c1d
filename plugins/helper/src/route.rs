//! Choosing a tool for a request, and the arguments to call it with.
//!
//! The helper has no language model, so it reads a request with fixed rules,
//! tried in this order:
//!
//! 0. **Notes.** A request that starts with a note command: `remember`,
//!    `remember:`, `note:` or `save a note:` followed by the text to save;
//!    `forget` or `delete note` followed by a title; or one of a few fixed
//!    phrases such as `my notes` or `list notes`. Notes come first because the
//!    text to remember may itself hold anything; they match only at the start
//!    of the request (or as the whole request), so other requests are
//!    unaffected.
//! 1. **Text.** A keyword such as `slugify` or `count` outside the text the
//!    request is about. That text follows a colon (`slugify: Hello World`) or
//!    sits inside quotes (`count the words in "to be or not"`); without either
//!    it is the whole request. Text comes first because the text may itself
//!    hold anything, arithmetic and time words included.
//! 2. **Time.** A word such as `time`, `date` or `clock`, or the phrase
//!    `what day`. A zone is taken from an IANA name (`in Europe/Berlin`), a
//!    `UTC`/`GMT` form (`UTC+05:30`) or an offset after `in` (`in -08:00`).
//!    Time comes before arithmetic because `UTC+05:30` looks like a sum.
//! 3. **Arithmetic.** The longest stretch of digits, `+ - * / % ^`, `.`,
//!    parentheses and spaces that has an operator between two operands.
//! 4. Otherwise no tool: the helper explains what it can do.

use netra_sdk::serde_json::{Value, json};

/// What the helper does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Evaluate an arithmetic expression with `calculate`.
    Calculate { expression: String },
    /// Tell the time with `now`, in UTC when no zone was named.
    Now { timezone: Option<String> },
    /// Turn a text into a URL slug with `slugify`.
    Slugify { text: String },
    /// Count the words and characters of a text with `text_stats`.
    TextStats { text: String },
    /// Save a note with `note_save`, titled with the text's first words.
    NoteSave { title: String, text: String },
    /// List the saved notes with `note_list`.
    NoteList,
    /// Delete the note with this title with `note_delete`.
    NoteDelete { title: String },
    /// No tool fits: answer with help.
    Help,
}

impl Route {
    /// The tool this route calls; `None` for [`Route::Help`].
    pub fn tool(&self) -> Option<&'static str> {
        match self {
            Self::Calculate { .. } => Some("calculate"),
            Self::Now { .. } => Some("now"),
            Self::Slugify { .. } => Some("slugify"),
            Self::TextStats { .. } => Some("text_stats"),
            Self::NoteSave { .. } => Some("note_save"),
            Self::NoteList => Some("note_list"),
            Self::NoteDelete { .. } => Some("note_delete"),
            Self::Help => None,
        }
    }

    /// The tool to call and its JSON arguments; `None` for [`Route::Help`].
    pub fn tool_call(&self) -> Option<(&'static str, Value)> {
        let arguments = match self {
            Self::Calculate { expression } => json!({ "expression": expression }),
            Self::Now {
                timezone: Some(zone),
            } => json!({ "timezone": zone }),
            Self::Now { timezone: None } => json!({}),
            Self::Slugify { text } | Self::TextStats { text } => json!({ "text": text }),
            Self::NoteSave { title, text } => json!({ "title": title, "text": text }),
            Self::NoteList => json!({}),
            Self::NoteDelete { title } => json!({ "title": title }),
            Self::Help => return None,
        };
        Some((self.tool()?, arguments))
    }

    /// One sentence on what the helper is about to do, for the user to see as
    /// its thinking.
    pub fn plan(&self) -> String {
        match self {
            Self::Calculate { expression } => {
                format!("Evaluating `{expression}` with the calculate tool.")
            }
            Self::Now {
                timezone: Some(zone),
            } => {
                format!("Looking up the current time in {zone} with the now tool.")
            }
            Self::Now { timezone: None } => {
                "Looking up the current time in UTC with the now tool.".to_owned()
            }
            Self::Slugify { .. } => {
                "Turning the text into a URL slug with the slugify tool.".to_owned()
            }
            Self::TextStats { .. } => {
                "Counting the words and characters of the text with the text_stats tool.".to_owned()
            }
            Self::NoteSave { title, .. } => {
                format!("Saving a note titled \"{title}\" with the note_save tool.")
            }
            Self::NoteList => "Listing your notes with the note_list tool.".to_owned(),
            Self::NoteDelete { title } => {
                format!("Deleting the note titled \"{title}\" with the note_delete tool.")
            }
            Self::Help => "No tool fits this request, so I will explain what I can do.".to_owned(),
        }
    }
}

/// Words that ask for a slug.
const SLUG_WORDS: &[&str] = &["slug", "slugs", "slugify"];
/// Words that ask for counts.
const STATS_WORDS: &[&str] = &[
    "count",
    "counts",
    "words",
    "characters",
    "chars",
    "stats",
    "statistics",
];
/// Words that ask for the time or date.
const TIME_WORDS: &[&str] = &["time", "date", "clock", "today", "timezone"];
/// Words that, followed by `day`, ask for the date (`what day`, `which day`).
const DAY_QUESTIONS: &[&str] = &["what", "which"];

/// Chooses what to do with `input`.
pub fn route(input: &str) -> Route {
    if let Some(route) = note(input) {
        return route;
    }
    let subject = Subject::of(input);
    let command = words(&subject.command);
    let asks = |list: &[&str]| command.iter().any(|word| list.contains(&word.as_str()));
    if asks(SLUG_WORDS) {
        return Route::Slugify { text: subject.text };
    }
    if asks(STATS_WORDS) {
        return Route::TextStats { text: subject.text };
    }
    let all = words(input);
    let asks_time = all.iter().any(|word| TIME_WORDS.contains(&word.as_str()))
        || all
            .windows(2)
            .any(|pair| DAY_QUESTIONS.contains(&pair[0].as_str()) && pair[1] == "day");
    if asks_time {
        return Route::Now {
            timezone: timezone(input),
        };
    }
    match expression(input) {
        Some(expression) => Route::Calculate { expression },
        None => Route::Help,
    }
}

/// Commands that save the text after them as a note, and whether the text
/// may follow a space (`remember buy milk`) or only a colon (`note: ...`).
const SAVE_COMMANDS: &[(&str, bool)] =
    &[("save a note", false), ("remember", true), ("note", false)];
/// Commands that delete the note whose title follows them, longest first.
const DELETE_COMMANDS: &[&str] = &[
    "delete the note",
    "delete note",
    "forget the note",
    "forget note",
    "forget",
];
/// Whole requests that ask for the list of notes, as their words.
const LIST_PHRASES: &[&[&str]] = &[
    &["my", "notes"],
    &["list", "notes"],
    &["list", "my", "notes"],
    &["list", "all", "notes"],
    &["list", "all", "my", "notes"],
    &["what", "are", "my", "notes"],
    &["show", "notes"],
    &["show", "my", "notes"],
    &["show", "me", "my", "notes"],
];
/// How many words of a note's text make its title.
const TITLE_WORDS: usize = 6;

/// The note route for `input`, if it clearly asks to save, list or delete a
/// note.
fn note(input: &str) -> Option<Route> {
    let input = input.trim();
    for &(command, after_space) in SAVE_COMMANDS {
        if let Some(text) = after_command(input, command, after_space)
            && let title = note_title(text)
            && !title.is_empty()
        {
            return Some(Route::NoteSave {
                title,
                text: text.to_owned(),
            });
        }
    }
    for command in DELETE_COMMANDS {
        if let Some(rest) = after_command(input, command, true)
            && let title = trim_punctuation(rest)
            && !title.is_empty()
        {
            return Some(Route::NoteDelete {
                title: title.to_owned(),
            });
        }
    }
    let all = words(input);
    LIST_PHRASES
        .iter()
        .any(|phrase| all.iter().map(String::as_str).eq(phrase.iter().copied()))
        .then_some(Route::NoteList)
}

/// What follows `command` at the start of `input` (ignoring case) and a colon,
/// or, when `after_space`, whitespace; trimmed, and `None` when empty.
fn after_command<'a>(input: &'a str, command: &str, after_space: bool) -> Option<&'a str> {
    let head = input.get(..command.len())?;
    if !head.eq_ignore_ascii_case(command) {
        return None;
    }
    let rest = &input[command.len()..];
    let rest = match rest.trim_start().strip_prefix(':') {
        Some(rest) => rest,
        None if after_space && rest.starts_with(char::is_whitespace) => rest,
        None => return None,
    };
    Some(rest.trim()).filter(|rest| !rest.is_empty())
}

/// A note's title: the first [`TITLE_WORDS`] words of its text, without
/// punctuation at either end.
fn note_title(text: &str) -> String {
    let first: Vec<&str> = text.split_whitespace().take(TITLE_WORDS).collect();
    trim_punctuation(&first.join(" ")).to_owned()
}

/// `text` without the characters other than letters and digits at its ends.
fn trim_punctuation(text: &str) -> &str {
    text.trim_matches(|c: char| !c.is_alphanumeric())
}

/// The lowercase runs of letters and digits in `text`.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// A request split into what it asks (`command`) and the text it is about.
#[derive(Debug, PartialEq, Eq)]
struct Subject {
    command: String,
    text: String,
}

impl Subject {
    /// Splits at the first colon that is not part of a time such as `12:30`,
    /// else around the first quoted text; else the whole request is both.
    fn of(input: &str) -> Self {
        if let Some((command, rest)) = split_at_colon(input)
            && let rest = rest.trim()
            && !rest.is_empty()
        {
            return Self {
                command: command.to_owned(),
                text: unquote(rest).unwrap_or(rest).to_owned(),
            };
        }
        if let Some((before, quoted, after)) = find_quoted(input)
            && !quoted.is_empty()
        {
            return Self {
                command: format!("{before} {after}"),
                text: quoted.to_owned(),
            };
        }
        Self {
            command: input.to_owned(),
            text: input.trim().to_owned(),
        }
    }
}

/// Splits `input` around its first colon that does not stand between two
/// digits (as in `12:30` or `UTC+05:30`).
fn split_at_colon(input: &str) -> Option<(&str, &str)> {
    input.char_indices().find_map(|(at, c)| {
        if c != ':' {
            return None;
        }
        let (before, after) = (&input[..at], &input[at + 1..]);
        let digit_before = before
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_digit());
        let digit_after = after.chars().next().is_some_and(|c| c.is_ascii_digit());
        (!(digit_before && digit_after)).then_some((before, after))
    })
}

/// Pairs of quotes, opening and closing. Single quotes are also apostrophes,
/// so they only count at the edges of words (see [`find_quoted`]).
const QUOTES: &[(char, char, bool)] = &[
    ('"', '"', false),
    ('\u{201c}', '\u{201d}', false),
    ('\u{ab}', '\u{bb}', false),
    ('\'', '\'', true),
    ('\u{2018}', '\u{2019}', true),
];

/// Finds the first quoted text: returns what comes before the opening quote,
/// the text inside, and what follows the closing one.
fn find_quoted(input: &str) -> Option<(&str, &str, &str)> {
    let word_char = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    for (open_at, open) in input.char_indices() {
        let Some(&(_, close, single)) = QUOTES.iter().find(|(o, _, _)| *o == open) else {
            continue;
        };
        let before = &input[..open_at];
        if single && word_char(before.chars().next_back()) {
            continue;
        }
        let inside_at = open_at + open.len_utf8();
        let inside = &input[inside_at..];
        let found = inside.char_indices().find(|&(at, c)| {
            c == close && !(single && word_char(inside[at + c.len_utf8()..].chars().next()))
        });
        if let Some((close_at, _)) = found {
            let after = &inside[close_at + close.len_utf8()..];
            return Some((before, &inside[..close_at], after));
        }
    }
    None
}

/// The text inside `text` when all of it is one quoted text.
fn unquote(text: &str) -> Option<&str> {
    let (before, inside, after) = find_quoted(text)?;
    (before.is_empty() && after.is_empty()).then_some(inside)
}

/// The time zone a time request names, as the `now` tool takes it: an IANA
/// name, `UTC`, or an offset `±HH:MM`.
fn timezone(input: &str) -> Option<String> {
    let tokens: Vec<&str> = input
        .split_whitespace()
        .map(|token| token.trim_matches(|c: char| "?!.,;:\"'()[]".contains(c)))
        .collect();
    tokens.iter().enumerate().find_map(|(at, &token)| {
        let after_in = at > 0 && tokens[at - 1].eq_ignore_ascii_case("in");
        utc_form(token)
            .or_else(|| iana_name(token))
            .or_else(|| after_in.then(|| offset(token)).flatten())
    })
}

/// `UTC` or `GMT`, alone or followed by an offset: `UTC`, `GMT+1`, `UTC-08:00`.
fn utc_form(token: &str) -> Option<String> {
    let prefix = token.get(..3)?;
    if !(prefix.eq_ignore_ascii_case("utc") || prefix.eq_ignore_ascii_case("gmt")) {
        return None;
    }
    match &token[3..] {
        "" => Some("UTC".to_owned()),
        rest => offset(rest),
    }
}

/// An offset `±H`, `±HH`, `±HMM`, `±HHMM`, `±H:MM` or `±HH:MM`, written the way
/// `now` reads it (`±HH:MM`). The hours are not range-checked here: `now`
/// rejects an impossible offset with a message worth showing the user.
fn offset(token: &str) -> Option<String> {
    let sign = token.chars().next().filter(|c| *c == '+' || *c == '-')?;
    let rest = &token[1..];
    let (hours, minutes) = match rest.split_once(':') {
        Some((hours, minutes)) if minutes.len() == 2 => (hours, minutes),
        Some(_) => return None,
        None if rest.len() > 2 => rest.split_at_checked(rest.len() - 2)?,
        None => (rest, "00"),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(hours) && hours.len() <= 2 && digits(minutes)) {
        return None;
    }
    Some(format!("{sign}{hours:0>2}:{minutes}"))
}

/// An IANA time zone name such as `Europe/Berlin` or `America/Argentina/Salta`:
/// parts of letters, digits, `_`, `-` and `+` joined by `/`, the first starting
/// with a letter. Whether the zone exists is for `now` to say.
fn iana_name(token: &str) -> Option<String> {
    let mut parts = token.split('/');
    let first = parts.next()?;
    let part_ok = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-+".contains(c))
    };
    let shaped = first.starts_with(|c: char| c.is_ascii_alphabetic())
        && part_ok(first)
        && token.contains('/')
        && parts.all(part_ok);
    shaped.then(|| token.to_owned())
}

/// The characters an arithmetic expression is made of.
fn in_expression(c: char) -> bool {
    c.is_ascii_digit() || "+-*/%^.()".contains(c) || c.is_whitespace()
}

/// The arithmetic expression in `input`: the longest stretch of expression
/// characters that, once tidied, has an operator between two operands.
fn expression(input: &str) -> Option<String> {
    let mut best: Option<&str> = None;
    for stretch in input.split(|c: char| !in_expression(c)) {
        let candidate = tidy(stretch);
        let longer = best.is_none_or(|best| candidate.chars().count() > best.chars().count());
        if longer && has_binary_operator(candidate) {
            best = Some(candidate);
        }
    }
    best.map(str::to_owned)
}

/// Trims what cannot start or end an expression: spaces, dangling operators,
/// a sentence's full stop, and parentheses without their partner.
fn tidy(mut text: &str) -> &str {
    loop {
        let before = text;
        text = text.trim();
        let opens = text.matches('(').count();
        let closes = text.matches(')').count();
        if let Some(rest) = text.strip_suffix(['+', '-', '*', '/', '%', '^', '(', '.']) {
            text = rest;
        } else if let Some(rest) = text.strip_prefix(['*', '/', '%', '^', ')']) {
            text = rest;
        } else if closes > opens && text.ends_with(')') {
            text = &text[..text.len() - 1];
        } else if opens > closes && text.starts_with('(') {
            text = &text[1..];
        }
        if text == before {
            return text;
        }
    }
}

/// Whether `text` has an operator with an operand on each side, as `2+3` does
/// and `-3` or `+05` do not.
fn has_binary_operator(text: &str) -> bool {
    let mut previous = None;
    for (at, c) in text.char_indices() {
        if c.is_whitespace() {
            continue;
        }
        let operand_before =
            previous.is_some_and(|p: char| p.is_ascii_digit() || p == '.' || p == ')');
        if "+-*/%^".contains(c)
            && operand_before
            && text[at..].contains(|c: char| c.is_ascii_digit())
        {
            return true;
        }
        previous = Some(c);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calculate(expression: &str) -> Route {
        Route::Calculate {
            expression: expression.to_owned(),
        }
    }

    fn now(zone: Option<&str>) -> Route {
        Route::Now {
            timezone: zone.map(str::to_owned),
        }
    }

    fn slugify(text: &str) -> Route {
        Route::Slugify {
            text: text.to_owned(),
        }
    }

    fn stats(text: &str) -> Route {
        Route::TextStats {
            text: text.to_owned(),
        }
    }

    #[test]
    fn arithmetic_is_extracted_from_the_sentence() {
        assert_eq!(route("what is 2+3*4"), calculate("2+3*4"));
        assert_eq!(route("(1+2)^3?"), calculate("(1+2)^3"));
        assert_eq!(route("2 + 2"), calculate("2 + 2"));
        assert_eq!(route("Compute 10 / 4 please."), calculate("10 / 4"));
        assert_eq!(route("What's 7 % 3?"), calculate("7 % 3"));
        assert_eq!(route("what is -3 * -2"), calculate("-3 * -2"));
        assert_eq!(route("1.5+.5"), calculate("1.5+.5"));
        assert_eq!(route("what is 2+2."), calculate("2+2"));
    }

    #[test]
    fn arithmetic_is_tidied_at_the_edges() {
        assert_eq!(route("(what is 2+2)"), calculate("2+2"));
        assert_eq!(route("is 5*5 - right?"), calculate("5*5"));
        assert_eq!(route("(2+3)*4)"), calculate("(2+3)*4"));
        assert_eq!(route("((2+3)*4"), calculate("(2+3)*4"));
    }

    #[test]
    fn the_longest_expression_wins() {
        assert_eq!(
            route("I am 30, what is 12 * (3 + 4)?"),
            calculate("12 * (3 + 4)")
        );
    }

    #[test]
    fn an_unbalanced_expression_is_still_passed_on_for_the_tool_to_explain() {
        assert_eq!(route("what is 1 / (2 + 3"), calculate("1 / (2 + 3"));
        assert_eq!(route("what is 1/0"), calculate("1/0"));
    }

    #[test]
    fn numbers_without_an_operator_between_them_are_not_arithmetic() {
        assert_eq!(route("what is 5"), Route::Help);
        assert_eq!(route("-3"), Route::Help);
        assert_eq!(route("50% off"), Route::Help);
        assert_eq!(route("a well-known fact"), Route::Help);
        assert_eq!(route("5 times 3"), Route::Help);
    }

    #[test]
    fn time_questions_and_their_zones() {
        assert_eq!(route("what time is it?"), now(None));
        assert_eq!(route("What's the date today"), now(None));
        assert_eq!(route("what day is it"), now(None));
        assert_eq!(route("show me a clock"), now(None));
        assert_eq!(
            route("what time is it in Europe/Berlin?"),
            now(Some("Europe/Berlin"))
        );
        assert_eq!(
            route("time in America/Argentina/Buenos_Aires"),
            now(Some("America/Argentina/Buenos_Aires"))
        );
        assert_eq!(route("time in UTC"), now(Some("UTC")));
        assert_eq!(route("what's the time, utc"), now(Some("UTC")));
        assert_eq!(route("time at UTC+05:30"), now(Some("+05:30")));
        assert_eq!(route("date in GMT-8"), now(Some("-08:00")));
        assert_eq!(route("time UTC+0530"), now(Some("+05:30")));
        assert_eq!(route("time in +5:45"), now(Some("+05:45")));
        assert_eq!(route("time in Etc/GMT+5"), now(Some("Etc/GMT+5")));
    }

    #[test]
    fn unknown_zones_are_left_for_the_tool_and_non_zones_are_ignored() {
        assert_eq!(route("time in Mars/Olympus"), now(Some("Mars/Olympus")));
        assert_eq!(route("time in UTC+99"), now(Some("+99:00")));
        assert_eq!(route("what time is it in London"), now(None));
        assert_eq!(route("time +05:30"), now(None));
        assert_eq!(route("time in UTC+5:3"), now(None));
    }

    #[test]
    fn time_beats_arithmetic() {
        assert_eq!(route("what time is it in UTC+05:30"), now(Some("+05:30")));
        assert_eq!(route("what is the date 12:30+1"), now(None));
    }

    #[test]
    fn text_comes_after_a_colon_or_inside_quotes() {
        assert_eq!(route("slugify: Hello World!"), slugify("Hello World!"));
        assert_eq!(route("slug:Crème Brûlée"), slugify("Crème Brûlée"));
        assert_eq!(
            route("make a slug of \"My First Post\" please"),
            slugify("My First Post")
        );
        assert_eq!(
            route("count the words: to be or not to be"),
            stats("to be or not to be")
        );
        assert_eq!(
            route("how many characters in 'it's here'"),
            stats("it's here")
        );
        assert_eq!(route("Word stats: \u{201c}quoted\u{201d}"), stats("quoted"));
        assert_eq!(route("count words: \"a b\""), stats("a b"));
    }

    #[test]
    fn without_a_colon_or_quotes_the_text_is_the_whole_input() {
        assert_eq!(
            route("  how many words are in this sentence "),
            stats("how many words are in this sentence")
        );
        assert_eq!(route("slugify Hello World"), slugify("slugify Hello World"));
        assert_eq!(route("count the words:"), stats("count the words:"));
        assert_eq!(route("count \"\""), stats("count \"\""));
    }

    #[test]
    fn keywords_inside_the_text_do_not_count() {
        assert_eq!(route("count the words: my slug"), stats("my slug"));
        assert_eq!(route("slugify: word count 2+2"), slugify("word count 2+2"));
        assert_eq!(route("what is \"count\" 2+2"), calculate("2+2"));
    }

    #[test]
    fn text_beats_time_and_arithmetic() {
        assert_eq!(route("count: what time is it"), stats("what time is it"));
        assert_eq!(route("stats: 1+1"), stats("1+1"));
        assert_eq!(route("slugify: 12:30 at noon"), slugify("12:30 at noon"));
    }

    #[test]
    fn everything_else_is_help() {
        assert_eq!(route(""), Route::Help);
        assert_eq!(route("   "), Route::Help);
        assert_eq!(route("hello there"), Route::Help);
        assert_eq!(route("what is the meaning of life"), Route::Help);
    }

    #[test]
    fn tool_calls_name_the_tool_and_its_arguments() {
        assert_eq!(
            calculate("2+3").tool_call(),
            Some(("calculate", json!({"expression": "2+3"})))
        );
        assert_eq!(now(None).tool_call(), Some(("now", json!({}))));
        assert_eq!(
            now(Some("UTC")).tool_call(),
            Some(("now", json!({"timezone": "UTC"})))
        );
        assert_eq!(
            slugify("A b").tool_call(),
            Some(("slugify", json!({"text": "A b"})))
        );
        assert_eq!(
            stats("A b").tool_call(),
            Some(("text_stats", json!({"text": "A b"})))
        );
        assert_eq!(Route::Help.tool_call(), None);
    }

    #[test]
    fn offsets_are_normalised() {
        assert_eq!(offset("+5").as_deref(), Some("+05:00"));
        assert_eq!(offset("-08").as_deref(), Some("-08:00"));
        assert_eq!(offset("+530").as_deref(), Some("+05:30"));
        assert_eq!(offset("+0530").as_deref(), Some("+05:30"));
        assert_eq!(offset("+05:30").as_deref(), Some("+05:30"));
        for bad in [
            "5",
            "+",
            "+a",
            "+123456",
            "+05:3",
            "+:30",
            "++5",
            "+05:30:00",
        ] {
            assert_eq!(offset(bad), None, "{bad}");
        }
    }

    fn save(title: &str, text: &str) -> Route {
        Route::NoteSave {
            title: title.to_owned(),
            text: text.to_owned(),
        }
    }

    fn delete(title: &str) -> Route {
        Route::NoteDelete {
            title: title.to_owned(),
        }
    }

    #[test]
    fn note_commands_save_with_the_first_words_as_title() {
        assert_eq!(route("remember buy milk"), save("buy milk", "buy milk"));
        assert_eq!(route("Remember: buy milk."), save("buy milk", "buy milk."));
        assert_eq!(
            route("note: the wifi password is on the fridge door"),
            save(
                "the wifi password is on the",
                "the wifi password is on the fridge door"
            )
        );
        assert_eq!(
            route("  save a note: \"Call mum\" on Sunday!  "),
            save("Call mum\" on Sunday", "\"Call mum\" on Sunday!")
        );
        assert_eq!(route("SAVE A NOTE : idea"), save("idea", "idea"));
    }

    #[test]
    fn notes_beat_text_time_and_arithmetic() {
        assert_eq!(
            route("remember what is 2+3"),
            save("what is 2+3", "what is 2+3")
        );
        assert_eq!(
            route("note: slugify: the time in UTC"),
            save("slugify: the time in UTC", "slugify: the time in UTC")
        );
    }

    #[test]
    fn note_lists_are_fixed_phrases() {
        for input in [
            "my notes",
            "list notes",
            "list my notes",
            "What are my notes?",
            "show my notes",
            "  Show me my notes.  ",
        ] {
            assert_eq!(route(input), Route::NoteList, "{input}");
        }
    }

    #[test]
    fn note_deletes_take_the_rest_as_title() {
        assert_eq!(route("forget buy milk"), delete("buy milk"));
        assert_eq!(route("Forget: \"buy milk\"."), delete("buy milk"));
        assert_eq!(route("delete note buy milk"), delete("buy milk"));
        assert_eq!(route("delete the note buy milk"), delete("buy milk"));
    }

    #[test]
    fn almost_note_commands_are_not_notes() {
        assert_eq!(route("remember"), Route::Help);
        assert_eq!(route("remember:"), Route::Help);
        assert_eq!(route("remember: ?!"), Route::Help);
        assert_eq!(route("forget"), Route::Help);
        assert_eq!(route("forget ..."), Route::Help);
        assert_eq!(route("remembering is hard"), Route::Help);
        assert_eq!(route("forgetful me"), Route::Help);
        assert_eq!(route("note 2+2"), calculate("2+2"));
        assert_eq!(route("notes: 1+1"), calculate("1+1"));
        assert_eq!(route("I remember 6*7"), calculate("6*7"));
        assert_eq!(route("my notes on 1+1"), calculate("1+1"));
        assert_eq!(route("delete notes"), Route::Help);
        assert_eq!(
            route("count the words in my notes"),
            stats("count the words in my notes")
        );
    }

    #[test]
    fn the_documented_examples_still_route_as_before() {
        assert_eq!(route("what is 2+3*4"), calculate("2+3*4"));
        assert_eq!(route("what is (1+2)^3"), calculate("(1+2)^3"));
        assert_eq!(route("what is 6*7"), calculate("6*7"));
        assert_eq!(route("what is 1+1"), calculate("1+1"));
        assert_eq!(route("what is 17+3"), calculate("17+3"));
        assert_eq!(route("(1+2)^3"), calculate("(1+2)^3"));
        assert_eq!(route("slugify: Hello World"), slugify("Hello World"));
        assert_eq!(
            route("what time is it in Europe/Berlin?"),
            now(Some("Europe/Berlin"))
        );
        assert_eq!(route("the date in UTC+05:30"), now(Some("+05:30")));
        assert_eq!(
            route("count the words: to be or not to be"),
            stats("to be or not to be")
        );
        assert_eq!(
            route("count the words in \"to be or not\""),
            stats("to be or not")
        );
    }

    #[test]
    fn note_tool_calls() {
        assert_eq!(
            save("a", "a b").tool_call(),
            Some(("note_save", json!({"title": "a", "text": "a b"})))
        );
        assert_eq!(Route::NoteList.tool_call(), Some(("note_list", json!({}))));
        assert_eq!(
            delete("a").tool_call(),
            Some(("note_delete", json!({"title": "a"})))
        );
    }

    #[test]
    fn multibyte_text_does_not_break_the_splitting() {
        assert_eq!(route("slugify: «Ça va»"), slugify("Ça va"));
        assert_eq!(route("é: ü"), Route::Help);
        assert_eq!(route("🙂 2×3"), Route::Help);
        assert_eq!(route("'"), Route::Help);
        assert_eq!(route("\u{201c}"), Route::Help);
    }
}
