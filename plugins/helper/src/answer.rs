//! Wording a tool's result, or its failure, as the helper's answer, and
//! cutting the answer into the pieces streamed to the user.

use netra_sdk::serde_json::Value;
use netra_sdk::{AgentError, ToolError};

use crate::route::Route;

/// The answer to a request no tool fits.
pub const HELP: &str = "I am a demo agent without a language model, so I understand a few \
kinds of request:\n\
- arithmetic, such as \"what is 2+3*4\" or \"(1+2)^3\";\n\
- the time, such as \"what time is it in Europe/Berlin\" or \"the date in UTC+05:30\";\n\
- text, such as \"slugify: Hello World\" or \"count the words: to be or not to be\";\n\
- notes, such as \"remember: buy milk\", \"list my notes\" or \"forget buy milk\".";

/// The answer to `route` given what its tool returned.
///
/// A tool that ran and failed is part of a normal conversation, so its error
/// becomes a friendly answer. A tool the agent may not call (`denied` or
/// `not-found`) means the operator has not set the helper up properly, which
/// fails the run as `unavailable`; a cancelled call cancels the run.
pub fn from_tool(route: &Route, result: Result<Value, ToolError>) -> Result<String, AgentError> {
    let tool = route.tool().unwrap_or("none");
    match result {
        Ok(value) => Ok(success(route, tool, &value)),
        Err(ToolError::Denied(message) | ToolError::NotFound(message)) => {
            Err(AgentError::unavailable(format!(
                "the `{tool}` tool is not available to this agent: {message}"
            )))
        }
        Err(ToolError::Cancelled) => Err(AgentError::Cancelled),
        Err(ToolError::InvalidArguments(message) | ToolError::Failed(message)) => {
            Ok(format!("{} {message}", failure(route)))
        }
        Err(ToolError::Timeout) => Ok(format!(
            "{} the {tool} tool took too long to answer.",
            failure(route)
        )),
    }
}

/// The start of the answer when the tool failed.
fn failure(route: &Route) -> &'static str {
    match route {
        Route::Calculate { .. } => "I couldn't calculate that:",
        Route::Now { .. } => "I couldn't tell the time:",
        Route::Slugify { .. } => "I couldn't make a slug of that:",
        Route::TextStats { .. } => "I couldn't count that text:",
        Route::NoteSave { .. } => "I couldn't save that note:",
        Route::NoteList => "I couldn't list your notes:",
        Route::NoteDelete { .. } => "I couldn't delete that note:",
        Route::Help => "I couldn't do that:",
    }
}

/// The answer when the tool succeeded. A result of an unexpected shape is
/// shown as it came rather than dropped.
fn success(route: &Route, tool: &str, value: &Value) -> String {
    let answer = match route {
        Route::Calculate { expression } => Some(format!("{expression} = {}", plain(value))),
        Route::Now { .. } => time(value),
        Route::Slugify { text } => slug(text, value),
        Route::TextStats { .. } => stats(value),
        Route::NoteSave { title, .. } => note_saved(title, value),
        Route::NoteList => note_list(value),
        Route::NoteDelete { title } => note_deleted(title, value),
        Route::Help => Some(HELP.to_owned()),
    };
    answer.unwrap_or_else(|| format!("The {tool} tool answered {value}."))
}

/// A JSON value as a person would write it: strings without their quotes.
fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Words the result of `now`.
fn time(value: &Value) -> Option<String> {
    let iso8601 = value.get("iso8601")?.as_str()?;
    let zone = value.get("timezone")?.as_str()?;
    let offset = value.get("utc_offset")?.as_str()?;
    let (date, rest) = iso8601.split_once('T')?;
    let clock = rest.get(..8)?;
    let day = weekday(date)?;
    let place = if zone == "UTC" {
        "UTC".to_owned()
    } else if zone.starts_with(['+', '-']) {
        format!("UTC{zone}")
    } else {
        format!("{zone} (UTC{offset})")
    };
    Some(format!("It is {clock} on {day}, {date}, in {place}."))
}

/// The day of the week of a `YYYY-MM-DD` date in the Gregorian calendar
/// (Sakamoto's method).
fn weekday(date: &str) -> Option<&'static str> {
    const DAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    const MONTH_OFFSETS: [i64; 12] = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4];
    let mut parts = date.split('-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: usize = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=31).contains(&day) {
        return None;
    }
    let offset = *MONTH_OFFSETS.get(month.checked_sub(1)?)?;
    let year = if month < 3 { year - 1 } else { year };
    let index = (year + year / 4 - year / 100 + year / 400 + offset + day).rem_euclid(7);
    DAYS.get(usize::try_from(index).ok()?).copied()
}

/// Words the result of `slugify`.
fn slug(text: &str, value: &Value) -> Option<String> {
    let slug = value.get("slug")?.as_str()?;
    Some(if slug.is_empty() {
        format!("\"{text}\" has no letters or digits to make a slug of.")
    } else {
        format!("The slug for \"{text}\" is \"{slug}\".")
    })
}

