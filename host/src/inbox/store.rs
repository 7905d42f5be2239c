//! The storage contract of the inbox: what a backend must do, in terms small
//! enough that the embedded SQLite backend ([`super::sqlite`]) and a later
//! PostgreSQL one shared by many hosts implement the same thing.
//!
//! Owns the event model (statuses, attempts, leases, timestamps) and the
//! [`Store`] trait. Does not own batching (the writer thread in
//! [`super::writer`] groups writes into one transaction), retry policy or
//! plugin calls (the workers in [`crate::queue`]).
//!
//! The model:
//! - An event is `pending` until a worker's attempt ends it as `done` (the
//!   plugin returned `ok`) or `dead` (`reject`, or attempts exhausted).
//! - A pending event is *due* when `next_attempt_at <= now`. Claiming an
//!   event starts an attempt and leases the event: `claimed_until` and
//!   `next_attempt_at` both move to the end of the lease, and the claim gets
//!   a fresh [`ClaimToken`], never issued before (in SQLite a counter kept in
//!   the file; in PostgreSQL a sequence). Claims are taken in batches: one
//!   transaction claims up to `limit` due events of a route, in acceptance
//!   order (the claim is one `UPDATE … WHERE seq IN (SELECT … LIMIT n)`; in
//!   PostgreSQL the same with `FOR UPDATE SKIP LOCKED`, so hosts sharing the
//!   table never claim one event twice). A host that dies mid-attempt never
//!   reports back, so the event simply becomes due again when the lease
//!   ends: at least once, with no per-process state to clean up.
//! - `attempts` counts attempts *spent*: the ones whose outcome the plugin
//!   decided (done, retry, dead). It goes up when an outcome is recorded,
//!   not when a claim is taken, so an attempt the host itself cut short (a
//!   crash, a shutdown, a full instance pool, a store error: the event is
//!   [released](Write::Release) or its lease runs out) costs the event
//!   nothing. The plugin sees `attempts + 1`.
//! - Every outcome names the claim it ends (`seq` and its token); a backend
//!   applies it only if the event is still pending under that same token. A
//!   late result from a claim whose lease ran out (the event was claimed
//!   again) or from before a replay (a replay drops the token) changes
//!   nothing: an outcome lands only on the delivery it belongs to.
//! - Order: an event with an order key is claimed only when no older
//!   pending event of its route has the same key (one waiting for a retry,
//!   or in an attempt, holds its key back, and only its key). Events without
//!   one are claimed in any order. (In PostgreSQL the same `NOT EXISTS`, and
//!   the claim locks the key's head row.)
//! - Deduplication: a sender-given delivery id is remembered per route for
//!   the dedupe window; a second delivery of it inside the window is a
//!   duplicate while its event is pending or done. A dead event does not
//!   swallow the sender's redelivery: it revives the event (pending again,
//!   a fresh retry budget, as a replay would). Host-made ids are unique and
//!   never looked up.
//!
//! Timestamps are milliseconds since the Unix epoch ([`Millis`]).

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// The current time in [`Millis`].
pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or_default()
}

/// Where an event is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Waiting for an attempt, or in one.
    Pending,
    /// The plugin handled it (`ok`).
    Done,
    /// The plugin rejected it, or every attempt failed: parked for an
    /// operator, who may replay it.
    Dead,
}

impl Status {
    /// The name used in the store and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Done => "done",
            Status::Dead => "dead",
        }
    }

    /// Parses `pending`, `done` or `dead`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Status::Pending),
            "done" => Some(Status::Done),
            "dead" => Some(Status::Dead),
            _ => None,
        }
    }
}

/// A delivery accepted in queue mode, before it is stored.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The delivery id (the sender's, or made by the host).
    pub id: String,
    /// True when the sender gave the id: it is then checked against, and
    /// remembered for, the dedupe window.
    pub dedupe: bool,
    /// The route that accepted it.
    pub route: String,
    /// When the host received it.
    pub received_at: Millis,
    /// Its order key, on a route with `[queue] order_key` (see
    /// [`super::OrderKey`]); `None` on a route without one.
    pub order_key: Option<String>,
    /// What the sender sent.
    pub request: StoredRequest,
}

impl NewEvent {
    /// Roughly how many bytes storing it writes; bounds a batch.
    pub fn size(&self) -> usize {
        let request = &self.request;
        request.body.len()
            + request
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>()
            + self.id.len()
            + self.route.len()
            + self.order_key.as_ref().map_or(0, String::len)
            + request.path.len()
            + request.query.len()
    }
}

/// Which event an operator means: the newest with this id, on `route` if
/// given. (An id is unique per route within the dedupe window; after it, or
/// on another route, the same id may be accepted again.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventKey {
    pub id: String,
    pub route: Option<String>,
}

