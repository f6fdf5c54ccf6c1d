//! The real `netra serve`, spawned from the binary cargo built: with a
//! generated netra.toml and a plugins dir, or with any arguments; the
//! `netra` CLI beside it; and blocking helpers that run agents over a real
//! WebSocket.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::ws::Client;

/// `netra serve`, killed on drop.
pub struct Server {
    child: Child,
    pub addr: String,
    data: tempfile::TempDir,
    plugins: tempfile::TempDir,
    /// The arguments `netra serve` was started with.
    args: Vec<String>,
    /// What `netra config check` said about the configuration served.
    pub check: Option<std::process::Output>,
    /// What serve printed before it listened.
    pub banner: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plugin to put in the plugins dir: the guest file and its manifest.
pub struct Plugin {
    pub guest: &'static str,
    pub manifest: &'static str,
}

pub const CALCULATOR: Plugin = Plugin {
    guest: "calculator",
    manifest: r#"name = "calculator"
version = "1.0.0"
kind = "tool"
"#,
};

/// The `netra` binary cargo built beside the running test binary
/// (`target/debug/netra` for `target/debug/deps/TEST-HASH`).
pub fn netra_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe.parent().expect("the test binary's dir");
    let dir = if dir.ends_with("deps") {
        dir.parent().unwrap_or(dir)
    } else {
        dir
    };
    let bin = dir.join(format!("netra{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: these tests drive the real binary (cargo test -p netra builds it)",
        bin.display()
    );
    bin
}

/// A `netra` command.
pub fn netra() -> Command {
    Command::new(netra_bin())
}

impl Server {
    /// `netra serve` with no netra.toml (dev mode) on the built guests
    /// `guests` (file names without `.wasm`), with default flags.
    pub fn serve_guests(guests: &[&str]) -> Self {
        let data = tempfile::tempdir().expect("data dir");
        let plugins = tempfile::tempdir().expect("plugins dir");
        for name in guests {
            let file = format!("{name}.wasm");
            std::fs::copy(crate::guests_dir().join(&file), plugins.path().join(&file))
                .unwrap_or_else(|e| panic!("cannot copy guest {file}: {e}"));
        }
        let args = [
            "serve".to_string(),
            "--listen".to_string(),
            "127.0.0.1:0".to_string(),
            "--data-dir".to_string(),
            data.path().join("state").display().to_string(),
            "--plugins".to_string(),
            plugins.path().display().to_string(),
        ];
        Self::spawn(&args, data, plugins)
    }

    /// Serves `plugins` with `config` (a netra.toml without the server and
    /// plugins sections, which are added here, with `plugins.ungranted`).
    pub fn start(plugins: &[Plugin], ungranted: &str, config: &str) -> Self {
        Self::start_with_env(plugins, ungranted, config, &[])
    }

    /// [`Server::start`] with `NETRA_*` variables set for the server only
    /// (for the `[server]` keys, which the generated file sets too).
    pub fn start_with_env(
        plugins: &[Plugin],
        ungranted: &str,
        config: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let data = tempfile::tempdir().expect("data dir");
        let dir = tempfile::tempdir().expect("plugins dir");
        for plugin in plugins {
            // Fixtures are built as fixture_agent_*.wasm; served by their short
            // name. `py:NAME` and `js:NAME` are Python and JavaScript guests.
            let (built, name) = if let Some(name) = plugin.guest.strip_prefix("py:") {
                (crate::polyglot_guest("py", name), name)
            } else if let Some(name) = plugin.guest.strip_prefix("js:") {
                (crate::polyglot_guest("js", name), name)
            } else if let Some(name) = plugin.guest.strip_prefix("fixture-") {
                (crate::guest(plugin.guest), name)
            } else if plugin.guest.starts_with("agent-") {
                (
                    crate::guest(&format!("fixture-{}", plugin.guest)),
                    plugin.guest,
                )
            } else {
                (crate::guest(plugin.guest), plugin.guest)
            };
            std::fs::copy(built, dir.path().join(format!("{name}.wasm"))).expect("copy guest");
            std::fs::write(dir.path().join(format!("{name}.toml")), plugin.manifest)
                .expect("write manifest");
        }
        let file = data.path().join("netra.toml");
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\ncache_dir = {:?}\n\n[plugins]\ndir = {:?}\nungranted = {ungranted:?}\n\n{config}",
            data.path().join("state").display().to_string(),
            shared_cache_dir().display().to_string(),
            dir.path().display().to_string(),
        );
        std::fs::write(&file, text).expect("write netra.toml");
        // `netra config check` sees what serve will do, before anything loads.
        let check = netra()
            .args(["config", "check", "--config"])
            .arg(&file)
            .output()
            .expect("netra config check");
        let mut args = vec!["serve".to_string(), "--config".to_string()];
        args.push(file.display().to_string());
        let mut server = Self::spawn_with_env(&args, data, dir, env);
        server.check = Some(check);
        server
    }

