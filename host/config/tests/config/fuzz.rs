//! Property tests over arbitrary inputs (issue 15, "Fuzzing"; cargo-fuzz
//! needs a nightly toolchain, these run on stable) for the two readers of
//! operator- and author-written TOML: `from_toml` (netra.toml, with
//! `NETRA_*` overrides) and `Manifest::parse` (a plugin's manifest). Each
//! property runs 256 cases by default (`PROPTEST_CASES` overrides it);
//! `cargo xtask fuzz` runs them with many more.
//!
//! For any text (arbitrary, mutated or truncated real files, or generated
//! documents whose keys are the real ones and whose values are of any type
//! and range): no panic; an error is a non-empty list of problems, each
//! with a message; an accepted config keeps its documented invariants
//! (absolute paths, limits in range); an accepted manifest has a plugin
//! name, a version and no tool needs on a tool. A generated valid manifest
//! reads back to what it says.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use netra_config::{Manifest, PluginKind, Problems, Value, from_toml};
use proptest::prelude::*;
use proptest::sample::Index;

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A base directory that does not exist: relative secret files are never
/// found, and nothing is read from this machine.
const BASE: &str = "/nonexistent/netra-fuzz";

fn check_problems(problems: &Problems, text: &str) -> Result<(), TestCaseError> {
    prop_assert!(!problems.0.is_empty(), "no problem listed for {text:?}");
    for problem in &problems.0 {
        prop_assert!(
            !problem.message.trim().is_empty(),
            "{problem:?} for {text:?}"
        );
    }
    prop_assert!(!problems.to_string().is_empty());
    Ok(())
}

/// What reading `text` (with `vars` as the environment) as netra.toml must
/// give, whatever it is.
fn check_config(text: &str, vars: Vec<(String, String)>) -> Result<(), TestCaseError> {
    match from_toml(text, Path::new(BASE), vars) {
        Err(problems) => check_problems(&problems, text),
        Ok(config) => {
            for path in [
                &config.server.data_dir,
                &config.store.path,
                &config.plugins.dir,
            ] {
                prop_assert!(path.is_absolute(), "{path:?} from {text:?}");
            }
            let limits = &config.limits;
            prop_assert!((1..=100_000).contains(&limits.max_runs), "{text:?}");
            prop_assert!(
                (1..=limits.max_runs).contains(&limits.max_runs_per_user),
                "{text:?}"
            );
            prop_assert!(limits.prepared_instances <= 64, "{text:?}");
            for plugin in [&limits.agent, &limits.tool] {
                prop_assert!(plugin.memory >= 1 << 20, "{text:?}");
                prop_assert!(plugin.deadline >= Duration::from_millis(1), "{text:?}");
            }
            Ok(())
        }
    }
}

/// What reading `text` as a manifest must give, whatever it is.
fn check_manifest(text: &str) -> Result<(), TestCaseError> {
    match Manifest::parse(text) {
        Err(problems) => check_problems(&problems, text),
        Ok(manifest) => {
            prop_assert!(
                !manifest.name.is_empty()
                    && manifest
                        .name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{:?} from {text:?}",
                manifest.name
            );
            prop_assert!(!manifest.version.trim().is_empty(), "{text:?}");
            if manifest.kind == PluginKind::Tool {
                prop_assert!(manifest.needs.tools.is_empty() && manifest.needs.agents.is_empty());
            }
            prop_assert!(manifest.needs.files.iter().all(|f| f.starts_with('/')));
            Ok(())
        }
    }
}

/// Text with the characters that matter to TOML over-represented.
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            3 => any::<char>(),
            3 => proptest::char::range(' ', '~'),
            2 => proptest::sample::select(vec![
                '"', '\'', '\\', '\r', '\n', '\t', '[', ']', '=', '#', '.', '{', '}', ',', '\0',
            ]),
        ],
        0..=max,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

const TOKENS: &[&[u8]] = &[
    b"[",
    b"]",
    b"[[",
    b"]]",
    b"=",
    b"\"",
    b"'",
    b"\"\"\"",
    b"'''",
    b"\n",
    b"\r\n",
    b"#",
    b".",
    b"{",
    b"}",
    b",",
    b"\\u",
    b"\\U0010FFFF",
    b"1979-05-27T07:32:00Z",
    b"inf",
    b"nan",
    b"0x",
    b"-",
    b"_",
    b"\xff",
    b"9223372036854775808",
    b"\"64MiB\"",
    b"\"0s\"",
    b"[plugin.x]\n",
    b"limits = {}\n",
];

