//! The example plugins in plugins/ behave as their READMEs say.

use std::time::Duration;

use hookhost_test_artifacts::{GITHUB, PUSH_DIGEST};
use reqwest::StatusCode;

use crate::support::{LocalServer, TestHost, plugin_with};

/// The manifest exactly as shipped: it verifies with `file:github.secret`.
const GITHUB_MANIFEST: &str = include_str!("../../plugins/github/github.toml");
const SECRET: &str = "test-webhook-secret";

async fn start() -> TestHost {
    TestHost::start(&[
        plugin_with("github", GITHUB, GITHUB_MANIFEST).with_file("github.secret", SECRET)
    ])
    .await
}

/// Posts `body` to `/hooks/github` signed as GitHub signs it.
async fn github_event(host: &TestHost, event: &str, body: &str) -> reqwest::Response {
    signed_event(
        host,
        "/hooks/github",
        event,
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        body,
    )
    .await
}

/// Posts `body` to `path` as GitHub would: signed, with the event and
/// delivery id headers.
async fn signed_event(
    host: &TestHost,
    path: &str,
    event: &str,
    delivery: &str,
    body: &str,
) -> reqwest::Response {
    let signer = hookhost::verify::Github::new(vec![SECRET.into()]);
    host.signed_post(path, &signer, body)
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn github_refuses_unsigned_deliveries() {
    let host = start().await;
    let response = host
        .client
        .post(host.url("/hooks/github"))
        .header("x-github-event", "ping")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    host.stop().await;
}

#[tokio::test]
async fn github_answers_ping() {
    let host = start().await;
    let response = github_event(
        &host,
        "ping",
        r#"{"zen":"Keep it logically awesome.","hook_id":1}"#,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["pong"], true);
    host.stop().await;
}

#[tokio::test]
async fn github_summarises_a_push() {
    let host = start().await;
    let push = serde_json::json!({
        "ref": "refs/heads/main",
        "before": "0000000000000000000000000000000000000000",
        "after": "1111111111111111111111111111111111111111",
        "repository": {"full_name": "octo/hello", "name": "hello"},
        "commits": [
            {"id": "a", "message": "one"},
            {"id": "b", "message": "two"},
            {"id": "c", "message": "three"}
        ]
    });
    let response = github_event(&host, "push", &push.to_string()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["event"], "push");
    assert_eq!(body["ref"], "refs/heads/main");
    assert_eq!(body["commits"], 3);
    assert_eq!(body["repository"], "octo/hello");
    host.stop().await;
}

#[tokio::test]
async fn github_ignores_other_events_with_204() {
    let host = start().await;
    let response = github_event(&host, "issues", r#"{"action":"opened"}"#).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.bytes().await.unwrap().is_empty());
    host.stop().await;
}

#[tokio::test]
async fn github_rejects_a_malformed_push_with_422() {
    let host = start().await;
    let response = github_event(&host, "push", "{not json").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    host.stop().await;
}

/// The push-digest manifest as shipped, with `chat_url` set to `chat` and
/// `[allow] http` granting its address.
fn push_digest_manifest(chat: Option<std::net::SocketAddr>) -> String {
    let shipped = include_str!("../../plugins/push-digest/push-digest.toml");
    match chat {
        None => shipped.to_owned(),
        Some(addr) => shipped
            .replace(
                "# chat_url = \"http://127.0.0.1:9000/chat\"",
                &format!("chat_url = \"http://{addr}/chat\""),
            )
            .replace("\"127.0.0.1:9000\"", &format!("\"{addr}\"")),
    }
}

async fn start_push_digest(manifest: &str, data: Option<&std::path::Path>) -> TestHost {
    let data = data.map(std::path::Path::to_owned);
    TestHost::start_with(
        &[plugin_with("push-digest", PUSH_DIGEST, manifest)
            .with_file("push-digest.secret", SECRET)],
        move |config| {
            if let Some(data) = data {
                config.data_dir = data;
            }
        },
    )
    .await
}

fn push_body(repo: &str) -> String {
    serde_json::json!({
        "ref": "refs/heads/main",
        "repository": {"full_name": repo},
        "pusher": {"name": "mona"},
        "commits": [{"id": "a"}, {"id": "b"}]
    })
    .to_string()
}

/// Posts a signed push of two commits to `octo/hello` as delivery `delivery`.
async fn push(host: &TestHost, delivery: &str) -> reqwest::Response {
    signed_event(
        host,
        "/hooks/push-digest",
        "push",
        delivery,
        &push_body("octo/hello"),
    )
    .await
}

#[tokio::test]
async fn push_digest_counts_and_forwards_to_a_local_chat_server() {
    let chat = LocalServer::start(200, b"ok".to_vec(), Duration::ZERO).await;
    let data = tempfile::tempdir().unwrap();
    let manifest = push_digest_manifest(Some(chat.addr));
    let host = start_push_digest(&manifest, Some(data.path())).await;
    for (delivery, expected) in [("d-1", 1), ("d-2", 2)] {
        let response = push(&host, delivery).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            body,
            serde_json::json!({"repository": "octo/hello", "pushes": expected, "forwarded": true})
        );
    }
    host.stop().await;

    let requests = chat.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(
        requests[0].starts_with("POST /chat HTTP/1.1\r\n"),
        "{requests:?}"
    );
    assert!(
        requests[1]
            .ends_with(r#"{"text":"octo/hello: push #2 to refs/heads/main by mona (2 commits)"}"#),
        "{requests:?}"
    );

    // After a restart on the same data folder the count goes on.
    let host = start_push_digest(&manifest, Some(data.path())).await;
    let response = push(&host, "d-3").await;
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["pushes"], 3, "{body}");
    host.stop().await;
}

#[tokio::test]
async fn push_digest_only_counts_without_chat_url_and_retries_when_chat_fails() {
    // As shipped (what `make run` serves): no chat_url, so no forwarding.
    let host = start_push_digest(&push_digest_manifest(None), None).await;
    let response = push(&host, "d-1").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["forwarded"], false, "{body}");
    let response = signed_event(&host, "/hooks/push-digest", "ping", "d-2", "{}").await;
    assert_eq!(response.status(), StatusCode::OK);
    host.stop().await;

    // A chat webhook that answers 500: the delivery is worth retrying.
    let chat = LocalServer::start(500, b"down".to_vec(), Duration::ZERO).await;
    let host = start_push_digest(&push_digest_manifest(Some(chat.addr)), None).await;
    let response = push(&host, "d-1").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = crate::support::error_body(response).await;
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("chat webhook answered 500"),
        "{body}"
    );
    host.stop().await;
}
