//! The queue workers: deliver the inbox's events to their plugins, retry the
//! ones that fail, and purge old ones.
//!
//! Owns when an event is attempted and what its outcome means (done, retry
//! after a backoff, dead). Does not own storing events (the inbox records
//! what the workers decide, through its typed API) or running a plugin
//! ([`crate::delivery`], shared with the sync path).
//!
//! Strategy:
//! - One dispatcher task finds routes with due events and claims up to each
//!   route's free concurrency (`[queue] concurrency` minus its attempts
//!   running), then runs every claimed event as its own task. It sleeps until
//!   the next event is due (a retry, or a lease running out), and is woken
//!   early when an event is appended or replayed, or an attempt finishes and
//!   frees a slot. A slow poll ([`IDLE_POLL`]) is only a safety net.
//! - The plugin is looked up in the registry at claim time, by route: an
//!   attempt always runs the newest version (hot reload), with that version's
//!   limits and retry policy. Events of a route that no plugin serves are
//!   parked, not dropped: they stay pending with a `last_error` saying so,
//!   and are looked at again after `orphan_retry`, without spending an
//!   attempt.
//! - An attempt: `ok` → done; `reject` → dead; a retry, trap, timeout or no
//!   free instance slot → retried after a random wait up to
//!   `min(max, base * 2^(attempt-1))` (full jitter), or dead once it was the
//!   last allowed attempt (the failure's [`CallError::classify`](crate::runtime::CallError::classify) says which
//!   failures are worth another attempt). The outcome is written through the
//!   group-commit writer, fenced by the attempt number.
//! - A claim leases the event for the plugin's timeout (which bounds the
//!   whole call, waiting for an instance slot included) plus
//!   [`LEASE_MARGIN`]: an attempt always ends well within it, so a lease only
//!   runs out when its host died.
//! - Shutdown: stop claiming, let running attempts finish within the grace
//!   period, then stop. An attempt cut off is made again after a restart.
//! - A purge task deletes done events older than the retention, and dedupe
//!   records older than the dedupe window, in bounded batches.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument as _;

use crate::delivery::{self, Deliverer};
use crate::inbox::{Claimed, Inbox, Millis, Recorded, StoreError, millis, now_millis};
use crate::registry::{Plugin, Registry};
use crate::runtime::Retry;
use crate::trace;

/// Longest the dispatcher sleeps without being woken.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Added to every lease on top of the plugin's timeout: time to write the
/// outcome even when the writer is busy.
const LEASE_MARGIN: Duration = Duration::from_secs(10);

/// After a store error the dispatcher waits this long before trying again.
const ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Longest `last_error` kept: trap messages carry wasm backtraces.
const MAX_ERROR_LEN: usize = 2000;

/// Events and dedupe records deleted per purge transaction, so a big purge
/// never holds the writer for long.
const PURGE_BATCH: u32 = 5000;

/// The running workers.
pub struct Workers {
    stop: watch::Sender<bool>,
    dispatcher: JoinHandle<()>,
    purger: JoinHandle<()>,
}

impl Workers {
    /// Starts the dispatcher and the purge task.
    pub fn start(
        inbox: Arc<Inbox>,
        registry: Arc<Registry>,
        deliverer: Arc<Deliverer>,
        grace: Duration,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let dispatcher = Dispatcher {
            inbox: inbox.clone(),
            registry,
            deliverer,
            running: HashMap::new(),
            attempts: JoinSet::new(),
        };
        Self {
            dispatcher: tokio::spawn(dispatcher.run(stopped.clone(), grace)),
            purger: tokio::spawn(purge(inbox, stopped)),
            stop,
        }
    }

    /// Stops claiming, waits for running attempts (up to the grace period
    /// given at start), and stops.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.dispatcher.await;
        let _ = self.purger.await;
    }
}

struct Dispatcher {
    inbox: Arc<Inbox>,
    registry: Arc<Registry>,
    deliverer: Arc<Deliverer>,
    /// Attempts running, per route.
    running: HashMap<String, u32>,
    /// Running attempts; each yields its route when it ends.
    attempts: JoinSet<String>,
}

/// What ended a dispatcher wait.
enum Woken {
    Stop,
    Finished(Option<String>),
    Due,
}