/// Names one claim of one event: outcomes carry it, and apply only while
/// the event is still held under it (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClaimToken(pub i64);

/// An event claimed for one attempt: what the plugin needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The store's own key for the event.
    pub seq: i64,
    /// This claim's fence: what its outcome must name.
    pub token: ClaimToken,
    pub id: String,
    pub route: String,
    /// This attempt's number, 1 for the first: attempts spent so far plus 1.
    pub attempt: u32,
    pub received_at: Millis,
    /// What the sender sent.
    pub request: StoredRequest,
}

/// An event as the admin API shows it.
#[derive(Debug, Clone)]
pub struct Event {
    /// The store's own key: arrival order.
    pub seq: i64,
    pub id: String,
    pub route: String,
    /// Its order key; `None` when its route had no `[queue] order_key`.
    pub order_key: Option<String>,
    pub status: Status,
    /// Attempts spent since it was accepted (or last replayed): those that
    /// ended with the plugin's outcome. A running attempt is not counted yet.
    pub attempts: u32,
    /// How often an operator replayed it.
    pub replays: u32,
    pub received_at: Millis,
    /// When a pending event is next tried; while an attempt runs, the end of
    /// its lease. `None` once done or dead.
    pub next_attempt_at: Option<Millis>,
    /// End of the running attempt's lease; `None` when no attempt runs.
    pub claimed_until: Option<Millis>,
    pub done_at: Option<Millis>,
    pub dead_at: Option<Millis>,
    /// Why the most recent failed attempt failed (kept after a later success).
    pub last_error: Option<String>,
    /// The host id of the newest claim: the host running the attempt, or
    /// the one that made the last. `None` before the first claim.
    pub host: Option<String>,
    /// The request itself; only filled in by [`Store::get`].
    pub request: Option<StoredRequest>,
}

/// How one attempt at an event ended (`GET /events/{id}` shows them all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The event's replay count then: 0 for attempts before any replay.
    pub replay: u32,
    /// 1 for the first attempt (of the delivery, or since that replay).
    pub attempt: u32,
    /// When its outcome was recorded.
    pub at: Millis,
    /// `ok`, `retry` (tried again later) or `dead`.
    pub outcome: String,
    /// The plugin's or the host's reason, for `retry` and `dead`.
    pub error: Option<String>,
    /// The id of the host that made it (`None` for attempts recorded before
    /// hosts had ids).
    pub host: Option<String>,
}

/// The stored request of an event.
/// What a sender sent, as the host keeps it: what a delivery is built from
/// (see [`crate::delivery::build`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub verified_by: Option<String>,
}

/// Which events to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<Status>,
    pub route: Option<String>,
    /// Only events with a `seq` below this one (paging: pass the last `seq`
    /// of the previous page).
    pub before: Option<i64>,
    /// Only events received at or after this time.
    pub received_since: Option<Millis>,
    /// Only events received before this time.
    pub received_until: Option<Millis>,
    pub limit: u32,
}

/// One change to the store. The writer applies a batch of them in one
/// transaction (see [`Store::apply`]).
#[derive(Debug, Clone)]
pub(crate) enum Write {
    /// Store a new event, unless its (sender-given) id was accepted on its
    /// route at or after `dedupe_since`: then a duplicate, or the revival of
    /// that event if it is dead. → [`Written::Appended`]
    Append {
        event: NewEvent,
        dedupe_since: Millis,
    },
    /// Remember that a sync-mode delivery with a sender-given id succeeded,
    /// so a repeat is answered as a duplicate. → [`Written::Done`]
    Remember {
        route: String,
        id: String,
        at: Millis,
    },
    /// Start an attempt on up to `limit` due events of `route`, in
    /// acceptance order, leased until `lease_until`, under one fresh claim
    /// token. → [`Written::Claimed`]
    Claim {
        route: String,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    },
    /// The attempt succeeded: done, one attempt spent. → [`Written::Applied`]
    Complete {
        seq: i64,
        token: ClaimToken,
        at: Millis,
    },
    /// The attempt failed: one attempt spent, try again at `at`.
    /// → [`Written::Applied`]
    Retry {
        seq: i64,
        token: ClaimToken,
        at: Millis,
        error: String,
    },
    /// The attempt failed for good: one attempt spent, dead.
    /// → [`Written::Applied`]
    Dead {
        seq: i64,
        token: ClaimToken,
        at: Millis,
        error: String,
    },
    /// The host did not make the attempt (no free instance slot, shutting
    /// down): pending again, due at `at`, no attempt spent.
    /// → [`Written::Applied`]
    Release {
        seq: i64,
        token: ClaimToken,
        at: Millis,
    },
    /// No plugin serves `route`: postpone its due events to `until` with
    /// `error`, without spending an attempt. → [`Written::Count`]
    Park {
        route: String,
        now: Millis,
        until: Millis,
        error: String,
    },
    /// Put a done or dead event back to pending, due at `at`, with its
    /// attempts reset. → [`Written::Replayed`]
    Replay { key: EventKey, at: Millis },
    /// Put up to `limit` dead events (of `route`, if given) that died at or
    /// before `dead_by` back to pending, due at `at`, with their attempts
    /// reset. → [`Written::ReplayedDead`]
    ReplayDead {
        route: Option<String>,
        dead_by: Millis,
        at: Millis,
        limit: u32,
    },
    /// Delete up to `limit` done events finished before `done_before`, and
    /// dedupe records older than `seen_before`. → [`Written::Count`]
    Purge {
        done_before: Millis,
        seen_before: Millis,
        limit: u32,
    },
    /// A change to a plugin's key-value namespace. → [`Written::Kv`]
    Kv(KvWrite),
}

