//! Fresh instance + call, measured per call, for a Rust tool (calculator), a
//! Python tool (units, componentize-py) and a JavaScript tool (jsonq,
//! componentize-js). `NETRA_BENCH_ONLY=Python` measures only the matching ones.
//!
//! In one run and on the same component:
//! - `bare-default`: bare wasmtime with a default `Config` (on-demand
//!   allocation): Store + instantiate from `InstancePre` + call + drop, with
//!   the minimal WASI context the component needs, nothing else.
//! - `bare-tuned`: the same bare loop on netra's engine (pooling allocator,
//!   copy-on-write images, keep-resident memory), synchronous.
//! - `bare-tuned-async`: as above, called with `call_async` (fiber switch).
//! - `netra`: `ToolPlugin::call`, netra's full invocation path (fresh store
//!   with limits, deadline, stdio to tracing, scoped host state, result check)
//!   on the original component, each instance made on demand; the plugin's
//!   memory strategy is its default (`MemoryInit::for_component`).
//! - `netra, pre-initialized`: the same on the component snapshotted after
//!   its warm-up calls (`RuntimeConfig::preinitialize`).
//! - `netra, pre-initialized, prepared`: the request path of the server: the
//!   call takes an instance made ahead (`RuntimeConfig::prepared_instances`;
//!   the bench refills it between samples, untimed). Only `Copy` plugins are
//!   prepared; for `Map` ones this is the on-demand path again.
//!
//! The netra rows time instance + call; the instance is dropped between
//! samples, untimed (the server frees it when the run has ended).
//!
//! Run with `cargo xtask bench runtime`; it prints a Markdown table.

use std::hint::black_box;
use std::time::{Duration, Instant};

use netra_runtime::{PluginSettings, RunContext, Runtime, RuntimeConfig};
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentType, InstancePre, Lift, Linker, Lower, ResourceTable,
};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

const SAMPLES: usize = 20_000;
const ARGS: &str = r#"{"expression":"2+3*4"}"#;

#[derive(ComponentType, Lower)]
#[component(record)]
struct BenchContext {
    #[component(name = "user-id")]
    user_id: String,
    #[component(name = "thread-id")]
    thread_id: String,
    #[component(name = "run-id")]
    run_id: String,
}

// The payloads are only read through `Debug` when a call fails.
#[allow(dead_code)]
#[derive(ComponentType, Lift, Debug)]
#[component(variant)]
enum BenchToolError {
    #[component(name = "invalid-arguments")]
    InvalidArguments(String),
    #[component(name = "denied")]
    Denied(String),
    #[component(name = "not-found")]
    NotFound(String),
    #[component(name = "failed")]
    Failed(String),
    #[component(name = "timeout")]
    Timeout,
    #[component(name = "cancelled")]
    Cancelled,
}

type Params<'a> = (BenchContext, &'a str, &'a str);
type Results = (Result<String, BenchToolError>,);

