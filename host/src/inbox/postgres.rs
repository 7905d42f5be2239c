//! The shared backend: one PostgreSQL database for a fleet of hosts
//! (`--store postgres://…`).
//!
//! Owns the PostgreSQL schema (migrations in [`MIGRATIONS`], applied at
//! start under an advisory lock, so hosts starting together migrate once)
//! and the same [`Store`] contract the embedded backend keeps, for many
//! hosts at once:
//! - Claims are `FOR UPDATE SKIP LOCKED`: hosts claiming the same route at
//!   the same moment take disjoint events and never wait on each other. A
//!   claim is one statement that leases the events and returns their
//!   requests, under a token drawn from the `claim_tokens` sequence (never
//!   issued twice, fleet-wide). Outcomes are fenced by that token, so an
//!   event reaches `done` once even when a lease ran out under a slow host
//!   and another host delivered it too.
//! - Per-key order holds across hosts: a keyed event is claimed only when no
//!   older pending event of its route has its key; the older one is pending
//!   while another host runs it (its row is locked and skipped, and still
//!   counted by the `NOT EXISTS`).
//! - A host that dies loses its leases only when they run out: unlike the
//!   embedded store, a starting host cannot know that the others are gone,
//!   so it ends only the leases it held itself (`claimed_by` is its host id).
//! - Deduplication is the `seen` table's primary key: two hosts appending the
//!   same id race on one row, and the loser sees a duplicate.
//! - Key-value writes lock their namespace's `kv_usage` row first, in name
//!   order for a whole batch (so two hosts never deadlock), which keeps
//!   read-modify-write increments and quota checks atomic across hosts.
//! - Retention purges run on one host at a time (`pg_try_advisory_xact_lock`):
//!   the others skip their turn.
//!
//! [`Store`] methods block: each runs its statements on the async client
//! through a handle of the host's runtime (the inbox calls them from its
//! writer thread and from blocking tasks, never from async code). A batch
//! is one transaction; if it fails, each write is tried again in its own
//! transaction, so one bad write (or a deadlock between hosts) fails alone.
//! A lost connection fails the batch: senders get 503, never a 202 that is
//! not durable; the pool connects again at the next write.

use std::collections::BTreeSet;

use deadpool_postgres::{Pool, Transaction};
use tokio::runtime::Handle;

use super::store::{
    Appended, Attempt, Backlog, ClaimToken, Claimed, Event, EventKey, Filter, KvWrite, KvWritten,
    Millis, NewEvent, Replayed, Status, Store, StoreError, StoredRequest, Write, Written,
    count_by_route, kv_incremented, kv_total_after, now_millis,
};
use crate::pg::{db_error, pool_error};

/// The advisory lock key migrations run under ("hookhost" in ASCII).
const MIGRATION_LOCK: i64 = 0x686f_6f6b_686f_7374;

/// The advisory lock a retention purge holds for its transaction.
const PURGE_LOCK: i64 = MIGRATION_LOCK + 1;

/// Schema migrations, in order; `hookhost_schema` records how many ran.
/// Later versions are appended, never edited.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: events, their requests and attempts, dedupe, key-value, tokens,
    // deployed plugins.
    "
CREATE TABLE events (
    seq             bigserial PRIMARY KEY,   -- arrival order; the store's own key
    id              text    NOT NULL,        -- delivery id (sender's or host-made)
    route           text    NOT NULL,
    status          text    NOT NULL CHECK (status IN ('pending', 'done', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,  -- attempts spent
    replays         integer NOT NULL DEFAULT 0,
    received_at     bigint  NOT NULL,        -- ms since the Unix epoch, like every time here
    next_attempt_at bigint,                  -- due when <= now; the lease end while claimed
    claimed_until   bigint,                  -- lease of the running attempt
    claim_token     bigint,                  -- fence of the running attempt's outcome
    claimed_by      text,                    -- host id of the newest claim
    order_key       text,                    -- [queue] order_key's value; NULL: unordered
    done_at         bigint,
    dead_at         bigint,
    last_error      text
);
CREATE INDEX events_due ON events (next_attempt_at) WHERE status = 'pending';
CREATE INDEX events_route_due ON events (route, next_attempt_at) WHERE status = 'pending';
-- The claim walks a route's pending events in seq order (docs/scaling.md:
-- without it the claim sorts every due row).
CREATE INDEX events_route_seq ON events (route, seq) WHERE status = 'pending';
CREATE INDEX events_id ON events (id);
CREATE INDEX events_status ON events (status, seq);
CREATE INDEX events_done ON events (done_at) WHERE status = 'done';
CREATE INDEX events_key ON events (route, order_key, seq)
    WHERE status = 'pending' AND order_key IS NOT NULL;
CREATE INDEX events_claimed_by ON events (claimed_by)
    WHERE status = 'pending' AND claimed_until IS NOT NULL;
CREATE TABLE requests (
    seq         bigint PRIMARY KEY REFERENCES events ON DELETE CASCADE,
    method      text   NOT NULL,
    path        text   NOT NULL,
    query       text   NOT NULL,
    headers     text   NOT NULL,             -- JSON [[name, value], ...]
    body        bytea  NOT NULL,
    verified_by text
);
CREATE TABLE attempts (
    seq     bigint  NOT NULL REFERENCES events ON DELETE CASCADE,
    replay  integer NOT NULL,
    attempt integer NOT NULL,
    at      bigint  NOT NULL,
    outcome text    NOT NULL CHECK (outcome IN ('ok', 'retry', 'dead')),
    error   text,
    host    text,                            -- host id that made the attempt
    PRIMARY KEY (seq, replay, attempt)
);
CREATE TABLE seen (
    route text   NOT NULL,
    id    text   NOT NULL,
    at    bigint NOT NULL,
    PRIMARY KEY (route, id)
);
CREATE INDEX seen_at ON seen (at);
CREATE TABLE kv (
    plugin text  NOT NULL,
    key    text  COLLATE \"C\" NOT NULL,       -- byte order, as kv.keys promises
    value  bytea NOT NULL,
    PRIMARY KEY (plugin, key)
);
CREATE TABLE kv_usage (
    plugin text   PRIMARY KEY,
    bytes  bigint NOT NULL                   -- sum of key and value bytes in kv
);
CREATE SEQUENCE claim_tokens;
-- Plugins deployed through the admin API (the deploy module): every version's
-- files, which one is live per name, and a counter every change grows.
CREATE TABLE plugin_versions (
    name        text   NOT NULL,
    version     bigint NOT NULL,             -- 1, 2, … per name
    sha256      text   NOT NULL,             -- deploy::fingerprint of wasm and manifest
    size        bigint NOT NULL,
    wasm        bytea  NOT NULL,
    manifest    text,
    deployed_at bigint NOT NULL,
    deployed_by text   NOT NULL,             -- host id
    PRIMARY KEY (name, version)
);
CREATE TABLE plugin_live (
    name    text   PRIMARY KEY,
    version bigint NOT NULL,
    FOREIGN KEY (name, version) REFERENCES plugin_versions (name, version)
);
CREATE TABLE deploy_generation (value bigint NOT NULL);
INSERT INTO deploy_generation (value) VALUES (0);
",
];

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: Pool,
    runtime: Handle,
    /// This host's id: recorded with its claims and attempts.
    host: String,
}

