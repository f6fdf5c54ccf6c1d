//! netra's end-to-end tests through the real `netra` binary and a spawned
//! `netra serve`: one test binary (one link on 2 cores), a module per area.
//! The hostile-plugin battery is `tests/hostile`, a binary of its own.

mod ask;
mod cli;
mod clients;
mod deps;
mod hotload;
mod llm;
mod mcp;
mod polyglot;
mod scaffold;
