//! The WebAssembly runtime: one wasmtime `Engine` for the whole host, the
//! linker with every import a plugin may use, and the per-call sandbox.
//!
//! Owns compiling and pre-linking components ([`Runtime::prepare`]) and running
//! one delivery through one fresh instance ([`Runtime::call`]). Does not own
//! which plugins exist (the registry) or HTTP (the server).
//!
//! Strategy, per delivery: a new `Store` (its own WASI context granting
//! nothing, its own memory limit), an instance from the plugin's pre-linked
//! `HandlerPre` through the pooling allocator, one call, then everything is
//! dropped. Nothing survives from one delivery to the next.
//!
//! Unless the plugin opts out of that isolation: with `[instance]
//! max_deliveries = N` (N > 1) an instance that answered is kept for the
//! plugin's next delivery, up to N deliveries, one at a time, so its globals
//! and heap carry over. Anything other than an answer (a trap, a timeout,
//! `retry`, `reject`, an invalid response), a manifest change, or its
//! memory passing half its cap ends it.
//! A kept instance waits where a spare would, and counts as one.
//!
//! Instantiating is taken off the answer's path where it can be: after a
//! call that ran alone, a task makes the plugin version one *spare*
//! instance, fresh and never called, which the next delivery takes
//! (re-armed with its deadline and log span) instead of instantiating. A
//! spare is exactly what that delivery would have instantiated itself, only
//! earlier, so isolation is unchanged. At most
//! `RuntimeConfig::spare_instances` exist at once (one per plugin version),
//! in pool slots reserved for them: a spare never takes a slot a call could
//! use. Each keeps the memory its instance wrote at start-up (under 1 MiB
//! for Rust, 2-3 MiB for an interpreter).
//!
//! A 1 ms epoch ticker drives deadlines: at each tick a running guest yields to the executor (so a
//! busy plugin cannot starve other deliveries on the same worker thread) and is
//! interrupted once its wall-clock timeout has passed.

mod bindings;
pub mod kv;
pub mod outbound;
mod state;

use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline,
};

pub use self::bindings::hookhost::plugin::types::Header;
use bindings::Handler;
pub use bindings::{Delivery, HandlerError, HandlerPre, Response};
pub use kv::KvLimits;
pub use outbound::{HostPattern, OutboundPolicy};
pub use state::{PluginConfig, State};

use crate::telemetry::{OutboundCounter, Outcome};

/// The largest memory a manifest may grant: the pooling allocator reserves
/// this much address space per memory slot, so nothing above it can fit.
pub const MAX_MEMORY: u64 = 4 * 1024 * 1024 * 1024;

/// How often the epoch advances. Deadlines are checked (and busy guests yield)
/// at this granularity.
const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Knobs of the runtime, taken from the host configuration.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// How many plugin calls may run at once. Sizes the instance pool.
    pub max_concurrency: u32,
    /// Most spare instances at once; 0 makes none. Adds to the pool.
    pub spare_instances: u32,
    /// Where compiled code is cached across restarts; `None` disables it.
    pub cache_dir: Option<std::path::PathBuf>,
    /// Where plugins' outbound requests are counted.
    pub outbound: OutboundCounter,
    /// The store that keeps plugins' key-value namespaces; `None` makes
    /// every `kv` call fail with `store`.
    pub kv: Option<Arc<crate::inbox::Inbox>>,
}

/// What a plugin's manifest grants it beyond computing: handed to every call
/// of that plugin version. Everything not granted here is denied.
#[derive(Debug, Clone)]
pub struct Grants {
    /// The plugin's name: its key-value namespace, and how logs and metrics
    /// name it.
    pub plugin: Arc<str>,
    /// Where it may send HTTP requests, and their limits.
    pub outbound: Arc<OutboundPolicy>,
    /// Its `[config]` values, read through the `config` import.
    pub config: Arc<PluginConfig>,
    /// Limits of its key-value namespace.
    pub kv: KvLimits,
    /// Most deliveries one instance serves (`[instance] max_deliveries`);
    /// 1 is a fresh instance per delivery.
    pub max_deliveries: u32,
}

