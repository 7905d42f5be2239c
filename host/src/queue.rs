//! The queue workers: deliver the inbox's events to their plugins, retry the
//! ones that fail, and purge old ones.
//!
//! Owns when an event is attempted and what its outcome means (done, retry
//! after a backoff, dead, or put back unspent). Does not own storing events
//! (the inbox records what the workers decide, through its typed API) or
//! running a plugin ([`crate::delivery`], shared with the sync path).
//!
//! Strategy:
//! - One dispatcher task keeps a *lane* per route: events claimed but not
//!   started yet, and the attempts running. Claims are taken in batches
//!   ([`claim_batch`]: one transaction claims up to N due events of a route,
//!   N from `[queue] concurrency`), and the next batch is claimed while the
//!   lane still holds half of the last one, so a claim's commit is hidden
//!   behind attempts instead of stalling them. Up to `concurrency` attempts
//!   of a route run at once, each as its own task.
//! - An attempt frees its slot as soon as the plugin answers; its outcome is
//!   then written through the group-commit writer like an append (many
//!   outcomes, one fsync) while the next attempt already runs. The event
//!   stays leased until its outcome commits, so it is never claimed twice.
//! - Order per key (`[queue] order_key`): the store claims only the oldest
//!   pending event of each key, so one key's events run one at a time, in
//!   acceptance order, while other keys run beside them; a key waiting for
//!   a retry holds back only itself. An ordered lane claims again whenever
//!   an outcome committed (it frees that key's next event).
//! - The dispatcher looks at the store for due routes when woken: an event
//!   appended or replayed, the next retry or lease end due, or the slow
//!   [`IDLE_POLL`] safety net; at most once per [`SCAN_GAP`], so a burst of
//!   appends costs a few reads, not one per event. A lane whose last claim
//!   came back full claims again by itself without a scan.
//! - The plugin is looked up in the registry when an attempt starts: it
//!   always runs the newest version (hot reload), with that version's limits
//!   and retry policy. Events of a route that no plugin serves are parked,
//!   not dropped: they stay pending with a `last_error` saying so, and are
//!   looked at again after `orphan_retry`, without spending an attempt.
//! - Only the plugin's outcome spends an attempt: `ok` → done; `reject` →
//!   dead; a retry, trap or timeout → retried after a random wait up to
//!   `min(max, base * 2^(attempt-1))` (full jitter), or dead once it was the
//!   last allowed attempt (the failure's [`CallError::classify`] says which
//!   failures are worth another attempt). A `retry` that came with a hint
//!   (`queue.retry-after`, [`retry_wait`]) waits what the plugin asked
//!   instead, capped at `[retry] max`, without jitter: the plugin knows when
//!   its downstream is back. The host's own limits never do: no
//!   free instance slot ([`CallError::Capacity`]) puts the event back
//!   unspent after [`CAPACITY_PAUSE`], and so does a shutdown (claimed events
//!   not started yet are released; an attempt cut off by the grace period,
//!   a crash or a failed outcome write keeps its lease, which the next start
//!   or its end gives back). Every outcome is fenced by the claim's token.
//! - A claim leases its events for as long as the lane may take to reach
//!   the last of them (see [`lease_for`]); an attempt always ends well within
//!   it, so a lease only runs out when its host died. An event whose lease
//!   would end during its attempt is released instead of started.
//! - Shutdown: stop claiming, release what was claimed but not started, let
//!   running attempts finish (and their outcomes commit) within the grace
//!   period, then stop.
//! - A purge task deletes done events older than the retention, and dedupe
//!   records older than the dedupe window, in bounded batches.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument as _;

use crate::config::RetryPolicy;
use crate::delivery::{self, Deliverer};
use crate::inbox::{Claimed, Inbox, Millis, Recorded, StoreError, millis, now_millis};
use crate::registry::{Plugin, Registry};
use crate::runtime::{CallError, Retry};
use crate::trace;

/// Longest the dispatcher sleeps without being woken.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Shortest time between two looks at the store for due routes: appends
/// wake the dispatcher by the thousand during a burst.
const SCAN_GAP: Duration = Duration::from_millis(2);

/// [`SCAN_GAP`] when other hosts share the store. A scan there is two
/// queries over indexes that every claim and outcome of the fleet churns
/// (tens of milliseconds with a backlog), and it is not what keeps a busy
/// lane going (a full claim asks for the next one by itself): looking after
/// every outcome would spend the database on scans instead of deliveries.
const SHARED_SCAN_GAP: Duration = Duration::from_millis(100);