impl Dispatcher {
    async fn run(mut self, mut stop: watch::Receiver<bool>, grace: Duration) {
        loop {
            let wait = match self.dispatch().await {
                Ok(wait) => wait,
                Err(err) => {
                    tracing::error!(error = %err, "inbox workers cannot read the store; trying again");
                    ERROR_PAUSE
                }
            };
            let woken = tokio::select! {
                biased;
                _ = stop.wait_for(|stop| *stop) => Woken::Stop,
                Some(joined) = self.attempts.join_next(), if !self.attempts.is_empty() => {
                    Woken::Finished(joined.ok())
                }
                () = self.inbox.due_now() => Woken::Due,
                () = tokio::time::sleep(wait) => Woken::Due,
            };
            match woken {
                Woken::Stop => break,
                Woken::Finished(route) => self.finished(route),
                Woken::Due => {}
            }
            // Collect every other attempt that ended meanwhile, so a burst of
            // them costs one look at the store, not one each.
            while let Some(joined) = self.attempts.try_join_next() {
                self.finished(joined.ok());
            }
        }
        if self.attempts.is_empty() {
            return;
        }
        tracing::info!(
            attempts = self.attempts.len(),
            "inbox: letting running attempts finish"
        );
        let drain = async {
            while let Some(joined) = self.attempts.join_next().await {
                self.finished(joined.ok());
            }
        };
        if tokio::time::timeout(grace, drain).await.is_err() {
            tracing::warn!(
                attempts = self.attempts.len(),
                "inbox: grace period over with attempts running; they are made again after a restart"
            );
            self.attempts.abort_all();
        }
    }

    fn finished(&mut self, route: Option<String>) {
        // A task that panicked (attempts report every failure as a value, so
        // this would be a bug) loses its route: its slot stays taken.
        if let Some(route) = route
            && let Some(count) = self.running.get_mut(&route)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.running.remove(&route);
            }
        }
    }

    /// Claims and starts what is due; returns how long to sleep at most.
    async fn dispatch(&mut self) -> Result<Duration, StoreError> {
        let now = now_millis();
        for route in self.inbox.due_routes(now).await? {
            let Some(plugin) = self.registry.lookup(&route) else {
                self.park(&route, now).await?;
                continue;
            };
            let running = self.running.get(&route).copied().unwrap_or(0);
            let free = plugin.manifest.concurrency.saturating_sub(running);
            if free == 0 {
                continue; // woken again when one of its attempts ends
            }
            let lease = plugin.manifest.timeout + LEASE_MARGIN;
            let claimed = self
                .inbox
                .claim(&route, now, now + millis(lease), free)
                .await?;
            for event in claimed {
                *self.running.entry(route.clone()).or_default() += 1;
                self.attempts.spawn(attempt(
                    self.inbox.clone(),
                    self.deliverer.clone(),
                    plugin.clone(),
                    event,
                ));
            }
        }
        let wait = match self.inbox.next_due(now_millis()).await? {
            Some(at) => Duration::from_millis((at - now_millis()).max(1) as u64),
            None => IDLE_POLL,
        };
        Ok(wait.min(IDLE_POLL))
    }

    /// Postpones the due events of a route that no plugin serves.
    async fn park(&self, route: &str, now: Millis) -> Result<(), StoreError> {
        let retry = self.inbox.config().orphan_retry;
        let error = format!(
            "no plugin serves {route} (removed, or moved to another route); \
             the event waits for one and is looked at again every {}",
            humantime::format_duration(retry)
        );
        let parked = self
            .inbox
            .park(route, now, now + millis(retry), error)
            .await?;
        if parked > 0 {
            tracing::warn!(
                %route,
                events = parked,
                retry_in = ?retry,
                "queued events wait: no plugin serves their route"
            );
        }
        Ok(())
    }
}

