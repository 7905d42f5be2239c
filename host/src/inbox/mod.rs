//! The durable inbox: queue-mode deliveries are stored before they are
//! acknowledged, then handed to their plugins by workers, with retries,
//! until they are done or dead.
//!
//! Owns storing events ([`store`], with the SQLite backend in [`sqlite`]),
//! group commit ([`writer`]), and delivery-id deduplication for both modes,
//! behind one typed API, [`Inbox`]: `append`, `claim`, `complete`, `retry`,
//! `dead`, `release`, `park`, `replay`, `replay_dead`, `purge` (and reads),
//! and each route's pending count for `[queue] max_pending` ([`depth`]). The
//! write protocol between [`Inbox`], its writer thread and a backend ([`store::Write`],
//! [`store::Written`]) is private to this module: a new backend (PostgreSQL)
//! implements [`store::Store`] here, and nothing outside changes.
//!
//! The plugins' key-value namespaces live in the same store and go through
//! the same writer ([`Inbox::kv_write`]); what they mean to a plugin is the
//! runtime's business ([`crate::runtime::kv`]). Does not own HTTP (the
//! server calls [`Inbox::append`] and answers 202; the admin API reads and
//! replays), running plugins, or when to retry (the queue workers,
//! [`crate::queue`], decide; the inbox records).
//!
//! Guarantees:
//! - [`Inbox::append`] returns `Accepted` only after the event is committed
//!   and fsync'd; any error means it was not stored (the sender gets 503 and
//!   retries).
//! - Every accepted event is attempted until its plugin returns `ok` (done)
//!   or `reject`, or its attempts run out (dead). At least once: an attempt
//!   interrupted by a crash is made again.
//! - A sender-given delivery id accepted on a route is not accepted there
//!   again within the dedupe window, unless its event is dead: then the
//!   sender's redelivery revives it (pending again, fresh retry budget).

mod depth;
mod order;
mod postgres;
mod sqlite;
mod store;
mod writer;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

pub use order::{DEFAULT_LANE, OrderKey};
pub use sqlite::open_durable;
pub use store::{
    Appended, Attempt, Backlog, ClaimToken, Claimed, Event, EventKey, Filter, KvWrite, KvWritten,
    Millis, NewEvent, Recorded, Replayed, Status, StoreError, StoredRequest, now_millis,
};
pub use writer::Counts;

use self::depth::{Depths, RouteDepth};
use self::store::{Store, Write, Written};
use self::writer::Writer;

/// Dead events replayed per transaction by [`Inbox::replay_dead`].
pub const REPLAY_BATCH: u32 = 5000;

/// Inbox settings that are not per route.
#[derive(Debug, Clone)]
pub struct InboxConfig {
    /// How long a sender-given delivery id is remembered (`--dedupe-window`).
    pub dedupe_window: Duration,
    /// How long done events are kept before they are purged (`--retention`).
    /// Dead events are kept until replayed.
    pub retention: Duration,
    /// Most writes committed in one transaction. 1 turns group commit off
    /// (for measuring what it buys).
    pub max_batch: usize,
    /// How long events of a route that no plugin serves (removed, or moved to
    /// another route) wait before the workers look for a plugin again.
    pub orphan_retry: Duration,
    /// This host's id (`--host-id`), recorded with its claims and attempts.
    pub host_id: String,
}

impl Default for InboxConfig {
    fn default() -> Self {
        Self {
            dedupe_window: Duration::from_secs(24 * 3600),
            retention: Duration::from_secs(7 * 24 * 3600),
            max_batch: 1024,
            orphan_retry: Duration::from_secs(10),
            host_id: default_host_id(),
        }
    }
}

/// The inbox: a store, its writer thread, and a wake-up for the workers.
pub struct Inbox {
    store: Arc<dyn Store>,
    writer: Writer,
    /// Signalled when an event becomes due now (appended, replayed), so
    /// workers start on it at once instead of at their next poll.
    due_now: Notify,
    config: InboxConfig,
    /// Pending events per route, for `[queue] max_pending`.
    depths: Depths,
    /// The route counter of every event claimed and not yet done or dead,
    /// by `seq`: outcomes name only the event, and must take it off its
    /// route's count.
    claimed: Mutex<HashMap<i64, Arc<RouteDepth>>>,
}

