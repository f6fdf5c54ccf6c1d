//! Pre-initialization: a plugin's component snapshotted after its first calls.
//!
//! A language runtime (CPython from componentize-py, SpiderMonkey from
//! componentize-js) does set-up on the first call into a fresh instance:
//! it resolves its export glue, compiles functions it has only parsed, fills
//! caches. Every request gets a fresh instance, so every request would pay for
//! it. Instead, at load, netra instantiates the component once with nothing
//! granted, calls `describe` and (for tools) `invoke` with the empty tool name,
//! which no tool can have, so the SDKs answer `not-found` without running tool
//! code, and snapshots the instance's memories and globals into a new
//! component (wasmtime-wizer). That component is what the plugin's requests
//! instantiate; it is cached beside the compiled original, under the original's
//! digest, so only a cold cache pays for the snapshot.
//!
//! A component the snapshot cannot handle (wizer refuses its shape, a call
//! traps) is used as it is; the load itself then reports any real error.

use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::{Component, Func, Instance, Lift, Val, WasmList};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

use crate::agent::DescribeHost;
use crate::bindings::{AGENT_EXPORT, TOOL_EXPORT};
use crate::deadline::{Deadline, until};
use crate::engine::{Runtime, export_names};
use crate::host::AgentHost;
use crate::settings::{MemoryInit, PluginSettings, shared_settings};
use crate::store::{DESCRIBE_DEADLINE, StoreState};

/// Names the snapshot's cache entries; change it when the warm-up changes.
pub(crate) const SNAPSHOT_KEY: &str = "init1";

/// Why a component has no snapshot.
pub(crate) enum NoSnapshot {
    /// Something about the component: trying again will not help.
    Unsupported(String),
    /// The instance pool was full: a later load may succeed.
    Busy(String),
}

impl From<String> for NoSnapshot {
    fn from(why: String) -> Self {
        NoSnapshot::Unsupported(why)
    }
}

/// Snapshots `wasm` after its warm-up calls and compiles the snapshot with
/// the engine of `memory`.
pub(crate) async fn snapshot(
    runtime: &Runtime,
    wasm: Arc<[u8]>,
    memory: MemoryInit,
) -> Result<Component, NoSnapshot> {
    let wizer = Wizer::new();
    let (cx, instrumented) = wizer
        .instrument_component(&wasm)
        .map_err(|e| format!("cannot instrument it: {e:#}"))?;
    let engine = runtime.flavor(memory).engine.clone();
    let component = tokio::task::spawn_blocking({
        let engine = engine.clone();
        move || Component::new(&engine, &instrumented)
    })
    .await
    .map_err(|e| format!("compile task failed: {e}"))?
    .map_err(|e| format!("cannot compile it instrumented: {e:#}"))?;

    let exports = export_names(&component);
    let is_tool = exports.iter().any(|e| e == TOOL_EXPORT);
    let (interface, linker) = if is_tool {
        (TOOL_EXPORT, &runtime.flavor(memory).tool_linker)
    } else if exports.iter().any(|e| e == AGENT_EXPORT) {
        (AGENT_EXPORT, &runtime.flavor(memory).agent_linker)
    } else {
        return Err(NoSnapshot::Unsupported(
            "it exports neither netra:plugin/tool nor netra:plugin/agent".into(),
        ));
    };
    let mut settings = PluginSettings::new("snapshot");
    settings.memory_init = Some(memory);
    let shared = shared_settings(&runtime.inner.config.default_limits, &component, settings)
        .map_err(|e| e.to_string())?;
    let agent = (!is_tool).then(|| Arc::new(DescribeHost) as Arc<dyn AgentHost>);
    let mut store = runtime.new_store(&shared, "", agent);
    let clock = store.data().guest.deadline.start(DESCRIBE_DEADLINE);
    let instance = until(&clock, linker.instantiate_async(&mut store, &component))
        .await
        .ok_or_else(|| NoSnapshot::Unsupported("its instantiation did not finish in time".into()))?
        .map_err(|e| {
            let why = format!("cannot instantiate it: {e:#}");
            if e.is::<wasmtime::PoolConcurrencyLimitError>() {
                NoSnapshot::Busy(why)
            } else {
                NoSnapshot::Unsupported(why)
            }
        })?;

    let mut state = Snapshotting {
        store: &mut store,
        instance,
        failed: None,
        until: clock,
    };
    let describe = state.func(interface, "describe")?;
    state.call(describe, &[]).await?;
    if is_tool {
        let invoke = state.func(interface, "invoke")?;
        let ctx = Val::Record(
            ["user-id", "thread-id", "run-id"]
                .into_iter()
                .map(|field| (field.to_string(), Val::String(String::new())))
                .collect(),
        );
        let args = [ctx, Val::String(String::new()), Val::String("{}".into())];
        state.call(invoke, &args).await?;
    }
    let snapshot = wizer
        .snapshot_component(&cx, &mut state)
        .await
        .map_err(|e| format!("cannot snapshot it: {e:#}"))?;
    if let Some(failed) = state.failed {
        return Err(failed.into());
    }
    drop(store);
    let compiled = tokio::task::spawn_blocking(move || Component::new(&engine, &snapshot))
        .await
        .map_err(|e| format!("compile task failed: {e}"))?
        .map_err(|e| format!("cannot compile the snapshot: {e:#}"))?;
    Ok(compiled)
}

