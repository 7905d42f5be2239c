//! Engine and pool set-up: the one wasmtime [`Engine`] of the host (pooling
//! allocator sized from the concurrency limit, epoch interruption, compile
//! cache), the epoch ticker that drives deadlines, and compiling a component
//! and pre-linking it into a [`HandlerPre`].
//!
//! Does not own the linker's contents (which imports exist: [`Runtime::new`]),
//! stores or instances ([`super::instance`]), or what a call does with them
//! ([`Runtime::call`]).
//!
//! [`Runtime::new`]: super::Runtime::new
//! [`Runtime::call`]: super::Runtime::call

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::{HandlerPre, RuntimeConfig, State};

/// How often the epoch advances. Deadlines are checked (and busy guests yield)
/// at this granularity.
const EPOCH_TICK: Duration = Duration::from_millis(1);

/// The engine: pooling allocator, epoch interruption, compile cache.
/// `resident` keeps instance slots' pages resident between deliveries (see
/// [`pooling`]); it needs PAGEMAP_SCAN and fails without it.
pub(super) fn engine(config: &RuntimeConfig, resident: bool) -> anyhow::Result<Engine> {
    let mut wasm = wasmtime::Config::new();
    wasm.epoch_interruption(true);
    wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling(
        config.max_concurrency,
        config.spare_instances,
        resident,
    )));
    if let Some(dir) = &config.cache_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create cache folder {}", dir.display()))?;
        // wasmtime's cache insists on an absolute path; operators write
        // relative ones (`--data ./data` is the default).
        let dir = std::path::absolute(dir)
            .with_context(|| format!("cannot resolve cache folder {}", dir.display()))?;
        let mut cache = wasmtime::CacheConfig::new();
        cache.with_directory(dir);
        wasm.cache(Some(wasmtime::Cache::new(cache)?));
    }
    Engine::new(&wasm)
        .map_err(anyhow::Error::from)
        .context("cannot create the wasmtime engine")
}

/// Pool sizes derived from the concurrency limit. Every number bounds address
/// space reserved up front (not memory used), which is why they scale with
/// `max_concurrency` instead of being generous constants: a host with a few
/// hundred slots reserves a few TiB of virtual space, tests with 16 slots a
/// few hundred GiB.
///
/// With `resident`, a slot's pages stay mapped and resident when its instance
/// is dropped: PAGEMAP_SCAN finds the pages the instance wrote and only those
/// are copied back from the component's memory image (or zeroed), instead of
/// `madvise` dropping the pages and the next instance taking a page fault on
/// every page it touches. This is what makes a fresh instance per delivery
/// cheap: Rust `echo` instantiate+call went from 38 µs to 13 µs (criterion,
/// `--bench runtime`). The contents are still reset to the image: nothing
/// written by one delivery is visible to the next.
fn pooling(max_concurrency: u32, spares: u32, resident: bool) -> PoolingAllocationConfig {
    // A slot per call that may run, plus the spares' own: a spare never
    // holds a slot a call is waiting for.
    let slots = max_concurrency.max(1).saturating_add(spares);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        // Why 16 per component: a Rust component is 2-4 core instances (module,
        // WASI adapter shims), a componentize-js one 4, but componentize-py
        // links CPython as shared libraries: 14 core instances per Python
        // instance (libc, libpython, its runtime and bindings, adapter, shims).
        // With 8, a burst of Python deliveries ran out of core instances at
        // about half the slots and got 503s instead of waiting for a slot.
        // Each is a small reservation (its vmctx), so headroom costs little.
        .total_core_instances(slots * 16)
        // Why 2: one memory for the guest, one for an adapter that brings its own.
        .total_memories(slots * 2)
        .total_tables(slots * 4)
        // One async fiber stack per concurrent call (a store keeps the last
        // one it used, so spares hold theirs).
        .total_stacks(slots)
        // A plugin's memory cap is enforced per store by the limiter; the pool
        // only needs slots large enough for the largest cap a manifest can set.
        .max_memory_size(super::MAX_MEMORY as usize);
    if resident {
        pool.pagemap_scan(wasmtime::Enabled::Yes)
            // Why 4 MiB: a Rust guest writes a few hundred KiB per call (stack
            // at the bottom of memory, data, a small heap); interpreters more.
            // Pages written beyond this are dropped with `madvise` as before.
            // It bounds the RSS a warm slot keeps, not what a guest may use.
            .linear_memory_keep_resident(4 << 20)
            // Tables are reset the same way; with memories alone a Rust echo
            // call cost 22 µs instead of 13 µs.
            .table_keep_resident(256 << 10);
    }
    pool
}

/// Advances `engine`'s epoch every [`EPOCH_TICK`] on a thread of its own until
/// `stop` is set (when the [`Runtime`](super::Runtime) is dropped).
pub(super) fn spawn_epoch_ticker(engine: Engine, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("hookhost-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })
        .context("cannot start the epoch ticker thread")?;
    Ok(())
}

/// Compiles `bytes` (read from `path`, used in messages) and links it against
/// `linker`: the engine's part of [`Runtime::prepare`](super::Runtime::prepare).
/// Blocking and CPU-heavy. The error says what is wrong in terms a plugin
/// author can act on.
pub(super) fn pre_link(
    engine: &Engine,
    linker: &Linker<State>,
    path: &Path,
    bytes: &[u8],
) -> anyhow::Result<HandlerPre<State>> {
    check_component_header(bytes)?;
    let component = Component::new(engine, bytes)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{} failed to compile", path.display()))?;
    let pre = linker
        .instantiate_pre(&component)
        .map_err(anyhow::Error::from)
        .with_context(|| {
            format!(
                "{} imports something hookhost does not provide (build it against wit/)",
                path.display()
            )
        })?;
    HandlerPre::new(pre)
        .map_err(anyhow::Error::from)
        .with_context(|| {
            format!(
                "{} does not implement the hookhost:plugin/handler world (it must export `handle`)",
                path.display()
            )
        })
}

/// Rejects files that are not components before Cranelift sees them, with a
/// message that says what to do instead of wasmtime's generic parse error.
fn check_component_header(bytes: &[u8]) -> anyhow::Result<()> {
    const MAGIC: &[u8] = b"\0asm";
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        anyhow::bail!(
            "not a WebAssembly file ({} bytes; a half-written copy or the wrong file?)",
            bytes.len()
        );
    }
    // Bytes 4..8 are version and layer: core modules are layer 0, components 1.
    if bytes[6..8] == [0, 0] {
        anyhow::bail!(
            "is a core WebAssembly module, not a component; build the plugin with \
             `--target wasm32-wasip2` (or wrap it with `wasm-tools component new`)"
        );
    }
    Ok(())
}