/// Added to every lease on top of the attempts it covers: time to write the
/// outcome even when the writer is busy.
const LEASE_MARGIN: Duration = Duration::from_secs(10);

/// After a store error the dispatcher waits this long before trying again.
const ERROR_PAUSE: Duration = Duration::from_secs(1);

/// An event that found no free instance slot is due again after this: the
/// pool is full now, and the event did nothing wrong.
const CAPACITY_PAUSE: Duration = Duration::from_millis(200);

/// Longest `last_error` kept: trap messages carry wasm backtraces.
const MAX_ERROR_LEN: usize = 2000;

/// Events and dedupe records deleted per purge transaction, so a big purge
/// never holds the writer for long.
const PURGE_BATCH: u32 = 5000;

/// Events one claim takes for a route with `concurrency` slots: 16 per slot,
/// so that claiming the next batch when half of this one is left hides one
/// commit (a few ms of fsync) behind at least 8 attempts per slot. More
/// only lengthens the leases (see [`lease_for`]) and how long a hot reload
/// takes to reach queued events' claims.
pub fn claim_batch(concurrency: u32) -> u32 {
    concurrency.saturating_mul(16).clamp(16, 1024)
}

/// Events one claim takes when other hosts share the store: two per slot.
/// A host that dies holds its batch until the lease ends, and the others
/// can take over only then; small batches keep leases short (about four
/// timeouts plus [`LEASE_MARGIN`], see [`lease_for`]) and spread a route's
/// events over the hosts instead of letting the first claimer take them all.
pub fn shared_claim_batch(concurrency: u32) -> u32 {
    concurrency.saturating_mul(2).clamp(2, 128)
}

/// [`claim_batch`] or [`shared_claim_batch`].
fn batch_for(concurrency: u32, shared: bool) -> u32 {
    if shared {
        shared_claim_batch(concurrency)
    } else {
        claim_batch(concurrency)
    }
}

/// The lease of a batch of `batch` events for a route with `concurrency`
/// slots and attempts of at most `timeout`: the last of them may wait for
/// one and a half batches ahead of it (half the previous batch is still
/// queued when it is claimed), `concurrency` at a time, then run.
fn lease_for(timeout: Duration, batch: u32, concurrency: u32) -> Duration {
    let rounds = (batch * 3 / 2).div_ceil(concurrency.max(1)) + 1;
    timeout * rounds + LEASE_MARGIN
}

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
        let (freed_tx, freed) = mpsc::unbounded_channel();
        let dispatcher = Dispatcher {
            inbox: inbox.clone(),
            registry,
            deliverer,
            lanes: HashMap::new(),
            attempts: JoinSet::new(),
            claims: JoinSet::new(),
            freed_tx,
            freed,
            scan_wanted: true,
            next_scan: Instant::now(),
            next_timer: Instant::now() + IDLE_POLL,
        };
        if inbox.is_shared() {
            tokio::spawn(resync_depths(inbox.clone(), stopped.clone()));
        }
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

/// A claimed event not started yet, and the end of its lease.
struct Ready {
    event: Claimed,
    lease_until: Millis,
}

/// One route's events in the dispatcher's hands.
struct Lane {
    /// The plugin as of the last scan: its concurrency, timeout and limits
    /// size the claims.
    plugin: Arc<Plugin>,
    ready: VecDeque<Ready>,
    running: u32,
    /// A claim of this route is in flight.
    claiming: bool,
    /// More events may be due: the last claim came back full, or a scan
    /// saw some.
    more: bool,
}

impl Lane {
    fn concurrency(&self) -> u32 {
        self.plugin.manifest.concurrency.max(1)
    }

    /// Whether to claim the next batch now (`shared`: other hosts claim
    /// from the same store).
    fn wants_claim(&self, shared: bool) -> bool {
        self.more
            && !self.claiming
            && self.ready.len() <= (batch_for(self.concurrency(), shared) / 2) as usize
    }

    fn idle(&self) -> bool {
        self.ready.is_empty() && self.running == 0 && !self.claiming && !self.more
    }
}

/// What a claim task yields.
struct ClaimDone {
    route: String,
    limit: u32,
    lease_until: Millis,
    result: Result<Vec<Claimed>, StoreError>,
}