impl Grants {
    /// Whether `other` is these very grants (the same manifest load).
    fn same_as(&self, other: &Grants) -> bool {
        self.plugin == other.plugin
            && Arc::ptr_eq(&self.outbound, &other.outbound)
            && Arc::ptr_eq(&self.config, &other.config)
            && self.kv == other.kv
            && self.max_deliveries == other.max_deliveries
    }
}

/// A component compiled and linked against the host, ready to instantiate.
#[derive(Clone)]
pub struct Prepared {
    pre: HandlerPre<State>,
    /// This version's spare instance; shared by clones, dropped with the last.
    spare: Arc<SpareSlot>,
}

/// Where a plugin version keeps its spare instance: a fresh one, or one
/// kept for the next delivery of a plugin that opted into reuse.
#[derive(Default)]
struct SpareSlot {
    ready: Mutex<Option<Spare>>,
    /// A task is making a spare.
    filling: AtomicBool,
}

/// An instance made under `grants` and `memory`, waiting for a delivery.
struct Spare {
    store: Store<State>,
    handler: Handler,
    grants: Grants,
    memory: u64,
    /// Deliveries it has served: 0 for a fresh spare, more for one kept by
    /// a plugin with `[instance] max_deliveries` above 1.
    served: u32,
    _counted: SpareCount,
}

impl SpareSlot {
    /// The spare, if there is one made under the same grants and memory cap
    /// (a manifest change gives the same component new ones).
    fn take(&self, grants: &Grants, memory: u64) -> Option<Spare> {
        let spare = self
            .ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        (spare.memory == memory && spare.grants.same_as(grants)).then_some(spare)
    }

    /// Puts `instance` in the slot unless it holds one already; says
    /// whether it did (else `instance` is dropped).
    fn keep(&self, instance: Spare) -> bool {
        let mut ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        if ready.is_some() {
            return false;
        }
        *ready = Some(instance);
        true
    }

    fn is_empty(&self) -> bool {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }
}

/// One of the host's spare instances; gives its place back when dropped.
struct SpareCount(Arc<AtomicU32>);

impl SpareCount {
    fn take(live: &Arc<AtomicU32>, most: u32) -> Option<Self> {
        live.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < most).then_some(n + 1)
        })
        .ok()?;
        Some(Self(live.clone()))
    }
}

impl Drop for SpareCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Prepared {
    /// The component's imports (`hookhost:plugin/log@0.1.1`,
    /// `wasi:cli/stdout@0.2.6`...), in its own order: what it may ask of the
    /// host, for `hookhost check`.
    pub fn imports(&self) -> Vec<String> {
        let instance_pre = self.pre.instance_pre();
        let engine = instance_pre.engine();
        instance_pre
            .component()
            .component_type()
            .imports(engine)
            .map(|(name, _)| name.to_owned())
            .collect()
    }
}

/// Limits for one call.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// Wall-clock deadline for instantiation plus the call.
    pub timeout: Duration,
    /// Linear-memory cap in bytes.
    pub memory: u64,
}

/// Why a call produced no response.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin returned `retry`.
    #[error("plugin asked to retry: {0}")]
    Retry(String),
    /// The plugin returned `reject`.
    #[error("plugin rejected the delivery: {0}")]
    Reject(String),
    /// The call ran past its timeout and was interrupted.
    #[error("plugin exceeded its {0:?} timeout")]
    Timeout(Duration),
    /// The plugin tried to grow memory past its cap and then failed.
    #[error("plugin exceeded its memory limit of {0} bytes")]
    MemoryExceeded(u64),
    /// The plugin trapped (panic, abort, bad memory access...).
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// Every instance slot is busy and none freed up within the deadline.
    #[error("no free instance slot within the plugin's timeout")]
    Capacity,
    /// The plugin returned a response the host cannot send (e.g. status 42).
    #[error("plugin returned an invalid response: {0}")]
    InvalidResponse(String),
}