impl Write {
    /// Roughly how many bytes it writes; bounds a batch.
    pub fn size(&self) -> usize {
        match self {
            Write::Append { event, .. } => event.size(),
            Write::Kv(KvWrite::Set { key, value, .. }) => 64 + key.len() + value.len(),
            _ => 64,
        }
    }
}

/// A write to a plugin's key-value namespace. The host has checked key and
/// value sizes already; the store checks the namespace's total (keys plus
/// values) inside the transaction, so concurrent writes cannot overshoot it.
#[derive(Debug, Clone)]
pub enum KvWrite {
    /// Set `key` to `value`, unless that takes the total over `max_total`.
    /// → [`KvWritten::Set`] or [`KvWritten::QuotaExceeded`]
    Set {
        plugin: String,
        key: String,
        value: Vec<u8>,
        max_total: u64,
    },
    /// Delete `key`. → [`KvWritten::Deleted`]
    Delete { plugin: String, key: String },
    /// Add `delta` to the decimal integer at `key` (missing: 0) and store the
    /// sum as decimal text. → [`KvWritten::Incremented`],
    /// [`KvWritten::NotANumber`] or [`KvWritten::QuotaExceeded`]
    Increment {
        plugin: String,
        key: String,
        delta: i64,
        max_value: u64,
        max_total: u64,
    },
}

/// What a [`KvWrite`] came to. The refusals change nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvWritten {
    Set,
    /// Whether the key was set.
    Deleted(bool),
    /// The new value.
    Incremented(i64),
    /// The write would take the namespace over a limit; why, for the plugin.
    QuotaExceeded(String),
    /// The stored value is not a decimal i64, or the sum overflows.
    NotANumber(String),
}

/// The namespace total after setting `key` from `old` (its current value)
/// to `value`, in a namespace of `usage` bytes; or, if that grows the total
/// past `max_total`, the refusal for the plugin. A write that does not grow
/// the total is always allowed, so a namespace over a lowered limit can
/// shrink. Both backends decide quotas here, inside their transactions.
pub(crate) fn kv_total_after(
    key: &str,
    old: Option<&[u8]>,
    value: &[u8],
    usage: u64,
    max_total: u64,
) -> Result<u64, String> {
    let old_size = old.map_or(0, |old| (key.len() + old.len()) as u64);
    let new_size = (key.len() + value.len()) as u64;
    let total = usage.saturating_sub(old_size) + new_size;
    if new_size > old_size && total > max_total {
        return Err(format!(
            "storing `{key}` would take the plugin's key-value total to {total} bytes, over its limit of {max_total} (`kv.max_total` in its manifest); delete keys or raise the limit"
        ));
    }
    Ok(total)
}

/// What incrementing `key` (currently `old`; missing counts as 0) by
/// `delta` stores: the sum and its decimal text, or the refusal.
pub(crate) fn kv_incremented(
    key: &str,
    old: Option<&[u8]>,
    delta: i64,
    max_value: u64,
) -> Result<(i64, String), KvWritten> {
    let number = match old {
        None => Some(0),
        Some(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse::<i64>().ok()),
    };
    let Some(number) = number else {
        return Err(KvWritten::NotANumber(format!(
            "the value of `{key}` is not a decimal integer"
        )));
    };
    let Some(sum) = number.checked_add(delta) else {
        return Err(KvWritten::NotANumber(format!(
            "adding {delta} to `{key}` overflows a 64-bit integer"
        )));
    };
    let text = sum.to_string();
    if text.len() as u64 > max_value {
        return Err(KvWritten::QuotaExceeded(format!(
            "the sum is {} bytes, over the plugin's value limit of {max_value} (`kv.max_value`)",
            text.len()
        )));
    }
    Ok((sum, text))
}