#[derive(Clone, Debug)]
enum Edit {
    Flip(Index, u8),
    Insert(Index, Index),
    Delete(Index, u8),
    Truncate(Index),
}

/// One of `samples` with up to 8 bytes flipped, tokens inserted, bytes
/// deleted, or its end cut off.
fn mutated(samples: Vec<&'static str>) -> impl Strategy<Value = String> {
    let edit = prop_oneof![
        (any::<Index>(), 1u8..=255).prop_map(|(at, mask)| Edit::Flip(at, mask)),
        (any::<Index>(), any::<Index>()).prop_map(|(at, token)| Edit::Insert(at, token)),
        (any::<Index>(), 1u8..16).prop_map(|(at, n)| Edit::Delete(at, n)),
        any::<Index>().prop_map(Edit::Truncate),
    ];
    (
        proptest::sample::select(samples),
        proptest::collection::vec(edit, 0..8),
    )
        .prop_map(|(sample, edits)| {
            let mut bytes = sample.as_bytes().to_vec();
            for edit in edits {
                let len = bytes.len();
                match edit {
                    Edit::Flip(at, mask) if len > 0 => bytes[at.index(len)] ^= mask,
                    Edit::Insert(at, token) => {
                        let at = at.index(len + 1);
                        let token = TOKENS[token.index(TOKENS.len())];
                        bytes.splice(at..at, token.iter().copied());
                    }
                    Edit::Delete(at, n) if len > 0 => {
                        let at = at.index(len);
                        bytes.drain(at..(at + usize::from(n)).min(len));
                    }
                    Edit::Truncate(at) => bytes.truncate(at.index(len + 1)),
                    Edit::Flip(..) | Edit::Delete(..) => {}
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
}

const EXAMPLE: &str = include_str!("../../../../examples/netra.toml");

fn config_samples() -> Vec<&'static str> {
    vec![
        EXAMPLE,
        "",
        "[server]\nlisten = \"[::1]:0\"\n[limits.tool]\nfuel = 100000000\n",
        "[llm.local]\nbase_url = \"http://127.0.0.1:11434/v1\"\nmodels = [\"llama3.1\"]\n\n\
         [plugin.assistant]\ntools = [\"calculate\"]\nllm = [\"local/llama3.1\"]\n\
         network = [\"*.example.com:443\", \"[::1]:8080\"]\nenv = [\"TZ\"]\n\
         files = [{ host = \"data\", guest = \"/data\", mode = \"rw\" }]\n\
         config = { max_steps = \"8\" }\nlimits = { memory = \"32MiB\", deadline = \"2s\" }\n",
    ]
}

fn manifest_samples() -> Vec<&'static str> {
    vec![
        include_str!("../../../../plugins/helper/plugin.toml"),
        include_str!("../../../../plugins/notes/plugin.toml"),
        include_str!("../../../../plugins/assistant/plugin.toml"),
        "name = \"x\"\nversion = \"1\"\nkind = \"tool\"\n[needs]\nnetwork = [\"api.example.com\"]\n\
         files = [\"/data\"]\nenv = [\"TZ\"]\nkv = true\n[limits]\nfuel = 5\nmemory = 1048576\n",
    ]
}

/// A TOML value of any type, from plausible to absurd.
fn value() -> impl Strategy<Value = Value> {
    let strings = proptest::sample::select(vec![
        "127.0.0.1:8080",
        "[::1]:99999",
        "localhost:80",
        "30s",
        "0s",
        "1ms",
        "10m",
        "1h 30m",
        "7d",
        "99999999999999999999h",
        "64MiB",
        "4096MiB",
        "1GiB",
        "18446744073709551615",
        "0",
        "sqlite",
        "memory",
        "process",
        "power_loss",
        "refuse",
        "degrade",
        "ro",
        "rw",
        "tool",
        "agent",
        "http://127.0.0.1:11434/v1",
        "https://api.openai.com/v1",
        "",
        " ",
        "/",
        "..",
        "relative/dir",
        "NETRA_SECRET",
        "*.example.com",
        "api.example.com:443",
        "[::1]:8080",
        "local",
        "local/llama3.1",
        "helper",
        "calculate",
    ]);
    let leaf = prop_oneof![
        3 => strings.prop_map(|s| Value::String(s.into())),
        2 => text(12).prop_map(Value::String),
        2 => prop_oneof![any::<i64>(), -2i64..70_000].prop_map(Value::Integer),
        1 => any::<f64>().prop_map(Value::Float),
        1 => any::<bool>().prop_map(Value::Boolean),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..4).prop_map(|fields| {
                let mut table = Value::Table(Default::default());
                if let Value::Table(map) = &mut table {
                    for (k, v) in fields {
                        map.insert(k, v);
                    }
                }
                table
            }),
        ]
    })
}