/// What a failed call means to the host: the status a sync-mode sender
/// gets, how it is counted, and whether a queued event is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    /// The answer to a sync-mode sender.
    pub status: http::StatusCode,
    /// How the call is counted (metrics, `GET /plugins`).
    pub outcome: Outcome,
    /// Whether a queued event gets another attempt.
    pub retry: Retry,
}

/// Whether a queued event whose attempt failed is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Yes, after a backoff, while attempts remain.
    Again,
    /// No: the event is dead now.
    Never,
}

impl CallError {
    /// How the host treats this failure. The one place that decides it, as
    /// one exhaustive match: a new variant does not compile until it is
    /// classified, so it can never be retried (or answered) by accident.
    pub fn classify(&self) -> Classification {
        use http::StatusCode as S;
        let (status, outcome, retry) = match self {
            CallError::Retry(_) => (S::SERVICE_UNAVAILABLE, Outcome::Retry, Retry::Again),
            CallError::Reject(_) => (S::UNPROCESSABLE_ENTITY, Outcome::Reject, Retry::Never),
            CallError::Timeout(_) => (S::GATEWAY_TIMEOUT, Outcome::Timeout, Retry::Again),
            CallError::MemoryExceeded(_) => {
                (S::INTERNAL_SERVER_ERROR, Outcome::Memory, Retry::Again)
            }
            CallError::Trap(_) => (S::INTERNAL_SERVER_ERROR, Outcome::Trap, Retry::Again),
            CallError::InvalidResponse(_) => {
                (S::INTERNAL_SERVER_ERROR, Outcome::Trap, Retry::Again)
            }
            CallError::Capacity => (S::SERVICE_UNAVAILABLE, Outcome::Capacity, Retry::Again),
        };
        Classification {
            status,
            outcome,
            retry,
        }
    }

    /// How a call that returned `result` is counted.
    pub fn outcome_of<T>(result: &Result<T, CallError>) -> Outcome {
        result
            .as_ref()
            .map_or_else(|err| err.classify().outcome, |_| Outcome::Ok)
    }
}

/// The shared wasmtime engine, linker and call gate.
pub struct Runtime {
    linker: Linker<State>,
    /// One permit per instance slot of the pool: waiting here instead of failing
    /// in the allocator turns a burst into queueing, not errors.
    slots: Arc<Semaphore>,
    ticker_stop: Arc<AtomicBool>,
    parts: StoreParts,
    /// Spare instances in existence, at most `spare_cap`.
    spares: Arc<AtomicU32>,
    spare_cap: u32,
    /// The permits of `slots` when no call runs.
    max_concurrency: usize,
}

impl Runtime {
    /// Builds the engine (pooling allocator, epoch interruption, compile cache)
    /// and the linker, and starts the epoch ticker.
    pub fn new(config: &RuntimeConfig) -> anyhow::Result<Self> {
        // Keeping slots resident needs PAGEMAP_SCAN (Linux 6.7+) to be cheap;
        // without it, it would memset the whole kept region on every reset.
        let engine = match engine(config, true) {
            Ok(engine) => engine,
            Err(resident_err) => {
                let engine = engine(config, false)?;
                tracing::info!(
                    error = %format!("{resident_err:#}"),
                    "no PAGEMAP_SCAN (Linux < 6.7?): instance memory is reset with madvise"
                );
                engine
            }
        };

        let mut linker = Linker::new(&engine);
        // Full WASI p2 is linked because every guest toolchain imports some of
        // it (Rust std: io, cli, clocks); what a guest may actually do is
        // decided by the empty `WasiCtx` in `State`.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        // wasi:http for every plugin (JavaScript guests import it even when
        // they never call out): only the HTTP interfaces, since WASI is
        // already linked; where a request may go is `State`'s outbound policy.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        bindings::Handler::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), ticker_stop.clone())?;

        Ok(Self {
            linker,
            slots: Arc::new(Semaphore::new(config.max_concurrency as usize)),
            ticker_stop,
            parts: StoreParts {
                engine,
                outbound: config.outbound.clone(),
                kv: config.kv.clone(),
            },
            spares: Arc::new(AtomicU32::new(0)),
            spare_cap: config.spare_instances,
            max_concurrency: config.max_concurrency as usize,
        })
    }

