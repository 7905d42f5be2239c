//! The durable inbox: queue-mode deliveries are stored before they are
//! acknowledged, then handed to their plugins by workers, with retries,
//! until they are done or dead.
//!
//! Owns storing events ([`store`], with the SQLite backend in [`sqlite`]),
//! group commit ([`writer`]), and delivery-id deduplication for both modes,
//! behind one typed API, [`Inbox`]: `append`, `claim`, `complete`, `retry`,
//! `dead`, `release`, `park`, `replay`, `purge` (and reads). The write protocol between
//! [`Inbox`], its writer thread and a backend ([`store::Write`],
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
//!   again within the dedupe window.

mod order;
mod sqlite;
mod store;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

pub use order::{DEFAULT_LANE, OrderKey};
pub use store::{
    Appended, Backlog, ClaimToken, Claimed, Event, EventKey, Filter, KvWrite, KvWritten, Millis,
    NewEvent, Recorded, Replayed, Status, StoreError, StoredRequest, now_millis,
};
pub use writer::Counts;

use self::store::{Store, Write, Written};
use self::writer::Writer;

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
}

impl Default for InboxConfig {
    fn default() -> Self {
        Self {
            dedupe_window: Duration::from_secs(24 * 3600),
            retention: Duration::from_secs(7 * 24 * 3600),
            max_batch: 1024,
            orphan_retry: Duration::from_secs(10),
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
        let store = sqlite::SqliteStore::open(data_dir)?;
        Self::with_store(Arc::new(store), config)
    }

    /// An inbox over any [`Store`].
    fn with_store(store: Arc<dyn Store>, config: InboxConfig) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let writer = Writer::start(store.clone(), config.max_batch)
            .context("cannot start the inbox writer thread")?;
        Ok(Self {
            store,
            writer,
            due_now: Notify::new(),
            config,
        })
    }

    /// The settings it was opened with.
    pub fn config(&self) -> &InboxConfig {
        &self.config
    }

    /// Transactions the writer committed, and the writes in them.
    pub fn counts(&self) -> &Counts {
        self.writer.counts()
    }

    /// Stores `event` durably, or finds it is a duplicate.
    pub async fn append(&self, event: NewEvent) -> Result<Appended, StoreError> {
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
                if matches!(appended, Appended::Accepted { .. }) {
                    self.due_now.notify_one();
                }
                Ok(appended)
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
                if matches!(replayed, Replayed::Replayed { .. }) {
                    self.due_now.notify_one();
                }
                Ok(replayed)
            }
            other => Err(unexpected(&other)),
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
            Written::Claimed(claimed) => Ok(claimed),
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
        self.record(Write::Complete { seq, token, at }).await
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
        self.record(Write::Dead {
            seq,
            token,
            at,
            error,
        })
        .await
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
        Written::Count(_) => "count",
        Written::Kv(_) => "kv",
    };
    StoreError::Backend(format!("store answered `{kind}` to another kind of write"))
}

/// `duration` in [`Millis`], saturating.
pub fn millis(duration: Duration) -> Millis {
    Millis::try_from(duration.as_millis()).unwrap_or(Millis::MAX / 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, at: Millis) -> NewEvent {
        NewEvent {
            id: id.into(),
            dedupe: true,
            route: "/hooks/a".into(),
            received_at: at,
            order_key: None,
            request: StoredRequest {
                method: "POST".into(),
                path: "/hooks/a".into(),
                query: String::new(),
                headers: Vec::new(),
                body: b"{}".to_vec(),
                verified_by: None,
            },
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
        inbox.append(event("e1", now)).await.unwrap();
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
