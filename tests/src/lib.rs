//! netra-tests, the one support crate of netra's tests (and of the
//! benches' HTTP calls):
//!
//! - [`http`]: the raw HTTP/1.1 client (std only; `xtask` uses it alone,
//!   without the `harness` feature);
//! - [`inproc`]: a server in the test's own process, every guest loaded once
//!   per test binary, and direct runtime helpers;
//! - [`serve`]: the real `netra serve` binary, spawned with a generated
//!   netra.toml or any arguments;
//! - [`ws`]: the WebSocket client; every frame it receives passes the JSON
//!   Schema check ([`check_frame`]) and decodes as the host's typed frame;
//! - [`mcp`]: a raw MCP client over Streamable HTTP (std only; the MCP bench
//!   uses it);
//! - [`openai`]: the scripted OpenAI-compatible server (std only; netra-llm's
//!   tests use it without the `harness` feature);
//! - [`stub`]: a tiny HTTP server with a fixed answer, and a closed port
//!   (std only; netra-server's unit tests use it);
//! - where the guest components built by this crate's build script are.

pub mod http;
pub mod mcp;
pub mod openai;
pub mod stub;

#[cfg(feature = "harness")]
mod harness;

#[cfg(feature = "harness")]
pub use harness::*;