    /// Compiles `bytes` (read from `path`, used in messages) and links it
    /// against the host. Blocking and CPU-heavy: call it off the async
    /// threads. The error says what is wrong in terms a plugin author can act on.
    pub fn prepare(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<Prepared> {
        check_component_header(bytes)?;
        let component = Component::new(&self.parts.engine, bytes)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{} failed to compile", path.display()))?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "{} imports something hookhost does not provide (build it against wit/)",
                    path.display()
                )
            })?;
        let pre = HandlerPre::new(pre)
            .map_err(anyhow::Error::from)
            .with_context(|| {
            format!(
                "{} does not implement the hookhost:plugin/handler world (it must export `handle`)",
                path.display()
            )
        })?;
        Ok(Prepared {
            pre,
            spare: Arc::default(),
        })
    }

    /// Runs one delivery in a fresh instance of `plugin` (or, when `grants`
    /// allow reuse, the one its previous delivery left) under `limits`, with
    /// what `grants` allows.
    pub async fn call(
        &self,
        plugin: &Prepared,
        grants: &Grants,
        delivery: &Delivery,
        limits: CallLimits,
    ) -> Result<Response, CallError> {
        let started = Instant::now();
        let deadline = started + limits.timeout;
        let _slot = tokio::time::timeout(limits.timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| CallError::Capacity)?
            .expect("the slot semaphore is never closed");

        let (mut store, spare, served) = match plugin.spare.take(grants, limits.memory) {
            Some(Spare {
                mut store,
                handler,
                served,
                ..
            }) => {
                store.data_mut().arm(deadline);
                set_deadline(&mut store, deadline);
                (store, Some(handler), served)
            }
            None => (self.store(grants, limits, deadline), None, 0),
        };
        let run = async {
            let handler = match spare {
                Some(handler) => handler,
                None => plugin.pre.instantiate_async(&mut store).await?,
            };
            let answer = handler.call_handle(&mut store, delivery).await?;
            Ok::<_, wasmtime::Error>((handler, answer))
        };
        // The epoch deadline interrupts guest code; this outer deadline also
        // bounds time spent in host imports (where epochs never fire), with a
        // margin so that the epoch (which gives the clearer error) normally
        // fires first. Both count from arrival, including the slot wait.
        let outcome =
            tokio::time::timeout_at((deadline + Duration::from_millis(250)).into(), run).await;
        let memory_exceeded = store.data().limiter.memory_exceeded;
        let (handler, result) = match outcome {
            Err(_elapsed) => (None, Err(CallError::Timeout(limits.timeout))),
            Ok(Err(err)) => (None, Err(classify_trap(err, memory_exceeded, limits))),
            Ok(Ok((handler, answer))) => (
                Some(handler),
                match answer {
                    Ok(response) => validate_response(response),
                    Err(HandlerError::Retry(message)) => Err(CallError::Retry(message)),
                    Err(HandlerError::Reject(message)) => Err(CallError::Reject(message)),
                },
            ),
        };
        let kept = match handler {
            // Reuse only what answered: after a trap, a timeout or any error
            // the instance's state is suspect; the next delivery gets a fresh one.
            Some(handler) if result.is_ok() && grants.max_deliveries > 1 => {
                self.keep(plugin, grants, limits, store, handler, served + 1)
            }
            _ => false,
        };
        if !kept {
            // Spawned now, the spare is made after this answer is sent (the
            // caller's task runs on until it yields), not while it is computed.
            self.make_spare(plugin, grants, limits);
        }
        result
    }
}

