//! Two text tools: `text_stats` counts words, characters, lines and bytes, and
//! `slugify` turns a title into a URL slug.

mod slug;
mod stats;

use netra_sdk::{Context, Tool, ToolError, schema_of};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Arguments of `text_stats` and `slugify`.
#[derive(Deserialize, JsonSchema)]
struct TextArgs {
    /// The text to work on.
    text: String,
}

struct TextStats;

impl Tool for TextStats {
    const NAME: &'static str = "text_stats";
    const DESCRIPTION: &'static str = "Counts the words, characters (Unicode scalar values), \
         lines and UTF-8 bytes of a text.";
    type Args = TextArgs;
    type Output = stats::Stats;

    fn call(_ctx: &Context, args: TextArgs) -> Result<stats::Stats, ToolError> {
        Ok(stats::Stats::of(&args.text))
    }

    fn output_schema() -> Option<String> {
        Some(schema_of::<stats::Stats>())
    }
}

/// The result of `slugify`.
#[derive(Serialize, JsonSchema)]
struct Slug {
    /// Lowercase ASCII letters and digits separated by single hyphens; empty when
    /// the text has no letters or digits.
    slug: String,
}

struct Slugify;

impl Tool for Slugify {
    const NAME: &'static str = "slugify";
    const DESCRIPTION: &'static str = "Turns a text into a URL slug: lowercase ASCII letters and \
         digits joined by hyphens, with accents removed (\"Crème Brûlée!\" becomes \
         \"creme-brulee\").";
    type Args = TextArgs;
    type Output = Slug;

    fn call(_ctx: &Context, args: TextArgs) -> Result<Slug, ToolError> {
        Ok(Slug {
            slug: slug::slugify(&args.text),
        })
    }

    fn output_schema() -> Option<String> {
        Some(schema_of::<Slug>())
    }
}

netra_sdk::export_tools!(TextStats, Slugify);