/// Words the result of `text_stats`.
fn stats(value: &Value) -> Option<String> {
    let count = |field: &str| value.get(field)?.as_u64();
    let (words, characters, lines, bytes) = (
        count("words")?,
        count("characters")?,
        count("lines")?,
        count("bytes")?,
    );
    Some(format!(
        "That text has {}, {}, {} and {}.",
        plural(words, "word"),
        plural(characters, "character"),
        plural(lines, "line"),
        plural(bytes, "byte"),
    ))
}

/// Words the result of `note_save`, with the title as the tool saved it.
fn note_saved(title: &str, value: &Value) -> Option<String> {
    let saved = value.get("saved")?.as_str().unwrap_or(title);
    Some(format!("Saved a note titled \"{saved}\"."))
}

/// Words the result of `note_delete`.
fn note_deleted(title: &str, value: &Value) -> Option<String> {
    Some(if value.get("deleted")?.as_bool()? {
        format!("Deleted the note \"{title}\".")
    } else {
        format!("There is no note titled \"{title}\".")
    })
}

/// Words the result of `note_list`.
fn note_list(value: &Value) -> Option<String> {
    let titles = value
        .get("notes")?
        .as_array()?
        .iter()
        .map(|note| note.get("title")?.as_str())
        .collect::<Option<Vec<&str>>>()?;
    Some(match titles.len() {
        0 => "You have no notes.".to_owned(),
        count => format!(
            "You have {}: {}.",
            plural(count as u64, "note"),
            titles.join(", ")
        ),
    })
}

