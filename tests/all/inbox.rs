//! Queue mode: deliveries are stored durably and answered 202, then handled
//! by workers with retries; duplicates are recognised; nothing accepted is
//! lost, even to SIGKILL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookhost_test_artifacts::{ECHO, GUEST_FLAKY, GUEST_REJECT, GUEST_RETRY, GUEST_SLEEPER};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{
    Binary, TestHost, deploy, error_body, event, eventually, folders, install, plugin, plugin_with,
    wait_for,
};

/// Queue mode with quick retries, so tests never wait long.
const QUEUE: &str = "mode = \"queue\"\n[retry]\nbase = \"50ms\"\nmax = \"200ms\"\n";

#[tokio::test]
async fn a_queued_delivery_is_answered_202_then_handled() {
    let host = TestHost::start_with_admin(&[plugin_with("q", ECHO, QUEUE)], |_| {}).await;
    let response = host.post_with_id("/hooks/q", "order-1", "{\"n\":1}").await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers()["x-hookhost-delivery"], "order-1");
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "id": "order-1" }));

    let done = wait_for(&host, "order-1", "done").await;
    assert_eq!(done["attempts"], 1);
    assert_eq!(done["route"], "/hooks/q");
    assert!(done["done_at"].is_string(), "{done}");
    assert!(done["last_error"].is_null(), "{done}");

    // Without a sender id the host makes one, and answers with it.
    let response = host.post("/hooks/q", "x").await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 36, "{id}");
    wait_for(&host, &id, "done").await;
    host.stop().await;
}

#[tokio::test]
async fn a_rejected_event_is_dead_with_the_plugins_message() {
    let host =
        TestHost::start_with_admin(&[plugin_with("reject", GUEST_REJECT, QUEUE)], |_| {}).await;
    assert_eq!(
        host.post_with_id("/hooks/reject", "r-1", "{}")
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let dead = wait_for(&host, "r-1", "dead").await;
    assert_eq!(dead["attempts"], 1, "reject is not retried: {dead}");
    assert_eq!(
        dead["last_error"],
        "plugin rejected the delivery: unsupported event"
    );
    assert!(dead["dead_at"].is_string(), "{dead}");
    assert!(dead["next_attempt_at"].is_null(), "{dead}");
    host.stop().await;
}

#[tokio::test]
async fn an_event_is_dead_when_its_attempts_run_out() {
    let manifest = format!("{QUEUE}max_attempts = 3\n");
    let host =
        TestHost::start_with_admin(&[plugin_with("retry", GUEST_RETRY, &manifest)], |_| {}).await;
    assert_eq!(
        host.post_with_id("/hooks/retry", "x-1", "{}")
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let dead = wait_for(&host, "x-1", "dead").await;
    assert_eq!(dead["attempts"], 3, "{dead}");
    let error = dead["last_error"].as_str().unwrap();
    assert!(error.contains("downstream unavailable"), "{error}");
    assert!(error.contains("gave up after 3 attempts"), "{error}");
    host.stop().await;
}

#[tokio::test]
async fn a_duplicate_id_is_answered_200_and_not_queued_again() {
    let host = TestHost::start_with_admin(&[plugin_with("q", ECHO, QUEUE)], |_| {}).await;
    let first = host.post_with_id("/hooks/q", "dup-1", "first").await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let second = host.post_with_id("/hooks/q", "dup-1", "second").await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(second.headers()["x-hookhost-delivery"], "dup-1");
    let body: Value = second.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({ "id": "dup-1", "duplicate": true })
    );

    let done = wait_for(&host, "dup-1", "done").await;
    // Still a duplicate once handled; and the plugin ran once, on the first.
    let third = host.post_with_id("/hooks/q", "dup-1", "third").await;
    assert_eq!(third.status(), StatusCode::OK);
    assert_eq!(done["attempts"], 1);
    let stored = event(&host.client, &host.admin_url(""), "dup-1")
        .await
        .unwrap();
    assert_eq!(stored["request"]["body"], "first");
    let (_, listed) = host.admin_get("/events?route=/hooks/q").await;
    assert_eq!(listed["events"].as_array().unwrap().len(), 1, "{listed}");
    host.stop().await;
}

#[tokio::test]
async fn a_redelivery_of_a_dead_event_is_accepted_and_delivered() {
    let host = TestHost::start_with_admin(&[plugin_with("q", GUEST_REJECT, QUEUE)], |_| {}).await;
    let first = host.post_with_id("/hooks/q", "dead-1", "{}").await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let dead = wait_for(&host, "dead-1", "dead").await;

    // The plugin is fixed; the sender redelivers the event it saw fail.
    deploy(&host.plugins, "q", &std::fs::read(ECHO).unwrap());
    let (status, reloaded) = host.admin_post("/plugins/reload").await;
    assert_eq!(status, StatusCode::OK, "{reloaded}");
    let again = host.post_with_id("/hooks/q", "dead-1", "{}").await;
    assert_eq!(again.status(), StatusCode::ACCEPTED, "not a duplicate");
    let body: Value = again.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "id": "dead-1" }));
    let done = wait_for(&host, "dead-1", "done").await;
    assert_eq!(done["seq"], dead["seq"], "the same event, revived: {done}");
    assert_eq!(done["attempts"], 1, "a fresh retry budget: {done}");
    assert_eq!(done["replays"], 1, "{done}");

    // Done now: a redelivery is a duplicate again, and nothing is queued.
    let third = host.post_with_id("/hooks/q", "dead-1", "{}").await;
    assert_eq!(third.status(), StatusCode::OK);
    let (_, listed) = host.admin_get("/events?route=/hooks/q").await;
    assert_eq!(listed["events"].as_array().unwrap().len(), 1, "{listed}");
    host.stop().await;
}