struct Bare {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn bench_context() -> BenchContext {
    BenchContext {
        user_id: "bench".into(),
        thread_id: "thr".into(),
        run_id: "run".into(),
    }
}

struct BareSetup {
    engine: Engine,
    pre: InstancePre<Bare>,
    invoke: ComponentExportIndex,
}

fn bare_setup(engine: Engine, wasm: &[u8]) -> BareSetup {
    let component = Component::new(&engine, wasm).expect("compile");
    let mut linker = Linker::<Bare>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("wasi");
    stub_netra_imports(&mut linker, &engine, &component);
    let pre = linker.instantiate_pre(&component).expect("pre");
    let iface = component
        .get_export_index(None, "netra:plugin/tool@0.1.0")
        .expect("tool interface");
    let invoke = component
        .get_export_index(Some(&iface), "invoke")
        .expect("invoke");
    BareSetup {
        engine,
        pre,
        invoke,
    }
}

/// Links netra's own imports (log, config, kv) as functions that trap: the
/// measured calls do not use them. (`define_unknown_imports_as_traps` would
/// also stub WASI imports of a newer 0.2.x than wasmtime's, which the
/// linker otherwise satisfies by semver.)
fn stub_netra_imports(linker: &mut Linker<Bare>, engine: &Engine, component: &Component) {
    use wasmtime::component::types::ComponentItem;
    for (name, item) in component.component_type().imports(engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        if !name.starts_with("netra:") {
            continue;
        }
        let mut stubs = linker.instance(name).expect("instance");
        for (func, item) in instance.exports(engine) {
            if matches!(item.ty, ComponentItem::ComponentFunc(_)) {
                stubs
                    .func_new(func, |_, _, _, _| {
                        Err(wasmtime::Error::msg("not linked in the bare benchmark"))
                    })
                    .expect("stub");
            }
        }
    }
}

fn bare_store(engine: &Engine) -> Store<Bare> {
    let mut store = Store::new(
        engine,
        Bare {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        },
    );
    // netra's engine interrupts on epochs; the bare loop never wants that.
    store.set_epoch_deadline(u64::MAX / 2);
    store
}

/// One tool call a benchmark makes.
struct Call {
    /// What is measured, for the table.
    label: &'static str,
    /// The component, relative to the workspace root.
    file: &'static str,
    tool: &'static str,
    arguments: &'static str,
    /// Text the result must contain.
    expect: &'static str,
}

const CALLS: [Call; 3] = [
    Call {
        label: "Rust `calculate`",
        file: "target/plugins/calculator.wasm",
        tool: "calculate",
        arguments: ARGS,
        expect: "14",
    },
    Call {
        label: "Python `convert`",
        file: "target/plugins/units.wasm",
        tool: "convert",
        arguments: r#"{"value":1,"from_unit":"m","to_unit":"ft"}"#,
        expect: "3.28084",
    },
    Call {
        label: "JavaScript `json_query`",
        file: "target/plugins/jsonq.wasm",
        tool: "json_query",
        arguments: r#"{"json":{"a":{"b":[{"c":7},{"c":9}]}},"path":"a.b[1].c"}"#,
        expect: "9",
    },
];

fn bare_call(setup: &BareSetup, call: &Call) {
    let mut store = bare_store(&setup.engine);
    let instance = setup.pre.instantiate(&mut store).expect("instantiate");
    let func = instance
        .get_typed_func::<Params, Results>(&mut store, &setup.invoke)
        .expect("typed func");
    let (result,) = func
        .call(&mut store, (bench_context(), call.tool, call.arguments))
        .expect("call");
    assert!(result.expect("the call succeeds").contains(call.expect));
}

/// Only the fresh instance: what a call costs beyond it is the guest's work.
fn bare_instantiate(setup: &BareSetup) {
    let mut store = bare_store(&setup.engine);
    let instance = setup.pre.instantiate(&mut store).expect("instantiate");
    black_box(instance);
}

async fn bare_call_async(setup: &BareSetup, call: &Call) {
    let mut store = bare_store(&setup.engine);
    let instance = setup
        .pre
        .instantiate_async(&mut store)
        .await
        .expect("instantiate");
    let func = instance
        .get_typed_func::<Params, Results>(&mut store, &setup.invoke)
        .expect("typed func");
    let (result,) = func
        .call_async(&mut store, (bench_context(), call.tool, call.arguments))
        .await
        .expect("call");
    assert!(result.expect("the call succeeds").contains(call.expect));
}

struct Stats {
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let total: Duration = samples.iter().sum();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    Stats {
        p50: at(0.50),
        p99: at(0.99),
        mean: total / samples.len() as u32,
    }
}

fn measure(samples: usize, f: impl FnMut()) -> Stats {
    measure_after(samples, || {}, f)
}

/// Times `f` only; `setup` runs before each sample, untimed.
fn measure_after(samples: usize, mut setup: impl FnMut(), mut f: impl FnMut()) -> Stats {
    for _ in 0..(samples / 10).max(100) {
        setup();
        f();
    }
    let mut timed = Vec::with_capacity(samples);
    for _ in 0..samples {
        setup();
        let start = Instant::now();
        f();
        timed.push(start.elapsed());
    }
    stats(timed)
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn main() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let only = std::env::var("NETRA_BENCH_ONLY").ok();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let mut config = RuntimeConfig {
        // Snapshots and compiled code survive between bench runs.
        cache_dir: Some(format!("{root}/target/bench-cache").into()),
        ..RuntimeConfig::default()
    };
    // Lets a tuning sweep override the default without a rebuild.
    if let Some(bytes) = std::env::var("NETRA_BENCH_KEEP_RESIDENT")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.memory_keep_resident = bytes;
    }
    println!(
        "memory_keep_resident = {} bytes",
        config.memory_keep_resident
    );
    let runtime = Runtime::new(config.clone()).expect("netra runtime");
    let preinitialized = Runtime::new(RuntimeConfig {
        preinitialize: true,
        ..config.clone()
    })
    .expect("netra runtime");
    let prepared = Runtime::new(RuntimeConfig {
        preinitialize: true,
        prepared_instances: 2,
        ..config
    })
    .expect("netra runtime");
    let ctx = RunContext {
        user_id: "bench".into(),
        thread_id: "thr".into(),
        run_id: "run".into(),
    };
    // NETRA_BENCH_CALL=FILE|TOOL|ARGUMENTS|EXPECT measures one more call
    // (a tuning experiment on another component).
    let extra = std::env::var("NETRA_BENCH_CALL").ok().and_then(|spec| {
        let parts: Vec<&'static str> = spec.leak().splitn(4, '|').collect();
        match parts.as_slice() {
            [file, tool, arguments, expect] => Some(Call {
                label: "NETRA_BENCH_CALL",
                file,
                tool,
                arguments,
                expect,
            }),
            _ => None,
        }
    });
    let mut rows = Vec::new();
    for call in CALLS.iter().chain(&extra) {
        if only
            .as_deref()
            .is_some_and(|only| !call.label.contains(only))
        {
            continue;
        }
        let path = format!("{root}/{}", call.file);
        let wasm = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("read {path}: {e} (run `cargo xtask plugins` first)"));
        // The big Python and JavaScript components: fewer samples.
        let samples = if wasm.len() > 4 << 20 {
            SAMPLES / 4
        } else {
            SAMPLES
        };
        let name = call
            .file
            .rsplit('/')
            .next()
            .unwrap_or("plugin")
            .trim_end_matches(".wasm");
        let mut settings = PluginSettings::new(name);
        settings.memory_init = match std::env::var("NETRA_BENCH_MEMORY").as_deref() {
            Ok("map") => Some(netra_runtime::MemoryInit::Map),
            Ok("copy") => Some(netra_runtime::MemoryInit::Copy),
            _ => None,
        };
        settings.limits = Some(netra_runtime::Limits {
            memory_bytes: 64 << 20,
            ..netra_runtime::Limits::default()
        });
        let load = |runtime: &Runtime| {
            tokio
                .block_on(runtime.load_tool(wasm.clone(), settings.clone()))
                .unwrap_or_else(|e| panic!("load {path}: {e}"))
        };
        let plugin = load(&runtime);
        let preinitialized = load(&preinitialized);
        let prepared = load(&prepared);
        let default_setup = bare_setup(Engine::new(&Config::new()).expect("engine"), &wasm);
        let tuned_setup = bare_setup(runtime.engine().clone(), &wasm);
        let bare_default = measure(samples, || bare_call(&default_setup, call));
        let bare_tuned = measure(samples, || bare_call(&tuned_setup, call));
        let instantiate_only = measure(samples, || bare_instantiate(&tuned_setup));
        let bare_tuned_async = measure(samples, || {
            tokio.block_on(bare_call_async(&tuned_setup, call))
        });
        // The request waits for instance + call; the instance is freed after
        // (in the server, when the run ends), untimed here.
        let used = std::cell::RefCell::new(None);
        let netra_call = |plugin: &netra_runtime::ToolPlugin| {
            let (out, instance) = tokio.block_on(async {
                let mut instance = plugin.instantiate(ctx.clone()).await.expect("instantiate");
                let out = instance.invoke(call.tool, call.arguments).await;
                (out, instance)
            });
            let out = out.expect("netra call");
            assert!(out.contains(call.expect), "{out}");
            black_box(out);
            *used.borrow_mut() = Some(instance);
        };
        let netra = measure_after(samples, || drop(used.take()), || netra_call(&plugin));
        let netra_preinit = measure_after(
            samples,
            || drop(used.take()),
            || netra_call(&preinitialized),
        );
        let netra_prepared = measure_after(
            samples,
            || {
                drop(used.take());
                tokio.block_on(prepared.prepare());
            },
            || netra_call(&prepared),
        );
        rows.push((
            call,
            wasm.len(),
            samples,
            [
                bare_default,
                bare_tuned,
                instantiate_only,
                bare_tuned_async,
                netra,
                netra_preinit,
                netra_prepared,
            ],
        ));
    }
    for (
        call,
        size,
        samples,
        [
            bare_default,
            bare_tuned,
            instantiate_only,
            bare_tuned_async,
            netra,
            netra_preinit,
            netra_prepared,
        ],
    ) in &rows
    {
        println!(
            "\nfresh instance + call of {} ({:.1} MiB component; {samples} samples after a warm-up)\n",
            call.label,
            *size as f64 / f64::from(1 << 20)
        );
        println!(
            "| path | p50 (us) | p99 (us) | mean (us) | p50 vs bare-default | p50 vs bare-tuned-async |"
        );
        println!("|---|---|---|---|---|---|");
        for (name, s) in [
            ("bare-default", bare_default),
            ("bare-tuned", bare_tuned),
            ("bare-tuned, instantiate only", instantiate_only),
            ("bare-tuned-async", bare_tuned_async),
            ("netra", netra),
            ("netra, pre-initialized", netra_preinit),
            ("netra, pre-initialized, prepared", netra_prepared),
        ] {
            println!(
                "| {name} | {} | {} | {} | {:.2}x | {:.2}x |",
                us(s.p50),
                us(s.p99),
                us(s.mean),
                s.p50.as_secs_f64() / bare_default.p50.as_secs_f64(),
                s.p50.as_secs_f64() / bare_tuned_async.p50.as_secs_f64(),
            );
        }
    }
}
