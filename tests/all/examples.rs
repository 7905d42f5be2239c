//! The example plugins in plugins/ behave as their READMEs say.

use hookhost_test_artifacts::GITHUB;
use reqwest::StatusCode;

use crate::support::{TestHost, plugin_with};

/// The manifest exactly as shipped: it verifies with `file:github.secret`.
const GITHUB_MANIFEST: &str = include_str!("../../plugins/github/github.toml");
const SECRET: &str = "test-webhook-secret";

async fn start() -> TestHost {
    TestHost::start_with(
        &[plugin_with("github", GITHUB, GITHUB_MANIFEST)],
        |config| {
            std::fs::write(config.plugins_dir.join("github.secret"), SECRET).unwrap();
        },
    )
    .await
}

/// Posts `body` signed as GitHub signs it.
async fn github_event(host: &TestHost, event: &str, body: &str) -> reqwest::Response {
    let signer = hookhost::verify::Github::new(vec![SECRET.into()]);
    let signature =
        hookhost::verify::Scheme::sign(&signer, body.as_bytes(), &"/".parse().unwrap(), 0).unwrap();
    let mut request = host
        .client
        .post(host.url("/hooks/github"))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        .body(body.to_owned());
    for (name, value) in &signature {
        request = request.header(name.as_str(), value.as_bytes());
    }
    request.send().await.unwrap()
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
