//! {{name}}: a netra tool plugin written in Rust, with the `greet` tool.
//! Build: `netra plugin build .` ({{name}}.wasm, its manifest beside it);
//! call: `netra tool call {{name}}.wasm greet '{"name": "Ada"}'`.

use netra_sdk::{Context, Tool, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, JsonSchema)]
struct Args {
    /// Who to greet.
    name: String,
}

#[derive(Serialize)]
struct Greeting {
    greeting: String,
}

struct Greet;

impl Tool for Greet {
    const NAME: &'static str = "greet";
    const DESCRIPTION: &'static str = "Greets someone by name.";
    type Args = Args;
    type Output = Greeting;

    fn call(_ctx: &Context, args: Args) -> Result<Greeting, ToolError> {
        if args.name.trim().is_empty() {
            return Err(ToolError::invalid("name is empty"));
        }
        Ok(Greeting {
            greeting: format!("Hello, {}!", args.name),
        })
    }
}

netra_sdk::export_tools!(Greet);
