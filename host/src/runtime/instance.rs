//! The instance lifecycle: making the `Store` an instance lives in (its own
//! `State`, memory limit and epoch deadline), a plugin version's spare
//! instance (a fresh one made ahead of a delivery, or one kept for reuse) and
//! the decision to keep one, and instantiating a plugin once without calling
//! it ([`Runtime::check_start`]).
//!
//! Does not own the engine, the pool or compiling ([`super::engine`]), what a
//! store grants a guest ([`State`]), or running a delivery
//! ([`Runtime::call`]: taking a slot, calling the guest, classifying its
//! answer).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::{Engine, Store, UpdateDeadline};

use super::bindings::Handler;
use super::{CallError, CallLimits, Grants, Prepared, Runtime, State, classify_trap, kv, outbound};
use crate::telemetry::OutboundCounter;

/// Where a plugin version keeps its spare instance: a fresh one, or one
/// kept for the next delivery of a plugin that opted into reuse.
#[derive(Default)]
pub(super) struct SpareSlot {
    ready: Mutex<Option<Spare>>,
    /// A task is making a spare.
    filling: AtomicBool,
}

/// An instance made under `grants` and `memory`, waiting for a delivery.
pub(super) struct Spare {
    pub(super) store: Store<State>,
    pub(super) handler: Handler,
    grants: Grants,
    memory: u64,
    /// Deliveries it has served: 0 for a fresh spare, more for one kept by
    /// a plugin with `[instance] max_deliveries` above 1.
    pub(super) served: u32,
    _counted: SpareCount,
}

impl SpareSlot {
    /// The spare, if there is one made under the same grants and memory cap
    /// (a manifest change gives the same component new ones).
    pub(super) fn take(&self, grants: &Grants, memory: u64) -> Option<Spare> {
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
    pub(super) fn keep(
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
    pub(super) fn store(
        &self,
        grants: &Grants,
        limits: CallLimits,
        deadline: Instant,
    ) -> Store<State> {
        self.parts.store(grants, limits, deadline)
    }

    /// Makes `plugin` a spare instance in a task of its own, unless it has
    /// one, one is being made, `spare_cap` exist, or other calls are running.
    /// A spare that cannot be made (the plugin traps at start-up, no spare
    /// slot is free) is simply not there: the next delivery instantiates as
    /// usual.
    pub(super) fn make_spare(&self, plugin: &Prepared, grants: &Grants, limits: CallLimits) {
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
pub(super) struct StoreParts {
    pub(super) engine: Engine,
    pub(super) outbound: OutboundCounter,
    pub(super) kv: Option<Arc<crate::inbox::Inbox>>,
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
/// at the first tick past `deadline`, or at the first tick after what the
/// host holds for it passed its memory cap.
pub(super) fn set_deadline(store: &mut Store<State>, deadline: Instant) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |store| {
        if store.data().limiter.host_exceeded {
            return Err(wasmtime::Error::msg(
                "host-side resources held for the plugin passed its memory cap",
            ));
        }
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