fn backend(err: tokio_postgres::Error) -> StoreError {
    StoreError::Backend(format!("PostgreSQL: {}", db_error(&err)))
}

impl PostgresStore {
    /// Migrates the database behind `pool` and makes the leases this host
    /// (`host`) held before a restart due at once. Async: called once at
    /// start; the store's methods then block on `runtime`.
    pub async fn open(pool: Pool, host: String) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        migrate(&pool).await?;
        let client = pool
            .get()
            .await
            .map_err(|err| anyhow::anyhow!("PostgreSQL: {}", pool_error(&err)))?;
        let released = client
            .execute(
                "UPDATE events SET next_attempt_at = $1, claimed_until = NULL, claim_token = NULL
                 WHERE status = 'pending' AND claimed_until IS NOT NULL AND claimed_by = $2",
                &[&now_millis(), &host],
            )
            .await
            .map_err(|err| {
                anyhow::anyhow!("cannot release this host's leases: {}", db_error(&err))
            })?;
        if released > 0 {
            tracing::info!(
                events = released,
                host = %host,
                "attempts this host's previous run left unfinished are due again"
            );
        }
        Ok(Self {
            pool,
            runtime: Handle::try_current().context("the PostgreSQL store needs a tokio runtime")?,
            host,
        })
    }

    /// Runs `work` on the runtime and waits for it.
    fn block<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(work)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|err| StoreError::Backend(format!("PostgreSQL: {}", pool_error(&err))))
    }

    /// Every row `sql` (a prepared statement, cached per connection)
    /// answers with `params`, on a pooled connection: each read method.
    fn read(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        self.block(async {
            let client = self.client().await?;
            let statement = client.prepare_cached(sql).await.map_err(backend)?;
            client.query(&statement, params).await.map_err(backend)
        })
    }

    /// `writes` in one transaction; `Err` if any of them failed (nothing
    /// committed then).
    async fn apply_together(
        &self,
        client: &mut deadpool_postgres::Object,
        writes: &[Write],
    ) -> Result<Vec<Written>, tokio_postgres::Error> {
        let tx = client.transaction().await?;
        lock_namespaces(&tx, writes).await?;
        let mut results = Vec::with_capacity(writes.len());
        let mut rest = writes;
        while let Some(first) = rest.first() {
            // A run of one-statement writes is sent as a pipeline (the
            // server runs them in order, one round trip for the run); any
            // other write runs alone, after the run before it.
            let run = if is_one_statement(first) {
                rest.iter().take_while(|w| is_one_statement(w)).count()
            } else {
                1
            };
            let (now, later) = rest.split_at(run);
            let done = futures_util::future::join_all(
                now.iter().map(|write| apply_one(&tx, &self.host, write)),
            )
            .await;
            for written in done {
                results.push(written?);
            }
            rest = later;
        }
        tx.commit().await?;
        Ok(results)
    }
}

/// Applies every migration not applied yet, under an advisory lock.
async fn migrate(pool: &Pool) -> anyhow::Result<()> {
    let mut client = pool
        .get()
        .await
        .map_err(|err| anyhow::anyhow!("PostgreSQL: {}", pool_error(&err)))?;
    let fail = |what: &str, err: tokio_postgres::Error| {
        anyhow::anyhow!("PostgreSQL schema {what}: {}", db_error(&err))
    };
    // Session-level, so the whole check-and-apply is one critical section
    // across hosts; released below (or with the connection).
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|err| fail("lock", err))?;
    let result = async {
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS hookhost_schema (version integer NOT NULL);
                 INSERT INTO hookhost_schema (version)
                     SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM hookhost_schema)",
            )
            .await
            .map_err(|err| fail("version table", err))?;
        let version: i32 = client
            .query_one("SELECT version FROM hookhost_schema", &[])
            .await
            .map_err(|err| fail("version", err))?
            .get(0);
        let known = MIGRATIONS.len() as i32;
        if version > known {
            anyhow::bail!(
                "the database was migrated by a newer hookhost (schema {version}, this one knows {known}); \
                 upgrade this host"
            );
        }
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = client
                .transaction()
                .await
                .map_err(|err| fail("migration", err))?;
            tx.batch_execute(sql)
                .await
                .map_err(|err| fail(&format!("migration {}", index + 1), err))?;
            tx.execute("UPDATE hookhost_schema SET version = $1", &[&(index as i32 + 1)])
                .await
                .map_err(|err| fail("version", err))?;
            tx.commit()
                .await
                .map_err(|err| fail(&format!("migration {}", index + 1), err))?;
            tracing::info!(version = index + 1, "PostgreSQL schema migrated");
        }
        Ok(())
    }
    .await;
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    result
}

impl Store for PostgresStore {
    fn apply(&self, writes: &[Write]) -> Result<Vec<Result<Written, StoreError>>, StoreError> {
        self.block(async {
            let mut client = self.client().await?;
            match self.apply_together(&mut client, writes).await {
                Ok(results) => Ok(results.into_iter().map(Ok).collect()),
                Err(err) if client.is_closed() => Err(backend(err)),
                Err(err) => {
                    // One write failed (or this batch lost a deadlock to
                    // another host's): each again on its own.
                    tracing::debug!(error = %db_error(&err), writes = writes.len(), "inbox batch failed; writing one at a time");
                    let mut results = Vec::with_capacity(writes.len());
                    for write in writes {
                        let one = self.apply_together(&mut client, std::slice::from_ref(write)).await;
                        results.push(match one {
                            Ok(mut written) => Ok(written.remove(0)),
                            Err(err) => Err(backend(err)),
                        });
                    }
                    Ok(results)
                }
            }
        })
    }

    fn get(&self, key: &EventKey) -> Result<Option<Event>, StoreError> {
        let rows = self.read(
            &format!(
                "SELECT {EVENT_COLUMNS}, r.method, r.path, r.query, r.headers, r.body, r.verified_by
                 FROM events e JOIN requests r USING (seq)
                 WHERE e.id = $1 AND ($2::text IS NULL OR e.route = $2)
                 ORDER BY e.seq DESC LIMIT 1"
            ),
            &[&key.id, &key.route],
        )?;
        rows.first()
            .map(|row| {
                let mut event = event_from_row(row)?;
                event.request = Some(request_from_row(row, EVENT_COLUMN_COUNT));
                Ok(event)
            })
            .transpose()
    }