    /// `netra serve ARGS`; the data dir's `state` is the server's data dir.
    pub fn spawn(args: &[String], data: tempfile::TempDir, dir: tempfile::TempDir) -> Self {
        Self::spawn_with_env(args, data, dir, &[])
    }

    fn spawn_with_env(
        args: &[String],
        data: tempfile::TempDir,
        dir: tempfile::TempDir,
        env: &[(&str, &str)],
    ) -> Self {
        let mut child = netra()
            .args(args)
            .envs(env.iter().copied())
            // Every test server compiles a component once per machine.
            .env("NETRA_SERVER__CACHE_DIR", shared_cache_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("netra serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut server = Self {
            child,
            addr: String::new(),
            data,
            plugins: dir,
            args: args.to_vec(),
            check: None,
            banner: Vec::new(),
        };
        (server.addr, server.banner) = listening_addr(stdout);
        server
    }

    /// The arguments `netra serve` was started with.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The plugins dir it serves (and watches).
    pub fn plugins_dir(&self) -> &Path {
        self.plugins.path()
    }

    /// Kills the server (SIGKILL) and starts it again with the same
    /// arguments on the same data and plugins.
    pub fn restart(mut self) -> Self {
        let args = std::mem::take(&mut self.args);
        let (data, plugins) = self.kill_9();
        Self::spawn(&args, data, plugins)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.data.path().join("state")
    }

    /// A dev-mode token for `user`, with `roles`.
    pub fn token(&self, user: &str, roles: &[&str]) -> String {
        let mut command = netra();
        command.args(["token", "--sub", user, "--data-dir"]);
        command.arg(self.state_dir());
        for role in roles {
            command.args(["--role", role]);
        }
        let out = command.output().expect("netra token");
        assert!(out.status.success(), "netra token failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("a token")
            .to_string()
    }

    /// An HTTP/1.1 request; returns (status, JSON body).
    pub fn http(&self, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
        self.http_body(method, path, token, "application/json", b"")
    }

    /// An HTTP/1.1 request with a body; returns (status, JSON body).
    pub fn http_body(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &[u8],
    ) -> (u16, Value) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", content_type)];
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth.as_str()));
        }
        let response = crate::http::request(&self.addr, method, path, &headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        (response.status, response.json())
    }

    /// The WebSocket URL.
    pub fn url(&self) -> String {
        format!("ws://{}/v1/ws", self.addr)
    }

    /// SIGKILL, as a crash or the OOM killer would; returns the data and
    /// plugins dirs for [`Server::spawn`].
    pub fn kill_9(mut self) -> (tempfile::TempDir, tempfile::TempDir) {
        self.child.kill().expect("SIGKILL netra serve");
        let _ = self.child.wait();
        (
            std::mem::replace(&mut self.data, tempfile::tempdir().expect("temp dir")),
            std::mem::replace(&mut self.plugins, tempfile::tempdir().expect("temp dir")),
        )
    }

    /// Polls `/readyz` with an admin token (the whole report) until `done`
    /// holds for (status, body), for at most 30 s.
    pub fn wait_readyz(&self, what: &str, done: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
        let admin = self.token("readyz", &["admin"]);
        let start = Instant::now();
        loop {
            let (status, body) = self.http("GET", "/readyz", Some(&admin));
            if done(status, &body) {
                return (status, body);
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "waited 30 s for {what}; last /readyz: {status} {body:#}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `run.start` for `agent` over a real WebSocket and returns the
    /// `error` it is refused with.
    pub fn start_error(&self, token: &str, agent: &str, input: &str) -> Value {
        crate::block_on(async {
            let mut client = Client::connect(&self.url(), token).await;
            let reply = client
                .request("run.start", json!({"agent": agent, "input": input}))
                .await;
            assert_eq!(reply["type"], "error", "the run was started: {reply}");
            reply
        })
    }

    /// Runs `agent` on `input` over a real WebSocket and returns its
    /// terminal event.
    pub fn run(&self, token: &str, agent: &str, input: &str) -> Value {
        let events = self.run_events(token, agent, input);
        events.last().cloned().unwrap_or(Value::Null)
    }

    /// Runs `agent` on `input` over a real WebSocket and returns every event
    /// of the run and of its nested runs, the run's terminal one last.
    pub fn run_events(&self, token: &str, agent: &str, input: &str) -> Vec<Value> {
        self.run_events_at(token, agent, input, false)
            .into_iter()
            .map(|(_, event)| event)
            .collect()
    }

    /// [`Server::run_events`] with the time each event arrived; with
    /// `cancel`, sends `run.cancel` as soon as the first `message_delta`
    /// arrives.
    pub fn run_events_at(
        &self,
        token: &str,
        agent: &str,
        input: &str,
        cancel: bool,
    ) -> Vec<(Instant, Value)> {
        crate::block_on(async {
            let mut client = Client::connect(&self.url(), token).await;
            let ack = client
                .request("run.start", json!({"agent": agent, "input": input}))
                .await;
            assert_eq!(ack["type"], "ack", "run.start refused: {ack}");
            let root = ack["run_id"].clone();
            let mut events = Vec::new();
            let mut cancelled = false;
            // Nested runs end too; the run started here ends last.
            loop {
                let value = match client.pending.pop_front() {
                    Some(value) => value,
                    None => client.recv().await,
                };
                let at = Instant::now();
                assert_ne!(value["type"], "error", "command refused: {value}");
                if value["type"] == "ack" {
                    continue;
                }
                if cancel && value["type"] == "message_delta" && !cancelled {
                    cancelled = true;
                    client
                        .command("run.cancel", json!({"run_id": value["run_id"]}))
                        .await;
                }
                let terminal = (value["type"] == "agent_completed"
                    || value["type"] == "agent_error")
                    && value["run_id"] == root;
                events.push((at, value));
                if terminal {
                    return events;
                }
            }
        })
    }
}

/// Reads `netra listening on http://ADDR ...` from serve's stdout (and what
/// it printed before), then keeps draining it so its later prints never hit
/// a full or closed pipe.
fn listening_addr(stdout: ChildStdout) -> (String, Vec<String>) {
    let mut lines = BufReader::new(stdout);
    let mut seen = Vec::new();
    let addr = loop {
        let mut line = String::new();
        let read = lines.read_line(&mut line).expect("read serve's stdout");
        assert!(read > 0, "netra serve exited; it printed {seen:?}");
        if let Some(rest) = line.strip_prefix("netra listening on http://") {
            break rest
                .split_whitespace()
                .next()
                .expect("an address")
                .to_string();
        }
        seen.push(line);
    };
    std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
    (addr, seen)
}

/// The compiled-component cache every test server shares: the large Python
/// and JavaScript components are compiled once per machine, not per test.
pub fn shared_cache_dir() -> PathBuf {
    crate::guests_dir().join("..").join("..").join("test-cache")
}
