//! `netra mcp`: the host's tools and agents for one local MCP client over
//! stdio. The same sandbox, grants, budgets, store and hot-loading as
//! `netra serve`, and no listening socket. stdout carries only MCP messages;
//! everything else goes to stderr.

use std::path::PathBuf;

use crate::host::Host;
use anyhow::Context;
use netra_config::Value;
use netra_server::mcp::Handler;
use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;

/// Arguments of `netra mcp`.
#[derive(clap::Args, Debug)]
pub struct McpArgs {
    /// The configuration file [default: $NETRA_CONFIG, else ./netra.toml if
    /// it exists, else built-in defaults, which expose every tool and agent].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of plugin components (*.wasm) to serve (`plugins.dir`).
    #[arg(long)]
    pub plugins: Option<PathBuf>,
    /// Where netra keeps its state (`server.data_dir`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The user every call is made for: their kv, threads and runs.
    #[arg(long, default_value = "local")]
    pub user: String,
}

/// Serves MCP on stdin/stdout until the client closes it.
pub async fn mcp(args: McpArgs) -> anyhow::Result<()> {
    let mut overrides = Vec::new();
    let path = |p: &PathBuf| -> anyhow::Result<Value> {
        let absolute = std::path::absolute(p)
            .with_context(|| format!("cannot resolve the path {}", p.display()))?;
        Ok(Value::String(absolute.display().to_string()))
    };
    if let Some(dir) = &args.plugins {
        overrides.push(("plugins.dir".to_string(), path(dir)?));
    }
    if let Some(dir) = &args.data_dir {
        overrides.push(("server.data_dir".to_string(), path(dir)?));
    }
    let config = netra_config::load_with(args.config.as_deref(), overrides)
        .map_err(|problems| anyhow::anyhow!("{problems}").context("invalid configuration"))?;
    let host = Host::build(config).await?;
    for line in &host.notes {
        eprintln!("{line}");
    }
    eprintln!(
        "netra mcp: serving {} to one client on stdio as user {:?}",
        host.mcp.exposed().join(", "),
        args.user
    );
    let shutdown = CancellationToken::new();
    host.start_background(&shutdown)?;
    let handler = Handler::local(host.mcp.clone(), &args.user);
    let service = handler
        .serve(rmcp::transport::stdio())
        .await
        .context("the MCP client did not initialize")?;
    let ended = service.waiting().await;
    shutdown.cancel();
    ended.context("the MCP session failed")?;
    Ok(())
}
