//! `GET /plugins` and `POST /plugins/reload` on the admin API: what is
//! loaded, what failed to load, and how deliveries to each plugin ended.

use std::time::Duration;

use hookhost::config::WatchMode;
use hookhost_test_artifacts::{ECHO, GUEST_REJECT};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{TestHost, eventually, plugin, plugin_with, wait_for};

async fn plugins(host: &TestHost) -> Vec<Value> {
    let (status, body) = host.admin_get("/plugins").await;
    assert_eq!(status, StatusCode::OK);
    body["plugins"].as_array().unwrap().clone()
}

fn find<'a>(plugins: &'a [Value], name: &str) -> &'a Value {
    plugins
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no plugin {name} in {plugins:?}"))
}

#[tokio::test]
async fn plugins_show_route_mode_scheme_hash_and_delivery_outcomes() {
    let github = "[verify]\nscheme = \"github\"\nsecret = \"s3cret-for-tests\"\n\
                  [instance]\nmax_deliveries = 50\n";
    let queue = "mode = \"queue\"\n";
    let host = TestHost::start_with_admin(
        &[
            plugin("echo", ECHO),
            plugin_with("gh", ECHO, github),
            plugin_with("reject", GUEST_REJECT, queue),
        ],
        |_| {},
    )
    .await;
    std::fs::write(host.plugins.join("broken.wasm"), b"not a component").unwrap();

    for _ in 0..2 {
        assert_eq!(
            host.post("/hooks/echo", "{}").await.status(),
            StatusCode::OK
        );
    }
    let unsigned = host.post("/hooks/gh", "{}").await;
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    let queued = host.post_with_id("/hooks/reject", "doomed-1", "{}").await;
    assert_eq!(queued.status(), StatusCode::ACCEPTED);
    wait_for(&host, "doomed-1", "dead").await;

    let listed = plugins(&host).await;
    let echo = find(&listed, "echo");
    assert_eq!(echo["serving"], true);
    assert_eq!(echo["route"], "/hooks/echo");
    assert_eq!(echo["mode"], "sync");
    assert_eq!(echo["scheme"], Value::Null);
    assert_eq!(echo["last_error"], Value::Null);
    assert_eq!(echo["deliveries"]["ok"], 2);
    assert_eq!(echo["deliveries"]["refused"], 0);
    let hash = echo["sha256"].as_str().unwrap();
    assert_eq!(hash.len(), 64, "{hash}");
    assert!(echo["loaded_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(echo["max_deliveries"], 1, "a fresh instance per delivery");

    let gh = find(&listed, "gh");
    assert_eq!(gh["scheme"], "github");
    assert_eq!(gh["max_deliveries"], 50);
    assert_eq!(gh["sha256"], hash, "same component, same hash");
    assert_eq!(gh["deliveries"]["refused"], 1);
    assert_eq!(gh["deliveries"]["ok"], 0);

    let reject = find(&listed, "reject");
    assert_eq!(reject["mode"], "queue");
    assert_eq!(reject["deliveries"]["reject"], 1);

    // Written after start-up: the watcher finds it broken.
    let broken = eventually(Duration::from_secs(10), "broken.wasm reported", || {
        let host = &host;
        async move {
            let listed = plugins(host).await;
            listed.iter().find(|p| p["name"] == "broken").cloned()
        }
    })
    .await;
    assert_eq!(broken["serving"], false);
    assert!(
        broken["last_error"]["file"]
            .as_str()
            .unwrap()
            .ends_with("broken.wasm"),
        "{broken}"
    );
    assert!(!broken["last_error"]["reason"].as_str().unwrap().is_empty());
    host.stop().await;
}

#[tokio::test]
async fn reload_rescans_the_folder_and_reports_what_changed() {
    // Polling hourly: only the reload request can notice the new files.
    let host = TestHost::start_with_admin(&[plugin("echo", ECHO)], |config| {
        config.watch = WatchMode::Poll(Duration::from_secs(3600));
    })
    .await;
    std::fs::copy(ECHO, host.plugins.join("late.wasm")).unwrap();
    std::fs::write(host.plugins.join("bad.wasm"), b"garbage").unwrap();
    assert_eq!(
        host.post("/hooks/late", "{}").await.status(),
        StatusCode::NOT_FOUND
    );

    let (status, report) = host.admin_post("/plugins/reload").await;
    assert_eq!(status, StatusCode::OK);
    // Like SIGHUP, a reload re-validates every plugin (its secrets may have
    // changed), so the running `echo` goes live again too.
    assert_eq!(
        report["loaded"],
        serde_json::json!(["echo", "late"]),
        "{report}"
    );
    assert_eq!(report["removed"], serde_json::json!([]));
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(failed[0]["name"], "bad");
    assert_eq!(
        host.post("/hooks/late", "{}").await.status(),
        StatusCode::OK
    );

    let get = host
        .client
        .get(host.admin_url("/plugins/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get.headers()["allow"], "POST");
    host.stop().await;
}
