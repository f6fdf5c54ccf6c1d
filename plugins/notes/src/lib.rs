//! Four tools that keep short notes for the user: `note_save`, `note_get`,
//! `note_list` and `note_delete`.
//!
//! Notes live in the host's key-value store under `note:<slug of the title>`.
//! The host scopes that store to the calling user and this plugin, so each user
//! sees only their own notes and the plugin needs no user id of its own.

mod note;

use std::time::{SystemTime, UNIX_EPOCH};

use netra_sdk::{Context, Tool, ToolError, kv, schema_of};
use note::Note;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Arguments of `note_save`.
#[derive(Deserialize, JsonSchema)]
struct SaveArgs {
    /// The note's title, at most 200 characters; case and punctuation do not matter.
    title: String,
    /// The text of the note, at most 64 KiB.
    text: String,
}

/// The result of `note_save`.
#[derive(Serialize, JsonSchema)]
struct Saved {
    /// The title the note was saved under.
    saved: String,
    /// The storage key that holds the note (`note:` and the slug of the title).
    key: String,
}

struct NoteSave;

impl Tool for NoteSave {
    const NAME: &'static str = "note_save";
    const DESCRIPTION: &'static str = "Saves a note with a title and a text for the user, \
         to be read back later, also in other conversations. Saving under a title that \
         already exists (ignoring case and punctuation) replaces that note.";
    type Args = SaveArgs;
    type Output = Saved;

    fn call(_ctx: &Context, args: SaveArgs) -> Result<Saved, ToolError> {
        let title = note::title(&args.title)?;
        note::text(&args.text)?;
        let key = note::key(title)?;
        let note = Note {
            title: title.to_owned(),
            text: args.text,
            saved_at_unix: now_unix()?,
        };
        kv::set_json(&key, &note)?;
        Ok(Saved {
            saved: note.title,
            key,
        })
    }

    fn output_schema() -> Option<String> {
        Some(schema_of::<Saved>())
    }
}

/// Arguments of `note_get` and `note_delete`.
#[derive(Deserialize, JsonSchema)]
struct TitleArgs {
    /// The note's title; case and punctuation do not matter.
    title: String,
}

struct NoteGet;

impl Tool for NoteGet {
    const NAME: &'static str = "note_get";
    const DESCRIPTION: &'static str = "Returns the user's note with this title (ignoring case \
         and punctuation): its title, text and when it was saved. Fails with not-found when \
         there is no such note; note_list shows the titles that exist.";
    type Args = TitleArgs;
    type Output = Note;

    fn call(_ctx: &Context, args: TitleArgs) -> Result<Note, ToolError> {
        let key = note::key(&args.title)?;
        kv::get_json(&key)?.ok_or_else(|| {
            ToolError::not_found(format!(
                "there is no note titled {:?}; note_list shows the saved titles",
                args.title.trim()
            ))
        })
    }

    fn output_schema() -> Option<String> {
        Some(schema_of::<Note>())
    }
}

/// Arguments of `note_list`: none.
#[derive(Deserialize, JsonSchema)]
struct ListArgs {}

/// One entry of `note_list`.
#[derive(Serialize, JsonSchema)]
struct Summary {
    /// The note's title.
    title: String,
    /// When the note was saved, in seconds since 1970-01-01T00:00:00Z.
    saved_at_unix: u64,
}

/// The result of `note_list`.
#[derive(Serialize, JsonSchema)]
struct Notes {
    /// The user's notes, sorted by title (ignoring case).
    notes: Vec<Summary>,
}

struct NoteList;

impl Tool for NoteList {
    const NAME: &'static str = "note_list";
    const DESCRIPTION: &'static str = "Lists the titles of the user's saved notes, sorted \
         alphabetically, with when each was saved. Use note_get to read a note's text.";
    type Args = ListArgs;
    type Output = Notes;

    fn call(_ctx: &Context, _args: ListArgs) -> Result<Notes, ToolError> {
        let mut notes = Vec::new();
        for key in kv::list_keys(note::KEY_PREFIX)? {
            // A key listed a moment ago may be gone by now (another call deleted
            // it); that note is simply not listed.
            if let Some(note) = kv::get_json::<Note>(&key)? {
                notes.push(Summary {
                    title: note.title,
                    saved_at_unix: note.saved_at_unix,
                });
            }
        }
        notes.sort_by_cached_key(|summary| (summary.title.to_lowercase(), summary.title.clone()));
        Ok(Notes { notes })
    }

    fn output_schema() -> Option<String> {
        Some(schema_of::<Notes>())
    }
}

/// The result of `note_delete`.
#[derive(Serialize, JsonSchema)]
struct Deleted {
    /// Whether a note with that title existed (and is now gone).
    deleted: bool,
}

struct NoteDelete;

impl Tool for NoteDelete {
    const NAME: &'static str = "note_delete";
    const DESCRIPTION: &'static str = "Deletes the user's note with this title (ignoring case \
         and punctuation). Returns deleted: false when there was no such note.";
    type Args = TitleArgs;
    type Output = Deleted;

    fn call(_ctx: &Context, args: TitleArgs) -> Result<Deleted, ToolError> {
        let key = note::key(&args.title)?;
        Ok(Deleted {
            deleted: kv::delete(&key)?,
        })
    }

    fn output_schema() -> Option<String> {
        Some(schema_of::<Deleted>())
    }
}

netra_sdk::export_tools!(NoteSave, NoteGet, NoteList, NoteDelete);

/// The current time in whole seconds since the Unix epoch.
fn now_unix() -> Result<u64, ToolError> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .map_err(|_| ToolError::failed("the host clock reads a time before 1970"))
}
