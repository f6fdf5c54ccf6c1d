//! Fresh instance + call, measured per call, for the calculator component.
//!
//! In one run and on the same component:
//! - `bare-default`: bare wasmtime with a default `Config` (on-demand
//!   allocation): Store + instantiate from `InstancePre` + call + drop, with
//!   the minimal WASI context the component needs, nothing else.
//! - `bare-tuned`: the same bare loop on netra's engine (pooling allocator,
//!   copy-on-write images, keep-resident memory), synchronous.
//! - `bare-tuned-async`: as above, called with `call_async` (fiber switch).
//! - `netra`: `ToolPlugin::call`, netra's full invocation path (fresh store
//!   with limits, deadline, stdio to tracing, scoped host state, result check).
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

const WARMUP: usize = 2_000;
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
    linker
        .define_unknown_imports_as_traps(&component)
        .expect("stub imports");
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

fn bare_call(setup: &BareSetup) {
    let mut store = bare_store(&setup.engine);
    let instance = setup.pre.instantiate(&mut store).expect("instantiate");
    let func = instance
        .get_typed_func::<Params, Results>(&mut store, &setup.invoke)
        .expect("typed func");
    let (result,) = func
        .call(&mut store, (bench_context(), "calculate", ARGS))
        .expect("call");
    assert_eq!(result.expect("calculator succeeds"), "14");
}

async fn bare_call_async(setup: &BareSetup) {
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
        .call_async(&mut store, (bench_context(), "calculate", ARGS))
        .await
        .expect("call");
    assert_eq!(result.expect("calculator succeeds"), "14");
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

fn measure(mut f: impl FnMut()) -> Stats {
    for _ in 0..WARMUP {
        f();
    }
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let start = Instant::now();
        f();
        samples.push(start.elapsed());
    }
    stats(samples)
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn main() {
    let wasm_path = std::env::var("NETRA_BENCH_WASM").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/plugins/calculator.wasm"
        )
        .to_string()
    });
    let wasm = std::fs::read(&wasm_path)
        .unwrap_or_else(|e| panic!("read {wasm_path}: {e} (run `cargo xtask plugins` first)"));

    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let mut config = RuntimeConfig::default();
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
    let runtime = Runtime::new(config).expect("netra runtime");
    let plugin = tokio
        .block_on(runtime.load_tool(wasm.clone(), PluginSettings::new("calculator")))
        .expect("load calculator");

    let default_setup = bare_setup(Engine::new(&Config::new()).expect("engine"), &wasm);
    let tuned_setup = bare_setup(runtime.engine().clone(), &wasm);

    let ctx = RunContext {
        user_id: "bench".into(),
        thread_id: "thr".into(),
        run_id: "run".into(),
    };
    let bare_default = measure(|| bare_call(&default_setup));
    let bare_tuned = measure(|| bare_call(&tuned_setup));
    let bare_tuned_async = measure(|| tokio.block_on(bare_call_async(&tuned_setup)));
    let netra = measure(|| {
        let out = tokio
            .block_on(plugin.call(ctx.clone(), "calculate", ARGS))
            .expect("netra call");
        black_box(out);
    });

    println!("\nfresh instance + call of `calculate` ({SAMPLES} samples after {WARMUP} warm-up)\n");
    println!(
        "| path | p50 (us) | p99 (us) | mean (us) | p50 vs bare-default | p50 vs bare-tuned-async |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, s) in [
        ("bare-default", &bare_default),
        ("bare-tuned", &bare_tuned),
        ("bare-tuned-async", &bare_tuned_async),
        ("netra", &netra),
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
