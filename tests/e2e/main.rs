//! netra's end-to-end tests: the real runtime (and, in later modules, the real
//! server) with real compiled guest components. One test binary with modules
//! links once instead of once per file.

mod architecture;
mod auth;
mod durable;
mod runtime;
mod ws;
