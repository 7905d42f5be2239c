//! Crash loop: the real binary, SIGKILLed at a random moment under queue
//! load and restarted on the same data folder, cycle after cycle. At the end
//! every event answered 202 is `done`, in exactly one row, and the SQLite
//! inbox passes `PRAGMA integrity_check` (also checked after every kill).
//!
//! `HOOKHOST_CRASH_CYCLES` sets the cycles (default 20, about 30 s here);
//! `HOOKHOST_CRASH_SEED` the seed of the kill moments (default: from the
//! clock, printed), to replay a failure.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hookhost_test_artifacts::ECHO;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{Binary, folders, install, plugin_with};

const DEFAULT_CYCLES: u32 = 20;
const SENDERS: usize = 6;
/// Between two events of one sender: ~1000 events/s in all at most, so the
/// rest of the suite keeps its CPU.
const PACE: Duration = Duration::from_millis(6);
/// Each cycle's load lasts a random time in this range (from the listening
/// line), then the host is killed mid-load.
const LOAD_MIN_MS: u64 = 150;
const LOAD_SPREAD_MS: u64 = 1200;
const DRAIN: Duration = Duration::from_secs(40);

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}: a number")))
}

/// `PRAGMA integrity_check` on the inbox, read-only (a read-only connection
/// neither checkpoints nor deletes the WAL the next host start recovers).
fn integrity(data: &Path) -> String {
    let db = rusqlite::Connection::open_with_flags(
        data.join("inbox.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let rows: Vec<String> = db
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.join("; ")
}

/// Sends events to `url` from [`SENDERS`] tasks until `stop`; returns the
/// ids answered 202 and the sends that failed (the host was killed).
async fn load(url: String, cycle: u32, stop: Arc<AtomicBool>) -> (Vec<String>, u32) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let (client, url, stop) = (client.clone(), url.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut accepted, mut failed) = (Vec::new(), 0);
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let id = format!("c{cycle}-s{sender}-{n}");
                    let sent = client
                        .post(&url)
                        .header("idempotency-key", &id)
                        .body(format!(
                            "{{\"cycle\":{cycle},\"sender\":{sender},\"n\":{n}}}"
                        ))
                        .send()
                        .await;
                    match sent.map(|r| r.status()) {
                        Ok(StatusCode::ACCEPTED) => accepted.push(id),
                        Ok(status) => panic!("{id}: unexpected {status}"),
                        // Killed mid-request: not acknowledged, maybe stored.
                        Err(_) => {
                            failed += 1;
                            break;
                        }
                    }
                    tokio::time::sleep(PACE).await;
                }
                (accepted, failed)
            })
        })
        .collect();
    let mut accepted = Vec::new();
    let mut failed = 0;
    for task in tasks {
        let (ids, errors) = task.await.unwrap();
        accepted.extend(ids);
        failed += errors;
    }
    (accepted, failed)
}

