use std::path::Path;
use std::time::Duration;

use netra_config::{Config, Problems, StoreKind, Ungranted, from_toml};

fn load(text: &str) -> Result<Config, Problems> {
    from_toml(text, Path::new("/etc/netra"), Vec::new())
}

fn problems(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(Problems(list)) => list.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn an_empty_file_gives_the_documented_defaults() {
    let config = load("").unwrap();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.server.data_dir, Path::new("/etc/netra/netra-data"));
    assert_eq!(config.store.kind, StoreKind::Sqlite);
    assert_eq!(
        config.store.path,
        Path::new("/etc/netra/netra-data/netra.db")
    );
    assert_eq!(
        config.store.event_retention,
        Some(Duration::from_secs(30 * 24 * 3600))
    );
    assert_eq!(config.plugins.dir, Path::new("/etc/netra/plugins"));
    assert_eq!(config.plugins.ungranted, Ungranted::Refuse);
    assert_eq!(config.limits.max_runs, 256);
    assert_eq!(config.limits.max_runs_per_user, 8);
    assert_eq!(config.limits.prepared_instances, 2);
    // The cores less one, chosen when the runtime starts.
    assert_eq!(config.limits.guest_cpus, None);
    assert_eq!(config.limits.agent.deadline, Duration::from_secs(60));
    assert_eq!(config.limits.tool.deadline, Duration::from_secs(10));
    assert!(config.auth.is_dev());
    assert!(config.plugin.is_empty() && config.llm.is_empty());
}

#[test]
fn six_different_mistakes_are_all_reported_in_one_pass() {
    let found = problems(
        r#"
        [server]
        listen = "localhost:99999"
        lisen = "127.0.0.1:1"

        [limits]
        max_runs = "many"
        max_runs_per_user = 0
        prepared_instances = 65

        [store]
        path = ""
        "#,
    );
    assert_eq!(found.len(), 6, "{found:#?}");
    let expect = [
        (
            "server.listen: \"localhost:99999\" is not a socket address",
            "IP:PORT",
        ),
        ("server.lisen: unknown key", "did you mean `listen`?"),
        (
            "limits.max_runs: expected an integer, found a string",
            "whole number",
        ),
        (
            "limits.max_runs_per_user: 0 is out of range",
            "from 1 to 10000",
        ),
        (
            "limits.prepared_instances: 65 is out of range",
            "from 0 to 64",
        ),
        ("store.path: empty path", "relative to the config file"),
    ];
    for (message, hint) in expect {
        assert!(
            found
                .iter()
                .any(|p| p.starts_with(message) && p.contains(hint)),
            "missing {message:?} with hint {hint:?} in {found:#?}"
        );
    }
}

#[test]
fn guest_cpus_is_read_and_bounded() {
    let config = load("[limits]\nguest_cpus = 3\n").unwrap();
    assert_eq!(config.limits.guest_cpus, Some(3));
    let found = problems("[limits]\nguest_cpus = 0\n");
    assert!(
        found[0].starts_with("limits.guest_cpus: 0 is out of range") && found[0].contains("from 1"),
        "{found:#?}"
    );
}

#[test]
fn the_users_event_rate_is_read_and_bounded() {
    let config = load("").unwrap();
    assert_eq!(config.limits.user_event_bytes_per_sec, 16 << 20);
    assert_eq!(config.limits.user_event_burst_bytes, 16 << 20);
    let config = load(
        "[limits]\nuser_event_bytes_per_sec = \"256KiB\"\nuser_event_burst_bytes = \"1MiB\"\n",
    )
    .unwrap();
    assert_eq!(config.limits.user_event_bytes_per_sec, 256 << 10);
    assert_eq!(config.limits.user_event_burst_bytes, 1 << 20);
    // 0 turns the rate off; the burst is at least 64 KiB.
    assert_eq!(
        load("[limits]\nuser_event_bytes_per_sec = 0\n")
            .unwrap()
            .limits
            .user_event_bytes_per_sec,
        0
    );
    let found = problems("[limits]\nuser_event_burst_bytes = 1000\n");
    assert!(
        found[0].starts_with("limits.user_event_burst_bytes: 1000B is out of range"),
        "{found:#?}"
    );
}

#[test]
fn the_users_memory_growth_rate_is_read_and_bounded() {
    let limits = load("").unwrap().limits;
    assert_eq!(limits.user_memory_growth_bytes_per_sec, 256 << 20);
    assert_eq!(limits.user_memory_growth_burst_bytes, 256 << 20);
    let limits = load(
        "[limits]\nuser_memory_growth_bytes_per_sec = \"32MiB\"\nuser_memory_growth_burst_bytes = \"8MiB\"\n",
    )
    .unwrap()
    .limits;
    assert_eq!(limits.user_memory_growth_bytes_per_sec, 32 << 20);
    assert_eq!(limits.user_memory_growth_burst_bytes, 8 << 20);
    let found = problems("[limits]\nuser_memory_growth_burst_bytes = \"64KiB\"\n");
    assert!(
        found[0].starts_with("limits.user_memory_growth_burst_bytes: 64KiB is out of range"),
        "{found:#?}"
    );
}

