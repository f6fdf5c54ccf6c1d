//! The `netra` binary as a plugin author uses it: `plugin inspect` and
//! `tool call` on real components, through the runtime the server uses.

use std::io::Read;
use std::process::Output;
use std::time::Duration;

use netra_tests::guest;
use netra_tests::stub::TinyServer;

struct Cli {
    cache: tempfile::TempDir,
}

impl Cli {
    fn new() -> Self {
        Self {
            cache: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        netra_tests::serve::netra()
            .arg("--cache-dir")
            .arg(self.cache.path())
            .args(args)
            .env("NETRA_LOG", "netra_runtime=info")
            .output()
            .expect("netra runs")
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn path(crate_name: &str) -> String {
    guest(crate_name).display().to_string()
}

#[test]
fn tool_call_prints_the_result() {
    let cli = Cli::new();
    let out = cli.run(&[
        "tool",
        "call",
        &path("calculator"),
        "calculate",
        r#"{"expression":"2+3*4"}"#,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "14");
}

#[test]
fn tool_call_reports_a_tool_error_with_a_non_zero_exit() {
    let cli = Cli::new();
    let out = cli.run(&[
        "tool",
        "call",
        &path("calculator"),
        "calculate",
        r#"{"expression":"2+"}"#,
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("invalid arguments") && err.contains("position 2"),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn tool_call_rejects_bad_json_and_unknown_tools() {
    let cli = Cli::new();
    let out = cli.run(&[
        "tool",
        "call",
        &path("calculator"),
        "calculate",
        "{not json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not valid JSON"), "{}", stderr(&out));

    let out = cli.run(&["tool", "call", &path("calculator"), "nope", "{}"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("calculate"), "{}", stderr(&out));

    let out = cli.run(&["tool", "call", "/no/such/file.wasm", "calculate", "{}"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));
}

#[test]
fn tool_call_stops_a_runaway_guest() {
    let cli = Cli::new();
    let out = cli.run(&[
        "tool",
        "call",
        "--deadline-ms",
        "100",
        &path("fixture-spin"),
        "spin",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("timed out after 100 ms"),
        "{}",
        stderr(&out)
    );
}

/// A guest asleep in a WASI clock wait never reaches an epoch check; the
/// call still ends at its deadline, not when the guest wakes (60 s).
#[test]
fn tool_call_stops_a_sleeping_guest_at_its_deadline() {
    let cli = Cli::new();
    let started = std::time::Instant::now();
    let out = cli.run(&[
        "tool",
        "call",
        "--deadline-ms",
        "500",
        &path("fixture-hostile"),
        "sleep",
        r#"{"ms": 60000}"#,
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("timed out after 500 ms"),
        "{}",
        stderr(&out)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn inspect_prints_world_and_descriptors() {
    let cli = Cli::new();
    let out = cli.run(&["plugin", "inspect", &path("calculator")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("world:   netra:plugin/tool-plugin@0.1.0"),
        "{text}"
    );
    assert!(text.contains("calculate:"), "{text}");
    assert!(text.contains("\"expression\""), "{text}");
}

#[test]
fn a_second_start_loads_from_the_cache() {
    let cli = Cli::new();
    let args = [
        "tool",
        "call",
        &path("text"),
        "slugify",
        r#"{"text":"Hello, World"}"#,
    ];
    let first = cli.run(&args);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("cache=Compiled"),
        "{}",
        stderr(&first)
    );
    let second = cli.run(&args);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(stderr(&second).contains("cache=Hit"), "{}", stderr(&second));
    assert_eq!(stdout(&first), stdout(&second));
}

#[test]
fn config_check_names_every_mistake_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("netra.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"localhost:99999\"\nlisen = \"127.0.0.1:1\"\n\n\
         [limits]\nmax_runs = \"many\"\nmax_runs_per_user = 0\n\n\
         [store]\npath = \"\"\n",
    )
    .expect("write config");
    let out = Cli::new().run(&["config", "check", "--config", &file.display().to_string()]);
    assert!(!out.status.success());
    let text = stdout(&out);
    assert!(text.contains("5 problems"), "{text}");
    for want in [
        "server.listen: \"localhost:99999\" is not a socket address",
        "server.lisen: unknown key (hint: did you mean `listen`?)",
        "limits.max_runs: expected an integer, found a string",
        "limits.max_runs_per_user: 0 is out of range",
        "store.path: empty path",
    ] {
        assert!(text.contains(want), "{want:?} missing in:\n{text}");
    }
}

#[test]
fn the_example_config_is_valid_and_env_overrides_are_checked() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/netra.toml");
    let out = Cli::new().run(&["config", "check", "--config", example]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains(": ok"), "{}", stdout(&out));

    let out = netra_tests::serve::netra()
        .args(["config", "check", "--config", example])
        .env("NETRA_SERVER__LISTEN", "nowhere")
        .env("NETRA_LIMITS__MAX_RUNZ", "3")
        .output()
        .expect("netra runs");
    assert!(!out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("server.listen: \"nowhere\" is not a socket address"),
        "{text}"
    );
    assert!(
        text.contains("limits.max_runz: unknown key (hint: did you mean `max_runs`?)"),
        "{text}"
    );
}

#[test]
fn tool_call_grants_directories_and_variables_only_when_asked() {
    let host = tempfile::tempdir().expect("temp dir");
    std::fs::write(host.path().join("in.txt"), "granted text").expect("write");
    let plugin = path("fixture-sandbox");
    let dir = format!("{}:/data", host.path().display());
    let cli = Cli::new();

    let out = cli.run(&[
        "tool",
        "call",
        &plugin,
        "read_file",
        r#"{"path":"/data/in.txt"}"#,
        "--dir",
        &dir,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("granted text"), "{}", stdout(&out));

    // Read-only unless :rw.
    let out = cli.run(&[
        "tool",
        "call",
        &plugin,
        "write_file",
        r#"{"path":"/data/x.txt","text":"x"}"#,
        "--dir",
        &dir,
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot write /data/x.txt"),
        "{}",
        stderr(&out)
    );
    let rw = format!("{dir}:rw");
    let out = cli.run(&[
        "tool",
        "call",
        &plugin,
        "write_file",
        r#"{"path":"/data/x.txt","text":"x"}"#,
        "--dir",
        &rw,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(host.path().join("x.txt")).expect("written"),
        "x"
    );

    // Without --dir the same read fails; without --env the variable is absent.
    let out = cli.run(&[
        "tool",
        "call",
        &plugin,
        "read_file",
        r#"{"path":"/data/in.txt"}"#,
    ]);
    assert!(!out.status.success());
    let out = netra_tests::serve::netra()
        .args([
            "tool",
            "call",
            &plugin,
            "get_env",
            r#"{"name":"NETRA_TEST_GRANT"}"#,
        ])
        .env("NETRA_TEST_GRANT", "visible")
        .output()
        .expect("netra runs");
    assert!(!out.status.success(), "{}", stdout(&out));
    let out = netra_tests::serve::netra()
        .args([
            "tool",
            "call",
            &plugin,
            "get_env",
            r#"{"name":"NETRA_TEST_GRANT"}"#,
            "--env",
            "NETRA_TEST_GRANT",
        ])
        .env("NETRA_TEST_GRANT", "visible")
        .output()
        .expect("netra runs");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("visible"), "{}", stdout(&out));
}

#[test]
fn tool_call_reaches_a_host_only_with_allow_host() {
    let server = TinyServer::start("hello over wasi:http");
    let plugin = path("fixture-sandbox");
    let url = format!("http://127.0.0.1:{}/", server.port);
    let args = format!(r#"{{"url":"{url}"}}"#);
    let cli = Cli::new();

    // Without the flag the request is denied and never connects.
    let out = cli.run(&[
        "tool",
        "call",
        &plugin,
        "http_get",
        &args,
        "--deadline-ms",
        "5000",
    ]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("HttpRequestDenied"),
        "{}",
        stderr(&out)
    );
    assert_eq!(server.accepted(), 0);

    let allowed = format!("127.0.0.1:{}", server.port);
    let out = cli.run(&[
        "tool",
        "call",
        &plugin,
        "http_get",
        &args,
        "--deadline-ms",
        "5000",
        "--allow-host",
        &allowed,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let response: serde_json::Value = serde_json::from_str(stdout(&out).trim()).expect("JSON");
    assert_eq!(response["status"], 200, "{response}");
    assert_eq!(response["body"], "hello over wasi:http", "{response}");
    assert_eq!(server.accepted(), 1);

    // A malformed pattern is refused before anything runs.
    let out = cli.run(&[
        "tool",
        "call",
        &plugin,
        "http_get",
        &args,
        "--allow-host",
        "http://127.0.0.1/",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("network grant"), "{}", stderr(&out));
}

/// What [`serve_briefly`] saw.
enum Served {
    /// It exited: its status and stderr.
    Exited(std::process::ExitStatus, String),
    /// It printed that it listens (the line); it was then killed.
    Listening(String),
}

/// `netra serve ARGS` with `envs`, in an empty working directory, with an
/// empty plugins dir, until it exits or prints that it listens (at most 60 s).
fn serve_briefly(args: &[&str], envs: &[(&str, &str)]) -> Served {
    use std::io::BufRead;
    use std::process::Stdio;
    let dir = tempfile::tempdir().expect("temp dir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).expect("plugins dir");
    let mut child = netra_tests::serve::netra()
        .current_dir(dir.path())
        .arg("serve")
        .args(args)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--plugins")
        .arg(&plugins)
        .env_remove("NETRA_CONFIG")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("netra serve starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let (lines, listening) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("netra listening on ") {
                let _ = lines.send(line);
            }
        }
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let started = std::time::Instant::now();
    loop {
        if let Ok(line) = listening.try_recv() {
            let _ = child.kill();
            let _ = child.wait();
            return Served::Listening(line);
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Served::Exited(status, errors.join().unwrap_or_default());
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("netra serve {args:?} neither exited nor listened in 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Dev mode (no auth configured) refuses to listen on an address that is not
/// loopback, whether it comes from --listen or the configuration, naming
/// the auth key to set and the listen key; with auth configured the same
/// address is served.
#[test]
fn dev_mode_refuses_to_listen_on_a_public_address() {
    for (args, envs) in [
        (&["--listen", "0.0.0.0:0"][..], &[][..]),
        (&["--listen", "[::]:0"][..], &[][..]),
        (&["--listen", "192.0.2.1:0"][..], &[][..]),
        (&[][..], &[("NETRA_SERVER__LISTEN", "0.0.0.0:0")][..]),
    ] {
        match serve_briefly(args, envs) {
            Served::Listening(line) => {
                panic!("{args:?} {envs:?}: dev mode served a public address: {line}")
            }
            Served::Exited(status, err) => {
                assert!(!status.success(), "{args:?} {envs:?}: {err}");
                assert!(
                    err.contains("dev mode")
                        && err.contains("[auth] hs256_secret_env")
                        && err.contains("[server] listen"),
                    "{args:?} {envs:?}: {err}"
                );
            }
        }
    }

    // With auth configured, a public address is the operator's choice.
    let secret = tempfile::NamedTempFile::new().expect("secret file");
    std::fs::write(secret.path(), "a-secret-long-enough-for-hs256-0123456789").expect("write");
    let secret = secret.path().display().to_string();
    match serve_briefly(
        &["--listen", "0.0.0.0:0", "--jwt-hs256-secret-file", &secret],
        &[],
    ) {
        Served::Listening(line) => assert!(line.contains("http://0.0.0.0:"), "{line}"),
        Served::Exited(status, err) => panic!("netra serve with auth exited ({status}): {err}"),
    }
    // Loopback stays fine in dev mode.
    match serve_briefly(&["--listen", "127.0.0.1:0"], &[]) {
        Served::Listening(line) => assert!(line.contains("http://127.0.0.1:"), "{line}"),
        Served::Exited(status, err) => panic!("dev mode on loopback exited ({status}): {err}"),
    }
}