    fn list(&self, filter: &Filter) -> Result<Vec<Event>, StoreError> {
        // `$n IS NULL OR`: PostgreSQL plans a generic statement well enough
        // for an admin listing.
        let rows = self.read(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM events e
                 WHERE ($1::text IS NULL OR e.status = $1)
                   AND ($2::text IS NULL OR e.route = $2)
                   AND ($3::bigint IS NULL OR e.seq < $3)
                   AND ($4::bigint IS NULL OR e.received_at >= $4)
                   AND ($5::bigint IS NULL OR e.received_at < $5)
                 ORDER BY e.seq DESC LIMIT $6"
            ),
            &[
                &filter.status.map(Status::as_str),
                &filter.route,
                &filter.before,
                &filter.received_since,
                &filter.received_until,
                &i64::from(filter.limit),
            ],
        )?;
        rows.iter().map(event_from_row).collect()
    }

    fn seen(&self, route: &str, id: &str, since: Millis) -> Result<bool, StoreError> {
        let rows = self.read(
            "SELECT 1 FROM seen WHERE route = $1 AND id = $2 AND at >= $3",
            &[&route, &id, &since],
        )?;
        Ok(!rows.is_empty())
    }

    fn due_routes(&self, now: Millis) -> Result<Vec<String>, StoreError> {
        // A skip scan over the routes of pending events (one index seek per
        // route), then one seek each for something due: cost follows the
        // number of routes, not the backlog. `DISTINCT` would read every due
        // row, and the workers ask after outcomes.
        let rows = self.read(
            "WITH RECURSIVE routes AS (
                 (SELECT route FROM events WHERE status = 'pending'
                  ORDER BY route LIMIT 1)
                 UNION ALL
                 SELECT (SELECT e.route FROM events e
                         WHERE e.status = 'pending' AND e.route > routes.route
                         ORDER BY e.route LIMIT 1)
                 FROM routes WHERE routes.route IS NOT NULL)
             SELECT route FROM routes
             WHERE route IS NOT NULL AND EXISTS (
                 SELECT 1 FROM events e
                 WHERE e.status = 'pending' AND e.route = routes.route
                   AND e.next_attempt_at <= $1)",
            &[&now],
        )?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    fn next_due(&self, now: Millis) -> Result<Option<Millis>, StoreError> {
        let rows = self.read(
            "SELECT min(next_attempt_at) FROM events
             WHERE status = 'pending' AND next_attempt_at > $1",
            &[&now],
        )?;
        Ok(rows.first().and_then(|row| row.get(0)))
    }

    fn backlog(&self) -> Result<Backlog, StoreError> {
        let rows = self.read(
            "SELECT count(*), min(received_at) FROM events WHERE status = 'pending'",
            &[],
        )?;
        Ok(rows.first().map(backlog_from_row).unwrap_or_default())
    }

    fn attempts(&self, seq: i64) -> Result<Vec<Attempt>, StoreError> {
        let rows = self.read(
            "SELECT replay, attempt, at, outcome, error, host FROM attempts
             WHERE seq = $1 ORDER BY replay, attempt",
            &[&seq],
        )?;
        Ok(rows
            .iter()
            .map(|row| Attempt {
                replay: row.get::<_, i32>(0) as u32,
                attempt: row.get::<_, i32>(1) as u32,
                at: row.get(2),
                outcome: row.get(3),
                error: row.get(4),
                host: row.get(5),
            })
            .collect())
    }

    fn route_backlogs(&self) -> Result<Vec<(String, Backlog)>, StoreError> {
        let rows = self.read(
            "SELECT count(*), min(received_at), route FROM events
             WHERE status = 'pending' GROUP BY route ORDER BY route",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|row| (row.get(2), backlog_from_row(row)))
            .collect())
    }

    fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self.read(
            "SELECT value FROM kv WHERE plugin = $1 AND key = $2",
            &[&plugin, &key],
        )?;
        Ok(rows.first().map(|row| row.get(0)))
    }

    fn kv_keys(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        let rows = self.read(
            "SELECT key FROM kv WHERE plugin = $1 AND starts_with(key, $2) ORDER BY key",
            &[&plugin, &prefix],
        )?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    fn is_shared(&self) -> bool {
        true
    }
}

/// Whether `write` is one statement whose effect does not depend on the
/// answer to an earlier statement of its batch: then it can be pipelined
/// with its neighbours. (An append's rare duplicate path reads afterwards,
/// but only its own id's rows, which the pipeline's earlier statements have
/// already written.) Key-value writes read before they write, and bulk
/// changes may touch what the others do: those run alone.
fn is_one_statement(write: &Write) -> bool {
    matches!(
        write,
        Write::Append { .. }
            | Write::Remember { .. }
            | Write::Claim { .. }
            | Write::Complete { .. }
            | Write::Retry { .. }
            | Write::Dead { .. }
            | Write::Release { .. }
    )
}

/// Locks the `kv_usage` row of every namespace the batch writes, in name
/// order, before any write: each namespace's writes are then serialised
/// across hosts, and two batches never wait on each other in a cycle.
async fn lock_namespaces(
    tx: &Transaction<'_>,
    writes: &[Write],
) -> Result<(), tokio_postgres::Error> {
    let plugins: BTreeSet<&str> = writes
        .iter()
        .filter_map(|write| match write {
            Write::Kv(
                KvWrite::Set { plugin, .. }
                | KvWrite::Delete { plugin, .. }
                | KvWrite::Increment { plugin, .. },
            ) => Some(plugin.as_str()),
            _ => None,
        })
        .collect();
    if plugins.is_empty() {
        return Ok(());
    }
    let plugins: Vec<&str> = plugins.into_iter().collect();
    let insert = tx
        .prepare_cached(
            "INSERT INTO kv_usage (plugin, bytes) SELECT unnest($1::text[]), 0
             ORDER BY 1 ON CONFLICT (plugin) DO NOTHING",
        )
        .await?;
    tx.execute(&insert, &[&plugins]).await?;
    let lock = tx
        .prepare_cached(
            "SELECT plugin FROM kv_usage WHERE plugin = ANY($1) ORDER BY plugin FOR UPDATE",
        )
        .await?;
    tx.query(&lock, &[&plugins]).await?;
    Ok(())
}

/// The columns [`event_from_row`] reads, in order (from `events e`).
const EVENT_COLUMNS: &str = "e.seq, e.id, e.route, e.status, e.attempts, e.replays, e.received_at, \
     e.next_attempt_at, e.claimed_until, e.done_at, e.dead_at, e.last_error, e.order_key, e.claimed_by";
const EVENT_COLUMN_COUNT: usize = 14;

/// A [`Backlog`] from a row's `count(*)` and `min(received_at)`.
fn backlog_from_row(row: &tokio_postgres::Row) -> Backlog {
    Backlog {
        pending: u64::try_from(row.get::<_, i64>(0)).unwrap_or_default(),
        oldest_received_at: row.get(1),
    }
}

fn event_from_row(row: &tokio_postgres::Row) -> Result<Event, StoreError> {
    let status: String = row.get(3);
    Ok(Event {
        seq: row.get(0),
        id: row.get(1),
        route: row.get(2),
        status: Status::parse(&status)
            .ok_or_else(|| StoreError::Backend(format!("unknown status {status:?}")))?,
        attempts: row.get::<_, i32>(4) as u32,
        replays: row.get::<_, i32>(5) as u32,
        received_at: row.get(6),
        next_attempt_at: row.get(7),
        claimed_until: row.get(8),
        done_at: row.get(9),
        dead_at: row.get(10),
        last_error: row.get(11),
        order_key: row.get(12),
        host: row.get(13),
        request: None,
    })
}