/// How many of `routes` (one per event a bulk replay touched) are each
/// route, in the order each first appears: [`Written::ReplayedDead`].
pub(crate) fn count_by_route(routes: impl IntoIterator<Item = String>) -> Vec<(String, u64)> {
    let mut counts: Vec<(String, u64)> = Vec::new();
    for route in routes {
        match counts.iter_mut().find(|(r, _)| *r == route) {
            Some((_, n)) => *n += 1,
            None => counts.push((route, 1)),
        }
    }
    counts
}

/// What an [`Write::Append`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored (durably, once the batch committed) as event `seq`.
    Accepted { seq: i64 },
    /// The id was accepted on this route within the window, and that event
    /// is dead: the sender's redelivery made event `seq` pending again, with
    /// a fresh retry budget (counted in its `replays`).
    Revived { seq: i64 },
    /// The id was already accepted on this route within the window, and
    /// that event is pending or done.
    Duplicate,
}

/// What recording an attempt's outcome came to. Outcomes are fenced by the
/// claim: one for an attempt that no longer holds the event changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The event moved on (done, pending again, or dead).
    Applied,
    /// The event is no longer held by that claim (its lease ran out and it
    /// was claimed again, or it was replayed): nothing changed.
    Stale,
}

/// What a [`Write::Replay`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// Event `seq`, of `route`, is pending again.
    Replayed {
        seq: i64,
        route: String,
    },
    /// The event is still pending: nothing to replay.
    Pending,
    NotFound,
}

/// The result of one [`Write`], by kind.
#[derive(Debug, Clone)]
pub(crate) enum Written {
    Appended(Appended),
    Done,
    Claimed(Vec<Claimed>),
    /// `false` when the outcome was stale (the event is no longer pending
    /// under that claim token) and nothing changed.
    Applied(bool),
    Replayed(Replayed),
    /// Events replayed in bulk, counted by route.
    ReplayedDead(Vec<(String, u64)>),
    /// Rows affected.
    Count(u64),
    Kv(KvWritten),
}

/// A store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (disk full, I/O error, corrupt file...).
    #[error("inbox store failed: {0}")]
    Backend(String),
    /// The inbox is shutting down and takes no more writes.
    #[error("inbox is closed")]
    Closed,
}

/// A storage backend for the inbox.
///
/// Methods block: the inbox calls them from its writer thread
/// ([`Store::apply`]) and from blocking tasks (reads), never from async
/// code directly.
pub(crate) trait Store: Send + Sync {
    /// Applies `writes`, in order, in one transaction, and returns only once
    /// it is durable (for SQLite: committed with `synchronous=FULL`, so
    /// fsync'd). One result per write: a write that fails on its own is
    /// undone alone (the others still commit). `Err` means the transaction
    /// as a whole failed and nothing was applied.
    fn apply(&self, writes: &[Write]) -> Result<Vec<Result<Written, StoreError>>, StoreError>;

    /// The newest event matching `key`, with its stored request.
    fn get(&self, key: &EventKey) -> Result<Option<Event>, StoreError>;

    /// Events matching `filter`, newest first, without their requests.
    fn list(&self, filter: &Filter) -> Result<Vec<Event>, StoreError>;

    /// Whether `id` was accepted (or, in sync mode, handled) on `route` at
    /// or after `since`.
    fn seen(&self, route: &str, id: &str, since: Millis) -> Result<bool, StoreError>;

    /// Routes that have events due at `now`.
    fn due_routes(&self, now: Millis) -> Result<Vec<String>, StoreError>;

    /// The earliest time after `now` at which a pending event becomes due
    /// (a retry, or the end of a lease), if any.
    fn next_due(&self, now: Millis) -> Result<Option<Millis>, StoreError>;

    /// How many events are pending, and when the oldest of them arrived.
    fn backlog(&self) -> Result<Backlog, StoreError>;

    /// Every recorded attempt at event `seq`, oldest first.
    fn attempts(&self, seq: i64) -> Result<Vec<Attempt>, StoreError>;

    /// [`Store::backlog`] for each route that has pending events.
    fn route_backlogs(&self) -> Result<Vec<(String, Backlog)>, StoreError>;

    /// The value of `key` in `plugin`'s key-value namespace.
    fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// The keys of `plugin`'s namespace that start with `prefix`, in byte
    /// order.
    fn kv_keys(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, StoreError>;

    /// Whether other hosts share this store: then events change under this
    /// host (appended, settled elsewhere), so counts kept in memory must be
    /// re-read, and leases must be short enough for others to take over.
    fn is_shared(&self) -> bool {
        false
    }
}

/// The pending part of the inbox, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Events waiting for an attempt or running one.
    pub pending: u64,
    /// When the oldest pending event was received; `None` when there is none.
    pub oldest_received_at: Option<Millis>,
}