#[tokio::test]
async fn a_full_route_answers_429_with_retry_after_stores_nothing_and_takes_more_once_drained() {
    use crate::metrics::{scrape, value};
    let manifest = "mode = \"queue\"\n[queue]\nconcurrency = 5\nmax_pending = 5\n";
    let host =
        TestHost::start_with_admin(&[plugin_with("slow", GUEST_SLEEPER, manifest)], |_| {}).await;
    for i in 0..5 {
        let response = host
            .post_with_id("/hooks/slow?ms=2000", &format!("p-{i}"), "{}")
            .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED, "p-{i}");
    }
    let refused = host.post_with_id("/hooks/slow?ms=2000", "p-5", "{}").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body = error_body(refused).await;
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("too many deliveries waiting"),
        "{body}"
    );
    let admin = host.admin_url("");
    assert!(
        event(&host.client, &admin, "p-5").await.is_none(),
        "not stored"
    );

    let full = scrape(&host).await;
    let route = [("route", "/hooks/slow")];
    assert_eq!(
        value(
            &full,
            "hookhost_queue_refused_total",
            &[("route", "/hooks/slow"), ("reason", "max_pending")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &full,
            "hookhost_requests_total",
            &[("route", "/hooks/slow"), ("status", "429")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&full, "hookhost_queue_route_depth", &route),
        Some(5.0)
    );
    assert_eq!(value(&full, "hookhost_queue_depth", &[]), Some(5.0));
    let age = value(&full, "hookhost_queue_oldest_pending_age_seconds", &[]).unwrap();
    assert!(age > 0.0 && age < 60.0, "{age}");

    for i in 0..5 {
        wait_for(&host, &format!("p-{i}"), "done").await;
    }
    let drained = eventually(Duration::from_secs(10), "queue drained", || {
        let host = &host;
        async move {
            let s = scrape(host).await;
            (value(&s, "hookhost_queue_depth", &[]) == Some(0.0)).then_some(s)
        }
    })
    .await;
    assert_eq!(
        value(&drained, "hookhost_queue_route_depth", &route),
        Some(0.0)
    );
    assert_eq!(
        value(&drained, "hookhost_queue_oldest_pending_age_seconds", &[]),
        Some(0.0)
    );
    // The sender's retry gets in now.
    let again = host.post_with_id("/hooks/slow?ms=1", "p-5", "{}").await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    wait_for(&host, "p-5", "done").await;
    host.stop().await;
}

#[tokio::test]
async fn a_stripe_event_id_is_the_delivery_id() {
    let host = TestHost::start_with_admin(&[plugin_with("stripe", ECHO, QUEUE)], |_| {}).await;
    let event = r#"{"id":"evt_1QpX","object":"event","type":"charge.succeeded"}"#;
    let response = host.post("/hooks/stripe", event).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.json::<Value>().await.unwrap()["id"], "evt_1QpX");
    let again = host.post("/hooks/stripe", event).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap()["duplicate"], true);
    wait_for(&host, "evt_1QpX", "done").await;
    host.stop().await;
}

