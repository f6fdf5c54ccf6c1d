//! Guest stdout and stderr, sent to tracing line by line and tagged with the
//! plugin. The last lines of stderr are kept so a trap can carry the guest's
//! own message (a Rust panic prints there before it aborts).

use std::sync::{Arc, Mutex, PoisonError};

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
}

#[derive(Default)]
struct OutputState {
    /// The unfinished current line.
    line: Vec<u8>,
    /// The most recent bytes written (stderr only).
    tail: Vec<u8>,
}

impl GuestOutput {
    pub(crate) fn new(plugin: Arc<str>, stream: Stream) -> Self {
        Self {
            inner: Arc::new(Output {
                plugin,
                stream,
                state: Mutex::new(OutputState::default()),
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

    #[test]
    fn stderr_tail_keeps_the_latest_bytes() {
        let out = GuestOutput::new("p".into(), Stream::Stderr);
        out.inner.write(&vec![b'a'; 3000]);
        out.inner.write(b"\npanicked at 'boom'\n");
        let tail = out.tail();
        assert!(tail.ends_with("panicked at 'boom'"), "{tail}");
        assert!(tail.len() <= TAIL_BYTES);
    }

    #[test]
    fn stdout_keeps_no_tail() {
        let out = GuestOutput::new("p".into(), Stream::Stdout);
        out.inner.write(b"hello\n");
        assert_eq!(out.tail(), "");
    }
}
