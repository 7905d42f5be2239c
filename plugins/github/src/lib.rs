//! Handles GitHub webhooks: answers `ping`, summarises `push`, and acknowledges
//! every other event with `204 No Content`.
//!
//! Configure the webhook on GitHub with content type `application/json`.
//! Checking `X-Hub-Signature-256` is the host's job, not this plugin's.

use hookhost_sdk::{Delivery, Response, Result, info, reject};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

struct GitHub;

impl hookhost_sdk::Handler for GitHub {
    fn handle(delivery: Delivery) -> Result<Response> {
        let event = delivery
            .header("x-github-event")
            .ok_or_else(|| reject("missing X-GitHub-Event header"))?;
        match event {
            "ping" => ping(&delivery),
            "push" => push(&delivery),
            other => {
                info!("ignored `{other}` event");
                Ok(Response::empty(204))
            }
        }
    }
}

hookhost_sdk::export!(GitHub);

/// Sent once when the webhook is created; `zen` is a random GitHub koan.
#[derive(Deserialize)]
struct Ping {
    zen: Option<String>,
}

#[derive(Serialize)]
struct Pong {
    pong: bool,
    zen: Option<String>,
}

fn ping(delivery: &Delivery) -> Result<Response> {
    // A ping only checks the wiring: answer it even if the body is odd.
    let zen = delivery.json::<Ping>().ok().and_then(|ping| ping.zen);
    info!("ping: {}", zen.as_deref().unwrap_or("(no zen)"));
    Response::json(&Pong { pong: true, zen })
}

/// The parts of a `push` payload this plugin reads; serde skips the rest.
#[derive(Deserialize)]
struct Push<'a> {
    #[serde(rename = "ref")]
    git_ref: &'a str,
    /// Only counted, never looked into.
    commits: Vec<IgnoredAny>,
    repository: Repository<'a>,
}

#[derive(Deserialize)]
struct Repository<'a> {
    full_name: &'a str,
}

#[derive(Serialize)]
struct PushSummary<'a> {
    event: &'static str,
    #[serde(rename = "ref")]
    git_ref: &'a str,
    commits: usize,
    repository: &'a str,
}

fn push(delivery: &Delivery) -> Result<Response> {
    // A push we cannot read will not improve on a retry: `json` rejects it.
    let push: Push<'_> = delivery.json()?;
    let summary = PushSummary {
        event: "push",
        git_ref: push.git_ref,
        commits: push.commits.len(),
        repository: push.repository.full_name,
    };
    info!(
        "push to {} {}: {} commit(s)",
        summary.repository, summary.git_ref, summary.commits
    );
    Response::json(&summary)
}

#[cfg(test)]
mod tests {
    use hookhost_sdk::{Handler, Header};

    use super::*;

    fn delivery(event: Option<&str>, body: &str) -> Delivery {
        Delivery {
            id: "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
            route: "/hooks/github".into(),
            method: "POST".into(),
            path: "/hooks/github".into(),
            query: String::new(),
            headers: event
                .map(|event| Header::new("x-github-event", event))
                .into_iter()
                .collect(),
            body: body.as_bytes().to_vec(),
            received_at: 0,
            attempt: 1,
            verified_by: Some("github".into()),
        }
    }

    fn body_json(response: &Response) -> serde_json::Value {
        serde_json::from_slice(&response.body).unwrap()
    }

    #[test]
    fn ping_answers_pong_with_zen() {
        let response = GitHub::handle(delivery(
            Some("ping"),
            r#"{"zen":"Keep it logically awesome.","hook_id":1}"#,
        ))
        .unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(
            body_json(&response),
            serde_json::json!({"pong": true, "zen": "Keep it logically awesome."})
        );
    }

    #[test]
    fn push_is_summarised() {
        let body = r#"{"ref":"refs/heads/main","before":"a","after":"b",
            "commits":[{"id":"1","message":"x"},{"id":"2","message":"y"}],
            "repository":{"id":1,"full_name":"octo/hello","private":false}}"#;
        let response = GitHub::handle(delivery(Some("push"), body)).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(
            body_json(&response),
            serde_json::json!({"event":"push","ref":"refs/heads/main","commits":2,"repository":"octo/hello"})
        );
    }

    #[test]
    fn malformed_push_is_rejected() {
        for body in ["not json", r#"{"ref":"refs/heads/main","commits":[]}"#] {
            let err = GitHub::handle(delivery(Some("push"), body)).unwrap_err();
            assert!(err.is_reject(), "{body}: {err}");
        }
    }

    #[test]
    fn other_events_get_204_and_missing_event_is_rejected() {
        let response = GitHub::handle(delivery(Some("issues"), "{}")).unwrap();
        assert_eq!((response.status, response.body.len()), (204, 0));
        assert!(
            GitHub::handle(delivery(None, "{}"))
                .unwrap_err()
                .is_reject()
        );
    }
}