struct Dispatcher {
    inbox: Arc<Inbox>,
    registry: Arc<Registry>,
    deliverer: Arc<Deliverer>,
    lanes: HashMap<String, Lane>,
    /// Attempts (and releases), each until its outcome is recorded.
    attempts: JoinSet<()>,
    claims: JoinSet<ClaimDone>,
    /// An attempt sends its route here when its plugin call ended: its slot
    /// is free, though its outcome may still be committing.
    freed_tx: mpsc::UnboundedSender<Ended>,
    freed: mpsc::UnboundedReceiver<Ended>,
    /// Look at the store for due routes at `next_scan`.
    scan_wanted: bool,
    next_scan: Instant,
    /// When the next retry or lease end is due (or the idle poll).
    next_timer: Instant,
}

/// What an attempt tells the dispatcher, by route.
enum Ended {
    /// The plugin call ended: a slot is free.
    Call(String),
    /// The outcome committed: a retry may be due soon, and on an ordered
    /// route the key's next event may be claimed.
    Recorded(String),
}

/// What ended a dispatcher wait.
enum Woken {
    Stop,
    Freed(Ended),
    Claimed(Option<ClaimDone>),
    Due,
}

impl Dispatcher {
    async fn run(mut self, mut stop: watch::Receiver<bool>, grace: Duration) {
        loop {
            let now = Instant::now();
            if self.scan_wanted && now >= self.next_scan {
                self.scan_wanted = false;
                self.next_scan = now
                    + if self.inbox.is_shared() {
                        SHARED_SCAN_GAP
                    } else {
                        SCAN_GAP
                    };
                if let Err(err) = self.scan().await {
                    tracing::error!(error = %err, "inbox workers cannot read the store; trying again");
                    self.next_timer = Instant::now() + ERROR_PAUSE;
                }
            }
            self.refill();
            self.start_ready();
            // A wanted scan resets the timer anyway: wait for it alone.
            let wake_at = if self.scan_wanted {
                self.next_scan
            } else {
                self.next_timer
            };
            let woken = tokio::select! {
                biased;
                _ = stop.wait_for(|stop| *stop) => Woken::Stop,
                Some(route) = self.freed.recv() => Woken::Freed(route),
                Some(joined) = self.claims.join_next(), if !self.claims.is_empty() => {
                    Woken::Claimed(joined.ok())
                }
                () = self.inbox.due_now() => Woken::Due,
                () = tokio::time::sleep_until(wake_at.into()) => Woken::Due,
            };
            match woken {
                Woken::Stop => break,
                Woken::Freed(ended) => self.freed(&ended),
                Woken::Claimed(done) => self.claimed(done),
                Woken::Due => self.scan_wanted = true,
            }
            // Take in everything else that happened meanwhile, so a burst
            // of ends costs one pass, not one each.
            while let Ok(ended) = self.freed.try_recv() {
                self.freed(&ended);
            }
            while let Some(joined) = self.claims.try_join_next() {
                self.claimed(joined.ok());
            }
            while self.attempts.try_join_next().is_some() {}
            self.lanes.retain(|_, lane| !lane.idle());
        }
        self.shut_down(grace).await;
    }

    /// Releases what was claimed but not started, then lets running
    /// attempts finish within `grace`.
    async fn shut_down(mut self, grace: Duration) {
        while let Some(joined) = self.claims.join_next().await {
            self.claimed(joined.ok());
        }
        let now = now_millis();
        let mut released = 0;
        for lane in self.lanes.values_mut() {
            for ready in lane.ready.drain(..) {
                released += 1;
                self.attempts
                    .spawn(release(self.inbox.clone(), ready.event, now));
            }
        }
        if released > 0 {
            tracing::info!(
                events = released,
                "inbox: claimed events not started are put back"
            );
        }
        if self.attempts.is_empty() {
            return;
        }
        tracing::info!(
            attempts = self.attempts.len(),
            "inbox: letting running attempts finish"
        );
        let drain = async { while self.attempts.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, drain).await.is_err() {
            tracing::warn!(
                attempts = self.attempts.len(),
                "inbox: grace period over with attempts running; they are made again after a restart, without spending an attempt"
            );
            self.attempts.abort_all();
        }
    }

    fn freed(&mut self, ended: &Ended) {
        match ended {
            Ended::Call(route) => {
                if let Some(lane) = self.lanes.get_mut(route) {
                    lane.running = lane.running.saturating_sub(1);
                }
            }
            Ended::Recorded(route) => {
                // A retry's due time is new to the timer, and on an ordered
                // route the key's next event is free: look again (at most
                // once per SCAN_GAP).
                self.scan_wanted = true;
                if let Some(lane) = self.lanes.get_mut(route) {
                    lane.more = true;
                }
            }
        }
    }

