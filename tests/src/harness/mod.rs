//! Everything but the HTTP client: it needs the host's crates and the
//! guest components, so it sits behind the `harness` feature (on by default).

mod guests;
pub mod inproc;
mod schema;
pub mod serve;
pub mod ws;

pub use guests::{guest, guest_bytes, guests_dir, polyglot_guest};
pub use schema::{check_frame, violations};

/// Runs `work` on a current-thread tokio runtime of its own (for the
/// blocking tests that drive a spawned server).
pub fn block_on<F: std::future::Future>(work: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio")
        .block_on(work)
}