/// What [`Inbox::append_within`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The store's answer: accepted, revived or a duplicate.
    Stored(Appended),
    /// The route already has `max_pending` events pending: nothing was
    /// stored; the sender should try again after `retry_after`.
    Full { pending: u64, retry_after: Duration },
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Inbox {
    /// Opens the embedded store in `data_dir` (`inbox.db`).
    pub fn open(data_dir: &Path, config: InboxConfig) -> anyhow::Result<Self> {
        let store = sqlite::SqliteStore::open(data_dir, &config.host_id)?;
        Self::with_store(Arc::new(store), config)
    }

    /// Opens the shared store in the PostgreSQL database behind `pool`
    /// (migrating it first), which other hosts may be using too.
    pub async fn connect(
        pool: deadpool_postgres::Pool,
        config: InboxConfig,
    ) -> anyhow::Result<Self> {
        let store = postgres::PostgresStore::open(pool, config.host_id.clone()).await?;
        // Blocking: the store's reads block on this runtime.
        tokio::task::spawn_blocking(move || Self::with_store(Arc::new(store), config))
            .await
            .map_err(|err| anyhow::anyhow!("inbox set-up failed: {err}"))?
    }

    /// Whether other hosts share the store (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        self.store.is_shared()
    }

    /// Re-reads every route's pending count from a shared store, where
    /// other hosts append and settle events too (see [`Inbox::depths`]).
    pub async fn resync_depths(&self) -> Result<(), StoreError> {
        let backlogs = self.route_backlogs().await?;
        self.depths
            .resync(backlogs.into_iter().map(|(route, b)| (route, b.pending)));
        Ok(())
    }

    /// An inbox over any [`Store`].
    fn with_store(store: Arc<dyn Store>, config: InboxConfig) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let pending = store
            .route_backlogs()
            .context("cannot count the pending events")?
            .into_iter()
            .map(|(route, backlog)| (route, backlog.pending));
        let writer = Writer::start(store.clone(), config.max_batch)
            .context("cannot start the inbox writer thread")?;
        Ok(Self {
            store,
            writer,
            due_now: Notify::new(),
            config,
            depths: Depths::seeded(pending),
            claimed: Mutex::new(HashMap::new()),
        })
    }

    /// Events pending per route, as counted in memory (what
    /// `[queue] max_pending` is checked against), sorted by route.
    pub fn depths(&self) -> Vec<(String, u64)> {
        self.depths.snapshot()
    }

    /// The settings it was opened with.
    pub fn config(&self) -> &InboxConfig {
        &self.config
    }

    /// Transactions the writer committed, and the writes in them.
    pub fn counts(&self) -> &Counts {
        self.writer.counts()
    }

    /// Stores `event` durably, or finds it is a duplicate (or revives the
    /// dead event of its id), whatever its route has pending.
    pub async fn append(&self, event: NewEvent) -> Result<Appended, StoreError> {
        match self.append_within(event, u64::MAX).await? {
            Admission::Stored(appended) => Ok(appended),
            Admission::Full { .. } => Err(StoreError::Backend(
                "no route can have u64::MAX events pending".into(),
            )),
        }
    }

    /// Like [`Inbox::append`], unless the event's route already has
    /// `max_pending` events pending: then nothing is stored. Checked
    /// against the in-memory count, so it costs no read.
    pub async fn append_within(
        &self,
        event: NewEvent,
        max_pending: u64,
    ) -> Result<Admission, StoreError> {
        let depth = self.depths.route(&event.route);
        let Some(reservation) = depth.reserve(max_pending) else {
            return Ok(Admission::Full {
                pending: depth.pending(),
                retry_after: depth.retry_after(max_pending),
            });
        };
        let dedupe_since = event.received_at - millis(self.config.dedupe_window);
        let written = self
            .writer
            .write(Write::Append {
                event,
                dedupe_since,
            })
            .await?;
        match written {
            Written::Appended(appended) => {
                if matches!(
                    appended,
                    Appended::Accepted { .. } | Appended::Revived { .. }
                ) {
                    reservation.keep();
                    self.due_now.notify_one();
                }
                Ok(Admission::Stored(appended))
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Remembers that a sync-mode delivery with a sender-given `id` was
    /// handled on `route`.
    pub async fn remember(&self, route: &str, id: &str) -> Result<(), StoreError> {
        self.writer
            .write(Write::Remember {
                route: route.to_owned(),
                id: id.to_owned(),
                at: now_millis(),
            })
            .await
            .map(drop)
    }

    /// Commits one tiny write through the writer, to learn whether the store
    /// is writable right now (readiness). It records a dedupe entry on the
    /// route `""`, which no route can have (routes start with `/`), dated
    /// long ago so the next purge removes it.
    pub async fn probe(&self) -> Result<(), StoreError> {
        self.writer
            .write(Write::Remember {
                route: String::new(),
                id: "readyz-probe".to_owned(),
                at: 0,
            })
            .await
            .map(drop)
    }

    /// How many events are pending and when the oldest arrived.
    pub async fn backlog(&self) -> Result<Backlog, StoreError> {
        self.read(|store| store.backlog()).await
    }

    /// Every recorded attempt at event `seq`, oldest first.
    pub async fn attempts(&self, seq: i64) -> Result<Vec<Attempt>, StoreError> {
        self.read(move |store| store.attempts(seq)).await
    }

    /// Per route with pending events: how many, and when the oldest arrived.
    pub async fn route_backlogs(&self) -> Result<Vec<(String, Backlog)>, StoreError> {
        self.read(|store| store.route_backlogs()).await
    }

    /// Whether `id` was accepted or handled on `route` within the dedupe
    /// window.
    pub async fn seen(&self, route: &str, id: &str) -> Result<bool, StoreError> {
        let (route, id) = (route.to_owned(), id.to_owned());
        let since = now_millis() - millis(self.config.dedupe_window);
        self.read(move |store| store.seen(&route, &id, since)).await
    }

    /// The newest event matching `key`, with its request.
    pub async fn get(&self, key: EventKey) -> Result<Option<Event>, StoreError> {
        self.read(move |store| store.get(&key)).await
    }

    /// Events matching `filter`, newest first.
    pub async fn list(&self, filter: Filter) -> Result<Vec<Event>, StoreError> {
        self.read(move |store| store.list(&filter)).await
    }

    /// Puts a done or dead event back to pending, due now, with a fresh
    /// retry budget.
    pub async fn replay(&self, key: EventKey) -> Result<Replayed, StoreError> {
        match self
            .writer
            .write(Write::Replay {
                key,
                at: now_millis(),
            })
            .await?
        {
            Written::Replayed(replayed) => {
                if let Replayed::Replayed { route, .. } = &replayed {
                    self.depths.route(route).add(1);
                    self.due_now.notify_one();
                }
                Ok(replayed)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Puts every dead event (of `route`, if given) back to pending, due
    /// now, with a fresh retry budget; returns how many. In batches of
    /// [`REPLAY_BATCH`], each its own transaction, so a big replay never
    /// holds the writer (and the senders' acknowledgements) for long. Only
    /// events dead when it was asked are replayed: one that a fast plugin
    /// rejects again meanwhile stays dead, and a second call replays what
    /// died since (none, right after the first).
    pub async fn replay_dead(&self, route: Option<&str>) -> Result<u64, StoreError> {
        let dead_by = now_millis();
        let mut replayed = 0;
        loop {
            let write = Write::ReplayDead {
                route: route.map(str::to_owned),
                dead_by,
                at: now_millis(),
                limit: REPLAY_BATCH,
            };
            let counts = match self.writer.write(write).await? {
                Written::ReplayedDead(counts) => counts,
                other => return Err(unexpected(&other)),
            };
            for (route, n) in &counts {
                self.depths.route(route).add(*n);
            }
            let batch: u64 = counts.iter().map(|(_, n)| n).sum();
            replayed += batch;
            if batch > 0 {
                self.due_now.notify_one();
            }
            if batch < u64::from(REPLAY_BATCH) {
                return Ok(replayed);
            }
        }
    }

    /// The value of `key` in `plugin`'s key-value namespace, as last
    /// committed.
    pub async fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (plugin, key) = (plugin.to_owned(), key.to_owned());
        self.read(move |store| store.kv_get(&plugin, &key)).await
    }

    /// The keys of `plugin`'s namespace starting with `prefix`, in byte order.
    pub async fn kv_keys(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        let (plugin, prefix) = (plugin.to_owned(), prefix.to_owned());
        self.read(move |store| store.kv_keys(&plugin, &prefix))
            .await
    }

    /// Applies `write` through the writer: committed (durable) when this
    /// returns `Ok`.
    pub async fn kv_write(&self, write: KvWrite) -> Result<KvWritten, StoreError> {
        match self.writer.write(Write::Kv(write)).await? {
            Written::Kv(written) => Ok(written),
            other => Err(unexpected(&other)),
        }
    }

    /// Commits what was written so far and stops the writer; later writes
    /// fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        self.writer.close().await;
    }

    /// Starts an attempt on up to `limit` events of `route` due at `now`, in
    /// acceptance order, each leased until `lease_until`, under a fresh
    /// claim token. An event whose lease runs out (its host died) is due
    /// again.
    pub async fn claim(
        &self,
        route: &str,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> Result<Vec<Claimed>, StoreError> {
        let write = Write::Claim {
            route: route.to_owned(),
            now,
            lease_until,
            limit,
        };
        match self.writer.write(write).await? {
            Written::Claimed(claimed) => {
                let depth = self.depths.route(route);
                let mut leased = self.claimed.lock().expect("claimed poisoned");
                for event in &claimed {
                    leased.insert(event.seq, depth.clone());
                }
                Ok(claimed)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// The attempt of claim `token` on event `seq` succeeded: the event is
    /// done.
    pub async fn complete(
        &self,
        seq: i64,
        token: ClaimToken,
        at: Millis,
    ) -> Result<Recorded, StoreError> {
        let recorded = self.record(Write::Complete { seq, token, at }).await?;
        self.settled(seq, recorded);
        Ok(recorded)
    }

    /// The attempt of claim `token` on event `seq` failed with `error`: try
    /// again at `at`.
    pub async fn retry(
        &self,
        seq: i64,
        token: ClaimToken,
        at: Millis,
        error: String,
    ) -> Result<Recorded, StoreError> {
        self.record(Write::Retry {
            seq,
            token,
            at,
            error,
        })
        .await
    }

    /// The attempt of claim `token` on event `seq` failed for good with
    /// `error`: the event is dead (kept until replayed).
    pub async fn dead(
        &self,
        seq: i64,
        token: ClaimToken,
        at: Millis,
        error: String,
    ) -> Result<Recorded, StoreError> {
        let recorded = self
            .record(Write::Dead {
                seq,
                token,
                at,
                error,
            })
            .await?;
        self.settled(seq, recorded);
        Ok(recorded)
    }

    /// Event `seq` is done or dead if `recorded` applied: off its route's
    /// pending count. (A stale outcome changed nothing; the attempt that
    /// holds the event reports its own.)
    fn settled(&self, seq: i64, recorded: Recorded) {
        if recorded != Recorded::Applied {
            return;
        }
        let depth = self.claimed.lock().expect("claimed poisoned").remove(&seq);
        if let Some(depth) = depth {
            depth.settle();
        }
    }

    /// The host did not make the attempt of claim `token` on event `seq`
    /// (no free instance slot, shutting down): the event is due again at
    /// `at`, and no attempt is spent.
    pub async fn release(
        &self,
        seq: i64,
        token: ClaimToken,
        at: Millis,
    ) -> Result<Recorded, StoreError> {
        self.record(Write::Release { seq, token, at }).await
    }

    /// Postpones the events of `route` due at `now` to `until`, noting
    /// `error`, without spending an attempt (no plugin serves the route).
    /// Returns how many were postponed.
    pub async fn park(
        &self,
        route: &str,
        now: Millis,
        until: Millis,
        error: String,
    ) -> Result<u64, StoreError> {
        self.count(Write::Park {
            route: route.to_owned(),
            now,
            until,
            error,
        })
        .await
    }

    /// Deletes up to `limit` done events finished before `done_before`, and
    /// dedupe records older than `seen_before`; returns the rows deleted.
    pub async fn purge(
        &self,
        done_before: Millis,
        seen_before: Millis,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.count(Write::Purge {
            done_before,
            seen_before,
            limit,
        })
        .await
    }

    /// Routes with an event due at `now`.
    pub async fn due_routes(&self, now: Millis) -> Result<Vec<String>, StoreError> {
        self.read(move |store| store.due_routes(now)).await
    }

    /// When the next event is due (a retry or a lease running out), if any
    /// is pending.
    pub async fn next_due(&self, now: Millis) -> Result<Option<Millis>, StoreError> {
        self.read(move |store| store.next_due(now)).await
    }

    /// Resolves when an event may have become due now (appended, replayed),
    /// so the workers start on it at once instead of at their next poll.
    pub async fn due_now(&self) {
        self.due_now.notified().await;
    }

    async fn record(&self, write: Write) -> Result<Recorded, StoreError> {
        match self.writer.write(write).await? {
            Written::Applied(true) => Ok(Recorded::Applied),
            Written::Applied(false) => Ok(Recorded::Stale),
            other => Err(unexpected(&other)),
        }
    }

    async fn count(&self, write: Write) -> Result<u64, StoreError> {
        match self.writer.write(write).await? {
            Written::Count(rows) => Ok(rows),
            other => Err(unexpected(&other)),
        }
    }

    /// Runs a blocking read off the async threads.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || read(store.as_ref()))
            .await
            .unwrap_or_else(|err| Err(StoreError::Backend(format!("read failed: {err}"))))
    }
}

fn unexpected(written: &Written) -> StoreError {
    let kind = match written {
        Written::Appended(_) => "appended",
        Written::Done => "done",
        Written::Claimed(_) => "claimed",
        Written::Applied(_) => "applied",
        Written::Replayed(_) => "replayed",
        Written::ReplayedDead(_) => "replayed dead",
        Written::Count(_) => "count",
        Written::Kv(_) => "kv",
    };
    StoreError::Backend(format!("store answered `{kind}` to another kind of write"))
}

/// The host id used when `--host-id` is not given: the machine's host name
/// (what `hostname` prints), or `hookhost` when it cannot be read.
pub fn default_host_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "hookhost".to_owned())
}

/// `duration` in [`Millis`], saturating.
pub fn millis(duration: Duration) -> Millis {
    Millis::try_from(duration.as_millis()).unwrap_or(Millis::MAX / 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, route: &str) -> NewEvent {
        event_at(id, route, now_millis())
    }

    fn event_at(id: &str, route: &str, at: Millis) -> NewEvent {
        NewEvent {
            id: id.into(),
            dedupe: true,
            route: route.into(),
            received_at: at,
            order_key: None,
            request: StoredRequest {
                method: "POST".into(),
                path: route.into(),
                query: String::new(),
                headers: Vec::new(),
                body: b"{}".to_vec(),
                verified_by: None,
            },
        }
    }

    async fn within(inbox: &Inbox, id: &str, max: u64) -> Admission {
        inbox
            .append_within(event(id, "/hooks/a"), max)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn route_depths_follow_appends_outcomes_and_replays_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(dir.path(), InboxConfig::default()).unwrap();
        for id in ["e1", "e2"] {
            assert!(matches!(
                within(&inbox, id, 2).await,
                Admission::Stored(Appended::Accepted { .. })
            ));
        }
        let Admission::Full { pending, .. } = within(&inbox, "e3", 2).await else {
            panic!("not refused");
        };
        assert_eq!(pending, 2);
        assert!(
            inbox.get(key("e3")).await.unwrap().is_none(),
            "nothing stored"
        );
        // A duplicate takes no room.
        assert!(matches!(
            within(&inbox, "e1", 3).await,
            Admission::Stored(Appended::Duplicate)
        ));
        assert_eq!(inbox.depths(), [("/hooks/a".to_owned(), 2)]);

        let now = now_millis();
        let claimed = inbox
            .claim("/hooks/a", now, now + 60_000, 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 2);
        let (done, dead) = (&claimed[0], &claimed[1]);
        inbox
            .retry(done.seq, done.token, now, "again".into())
            .await
            .unwrap();
        assert_eq!(
            inbox.depths(),
            [("/hooks/a".to_owned(), 2)],
            "a retry stays"
        );
        let again = inbox
            .claim("/hooks/a", now, now + 60_000, 10)
            .await
            .unwrap();
        assert_eq!(again[0].attempt, 2);
        // A stale outcome (the first attempt's) takes nothing off.
        assert_eq!(
            inbox.complete(done.seq, done.token, now).await.unwrap(),
            Recorded::Stale
        );
        inbox.complete(done.seq, again[0].token, now).await.unwrap();
        inbox
            .dead(dead.seq, dead.token, now, "no".into())
            .await
            .unwrap();
        assert_eq!(inbox.depths(), [("/hooks/a".to_owned(), 0)]);
        assert_eq!(inbox.backlog().await.unwrap().pending, 0);

        // The sender's redelivery of the dead one, then a bulk replay: back.
        assert!(matches!(
            within(&inbox, "e2", 5).await,
            Admission::Stored(Appended::Revived { .. })
        ));
        assert_eq!(inbox.replay_dead(None).await.unwrap(), 0);
        assert!(matches!(
            inbox.replay(key("e1")).await.unwrap(),
            Replayed::Replayed { .. }
        ));
        assert_eq!(inbox.depths(), [("/hooks/a".to_owned(), 2)]);
        inbox.close().await;
        drop(inbox);

        let reopened = Inbox::open(dir.path(), InboxConfig::default()).unwrap();
        assert_eq!(reopened.depths(), [("/hooks/a".to_owned(), 2)], "seeded");
        assert_eq!(reopened.backlog().await.unwrap().pending, 2);
        reopened.close().await;
    }

    fn key(id: &str) -> EventKey {
        EventKey {
            id: id.into(),
            route: None,
        }
    }

    /// Part 3 of issue 16: an outcome is fenced by its claim's token, not by
    /// the attempt number, which a replay starts again from 1.
    #[tokio::test]
    async fn a_late_outcome_from_before_a_replay_never_lands_on_the_replayed_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(dir.path(), InboxConfig::default()).unwrap();
        let key = EventKey {
            id: "e1".into(),
            route: None,
        };
        let now = now_millis();
        inbox.append(event_at("e1", "/hooks/a", now)).await.unwrap();
        // Claim 1's lease runs out while its plugin is still busy; claim 2
        // ends the event dead; an operator replays it; claim 3 runs it.
        let first = inbox.claim("/hooks/a", now, now + 10, 10).await.unwrap();
        let second = inbox
            .claim("/hooks/a", now + 10, now + 60_000, 10)
            .await
            .unwrap();
        let recorded = inbox
            .dead(second[0].seq, second[0].token, now + 20, "rejected".into())
            .await;
        assert_eq!(recorded.unwrap(), Recorded::Applied);
        assert!(matches!(
            inbox.replay(key.clone()).await.unwrap(),
            Replayed::Replayed { .. }
        ));
        let later = now_millis();
        let third = inbox
            .claim("/hooks/a", later, later + 60_000, 10)
            .await
            .unwrap();
        assert_eq!(
            third[0].attempt, first[0].attempt,
            "a replay counts from 1 again"
        );

        // Claim 1's plugin finally answers: refused, the replay stays pending.
        let late = inbox.complete(first[0].seq, first[0].token, later).await;
        assert_eq!(late.unwrap(), Recorded::Stale);
        assert_eq!(
            inbox.get(key.clone()).await.unwrap().unwrap().status,
            Status::Pending
        );
        let own = inbox.complete(third[0].seq, third[0].token, later).await;
        assert_eq!(own.unwrap(), Recorded::Applied);
        assert_eq!(inbox.get(key).await.unwrap().unwrap().status, Status::Done);
        inbox.close().await;
    }
}