impl Runtime {
    /// Instantiates `plugin` once under `limits` without calling it, which is
    /// what every delivery does first: a component that cannot even start
    /// within its manifest's limits (initial memory over `limits.memory`, a
    /// start function that traps or loops) is caught before it goes live.
    /// Waits for a free instance slot as long as it takes.
    pub async fn check_start(
        &self,
        plugin: &Prepared,
        grants: &Grants,
        limits: CallLimits,
    ) -> Result<(), CallError> {
        let _slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the slot semaphore is never closed");
        let mut store = self.store(grants, limits, Instant::now() + limits.timeout);
        let outcome = tokio::time::timeout(
            limits.timeout + Duration::from_millis(250),
            plugin.pre.instantiate_async(&mut store),
        )
        .await;
        let memory_exceeded = store.data().limiter.memory_exceeded;
        match outcome {
            Err(_elapsed) => Err(CallError::Timeout(limits.timeout)),
            Ok(Ok(_instance)) => Ok(()),
            Ok(Err(err)) => Err(classify_trap(err, memory_exceeded, limits)),
        }
    }

    /// Keeps an instance of a plugin that opted into reuse, which has just
    /// answered its `served`-th delivery, for the plugin's next delivery;
    /// says whether it did (else the instance is dropped here).
    fn keep(
        &self,
        plugin: &Prepared,
        grants: &Grants,
        limits: CallLimits,
        store: Store<State>,
        handler: Handler,
        served: u32,
    ) -> bool {
        // Not one past half its memory cap: measured, a componentize-js
        // instance grows with every call (its allocations are not all freed)
        // and reached a 64 MiB cap within a criterion run; retiring it at
        // half turns that into an instantiation, not a failed delivery.
        let past_half = store.data().limiter.past_half();
        if served >= grants.max_deliveries || past_half {
            // Worth knowing when tuning `max_deliveries`.
            tracing::debug!(
                plugin = %grants.plugin,
                served,
                max_deliveries = grants.max_deliveries,
                memory_past_half = past_half,
                "reused instance retired"
            );
            return false;
        }
        SpareCount::take(&self.spares, self.spare_cap).is_some_and(|counted| {
            plugin.spare.keep(Spare {
                store,
                handler,
                grants: grants.clone(),
                memory: limits.memory,
                served,
                _counted: counted,
            })
        })
    }

    /// A fresh store for one instance: see [`StoreParts::store`].
    fn store(&self, grants: &Grants, limits: CallLimits, deadline: Instant) -> Store<State> {
        self.parts.store(grants, limits, deadline)
    }

    /// Makes `plugin` a spare instance in a task of its own, unless it has
    /// one, one is being made, `spare_cap` exist, or other calls are running.
    /// A spare that cannot be made (the plugin traps at start-up, no spare
    /// slot is free) is simply not there: the next delivery instantiates as
    /// usual.
    fn make_spare(&self, plugin: &Prepared, grants: &Grants, limits: CallLimits) {
        // Only on an otherwise idle host (this call still holds its permit):
        // under load every instantiation would happen anyway, and a spare
        // made then only competes with calls for the CPU. Measured on (b):
        // spares made under load cost 6 % of req/s.
        if self.spare_cap == 0 || self.slots.available_permits() + 1 < self.max_concurrency {
            return;
        }
        let slot = &plugin.spare;
        if !slot.is_empty() || slot.filling.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(counted) = SpareCount::take(&self.spares, self.spare_cap) else {
            slot.filling.store(false, Ordering::Release);
            return;
        };
        let parts = self.parts.clone();
        let pre = plugin.pre.clone();
        let slot = plugin.spare.clone();
        let grants = grants.clone();
        tokio::spawn(async move {
            // Outside any delivery: its deadline and span are set when a
            // delivery takes it.
            let mut store = parts.store(&grants, limits, Instant::now() + limits.timeout);
            let made = tokio::time::timeout(
                limits.timeout + Duration::from_millis(250),
                pre.instantiate_async(&mut store),
            )
            .await;
            if let Ok(Ok(handler)) = made {
                // An instance kept for reuse meanwhile stays; this one goes.
                slot.keep(Spare {
                    store,
                    handler,
                    grants,
                    memory: limits.memory,
                    served: 0,
                    _counted: counted,
                });
            }
            slot.filling.store(false, Ordering::Release);
        });
    }
}

/// What making a store takes, cloned into the tasks that make spares.
#[derive(Clone)]
struct StoreParts {
    engine: Engine,
    outbound: OutboundCounter,
    kv: Option<Arc<crate::inbox::Inbox>>,
}

