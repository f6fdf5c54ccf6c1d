//! A tiny HTTP/1.1 server on 127.0.0.1 for the tests that need something
//! to connect to: it answers every request on a thread of its own, counts
//! the connections it accepts, and stops when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// What a stub answers to a request head: the status line's code and
/// reason, the content type and the body.
type Answer = (&'static str, &'static str, String);

/// How a stub answers; `None` never answers.
type Responder = Option<Box<dyn Fn(&str) -> Answer + Send>>;

/// A local HTTP server with a fixed answer.
pub struct TinyServer {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl TinyServer {
    /// Answers every request with `200` and `body` (text/plain).
    pub fn start(body: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        Self::serve(listener, move |_| {
            ("200 OK", "text/plain", body.to_string())
        })
    }

    /// An OpenAI-compatible endpoint's model list, as health checks probe
    /// it: `GET /v1/models` answers `status` and one model, anything else
    /// 404 (so a wrong path shows as a failure).
    pub fn models(status: &'static str) -> Self {
        Self::models_at(TcpListener::bind("127.0.0.1:0").expect("bind"), status)
    }

    /// [`TinyServer::models`] answering 200 on `port` (a port taken
    /// earlier, so a test can bring an endpoint back where it was).
    pub fn models_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the port");
        Self::models_at(listener, "200 OK")
    }

    fn models_at(listener: TcpListener, status: &'static str) -> Self {
        Self::serve(listener, move |head| {
            if head.starts_with("GET /v1/models ") {
                let body = r#"{"object":"list","data":[{"id":"m","object":"model"}]}"#;
                (status, "application/json", body.to_string())
            } else {
                ("404 Not Found", "application/json", "{}".to_string())
            }
        })
    }

    /// The base URL of an OpenAI-compatible endpoint here.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Accepts and reads every request, and never answers: holds each
    /// connection open, without a word, until dropped (at most 60 s).
    pub fn silent() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        Self::serve_with(listener, None)
    }

    fn serve(listener: TcpListener, answer: impl Fn(&str) -> Answer + Send + 'static) -> Self {
        Self::serve_with(listener, Some(Box::new(answer)))
    }

    fn serve_with(listener: TcpListener, answer: Responder) -> Self {
        let port = listener.local_addr().expect("local addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopped) = (accepted.clone(), stop.clone());
        std::thread::spawn(move || {
            for socket in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut socket) = socket else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let _ = socket.set_read_timeout(Some(Duration::from_secs(5)));
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let Some(answer) = &answer else {
                    let stopped = stopped.clone();
                    std::thread::spawn(move || {
                        for _ in 0..600 {
                            if stopped.load(Ordering::SeqCst) {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(100));
                        }
                        drop(socket);
                    });
                    continue;
                };
                let (status, content_type, body) = answer(&String::from_utf8_lossy(&request));
                let _ = write!(
                    socket,
                    "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self {
            port,
            accepted,
            stop,
        }
    }

    /// How many connections it accepted.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for TinyServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A port nothing listens on (taken from the OS, then released).
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
