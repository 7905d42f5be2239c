//! Health on the admin listener: `/healthz` while the process serves,
//! `/readyz` only while the inbox store takes writes; both under the admin
//! token when one is set.

use std::time::Duration;

use hookhost::secret::Token;
use hookhost_test_artifacts::ECHO;
use reqwest::StatusCode;

use crate::support::{TestHost, deploy, eventually, plugin};

#[tokio::test]
async fn healthz_is_ok_and_readyz_follows_whether_the_store_takes_writes() {
    let host = TestHost::start_with_admin(&[plugin("echo", ECHO)], |_| {}).await;
    let (status, body) = host.admin_get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({ "status": "ok" }));
    let (status, body) = host.admin_get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");

    // Triggers stand in for a full disk: the store refuses the probe's write.
    let db = host.plugins.parent().unwrap().join("data/inbox.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER full_insert BEFORE INSERT ON seen
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;
         CREATE TRIGGER full_update BEFORE UPDATE ON seen
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
    )
    .unwrap();
    let (status, body) = host.admin_get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "not ready");
    assert_eq!(body["reason"], "the inbox store is not writable");
    // Alive all the same: a restart would not help a full disk.
    assert_eq!(host.admin_get("/healthz").await.0, StatusCode::OK);

    conn.execute_batch("DROP TRIGGER full_insert; DROP TRIGGER full_update;")
        .unwrap();
    assert_eq!(host.admin_get("/readyz").await.0, StatusCode::OK);

    let response = host
        .client
        .post(host.admin_url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET");
    host.stop().await;
}

#[tokio::test]
async fn readyz_stays_ready_and_names_a_plugin_that_failed_to_load() {
    let host = TestHost::start_with_admin(&[plugin("echo", ECHO)], |_| {}).await;
    let (status, body) = host.admin_get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["plugins"], 1);
    assert_eq!(body["failed"], serde_json::json!([]));

    deploy(
        &host.plugins,
        "broken",
        b"\0asm\x0d\0\x01\0not really a component",
    );
    let body = eventually(
        Duration::from_secs(10),
        "broken listed by /readyz",
        || async {
            let (status, body) = host.admin_get("/readyz").await;
            assert_eq!(
                status,
                StatusCode::OK,
                "one bad plugin must not unready the host: {body}"
            );
            (body["failed"] == serde_json::json!(["broken"])).then_some(body)
        },
    )
    .await;
    assert_eq!(body["plugins"], 1, "echo still serves: {body}");
    assert_eq!(
        host.client
            .post(host.url("/hooks/echo"))
            .body("hi")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    std::fs::remove_file(host.plugins.join("broken.wasm")).unwrap();
    eventually(
        Duration::from_secs(10),
        "broken forgotten after removal",
        || async {
            let (_, body) = host.admin_get("/readyz").await;
            (body["failed"] == serde_json::json!([])).then_some(())
        },
    )
    .await;
    host.stop().await;
}

#[tokio::test]
async fn health_needs_the_token_when_one_is_set() {
    let host = TestHost::start_with_admin(&[plugin("echo", ECHO)], |config| {
        config.admin_token = Some(Token::new("admin-s3cret"));
    })
    .await;
    for path in ["/healthz", "/readyz"] {
        let url = host.admin_url(path);
        let without = host.client.get(&url).send().await.unwrap();
        assert_eq!(without.status(), StatusCode::UNAUTHORIZED, "{path}");
        let with = host
            .client
            .get(&url)
            .bearer_auth("admin-s3cret")
            .send()
            .await
            .unwrap();
        assert_eq!(with.status(), StatusCode::OK, "{path}");
    }
    host.stop().await;
}
