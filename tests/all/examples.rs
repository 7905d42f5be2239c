//! The example plugins in plugins/ behave as their READMEs say.

use hookhost_test_artifacts::GITHUB;
use reqwest::StatusCode;

use crate::support::{TestHost, plugin_with};

const GITHUB_MANIFEST: &str = include_str!("../../plugins/github/github.toml");

async fn github_event(host: &TestHost, event: &str, body: &str) -> reqwest::Response {
    host.client
        .post(host.url("/hooks/github"))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn github_answers_ping() {
    let host = TestHost::start(&[plugin_with("github", GITHUB, GITHUB_MANIFEST)]).await;
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
    let host = TestHost::start(&[plugin_with("github", GITHUB, GITHUB_MANIFEST)]).await;
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
    let host = TestHost::start(&[plugin_with("github", GITHUB, GITHUB_MANIFEST)]).await;
    let response = github_event(&host, "issues", r#"{"action":"opened"}"#).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.bytes().await.unwrap().is_empty());
    host.stop().await;
}

#[tokio::test]
async fn github_rejects_a_malformed_push_with_422() {
    let host = TestHost::start(&[plugin_with("github", GITHUB, GITHUB_MANIFEST)]).await;
    let response = github_event(&host, "push", "{not json").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    host.stop().await;
}