impl StoreParts {
    /// A fresh store for one instance: its own empty WASI context, outbound
    /// HTTP as `grants` allow (ending at `deadline`), the memory cap, and an
    /// epoch callback that yields every tick and interrupts at `deadline`.
    fn store(&self, grants: &Grants, limits: CallLimits, deadline: Instant) -> Store<State> {
        let memory = usize::try_from(limits.memory).unwrap_or(usize::MAX);
        let outbound = outbound::Outbound::new(
            grants.plugin.clone(),
            grants.outbound.clone(),
            deadline,
            self.outbound.clone(),
        );
        let kv = kv::Kv::new(self.kv.clone(), grants.plugin.clone(), grants.kv);
        let state = State::new(memory, outbound, kv, grants.config.clone());
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        set_deadline(&mut store, deadline);
        store
    }
}

/// Guest code yields to the executor at every epoch tick and is interrupted
/// at the first tick past `deadline`.
fn set_deadline(store: &mut Store<State>, deadline: Instant) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        }
    });
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// The engine: pooling allocator, epoch interruption, compile cache.
/// `resident` keeps instance slots' pages resident between deliveries (see
/// [`pooling`]); it needs PAGEMAP_SCAN and fails without it.
fn engine(config: &RuntimeConfig, resident: bool) -> anyhow::Result<Engine> {
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
        .max_memory_size(MAX_MEMORY as usize);
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

fn spawn_epoch_ticker(engine: Engine, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
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

fn validate_response(response: Response) -> Result<Response, CallError> {
    // 1xx are interim answers hyper cannot send as a final response (and 101
    // would switch protocols).
    if !(200..=599).contains(&response.status) {
        return Err(CallError::InvalidResponse(format!(
            "status {} is not between 200 and 599",
            response.status
        )));
    }
    Ok(response)
}

fn classify_trap(err: wasmtime::Error, memory_exceeded: bool, limits: CallLimits) -> CallError {
    // Every pool slot of some kind is taken (a burst of large components):
    // the host is full, the plugin did nothing wrong.
    if err
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return CallError::Capacity;
    }
    if err.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
        return CallError::Timeout(limits.timeout);
    }
    // A failed grow is reported by the guest (Rust aborts with `unreachable`),
    // not as a distinct trap, so the limiter's record decides.
    if memory_exceeded {
        return CallError::MemoryExceeded(limits.memory);
    }
    CallError::Trap(format!("{err:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_error_is_classified() {
        use http::StatusCode as S;
        let cases = [
            (
                CallError::Retry("r".into()),
                S::SERVICE_UNAVAILABLE,
                Outcome::Retry,
                Retry::Again,
            ),
            (
                CallError::Reject("r".into()),
                S::UNPROCESSABLE_ENTITY,
                Outcome::Reject,
                Retry::Never,
            ),
            (
                CallError::Timeout(Duration::from_secs(1)),
                S::GATEWAY_TIMEOUT,
                Outcome::Timeout,
                Retry::Again,
            ),
            (
                CallError::MemoryExceeded(1),
                S::INTERNAL_SERVER_ERROR,
                Outcome::Memory,
                Retry::Again,
            ),
            (
                CallError::Trap("t".into()),
                S::INTERNAL_SERVER_ERROR,
                Outcome::Trap,
                Retry::Again,
            ),
            (
                CallError::InvalidResponse("i".into()),
                S::INTERNAL_SERVER_ERROR,
                Outcome::Trap,
                Retry::Again,
            ),
            (
                CallError::Capacity,
                S::SERVICE_UNAVAILABLE,
                Outcome::Capacity,
                Retry::Again,
            ),
        ];
        for (err, status, outcome, retry) in cases {
            let class = err.classify();
            assert_eq!(
                (class.status, class.outcome, class.retry),
                (status, outcome, retry),
                "{err}"
            );
        }
        assert_eq!(CallError::outcome_of(&Ok::<(), _>(())), Outcome::Ok);
        assert_eq!(
            CallError::outcome_of::<()>(&Err(CallError::Capacity)),
            Outcome::Capacity
        );
    }
}