/// The stored request in the six columns from `at` on.
fn request_from_row(row: &tokio_postgres::Row, at: usize) -> StoredRequest {
    StoredRequest {
        method: row.get(at),
        path: row.get(at + 1),
        query: row.get(at + 2),
        headers: serde_json::from_str(row.get::<_, &str>(at + 3)).unwrap_or_default(),
        body: row.get(at + 4),
        verified_by: row.get(at + 5),
    }
}

/// Puts event `seq` back to pending, due at `at`, with a fresh retry budget.
async fn replay_row(
    tx: &Transaction<'_>,
    seq: i64,
    at: Millis,
) -> Result<(), tokio_postgres::Error> {
    let statement = tx
        .prepare_cached(
            "UPDATE events SET status = 'pending', attempts = 0, replays = replays + 1,
                               next_attempt_at = $2, claimed_until = NULL, claim_token = NULL,
                               done_at = NULL, dead_at = NULL
             WHERE seq = $1",
        )
        .await?;
    tx.execute(&statement, &[&seq, &at]).await?;
    Ok(())
}

/// An append whose id was accepted on its route within the window: a
/// duplicate, or the revival of its dead event (see the SQLite backend).
async fn redelivered(
    tx: &Transaction<'_>,
    event: &NewEvent,
) -> Result<Written, tokio_postgres::Error> {
    let statement = tx
        .prepare_cached(
            "SELECT seq, status FROM events WHERE id = $1 AND route = $2
             ORDER BY seq DESC LIMIT 1 FOR UPDATE",
        )
        .await?;
    let newest = tx.query_opt(&statement, &[&event.id, &event.route]).await?;
    match newest {
        Some(row) if row.get::<_, &str>(1) == Status::Dead.as_str() => {
            let seq: i64 = row.get(0);
            let touch = tx
                .prepare_cached("UPDATE seen SET at = $3 WHERE route = $1 AND id = $2")
                .await?;
            tx.execute(&touch, &[&event.route, &event.id, &event.received_at])
                .await?;
            replay_row(tx, seq, event.received_at).await?;
            Ok(Written::Appended(Appended::Revived { seq }))
        }
        _ => Ok(Written::Appended(Appended::Duplicate)),
    }
}

/// Appends `event` in one statement: its dedupe record (a sender-given id
/// not seen on its route since `dedupe_since`), its row and its request.
/// `None` when the id was seen: a duplicate or a revival, for
/// [`redelivered`] to tell.
async fn insert_event(
    tx: &Transaction<'_>,
    event: &NewEvent,
    dedupe_since: Millis,
) -> Result<Option<i64>, tokio_postgres::Error> {
    let statement = tx
        .prepare_cached(
            "WITH fresh AS (
                 INSERT INTO seen (route, id, at) SELECT $2, $1, $3 WHERE $11
                 ON CONFLICT (route, id) DO UPDATE SET at = excluded.at WHERE seen.at < $12
                 RETURNING 1),
             e AS (
                 INSERT INTO events (id, route, status, received_at, next_attempt_at, order_key)
                 SELECT $1, $2, 'pending', $3, $3, $4 WHERE NOT $11 OR EXISTS (SELECT 1 FROM fresh)
                 RETURNING seq)
             INSERT INTO requests (seq, method, path, query, headers, body, verified_by)
                 SELECT seq, $5, $6, $7, $8, $9, $10 FROM e
             RETURNING seq",
        )
        .await?;
    let request = &event.request;
    let headers = serde_json::to_string(&request.headers).expect("pairs of strings serialise");
    let row = tx
        .query_opt(
            &statement,
            &[
                &event.id,
                &event.route,
                &event.received_at,
                &event.order_key,
                &request.method,
                &request.path,
                &request.query,
                &headers,
                &request.body,
                &request.verified_by,
                &event.dedupe,
                &dedupe_since,
            ],
        )
        .await?;
    Ok(row.map(|row| row.get(0)))
}

/// Claims up to `limit` due events of `route` under one fresh token, with
/// their requests, in one statement.
async fn claim(
    tx: &Transaction<'_>,
    host: &str,
    route: &str,
    now: Millis,
    lease_until: Millis,
    limit: u32,
) -> Result<Vec<Claimed>, tokio_postgres::Error> {
    let statement = tx
        .prepare_cached(
            "WITH token AS (SELECT nextval('claim_tokens') AS value),
             due AS (
                 SELECT seq FROM events AS e
                 WHERE status = 'pending' AND route = $1 AND next_attempt_at <= $2
                   AND (order_key IS NULL OR NOT EXISTS (
                        SELECT 1 FROM events AS older
                        WHERE older.status = 'pending' AND older.order_key IS NOT NULL
                          AND older.route = e.route AND older.order_key = e.order_key
                          AND older.seq < e.seq))
                 ORDER BY seq LIMIT $4
                 FOR UPDATE SKIP LOCKED)
             UPDATE events SET claimed_until = $3, next_attempt_at = $3,
                               claim_token = (SELECT value FROM token), claimed_by = $5
             FROM due JOIN requests r ON r.seq = due.seq
             WHERE events.seq = due.seq
             RETURNING events.seq, events.claim_token, events.id, events.route, events.attempts,
                       events.received_at,
                       r.method, r.path, r.query, r.headers, r.body, r.verified_by",
        )
        .await?;
    let rows = tx
        .query(
            &statement,
            &[&route, &now, &lease_until, &i64::from(limit), &host],
        )
        .await?;
    let mut claimed: Vec<Claimed> = rows
        .iter()
        .map(|row| Claimed {
            seq: row.get(0),
            token: ClaimToken(row.get(1)),
            id: row.get(2),
            route: row.get(3),
            attempt: (row.get::<_, i32>(4) as u32).saturating_add(1),
            received_at: row.get(5),
            request: request_from_row(row, 6),
        })
        .collect();
    claimed.sort_by_key(|event| event.seq);
    Ok(claimed)
}

/// An outcome's fenced `UPDATE … SET {set}` and, if it applied and `log`
/// is given (when, `ok`/`retry`/`dead`, the error), the attempt it spent
/// (with this host's id), in one statement. `params` are `$1` seq, `$2`
/// token and what `set` names from `$3` on.
async fn outcome(
    tx: &Transaction<'_>,
    host: &str,
    set: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    log: Option<(Millis, &str, Option<&str>)>,
) -> Result<Written, tokio_postgres::Error> {
    let update = format!(
        "UPDATE events SET {set} WHERE seq = $1 AND status = 'pending' AND claim_token = $2"
    );
    let Some((at, outcome, error)) = log else {
        let statement = tx.prepare_cached(&update).await?;
        return Ok(Written::Applied(tx.execute(&statement, params).await? == 1));
    };
    let n = params.len();
    let statement = tx
        .prepare_cached(&format!(
            "WITH spent AS ({update} RETURNING seq, replays, attempts)
             INSERT INTO attempts (seq, replay, attempt, at, outcome, error, host)
                 SELECT seq, replays, attempts, ${}, ${}, ${}, ${} FROM spent
             ON CONFLICT (seq, replay, attempt) DO UPDATE
                 SET at = excluded.at, outcome = excluded.outcome,
                     error = excluded.error, host = excluded.host
             RETURNING 1",
            n + 1,
            n + 2,
            n + 3,
            n + 4
        ))
        .await?;
    let mut all: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params.to_vec();
    all.extend([
        &at as &(dyn tokio_postgres::types::ToSql + Sync),
        &outcome,
        &error,
        &host,
    ]);
    Ok(Written::Applied(
        tx.query_opt(&statement, &all).await?.is_some(),
    ))
}

