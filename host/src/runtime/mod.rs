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
//!
//! # Layout
//!
//! - this file: the public face: [`RuntimeConfig`], [`Grants`], [`Prepared`],
//!   [`CallLimits`], [`CallError`] and [`Runtime`] (`new`, `prepare`, `call`),
//!   and turning a call's outcome into a response or a [`CallError`].
//! - `engine`: building the `Engine` (pooling allocator and why each of its
//!   numbers, epoch interruption, compile cache), the epoch ticker, and
//!   compiling a component into a pre-linked [`HandlerPre`].
//! - `instance`: the instance lifecycle: making a per-call `Store`, spare
//!   instances, keeping an instance for reuse, [`Runtime::check_start`].
//! - `state`: what one store holds ([`State`]: WASI and wasi:http contexts,
//!   memory limiter, guest output, host imports).
//! - `message`: a plugin's `retry`/`reject` message, bounded and escaped.
//! - [`outbound`]: where a plugin's HTTP requests may go; [`kv`]: its
//!   key-value namespace; `bindings`: the one `bindgen!` call.

mod bindings;
mod engine;
mod instance;
pub mod kv;
mod message;
pub mod outbound;
mod state;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use wasmtime::component::{HasSelf, Linker};

pub use self::bindings::hookhost::plugin::types::Header;
pub use bindings::{Delivery, HandlerError, HandlerPre, Response};
use instance::{Spare, SpareSlot, StoreParts, set_deadline};
pub use kv::KvLimits;
pub use outbound::{HostPattern, OutboundPolicy};
pub use state::{PluginConfig, State};

use crate::telemetry::{OutboundCounter, Outcome};

/// The largest memory a manifest may grant: the pooling allocator reserves
/// this much address space per memory slot, so nothing above it can fit.
pub const MAX_MEMORY: u64 = 4 * 1024 * 1024 * 1024;

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

impl Prepared {
    /// The component's imports (`hookhost:plugin/log@0.1.2`,
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
    /// The plugin returned `retry`, with the delay it asked for through
    /// `queue.retry-after` during the call, if it did.
    #[error("plugin asked to retry: {0}")]
    Retry(String, Option<Duration>),
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
            CallError::Retry(..) => (S::SERVICE_UNAVAILABLE, Outcome::Retry, Retry::Again),
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
        let engine = match engine::engine(config, true) {
            Ok(engine) => engine,
            Err(resident_err) => {
                let engine = engine::engine(config, false)?;
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
        engine::spawn_epoch_ticker(engine.clone(), ticker_stop.clone())?;

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
        Ok(Prepared {
            pre: engine::pre_link(&self.parts.engine, &self.linker, path, bytes)?,
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
        let retry_after = store.data_mut().retry_after.take();
        let (handler, result) = match outcome {
            Err(_elapsed) => (None, Err(CallError::Timeout(limits.timeout))),
            Ok(Err(err)) => (None, Err(classify_trap(err, memory_exceeded, limits))),
            Ok(Ok((handler, answer))) => (
                Some(handler),
                match answer {
                    Ok(response) => validate_response(response),
                    Err(HandlerError::Retry(message)) => {
                        Err(CallError::Retry(message::bounded(&message), retry_after))
                    }
                    Err(HandlerError::Reject(message)) => {
                        Err(CallError::Reject(message::bounded(&message)))
                    }
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

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// Most headers a plugin's response may carry. Senders read a status and
/// maybe a body; 100 is also what common HTTP clients (hyper) accept.
pub const MAX_RESPONSE_HEADERS: usize = 100;
/// Most bytes of header names and values in a plugin's response: the host
/// copies and sends them, so a hostile plugin must not make that megabytes.
pub const MAX_RESPONSE_HEADER_BYTES: usize = 64 * 1024;

pub(crate) fn validate_response(response: Response) -> Result<Response, CallError> {
    if response.headers.len() > MAX_RESPONSE_HEADERS {
        return Err(CallError::InvalidResponse(format!(
            "{} headers; at most {MAX_RESPONSE_HEADERS} are sent",
            response.headers.len()
        )));
    }
    let header_bytes: usize = response
        .headers
        .iter()
        .map(|header| header.name.len() + header.value.len())
        .sum();
    if header_bytes > MAX_RESPONSE_HEADER_BYTES {
        return Err(CallError::InvalidResponse(format!(
            "{header_bytes} bytes of headers; at most {MAX_RESPONSE_HEADER_BYTES} are sent"
        )));
    }
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
                CallError::Retry("r".into(), None),
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