#[tokio::test]
async fn sync_mode_does_not_run_a_delivery_again_once_it_succeeded() {
    let host = TestHost::start(&[plugin("echo", ECHO), plugin("retry", GUEST_RETRY)]).await;
    let first = host.post_with_id("/hooks/echo", "sync-1", "hello").await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.text().await.unwrap(), "hello");
    // The record is written after the answer: a repeat soon after may still
    // run; once recorded, it is answered without the plugin (whose answer
    // would be the echoed body).
    let body: Value = eventually(Duration::from_secs(5), "duplicate answer", || async {
        let again = host.post_with_id("/hooks/echo", "sync-1", "hello").await;
        assert_eq!(again.status(), StatusCode::OK);
        serde_json::from_slice::<Value>(&again.bytes().await.unwrap()).ok()
    })
    .await;
    assert_eq!(
        body,
        serde_json::json!({ "id": "sync-1", "duplicate": true })
    );

    // A delivery that failed is run again when the sender retries it.
    for _ in 0..2 {
        let failed = host.post_with_id("/hooks/retry", "sync-2", "{}").await;
        assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    host.stop().await;
}

#[tokio::test]
async fn a_delivery_that_cannot_be_stored_is_503_and_not_accepted() {
    let host = TestHost::start_with_admin(&[plugin_with("q", ECHO, QUEUE)], |_| {}).await;
    let db = host.plugins.parent().unwrap().join("data/inbox.db");
    // A trigger stands in for a full disk: the store refuses the insert, the
    // way SQLite refuses one with SQLITE_FULL.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER full BEFORE INSERT ON events
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
    )
    .unwrap();

    let response = host.post_with_id("/hooks/q", "full-1", "{}").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let body = error_body(response).await;
    assert!(
        body["error"].as_str().unwrap().contains("not accepted"),
        "{body}"
    );
    assert!(
        event(&host.client, &host.admin_url(""), "full-1")
            .await
            .is_none()
    );

    // Once there is room again, the sender's retry is accepted: the failed
    // attempt left no dedupe record behind.
    conn.execute_batch("DROP TRIGGER full").unwrap();
    let retried = host.post_with_id("/hooks/q", "full-1", "{}").await;
    assert_eq!(retried.status(), StatusCode::ACCEPTED);
    wait_for(&host, "full-1", "done").await;
    host.stop().await;
}

