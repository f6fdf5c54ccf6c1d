//! The `netra` command: the host binary and its tools for plugin authors.
//!
//! `netra plugin inspect` and `netra tool call` go through exactly the runtime
//! the server uses, so what works here works when served.

mod admin;
mod cli;
mod client;
mod host;
mod mcp;
mod scaffold;
mod serve;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    init_tracing(args.log_json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(cli::run(args))
}

/// Logs go to stderr; `NETRA_LOG` (or `RUST_LOG`) sets the filter.
fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("NETRA_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "warn".to_string());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
