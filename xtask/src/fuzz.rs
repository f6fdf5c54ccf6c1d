//! `cargo xtask fuzz [SECONDS]`: the parsers' property tests with many cases.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cargo, run};

/// One target of `cargo xtask fuzz`: the property tests of one parser.
struct FuzzTarget {
    name: &'static str,
    package: &'static str,
    /// Which test binary (`--lib`, or `--test NAME`).
    binary: &'static [&'static str],
    /// The test-name filter that selects its properties.
    filter: &'static str,
}

const FUZZ_TARGETS: &[FuzzTarget] = &[
    FuzzTarget {
        name: "WebSocket command decoder (protocol::parse)",
        package: "netra-server",
        binary: &["--lib"],
        filter: "protocol::fuzz_tests::",
    },
    FuzzTarget {
        name: "admin multipart upload (admin::upload_parts)",
        package: "netra-server",
        binary: &["--lib"],
        filter: "admin::fuzz_tests::",
    },
    FuzzTarget {
        name: "netra.toml reader (from_toml, NETRA_* overrides)",
        package: "netra-config",
        binary: &["--test", "config"],
        filter: "fuzz::config_",
    },
    FuzzTarget {
        name: "plugin manifest reader (Manifest::parse)",
        package: "netra-config",
        binary: &["--test", "config"],
        filter: "fuzz::manifest_",
    },
    FuzzTarget {
        name: "SSE parser and stream accumulator",
        package: "netra-llm",
        binary: &["--lib"],
        filter: "sse::fuzz_tests::",
    },
];

/// Cases per property when no time is given.
const FUZZ_CASES: u64 = 100_000;

/// Cases per property of the calibration run when a time is given.
const FUZZ_CALIBRATION_CASES: u64 = 2_000;

/// `cargo xtask fuzz [SECONDS]`: every target's properties with
/// `FUZZ_CASES` cases each or, given SECONDS, with as many as fit in an
/// equal share of them (measured by a short calibration run; the time is
/// the test binary's own, without building). The test binaries are built
/// at opt-level 2, like their dependencies already are (the workspace's
/// `profile.dev.package."*"`), which runs about twice as many cases a
/// second as the plain debug build; overflow checks and debug assertions
/// stay on (they would be off in `--release`), and the rest of the build is
/// reused.
pub(crate) fn fuzz(seconds: Option<f64>) -> Result<()> {
    // Built first, exactly as they are run (one package at a time: the
    // features of shared dependencies are those of that package alone).
    let mut built: Vec<(&str, &[&str])> = Vec::new();
    for target in FUZZ_TARGETS {
        if built.contains(&(target.package, target.binary)) {
            continue;
        }
        built.push((target.package, target.binary));
        let mut build = fuzz_cargo();
        build
            .args(["test", "--no-run", "-p", target.package])
            .args(target.binary);
        run(build)?;
    }
    let share = seconds.map(|s| s / FUZZ_TARGETS.len() as f64);
    let mut report = Vec::new();
    for target in FUZZ_TARGETS {
        let mut runs = Vec::new();
        let cases = match share {
            None => FUZZ_CASES,
            Some(share) => {
                let (properties, took) = fuzz_run(target, FUZZ_CALIBRATION_CASES)?;
                runs.push((properties, FUZZ_CALIBRATION_CASES, took));
                let rate = FUZZ_CALIBRATION_CASES as f64 / took.max(0.01);
                ((share - took).max(0.0) * rate) as u64
            }
        };
        if cases > 0 {
            let (properties, took) = fuzz_run(target, cases)?;
            runs.push((properties, cases, took));
        }
        let properties = runs.iter().map(|r| r.0).max().unwrap_or(0);
        let cases: u64 = runs.iter().map(|r| r.1).sum();
        let executions: u64 = runs.iter().map(|r| r.0 * r.1).sum();
        let took: f64 = runs.iter().map(|r| r.2).sum();
        eprintln!(
            "fuzz: {}: {properties} properties x {cases} cases = {executions} executions in {took:.1} s, no failure",
            target.name
        );
        report.push((target.name, properties, cases, executions, took));
    }
    println!(
        "\n{:<50} {:>10} {:>10} {:>12} {:>8} {:>9}",
        "target", "properties", "cases", "executions", "seconds", "exec/s"
    );
    for (name, properties, cases, executions, took) in &report {
        println!(
            "{name:<50} {properties:>10} {cases:>10} {executions:>12} {took:>8.1} {:>9.0}",
            *executions as f64 / took.max(0.01)
        );
    }
    let total: u64 = report.iter().map(|r| r.3).sum();
    let took: f64 = report.iter().map(|r| r.4).sum();
    println!(
        "{:<50} {:>10} {:>10} {total:>12} {took:>8.1}",
        "all", "", ""
    );
    Ok(())
}

/// Runs `target`'s properties with `cases` cases each: how many properties
/// passed and the seconds the test binary took (libtest's "finished in").
/// A failure prints proptest's minimal failing input.
fn fuzz_run(target: &FuzzTarget, cases: u64) -> Result<(u64, f64)> {
    let mut cmd = fuzz_cargo();
    cmd.args(["test", "-q", "-p", target.package])
        .args(target.binary)
        .args(["--", target.filter])
        .env("PROPTEST_CASES", cases.to_string());
    eprintln!("$ PROPTEST_CASES={cases} {cmd:?}");
    let output = cmd
        .output()
        .with_context(|| format!("failed to start {cmd:?}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        eprintln!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        bail!("fuzz target {} failed ({})", target.name, output.status);
    }
    // "test result: ok. 5 passed; 0 failed; ...; finished in 1.23s"
    let summary = stdout
        .lines()
        .find_map(|line| line.strip_prefix("test result: ok. "))
        .with_context(|| format!("no test summary in:\n{stdout}"))?;
    let passed: u64 = summary
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no count in {summary:?}"))?;
    let took: f64 = summary
        .rsplit_once("finished in ")
        .and_then(|(_, t)| t.trim().trim_end_matches('s').parse().ok())
        .with_context(|| format!("no time in {summary:?}"))?;
    if passed == 0 {
        bail!(
            "fuzz target {}: no test matched `{}`",
            target.name,
            target.filter
        );
    }
    Ok((passed, took))
}

/// Cargo with the test profile at opt-level 2 (see [`fuzz`]).
fn fuzz_cargo() -> Command {
    let mut cmd = cargo();
    cmd.env("CARGO_PROFILE_TEST_OPT_LEVEL", "2");
    cmd
}