/// `1 word`, `2 words`.
fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("{count} {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// Cuts `answer` into words, each with the whitespace that follows it, so that
/// the pieces streamed as message deltas add up to exactly the answer.
pub fn chunks(answer: &str) -> Vec<&str> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut after_space = false;
    for (at, c) in answer.char_indices() {
        if c.is_whitespace() {
            after_space = true;
        } else if after_space {
            chunks.push(&answer[start..at]);
            start = at;
            after_space = false;
        }
    }
    if start < answer.len() {
        chunks.push(&answer[start..]);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use netra_sdk::serde_json::json;

    use super::*;

    fn calculate(expression: &str) -> Route {
        Route::Calculate {
            expression: expression.to_owned(),
        }
    }

    fn now() -> Route {
        Route::Now { timezone: None }
    }

    #[test]
    fn calculations_read_as_equations() {
        assert_eq!(
            from_tool(&calculate("2+3*4"), Ok(json!(14))),
            Ok("2+3*4 = 14".to_owned())
        );
        assert_eq!(
            from_tool(&calculate("1/4"), Ok(json!(0.25))),
            Ok("1/4 = 0.25".to_owned())
        );
    }

    #[test]
    fn times_name_the_weekday_and_the_zone() {
        let result = |iso8601: &str, zone: &str, offset: &str| json!({"iso8601": iso8601, "unix_seconds": 0, "timezone": zone, "utc_offset": offset});
        assert_eq!(
            from_tool(
                &now(),
                Ok(result("2025-01-15T12:00:00+00:00", "UTC", "+00:00"))
            ),
            Ok("It is 12:00:00 on Wednesday, 2025-01-15, in UTC.".to_owned())
        );
        assert_eq!(
            from_tool(
                &now(),
                Ok(result(
                    "2025-07-15T14:00:00+02:00",
                    "Europe/Berlin",
                    "+02:00"
                ))
            ),
            Ok("It is 14:00:00 on Tuesday, 2025-07-15, in Europe/Berlin (UTC+02:00).".to_owned())
        );
        assert_eq!(
            from_tool(
                &now(),
                Ok(result("2025-01-15T17:30:00+05:30", "+05:30", "+05:30"))
            ),
            Ok("It is 17:30:00 on Wednesday, 2025-01-15, in UTC+05:30.".to_owned())
        );
    }

    #[test]
    fn weekdays() {
        assert_eq!(weekday("2000-02-29"), Some("Tuesday"));
        assert_eq!(weekday("2024-03-01"), Some("Friday"));
        assert_eq!(weekday("1970-01-01"), Some("Thursday"));
        assert_eq!(weekday("2025-12-31"), Some("Wednesday"));
        for bad in [
            "2025-13-01",
            "2025-00-01",
            "2025-01-32",
            "2025-01",
            "x-1-1",
            "",
        ] {
            assert_eq!(weekday(bad), None, "{bad}");
        }
    }

    #[test]
    fn slugs_and_stats() {
        let slugify = Route::Slugify {
            text: "Hello World!".into(),
        };
        assert_eq!(
            from_tool(&slugify, Ok(json!({"slug": "hello-world"}))),
            Ok("The slug for \"Hello World!\" is \"hello-world\".".to_owned())
        );
        let empty = Route::Slugify { text: "!!".into() };
        assert_eq!(
            from_tool(&empty, Ok(json!({"slug": ""}))),
            Ok("\"!!\" has no letters or digits to make a slug of.".to_owned())
        );
        let stats = Route::TextStats { text: "a".into() };
        assert_eq!(
            from_tool(
                &stats,
                Ok(json!({"words": 1, "characters": 1, "lines": 1, "bytes": 1}))
            ),
            Ok("That text has 1 word, 1 character, 1 line and 1 byte.".to_owned())
        );
        assert_eq!(
            from_tool(
                &stats,
                Ok(json!({"words": 0, "characters": 2, "lines": 0, "bytes": 3}))
            ),
            Ok("That text has 0 words, 2 characters, 0 lines and 3 bytes.".to_owned())
        );
    }

    #[test]
    fn unexpected_results_are_shown_as_they_came() {
        assert_eq!(
            from_tool(&now(), Ok(json!("noon"))),
            Ok("The now tool answered \"noon\".".to_owned())
        );
        let stats = Route::TextStats { text: "a".into() };
        assert_eq!(
            from_tool(&stats, Ok(json!({"words": 1}))),
            Ok("The text_stats tool answered {\"words\":1}.".to_owned())
        );
    }

    #[test]
    fn tool_failures_become_friendly_answers() {
        assert_eq!(
            from_tool(
                &calculate("1/0"),
                Err(ToolError::invalid("division by zero at position 1"))
            ),
            Ok("I couldn't calculate that: division by zero at position 1".to_owned())
        );
        assert_eq!(
            from_tool(&now(), Err(ToolError::failed("clock broke"))),
            Ok("I couldn't tell the time: clock broke".to_owned())
        );
        assert_eq!(
            from_tool(&calculate("2+2"), Err(ToolError::Timeout)),
            Ok("I couldn't calculate that: the calculate tool took too long to answer.".to_owned())
        );
    }

    #[test]
    fn a_missing_tool_makes_the_agent_unavailable() {
        assert_eq!(
            from_tool(&calculate("2+2"), Err(ToolError::denied("not granted"))),
            Err(AgentError::unavailable(
                "the `calculate` tool is not available to this agent: not granted"
            ))
        );
        assert!(matches!(
            from_tool(&now(), Err(ToolError::not_found("no `now`"))),
            Err(AgentError::Unavailable(message)) if message.contains("`now`")
        ));
        assert_eq!(
            from_tool(&now(), Err(ToolError::Cancelled)),
            Err(AgentError::Cancelled)
        );
    }

    #[test]
    fn notes_are_worded() {
        let save = Route::NoteSave {
            title: "buy milk".into(),
            text: "buy milk.".into(),
        };
        assert_eq!(
            from_tool(
                &save,
                Ok(json!({"saved": "buy milk", "key": "note:buy-milk"}))
            ),
            Ok("Saved a note titled \"buy milk\".".to_owned())
        );
        let list = |titles: &[&str]| {
            let notes: Vec<Value> = titles
                .iter()
                .map(|title| json!({"title": title, "saved_at_unix": 1}))
                .collect();
            from_tool(&Route::NoteList, Ok(json!({ "notes": notes })))
        };
        assert_eq!(list(&[]), Ok("You have no notes.".to_owned()));
        assert_eq!(list(&["a"]), Ok("You have 1 note: a.".to_owned()));
        assert_eq!(list(&["a", "b"]), Ok("You have 2 notes: a, b.".to_owned()));
        let delete = Route::NoteDelete {
            title: "buy milk".into(),
        };
        assert_eq!(
            from_tool(&delete, Ok(json!({"deleted": true}))),
            Ok("Deleted the note \"buy milk\".".to_owned())
        );
        assert_eq!(
            from_tool(&delete, Ok(json!({"deleted": false}))),
            Ok("There is no note titled \"buy milk\".".to_owned())
        );
        assert_eq!(
            from_tool(&save, Err(ToolError::invalid("the title is too long"))),
            Ok("I couldn't save that note: the title is too long".to_owned())
        );
        assert!(matches!(
            from_tool(&Route::NoteList, Err(ToolError::not_found("no `note_list`"))),
            Err(AgentError::Unavailable(message)) if message.contains("`note_list`")
        ));
        for answer in [
            list(&["a", "b"]).unwrap(),
            "Saved a note titled \"x y\".".to_owned(),
        ] {
            assert_eq!(chunks(&answer).concat(), answer);
        }
    }

    #[test]
    fn chunks_add_up_to_the_answer() {
        assert_eq!(chunks("2+3*4 = 14"), ["2+3*4 ", "= ", "14"]);
        assert_eq!(chunks("one"), ["one"]);
        assert!(chunks("").is_empty());
        for text in [
            HELP,
            "  lead and trail  ",
            "a\n\nb\tc",
            "Crème  brûlée 🙂 ok",
        ] {
            let pieces = chunks(text);
            assert!(pieces.len() > 1, "{text:?}");
            assert_eq!(pieces.concat(), text);
            assert!(pieces.iter().all(|piece| !piece.is_empty()));
        }
    }
}