/// One attempt of one event; yields its route.
async fn attempt(
    inbox: Arc<Inbox>,
    deliverer: Arc<Deliverer>,
    plugin: Arc<Plugin>,
    event: Claimed,
) -> String {
    let span = tracing::info_span!(
        "attempt",
        route = %event.route,
        plugin = %plugin.name,
        id = %event.id,
        attempt = event.attempt,
        version = tracing::field::Empty,
        scheme = tracing::field::Empty,
        mode = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if trace::enabled() {
        // A new trace per attempt, linked to the acceptance span stored
        // with the event (however long ago that was).
        delivery::record_plugin(&span, &plugin, event.attempt);
        if let Some((_, accepted)) =
            (event.request.headers.iter()).find(|(name, _)| name == trace::ACCEPTED_HEADER)
        {
            trace::link(&span, accepted);
        }
    }
    let route = event.route.clone();
    async move {
        let Claimed {
            seq,
            id,
            route,
            attempt,
            received_at,
            request,
        } = event;
        let delivery = delivery::build(id, route, request, received_at, attempt);
        let called = deliverer.call(&plugin, &delivery).await;
        let elapsed_us = called.elapsed.as_micros() as u64;
        let policy = plugin.manifest.retry;
        let at = now_millis();
        let metrics = deliverer.metrics();
        if trace::enabled() && called.result.is_err() {
            tracing::Span::current().record("otel.status_code", "ERROR");
        }
        let recorded = match called.result {
            Ok(_) => {
                tracing::info!(elapsed_us, "delivered");
                inbox.complete(seq, attempt, at).await
            }
            Err(err) => match (err.classify().retry, attempt >= policy.max_attempts) {
                (Retry::Never, _) => {
                    tracing::warn!(error = %err, elapsed_us, "event is dead: the plugin rejected it");
                    metrics.dead_letter();
                    inbox.dead(seq, attempt, at, bounded(err.to_string())).await
                }
                (Retry::Again, true) => {
                    tracing::warn!(error = %err, elapsed_us, "event is dead: last attempt failed");
                    metrics.dead_letter();
                    let error = bounded(format!("{err} (gave up after {attempt} attempts)"));
                    inbox.dead(seq, attempt, at, error).await
                }
                (Retry::Again, false) => {
                    let wait = jitter(policy.backoff_cap(attempt));
                    tracing::info!(error = %err, elapsed_us, retry_in = ?wait, "attempt failed; will retry");
                    metrics.retry();
                    inbox
                        .retry(seq, attempt, at + millis(wait), bounded(err.to_string()))
                        .await
                }
            },
        };
        match recorded {
            Ok(Recorded::Applied) => {}
            Ok(Recorded::Stale) => tracing::warn!(
                "outcome not recorded: the event's lease ran out and it was claimed again"
            ),
            Err(err) => tracing::error!(
                error = %err,
                "cannot record the attempt's outcome; the event is tried again when its lease ends"
            ),
        }
    }
    .instrument(span)
    .await;
    route
}

/// A random duration between zero and `cap` ("full jitter").
fn jitter(cap: Duration) -> Duration {
    // RandomState is seeded randomly per thread and differs per instance:
    // plenty for spreading retries, with no extra dependency.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_i64(now_millis());
    let fraction = (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64;
    cap.mul_f64(fraction)
}

fn bounded(mut error: String) -> String {
    if error.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !error.is_char_boundary(end) {
            end -= 1;
        }
        error.truncate(end);
        error.push('…');
    }
    error
}

/// Deletes done events past the retention and dedupe records past the
/// window, at start and then every quarter of the shorter of the two (at
/// least every 100 ms, at most every 10 minutes).
async fn purge(inbox: Arc<Inbox>, mut stop: watch::Receiver<bool>) {
    let config = inbox.config().clone();
    let interval = (config.retention.min(config.dedupe_window) / 4)
        .clamp(Duration::from_millis(100), Duration::from_secs(600));
    loop {
        let now = now_millis();
        let purged = inbox
            .purge(
                now - millis(config.retention),
                now - millis(config.dedupe_window),
                PURGE_BATCH,
            )
            .await;
        match purged {
            Ok(n) if n >= u64::from(PURGE_BATCH) => {
                // More to delete: go again soon, letting other writes in.
                tracing::debug!(rows = n, "purged old inbox rows; more to go");
                tokio::task::yield_now().await;
                continue;
            }
            Ok(n) if n > 0 => tracing::debug!(rows = n, "purged old inbox rows"),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "cannot purge old inbox rows"),
        }
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_under_the_cap_and_varies() {
        let cap = Duration::from_millis(1000);
        let waits: Vec<Duration> = (0..200).map(|_| jitter(cap)).collect();
        assert!(waits.iter().all(|w| *w <= cap));
        let low = waits.iter().filter(|w| **w < cap / 2).count();
        assert!(
            (50..150).contains(&low),
            "{low} of 200 waits in the lower half"
        );
    }

    #[test]
    fn long_errors_are_cut_on_a_char_boundary() {
        let error = "é".repeat(MAX_ERROR_LEN);
        let cut = bounded(error);
        assert!(cut.len() <= MAX_ERROR_LEN + '…'.len_utf8());
        assert!(cut.ends_with('…'));
        assert_eq!(bounded("short".into()), "short");
    }
}