    fn claimed(&mut self, done: Option<ClaimDone>) {
        // A claim task that panicked (store calls report errors as values,
        // so this would be a bug) leaves its lane claiming; the lane's
        // events are due again when their leases end.
        let Some(ClaimDone {
            route,
            limit,
            lease_until,
            result,
        }) = done
        else {
            return;
        };
        let Some(lane) = self.lanes.get_mut(&route) else {
            return;
        };
        lane.claiming = false;
        match result {
            Ok(events) => {
                lane.more = events.len() as u32 == limit;
                lane.ready
                    .extend(events.into_iter().map(|event| Ready { event, lease_until }));
            }
            Err(err) => {
                tracing::error!(error = %err, %route, "cannot claim queued events; trying again");
                lane.more = false;
                self.scan_wanted = true;
                self.next_scan = Instant::now() + ERROR_PAUSE;
            }
        }
    }

    /// Finds the routes with due events, parks those no plugin serves, and
    /// sets when to look again.
    async fn scan(&mut self) -> Result<(), StoreError> {
        let now = now_millis();
        for route in self.inbox.due_routes(now).await? {
            let Some(plugin) = self.registry.lookup(&route) else {
                // In a fleet another host may serve the route (a plugin in
                // its own folder, a deploy still loading here): parking
                // would hold its events back from that host too.
                if !self.inbox.is_shared() {
                    self.park(&route, now).await?;
                }
                continue;
            };
            let lane = self.lanes.entry(route).or_insert_with(|| Lane {
                plugin: plugin.clone(),
                ready: VecDeque::new(),
                running: 0,
                claiming: false,
                more: false,
            });
            lane.plugin = plugin;
            lane.more = true;
        }
        let wait = match self.inbox.next_due(now_millis()).await? {
            Some(at) => Duration::from_millis((at - now_millis()).max(1) as u64),
            None => IDLE_POLL,
        };
        self.next_timer = Instant::now() + wait.min(IDLE_POLL);
        Ok(())
    }

    /// Claims the next batch for every lane that wants one.
    fn refill(&mut self) {
        let shared = self.inbox.is_shared();
        for (route, lane) in &mut self.lanes {
            if !lane.wants_claim(shared) {
                continue;
            }
            if self.registry.lookup(route).is_none() {
                lane.more = false; // the scan parks its events
                continue;
            }
            lane.claiming = true;
            let concurrency = lane.concurrency();
            let limit = batch_for(concurrency, shared);
            let now = now_millis();
            let lease = lease_for(lane.plugin.manifest.timeout, limit, concurrency);
            let lease_until = now + millis(lease);
            let (inbox, route) = (self.inbox.clone(), route.clone());
            self.claims.spawn(async move {
                let result = inbox.claim(&route, now, lease_until, limit).await;
                ClaimDone {
                    route,
                    limit,
                    lease_until,
                    result,
                }
            });
        }
    }

