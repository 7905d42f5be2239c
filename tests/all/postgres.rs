//! A fleet on PostgreSQL (issue 17): hosts started with
//! `--store postgres://…` share one inbox, one dedupe record and one
//! key-value store on a real server, each test in a database of its own
//! ([`TestDb`]). `make test` skips this module loudly when no PostgreSQL is
//! reachable outside CI; run alone, a test without one fails.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hookhost::pg::StoreSpec;
use hookhost_test_artifacts::{GUEST_CONFIG, GUEST_COUNTER, GUEST_FLEET, GUEST_KV};
use reqwest::StatusCode;

use crate::support::{Binary, LocalServer, TestDb, TestHost, eventually, plugin, plugin_with};

/// Starts an in-process host on `db` with `plugins`, the admin API, and
/// host id `id`.
async fn host_on(db: &TestDb, id: &str, plugins: &[crate::support::Plugin<'_>]) -> TestHost {
    let store = StoreSpec::parse(&db.url).unwrap();
    let id = id.to_owned();
    TestHost::start_with_admin(plugins, move |config| {
        config.store = store;
        config.inbox.host_id = id;
    })
    .await
}

const QUEUE: &str = "mode = \"queue\"\n";

async fn count(db: &tokio_postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_events_are_delivered_from_the_database_and_show_their_host() {
    let db = TestDb::create().await;
    let plugins = [plugin_with("kvq", GUEST_KV, QUEUE)];
    let alpha = host_on(&db, "alpha", &plugins).await;
    for n in 0..20 {
        let response = alpha
            .post_with_id("/hooks/kvq?op=incr&key=n", &format!("ev-{n}"), "")
            .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    let sql = db.client().await;
    eventually(Duration::from_secs(20), "20 events done", || async {
        (count(&sql, "SELECT count(*) FROM events WHERE status = 'done'").await == 20).then_some(())
    })
    .await;
    let value: Vec<u8> = sql
        .query_one(
            "SELECT value FROM kv WHERE plugin = 'kvq' AND key = 'n'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(value, b"20");
    let hosts: Vec<Option<String>> = sql
        .query("SELECT DISTINCT host FROM attempts", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(hosts, [Some("alpha".to_owned())]);
    let (status, event) = alpha.admin_get("/events/ev-3").await;
    assert_eq!(status, StatusCode::OK, "{event}");
    assert_eq!(event["host"], "alpha", "{event}");
    assert_eq!(event["attempt_log"][0]["host"], "alpha", "{event}");
    let (_, plugins) = alpha.admin_get("/plugins").await;
    assert_eq!(plugins["host"], "alpha");
    alpha.stop().await;

    // Another host on the same database, with nothing of alpha's data
    // folder: the events, their dedupe records and the counter are there.
    let beta = host_on(&db, "beta", &[plugin_with("kvq", GUEST_KV, QUEUE)]).await;
    let (status, event) = beta.admin_get("/events/ev-3").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(event["status"], "done");
    let again = beta
        .post_with_id("/hooks/kvq?op=incr&key=n", "ev-3", "")
        .await;
    assert_eq!(again.status(), StatusCode::OK, "a duplicate");
    assert_eq!(
        again.json::<serde_json::Value>().await.unwrap()["duplicate"],
        true
    );
    beta.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_sharing_a_database_share_dedupe_and_count_atomically() {
    let db = TestDb::create().await;
    let plugins = || [plugin("kv", GUEST_KV), plugin_with("kvq", GUEST_KV, QUEUE)];
    // Started together on an empty database: one migrates, the other waits
    // for the advisory lock and finds the schema done.
    let (a_plugins, b_plugins) = (plugins(), plugins());
    let (a, b) = tokio::join!(host_on(&db, "a", &a_plugins), host_on(&db, "b", &b_plugins));

    let accepted = a
        .post_with_id("/hooks/kvq?op=get&key=x", "shared-1", "")
        .await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let duplicate = b
        .post_with_id("/hooks/kvq?op=get&key=x", "shared-1", "")
        .await;
    assert_eq!(
        duplicate.status(),
        StatusCode::OK,
        "an id accepted by host a is a duplicate on host b"
    );

    // 2 × 100 increments of one key, from both hosts at once.
    let mut sends = Vec::new();
    for host in [&a, &b] {
        for _ in 0..100 {
            let (client, url) = (host.client.clone(), host.url("/hooks/kv?op=incr&key=hits"));
            sends.push(tokio::spawn(async move {
                let answer: serde_json::Value =
                    client.post(url).send().await.unwrap().json().await.unwrap();
                answer["value"].as_i64().unwrap()
            }));
        }
    }
    let mut values = BTreeSet::new();
    for send in sends {
        assert!(
            values.insert(send.await.unwrap()),
            "two increments saw one sum"
        );
    }
    assert_eq!(values, (1..=200).collect::<BTreeSet<i64>>());
    let total: serde_json::Value = b
        .post("/hooks/kv?op=get&key=hits", "")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(total["value"], "200");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_is_503_for_queue_routes_while_sync_routes_answer() {
    let db = TestDb::create().await;
    let host = host_on(
        &db,
        "lonely",
        &[
            plugin_with("kvq", GUEST_KV, QUEUE),
            plugin("counter", GUEST_COUNTER),
        ],
    )
    .await;
    let ready = |host: &TestHost| {
        let (client, url) = (host.client.clone(), host.admin_url("/readyz"));
        async move { client.get(url).send().await.unwrap().status() }
    };
    assert_eq!(ready(&host).await, StatusCode::OK);

    db.cut_off().await;
    let refused = host.post("/hooks/kvq?op=get&key=x", "").await;
    assert_eq!(
        refused.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "never a 202 that is not stored"
    );
    assert!(refused.headers().contains_key("retry-after"));
    let sync = host.post("/hooks/counter", "").await;
    assert_eq!(
        sync.status(),
        StatusCode::OK,
        "sync routes need no database"
    );
    assert_eq!(ready(&host).await, StatusCode::SERVICE_UNAVAILABLE);

    db.restore().await;
    eventually(Duration::from_secs(20), "the host reconnects", || async {
        let status = host.post("/hooks/kvq?op=get&key=x", "").await.status();
        (status == StatusCode::ACCEPTED).then_some(())
    })
    .await;
    assert_eq!(ready(&host).await, StatusCode::OK);
    host.stop().await;
}

/// The `fleet` guest: each delivery increments one counter in the shared
/// key-value store and reports the value it got to a recorder.
pub(crate) mod fleet {
    use super::*;

    /// The plugin's manifest: queue mode, short attempts (so leases are
    /// short and a dead host's events come back soon), logging to `recorder`.
    pub(super) fn manifest(recorder: &LocalServer) -> String {
        format!(
            "mode = \"queue\"\n[limits]\ntimeout = \"1s\"\n[queue]\nconcurrency = 4\n\
             [allow]\nhttp = [\"{}\"]\n",
            recorder.addr
        )
    }

    /// `(id, attempt, counter)` of every delivery the recorder saw.
    pub(super) fn deliveries(recorder: &LocalServer) -> Vec<(String, u32, i64)> {
        recorder
            .requests()
            .iter()
            .filter_map(|request| {
                let body = request.split("\r\n\r\n").nth(1)?;
                let mut words = body.split(' ');
                Some((
                    words.next()?.to_owned(),
                    words.next()?.parse().ok()?,
                    words.next()?.trim().parse().ok()?,
                ))
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_delivery_counts_once_in_the_shared_store() {
        let db = TestDb::create().await;
        let recorder = LocalServer::start(200, Vec::new(), Duration::ZERO).await;
        let manifest = manifest(&recorder);
        let host = host_on(&db, "solo", &[plugin_with("fleet", GUEST_FLEET, &manifest)]).await;
        let log = format!("/hooks/fleet?log=http://{}/", recorder.addr);
        for n in 0..10 {
            let response = host.post_with_id(&log, &format!("f-{n}"), "").await;
            assert_eq!(response.status(), StatusCode::ACCEPTED);
        }
        let seen = eventually(Duration::from_secs(20), "10 deliveries", || async {
            let seen = deliveries(&recorder);
            (seen.len() == 10).then_some(seen)
        })
        .await;
        let counters: BTreeSet<i64> = seen.iter().map(|(_, _, n)| *n).collect();
        assert_eq!(counters, (1..=10).collect());
        assert!(
            seen.iter()
                .all(|(id, attempt, _)| id.starts_with("f-") && *attempt == 1)
        );
        host.stop().await;
    }
}

/// `PUT /plugins/{name}` on the admin API at `admin`: the component at
/// `wasm` with `manifest`; the status and answer.
async fn deploy(
    client: &reqwest::Client,
    admin: std::net::SocketAddr,
    name: &str,
    wasm: &str,
    manifest: &str,
) -> (StatusCode, serde_json::Value) {
    let component = base64::engine::general_purpose::STANDARD.encode(std::fs::read(wasm).unwrap());
    let response = client
        .put(format!("http://{admin}/plugins/{name}"))
        .json(&serde_json::json!({ "component_base64": component, "manifest": manifest }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// Waits until every one of `urls` answers a POST as `expect` says, and
/// returns how long that took; fails after `limit`.
async fn everywhere(
    client: &reqwest::Client,
    urls: &[String],
    limit: Duration,
    what: &str,
    expect: impl Fn(StatusCode, &str) -> bool,
) -> Duration {
    let started = Instant::now();
    let mut pending: Vec<&String> = urls.iter().collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for url in pending {
            let ok = match client.post(url).body("{}").send().await {
                Ok(response) => {
                    let status = response.status();
                    expect(status, &response.text().await.unwrap_or_default())
                }
                Err(_) => false,
            };
            if !ok {
                still.push(url);
            }
        }
        pending = still;
        assert!(
            started.elapsed() < limit,
            "{what}: not on every host within {limit:?} (still missing on {pending:?})"
        );
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    started.elapsed()
}

/// The bar: three `hookhost serve` processes on one database, 8
/// senders spread over them for 10 s, one host SIGKILLed at 4 s. Every event
/// answered 202 reaches `done` exactly once, duplicates sent to another host
/// are refused, and the shared counter matches the deliveries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_share_one_inbox_and_lose_nothing_when_one_is_killed() {
    const SENDERS: usize = 8;
    const RUN: Duration = Duration::from_secs(10);
    const KILL_AT: Duration = Duration::from_secs(4);
    const KILLED: usize = 2;

    let db = TestDb::create().await;
    let recorder = LocalServer::start(200, Vec::new(), Duration::ZERO).await;
    let manifest = fleet::manifest(&recorder);
    let dir = tempfile::tempdir().unwrap();
    let mut hosts = Vec::new();
    for n in 0..3 {
        // Empty plugin folders: the fleet's plugin is deployed, once.
        let plugins = dir.path().join(format!("plugins-{n}"));
        std::fs::create_dir(&plugins).unwrap();
        let data = dir.path().join(format!("data-{n}"));
        let id = format!("host-{n}");
        hosts.push(Binary::spawn(
            &plugins,
            &data,
            &[
                "--store",
                &db.url,
                "--host-id",
                &id,
                "--admin",
                "127.0.0.1:0",
                // Deploys must reach the others by LISTEN/NOTIFY, not by
                // the periodic check.
                "--deploy-poll",
                "60s",
            ],
        ));
    }
    let admins: Vec<std::net::SocketAddr> = hosts.iter().map(Binary::admin_addr).collect();
    let client = reqwest::Client::new();
    let (status, answer) = deploy(&client, admins[0], "fleet", GUEST_FLEET, &manifest).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["version"], 1, "{answer}");
    // Probes get host-made ids (never `s…`, the senders' own) and are
    // logged like every delivery, so the counter check below counts them.
    let probes: Vec<String> = hosts
        .iter()
        .map(|h| h.url(&format!("/hooks/fleet?log=http://{}/", recorder.addr)))
        .collect();
    let reached = everywhere(
        &client,
        &probes,
        Duration::from_secs(5),
        "deployed fleet",
        |s, _| s == StatusCode::ACCEPTED,
    )
    .await;
    println!("the fleet plugin, deployed through host 0, answered on all three after {reached:?}");
    let urls: Arc<Vec<String>> = Arc::new(
        hosts
            .iter()
            // 20 ms per delivery: the killed host is always in the middle
            // of some, and holds leases on more.
            .map(|h| h.url(&format!("/hooks/fleet?log=http://{}/&ms=20", recorder.addr)))
            .collect(),
    );
    let killed = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut senders = Vec::new();
    for sender in 0..SENDERS {
        let (urls, killed) = (urls.clone(), killed.clone());
        senders.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            let mut acked = Vec::new();
            // Requests whose answer never came (the host was killed after
            // storing, before answering; a timeout): maybe stored.
            let mut unanswered = Vec::new();
            let (mut duplicates_refused, mut duplicates_accepted) = (0u32, 0u32);
            let mut n = 0usize;
            while started.elapsed() < RUN {
                // Every host in turn, skipping the killed one once it is gone.
                let mut host = (sender + n) % urls.len();
                if killed.load(Ordering::Relaxed) && host == KILLED {
                    host = (host + 1) % urls.len();
                }
                let id = format!("s{sender}-{n}");
                n += 1;
                match client
                    .post(&urls[host])
                    .header("idempotency-key", &id)
                    .send()
                    .await
                {
                    Ok(response) if response.status() == StatusCode::ACCEPTED => {
                        acked.push(id.clone());
                        // Every fifth: the same id again, to the next host.
                        if n.is_multiple_of(5) {
                            let mut other = (host + 1) % urls.len();
                            if killed.load(Ordering::Relaxed) && other == KILLED {
                                other = (other + 1) % urls.len();
                            }
                            if let Ok(again) = client
                                .post(&urls[other])
                                .header("idempotency-key", &id)
                                .send()
                                .await
                            {
                                match again.status() {
                                    StatusCode::OK => duplicates_refused += 1,
                                    StatusCode::ACCEPTED => duplicates_accepted += 1,
                                    _ => {}
                                }
                            }
                        }
                    }
                    Err(_) => unanswered.push(id),
                    // Any other answer: not stored, the sender retries.
                    Ok(_) => {}
                }
            }
            (acked, unanswered, duplicates_refused, duplicates_accepted)
        }));
    }
    tokio::time::sleep(KILL_AT).await;
    hosts[KILLED].child.kill().unwrap(); // SIGKILL: no drain, leases held
    killed.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    let mut unanswered: BTreeSet<String> = BTreeSet::new();
    let (mut refused, mut accepted_twice) = (0, 0);
    for sender in senders {
        let (ids, lost, r, a) = sender.await.unwrap();
        acked.extend(ids);
        unanswered.extend(lost);
        refused += r;
        accepted_twice += a;
    }
    let send_time = started.elapsed();
    assert!(acked.len() > 100, "only {} events acked", acked.len());
    assert!(refused > 0, "no duplicate was sent");
    assert_eq!(
        accepted_twice, 0,
        "a duplicate sent to another host was accepted"
    );

    // The killed host's leases run out (4 × 1 s timeout + 10 s margin),
    // then the others deliver what it held.
    let sql = db.client().await;
    let acked_count = acked.len() as i64;
    eventually(
        Duration::from_secs(90),
        "every acked event done",
        || async {
            let done = "SELECT count(*) FROM events WHERE status = 'done' AND id LIKE 's%'";
            let pending = "SELECT count(*) FROM events WHERE status = 'pending'";
            (count(&sql, done).await >= acked_count && count(&sql, pending).await == 0)
                .then_some(())
        },
    )
    .await;
    let drained = started.elapsed();
    let rows = sql
        .query("SELECT id, status, attempts FROM events", &[])
        .await
        .unwrap();
    let mut by_id: HashMap<String, Vec<(String, i32)>> = HashMap::new();
    for row in &rows {
        by_id
            .entry(row.get(0))
            .or_default()
            .push((row.get(1), row.get(2)));
    }
    for id in &acked {
        let events = by_id
            .get(id)
            .unwrap_or_else(|| panic!("acked {id} is not stored"));
        assert_eq!(events.len(), 1, "{id} stored {} times", events.len());
        let (status, attempts) = &events[0];
        assert_eq!(status, "done", "{id}");
        assert!(*attempts >= 1, "{id}");
    }
    // Nothing is stored that was refused; what is stored without an ack
    // is an answer the killed host never sent (the sender would resend it,
    // a duplicate then), and it is done once like the rest.
    let acked_ids: BTreeSet<&str> = acked.iter().map(String::as_str).collect();
    for (id, events) in by_id.iter().filter(|(id, _)| id.starts_with('s')) {
        assert!(
            acked_ids.contains(id.as_str()) || unanswered.contains(id),
            "{id} is stored, but its sender was told it was not"
        );
        assert_eq!(events.len(), 1, "{id} stored {} times", events.len());
        assert_eq!(events[0].0, "done", "{id}");
    }

    // The counter: one increment per delivery, none lost between hosts. A
    // delivery the killed host had counted but not logged (killed between
    // the two calls) has no line: at most its concurrency (4).
    let seen = fleet::deliveries(&recorder);
    let counter: i64 = String::from_utf8(
        sql.query_one(
            "SELECT value FROM kv WHERE plugin = 'fleet' AND key = 'deliveries'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, Vec<u8>>(0),
    )
    .unwrap()
    .parse()
    .unwrap();
    let values: BTreeSet<i64> = seen.iter().map(|(_, _, n)| *n).collect();
    assert_eq!(
        values.len(),
        seen.len(),
        "two deliveries got the same counter value"
    );
    assert!(
        counter >= seen.len() as i64 && counter - seen.len() as i64 <= 4,
        "counter {counter}, deliveries logged {}",
        seen.len()
    );
    let delivered: BTreeSet<&str> = seen.iter().map(|(id, _, _)| id.as_str()).collect();
    for id in &acked {
        assert!(
            delivered.contains(id.as_str()),
            "{id} done without a delivery"
        );
    }
    let mut per_host: BTreeMap<String, i64> = BTreeMap::new();
    for row in sql
        .query("SELECT host, count(*) FROM attempts GROUP BY host", &[])
        .await
        .unwrap()
    {
        per_host.insert(row.get(0), row.get(1));
    }
    let redelivered = seen.len() - delivered.len();
    assert!(
        redelivered >= 1,
        "no event was delivered again: the killed host held no lease another host took over"
    );
    println!(
        "fleet of 3 on PostgreSQL: {} events acked in {:.1} s ({:.0} acks/s), {} deliveries \
         ({redelivered} again after the kill), all done after {:.1} s; attempts by host {per_host:?}",
        acked.len(),
        send_time.as_secs_f64(),
        acked.len() as f64 / send_time.as_secs_f64(),
        seen.len(),
        drained.as_secs_f64(),
    );
    assert!(per_host.len() >= 2, "{per_host:?}");

    // Deploy once through host 0, answered by every other host within 5 s;
    // rollback likewise. Host 2 is dead: hosts 0 and 1, and a host started
    // now on the same database, with nothing in its folders.
    let late_plugins = dir.path().join("plugins-late");
    std::fs::create_dir(&late_plugins).unwrap();
    let late = Binary::spawn(
        &late_plugins,
        &dir.path().join("data-late"),
        &[
            "--store",
            &db.url,
            "--host-id",
            "host-late",
            "--admin",
            "127.0.0.1:0",
            "--deploy-poll",
            "60s",
        ],
    );
    let alive: Vec<String> = [&hosts[0], &hosts[1], &late]
        .iter()
        .map(|host| host.url("/hooks/ver"))
        .collect();
    let version = |v: &'static str| {
        move |status: StatusCode, body: &str| {
            status == StatusCode::OK
                && serde_json::from_str::<serde_json::Value>(body)
                    .is_ok_and(|answer| answer["all"]["version"] == v)
        }
    };
    for v in ["1", "2"] {
        let manifest = format!("[config]\nversion = \"{v}\"\n");
        let (status, answer) = deploy(&client, admins[0], "ver", GUEST_CONFIG, &manifest).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let took = everywhere(
            &client,
            &alive,
            Duration::from_secs(5),
            "deployed ver",
            version(v),
        )
        .await;
        println!(
            "version {v} of `ver`, deployed through host 0, answered on every host after {took:?}"
        );
    }
    let rollback = client
        .post(format!("http://{}/plugins/ver/rollback", admins[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(rollback.status(), StatusCode::OK);
    let took = everywhere(
        &client,
        &alive,
        Duration::from_secs(5),
        "rolled back ver",
        version("1"),
    )
    .await;
    println!("the rollback through host 0 answered on every host after {took:?}");
    let versions: serde_json::Value = client
        .get(format!("http://{}/plugins/ver/versions", late.admin_addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed: Vec<(i64, bool, String)> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["live"].as_bool().unwrap(),
                v["deployed_by"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (2, false, "host-0".to_owned()),
            (1, true, "host-0".to_owned())
        ],
        "the late host lists the versions host 0 stored"
    );
}

/// `sslmode=require` is TLS with the server's certificate verified: against
/// the server's own certificate given as `sslrootcert` it connects (and
/// PostgreSQL reports the connections encrypted); without it the host
/// refuses to start, naming the reason. The server must have TLS on (these
/// machines' does, with Debian's certificate for `localhost`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_verifies_the_servers_certificate() {
    let db = TestDb::create().await;
    let sql = db.client().await;
    let ssl: String = sql.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    assert_eq!(
        ssl, "on",
        "the test server has TLS off; this test needs it on (ssl = on in postgresql.conf)"
    );
    let cert: String = sql
        .query_one("SHOW ssl_cert_file", &[])
        .await
        .unwrap()
        .get(0);
    let local = db.url.replace("127.0.0.1", "localhost");
    assert!(
        local.contains("@localhost"),
        "{local}: the certificate names localhost"
    );

    let store = StoreSpec::parse(&format!("{local}?sslmode=require&sslrootcert={cert}")).unwrap();
    let host = TestHost::start_with_admin(&[plugin_with("kvq", GUEST_KV, QUEUE)], move |c| {
        c.store = store;
        c.inbox.host_id = "tls".into();
    })
    .await;
    let accepted = host.post("/hooks/kvq?op=get&key=x", "").await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let encrypted: i64 = sql
        .query_one(
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
             WHERE a.datname = $1 AND s.ssl AND a.application_name = 'hookhost'",
            &[&db.name],
        )
        .await
        .unwrap()
        .get(0);
    assert!(encrypted >= 1, "no TLS connection from the host");
    host.stop().await;

    // Without the root, the same server's certificate is not trusted.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    let refused = Binary::command(
        &dir.path().join("plugins"),
        &dir.path().join("data"),
        &["--store", &format!("{local}?sslmode=require")],
    )
    .output()
    .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("certificate") && stderr.contains("cannot connect"),
        "{stderr}"
    );
}
