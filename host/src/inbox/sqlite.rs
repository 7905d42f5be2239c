//! The embedded backend: one SQLite file, `DATA/inbox.db`.
//!
//! Why SQLite: an accepted event must survive a crash or power loss, and a
//! WAL-mode database with `synchronous=FULL` fsyncs its log at every commit,
//! with recovery that decades of deployments have tested. It is one file
//! (plus its `-wal`), with no server to run; an operator can open it with
//! `sqlite3 DATA/inbox.db` and query it; the admin API's filters are plain
//! SQL; and the schema and claim queries have the same shape as the
//! PostgreSQL backend a fleet of hosts will share later. Throughput comes from
//! group commit (many deliveries per transaction, see [`super::writer`]), not
//! from relaxing durability.
//!
//! Strategy:
//! - One write connection, used only by the writer thread (behind a mutex
//!   that is never contended), and a few read-only connections for the admin
//!   API and the workers' due checks; in WAL mode readers never block the
//!   writer or each other.
//! - A lock file (`DATA/inbox.lock`, held while the store is open) makes sure
//!   only one host uses the file. That is what lets [`SqliteStore::open`]
//!   end every lease at start: whoever held them is gone, so their events are
//!   due now instead of when the leases would have run out.
//! - The schema is versioned with `PRAGMA user_version`; [`migrate`] brings an
//!   older file up to date (version 2 added the plugins' key-value store,
//!   version 3 split the requests off the events and added claim tokens) and
//!   refuses a file from a newer host.
//! - The row a claim and an outcome rewrite is small: an event's request
//!   (headers, body) sits in `requests`, written once at append and read
//!   once per claim; `events` holds only what changes. Page writes per event
//!   follow the row size, so this is what keeps bytes written per event (and
//!   the WAL's fsyncs) small.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension as _, TransactionBehavior, params};

use super::store::{
    Appended, Attempt, Backlog, ClaimToken, Claimed, Event, EventKey, Filter, KvWrite, KvWritten,
    Millis, NewEvent, Replayed, Status, Store, StoreError, StoredRequest, Write, Written,
    count_by_route, kv_incremented, kv_total_after, now_millis,
};

/// The schema version this host writes.
const SCHEMA_VERSION: i64 = 5;

/// Read connections kept open between reads; more are opened under load and
/// closed after.
const IDLE_READERS: usize = 4;

