//! netra's end-to-end tests through the real `netra` binary and a spawned
//! `netra serve`: one test binary (one link on 2 cores), a module per area.

mod support;

mod cli;
mod clients;
mod deps;
mod hostile;
mod hotload;
mod llm;
mod polyglot;
mod scaffold;