    /// Starts claimed events while their routes have free slots.
    fn start_ready(&mut self) {
        for (route, lane) in &mut self.lanes {
            while lane.running < lane.concurrency() {
                let Some(Ready { event, lease_until }) = lane.ready.pop_front() else {
                    break;
                };
                let now = now_millis();
                // The newest version; a route that lost its plugin gets its
                // events back, due now, for the scan to park.
                let Some(plugin) = self.registry.lookup(route) else {
                    self.attempts.spawn(release(self.inbox.clone(), event, now));
                    continue;
                };
                if now + millis(plugin.manifest.timeout) >= lease_until {
                    // Its lease could end mid-attempt and another claim run
                    // it too: give it back unspent instead.
                    self.attempts.spawn(release(self.inbox.clone(), event, now));
                    continue;
                }
                lane.running += 1;
                self.attempts.spawn(attempt(
                    self.inbox.clone(),
                    self.deliverer.clone(),
                    plugin,
                    event,
                    self.freed_tx.clone(),
                ));
            }
        }
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

/// Puts a claimed event back, unspent, due at `at`.
async fn release(inbox: Arc<Inbox>, event: Claimed, at: Millis) {
    match inbox.release(event.seq, event.token, at).await {
        Ok(_) => {}
        Err(err) => tracing::warn!(
            error = %err,
            id = %event.id,
            "cannot put a claimed event back; it is due again when its lease ends"
        ),
    }
}

/// One attempt of one event: tells `freed` when the plugin call ended, then
/// records the outcome and says when it did.
async fn attempt(
    inbox: Arc<Inbox>,
    deliverer: Arc<Deliverer>,
    plugin: Arc<Plugin>,
    event: Claimed,
    freed: mpsc::UnboundedSender<Ended>,
) {
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
    async move {
        let Claimed {
            seq,
            token,
            id,
            route,
            attempt,
            received_at,
            request,
        } = event;
        let delivery = delivery::build(id, route.clone(), request, received_at, attempt);
        let called = deliverer.call(&plugin, &delivery).await;
        let _ = freed.send(Ended::Call(route.clone()));
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
                inbox.complete(seq, token, at).await
            }
            Err(CallError::Capacity) => {
                tracing::info!(elapsed_us, retry_in = ?CAPACITY_PAUSE, "no free instance slot; the event waits, no attempt spent");
                inbox.release(seq, token, at + millis(CAPACITY_PAUSE)).await
            }
            Err(err) => match (err.classify().retry, attempt >= policy.max_attempts) {
                (Retry::Never, _) => {
                    tracing::warn!(error = %err, elapsed_us, "event is dead: the plugin rejected it");
                    metrics.dead_letter();
                    inbox.dead(seq, token, at, bounded(err.to_string())).await
                }
                (Retry::Again, true) => {
                    tracing::warn!(error = %err, elapsed_us, "event is dead: last attempt failed");
                    metrics.dead_letter();
                    let error = bounded(format!("{err} (gave up after {attempt} attempts)"));
                    inbox.dead(seq, token, at, error).await
                }
                (Retry::Again, false) => {
                    let (wait, source) = retry_wait(&err, &policy, attempt);
                    tracing::info!(error = %err, elapsed_us, retry_in = ?wait, source, "attempt failed; will retry");
                    metrics.retry();
                    inbox
                        .retry(seq, token, at + millis(wait), bounded(err.to_string()))
                        .await
                }
            },
        };
        match recorded {
            Ok(Recorded::Applied) => {}
            Ok(Recorded::Stale) => tracing::warn!(
                "outcome not recorded: the event was claimed again (its lease ran out) or replayed since"
            ),
            Err(err) => tracing::error!(
                error = %err,
                "cannot record the attempt's outcome; the event is tried again when its lease ends, without spending an attempt"
            ),
        }
        let _ = freed.send(Ended::Recorded(route));
    }
    .instrument(span)
    .await;
}

/// How long to wait before the next attempt after failed attempt
/// `attempt`, and who decided: the plugin's hint (`queue.retry-after`),
/// capped at the policy's `max`, or the host's backoff with full jitter.
fn retry_wait(err: &CallError, policy: &RetryPolicy, attempt: u32) -> (Duration, &'static str) {
    match err {
        CallError::Retry(_, Some(after)) => ((*after).min(policy.max), "plugin"),
        _ => (jitter(policy.backoff_cap(attempt)), "backoff"),
    }
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

/// How often a host sharing its store re-reads the routes' pending counts.
const DEPTH_RESYNC: Duration = Duration::from_secs(1);

/// Keeps `[queue] max_pending` true to the store when other hosts append
/// and settle events too: this host's counts see only its own writes.
async fn resync_depths(inbox: Arc<Inbox>, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(err) = inbox.resync_depths().await {
            tracing::debug!(error = %err, "cannot re-read the pending counts");
        }
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return,
            () = tokio::time::sleep(DEPTH_RESYNC) => {}
        }
    }
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
    fn a_plugins_hint_is_the_wait_capped_at_the_policys_max() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        };
        let hinted = |ms| CallError::Retry("busy".into(), Some(Duration::from_millis(ms)));
        assert_eq!(
            retry_wait(&hinted(3000), &policy, 1),
            (Duration::from_secs(3), "plugin")
        );
        assert_eq!(
            retry_wait(&hinted(0), &policy, 4),
            (Duration::ZERO, "plugin")
        );
        assert_eq!(
            retry_wait(&hinted(u64::MAX), &policy, 1),
            (Duration::from_secs(60), "plugin")
        );
        // No hint, or a failure that is not the plugin's `retry`: the backoff.
        for err in [
            CallError::Retry("busy".into(), None),
            CallError::Trap("boom".into()),
        ] {
            let (wait, source) = retry_wait(&err, &policy, 3);
            assert_eq!(source, "backoff");
            assert!(wait <= Duration::from_secs(4));
        }
    }

    #[test]
    fn leases_cover_the_batch_queued_ahead() {
        let batch = claim_batch(4);
        assert_eq!(batch, 64);
        // 96 events ahead at most, 4 at a time: 24 rounds, plus its own.
        assert_eq!(
            lease_for(Duration::from_secs(5), batch, 4),
            Duration::from_secs(5 * 25) + LEASE_MARGIN
        );
        assert_eq!(claim_batch(1), 16);
        assert_eq!(claim_batch(1000), 1024);
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