async fn apply_one(
    tx: &Transaction<'_>,
    host: &str,
    write: &Write,
) -> Result<Written, tokio_postgres::Error> {
    match write {
        Write::Append {
            event,
            dedupe_since,
        } => match insert_event(tx, event, *dedupe_since).await? {
            Some(seq) => Ok(Written::Appended(Appended::Accepted { seq })),
            None => redelivered(tx, event).await,
        },
        Write::Remember { route, id, at } => {
            let statement = tx
                .prepare_cached(
                    "INSERT INTO seen (route, id, at) VALUES ($1, $2, $3)
                     ON CONFLICT (route, id) DO UPDATE SET at = excluded.at",
                )
                .await?;
            tx.execute(&statement, &[route, id, at]).await?;
            Ok(Written::Done)
        }
        Write::Claim {
            route,
            now,
            lease_until,
            limit,
        } => claim(tx, host, route, *now, *lease_until, *limit)
            .await
            .map(Written::Claimed),
        Write::Complete { seq, token, at } => {
            outcome(
                tx,
                host,
                "status = 'done', done_at = $3, attempts = attempts + 1,
                 next_attempt_at = NULL, claimed_until = NULL, claim_token = NULL",
                &[seq, &token.0, at],
                Some((*at, "ok", None)),
            )
            .await
        }
        Write::Retry {
            seq,
            token,
            at,
            error,
        } => {
            outcome(
                tx,
                host,
                "next_attempt_at = $3, last_error = $4, attempts = attempts + 1,
                 claimed_until = NULL, claim_token = NULL",
                &[seq, &token.0, at, error],
                Some((now_millis(), "retry", Some(error.as_str()))),
            )
            .await
        }
        Write::Dead {
            seq,
            token,
            at,
            error,
        } => {
            outcome(
                tx,
                host,
                "status = 'dead', dead_at = $3, last_error = $4, attempts = attempts + 1,
                 next_attempt_at = NULL, claimed_until = NULL, claim_token = NULL",
                &[seq, &token.0, at, error],
                Some((*at, "dead", Some(error.as_str()))),
            )
            .await
        }
        Write::Release { seq, token, at } => {
            outcome(
                tx,
                host,
                "next_attempt_at = $3, claimed_until = NULL, claim_token = NULL",
                &[seq, &token.0, at],
                None,
            )
            .await
        }
        Write::Park {
            route,
            now,
            until,
            error,
        } => {
            // Only events no other host holds: a host without the plugin
            // must not push back a route another host serves.
            let statement = tx
                .prepare_cached(
                    "UPDATE events SET next_attempt_at = $3, last_error = $4
                     WHERE seq IN (SELECT seq FROM events
                                   WHERE status = 'pending' AND route = $1 AND next_attempt_at <= $2
                                   FOR UPDATE SKIP LOCKED)",
                )
                .await?;
            let changed = tx.execute(&statement, &[route, now, until, error]).await?;
            Ok(Written::Count(changed))
        }
        Write::Replay { key, at } => {
            let statement = tx
                .prepare_cached(
                    "SELECT seq, status, route FROM events
                     WHERE id = $1 AND ($2::text IS NULL OR route = $2)
                     ORDER BY seq DESC LIMIT 1 FOR UPDATE",
                )
                .await?;
            let Some(row) = tx.query_opt(&statement, &[&key.id, &key.route]).await? else {
                return Ok(Written::Replayed(Replayed::NotFound));
            };
            let (seq, status, route): (i64, String, String) = (row.get(0), row.get(1), row.get(2));
            if status == Status::Pending.as_str() {
                return Ok(Written::Replayed(Replayed::Pending));
            }
            replay_row(tx, seq, *at).await?;
            Ok(Written::Replayed(Replayed::Replayed { seq, route }))
        }
        Write::ReplayDead {
            route,
            dead_by,
            at,
            limit,
        } => {
            let statement = tx
                .prepare_cached(
                    "UPDATE events SET status = 'pending', attempts = 0, replays = replays + 1,
                                       next_attempt_at = $3, claimed_until = NULL, claim_token = NULL,
                                       done_at = NULL, dead_at = NULL
                     WHERE seq IN (SELECT seq FROM events
                                   WHERE status = 'dead' AND dead_at <= $2
                                         AND ($1::text IS NULL OR route = $1)
                                   ORDER BY seq LIMIT $4 FOR UPDATE SKIP LOCKED)
                     RETURNING route",
                )
                .await?;
            let rows = tx
                .query(&statement, &[route, dead_by, at, &i64::from(*limit)])
                .await?;
            Ok(Written::ReplayedDead(count_by_route(
                rows.iter().map(|row| row.get(0)),
            )))
        }
        Write::Purge {
            done_before,
            seen_before,
            limit,
        } => {
            // One host purges at a time; the others find the lock taken and
            // skip this round.
            let locked: bool = tx
                .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&PURGE_LOCK])
                .await?
                .get(0);
            if !locked {
                return Ok(Written::Count(0));
            }
            let limit = i64::from(*limit);
            let events = tx
                .prepare_cached(
                    "DELETE FROM events WHERE seq IN (
                         SELECT seq FROM events WHERE status = 'done' AND done_at < $1
                         LIMIT $2 FOR UPDATE SKIP LOCKED)",
                )
                .await?;
            let events = tx.execute(&events, &[done_before, &limit]).await?;
            let seen = tx
                .prepare_cached(
                    "DELETE FROM seen WHERE ctid IN (
                         SELECT ctid FROM seen WHERE at < $1 LIMIT $2)",
                )
                .await?;
            let seen = tx.execute(&seen, &[seen_before, &limit]).await?;
            Ok(Written::Count(events + seen))
        }
        Write::Kv(write) => apply_kv(tx, write).await,
    }
}

