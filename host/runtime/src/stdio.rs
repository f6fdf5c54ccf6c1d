//! Guest stdout and stderr, sent to tracing line by line and tagged with the
//! plugin. The last lines of stderr are kept so a trap can carry the guest's
//! own message (a Rust panic prints there before it aborts).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line forwarded to tracing; longer lines are split.
const MAX_LINE: usize = 4096;
/// How much of stderr is kept for error messages.
const TAIL_BYTES: usize = 2048;

/// Which of the guest's streams.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// One guest stream of one store.
#[derive(Clone)]
pub(crate) struct GuestOutput {
    inner: Arc<Output>,
}

struct Output {
    plugin: Arc<str>,
    stream: Stream,
    state: Mutex<OutputState>,
    rate: Arc<LogRate>,
}

/// How much one store's guest may log per second, shared by its stdout and
/// stderr. Lines over it are dropped and counted; the count is logged once,
/// when the store is dropped, so a flood costs the host one line.
pub(crate) struct LogRate {
    plugin: Arc<str>,
    max_lines: u32,
    max_bytes: usize,
    state: Mutex<RateState>,
}

struct RateState {
    window: Instant,
    lines: u32,
    bytes: usize,
    dropped_lines: u64,
    dropped_bytes: u64,
}

impl LogRate {
    pub(crate) fn new(plugin: Arc<str>, max_lines: u32, max_bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            plugin,
            max_lines,
            max_bytes,
            state: Mutex::new(RateState {
                window: Instant::now(),
                lines: 0,
                bytes: 0,
                dropped_lines: 0,
                dropped_bytes: 0,
            }),
        })
    }

    /// Whether a line of `len` bytes may be logged now; counts it either way.
    fn admit(&self, len: usize) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.window.elapsed() >= Duration::from_secs(1) {
            state.window = Instant::now();
            state.lines = 0;
            state.bytes = 0;
        }
        if state.lines >= self.max_lines || state.bytes + len > self.max_bytes {
            state.dropped_lines += 1;
            state.dropped_bytes += len as u64;
            return false;
        }
        state.lines += 1;
        state.bytes += len;
        true
    }

    /// Lines and bytes dropped so far.
    #[cfg(test)]
    fn dropped(&self) -> (u64, u64) {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        (state.dropped_lines, state.dropped_bytes)
    }
}

impl Drop for LogRate {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if state.dropped_lines > 0 {
            tracing::warn!(
                target: "netra::guest",
                plugin = %self.plugin,
                dropped_lines = state.dropped_lines,
                dropped_bytes = state.dropped_bytes,
                limit_lines_per_second = self.max_lines,
                limit_bytes_per_second = self.max_bytes,
                "guest output over the log rate limit was dropped"
            );
        }
    }
}

#[derive(Default)]
struct OutputState {
    /// The unfinished current line.
    line: Vec<u8>,
    /// The most recent bytes written (stderr only).
    tail: Vec<u8>,
}

impl GuestOutput {
    pub(crate) fn new(plugin: Arc<str>, stream: Stream, rate: Arc<LogRate>) -> Self {
        Self {
            inner: Arc::new(Output {
                plugin,
                stream,
                state: Mutex::new(OutputState::default()),
                rate,
            }),
        }
    }

    /// The last lines written, trimmed, for an error message.
    pub(crate) fn tail(&self) -> String {
        let state = self.inner.lock();
        let mut text = String::from_utf8_lossy(&state.tail).into_owned();
        text.push_str(&String::from_utf8_lossy(&state.line));
        text.trim().to_string()
    }
}

impl Output {
    fn lock(&self) -> std::sync::MutexGuard<'_, OutputState> {
        // A panic while holding this lock cannot leave the buffers invalid.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self, bytes: &[u8]) {
        let mut state = self.lock();
        if matches!(self.stream, Stream::Stderr) {
            state.tail.extend_from_slice(bytes);
            let excess = state.tail.len().saturating_sub(TAIL_BYTES);
            state.tail.drain(..excess);
        }
        for &byte in bytes {
            if byte == b'\n' {
                let line = std::mem::take(&mut state.line);
                self.emit(&line);
            } else {
                state.line.push(byte);
                if state.line.len() >= MAX_LINE {
                    let line = std::mem::take(&mut state.line);
                    self.emit(&line);
                }
            }
        }
    }

    fn flush_partial(&self) {
        let line = std::mem::take(&mut self.lock().line);
        if !line.is_empty() {
            self.emit(&line);
        }
    }

    fn emit(&self, line: &[u8]) {
        if !self.rate.admit(line.len() + 1) {
            return;
        }
        let text = String::from_utf8_lossy(line);
        match self.stream {
            Stream::Stdout => {
                tracing::info!(target: "netra::guest", plugin = %self.plugin, stream = "stdout", "{text}")
            }
            Stream::Stderr => {
                tracing::warn!(target: "netra::guest", plugin = %self.plugin, stream = "stderr", "{text}")
            }
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        self.flush_partial();
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.inner.write(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.inner.write(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate() -> Arc<LogRate> {
        LogRate::new("p".into(), 1000, 1 << 20)
    }

    #[test]
    fn stderr_tail_keeps_the_latest_bytes() {
        let out = GuestOutput::new("p".into(), Stream::Stderr, rate());
        out.inner.write(&vec![b'a'; 3000]);
        out.inner.write(b"\npanicked at 'boom'\n");
        let tail = out.tail();
        assert!(tail.ends_with("panicked at 'boom'"), "{tail}");
        assert!(tail.len() <= TAIL_BYTES);
    }

    #[test]
    fn stdout_keeps_no_tail() {
        let out = GuestOutput::new("p".into(), Stream::Stdout, rate());
        out.inner.write(b"hello\n");
        assert_eq!(out.tail(), "");
    }

    #[test]
    fn a_flood_is_dropped_and_counted_but_the_tail_is_kept() {
        let rate = LogRate::new("p".into(), 10, 1 << 20);
        let out = GuestOutput::new("p".into(), Stream::Stderr, rate.clone());
        for i in 0..1000 {
            out.inner.write(format!("line {i}\n").as_bytes());
        }
        let (lines, bytes) = rate.dropped();
        assert_eq!(lines, 990);
        assert!(bytes > 990 * 6, "{bytes}");
        assert!(out.tail().ends_with("line 999"), "{}", out.tail());
    }

    #[test]
    fn the_byte_rate_limits_too() {
        let rate = LogRate::new("p".into(), 1000, 100);
        let out = GuestOutput::new("p".into(), Stream::Stdout, rate.clone());
        out.inner.write(&[b'x'; 60]);
        out.inner.write(b"\n");
        out.inner.write(&[b'y'; 60]);
        out.inner.write(b"\n");
        assert_eq!(rate.dropped(), (1, 61));
    }
}
