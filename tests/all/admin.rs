//! The admin API: looking up, listing and replaying events; its token; and
//! retention.

use std::time::Duration;

use hookhost::secret::Token;
use hookhost_test_artifacts::{ECHO, GUEST_REJECT, GUEST_SLEEPER};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{
    TestHost, event, eventually, folders, install, json_header, plugin_with, serve_command,
    wait_for,
};

const QUEUE: &str = "mode = \"queue\"\n";

#[tokio::test]
async fn an_event_shows_its_request_with_secrets_redacted() {
    let host = TestHost::start_with_admin(&[plugin_with("q", ECHO, QUEUE)], |_| {}).await;
    let response = host
        .client
        .post(host.url("/hooks/q?source=test"))
        .header("x-github-delivery", "gh-7")
        .header("x-github-event", "push")
        .header("x-hub-signature-256", "sha256=abcdef")
        .header("authorization", "Bearer sender-secret")
        .header("cookie", "session=s3cret")
        .body("{\"ref\":\"main\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    wait_for(&host, "gh-7", "done").await;

    let (status, event) = host.admin_get("/events/gh-7").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(event["id"], "gh-7");
    assert_eq!(event["status"], "done");
    assert_eq!(event["replays"], 0);
    let received = event["received_at"].as_str().unwrap();
    assert!(
        received.len() == 24 && received.ends_with('Z'),
        "RFC 3339 with milliseconds: {received}"
    );
    let request = &event["request"];
    assert_eq!(request["method"], "POST");
    assert_eq!(request["path"], "/hooks/q");
    assert_eq!(request["query"], "source=test");
    assert_eq!(request["body"], "{\"ref\":\"main\"}");
    assert_eq!(request["body_len"], 14);
    let header = |name: &str| json_header(&request["headers"], name);
    assert_eq!(header("x-github-event").as_deref(), Some("push"));
    for secret in ["x-hub-signature-256", "authorization", "cookie"] {
        assert_eq!(header(secret).as_deref(), Some("[redacted]"), "{secret}");
    }
    let text = event.to_string();
    for leaked in ["abcdef", "sender-secret", "s3cret"] {
        assert!(!text.contains(leaked), "{leaked} shown: {text}");
    }

    // Unknown ids and endpoints are 404; ids are percent-decoded.
    let (status, body) = host.admin_get("/events/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("nope"), "{body}");
    assert_eq!(host.admin_get("/events/gh%2D7").await.0, StatusCode::OK);
    assert_eq!(
        host.admin_get("/nothing-here").await.0,
        StatusCode::NOT_FOUND
    );
    host.stop().await;
}

#[tokio::test]
async fn events_are_listed_by_status_and_route_newest_first() {
    let host = TestHost::start_with_admin(
        &[
            plugin_with("a", ECHO, QUEUE),
            plugin_with("b", GUEST_REJECT, QUEUE),
        ],
        |_| {},
    )
    .await;
    for (path, id) in [("/hooks/a", "a1"), ("/hooks/b", "b1"), ("/hooks/a", "a2")] {
        let response = host
            .client
            .post(host.url(path))
            .header("webhook-id", id)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    wait_for(&host, "a2", "done").await;
    wait_for(&host, "a1", "done").await;
    wait_for(&host, "b1", "dead").await;

    let ids = |page: &Value| -> Vec<String> {
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, all) = host.admin_get("/events").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&all), ["a2", "b1", "a1"]);
    assert!(
        all["events"][0]["request"].is_null(),
        "lists leave requests out"
    );
    assert!(all["next_before"].is_null());
    assert_eq!(
        ids(&host.admin_get("/events?route=%2Fhooks%2Fa").await.1),
        ["a2", "a1"]
    );
    assert_eq!(ids(&host.admin_get("/events?status=dead").await.1), ["b1"]);
    assert_eq!(
        ids(&host.admin_get("/events?status=done&route=/hooks/b").await.1),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&host.admin_get("/events?status=&route=").await.1).len(),
        3,
        "empty means any"
    );

    // Paging: a full page names the cursor for the next.
    let (_, page) = host.admin_get("/events?limit=2").await;
    assert_eq!(ids(&page), ["a2", "b1"]);
    let before = page["next_before"].as_i64().unwrap();
    assert_eq!(
        ids(&host
            .admin_get(&format!("/events?limit=2&before={before}"))
            .await
            .1),
        ["a1"]
    );

    for bad in [
        "status=gone",
        "limit=0",
        "limit=1001",
        "limit=x",
        "before=x",
    ] {
        let (status, body) = host.admin_get(&format!("/events?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    host.stop().await;
}

#[tokio::test]
async fn replay_sends_a_dead_event_through_again() {
    let host = TestHost::start_with_admin(&[plugin_with("b", GUEST_REJECT, QUEUE)], |_| {}).await;
    let response = host.post_with_id("/hooks/b", "r-1", "{}").await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let dead = wait_for(&host, "r-1", "dead").await;
    assert_eq!(dead["attempts"], 1);

    let (status, replayed) = host.admin_post("/events/r-1/replay").await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    assert_eq!(replayed["replays"], 1);
    // It went through the plugin again (which rejects it again), with a
    // fresh retry budget.
    let admin = host.admin_url("");
    let again = eventually(Duration::from_secs(10), "dead again", || async {
        event(&host.client, &admin, "r-1")
            .await
            .filter(|e| e["status"] == "dead" && e["replays"] == 1)
    })
    .await;
    assert_eq!(again["attempts"], 1, "{again}");
    assert_ne!(again["dead_at"], dead["dead_at"]);

    assert_eq!(
        host.admin_post("/events/nope/replay").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        host.admin_post("/events/r-1/replay?route=/hooks/other")
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let response = host
        .client
        .get(host.admin_url("/events/r-1/replay"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
    host.stop().await;
}

#[tokio::test]
async fn dead_events_are_replayed_in_bulk_by_route_once() {
    let host = TestHost::start_with_admin(
        &[
            plugin_with("x", GUEST_REJECT, QUEUE),
            plugin_with("y", GUEST_REJECT, QUEUE),
        ],
        |config| config.inbox.orphan_retry = Duration::from_secs(60),
    )
    .await;
    for (route, id) in [
        ("/hooks/x", "x-1"),
        ("/hooks/x", "x-2"),
        ("/hooks/y", "y-1"),
    ] {
        let response = host.post_with_id(route, id, "{}").await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        wait_for(&host, id, "dead").await;
    }
    // Without a plugin on /hooks/x its replayed events wait, pending. (A
    // GET asks without queueing anything: 405 while the route is served.)
    std::fs::remove_file(host.plugins.join("x.wasm")).unwrap();
    eventually(Duration::from_secs(5), "route gone", || async {
        let probe = host.client.get(host.url("/hooks/x")).send().await.unwrap();
        (probe.status() == StatusCode::NOT_FOUND).then_some(())
    })
    .await;

    let (status, body) = host
        .admin_post("/events/replay?status=dead&route=/hooks/x")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, serde_json::json!({ "replayed": 2 }));
    for id in ["x-1", "x-2"] {
        let event = event(&host.client, &host.admin_url(""), id).await.unwrap();
        assert_eq!(event["status"], "pending", "{event}");
        assert_eq!(event["attempts"], 0, "{event}");
        assert_eq!(event["replays"], 1, "{event}");
    }
    let y = event(&host.client, &host.admin_url(""), "y-1")
        .await
        .unwrap();
    assert_eq!(y["status"], "dead", "another route is untouched: {y}");
    // Idempotent: they are pending now.
    let (_, body) = host
        .admin_post("/events/replay?status=dead&route=%2Fhooks%2Fx")
        .await;
    assert_eq!(body, serde_json::json!({ "replayed": 0 }));

    // No route: every route's dead events; this one is rejected again.
    let (status, body) = host.admin_post("/events/replay?status=dead").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, serde_json::json!({ "replayed": 1 }));
    let admin = host.admin_url("");
    eventually(Duration::from_secs(10), "y-1 dead again", || async {
        event(&host.client, &admin, "y-1")
            .await
            .filter(|e| e["status"] == "dead" && e["replays"] == 1)
    })
    .await;

    for (query, needle) in [
        ("", "needs status=dead"),
        ("?status=done", "status \"done\" cannot be replayed in bulk"),
        ("?status=pending&route=/hooks/x", "only status=dead"),
    ] {
        let (status, body) = host.admin_post(&format!("/events/replay{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(needle),
            "{query}: {body}"
        );
    }
    host.stop().await;
}

#[tokio::test]
async fn replaying_a_pending_event_is_a_conflict() {
    let host = TestHost::start_with_admin(&[plugin_with("q", GUEST_SLEEPER, QUEUE)], |_| {}).await;
    let response = host.post_with_id("/hooks/q?ms=1000", "busy-1", "{}").await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let (status, body) = host.admin_post("/events/busy-1/replay").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("pending"),
        "{body}"
    );
    wait_for(&host, "busy-1", "done").await;
    host.stop().await;
}

#[tokio::test]
async fn a_token_is_required_when_set() {
    let host = TestHost::start_with_admin(&[plugin_with("q", ECHO, QUEUE)], |config| {
        config.admin_token = Some(Token::new("admin-s3cret"));
    })
    .await;
    let url = host.admin_url("/events");
    let without = host.client.get(&url).send().await.unwrap();
    assert_eq!(without.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(without.headers()["www-authenticate"], "Bearer");
    for wrong in [
        "Bearer admin-s3cre",
        "Bearer admin-s3cret2",
        "Basic admin-s3cret",
        "admin-s3cret",
    ] {
        let response = host
            .client
            .get(&url)
            .header("authorization", wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{wrong}");
    }
    let response = host
        .client
        .get(&url)
        .header("authorization", "Bearer admin-s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    host.stop().await;
}

#[test]
fn a_public_admin_address_without_a_token_is_refused() {
    let (_dir, plugins, data) = folders();
    install(&plugins, &[plugin_with("q", ECHO, QUEUE)]);
    let serve = |args: &[&str]| serve_command(&plugins, &data).args(args).output().unwrap();
    let output = serve(&["--admin", "0.0.0.0:0"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to serve the admin API on 0.0.0.0:0 without a token"),
        "{stderr}"
    );
    // A token on the command line would be visible to every user.
    let output = serve(&["--admin", "0.0.0.0:0", "--admin-token", "s3cret"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("env:VAR"), "{stderr}");
    assert!(
        !stderr.contains("s3cret"),
        "the token is echoed back: {stderr}"
    );
}

#[tokio::test]
async fn done_events_are_purged_after_the_retention() {
    let host = TestHost::start_with_admin(&[plugin_with("q", ECHO, QUEUE)], |config| {
        config.inbox.retention = Duration::from_millis(300);
    })
    .await;
    let response = host.post_with_id("/hooks/q", "short-lived", "{}").await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    wait_for(&host, "short-lived", "done").await;
    let admin = host.admin_url("");
    eventually(Duration::from_secs(5), "purged", || async {
        event(&host.client, &admin, "short-lived")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    // The dedupe record outlives the event (24 h window).
    let again = host.post_with_id("/hooks/q", "short-lived", "{}").await;
    assert_eq!(again.status(), StatusCode::OK);
    host.stop().await;
}

#[tokio::test]
async fn without_a_token_only_loopback_hosts_and_same_origin_requests() {
    let host = TestHost::start_with_admin(&[plugin_with("q", ECHO, QUEUE)], |_| {}).await;
    let port = host.admin.unwrap().port();
    let get = |headers: &[(&str, String)]| {
        let mut request = host.client.get(host.admin_url("/events"));
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    for good in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "[::1]".to_owned(),
    ] {
        assert_eq!(
            get(&[("host", good.clone())]).await.0,
            StatusCode::OK,
            "{good}"
        );
    }
    assert_eq!(
        get(&[
            ("origin", format!("http://127.0.0.1:{port}")),
            ("sec-fetch-site", "same-origin".into())
        ])
        .await
        .0,
        StatusCode::OK
    );

    // DNS rebinding: the page's own name, pointed at 127.0.0.1.
    let (status, body) = get(&[("host", format!("rebound.example:{port}"))]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("rebound.example"), "{message}");
    assert!(message.contains("--admin-token"), "{message}");
    // Cross-site pages, by Origin or by Sec-Fetch-Site.
    for (name, value) in [
        ("origin", "https://evil.example".to_owned()),
        ("origin", "null".to_owned()),
        ("origin", "http://localhost:3000".to_owned()),
        ("sec-fetch-site", "cross-site".to_owned()),
    ] {
        let (status, body) = get(&[(name, value.clone())]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {value}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("cross-site request refused"),
            "{body}"
        );
    }
    // A cross-site POST reloads nothing.
    let response = host
        .client
        .post(host.admin_url("/plugins/reload"))
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    host.stop().await;
}

#[tokio::test]
async fn the_bearer_scheme_name_is_case_insensitive() {
    let host = TestHost::start_with_admin(&[plugin_with("q", ECHO, QUEUE)], |config| {
        config.admin_token = Some(Token::new("admin-s3cret"));
    })
    .await;
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let response = host
            .client
            .get(host.admin_url("/events"))
            .header("authorization", format!("{scheme} admin-s3cret"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
    }
    host.stop().await;
}

#[tokio::test]
async fn a_token_routes_secret_is_redacted_whatever_its_header_is_named() {
    let manifest = "mode = \"queue\"\n[verify]\nscheme = \"token\"\nheader = \"X-Shared-Key\"\nprefix = \"\"\nsecret = \"file:shared.secret\"\n";
    let host = TestHost::start_with_admin(
        &[plugin_with("q", ECHO, manifest).with_file("shared.secret", "plain-sh4red-key\n")],
        |_| {},
    )
    .await;
    let response = host
        .client
        .post(host.url("/hooks/q"))
        .header("x-github-delivery", "shared-1")
        .header("x-shared-key", "plain-sh4red-key")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let event = wait_for(&host, "shared-1", "done").await;
    assert_eq!(event["request"]["verified_by"], "token");
    let (status, event) = host.admin_get("/events/shared-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        json_header(&event["request"]["headers"], "x-shared-key").as_deref(),
        Some("[redacted]")
    );
    assert!(
        !event.to_string().contains("plain-sh4red-key"),
        "the secret is shown: {event}"
    );
    host.stop().await;
}