/// Applies one key-value write (its namespace is locked already, see
/// [`lock_namespaces`]); refusals change nothing.
async fn apply_kv(tx: &Transaction<'_>, write: &KvWrite) -> Result<Written, tokio_postgres::Error> {
    async fn current(
        tx: &Transaction<'_>,
        plugin: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, tokio_postgres::Error> {
        let statement = tx
            .prepare_cached("SELECT value FROM kv WHERE plugin = $1 AND key = $2")
            .await?;
        Ok(tx
            .query_opt(&statement, &[&plugin, &key])
            .await?
            .map(|row| row.get(0)))
    }
    async fn usage(tx: &Transaction<'_>, plugin: &str) -> Result<u64, tokio_postgres::Error> {
        let statement = tx
            .prepare_cached("SELECT bytes FROM kv_usage WHERE plugin = $1")
            .await?;
        let bytes: Option<i64> = tx
            .query_opt(&statement, &[&plugin])
            .await?
            .map(|row| row.get(0));
        Ok(u64::try_from(bytes.unwrap_or_default()).unwrap_or_default())
    }
    async fn set_usage(
        tx: &Transaction<'_>,
        plugin: &str,
        bytes: u64,
    ) -> Result<(), tokio_postgres::Error> {
        let statement = tx
            .prepare_cached(
                "INSERT INTO kv_usage (plugin, bytes) VALUES ($1, $2)
                 ON CONFLICT (plugin) DO UPDATE SET bytes = excluded.bytes",
            )
            .await?;
        tx.execute(
            &statement,
            &[&plugin, &i64::try_from(bytes).unwrap_or(i64::MAX)],
        )
        .await?;
        Ok(())
    }
    /// Sets `key` to `value` if the namespace total allows; the refusal.
    async fn store(
        tx: &Transaction<'_>,
        plugin: &str,
        key: &str,
        old: Option<&[u8]>,
        value: &[u8],
        max_total: u64,
    ) -> Result<Option<String>, tokio_postgres::Error> {
        let total = match kv_total_after(key, old, value, usage(tx, plugin).await?, max_total) {
            Ok(total) => total,
            Err(refusal) => return Ok(Some(refusal)),
        };
        let statement = tx
            .prepare_cached(
                "INSERT INTO kv (plugin, key, value) VALUES ($1, $2, $3)
                 ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value",
            )
            .await?;
        tx.execute(&statement, &[&plugin, &key, &value]).await?;
        set_usage(tx, plugin, total).await?;
        Ok(None)
    }
    let written = match write {
        KvWrite::Set {
            plugin,
            key,
            value,
            max_total,
        } => {
            let old = current(tx, plugin, key).await?;
            match store(tx, plugin, key, old.as_deref(), value, *max_total).await? {
                Some(refusal) => KvWritten::QuotaExceeded(refusal),
                None => KvWritten::Set,
            }
        }
        KvWrite::Delete { plugin, key } => match current(tx, plugin, key).await? {
            None => KvWritten::Deleted(false),
            Some(old) => {
                let statement = tx
                    .prepare_cached("DELETE FROM kv WHERE plugin = $1 AND key = $2")
                    .await?;
                tx.execute(&statement, &[plugin, key]).await?;
                let total = usage(tx, plugin)
                    .await?
                    .saturating_sub((key.len() + old.len()) as u64);
                set_usage(tx, plugin, total).await?;
                KvWritten::Deleted(true)
            }
        },
        KvWrite::Increment {
            plugin,
            key,
            delta,
            max_value,
            max_total,
        } => {
            let old = current(tx, plugin, key).await?;
            match kv_incremented(key, old.as_deref(), *delta, *max_value) {
                Err(refusal) => refusal,
                Ok((sum, text)) => {
                    match store(tx, plugin, key, old.as_deref(), text.as_bytes(), *max_total)
                        .await?
                    {
                        Some(refusal) => KvWritten::QuotaExceeded(refusal),
                        None => KvWritten::Incremented(sum),
                    }
                }
            }
        }
    };
    Ok(Written::Kv(written))
}

#[cfg(test)]
mod tests {
    //! Against a real server (`HOOKHOST_TEST_POSTGRES`, default the
    //! machine's at 127.0.0.1:5432), each test in a database of its own.
    //! Without a server these fail; `make test` skips them loudly then.

    use std::sync::Arc;

    use super::*;
    use crate::pg::StoreSpec;

    fn server() -> String {
        std::env::var("HOOKHOST_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
    }

    /// A fresh database, dropped at the end of the test.
    pub(super) struct Db {
        name: String,
    }

    impl Db {
        pub(super) async fn create(test: &str) -> Self {
            let name = format!("hh_unit_{}_{test}", std::process::id());
            let (client, connection) = tokio_postgres::connect(&server(), tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|err| panic!("PostgreSQL is unreachable at {}: {err}", server()));
            tokio::spawn(connection);
            // One statement per call: DROP DATABASE refuses a transaction.
            for sql in [
                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                format!("CREATE DATABASE {name}"),
            ] {
                client.batch_execute(&sql).await.unwrap();
            }
            Self { name }
        }

        fn url(&self) -> String {
            let server = server();
            let base = server
                .rsplit_once('/')
                .map_or(server.clone(), |(b, _)| b.to_owned());
            format!("{base}/{}", self.name)
        }

        /// A store on this database, as host `host` would open it.
        pub(super) async fn store(&self, host: &str) -> Arc<PostgresStore> {
            let StoreSpec::Postgres(target) = StoreSpec::parse(&self.url()).unwrap() else {
                unreachable!()
            };
            let pool = target.connect().await.unwrap();
            Arc::new(PostgresStore::open(pool, host.to_owned()).await.unwrap())
        }
    }

    impl Drop for Db {
        fn drop(&mut self) {
            let (name, server) = (self.name.clone(), server());
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    if let Ok((client, connection)) =
                        tokio_postgres::connect(&server, tokio_postgres::NoTls).await
                    {
                        tokio::spawn(connection);
                        let _ = client
                            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .await;
                    }
                });
            })
            .join();
        }
    }

    pub(super) fn event(id: &str, key: Option<&str>, at: Millis) -> NewEvent {
        NewEvent {
            id: id.to_owned(),
            dedupe: true,
            route: "/hooks/q".to_owned(),
            received_at: at,
            order_key: key.map(str::to_owned),
            request: StoredRequest {
                method: "POST".into(),
                path: "/hooks/q".into(),
                query: String::new(),
                headers: vec![("content-type".into(), "application/json".into())],
                body: format!("{{\"id\":\"{id}\"}}").into_bytes(),
                verified_by: None,
            },
        }
    }

    /// Runs `work` on a blocking thread, as the inbox does.
    pub(super) async fn blocking<T: Send + 'static>(
        work: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        tokio::task::spawn_blocking(work).await.unwrap()
    }

    pub(super) fn write(store: &PostgresStore, write: Write) -> Written {
        store.apply(&[write]).unwrap().remove(0).unwrap()
    }

    pub(super) fn claim_now(store: &PostgresStore, lease: Millis, limit: u32) -> Vec<Claimed> {
        let now = now_millis();
        match write(
            store,
            Write::Claim {
                route: "/hooks/q".into(),
                now,
                lease_until: now + lease,
                limit,
            },
        ) {
            Written::Claimed(claimed) => claimed,
            other => panic!("{other:?}"),
        }
    }

    pub(super) fn append_all(store: &PostgresStore, events: Vec<NewEvent>) {
        let writes: Vec<Write> = events
            .into_iter()
            .map(|event| Write::Append {
                event,
                dedupe_since: 0,
            })
            .collect();
        for result in store.apply(&writes).unwrap() {
            assert!(matches!(
                result.unwrap(),
                Written::Appended(Appended::Accepted { .. })
            ));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_hosts_claiming_at_once_never_take_the_same_event() {
        let db = Db::create("claims").await;
        let (a, b) = (db.store("a").await, db.store("b").await);
        let now = now_millis();
        let events = (0..200)
            .map(|n| event(&format!("e{n}"), None, now))
            .collect();
        let a2 = a.clone();
        blocking(move || append_all(&a2, events)).await;
        let take = |store: Arc<PostgresStore>| {
            blocking(move || {
                let mut seqs = Vec::new();
                loop {
                    let claimed = claim_now(&store, 60_000, 7);
                    if claimed.is_empty() {
                        return seqs;
                    }
                    assert!(
                        claimed
                            .iter()
                            .all(|c| c.request.body.starts_with(b"{\"id\""))
                    );
                    seqs.extend(claimed.iter().map(|c| c.seq));
                }
            })
        };
        let (from_a, from_b) = tokio::join!(take(a.clone()), take(b.clone()));
        let mut all: Vec<i64> = from_a.iter().chain(&from_b).copied().collect();
        all.sort();
        let total = all.len();
        all.dedup();
        assert_eq!(all.len(), total, "an event was claimed by both hosts");
        assert_eq!(total, 200);
        assert!(
            !from_a.is_empty() && !from_b.is_empty(),
            "one host took everything"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_outcome_from_a_lost_lease_changes_nothing() {
        let db = Db::create("fence").await;
        let (a, b) = (db.store("a").await, db.store("b").await);
        let (a2, b2) = (a.clone(), b.clone());
        blocking(move || {
            append_all(&a2, vec![event("late", None, now_millis())]);
            // Host a's lease runs out (it stalled, or died)...
            let first = claim_now(&a2, 30, 1).remove(0);
            std::thread::sleep(std::time::Duration::from_millis(60));
            // ... host b claims the event again and delivers it.
            let second = claim_now(&b2, 60_000, 1).remove(0);
            assert_eq!(first.seq, second.seq);
            assert_ne!(first.token, second.token);
            let at = now_millis();
            let complete = |store: &PostgresStore, claim: &Claimed| {
                write(
                    store,
                    Write::Complete {
                        seq: claim.seq,
                        token: claim.token,
                        at,
                    },
                )
            };
            assert!(matches!(complete(&b2, &second), Written::Applied(true)));
            // Host a's late result lands on nothing.
            assert!(matches!(complete(&a2, &first), Written::Applied(false)));
            let event = a2
                .get(&EventKey {
                    id: "late".into(),
                    route: None,
                })
                .unwrap()
                .unwrap();
            assert_eq!(event.status, Status::Done);
            assert_eq!(event.attempts, 1);
            assert_eq!(event.host.as_deref(), Some("b"));
            let attempts = a2.attempts(event.seq).unwrap();
            assert_eq!(attempts.len(), 1);
            assert_eq!(attempts[0].host.as_deref(), Some("b"));
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_key_held_by_one_host_is_held_back_from_the_other() {
        let db = Db::create("order").await;
        let (a, b) = (db.store("a").await, db.store("b").await);
        let (a2, b2) = (a.clone(), b.clone());
        blocking(move || {
            let now = now_millis();
            append_all(
                &a2,
                vec![
                    event("k1-first", Some("k1"), now),
                    event("k1-second", Some("k1"), now),
                    event("k2-first", Some("k2"), now),
                ],
            );
            let on_a = claim_now(&a2, 60_000, 10);
            let ids: Vec<&str> = on_a.iter().map(|c| c.id.as_str()).collect();
            assert_eq!(ids, ["k1-first", "k2-first"]);
            assert!(
                claim_now(&b2, 60_000, 10).is_empty(),
                "k1-second jumped its key"
            );
            let done = write(
                &a2,
                Write::Complete {
                    seq: on_a[0].seq,
                    token: on_a[0].token,
                    at: now_millis(),
                },
            );
            assert!(matches!(done, Written::Applied(true)));
            let on_b = claim_now(&b2, 60_000, 10);
            let ids: Vec<&str> = on_b.iter().map(|c| c.id.as_str()).collect();
            assert_eq!(ids, ["k1-second"]);
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restarted_host_ends_only_its_own_leases() {
        let db = Db::create("restart").await;
        let (a, b) = (db.store("a").await, db.store("b").await);
        let (a2, b2) = (a.clone(), b.clone());
        let now = now_millis();
        blocking(move || {
            append_all(
                &a2,
                vec![event("mine", None, now), event("theirs", None, now)],
            );
            assert_eq!(claim_now(&a2, 600_000, 1)[0].id, "mine");
            assert_eq!(claim_now(&b2, 600_000, 1)[0].id, "theirs");
        })
        .await;
        drop(a);
        let _a = db.store("a").await; // host a starts again
        let b2 = b.clone();
        blocking(move || {
            let get = |id: &str| {
                b2.get(&EventKey {
                    id: id.into(),
                    route: None,
                })
                .unwrap()
                .unwrap()
            };
            assert_eq!(get("mine").claimed_until, None, "a's old lease ended");
            assert!(get("theirs").claimed_until.is_some(), "b's lease kept");
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn migrations_run_once_and_a_newer_schema_is_refused() {
        let db = Db::create("migrate").await;
        let (a, b) = tokio::join!(db.store("a"), db.store("b"));
        drop((a, b));
        let (client, connection) = tokio_postgres::connect(&db.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let version: i32 = client
            .query_one("SELECT version FROM hookhost_schema", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(version, MIGRATIONS.len() as i32);
        client
            .batch_execute("UPDATE hookhost_schema SET version = version + 1")
            .await
            .unwrap();
        let StoreSpec::Postgres(target) = StoreSpec::parse(&db.url()).unwrap() else {
            unreachable!()
        };
        let pool = target.connect().await.unwrap();
        let err = PostgresStore::open(pool, "c".into()).await.err().unwrap();
        assert!(err.to_string().contains("newer hookhost"), "{err}");
    }
}

#[cfg(test)]
mod conformance {
    //! The rest of the [`Store`] contract on PostgreSQL, write by write, as
    //! the SQLite backend's tests check it there: retries, dead letters,
    //! replays (one and bulk), parking, purges, reads and key-value quotas.

    use super::tests::{Db, append_all, blocking, claim_now, event, write};
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_whole_life_of_an_event_and_the_reads_that_show_it() {
        let db = Db::create("life").await;
        let store = db.store("solo").await;
        blocking(move || {
            let t0 = now_millis() - 60_000;
            append_all(&store, vec![event("a", None, t0), event("b", None, t0 + 1)]);
            assert_eq!(store.backlog().unwrap().pending, 2);
            assert_eq!(store.backlog().unwrap().oldest_received_at, Some(t0));
            assert_eq!(store.due_routes(now_millis()).unwrap(), ["/hooks/q"]);
            let routes = store.route_backlogs().unwrap();
            assert_eq!(routes.len(), 1);
            assert_eq!(routes[0].1.pending, 2);
            assert!(store.seen("/hooks/q", "a", t0).unwrap());
            assert!(!store.seen("/hooks/q", "zz", t0).unwrap());

            // A duplicate while pending; a retry; then dead.
            let duplicate = store
                .apply(&[Write::Append {
                    event: event("a", None, t0 + 5),
                    dedupe_since: t0 - 1,
                }])
                .unwrap()
                .remove(0)
                .unwrap();
            assert!(matches!(duplicate, Written::Appended(Appended::Duplicate)));
            let claimed = claim_now(&store, 60_000, 10);
            assert_eq!(claimed.len(), 2);
            let a = claimed.iter().find(|c| c.id == "a").unwrap().clone();
            let b = claimed.iter().find(|c| c.id == "b").unwrap().clone();
            let later = now_millis() + 3_600_000;
            let retried = write(
                &store,
                Write::Retry {
                    seq: a.seq,
                    token: a.token,
                    at: later,
                    error: "downstream unavailable".into(),
                },
            );
            assert!(matches!(retried, Written::Applied(true)));
            let dead = write(
                &store,
                Write::Dead {
                    seq: b.seq,
                    token: b.token,
                    at: now_millis(),
                    error: "unsupported event".into(),
                },
            );
            assert!(matches!(dead, Written::Applied(true)));
            // b is settled, a waits for its retry: that is what is due next.
            assert_eq!(store.next_due(now_millis()).unwrap(), Some(later));
            let key = |id: &str| EventKey {
                id: id.into(),
                route: Some("/hooks/q".into()),
            };
            let b_event = store.get(&key("b")).unwrap().unwrap();
            assert_eq!(b_event.status, Status::Dead);
            assert_eq!(b_event.last_error.as_deref(), Some("unsupported event"));
            assert_eq!(b_event.request.unwrap().body, b"{\"id\":\"b\"}");
            let dead_only = store
                .list(&Filter {
                    status: Some(Status::Dead),
                    limit: 10,
                    ..Filter::default()
                })
                .unwrap();
            assert_eq!(dead_only.len(), 1);
            let newest_first = store
                .list(&Filter {
                    limit: 1,
                    ..Filter::default()
                })
                .unwrap();
            assert_eq!(newest_first[0].id, "b");
            let page = store
                .list(&Filter {
                    before: Some(newest_first[0].seq),
                    limit: 10,
                    ..Filter::default()
                })
                .unwrap();
            assert_eq!(page.len(), 1);
            assert_eq!(page[0].id, "a");

            // The sender's redelivery of a dead event revives it.
            let revived = store
                .apply(&[Write::Append {
                    event: event("b", None, now_millis()),
                    dedupe_since: t0 - 1,
                }])
                .unwrap()
                .remove(0)
                .unwrap();
            assert!(matches!(revived, Written::Appended(Appended::Revived { seq }) if seq == b.seq));
            let b_event = store.get(&key("b")).unwrap().unwrap();
            assert_eq!((b_event.status, b_event.attempts, b_event.replays), (Status::Pending, 0, 1));

            // Replay of a pending event is refused; of a done one, done again.
            assert_eq!(
                match write(&store, Write::Replay { key: key("a"), at: 0 }) {
                    Written::Replayed(replayed) => replayed,
                    other => panic!("{other:?}"),
                },
                Replayed::Pending
            );
            let b2 = claim_now(&store, 60_000, 10).remove(0);
            assert_eq!(b2.id, "b");
            assert_eq!(b2.attempt, 1, "a revived event starts its attempts again");
            write(
                &store,
                Write::Complete {
                    seq: b2.seq,
                    token: b2.token,
                    at: now_millis(),
                },
            );
            let replayed = write(
                &store,
                Write::Replay {
                    key: key("b"),
                    at: now_millis(),
                },
            );
            assert!(matches!(replayed, Written::Replayed(Replayed::Replayed { seq, .. }) if seq == b.seq));
            let attempts = store.attempts(b.seq).unwrap();
            let outcomes: Vec<&str> = attempts.iter().map(|a| a.outcome.as_str()).collect();
            assert_eq!(outcomes, ["dead", "ok"]);
            assert!(attempts.iter().all(|a| a.host.as_deref() == Some("solo")));

            // Park: due events of a route without a plugin wait, no attempt spent.
            let parked = write(
                &store,
                Write::Park {
                    route: "/hooks/q".into(),
                    now: now_millis(),
                    until: now_millis() + 10_000,
                    error: "no plugin serves /hooks/q".into(),
                },
            );
            assert!(matches!(parked, Written::Count(1)));
            assert!(claim_now(&store, 60_000, 10).is_empty());

            // Bulk replay of dead events, then purge of old done ones.
            let c_at = now_millis();
            append_all(&store, vec![event("c", None, c_at)]);
            let c = claim_now(&store, 60_000, 10).remove(0);
            write(
                &store,
                Write::Dead {
                    seq: c.seq,
                    token: c.token,
                    at: c_at,
                    error: "bad".into(),
                },
            );
            let bulk = write(
                &store,
                Write::ReplayDead {
                    route: None,
                    dead_by: now_millis(),
                    at: now_millis(),
                    limit: 100,
                },
            );
            assert!(matches!(bulk, Written::ReplayedDead(ref counts) if counts == &[("/hooks/q".to_owned(), 1)]));
            let c = claim_now(&store, 60_000, 10).remove(0);
            write(
                &store,
                Write::Complete {
                    seq: c.seq,
                    token: c.token,
                    at: now_millis() - 1,
                },
            );
            let purged = write(
                &store,
                Write::Purge {
                    done_before: now_millis(),
                    seen_before: now_millis() + 1,
                    limit: 100,
                },
            );
            // Event c and the three dedupe records.
            assert!(matches!(purged, Written::Count(4)), "{purged:?}");
            assert!(store.get(&key("c")).unwrap().is_none());
            assert!(store.attempts(c.seq).unwrap().is_empty());
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn key_value_quotas_and_refusals_change_nothing() {
        let db = Db::create("kv").await;
        let store = db.store("solo").await;
        blocking(move || {
            let kv = |w: KvWrite| match write(&store, Write::Kv(w)) {
                Written::Kv(written) => written,
                other => panic!("{other:?}"),
            };
            let set = |key: &str, value: &[u8], max_total: u64| KvWrite::Set {
                plugin: "p".into(),
                key: key.into(),
                value: value.to_vec(),
                max_total,
            };
            assert_eq!(kv(set("a", b"12345", 20)), KvWritten::Set);
            assert!(matches!(
                kv(set("b", &[0; 30], 20)),
                KvWritten::QuotaExceeded(_)
            ));
            assert_eq!(store.kv_get("p", "b").unwrap(), None);
            let incr = |key: &str, delta: i64| KvWrite::Increment {
                plugin: "p".into(),
                key: key.into(),
                delta,
                max_value: 20,
                max_total: 100,
            };
            assert_eq!(kv(incr("a", 1)), KvWritten::Incremented(12346));
            assert_eq!(kv(set("word", b"xyz", 100)), KvWritten::Set);
            assert!(matches!(kv(incr("word", 1)), KvWritten::NotANumber(_)));
            assert_eq!(
                store.kv_get("p", "word").unwrap().as_deref(),
                Some(&b"xyz"[..])
            );
            assert_eq!(store.kv_keys("p", "").unwrap(), ["a", "word"]);
            assert_eq!(store.kv_keys("p", "w").unwrap(), ["word"]);
            assert_eq!(
                kv(KvWrite::Delete {
                    plugin: "p".into(),
                    key: "a".into()
                }),
                KvWritten::Deleted(true)
            );
            assert_eq!(store.kv_keys("p", "").unwrap(), ["word"]);
        })
        .await;
    }
}
