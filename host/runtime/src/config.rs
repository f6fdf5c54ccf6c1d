//! Settings of the engine and the per-request limits.

use std::path::PathBuf;
use std::time::Duration;

use crate::rate::ByteRate;

/// How the engine is built. Fixed for the life of a [`crate::Runtime`].
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Where compiled components are cached; `None` compiles on every load.
    pub cache_dir: Option<PathBuf>,
    /// How often the epoch ticker advances. Deadlines are checked and running
    /// guests yield to other tasks at this granularity.
    pub epoch_tick: Duration,
    /// How many component instances may be alive at once across the host (the
    /// size of the pooling allocator). Requests over it fail fast.
    pub max_instances: u32,
    /// The largest linear memory any plugin may be granted, in bytes; it sizes
    /// the pool's memory slots.
    pub max_memory_bytes: usize,
    /// Bytes of each linear memory kept resident (reset with `memset` instead of
    /// `madvise`) when a slot is reused. Small components start faster with it.
    pub memory_keep_resident: usize,
    /// How many guests compute at once, users served in turn at each epoch
    /// tick (see `cpu`); 0 is one fewer than the machine's cores, at least 1.
    pub guest_cpus: usize,
    /// How fast one user's guests together may grow their memories (growth
    /// after instantiation; see `cpu`): a guest whose user is over it waits
    /// at its next tick. `None` is unlimited.
    pub user_memory_growth: Option<ByteRate>,
    /// Whether the engine meters fuel. Needed for [`Limits::fuel`]; costs some
    /// speed on every call, so it is off by default.
    pub fuel: bool,
    /// Limits applied to a plugin that does not set its own.
    pub default_limits: Limits,
    /// Whether plugins are snapshotted after their warm-up calls when loaded
    /// (see `preinit`): the language runtime's first-call set-up is then done
    /// once instead of in every fresh instance. It costs a second compile on
    /// a cold cache, so one-shot tools leave it off.
    pub preinitialize: bool,
    /// Fresh instances each `Copy` tool plugin keeps made ahead of requests,
    /// so a request does not wait for its image to be copied. Each is used by
    /// one request only; 0 makes every instance on demand.
    pub prepared_instances: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            epoch_tick: Duration::from_millis(1),
            max_instances: 1000,
            max_memory_bytes: 1 << 30,
            memory_keep_resident: 1 << 20,
            guest_cpus: 0,
            user_memory_growth: Some(ByteRate {
                per_sec: 256 << 20,
                burst: 256 << 20,
            }),
            fuel: false,
            default_limits: Limits::default(),
            preinitialize: false,
            prepared_instances: 0,
        }
    }
}

/// Limits on one request's store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest total linear memory, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock time a single call may take.
    pub deadline: Duration,
    /// Fuel for a single call, when the engine meters fuel.
    pub fuel: Option<u64>,
    /// Most core instances a store may create (a component has several).
    pub instances: usize,
    /// Most tables a store may create.
    pub tables: usize,
    /// Most elements any one table may hold.
    pub table_elements: usize,
    /// Largest tool result, in bytes; a larger one fails the call with
    /// [`InvokeError::ResultTooLarge`](crate::InvokeError).
    pub max_result_bytes: usize,
    /// Guest stdout/stderr one request may log per second, in lines and in
    /// bytes; the excess is dropped and counted in one summary line.
    pub log_lines_per_second: u32,
    /// See `log_lines_per_second`.
    pub log_bytes_per_second: usize,
    /// Keys one user may keep in the plugin's kv.
    pub kv_max_keys: u64,
    /// Bytes (keys plus values) one user may keep in the plugin's kv.
    pub kv_max_bytes: u64,
    /// Longest wait for the answer to one question (`interaction`); the
    /// deadline stands still meanwhile.
    pub ask_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            deadline: Duration::from_secs(10),
            fuel: None,
            instances: 64,
            tables: 64,
            table_elements: 100_000,
            max_result_bytes: 1 << 20,
            log_lines_per_second: 100,
            log_bytes_per_second: 64 << 10,
            kv_max_keys: 10_000,
            kv_max_bytes: 64 << 20,
            ask_wait: Duration::from_secs(600),
        }
    }
}