/// The instance being snapshotted, read through the accessors wizer adds.
struct Snapshotting<'a> {
    store: &'a mut Store<StoreState>,
    instance: Instance,
    /// The first accessor call that failed; the snapshot is then unusable.
    failed: Option<String>,
    /// When the warm-up calls must have finished, whatever they wait on.
    until: Deadline,
}

impl Snapshotting<'_> {
    fn func(&mut self, interface: &str, name: &str) -> Result<Func, String> {
        let missing = || format!("it does not export {interface}#{name}");
        let (_, iface) = self
            .instance
            .get_export(&mut *self.store, None, interface)
            .ok_or_else(missing)?;
        let (_, func) = self
            .instance
            .get_export(&mut *self.store, Some(&iface), name)
            .ok_or_else(missing)?;
        self.instance
            .get_func(&mut *self.store, func)
            .ok_or_else(missing)
    }

    /// A warm-up call; its results are dropped.
    async fn call(&mut self, func: Func, args: &[Val]) -> Result<(), String> {
        let count = func.ty(&*self.store).results().len();
        let mut results = vec![Val::Bool(false); count];
        until(
            &self.until,
            func.call_async(&mut *self.store, args, &mut results),
        )
        .await
        .ok_or_else(|| "a warm-up call did not finish in time".to_string())?
        .map_err(|e| format!("a warm-up call failed: {e:#}"))
    }

    async fn read<R: Lift + Send + Sync + 'static, T: Default>(
        &mut self,
        instance: &str,
        name: &str,
        read: impl FnOnce(&Store<StoreState>, R) -> T,
    ) -> T {
        let result = async {
            let func = self.func(instance, name)?;
            let typed = func
                .typed::<(), (R,)>(&*self.store)
                .map_err(|e| format!("{instance}#{name}: {e:#}"))?;
            let (value,) = typed
                .call_async(&mut *self.store, ())
                .await
                .map_err(|e| format!("{instance}#{name}: {e:#}"))?;
            Ok::<T, String>(read(self.store, value))
        }
        .await;
        result.unwrap_or_else(|err| {
            self.failed.get_or_insert(err);
            T::default()
        })
    }
}

impl ComponentInstanceState for Snapshotting<'_> {
    async fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        let bytes = self
            .read(instance, func, |store, list: WasmList<u8>| {
                list.as_le_slice(store).to_vec()
            })
            .await;
        contents(&bytes);
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.read(instance, func, |_, v: i32| v).await
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.read(instance, func, |_, v: i64| v).await
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.read(instance, func, |_, v: f32| v.to_bits()).await
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.read(instance, func, |_, v: f64| v.to_bits()).await
    }
}