const KEYS: &[&str] = &[
    // netra.toml
    "listen",
    "data_dir",
    "cache_dir",
    "max_message_bytes",
    "send_queue",
    "keepalive",
    "idle_timeout",
    "hs256_secret_env",
    "hs256_secret_file",
    "rs256_keys",
    "es256_keys",
    "jwks_file",
    "issuer",
    "audience",
    "kind",
    "path",
    "durability",
    "event_retention",
    "dir",
    "ungranted",
    "max_runs",
    "max_runs_per_user",
    "prepared_instances",
    "guest_cpus",
    "user_event_bytes_per_sec",
    "user_event_burst_bytes",
    "user_memory_growth_bytes_per_sec",
    "user_memory_growth_burst_bytes",
    "memory",
    "deadline",
    "fuel",
    "base_url",
    "models",
    "api_key_env",
    "api_key_file",
    "timeout",
    "interval",
    "failure_threshold",
    "open_for",
    "max_open_for",
    "start_attempts",
    "agent",
    "input",
    "expect",
    "enabled",
    "tools",
    "llm",
    "kv",
    "network",
    "files",
    "env",
    "config",
    "limits",
    "host",
    "guest",
    "mode",
    // manifests
    "name",
    "version",
    "description",
    "needs",
    "agents",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(String::from),
        1 => "[a-z_]{1,10}",
    ]
}

/// A document: top-level keys and sections, each with keys of any value.
fn document(sections: &'static [&'static str]) -> impl Strategy<Value = String> {
    let section = prop_oneof![
        4 => proptest::sample::select(sections).prop_map(String::from),
        1 => "[a-z_]{1,8}(\\.[a-z_]{1,8}){0,2}",
    ];
    (
        proptest::collection::btree_map(key(), value(), 0..4),
        proptest::collection::btree_map(
            section,
            proptest::collection::btree_map(key(), value(), 0..6),
            0..6,
        ),
    )
        .prop_map(|(top, sections)| {
            let mut text = String::new();
            let tables = std::iter::once((None, &top))
                .chain(sections.iter().map(|(name, entries)| (Some(name), entries)));
            for (name, entries) in tables {
                if let Some(name) = name {
                    text.push_str(&format!("\n[{name}]\n"));
                }
                for (key, value) in entries {
                    text.push_str(&format!("{key} = {value}\n"));
                }
            }
            text
        })
}

const CONFIG_SECTIONS: &[&str] = &[
    "server",
    "auth",
    "store",
    "plugins",
    "limits",
    "limits.agent",
    "limits.tool",
    "llm.local",
    "llm.other",
    "health",
    "health.golden_path",
    "plugin.helper",
    "plugin.assistant",
    "plugin.helper.limits",
    "plugin.notes.config",
];

const MANIFEST_SECTIONS: &[&str] = &["needs", "limits"];

/// `NETRA_*` overrides of real keys (and a few other variables), with
/// values that are TOML, half TOML or plain text.
fn vars() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        3 => (
            proptest::sample::select(CONFIG_SECTIONS),
            proptest::sample::select(KEYS),
        )
            .prop_map(|(section, key)| format!(
                "NETRA_{}__{}",
                section.replace('.', "__").to_uppercase(),
                key.to_uppercase()
            )),
        1 => "NETRA_[A-Z_]{0,12}",
        1 => Just("NETRA_SECRET".to_string()),
    ];
    let raw = prop_oneof![
        2 => value().prop_map(|v| v.to_string()),
        1 => text(16),
    ];
    proptest::collection::vec((name, raw), 0..4)
}

fn plugin_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,16}"
}