#[tokio::test]
async fn events_wait_for_a_removed_plugin_and_run_on_the_version_that_returns() {
    // One event at a time: a slow first event keeps the second waiting.
    let manifest = "mode = \"queue\"\n[queue]\nconcurrency = 1\n";
    let host = TestHost::start_with_admin(&[plugin_with("q", GUEST_SLEEPER, manifest)], |config| {
        config.inbox.orphan_retry = Duration::from_millis(200);
    })
    .await;
    let slow = host.post_with_id("/hooks/q?ms=2000", "slow-1", "{}").await;
    assert_eq!(slow.status(), StatusCode::ACCEPTED);
    let admin = host.admin_url("");
    eventually(Duration::from_secs(5), "first event running", || async {
        event(&host.client, &admin, "slow-1")
            .await
            .filter(|e| e["claimed_until"].is_string())
    })
    .await;
    assert_eq!(
        host.post_with_id("/hooks/q", "wait-1", "{}").await.status(),
        StatusCode::ACCEPTED
    );

    std::fs::remove_file(host.plugins.join("q.wasm")).unwrap();
    eventually(Duration::from_secs(5), "route gone", || async {
        (host.post("/hooks/q", "{}").await.status() == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    // The running attempt finishes on the version it started with.
    let slow = wait_for(&host, "slow-1", "done").await;
    assert_eq!(slow["attempts"], 1, "{slow}");
    let parked = eventually(Duration::from_secs(5), "event parked", || async {
        event(&host.client, &admin, "wait-1").await.filter(|e| {
            e["last_error"]
                .as_str()
                .is_some_and(|m| m.contains("no plugin serves /hooks/q"))
        })
    })
    .await;
    assert_eq!(parked["status"], "pending", "never dropped: {parked}");
    assert_eq!(parked["attempts"], 0, "waiting spends no attempt: {parked}");

    // A new version takes over the waiting event.
    deploy(&host.plugins, "q", &std::fs::read(ECHO).unwrap());
    let done = wait_for(&host, "wait-1", "done").await;
    assert_eq!(done["attempts"], 1, "{done}");
    host.stop().await;
}

/// The `flaky` guest, which asks for a retry until its third attempt: the
/// worker retries it, and the plugin sees each attempt number once.
pub(crate) mod flaky {
    use super::*;

    #[tokio::test]
    async fn a_plugin_returning_retry_twice_is_done_after_three_attempts() {
        let host =
            TestHost::start_with_admin(&[plugin_with("flaky", GUEST_FLAKY, QUEUE)], |_| {}).await;
        let response = host.post_with_id("/hooks/flaky", "flaky-1", "{}").await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let done = wait_for(&host, "flaky-1", "done").await;
        assert_eq!(done["attempts"], 3, "{done}");
        assert_eq!(
            done["last_error"], "plugin asked to retry: attempt 2 of 3 failed",
            "the plugin saw attempt 2 before succeeding: {done}"
        );
        host.stop().await;
    }

    const ADMIN_TOKEN_VAR: &str = "HOOKHOST_TEST_INBOX_ADMIN_TOKEN";

    fn admin_client() -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("authorization", "Bearer inbox-test-token".parse().unwrap());
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn the_plugin_sees_attempts_1_2_3_once_each() {
        let (_dir, plugins, data) = folders();
        install(&plugins, &[plugin_with("flaky", GUEST_FLAKY, QUEUE)]);
        let token = format!("env:{ADMIN_TOKEN_VAR}");
        let args = ["--admin", "127.0.0.1:0", "--admin-token", &token];
        let mut command = Binary::command(&plugins, &data, &args);
        command.env(ADMIN_TOKEN_VAR, "inbox-test-token");
        let host = Binary::start(command);
        let admin = format!("http://{}", host.admin_addr());
        let client = admin_client();
        let response = client
            .post(host.url("/hooks/flaky"))
            .header("x-github-delivery", "flaky-log-1")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let done = eventually(Duration::from_secs(10), "flaky done", || async {
            event(&client, &admin, "flaky-log-1")
                .await
                .filter(|e| e["status"] == "done")
        })
        .await;
        assert_eq!(done["attempts"], 3);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let log = host.log();
        for attempt in 1..=4 {
            let line = format!("guest-flaky saw attempt {attempt} (delivery flaky-log-1)");
            let expected = usize::from(attempt <= 3);
            assert_eq!(
                log.matches(&line).count(),
                expected,
                "`{line}` logged other than {expected} times:\n{log}"
            );
        }
    }
}

/// Issue 16, part 3: the host's own capacity never spends an attempt. The
/// host has one instance slot; a sync delivery to `slow` holds it for 1.5 s
/// while a queued event of `q` (one attempt allowed, 300 ms timeout) waits
/// for it and runs out of time: that is the host being full, not the
/// plugin failing, so the event waits for the slot instead of dying.
#[tokio::test]
async fn a_full_instance_pool_never_spends_an_attempt() {
    let manifest = format!("{QUEUE}max_attempts = 1\n[limits]\ntimeout = \"300ms\"\n");
    let plugins = [
        plugin("slow", GUEST_SLEEPER),
        plugin_with("q", ECHO, &manifest),
    ];
    let host =
        Arc::new(TestHost::start_with_admin(&plugins, |config| config.max_concurrency = 1).await);
    let hog = {
        let host = host.clone();
        tokio::spawn(async move { host.post("/hooks/slow?ms=1500", "{}").await.status() })
    };
    // The sync call takes the slot at once; give it ample time to.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let accepted = host.post_with_id("/hooks/q", "cap-1", "{}").await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    assert_eq!(hog.await.unwrap(), StatusCode::OK);
    let done = wait_for(&host, "cap-1", "done").await;
    assert_eq!(
        done["attempts"], 1,
        "only the plugin's own attempt counts: {done}"
    );
    let host = Arc::into_inner(host).unwrap();
    host.stop().await;
}

#[tokio::test]
async fn sigterm_lets_a_running_attempt_finish() {
    let (_dir, plugins, data) = folders();
    install(&plugins, &[plugin_with("q", GUEST_SLEEPER, QUEUE)]);
    let args = ["--admin", "127.0.0.1:0"];
    let mut host = Binary::spawn(&plugins, &data, &args);
    let admin = format!("http://{}", host.admin_addr());
    let client = reqwest::Client::new();
    let response = client
        .post(host.url("/hooks/q?ms=1000"))
        .header("idempotency-key", "term-1")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    eventually(Duration::from_secs(5), "attempt running", || async {
        event(&client, &admin, "term-1")
            .await
            .filter(|e| e["claimed_until"].is_string())
    })
    .await;
    host.signal("TERM");
    let exit = host.wait(Duration::from_secs(10));
    assert!(exit.success(), "{exit:?}; log:\n{}", host.log());

    // After a restart the event is done by that one attempt, not made again.
    let host = Binary::spawn(&plugins, &data, &args);
    let admin = format!("http://{}", host.admin_addr());
    let done = event(&client, &admin, "term-1").await.unwrap();
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["attempts"], 1, "{done}");
}

/// The bar of issue 5: 8 concurrent senders for 6 s, the host SIGKILLed at
/// 3 s and restarted on the same data folder; every event answered 202
/// reaches `done` within 40 s of the restart, and none is marked done twice
/// (one row per id, `done_at` never changes once set).
#[test]
fn sigkill_mid_load_loses_no_accepted_event() {
    const SENDERS: usize = 8;
    const LOAD: Duration = Duration::from_secs(6);
    const KILL_AT: Duration = Duration::from_secs(3);
    const PACE: Duration = Duration::from_millis(8);
    let (_dir, plugins, data) = folders();
    let manifest =
        "mode = \"queue\"\n[queue]\nconcurrency = 8\n[retry]\nbase = \"50ms\"\nmax = \"500ms\"\n";
    install(&plugins, &[plugin_with("q", ECHO, manifest)]);
    let args = ["--admin", "127.0.0.1:0"];
    let mut host = Binary::spawn(&plugins, &data, &args);
    let target = Arc::new(Mutex::new(host.url("/hooks/q")));

    // The senders run on their own runtime and thread; this thread kills and
    // restarts the host meanwhile and points them at the new address.
    let started = Instant::now();
    let senders = {
        let target = target.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap();
                let tasks: Vec<_> = (0..SENDERS)
                    .map(|sender| {
                        let (client, target) = (client.clone(), target.clone());
                        tokio::spawn(async move {
                            let (mut accepted, mut failed) = (Vec::new(), 0);
                            let mut n = 0;
                            while started.elapsed() < LOAD {
                                n += 1;
                                let id = format!("s{sender}-{n}");
                                let url = target.lock().unwrap().clone();
                                let sent = client
                                    .post(url)
                                    .header("idempotency-key", &id)
                                    .body(format!("{{\"sender\":{sender},\"n\":{n}}}"))
                                    .send()
                                    .await;
                                match sent.map(|r| r.status()) {
                                    Ok(StatusCode::ACCEPTED) => {
                                        accepted.push(id);
                                        // Paced (~1000 events/s in all), so the
                                        // rest of the suite keeps its CPU.
                                        tokio::time::sleep(PACE).await;
                                    }
                                    Ok(status) => panic!("{id}: unexpected {status}"),
                                    Err(_) => {
                                        // The host is down: a sender retries later.
                                        failed += 1;
                                        tokio::time::sleep(Duration::from_millis(20)).await;
                                    }
                                }
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
            })
        })
    };

    std::thread::sleep(KILL_AT.saturating_sub(started.elapsed()));
    host.signal("KILL");
    let status = host.wait(Duration::from_secs(5));
    assert!(!status.success(), "killed, not exited: {status:?}");
    let before_kill = host.log();
    let host = Binary::spawn(&plugins, &data, &args);
    let restarted = Instant::now();
    *target.lock().unwrap() = host.url("/hooks/q");
    let (accepted, failed) = senders.join().unwrap();
    assert!(
        accepted.len() > 100,
        "only {} events accepted; log before the kill:\n{before_kill}",
        accepted.len()
    );
    assert!(failed > 0, "the kill interrupted no sender");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let admin = format!("http://{}", host.admin_addr());
    let client = reqwest::Client::new();
    runtime.block_on(async {
        // Everything is handled: no event left pending (or dead) ...
        loop {
            let pending = list(&client, &admin, "status=pending&limit=1").await;
            if pending.is_empty() {
                break;
            }
            assert!(
                restarted.elapsed() < Duration::from_secs(40),
                "events still pending 40 s after the restart, e.g. {}",
                pending[0]
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(
            list(&client, &admin, "status=dead&limit=1")
                .await
                .is_empty()
        );
        // ... every accepted id is done, in exactly one row ...
        let first = all_events(&client, &admin).await;
        for id in &accepted {
            let rows = first
                .get(id)
                .unwrap_or_else(|| panic!("{id} was answered 202 but is not stored"));
            assert_eq!(rows.len(), 1, "{id}: {rows:?}");
            assert_eq!(rows[0]["status"], "done", "{id}: {}", rows[0]);
        }
        for (id, rows) in &first {
            assert_eq!(rows.len(), 1, "{id} stored twice: {rows:?}");
        }
        // ... and once done, stays done as it was.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let second = all_events(&client, &admin).await;
        for (id, rows) in &first {
            assert_eq!(
                rows[0]["done_at"], second[id][0]["done_at"],
                "{id} was marked done again"
            );
        }
        eprintln!(
            "crash test: {} events accepted ({failed} sends refused while \
             the host was down), {} stored, all done {:?} after the restart",
            accepted.len(),
            first.len(),
            restarted.elapsed()
        );
    });
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

/// The `keyed` guest on a route with `[queue] order_key` (issue 16, part 2):
/// events of one key reach the plugin one at a time in acceptance order,
/// and a key being retried holds back only itself.
pub(crate) mod keyed {
    use hookhost_test_artifacts::GUEST_KEYED;

    use super::*;
    use crate::support::LocalServer;

    const KEYS: usize = 10;
    const PER_KEY: usize = 100;
    /// The retry interval of `RETRIED`'s events: `[retry] max`.
    const RETRY_MAX: Duration = Duration::from_millis(40);
    /// The key whose every event is retried three times.
    const RETRIED: &str = "k0";

    fn manifest(recorder: &LocalServer) -> String {
        format!(
            "mode = \"queue\"\n[retry]\nbase = \"20ms\"\nmax = \"{}ms\"\n\
             [queue]\norder_key = \"json:/key\"\nconcurrency = 8\n\
             [allow]\nhttp = [\"{}\"]\n",
            RETRY_MAX.as_millis(),
            recorder.addr
        )
    }

    fn path(recorder: &LocalServer) -> String {
        format!(
            "/hooks/keyed?log=http://{}/&retry={RETRIED}&retries=3",
            recorder.addr
        )
    }

    /// Sends each key's events in order (one sender per key, each waiting
    /// for its 202 before the next) until `stop`; returns the ids answered
    /// 202, per key, in order.
    async fn send(url: String, stop: Arc<std::sync::atomic::AtomicBool>) -> Vec<Vec<String>> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let senders: Vec<_> = (0..KEYS)
            .map(|k| {
                let (client, url, stop) = (client.clone(), url.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut accepted = Vec::new();
                    for n in 0..PER_KEY {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            break;
                        }
                        let id = format!("k{k}-{n}");
                        let sent = client
                            .post(&url)
                            .header("idempotency-key", &id)
                            .body(format!("{{\"key\":\"k{k}\",\"n\":{n}}}"))
                            .send()
                            .await;
                        match sent {
                            Ok(r) if r.status() == StatusCode::ACCEPTED => accepted.push(id),
                            _ => break, // the host was killed
                        }
                    }
                    accepted
                })
            })
            .collect();
        let mut accepted = Vec::new();
        for sender in senders {
            accepted.push(sender.await.unwrap());
        }
        accepted
    }

    /// What the plugin saw, per key: (n, attempt) in the order it saw them.
    fn seen(recorder: &LocalServer) -> HashMap<String, Vec<(u64, u64)>> {
        let mut seen: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
        for request in recorder.requests() {
            let body = request.split("\r\n\r\n").nth(1).unwrap_or_default();
            let fields: Vec<&str> = body.split(' ').collect();
            let [key, n, attempt] = fields[..] else {
                panic!("unreadable log line {body:?}");
            };
            seen.entry(key.to_owned())
                .or_default()
                .push((n.parse().unwrap(), attempt.parse().unwrap()));
        }
        seen
    }

    /// Per key, the events reached the plugin in acceptance order: `n` never
    /// goes down (it may repeat: an attempt made again after a crash), and
    /// every accepted `n` was seen.
    fn assert_acceptance_order(seen: &HashMap<String, Vec<(u64, u64)>>, accepted: &[Vec<String>]) {
        for (k, ids) in accepted.iter().enumerate() {
            let key = format!("k{k}");
            let order: Vec<u64> = seen
                .get(&key)
                .map_or(Vec::new(), |s| s.iter().map(|x| x.0).collect());
            assert!(
                order.windows(2).all(|w| w[0] <= w[1]),
                "{key} out of acceptance order at the plugin: {order:?}"
            );
            for n in 0..ids.len() as u64 {
                assert!(
                    order.contains(&n),
                    "{key}'s event {n} was accepted but never delivered"
                );
            }
        }
    }

    fn millis_of(event: &Value, field: &str) -> i64 {
        let text = event[field].as_str().unwrap();
        let at = humantime::parse_rfc3339(text).unwrap();
        at.duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_key_at_a_time_in_acceptance_order_and_a_retried_key_holds_back_only_itself() {
        let recorder = LocalServer::start(200, Vec::new(), Duration::ZERO).await;
        let manifest = manifest(&recorder);
        let plugins = [plugin_with("keyed", GUEST_KEYED, &manifest)];
        let host = TestHost::start_with_admin(&plugins, |_| {}).await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let accepted = send(host.url(&path(&recorder)), stop).await;
        assert!(accepted.iter().all(|ids| ids.len() == PER_KEY));
        let admin = host.admin_url("");
        eventually(Duration::from_secs(60), "every event done", || async {
            let pending = list(&host.client, &admin, "status=pending&limit=1").await;
            pending.is_empty().then_some(())
        })
        .await;
        let seen = seen(&recorder);
        assert_acceptance_order(&seen, &accepted);
        let retried = &seen[RETRIED];
        assert_eq!(retried.len(), PER_KEY * 4, "3 retries and a success each");
        for (i, (n, attempt)) in retried.iter().enumerate() {
            assert_eq!((*n, *attempt), ((i / 4) as u64, (i % 4 + 1) as u64));
        }

        // The other keys never waited for RETRIED's retries: each of their
        // events was done within one retry interval (plus the time a debug
        // build on a shared machine takes to deliver a burst) of arriving,
        // while RETRIED's took far longer in all.
        let events = all_events(&host.client, &admin).await;
        let mut slowest = 0;
        let (mut first, mut last) = (i64::MAX, 0);
        for rows in events.values() {
            let event = &rows[0];
            assert_eq!(event["status"], "done", "{event}");
            assert!(event["order_key"].is_string(), "{event}");
            let (received, done) = (millis_of(event, "received_at"), millis_of(event, "done_at"));
            if event["order_key"] == RETRIED {
                first = first.min(received);
                last = last.max(done);
            } else {
                slowest = slowest.max(done - received);
            }
        }
        let allowance = RETRY_MAX.as_millis() as i64 + 1500;
        assert!(
            slowest <= allowance,
            "an event of another key took {slowest} ms, over one retry interval (+1.5 s)"
        );
        assert!(
            last - first > slowest,
            "{RETRIED} took {} ms in all",
            last - first
        );
        host.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigkill_mid_load_loses_no_event_and_breaks_no_keys_order() {
        let recorder = LocalServer::start(200, Vec::new(), Duration::ZERO).await;
        let (_dir, plugins, data) = folders();
        install(
            &plugins,
            &[plugin_with("keyed", GUEST_KEYED, &manifest(&recorder))],
        );
        let args = ["--admin", "127.0.0.1:0"];
        let mut host = Binary::spawn(&plugins, &data, &args);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let load = tokio::spawn(send(host.url(&path(&recorder)), stop.clone()));
        tokio::time::sleep(Duration::from_millis(700)).await;
        host.signal("KILL");
        host.wait(Duration::from_secs(10));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let accepted = load.await.unwrap();
        let total: usize = accepted.iter().map(Vec::len).sum();
        assert!(total > 0, "nothing was accepted before the kill");

        let host = Binary::spawn(&plugins, &data, &args);
        let admin = format!("http://{}", host.admin_addr());
        let client = reqwest::Client::new();
        eventually(Duration::from_secs(60), "every event done", || async {
            let pending = list(&client, &admin, "status=pending&limit=1").await;
            pending.is_empty().then_some(())
        })
        .await;
        let events = all_events(&client, &admin).await;
        for id in accepted.iter().flatten() {
            let rows = events
                .get(id)
                .unwrap_or_else(|| panic!("{id} was acknowledged but is lost"));
            assert_eq!(rows[0]["status"], "done", "{id}: {}", rows[0]);
        }
        assert_acceptance_order(&seen(&recorder), &accepted);
        eprintln!(
            "ordered crash test: {total} events acknowledged before the kill, all done in order"
        );
    }
}

/// Retry hints: a plugin's `queue.retry-after` decides when its `retry` is
/// tried again (capped at `[retry] max`), in queue and in sync mode.
mod retry_hints {
    use super::*;

    fn millis(text: &Value) -> i64 {
        let at = humantime::parse_rfc3339(text.as_str().unwrap()).unwrap();
        at.duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    }

    async fn post_hinted(host: &TestHost, id: &str, hint_ms: u64) -> reqwest::Response {
        host.client
            .post(host.url("/hooks/retry"))
            .header("idempotency-key", id)
            .header("x-retry-after-ms", hint_ms.to_string())
            .body("{}")
            .send()
            .await
            .unwrap()
    }

    /// The event's first attempt, once recorded, and the event then.
    async fn after_first_attempt(host: &TestHost, id: &str) -> (Value, Value) {
        let admin = host.admin_url("");
        eventually(
            Duration::from_secs(20),
            "the first attempt recorded",
            || {
                let (client, admin) = (host.client.clone(), admin.clone());
                async move {
                    let event = event(&client, &admin, id).await?;
                    let first = event["attempt_log"].as_array()?.first()?.clone();
                    // The event and its attempt log are two reads: wait until
                    // the event's own row shows the attempt as well.
                    (event["attempts"].as_u64()? >= 1).then_some((event, first))
                }
            },
        )
        .await
    }

    #[tokio::test]
    async fn a_hinted_retry_waits_what_the_plugin_asked_not_the_backoff() {
        // Without the hint the backoff would retry within 100 ms (base 50 ms).
        let manifest =
            "mode = \"queue\"\n[retry]\nbase = \"50ms\"\nmax = \"1m\"\nmax_attempts = 2\n";
        let host =
            TestHost::start_with_admin(&[plugin_with("retry", GUEST_RETRY, manifest)], |_| {})
                .await;
        assert_eq!(
            post_hinted(&host, "hint-1", 3000).await.status(),
            StatusCode::ACCEPTED
        );
        let (pending, first) = after_first_attempt(&host, "hint-1").await;
        assert_eq!(first["outcome"], "retry", "{pending}");
        let wait = millis(&pending["next_attempt_at"]) - millis(&first["at"]);
        assert!(
            (2_500..=3_050).contains(&wait),
            "next attempt {wait} ms after the first, not 3 s: {pending}"
        );
        // And it is kept: the second attempt comes no earlier.
        let dead = wait_for(&host, "hint-1", "dead").await;
        let log = event(&host.client, &host.admin_url(""), "hint-1")
            .await
            .unwrap()["attempt_log"]
            .clone();
        let gap = millis(&log[1]["at"]) - millis(&log[0]["at"]);
        assert!(
            gap >= 2_500,
            "second attempt {gap} ms after the first: {dead}"
        );
        host.stop().await;
    }

    #[tokio::test]
    async fn a_hint_is_capped_at_the_retry_max() {
        let host =
            TestHost::start_with_admin(&[plugin_with("retry", GUEST_RETRY, QUEUE)], |_| {}).await;
        // An hour asked; `[retry] max` is 200 ms.
        assert_eq!(
            post_hinted(&host, "hint-2", 3_600_000).await.status(),
            StatusCode::ACCEPTED
        );
        let (pending, first) = after_first_attempt(&host, "hint-2").await;
        let wait = millis(&pending["next_attempt_at"]) - millis(&first["at"]);
        // The backoff alone would be at most 50 ms (base) after a first attempt;
        // the attempt log's time is its commit's, a little after the decision.
        assert!(
            (100..=250).contains(&wait),
            "next attempt {wait} ms after the first, not the 200 ms cap: {pending}"
        );
        host.stop().await;
    }

    #[tokio::test]
    async fn sync_mode_sends_the_hint_as_retry_after_and_it_never_outlives_its_call() {
        // Instances are reused, so a hint left behind by one delivery would
        // reach the next if the host did not drop it.
        let manifest = "[instance]\nmax_deliveries = 100\n";
        let host = TestHost::start(&[plugin_with("retry", GUEST_RETRY, manifest)]).await;
        let send = |hint: Option<&str>, answer: Option<&str>| {
            let mut request = host.client.post(host.url("/hooks/retry")).body("{}");
            if let Some(hint) = hint {
                request = request.header("x-retry-after-ms", hint);
            }
            if let Some(answer) = answer {
                request = request.header("x-answer", answer);
            }
            request.send()
        };
        let hinted = send(Some("29500"), None).await.unwrap();
        assert_eq!(hinted.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(hinted.headers()["retry-after"], "30", "rounded up");

        // A hint, then `ok`: the instance is kept, the hint is not.
        let answered = send(Some("60000"), Some("ok")).await.unwrap();
        assert_eq!(answered.status(), StatusCode::OK);
        let plain = send(None, None).await.unwrap();
        assert_eq!(plain.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(plain.headers()["retry-after"], "1", "the host's default");
        host.stop().await;
    }
}