#[test]
fn sigkill_cycles_under_queue_load_leave_every_accepted_event_done_once() {
    let cycles = env_number("HOOKHOST_CRASH_CYCLES").map_or(DEFAULT_CYCLES, |n| n as u32);
    let seed = env_number("HOOKHOST_CRASH_SEED").unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let mut rng = seed | 1;
    let mut random = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (_dir, plugins, data) = folders();
    let manifest =
        "mode = \"queue\"\n[queue]\nconcurrency = 8\n[retry]\nbase = \"50ms\"\nmax = \"500ms\"\n";
    install(&plugins, &[plugin_with("q", ECHO, manifest)]);
    let args = ["--admin", "127.0.0.1:0"];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let started = Instant::now();
    let mut accepted = Vec::new();
    let mut failed = 0;
    for cycle in 0..cycles {
        let mut host = Binary::spawn(&plugins, &data, &args);
        let stop = Arc::new(AtomicBool::new(false));
        let senders = runtime.spawn(load(host.url("/hooks/q"), cycle, stop.clone()));
        let kill_after = Duration::from_millis(LOAD_MIN_MS + random() % LOAD_SPREAD_MS);
        std::thread::sleep(kill_after);
        host.signal("KILL");
        let status = host.wait(Duration::from_secs(5));
        assert!(
            !status.success(),
            "cycle {cycle}: killed, not exited: {status:?}"
        );
        stop.store(true, Ordering::Relaxed);
        let (ids, errors) = runtime.block_on(senders).unwrap();
        accepted.extend(ids);
        failed += errors;
        let check = integrity(&data);
        assert_eq!(check, "ok", "cycle {cycle} (seed {seed}): inbox integrity");
    }
    let cycles_took = started.elapsed();
    assert!(
        accepted.len() > 20 * cycles as usize,
        "only {} events accepted in {cycles} cycles",
        accepted.len()
    );

    // The last start: the queue drains.
    let mut host = Binary::spawn(&plugins, &data, &args);
    let restarted = Instant::now();
    let admin = format!("http://{}", host.admin_addr());
    let client = reqwest::Client::new();
    let stored = runtime.block_on(async {
        loop {
            let pending = list(&client, &admin, "status=pending&limit=1").await;
            if pending.is_empty() {
                break;
            }
            assert!(
                restarted.elapsed() < DRAIN,
                "events still pending {DRAIN:?} after the last restart (seed {seed}), e.g. {}",
                pending[0]
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let dead = list(&client, &admin, "status=dead&limit=1").await;
        assert!(dead.is_empty(), "dead events (seed {seed}): {dead:?}");
        let first = all_events(&client, &admin).await;
        for id in &accepted {
            let rows = first
                .get(id)
                .unwrap_or_else(|| panic!("{id} was answered 202 but is missing (seed {seed})"));
            assert_eq!(rows.len(), 1, "{id} stored more than once: {rows:?}");
            assert_eq!(rows[0]["status"], "done", "{id}: {}", rows[0]);
            assert!(rows[0]["attempts"].as_u64() >= Some(1), "{id}: {}", rows[0]);
        }
        for (id, rows) in &first {
            assert_eq!(rows.len(), 1, "{id} stored more than once: {rows:?}");
            assert_eq!(rows[0]["status"], "done", "{id}: {}", rows[0]);
        }
        // Done once: `done_at` never moves afterwards.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let second = all_events(&client, &admin).await;
        for (id, rows) in &first {
            assert_eq!(
                rows[0]["done_at"], second[id][0]["done_at"],
                "{id} was marked done again"
            );
        }
        first.len()
    });
    let drained = restarted.elapsed();
    host.signal("TERM");
    let status = host.wait(Duration::from_secs(30));
    assert!(
        status.success(),
        "exit after SIGTERM: {status:?}\n{}",
        host.log()
    );
    assert_eq!(integrity(&data), "ok", "inbox integrity at the end");
    eprintln!(
        "crash loop: {cycles} SIGKILL cycles in {cycles_took:?} (seed {seed}): {} events \
         acknowledged 202, {failed} sends cut by a kill, {stored} stored, all done once \
         {drained:?} after the last start; integrity_check ok after every kill",
        accepted.len()
    );
}

async fn list(client: &reqwest::Client, admin: &str, query: &str) -> Vec<Value> {
    let page: Value = client
        .get(format!("{admin}/events?{query}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["events"].as_array().unwrap().clone()
}

/// Every stored event, by id, through the admin API's pages.
async fn all_events(client: &reqwest::Client, admin: &str) -> HashMap<String, Vec<Value>> {
    let mut events: HashMap<String, Vec<Value>> = HashMap::new();
    let mut query = "limit=1000".to_owned();
    loop {
        let page: Value = client
            .get(format!("{admin}/events?{query}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for event in page["events"].as_array().unwrap() {
            let id = event["id"].as_str().unwrap().to_owned();
            events.entry(id).or_default().push(event.clone());
        }
        match page["next_before"].as_i64() {
            Some(before) => query = format!("limit=1000&before={before}"),
            None => return events,
        }
    }
}