fn words() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec("[a-z][a-z0-9_]{0,8}", 0..4)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_arbitrary_text_is_never_a_panic(text in text(200)) {
        check_config(&text, Vec::new())?;
    }

    #[test]
    fn config_mutated_and_truncated_files_are_never_a_panic(
        text in mutated(config_samples()),
        vars in vars(),
    ) {
        check_config(&text, vars)?;
    }

    #[test]
    fn config_documents_of_any_values_are_never_a_panic(
        text in document(CONFIG_SECTIONS),
        vars in vars(),
    ) {
        check_config(&text, vars)?;
    }

    #[test]
    fn manifest_arbitrary_text_is_never_a_panic(text in text(200)) {
        check_manifest(&text)?;
    }

    #[test]
    fn manifest_mutated_and_truncated_files_are_never_a_panic(
        text in mutated(manifest_samples()),
    ) {
        check_manifest(&text)?;
    }

    #[test]
    fn manifest_documents_of_any_values_are_never_a_panic(text in document(MANIFEST_SECTIONS)) {
        check_manifest(&text)?;
    }

    #[test]
    fn manifest_valid_reads_back_as_written(
        name in plugin_name(),
        version in "[0-9a-z.+-]{0,6}[0-9a-z]",
        agent in any::<bool>(),
        description in proptest::option::of(text(30)),
        tools in words(),
        agents in words(),
        llm in proptest::collection::vec("[a-z]{1,6}(/[a-z0-9.]{1,8})?", 0..3),
        kv in proptest::option::of(any::<bool>()),
        network in proptest::collection::vec(
            "(\\*\\.)?[a-z]([a-z0-9-]{0,6}[a-z0-9])?(\\.[a-z]{2,6}){0,2}(:[0-9]{1,4})?",
            0..3,
        ),
        files in proptest::collection::vec("/[a-z/]{0,12}", 0..3),
        env in proptest::collection::vec("[A-Z_][A-Z0-9_]{0,8}", 0..3),
        memory_mib in proptest::option::of(1u64..=4096),
        deadline_ms in proptest::option::of(1u64..=3_600_000),
        fuel in proptest::option::of(1u64..=(u64::MAX >> 1)),
    ) {
        let (tools, agents) = if agent { (tools, agents) } else { (Vec::new(), Vec::new()) };
        let string = |s: &str| Value::String(s.to_string()).to_string();
        let list = |items: &[String]| {
            Value::Array(items.iter().cloned().map(Value::String).collect()).to_string()
        };
        let mut text = format!(
            "name = {}\nversion = {}\nkind = {}\n",
            string(&name),
            string(&version),
            string(if agent { "agent" } else { "tool" }),
        );
        if let Some(description) = &description {
            text.push_str(&format!("description = {}\n", string(description)));
        }
        text.push_str(&format!(
            "[needs]\ntools = {}\nagents = {}\nllm = {}\nnetwork = {}\nfiles = {}\nenv = {}\n",
            list(&tools),
            list(&agents),
            list(&llm),
            list(&network),
            list(&files),
            list(&env),
        ));
        if let Some(kv) = kv {
            text.push_str(&format!("kv = {kv}\n"));
        }
        text.push_str("[limits]\n");
        if let Some(mib) = memory_mib {
            text.push_str(&format!("memory = \"{mib}MiB\"\n"));
        }
        if let Some(ms) = deadline_ms {
            text.push_str(&format!("deadline = \"{ms}ms\"\n"));
        }
        if let Some(fuel) = fuel {
            text.push_str(&format!("fuel = {fuel}\n"));
        }
        let manifest = Manifest::parse(&text);
        prop_assert!(manifest.is_ok(), "{}\n{:?}", text, manifest);
        let Ok(manifest) = manifest else { return Ok(()) };
        prop_assert_eq!(&manifest.name, &name);
        prop_assert_eq!(&manifest.version, &version);
        prop_assert_eq!(manifest.kind, if agent { PluginKind::Agent } else { PluginKind::Tool });
        prop_assert_eq!(&manifest.description, &description);
        prop_assert_eq!(&manifest.needs.tools, &tools.into_iter().collect::<BTreeSet<_>>());
        prop_assert_eq!(&manifest.needs.agents, &agents.into_iter().collect::<BTreeSet<_>>());
        prop_assert_eq!(&manifest.needs.llm, &llm);
        prop_assert_eq!(manifest.needs.kv, kv.unwrap_or(false));
        prop_assert_eq!(&manifest.needs.network, &network);
        prop_assert_eq!(&manifest.needs.files, &files);
        prop_assert_eq!(&manifest.needs.env, &env);
        prop_assert_eq!(manifest.limits.memory, memory_mib.map(|m| m << 20));
        prop_assert_eq!(manifest.limits.deadline, deadline_ms.map(Duration::from_millis));
        prop_assert_eq!(manifest.limits.fuel, fuel);
        check_manifest(&text)?;
    }
}