/// Schema version 1: events and the dedupe record.
///
/// Partial indexes keep the hot ones small: only pending events are in the
/// due indexes, only done events in the retention one.
const SCHEMA_V1: &str = "
CREATE TABLE events (
    seq             INTEGER PRIMARY KEY,   -- arrival order; the store's own key
    id              TEXT    NOT NULL,      -- delivery id (sender's or host-made)
    route           TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'done', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    replays         INTEGER NOT NULL DEFAULT 0,
    received_at     INTEGER NOT NULL,      -- ms since the Unix epoch, like every time here
    next_attempt_at INTEGER,               -- due when <= now; the lease end while claimed
    claimed_until   INTEGER,               -- lease of the running attempt
    done_at         INTEGER,
    dead_at         INTEGER,
    last_error      TEXT,
    method          TEXT    NOT NULL,
    path            TEXT    NOT NULL,
    query           TEXT    NOT NULL,
    headers         TEXT    NOT NULL,      -- JSON [[name, value], ...]
    body            BLOB    NOT NULL,
    verified_by     TEXT
);
CREATE INDEX events_due ON events (next_attempt_at) WHERE status = 'pending';
CREATE INDEX events_route_due ON events (route, next_attempt_at) WHERE status = 'pending';
CREATE INDEX events_id ON events (id);
CREATE INDEX events_status ON events (status, seq);
CREATE INDEX events_done ON events (done_at) WHERE status = 'done';

-- Sender-given delivery ids accepted (queue mode) or handled (sync mode), per
-- route, for the dedupe window.
CREATE TABLE seen (
    route TEXT    NOT NULL,
    id    TEXT    NOT NULL,
    at    INTEGER NOT NULL,
    PRIMARY KEY (route, id)
) WITHOUT ROWID;
CREATE INDEX seen_at ON seen (at);
";

/// Schema version 2: the plugins' key-value namespaces.
///
/// `kv_usage` keeps each namespace's total (key plus value bytes) so a write
/// checks its quota with one row, not a sum over every key.
const SCHEMA_V2: &str = "
CREATE TABLE kv (
    plugin TEXT NOT NULL,                  -- the namespace: the plugin's name
    key    TEXT NOT NULL,
    value  BLOB NOT NULL,
    PRIMARY KEY (plugin, key)
) WITHOUT ROWID;
CREATE TABLE kv_usage (
    plugin TEXT    PRIMARY KEY,
    bytes  INTEGER NOT NULL                -- sum of key and value bytes in kv
) WITHOUT ROWID;
";

/// Schema version 3: the request of an event in its own table (written
/// once, at append), a small hot `events` row for claims and outcomes to
/// rewrite, and claim tokens (the fence of every outcome) drawn from a
/// counter that only grows, so a token is never issued twice, even to an
/// event whose `seq` is reused after a purge.
///
/// The events of a version 2 file keep their seq, state and request. An
/// attempt interrupted by the host that wrote the file is given back
/// (`attempts` now counts attempts spent, see [`super::store`]).
const SCHEMA_V3: &str = "
CREATE TABLE requests (
    seq         INTEGER PRIMARY KEY,       -- the event's seq
    method      TEXT    NOT NULL,
    path        TEXT    NOT NULL,
    query       TEXT    NOT NULL,
    headers     TEXT    NOT NULL,          -- JSON [[name, value], ...]
    body        BLOB    NOT NULL,
    verified_by TEXT
);
INSERT INTO requests (seq, method, path, query, headers, body, verified_by)
    SELECT seq, method, path, query, headers, body, verified_by FROM events;
CREATE TABLE events_v3 (
    seq             INTEGER PRIMARY KEY,   -- arrival order; the store's own key
    id              TEXT    NOT NULL,      -- delivery id (sender's or host-made)
    route           TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'done', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,  -- attempts spent
    replays         INTEGER NOT NULL DEFAULT 0,
    received_at     INTEGER NOT NULL,      -- ms since the Unix epoch, like every time here
    next_attempt_at INTEGER,               -- due when <= now; the lease end while claimed
    claimed_until   INTEGER,               -- lease of the running attempt
    claim_token     INTEGER,               -- fence of the running attempt's outcome
    order_key       TEXT,                  -- [queue] order_key's value; NULL: unordered
    done_at         INTEGER,
    dead_at         INTEGER,
    last_error      TEXT
);
INSERT INTO events_v3 (seq, id, route, status, attempts, replays, received_at,
                       next_attempt_at, claimed_until, done_at, dead_at, last_error)
    SELECT seq, id, route, status,
           attempts - (status = 'pending' AND claimed_until IS NOT NULL AND attempts > 0),
           replays, received_at, next_attempt_at, claimed_until, done_at, dead_at, last_error
    FROM events;
DROP TABLE events;
ALTER TABLE events_v3 RENAME TO events;
CREATE INDEX events_due ON events (next_attempt_at) WHERE status = 'pending';
CREATE INDEX events_route_due ON events (route, next_attempt_at) WHERE status = 'pending';
CREATE INDEX events_id ON events (id);
CREATE INDEX events_status ON events (status, seq);
CREATE INDEX events_done ON events (done_at) WHERE status = 'done';
CREATE INDEX events_key ON events (route, order_key, seq)
    WHERE status = 'pending' AND order_key IS NOT NULL;
CREATE TABLE counters (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES ('claim_token', 0);
";

/// Schema version 4: every attempt's outcome, for the admin API and the
/// dashboard (`last_error` keeps only the newest). Written in the same
/// transaction as the outcome it records; removed with its event.
const SCHEMA_V4: &str = "
CREATE TABLE attempts (
    seq     INTEGER NOT NULL,              -- the event
    replay  INTEGER NOT NULL,              -- the event's replays when attempted: 0 before any
    attempt INTEGER NOT NULL,              -- 1, 2, … within that replay
    at      INTEGER NOT NULL,              -- when the outcome was recorded
    outcome TEXT    NOT NULL CHECK (outcome IN ('ok', 'retry', 'dead')),
    error   TEXT,
    PRIMARY KEY (seq, replay, attempt)
) WITHOUT ROWID;
CREATE TRIGGER attempts_follow_events AFTER DELETE ON events
BEGIN
    DELETE FROM attempts WHERE seq = OLD.seq;
END;
";

/// Schema version 5: which host claimed an event last and made each
/// attempt (`--host-id`), as the PostgreSQL backend records for a fleet.
const SCHEMA_V5: &str = "
ALTER TABLE events ADD COLUMN claimed_by TEXT;
ALTER TABLE attempts ADD COLUMN host TEXT;
";

/// The SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// This host's id, recorded with its claims and attempts.
    host: String,
    /// Held (locked) for as long as the store is open.
    _lock: File,
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/inbox.db`, migrates it, and makes the
    /// leases of a previous run due at once.
    pub fn open(dir: &Path, host: &str) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create data folder {}", dir.display()))?;
        let lock_path = dir.join("inbox.lock");
        let lock = File::create(&lock_path)
            .with_context(|| format!("cannot create {}", lock_path.display()))?;
        if lock.try_lock().is_err() {
            anyhow::bail!(
                "{} is in use by another hookhost process; give each host its own --data folder",
                dir.display()
            );
        }
        let path = dir.join("inbox.db");
        let mut writer = open_durable(&path, "inbox")?;
        migrate(&mut writer).with_context(|| format!("inbox {}", path.display()))?;
        let released = writer
            .execute(
                "UPDATE events SET next_attempt_at = ?1, claimed_until = NULL, claim_token = NULL
                 WHERE status = 'pending' AND claimed_until IS NOT NULL",
                params![now_millis()],
            )
            .with_context(|| format!("cannot release leases in {}", path.display()))?;
        if released > 0 {
            tracing::info!(
                events = released,
                "attempts interrupted by the previous run are due again"
            );
        }
        Ok(Self {
            path,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            host: host.to_owned(),
            _lock: lock,
        })
    }

    /// Runs `read` on a read-only connection.
    fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let idle = self.readers.lock().expect("reader pool poisoned").pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(backend)?;
                conn.busy_timeout(Duration::from_secs(5)).map_err(backend)?;
                conn
            }
        };
        let result = read(&conn).map_err(backend);
        let mut idle = self.readers.lock().expect("reader pool poisoned");
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        result
    }
}

/// Opens (creating if needed) the SQLite file `path`, readable by its owner
/// only (it holds whole requests, or plugin components), in WAL mode with
/// `synchronous=FULL`: every commit is fsync'd, so it survives power loss,
/// not just a crash, and readers never block the writer. `what` names the
/// file in errors ("inbox", "deployment store"). The inbox's and the
/// deployment store's one way to open their files.
pub fn open_durable(path: &Path, what: &str) -> anyhow::Result<Connection> {
    use anyhow::Context as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .with_context(|| format!("cannot create {what} {}", path.display()))?;
    let conn =
        Connection::open(path).with_context(|| format!("cannot open {what} {}", path.display()))?;
    configure(&conn).with_context(|| format!("cannot set up {what} {}", path.display()))?;
    Ok(conn)
}

fn configure(conn: &Connection) -> anyhow::Result<()> {
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        anyhow::bail!(
            "cannot use write-ahead logging (journal mode is {mode}); is the data folder on a network file system?"
        );
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(())
}

/// Brings the schema to [`SCHEMA_VERSION`].
pub(super) fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        anyhow::bail!(
            "was written by a newer hookhost (schema {version}, this one knows {SCHEMA_VERSION})"
        );
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    if version < 1 {
        tx.execute_batch(SCHEMA_V1)?;
    }
    if version < 2 {
        tx.execute_batch(SCHEMA_V2)?;
    }
    if version < 3 {
        tx.execute_batch(SCHEMA_V3)?;
    }
    if version < 4 {
        tx.execute_batch(SCHEMA_V4)?;
    }
    if version < 5 {
        tx.execute_batch(SCHEMA_V5)?;
    }
    // Later versions: `if version < 5 { … }`, each in this one transaction.
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// Records how the attempt just spent on event `seq` ended, under the
/// event's current replay count (a replay starts attempts from 1 again).
/// Called after the outcome's `UPDATE`, so the row's `attempts` is that
/// attempt's number.
fn log_attempt(
    conn: &Connection,
    host: &str,
    seq: i64,
    at: Millis,
    outcome: &str,
    error: Option<&str>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO attempts (seq, replay, attempt, at, outcome, error, host)
         SELECT seq, replays, attempts, ?2, ?3, ?4, ?5 FROM events WHERE seq = ?1",
    )?
    .execute(params![seq, at, outcome, error, host])?;
    Ok(())
}

fn backend(err: rusqlite::Error) -> StoreError {
    StoreError::Backend(err.to_string())
}

impl Store for SqliteStore {
    fn apply(&self, writes: &[Write]) -> Result<Vec<Result<Written, StoreError>>, StoreError> {
        let mut conn = self.writer.lock().expect("writer connection poisoned");
        // IMMEDIATE: take the write lock now rather than upgrade mid-way.
        let mut tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let mut results = Vec::with_capacity(writes.len());
        for write in writes {
            // A savepoint per write: one that fails (a bad row, a trigger)
            // is undone alone and the rest of the batch still commits.
            let savepoint = tx.savepoint().map_err(backend)?;
            match apply_one(&savepoint, &self.host, write) {
                Ok(written) => {
                    savepoint.commit().map_err(backend)?;
                    results.push(Ok(written));
                }
                Err(err) => {
                    drop(savepoint); // rolls back to before this write
                    results.push(Err(backend(err)));
                }
            }
        }
        tx.commit().map_err(backend)?;
        Ok(results)
    }

    fn get(&self, key: &EventKey) -> Result<Option<Event>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS}, method, path, query, headers, body, verified_by
                 FROM events JOIN requests USING (seq)
                 WHERE id = ?1 AND (?2 IS NULL OR route = ?2)
                 ORDER BY seq DESC LIMIT 1"
            ))?
            .query_row(params![key.id, key.route], |row| {
                let mut event = event_from_row(row)?;
                event.request = Some(StoredRequest {
                    method: row.get(14)?,
                    path: row.get(15)?,
                    query: row.get(16)?,
                    headers: headers_from_json(&row.get::<_, String>(17)?),
                    body: row.get(18)?,
                    verified_by: row.get(19)?,
                });
                Ok(event)
            })
            .optional()
        })
    }

    fn list(&self, filter: &Filter) -> Result<Vec<Event>, StoreError> {
        // Only the conditions asked for, so the planner can use
        // events_status (status, seq) when a status is given; `?N IS NULL OR`
        // forms would make it scan the table.
        let mut conditions = Vec::new();
        let mut values: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(status) = filter.status {
            conditions.push("status = ?");
            values.push(status.as_str().to_owned().into());
        }
        if let Some(route) = &filter.route {
            conditions.push("route = ?");
            values.push(route.clone().into());
        }
        if let Some(before) = filter.before {
            conditions.push("seq < ?");
            values.push(before.into());
        }
        if let Some(since) = filter.received_since {
            conditions.push("received_at >= ?");
            values.push(since.into());
        }
        if let Some(until) = filter.received_until {
            conditions.push("received_at < ?");
            values.push(until.into());
        }
        values.push(i64::from(filter.limit).into());
        let conditions = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        self.read(|conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events {conditions} ORDER BY seq DESC LIMIT ?"
            ))?;
            let rows = statement.query_map(rusqlite::params_from_iter(values), event_from_row)?;
            rows.collect()
        })
    }

    fn seen(&self, route: &str, id: &str, since: Millis) -> Result<bool, StoreError> {
        self.read(|conn| {
            conn.prepare_cached("SELECT 1 FROM seen WHERE route = ?1 AND id = ?2 AND at >= ?3")?
                .exists(params![route, id, since])
        })
    }

    fn due_routes(&self, now: Millis) -> Result<Vec<String>, StoreError> {
        // Walks the distinct routes of pending events one index seek at a
        // time, then asks each whether it has something due: cost grows with
        // the number of routes, not with the backlog.
        self.read(|conn| {
            // INDEXED BY: left to itself the planner prefers events_status
            // and walks every pending event.
            let mut next_route = conn.prepare_cached(
                "SELECT route FROM events INDEXED BY events_route_due
                 WHERE status = 'pending' AND route > ?1 ORDER BY route LIMIT 1",
            )?;
            let mut has_due = conn.prepare_cached(
                "SELECT 1 FROM events
                 WHERE status = 'pending' AND route = ?1 AND next_attempt_at <= ?2",
            )?;
            let mut routes = Vec::new();
            let mut after = String::new();
            while let Some(route) = next_route
                .query_row(params![after], |row| row.get::<_, String>(0))
                .optional()?
            {
                if has_due.exists(params![route, now])? {
                    routes.push(route.clone());
                }
                after = route;
            }
            Ok(routes)
        })
    }

    fn next_due(&self, now: Millis) -> Result<Option<Millis>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT next_attempt_at FROM events INDEXED BY events_due
                 WHERE status = 'pending' AND next_attempt_at > ?1
                 ORDER BY next_attempt_at LIMIT 1",
            )?
            .query_row(params![now], |row| row.get(0))
            .optional()
        })
    }

    fn backlog(&self) -> Result<Backlog, StoreError> {
        self.read(|conn| {
            // Both from the (status, seq) index; seq is arrival order, so the
            // lowest pending seq is the oldest pending event.
            let pending: i64 = conn
                .prepare_cached(
                    "SELECT count(*) FROM events INDEXED BY events_status WHERE status = 'pending'",
                )?
                .query_row([], |row| row.get(0))?;
            let oldest_received_at = conn
                .prepare_cached(
                    "SELECT received_at FROM events INDEXED BY events_status
                     WHERE status = 'pending' ORDER BY seq LIMIT 1",
                )?
                .query_row([], |row| row.get(0))
                .optional()?;
            Ok(Backlog {
                pending: u64::try_from(pending).unwrap_or_default(),
                oldest_received_at,
            })
        })
    }

    fn attempts(&self, seq: i64) -> Result<Vec<Attempt>, StoreError> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT replay, attempt, at, outcome, error, host FROM attempts
                 WHERE seq = ?1 ORDER BY replay, attempt",
            )?;
            let rows = statement.query_map(params![seq], |row| {
                Ok(Attempt {
                    replay: row.get(0)?,
                    attempt: row.get(1)?,
                    at: row.get(2)?,
                    outcome: row.get(3)?,
                    error: row.get(4)?,
                    host: row.get(5)?,
                })
            })?;
            rows.collect()
        })
    }

    fn route_backlogs(&self) -> Result<Vec<(String, Backlog)>, StoreError> {
        self.read(|conn| {
            // Counted from the pending-only events_route_due index, which
            // also holds each row's seq: the lowest pending seq of a route
            // is its oldest pending event, then read by its key.
            let mut statement = conn.prepare_cached(
                "SELECT route, count(*), min(seq) FROM events INDEXED BY events_route_due
                 WHERE status = 'pending' GROUP BY route",
            )?;
            let groups: Vec<(String, i64, i64)> = statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                .collect::<Result<_, _>>()?;
            let mut received =
                conn.prepare_cached("SELECT received_at FROM events WHERE seq = ?1")?;
            groups
                .into_iter()
                .map(|(route, pending, oldest)| {
                    let oldest_received_at = received
                        .query_row(params![oldest], |row| row.get(0))
                        .optional()?;
                    Ok((
                        route,
                        Backlog {
                            pending: u64::try_from(pending).unwrap_or_default(),
                            oldest_received_at,
                        },
                    ))
                })
                .collect()
        })
    }

    fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached("SELECT value FROM kv WHERE plugin = ?1 AND key = ?2")?
                .query_row(params![plugin, key], |row| row.get(0))
                .optional()
        })
    }

    fn kv_keys(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.read(|conn| {
            // A range scan on the primary key from `prefix` on, stopped at
            // the first key without it (TEXT compares as bytes: BINARY).
            let mut statement = conn.prepare_cached(
                "SELECT key FROM kv WHERE plugin = ?1 AND key >= ?2 ORDER BY key",
            )?;
            let mut rows = statement.query(params![plugin, prefix])?;
            let mut keys = Vec::new();
            while let Some(row) = rows.next()? {
                let key: String = row.get(0)?;
                if !key.starts_with(prefix) {
                    break;
                }
                keys.push(key);
            }
            Ok(keys)
        })
    }
}

/// Applies one key-value write; refusals (quota, not a number) change nothing.
fn apply_kv(conn: &Connection, write: &KvWrite) -> rusqlite::Result<Written> {
    let current = |plugin: &str, key: &str| -> rusqlite::Result<Option<Vec<u8>>> {
        conn.prepare_cached("SELECT value FROM kv WHERE plugin = ?1 AND key = ?2")?
            .query_row(params![plugin, key], |row| row.get(0))
            .optional()
    };
    let usage = |plugin: &str| -> rusqlite::Result<u64> {
        let bytes: Option<i64> = conn
            .prepare_cached("SELECT bytes FROM kv_usage WHERE plugin = ?1")?
            .query_row(params![plugin], |row| row.get(0))
            .optional()?;
        Ok(u64::try_from(bytes.unwrap_or_default()).unwrap_or_default())
    };
    // Sets `key` to `value` if the namespace total allows, from `old` (the
    // current value) to the new one.
    let store = |plugin: &str,
                 key: &str,
                 old: Option<&[u8]>,
                 value: &[u8],
                 max_total: u64|
     -> rusqlite::Result<Option<String>> {
        let total = match kv_total_after(key, old, value, usage(plugin)?, max_total) {
            Ok(total) => total,
            Err(refusal) => return Ok(Some(refusal)),
        };
        conn.prepare_cached(
            "INSERT INTO kv (plugin, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value",
        )?
        .execute(params![plugin, key, value])?;
        set_usage(conn, plugin, total)?;
        Ok(None)
    };
    let written = match write {
        KvWrite::Set {
            plugin,
            key,
            value,
            max_total,
        } => {
            let old = current(plugin, key)?;
            match store(plugin, key, old.as_deref(), value, *max_total)? {
                Some(refusal) => KvWritten::QuotaExceeded(refusal),
                None => KvWritten::Set,
            }
        }
        KvWrite::Delete { plugin, key } => match current(plugin, key)? {
            None => KvWritten::Deleted(false),
            Some(old) => {
                conn.prepare_cached("DELETE FROM kv WHERE plugin = ?1 AND key = ?2")?
                    .execute(params![plugin, key])?;
                let total = usage(plugin)?.saturating_sub((key.len() + old.len()) as u64);
                set_usage(conn, plugin, total)?;
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
            let old = current(plugin, key)?;
            match kv_incremented(key, old.as_deref(), *delta, *max_value) {
                Err(refusal) => refusal,
                Ok((sum, text)) => {
                    match store(plugin, key, old.as_deref(), text.as_bytes(), *max_total)? {
                        Some(refusal) => KvWritten::QuotaExceeded(refusal),
                        None => KvWritten::Incremented(sum),
                    }
                }
            }
        }
    };
    Ok(Written::Kv(written))
}

fn set_usage(conn: &Connection, plugin: &str, bytes: u64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO kv_usage (plugin, bytes) VALUES (?1, ?2)
         ON CONFLICT (plugin) DO UPDATE SET bytes = excluded.bytes",
    )?
    .execute(params![plugin, i64::try_from(bytes).unwrap_or(i64::MAX)])?;
    Ok(())
}

/// The columns [`event_from_row`] reads, in order.
const EVENT_COLUMNS: &str = "seq, id, route, status, attempts, replays, received_at, \
     next_attempt_at, claimed_until, done_at, dead_at, last_error, order_key, claimed_by";

fn event_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    let status: String = row.get(3)?;
    Ok(Event {
        seq: row.get(0)?,
        id: row.get(1)?,
        route: row.get(2)?,
        status: Status::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Text,
                format!("unknown status {status:?}").into(),
            )
        })?,
        attempts: row.get(4)?,
        replays: row.get(5)?,
        received_at: row.get(6)?,
        next_attempt_at: row.get(7)?,
        claimed_until: row.get(8)?,
        done_at: row.get(9)?,
        dead_at: row.get(10)?,
        last_error: row.get(11)?,
        order_key: row.get(12)?,
        host: row.get(13)?,
        request: None,
    })
}

fn headers_to_json(headers: &[(String, String)]) -> String {
    serde_json::to_string(headers).expect("pairs of strings always serialise")
}

fn headers_from_json(text: &str) -> Vec<(String, String)> {
    // Written by `headers_to_json`; an unreadable value (hand-edited file)
    // shows as no headers rather than failing the event.
    serde_json::from_str(text).unwrap_or_default()
}

/// Puts event `seq` back to pending, due at `at`, with a fresh retry budget:
/// what an operator's replay and a sender's redelivery of a dead event do.
fn replay_row(conn: &Connection, seq: i64, at: Millis) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE events SET status = 'pending', attempts = 0, replays = replays + 1,
                           next_attempt_at = ?2, claimed_until = NULL, claim_token = NULL,
                           done_at = NULL, dead_at = NULL
         WHERE seq = ?1",
    )?
    .execute(params![seq, at])?;
    Ok(())
}

/// An append whose sender-given id was accepted on its route within the
/// dedupe window. A done or pending event keeps the id: the append is a
/// duplicate. A dead one does not swallow the sender's own redelivery (the
/// sender is told to resend after fixing what made it fail, or resends a
/// delivery it saw fail): the event is revived, pending again with a fresh
/// retry budget like an operator's replay, and the id's window starts
/// again. The stored request is kept: a redelivery carries the same event.
fn redelivered(conn: &Connection, event: &NewEvent) -> rusqlite::Result<Written> {
    let newest: Option<(i64, String)> = conn
        .prepare_cached(
            "SELECT seq, status FROM events WHERE id = ?1 AND route = ?2
             ORDER BY seq DESC LIMIT 1",
        )?
        .query_row(params![event.id, event.route], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    match newest {
        Some((seq, status)) if status == Status::Dead.as_str() => {
            conn.prepare_cached("UPDATE seen SET at = ?3 WHERE route = ?1 AND id = ?2")?
                .execute(params![event.route, event.id, event.received_at])?;
            replay_row(conn, seq, event.received_at)?;
            Ok(Written::Appended(Appended::Revived { seq }))
        }
        _ => Ok(Written::Appended(Appended::Duplicate)),
    }
}

/// Inserts a new pending event and its request; returns its seq.
fn insert_event(conn: &Connection, event: &super::store::NewEvent) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO events (id, route, status, received_at, next_attempt_at, order_key)
         VALUES (?1, ?2, 'pending', ?3, ?3, ?4)",
    )?
    .execute(params![
        event.id,
        event.route,
        event.received_at,
        event.order_key
    ])?;
    let seq = conn.last_insert_rowid();
    let request = &event.request;
    conn.prepare_cached(
        "INSERT INTO requests (seq, method, path, query, headers, body, verified_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        seq,
        request.method,
        request.path,
        request.query,
        headers_to_json(&request.headers),
        &request.body[..],
        request.verified_by,
    ])?;
    Ok(seq)
}

/// Claims up to `limit` due events of `route` under one fresh token, and
/// reads their requests.
fn claim(
    conn: &Connection,
    host: &str,
    route: &str,
    now: Millis,
    lease_until: Millis,
    limit: u32,
) -> rusqlite::Result<Vec<Claimed>> {
    let token: i64 = conn
        .prepare_cached(
            "UPDATE counters SET value = value + 1 WHERE name = 'claim_token' RETURNING value",
        )?
        .query_row([], |row| row.get(0))?;
    let mut claimed = conn
        .prepare_cached(
            "UPDATE events SET claimed_until = ?3, next_attempt_at = ?3, claim_token = ?5,
                               claimed_by = ?6
             WHERE seq IN (
                 SELECT seq FROM events AS e
                 WHERE status = 'pending' AND route = ?1 AND next_attempt_at <= ?2
                   AND (order_key IS NULL OR NOT EXISTS (
                        SELECT 1 FROM events AS older INDEXED BY events_key
                        WHERE older.status = 'pending' AND older.order_key IS NOT NULL
                          AND older.route = e.route AND older.order_key = e.order_key
                          AND older.seq < e.seq))
                 ORDER BY next_attempt_at, seq LIMIT ?4)
             RETURNING seq, id, route, attempts, received_at",
        )?
        .query_map(
            params![route, now, lease_until, limit, token, host],
            |row| {
                Ok(Claimed {
                    seq: row.get(0)?,
                    token: ClaimToken(token),
                    id: row.get(1)?,
                    route: row.get(2)?,
                    attempt: row.get::<_, u32>(3)?.saturating_add(1),
                    received_at: row.get(4)?,
                    request: StoredRequest {
                        method: String::new(),
                        path: String::new(),
                        query: String::new(),
                        headers: Vec::new(),
                        body: Vec::new(),
                        verified_by: None,
                    },
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    claimed.sort_by_key(|event| event.seq);
    let mut request = conn.prepare_cached(
        "SELECT method, path, query, headers, body, verified_by FROM requests WHERE seq = ?1",
    )?;
    for event in &mut claimed {
        event.request = request.query_row(params![event.seq], |row| {
            Ok(StoredRequest {
                method: row.get(0)?,
                path: row.get(1)?,
                query: row.get(2)?,
                headers: headers_from_json(&row.get::<_, String>(3)?),
                body: row.get(4)?,
                verified_by: row.get(5)?,
            })
        })?;
    }
    Ok(claimed)
}

/// Runs an outcome's fenced `UPDATE`: applied when it changed the row.
fn record(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<Written> {
    let changed = conn.prepare_cached(sql)?.execute(params)?;
    Ok(Written::Applied(changed == 1))
}

/// [`record`] for an outcome that spends an attempt, which the attempt log
/// keeps (`log`: the event, when, `ok`/`retry`/`dead`, the error) when it
/// applied.
fn outcome(
    conn: &Connection,
    host: &str,
    sql: &str,
    params: impl rusqlite::Params,
    (seq, at, outcome, error): (i64, Millis, &str, Option<&str>),
) -> rusqlite::Result<Written> {
    let written = record(conn, sql, params)?;
    if matches!(written, Written::Applied(true)) {
        log_attempt(conn, host, seq, at, outcome, error)?;
    }
    Ok(written)
}

/// Deletes up to `limit` done events finished before `done_before`, with
/// their requests; returns how many events.
fn purge_done(conn: &Connection, done_before: Millis, limit: u32) -> rusqlite::Result<usize> {
    let seqs = conn
        .prepare_cached(
            "DELETE FROM events WHERE seq IN (
                 SELECT seq FROM events INDEXED BY events_done
                 WHERE status = 'done' AND done_at < ?1 LIMIT ?2)
             RETURNING seq",
        )?
        .query_map(params![done_before, limit], |row| row.get::<_, i64>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut request = conn.prepare_cached("DELETE FROM requests WHERE seq = ?1")?;
    for seq in &seqs {
        request.execute(params![seq])?;
    }
    Ok(seqs.len())
}

fn apply_one(conn: &Connection, host: &str, write: &Write) -> rusqlite::Result<Written> {
    match write {
        Write::Append {
            event,
            dedupe_since,
        } => {
            if event.dedupe {
                // Inserts the id, or refreshes a record older than the window;
                // a record inside the window changes nothing: a duplicate.
                let changed = conn
                    .prepare_cached(
                        "INSERT INTO seen (route, id, at) VALUES (?1, ?2, ?3)
                         ON CONFLICT (route, id) DO UPDATE SET at = excluded.at
                         WHERE seen.at < ?4",
                    )?
                    .execute(params![
                        event.route,
                        event.id,
                        event.received_at,
                        dedupe_since
                    ])?;
                if changed == 0 {
                    return redelivered(conn, event);
                }
            }
            let seq = insert_event(conn, event)?;
            Ok(Written::Appended(Appended::Accepted { seq }))
        }
        Write::Remember { route, id, at } => {
            conn.prepare_cached(
                "INSERT INTO seen (route, id, at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (route, id) DO UPDATE SET at = excluded.at",
            )?
            .execute(params![route, id, at])?;
            Ok(Written::Done)
        }
        Write::Claim {
            route,
            now,
            lease_until,
            limit,
        } => claim(conn, host, route, *now, *lease_until, *limit).map(Written::Claimed),
        Write::Complete { seq, token, at } => outcome(
            conn,
            host,
            "UPDATE events SET status = 'done', done_at = ?3, attempts = attempts + 1,
                               next_attempt_at = NULL, claimed_until = NULL, claim_token = NULL
             WHERE seq = ?1 AND status = 'pending' AND claim_token = ?2",
            params![seq, token.0, at],
            (*seq, *at, "ok", None),
        ),
        Write::Retry {
            seq,
            token,
            at,
            error,
        } => outcome(
            conn,
            host,
            "UPDATE events SET next_attempt_at = ?3, last_error = ?4, attempts = attempts + 1,
                               claimed_until = NULL, claim_token = NULL
             WHERE seq = ?1 AND status = 'pending' AND claim_token = ?2",
            params![seq, token.0, at, error],
            (*seq, now_millis(), "retry", Some(error.as_str())),
        ),
        Write::Dead {
            seq,
            token,
            at,
            error,
        } => outcome(
            conn,
            host,
            "UPDATE events SET status = 'dead', dead_at = ?3, last_error = ?4,
                               attempts = attempts + 1,
                               next_attempt_at = NULL, claimed_until = NULL, claim_token = NULL
             WHERE seq = ?1 AND status = 'pending' AND claim_token = ?2",
            params![seq, token.0, at, error],
            (*seq, *at, "dead", Some(error.as_str())),
        ),
        Write::Release { seq, token, at } => record(
            conn,
            "UPDATE events SET next_attempt_at = ?3, claimed_until = NULL, claim_token = NULL
             WHERE seq = ?1 AND status = 'pending' AND claim_token = ?2",
            params![seq, token.0, at],
        ),
        Write::Park {
            route,
            now,
            until,
            error,
        } => {
            let changed = conn
                .prepare_cached(
                    "UPDATE events SET next_attempt_at = ?3, last_error = ?4
                     WHERE status = 'pending' AND route = ?1 AND next_attempt_at <= ?2",
                )?
                .execute(params![route, now, until, error])?;
            Ok(Written::Count(changed as u64))
        }
        Write::Replay { key, at } => {
            let found: Option<(i64, String, String)> = conn
                .prepare_cached(
                    "SELECT seq, status, route FROM events
                     WHERE id = ?1 AND (?2 IS NULL OR route = ?2)
                     ORDER BY seq DESC LIMIT 1",
                )?
                .query_row(params![key.id, key.route], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .optional()?;
            let Some((seq, status, route)) = found else {
                return Ok(Written::Replayed(Replayed::NotFound));
            };
            if status == Status::Pending.as_str() {
                return Ok(Written::Replayed(Replayed::Pending));
            }
            replay_row(conn, seq, *at)?;
            Ok(Written::Replayed(Replayed::Replayed { seq, route }))
        }
        Write::ReplayDead {
            route,
            dead_by,
            at,
            limit,
        } => {
            // `dead_by`: an event replayed by an earlier batch of the same
            // request and dead again since is not replayed twice.
            let mut statement = conn.prepare_cached(
                "UPDATE events SET status = 'pending', attempts = 0, replays = replays + 1,
                                   next_attempt_at = ?3, claimed_until = NULL, claim_token = NULL,
                                   done_at = NULL, dead_at = NULL
                 WHERE seq IN (SELECT seq FROM events INDEXED BY events_status
                               WHERE status = 'dead' AND dead_at <= ?2
                                     AND (?1 IS NULL OR route = ?1)
                               ORDER BY seq LIMIT ?4)
                 RETURNING route",
            )?;
            let routes = statement
                .query_map(params![route, dead_by, at, limit], |row| {
                    row.get::<_, String>(0)
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Written::ReplayedDead(count_by_route(routes)))
        }
        Write::Purge {
            done_before,
            seen_before,
            limit,
        } => {
            let events = purge_done(conn, *done_before, *limit)?;
            // `seen` has no rowid (WITHOUT ROWID): delete by key.
            let seen = conn
                .prepare_cached(
                    "DELETE FROM seen WHERE (route, id) IN (
                         SELECT route, id FROM seen WHERE at < ?1 LIMIT ?2)",
                )?
                .execute(params![seen_before, limit])?;
            Ok(Written::Count((events + seen) as u64))
        }
        Write::Kv(write) => apply_kv(conn, write),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, route: &str, at: Millis) -> NewEvent {
        NewEvent {
            id: id.into(),
            dedupe: true,
            route: route.into(),
            received_at: at,
            order_key: None,
            request: StoredRequest {
                method: "POST".into(),
                path: route.into(),
                query: "a=1".into(),
                headers: vec![("content-type".into(), "application/json".into())],
                body: b"{\"n\":1}".to_vec(),
                verified_by: Some("github".into()),
            },
        }
    }

    fn one(store: &SqliteStore, write: Write) -> Written {
        store.apply(&[write]).unwrap().remove(0).unwrap()
    }

    fn append(store: &SqliteStore, event: NewEvent, dedupe_since: Millis) -> Appended {
        match one(
            store,
            Write::Append {
                event,
                dedupe_since,
            },
        ) {
            Written::Appended(appended) => appended,
            other => panic!("{other:?}"),
        }
    }

    fn claim(store: &SqliteStore, route: &str, now: Millis, lease: Millis) -> Vec<Claimed> {
        match one(
            store,
            Write::Claim {
                route: route.into(),
                now,
                lease_until: now + lease,
                limit: 10,
            },
        ) {
            Written::Claimed(claimed) => claimed,
            other => panic!("{other:?}"),
        }
    }

    fn applied(store: &SqliteStore, write: Write) -> bool {
        match one(store, write) {
            Written::Applied(applied) => applied,
            other => panic!("{other:?}"),
        }
    }

    fn get(store: &SqliteStore, id: &str) -> Event {
        store
            .get(&EventKey {
                id: id.into(),
                route: None,
            })
            .unwrap()
            .unwrap()
    }

    fn open() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), "test-host").unwrap();
        (dir, store)
    }

    #[test]
    fn append_then_get_returns_the_request() {
        let (_dir, store) = open();
        let Appended::Accepted { seq } = append(&store, event("e1", "/hooks/a", 1000), 0) else {
            panic!("not accepted");
        };
        let stored = get(&store, "e1");
        assert_eq!(stored.seq, seq);
        assert_eq!(stored.status, Status::Pending);
        assert_eq!(stored.attempts, 0);
        assert_eq!(stored.next_attempt_at, Some(1000));
        let request = stored.request.unwrap();
        assert_eq!(request.body, b"{\"n\":1}");
        assert_eq!(request.query, "a=1");
        assert_eq!(
            request.headers,
            [("content-type".to_owned(), "application/json".to_owned())]
        );
        assert_eq!(request.verified_by.as_deref(), Some("github"));
        assert!(
            store
                .get(&EventKey {
                    id: "nope".into(),
                    route: None
                })
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn an_id_is_deduplicated_per_route_within_the_window() {
        let (_dir, store) = open();
        assert!(matches!(
            append(&store, event("e1", "/hooks/a", 1000), 0),
            Appended::Accepted { .. }
        ));
        assert_eq!(
            append(&store, event("e1", "/hooks/a", 2000), 500),
            Appended::Duplicate
        );
        // Another route is another sender.
        assert!(matches!(
            append(&store, event("e1", "/hooks/b", 2000), 500),
            Appended::Accepted { .. }
        ));
        // Outside the window the id is accepted again.
        assert!(matches!(
            append(&store, event("e1", "/hooks/a", 9000), 1500),
            Appended::Accepted { .. }
        ));
        // Host-made ids are never looked up.
        let mut made = event("m1", "/hooks/a", 1000);
        made.dedupe = false;
        assert!(matches!(
            append(&store, made.clone(), 0),
            Appended::Accepted { .. }
        ));
        assert!(matches!(append(&store, made, 0), Appended::Accepted { .. }));
        assert!(store.seen("/hooks/a", "e1", 9000).unwrap());
        assert!(!store.seen("/hooks/a", "e1", 9001).unwrap());
        assert!(!store.seen("/hooks/a", "m1", 0).unwrap());
    }

    #[test]
    fn a_redelivery_revives_a_dead_event_and_is_a_duplicate_of_a_pending_or_done_one() {
        let (_dir, store) = open();
        let Appended::Accepted { seq } = append(&store, event("e1", "/hooks/a", 1000), 0) else {
            panic!("not accepted");
        };
        // Pending (waiting, then in an attempt): a duplicate.
        assert_eq!(
            append(&store, event("e1", "/hooks/a", 1100), 0),
            Appended::Duplicate
        );
        let first = claim(&store, "/hooks/a", 1100, 100).remove(0);
        assert_eq!(
            append(&store, event("e1", "/hooks/a", 1150), 0),
            Appended::Duplicate
        );
        applied(
            &store,
            Write::Dead {
                seq: first.seq,
                token: first.token,
                at: 1200,
                error: "rejected".into(),
            },
        );
        // Dead: the sender's redelivery revives it, due now, fresh budget.
        assert_eq!(
            append(&store, event("e1", "/hooks/a", 2000), 0),
            Appended::Revived { seq }
        );
        let revived = get(&store, "e1");
        assert_eq!(revived.seq, seq, "the same event, not a second row");
        assert_eq!(revived.status, Status::Pending);
        assert_eq!(revived.attempts, 0);
        assert_eq!(revived.replays, 1);
        assert_eq!(revived.dead_at, None);
        assert_eq!(revived.next_attempt_at, Some(2000));
        assert!(
            store.seen("/hooks/a", "e1", 2000).unwrap(),
            "window restarts"
        );
        let again = claim(&store, "/hooks/a", 2000, 100).remove(0);
        assert_eq!(again.attempt, 1);
        // Two redeliveries in one batch revive it once.
        applied(
            &store,
            Write::Dead {
                seq,
                token: again.token,
                at: 2100,
                error: "rejected".into(),
            },
        );
        let twice = store
            .apply(&[
                Write::Append {
                    event: event("e1", "/hooks/a", 3000),
                    dedupe_since: 0,
                },
                Write::Append {
                    event: event("e1", "/hooks/a", 3000),
                    dedupe_since: 0,
                },
            ])
            .unwrap();
        assert!(matches!(
            twice[0],
            Ok(Written::Appended(Appended::Revived { .. }))
        ));
        assert!(matches!(
            twice[1],
            Ok(Written::Appended(Appended::Duplicate))
        ));
        // Done: a duplicate.
        let last = claim(&store, "/hooks/a", 3000, 100).remove(0);
        applied(
            &store,
            Write::Complete {
                seq: last.seq,
                token: last.token,
                at: 3100,
            },
        );
        assert_eq!(
            append(&store, event("e1", "/hooks/a", 3200), 0),
            Appended::Duplicate
        );
        assert_eq!(get(&store, "e1").status, Status::Done);
    }

    #[test]
    fn duplicates_within_one_batch_are_caught() {
        let (_dir, store) = open();
        let results = store
            .apply(&[
                Write::Append {
                    event: event("same", "/hooks/a", 1000),
                    dedupe_since: 0,
                },
                Write::Append {
                    event: event("same", "/hooks/a", 1000),
                    dedupe_since: 0,
                },
            ])
            .unwrap();
        assert!(matches!(
            results[0],
            Ok(Written::Appended(Appended::Accepted { .. }))
        ));
        assert!(matches!(
            results[1],
            Ok(Written::Appended(Appended::Duplicate))
        ));
    }

    #[test]
    fn claims_lease_due_events_and_count_attempts() {
        let (_dir, store) = open();
        append(&store, event("e1", "/hooks/a", 1000), 0);
        append(&store, event("e2", "/hooks/a", 1000), 0);
        append(&store, event("e3", "/hooks/b", 1000), 0);
        assert!(
            claim(&store, "/hooks/a", 999, 100).is_empty(),
            "not due yet"
        );
        assert_eq!(store.due_routes(1000).unwrap(), ["/hooks/a", "/hooks/b"]);

        let claimed = claim(&store, "/hooks/a", 1000, 100);
        assert_eq!(
            claimed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["e1", "e2"]
        );
        assert!(claimed.iter().all(|c| c.attempt == 1));
        assert_eq!(claimed[0].request.body, b"{\"n\":1}");
        // Leased: not due again until the lease ends.
        assert!(claim(&store, "/hooks/a", 1050, 100).is_empty());
        assert_eq!(store.due_routes(1050).unwrap(), ["/hooks/b"]);
        assert_eq!(store.next_due(1000).unwrap(), Some(1100));
        let shown = get(&store, "e1");
        assert_eq!(shown.claimed_until, Some(1100));
        assert_eq!(shown.attempts, 0, "a running attempt is not spent yet");

        // The lease runs out (the host died): due again, under a new token,
        // and the interrupted attempt was not spent.
        let again = claim(&store, "/hooks/a", 1100, 100);
        assert_eq!(again.len(), 2);
        assert!(again.iter().all(|c| c.attempt == 1));
        assert_ne!(again[0].token, claimed[0].token);
        // The first claim's late result is stale and ignored.
        assert!(!applied(
            &store,
            Write::Complete {
                seq: claimed[0].seq,
                token: claimed[0].token,
                at: 1150
            }
        ));
        assert!(applied(
            &store,
            Write::Complete {
                seq: again[0].seq,
                token: again[0].token,
                at: 1160
            }
        ));
        let done = get(&store, "e1");
        assert_eq!(done.status, Status::Done);
        assert_eq!(done.done_at, Some(1160));
        assert_eq!(done.next_attempt_at, None);
        assert_eq!(done.claimed_until, None);
        assert_eq!(done.attempts, 1, "the outcome spent the attempt");
        // Done is final: no second completion.
        assert!(!applied(
            &store,
            Write::Complete {
                seq: again[0].seq,
                token: again[0].token,
                at: 1170
            }
        ));
        assert_eq!(get(&store, "e1").done_at, Some(1160));
    }

    #[test]
    fn retry_dead_and_replay() {
        let (_dir, store) = open();
        append(&store, event("e1", "/hooks/a", 1000), 0);
        let first = claim(&store, "/hooks/a", 1000, 100).remove(0);
        assert!(applied(
            &store,
            Write::Retry {
                seq: first.seq,
                token: first.token,
                at: 1500,
                error: "downstream down".into()
            }
        ));
        let waiting = get(&store, "e1");
        assert_eq!(waiting.status, Status::Pending);
        assert_eq!(waiting.next_attempt_at, Some(1500));
        assert_eq!(waiting.claimed_until, None);
        assert_eq!(waiting.last_error.as_deref(), Some("downstream down"));
        assert!(claim(&store, "/hooks/a", 1499, 100).is_empty());
        let second = claim(&store, "/hooks/a", 1500, 100).remove(0);
        assert_eq!(second.attempt, 2);
        assert!(applied(
            &store,
            Write::Dead {
                seq: second.seq,
                token: second.token,
                at: 1600,
                error: "rejected".into()
            }
        ));
        let dead = get(&store, "e1");
        assert_eq!(dead.status, Status::Dead);
        assert_eq!(dead.dead_at, Some(1600));
        assert_eq!(dead.last_error.as_deref(), Some("rejected"));

        let key = EventKey {
            id: "e1".into(),
            route: Some("/hooks/a".into()),
        };
        let Written::Replayed(Replayed::Replayed { seq, .. }) = one(
            &store,
            Write::Replay {
                key: key.clone(),
                at: 2000,
            },
        ) else {
            panic!("not replayed");
        };
        assert_eq!(seq, first.seq);
        let replayed = get(&store, "e1");
        assert_eq!(replayed.status, Status::Pending);
        assert_eq!(replayed.attempts, 0);
        assert_eq!(replayed.replays, 1);
        assert_eq!(replayed.dead_at, None);
        assert_eq!(replayed.next_attempt_at, Some(2000));
        assert_eq!(claim(&store, "/hooks/a", 2000, 100)[0].attempt, 1);
        assert!(matches!(
            one(&store, Write::Replay { key, at: 2100 }),
            Written::Replayed(Replayed::Pending)
        ));
        assert!(matches!(
            one(
                &store,
                Write::Replay {
                    key: EventKey {
                        id: "e1".into(),
                        route: Some("/hooks/other".into())
                    },
                    at: 2100
                }
            ),
            Written::Replayed(Replayed::NotFound)
        ));
    }

    #[test]
    fn dead_events_are_replayed_in_bulk_by_route_once() {
        let (_dir, store) = open();
        for (id, route) in [("a1", "/hooks/a"), ("a2", "/hooks/a"), ("b1", "/hooks/b")] {
            append(&store, event(id, route, 1000), 0);
        }
        append(&store, event("a3", "/hooks/a", 1000), 0);
        for route in ["/hooks/a", "/hooks/b"] {
            for claimed in claim(&store, route, 1000, 100) {
                let write = if claimed.id == "a3" {
                    Write::Complete {
                        seq: claimed.seq,
                        token: claimed.token,
                        at: 1100,
                    }
                } else {
                    Write::Dead {
                        seq: claimed.seq,
                        token: claimed.token,
                        at: 1100,
                        error: "rejected".into(),
                    }
                };
                applied(&store, write);
            }
        }
        let replay = |route: Option<&str>, dead_by: Millis, limit: u32| match one(
            &store,
            Write::ReplayDead {
                route: route.map(str::to_owned),
                dead_by,
                at: 2000,
                limit,
            },
        ) {
            Written::ReplayedDead(counts) => counts,
            other => panic!("{other:?}"),
        };
        assert!(store.route_backlogs().unwrap().is_empty());
        assert!(replay(None, 1099, 100).is_empty(), "died after dead_by");
        assert_eq!(
            replay(Some("/hooks/a"), 1100, 1),
            [("/hooks/a".to_owned(), 1)]
        );
        assert_eq!(
            replay(Some("/hooks/a"), 1100, 100),
            [("/hooks/a".to_owned(), 1)]
        );
        assert!(replay(Some("/hooks/a"), 1100, 100).is_empty(), "idempotent");
        assert_eq!(replay(None, 1100, 100), [("/hooks/b".to_owned(), 1)]);
        for id in ["a1", "a2", "b1"] {
            let event = get(&store, id);
            assert_eq!(event.status, Status::Pending, "{id}");
            assert_eq!(event.attempts, 0);
            assert_eq!(event.replays, 1);
            assert_eq!(event.next_attempt_at, Some(2000));
        }
        assert_eq!(
            get(&store, "a3").status,
            Status::Done,
            "done is not replayed"
        );
        let mut pending: Vec<_> = (store.route_backlogs().unwrap().into_iter())
            .map(|(route, backlog)| (route, backlog.pending))
            .collect();
        pending.sort();
        assert_eq!(
            pending,
            [("/hooks/a".to_owned(), 2), ("/hooks/b".to_owned(), 1)]
        );
    }

    #[test]
    fn parking_postpones_without_spending_an_attempt() {
        let (_dir, store) = open();
        append(&store, event("e1", "/hooks/gone", 1000), 0);
        assert!(matches!(
            one(
                &store,
                Write::Park {
                    route: "/hooks/gone".into(),
                    now: 1000,
                    until: 5000,
                    error: "no plugin".into()
                }
            ),
            Written::Count(1)
        ));
        let parked = get(&store, "e1");
        assert_eq!(parked.attempts, 0);
        assert_eq!(parked.next_attempt_at, Some(5000));
        assert_eq!(parked.last_error.as_deref(), Some("no plugin"));
        assert!(store.due_routes(4999).unwrap().is_empty());
        assert_eq!(store.due_routes(5000).unwrap(), ["/hooks/gone"]);
    }

    #[test]
    fn list_filters_newest_first() {
        let (_dir, store) = open();
        for (i, route) in ["/hooks/a", "/hooks/b", "/hooks/a", "/hooks/a"]
            .iter()
            .enumerate()
        {
            append(&store, event(&format!("e{i}"), route, 1000), 0);
        }
        let done = claim(&store, "/hooks/a", 1000, 100).remove(0);
        applied(
            &store,
            Write::Complete {
                seq: done.seq,
                token: done.token,
                at: 1001,
            },
        );
        let ids = |filter: Filter| {
            store
                .list(&filter)
                .unwrap()
                .into_iter()
                .map(|e| e.id)
                .collect::<Vec<_>>()
        };
        let all = Filter {
            limit: 100,
            ..Filter::default()
        };
        assert_eq!(ids(all.clone()), ["e3", "e2", "e1", "e0"]);
        assert_eq!(
            ids(Filter {
                route: Some("/hooks/a".into()),
                status: Some(Status::Pending),
                ..all.clone()
            }),
            ["e3", "e2"]
        );
        assert_eq!(
            ids(Filter {
                status: Some(Status::Done),
                ..all.clone()
            }),
            ["e0"]
        );
        let page = store
            .list(&Filter {
                limit: 2,
                ..all.clone()
            })
            .unwrap();
        assert_eq!(page.len(), 2);
        assert_eq!(
            ids(Filter {
                before: Some(page[1].seq),
                ..all.clone()
            }),
            ["e1", "e0"]
        );
        assert!(
            store
                .list(&all)
                .unwrap()
                .iter()
                .all(|e| e.request.is_none())
        );
    }

    #[test]
    fn purge_deletes_old_done_events_and_dedupe_records_only() {
        let (_dir, store) = open();
        append(&store, event("old", "/hooks/a", 1000), 0);
        append(&store, event("new", "/hooks/a", 1000), 0);
        append(&store, event("dead", "/hooks/a", 1000), 0);
        append(&store, event("pending", "/hooks/b", 1000), 0);
        let claimed = claim(&store, "/hooks/a", 1000, 100);
        for (event, at) in claimed.iter().zip([2000, 8000]) {
            applied(
                &store,
                Write::Complete {
                    seq: event.seq,
                    token: event.token,
                    at,
                },
            );
        }
        applied(
            &store,
            Write::Dead {
                seq: claimed[2].seq,
                token: claimed[2].token,
                at: 2000,
                error: "x".into(),
            },
        );
        assert!(matches!(
            one(
                &store,
                Write::Purge {
                    done_before: 5000,
                    seen_before: 900,
                    limit: 100
                }
            ),
            Written::Count(1)
        ));
        let left: Vec<String> = store
            .list(&Filter {
                limit: 10,
                ..Filter::default()
            })
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(left, ["pending", "dead", "new"]);
        let requests: i64 = store
            .read(|conn| conn.query_row("SELECT count(*) FROM requests", [], |row| row.get(0)))
            .unwrap();
        assert_eq!(requests, 3, "a purged event's request goes with it");
        assert!(store.seen("/hooks/a", "old", 0).unwrap());
        one(
            &store,
            Write::Purge {
                done_before: 0,
                seen_before: 1001,
                limit: 100,
            },
        );
        assert!(!store.seen("/hooks/a", "old", 0).unwrap());
    }

    #[test]
    fn a_failing_write_is_undone_alone() {
        let (_dir, store) = open();
        store
            .writer
            .lock()
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.id = 'bad'
                 BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .unwrap();
        let results = store
            .apply(&[
                Write::Append {
                    event: event("good", "/hooks/a", 1000),
                    dedupe_since: 0,
                },
                Write::Append {
                    event: event("bad", "/hooks/a", 1000),
                    dedupe_since: 0,
                },
            ])
            .unwrap();
        assert!(results[0].is_ok());
        assert!(matches!(&results[1], Err(StoreError::Backend(m)) if m.contains("refused")));
        assert_eq!(get(&store, "good").status, Status::Pending);
        // Its dedupe record was undone with it: a retry is not a duplicate.
        assert!(!store.seen("/hooks/a", "bad", 0).unwrap());
    }

    #[test]
    fn reopening_ends_leases_and_keeps_events() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), "test-host").unwrap();
        let now = now_millis();
        append(&store, event("e1", "/hooks/a", now), 0);
        claim(&store, "/hooks/a", now, 3_600_000);
        assert!(
            SqliteStore::open(dir.path(), "test-host").is_err(),
            "a second host on the same folder is refused"
        );
        drop(store);
        let store = SqliteStore::open(dir.path(), "test-host").unwrap();
        let event = get(&store, "e1");
        assert_eq!(event.claimed_until, None);
        assert!(event.next_attempt_at.unwrap() <= now_millis());
        // The host, not the plugin, cut that attempt short: not spent.
        assert_eq!(claim(&store, "/hooks/a", now_millis(), 100)[0].attempt, 1);
    }

    #[test]
    fn a_late_outcome_from_before_a_replay_is_refused() {
        let (_dir, store) = open();
        append(&store, event("e1", "/hooks/a", 1000), 0);
        // Claim 1's lease runs out while its plugin is still busy; claim 2
        // ends the event dead; an operator replays it; claim 3 runs it.
        let first = claim(&store, "/hooks/a", 1000, 100).remove(0);
        let second = claim(&store, "/hooks/a", 1100, 100).remove(0);
        assert!(applied(
            &store,
            Write::Dead {
                seq: second.seq,
                token: second.token,
                at: 1150,
                error: "rejected".into()
            }
        ));
        let key = EventKey {
            id: "e1".into(),
            route: None,
        };
        one(&store, Write::Replay { key, at: 1200 });
        let third = claim(&store, "/hooks/a", 1200, 100).remove(0);
        assert_eq!(
            third.attempt, first.attempt,
            "same attempt number as claim 1"
        );
        // Claim 1's plugin finally answers: it must not end claim 3's attempt.
        assert!(!applied(
            &store,
            Write::Complete {
                seq: first.seq,
                token: first.token,
                at: 1250
            }
        ));
        assert_eq!(get(&store, "e1").status, Status::Pending);
        assert!(applied(
            &store,
            Write::Complete {
                seq: third.seq,
                token: third.token,
                at: 1260
            }
        ));
    }

    #[test]
    fn a_release_spends_no_attempt_and_is_fenced() {
        let (_dir, store) = open();
        append(&store, event("e1", "/hooks/a", 1000), 0);
        let first = claim(&store, "/hooks/a", 1000, 100).remove(0);
        assert!(applied(
            &store,
            Write::Release {
                seq: first.seq,
                token: first.token,
                at: 1300
            }
        ));
        let released = get(&store, "e1");
        assert_eq!(released.attempts, 0);
        assert_eq!(released.next_attempt_at, Some(1300));
        assert_eq!(released.claimed_until, None);
        assert!(claim(&store, "/hooks/a", 1299, 100).is_empty());
        let second = claim(&store, "/hooks/a", 1300, 100).remove(0);
        assert_eq!(second.attempt, 1);
        // A second release under the old token changes nothing.
        assert!(!applied(
            &store,
            Write::Release {
                seq: first.seq,
                token: first.token,
                at: 5000
            }
        ));
    }

    #[test]
    fn claims_take_a_batch_in_acceptance_order_under_one_fresh_token() {
        let (_dir, store) = open();
        for i in 0..30 {
            append(&store, event(&format!("e{i}"), "/hooks/a", 1000), 0);
        }
        let batch = claim(&store, "/hooks/a", 1000, 100);
        assert_eq!(batch.len(), 10, "the limit");
        let ids: Vec<_> = batch.iter().map(|c| c.id.clone()).collect();
        assert_eq!(ids, (0..10).map(|i| format!("e{i}")).collect::<Vec<_>>());
        assert!(batch.iter().all(|c| c.token == batch[0].token));
        let next = claim(&store, "/hooks/a", 1000, 100);
        assert_eq!(next[0].id, "e10");
        assert!(next[0].token.0 > batch[0].token.0);
    }

    fn kv(store: &SqliteStore, write: KvWrite) -> KvWritten {
        match one(store, Write::Kv(write)) {
            Written::Kv(written) => written,
            other => panic!("{other:?}"),
        }
    }

    fn set(plugin: &str, key: &str, value: &str, max_total: u64) -> KvWrite {
        KvWrite::Set {
            plugin: plugin.into(),
            key: key.into(),
            value: value.as_bytes().to_vec(),
            max_total,
        }
    }

    fn incr(plugin: &str, key: &str, delta: i64) -> KvWrite {
        KvWrite::Increment {
            plugin: plugin.into(),
            key: key.into(),
            delta,
            max_value: 64,
            max_total: 1000,
        }
    }

    fn usage(store: &SqliteStore, plugin: &str) -> i64 {
        store
            .read(|conn| {
                conn.query_row(
                    "SELECT bytes FROM kv_usage WHERE plugin = ?1",
                    params![plugin],
                    |row| row.get(0),
                )
            })
            .unwrap()
    }

    #[test]
    fn kv_namespaces_are_apart_and_totals_tracked() {
        let (_dir, store) = open();
        assert_eq!(kv(&store, set("a", "k", "12345", 100)), KvWritten::Set);
        assert_eq!(kv(&store, set("a", "ké", "x", 100)), KvWritten::Set);
        assert_eq!(usage(&store, "a"), 1 + 5 + 3 + 1, "bytes, not characters");
        assert_eq!(store.kv_get("b", "k").unwrap(), None);
        assert_eq!(store.kv_get("a", "k").unwrap(), Some(b"12345".to_vec()));
        assert_eq!(store.kv_keys("a", "").unwrap(), ["k", "ké"]);
        assert_eq!(store.kv_keys("a", "ké").unwrap(), ["ké"]);
        assert!(store.kv_keys("b", "").unwrap().is_empty());

        // Replacing counts the difference; deleting frees the bytes.
        assert_eq!(kv(&store, set("a", "k", "1", 100)), KvWritten::Set);
        assert_eq!(usage(&store, "a"), 2 + 4);
        let delete = |key: &str| KvWrite::Delete {
            plugin: "a".into(),
            key: key.into(),
        };
        assert_eq!(kv(&store, delete("k")), KvWritten::Deleted(true));
        assert_eq!(kv(&store, delete("k")), KvWritten::Deleted(false));
        assert_eq!(usage(&store, "a"), 4);
    }

    #[test]
    fn kv_quota_is_checked_in_the_transaction_and_refusals_change_nothing() {
        let (_dir, store) = open();
        assert_eq!(kv(&store, set("a", "k1", "123456", 16)), KvWritten::Set);
        let refused = kv(&store, set("a", "k2", "1234567890", 16));
        assert!(
            matches!(&refused, KvWritten::QuotaExceeded(m) if m.contains("kv.max_total") && m.contains("20 bytes")),
            "{refused:?}"
        );
        assert_eq!(store.kv_get("a", "k2").unwrap(), None);
        assert_eq!(usage(&store, "a"), 8);
        // Over a lowered limit, a write that shrinks still goes through.
        assert_eq!(kv(&store, set("a", "k1", "1", 4)), KvWritten::Set);
        // Another plugin has its own total.
        assert_eq!(kv(&store, set("b", "k2", "1234567890", 16)), KvWritten::Set);
    }

    #[test]
    fn kv_increment_stores_decimal_text() {
        let (_dir, store) = open();
        assert_eq!(kv(&store, incr("a", "n", 5)), KvWritten::Incremented(5));
        assert_eq!(kv(&store, incr("a", "n", -7)), KvWritten::Incremented(-2));
        assert_eq!(store.kv_get("a", "n").unwrap(), Some(b"-2".to_vec()));
        assert_eq!(
            kv(&store, set("a", "n", "9223372036854775807", 100)),
            KvWritten::Set
        );
        assert!(
            matches!(kv(&store, incr("a", "n", 1)), KvWritten::NotANumber(m) if m.contains("overflows"))
        );
        assert_eq!(kv(&store, set("a", "t", "ten", 100)), KvWritten::Set);
        assert!(matches!(
            kv(&store, incr("a", "t", 1)),
            KvWritten::NotANumber(_)
        ));
        assert_eq!(store.kv_get("a", "t").unwrap(), Some(b"ten".to_vec()));
    }

    #[test]
    fn every_attempt_is_logged_across_replays_and_purged_with_its_event() {
        let (_dir, store) = open();
        append(&store, event("e1", "/hooks/a", 1000), 0);
        let first = claim(&store, "/hooks/a", 1000, 100).remove(0);
        let retry = Write::Retry {
            seq: first.seq,
            token: first.token,
            at: 1100,
            error: "downstream down".into(),
        };
        assert!(applied(&store, retry));
        let second = claim(&store, "/hooks/a", 1100, 100).remove(0);
        assert!(applied(
            &store,
            Write::Dead {
                seq: first.seq,
                token: second.token,
                at: 1200,
                error: "rejected".into()
            }
        ));
        one(
            &store,
            Write::Replay {
                key: EventKey {
                    id: "e1".into(),
                    route: None,
                },
                at: 1300,
            },
        );
        let third = claim(&store, "/hooks/a", 1300, 100).remove(0);
        assert!(applied(
            &store,
            Write::Complete {
                seq: first.seq,
                token: third.token,
                at: 1400
            }
        ));
        let log: Vec<(u32, u32, String, Option<String>)> = store
            .attempts(first.seq)
            .unwrap()
            .into_iter()
            .map(|a| (a.replay, a.attempt, a.outcome, a.error))
            .collect();
        assert_eq!(
            log,
            [
                (0, 1, "retry".into(), Some("downstream down".into())),
                (0, 2, "dead".into(), Some("rejected".into())),
                (1, 1, "ok".into(), None),
            ]
        );
        one(
            &store,
            Write::Purge {
                done_before: 2000,
                seen_before: 0,
                limit: 10,
            },
        );
        assert!(store.attempts(first.seq).unwrap().is_empty());
    }

    #[test]
    fn backlogs_per_route_and_lists_by_receive_time() {
        let (_dir, store) = open();
        append(&store, event("a1", "/hooks/a", 1000), 0);
        append(&store, event("a2", "/hooks/a", 2000), 0);
        append(&store, event("b1", "/hooks/b", 3000), 0);
        let mut backlogs = store.route_backlogs().unwrap();
        backlogs.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(
            backlogs,
            [
                (
                    "/hooks/a".to_owned(),
                    Backlog {
                        pending: 2,
                        oldest_received_at: Some(1000)
                    }
                ),
                (
                    "/hooks/b".to_owned(),
                    Backlog {
                        pending: 1,
                        oldest_received_at: Some(3000)
                    }
                ),
            ]
        );
        let ids: Vec<String> = store
            .list(&Filter {
                received_since: Some(2000),
                received_until: Some(3000),
                limit: 10,
                ..Filter::default()
            })
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, ["a2"]);
    }

    #[test]
    fn a_version_1_inbox_is_migrated_and_keeps_its_events() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join("inbox.db")).unwrap();
            conn.execute_batch(SCHEMA_V1).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO events (id, route, status, received_at, next_attempt_at, method, path, query, headers, body)
                 VALUES ('old', '/hooks/a', 'done', 1, NULL, 'POST', '/hooks/a', '', '[]', x'')",
                [],
            )
            .unwrap();
        }
        let store = SqliteStore::open(dir.path(), "test-host").unwrap();
        assert_eq!(get(&store, "old").status, Status::Done);
        assert_eq!(kv(&store, incr("a", "n", 1)), KvWritten::Incremented(1));
    }

    /// An inbox written by the previous host (schema version 2, its SQL as
    /// it was) opens, keeps every event with its request and state, gives
    /// back an attempt its host was running, and works on.
    #[test]
    fn a_version_2_inbox_is_migrated_and_keeps_its_events() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join("inbox.db")).unwrap();
            conn.execute_batch(SCHEMA_V1).unwrap();
            conn.execute_batch(SCHEMA_V2).unwrap();
            conn.pragma_update(None, "user_version", 2).unwrap();
            conn.execute_batch(
                "INSERT INTO events (seq, id, route, status, attempts, received_at, next_attempt_at,
                                     claimed_until, method, path, query, headers, body, verified_by)
                 VALUES (1, 'done', '/hooks/a', 'done', 1, 1, NULL, NULL,
                         'POST', '/hooks/a', '', '[]', x'01', NULL),
                        (2, 'running', '/hooks/a', 'pending', 2, 2, 99, 99,
                         'POST', '/hooks/a', 'q=1', '[[\"x-a\",\"b\"]]', x'7b7d', 'github'),
                        (3, 'waiting', '/hooks/a', 'pending', 1, 3, 50, NULL,
                         'PUT', '/hooks/a', '', '[]', x'', NULL);",
            )
            .unwrap();
        }
        let store = SqliteStore::open(dir.path(), "test-host").unwrap();
        assert_eq!(get(&store, "done").status, Status::Done);
        let running = get(&store, "running");
        assert_eq!(running.attempts, 1, "the interrupted attempt is given back");
        let request = running.request.unwrap();
        assert_eq!(request.body, b"{}");
        assert_eq!(request.query, "q=1");
        assert_eq!(request.headers, [("x-a".to_owned(), "b".to_owned())]);
        assert_eq!(request.verified_by.as_deref(), Some("github"));
        assert_eq!(get(&store, "waiting").attempts, 1);
        let claimed = claim(&store, "/hooks/a", now_millis(), 100);
        let ids: Vec<_> = claimed.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["running", "waiting"]);
        assert_eq!(claimed[0].attempt, 2);
        assert_eq!(claimed[1].request.method, "PUT");
        // New events take seqs after the old ones.
        let Appended::Accepted { seq } = append(&store, event("new", "/hooks/a", 1000), 0) else {
            panic!("not accepted");
        };
        assert_eq!(seq, 4);
    }

    #[test]
    fn schema_is_versioned() {
        let (dir, store) = open();
        drop(store);
        let conn = Connection::open(dir.path().join("inbox.db")).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let journal: String = conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        assert_eq!(journal, "wal");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        let err = SqliteStore::open(dir.path(), "test-host").err().unwrap();
        assert!(format!("{err:#}").contains("newer hookhost"), "{err:#}");
    }
}