#[test]
fn a_syntax_error_is_one_problem_with_its_position() {
    let found = problems("[server\nlisten = 1");
    assert_eq!(found.len(), 1);
    assert!(
        found[0].contains("not valid TOML") && found[0].contains("line 1"),
        "{found:?}"
    );
}

#[test]
fn environment_overrides_win_over_the_file_and_are_checked_like_it() {
    let vars = vec![
        (
            "NETRA_SERVER__LISTEN".to_string(),
            "0.0.0.0:9000".to_string(),
        ),
        ("NETRA_LIMITS__MAX_RUNS".to_string(), "16".to_string()),
        ("NETRA_TOKEN".to_string(), "not an override".to_string()),
        (
            "NETRA_PLUGIN__HELPER__TOOLS".to_string(),
            r#"["calculate"]"#.to_string(),
        ),
    ];
    let config = from_toml("[server]\nlisten = \"127.0.0.1:1\"\n", Path::new("."), vars).unwrap();
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(config.limits.max_runs, 16);
    let tools = config.plugin["helper"].tools.as_ref().unwrap();
    assert!(tools.contains("calculate") && tools.len() == 1);

    let err = from_toml(
        "",
        Path::new("."),
        vec![("NETRA_SERVER__LISTN".to_string(), "x".to_string())],
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("server.listn: unknown key"),
        "{err}"
    );
}

#[test]
fn secrets_come_from_the_environment_or_files_and_never_print() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.txt"), "file-secret-value\n").unwrap();
    let text = r#"
        [auth]
        hs256_secret_env = "JWT_SECRET"

        [llm.local]
        base_url = "http://127.0.0.1:11434/v1"
        models = ["llama3"]
        api_key_file = "key.txt"
    "#;
    let vars = vec![("JWT_SECRET".to_string(), "env-secret-value".to_string())];
    let config = from_toml(text, dir.path(), vars).unwrap();
    assert_eq!(
        config.auth.hs256_secret.as_ref().unwrap().expose(),
        "env-secret-value"
    );
    assert_eq!(
        config.llm["local"].api_key.as_ref().unwrap().expose(),
        "file-secret-value"
    );
    let shown = format!("{config:?}");
    assert!(!shown.contains("secret-value"), "a secret leaked: {shown}");
    assert!(!config.auth.is_dev());

    // An unset variable, a secret written inline, and both sources at once.
    let found = problems(
        r#"
        [auth]
        hs256_secret = "inline"
        hs256_secret_env = "NOT_SET_ANYWHERE"
        "#,
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains("auth.hs256_secret: secrets are not written")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains("NOT_SET_ANYWHERE is not set")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .all(|p| !p.contains("inline\"") && !p.contains("= inline")),
        "{found:#?}"
    );
}

#[test]
fn plugin_grants_are_read_and_checked() {
    let config = load(
        r#"
        [llm.openai]
        base_url = "https://api.openai.com/v1"
        models = ["gpt-4o-mini"]
        api_key_env = "HOME"

        [plugin.helper]
        tools = ["calculate", "now"]
        llm = ["openai/gpt-4o-mini"]
        kv = false
        network = ["api.example.com", "*.example.org:8443"]
        files = [{ host = "data", guest = "/data" }, { host = "/tmp/out", guest = "/out", mode = "rw" }]
        env = ["TZ"]
        config = { greeting = "hi" }
        limits = { memory = "32MiB", deadline = "5s", fuel = 1000000 }
        "#,
    );
    // HOME may be unset in odd environments; everything else must be fine.
    let config = match config {
        Ok(config) => config,
        Err(p) if p.0.iter().all(|p| p.message.contains("HOME")) => return,
        Err(p) => panic!("{p}"),
    };
    let helper = &config.plugin["helper"];
    assert!(!helper.kv);
    assert_eq!(helper.network.len(), 2);
    assert_eq!(helper.files[0].host, Path::new("/etc/netra/data"));
    assert!(!helper.files[0].writable && helper.files[1].writable);
    assert_eq!(helper.config["greeting"], "hi");
    let limits = helper.limits.over(config.limits.agent);
    assert_eq!(limits.memory, 32 << 20);
    assert_eq!(limits.deadline, Duration::from_secs(5));
    assert_eq!(limits.fuel, Some(1_000_000));

    let found = problems(
        r#"
        [plugin.helper]
        llm = ["nobody/x"]
        network = ["https://example.com/path"]
        env = ["1BAD"]
        files = [{ host = "", guest = "data", mode = "rx" }]
        limits = { memory = "100GiB" }
        "#,
    );
    for want in [
        "plugin.helper.llm[0]: no LLM provider \"nobody\"",
        "plugin.helper.network[0]: \"https://example.com/path\" is not a host name",
        "plugin.helper.env[0]: \"1BAD\" is not an environment variable name",
        "plugin.helper.files[0].host: empty path",
        "plugin.helper.files[0].guest: must be an absolute path",
        "plugin.helper.files[0].mode: \"rx\" is not a mode",
        "plugin.helper.limits.memory: 100GiB is out of range",
    ] {
        assert!(
            found.iter().any(|p| p.starts_with(want)),
            "missing {want:?} in {found:#?}"
        );
    }
}

#[path = "config/fuzz.rs"]
mod fuzz;
