//! Counts GitHub pushes per repository in the plugin's key-value store and
//! posts a one-line digest of each push to the chat webhook named by
//! `[config] chat_url` (forwarding is off while it is unset).
//!
//! Checking `X-Hub-Signature-256` is the host's job (`[verify]` in the
//! manifest); reaching the chat host is allowed by `[allow] http`.

use hookhost_sdk::{Delivery, Response, Result, config, http, info, kv, reject, retry};
use serde::Deserialize;
use serde_json::json;

struct PushDigest;

impl hookhost_sdk::Handler for PushDigest {
    fn handle(delivery: Delivery) -> Result<Response> {
        match delivery
            .header("x-github-event")
            .ok_or_else(|| reject("missing X-GitHub-Event header"))?
        {
            "ping" => Response::json(&json!({"pong": true})),
            "push" => push(&delivery),
            _ => Ok(Response::empty(204)),
        }
    }
}

hookhost_sdk::export!(PushDigest);

/// The parts of a `push` payload this plugin reads.
#[derive(Deserialize)]
struct Push {
    #[serde(rename = "ref")]
    git_ref: String,
    repository: Repository,
    #[serde(default)]
    pusher: Option<Pusher>,
    #[serde(default)]
    commits: Vec<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Deserialize)]
struct Pusher {
    name: String,
}

fn push(delivery: &Delivery) -> Result<Response> {
    let push: Push = delivery.json()?;
    let repo = &push.repository.full_name;
    let count_key = format!("pushes/{repo}");
    let last_key = format!("last-delivery/{repo}");

    // At least once: a delivery retried after the count was stored (say, the
    // chat call failed) must not count twice.
    let pushes = if kv::get_string(&last_key)?.as_deref() == Some(delivery.id.as_str()) {
        kv::get_string(&count_key)?
            .and_then(|n| n.parse().ok())
            .unwrap_or(1)
    } else {
        let pushes = kv::increment(&count_key, 1)?;
        kv::set_string(&last_key, &delivery.id)?;
        pushes
    };

    let by = push
        .pusher
        .as_ref()
        .map(|pusher| format!(" by {}", pusher.name))
        .unwrap_or_default();
    let digest = format!(
        "{repo}: push #{pushes} to {}{by} ({} commit{})",
        push.git_ref,
        push.commits.len(),
        if push.commits.len() == 1 { "" } else { "s" }
    );
    info!("{digest}");

    let forwarded = match config::get("chat_url") {
        None => false,
        Some(url) => {
            let response = http::post(&url)
                .json(&json!({ "text": digest }))
                .send()
                .map_err(|err| retry(format!("chat webhook failed: {err}")))?;
            if !response.is_success() {
                return Err(retry(format!("chat webhook answered {}", response.status)));
            }
            true
        }
    };
    Response::json(&json!({"repository": repo, "pushes": pushes, "forwarded": forwarded}))
}

#[cfg(test)]
mod tests {
    use hookhost_sdk::{Handler, Header};

    use super::*;

    fn delivery(id: &str, event: &str, body: &str) -> Delivery {
        Delivery {
            id: id.into(),
            route: "/hooks/push-digest".into(),
            method: "POST".into(),
            path: "/hooks/push-digest".into(),
            query: String::new(),
            headers: vec![Header::new("x-github-event", event)],
            body: body.as_bytes().to_vec(),
            received_at: 0,
            attempt: 1,
            verified_by: Some("github".into()),
        }
    }

    const PUSH: &str = r#"{"ref":"refs/heads/main","repository":{"full_name":"octo/hello"},
        "pusher":{"name":"mona"},"commits":[{"id":"1"},{"id":"2"}]}"#;

    fn pushes(response: &Response) -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(&response.body).unwrap()["pushes"].clone()
    }

    #[test]
    fn pushes_are_counted_per_repository_once_per_delivery() {
        // Natively the SDK's kv is an in-memory map and `chat_url` is unset.
        let first = PushDigest::handle(delivery("d1", "push", PUSH)).unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&first.body).unwrap(),
            json!({"repository": "octo/hello", "pushes": 1, "forwarded": false})
        );
        let retried = PushDigest::handle(delivery("d1", "push", PUSH)).unwrap();
        assert_eq!(pushes(&retried), 1, "a retry is not counted again");
        let second = PushDigest::handle(delivery("d2", "push", PUSH)).unwrap();
        assert_eq!(pushes(&second), 2);
        let other = PUSH.replace("octo/hello", "octo/other");
        let other = PushDigest::handle(delivery("d3", "push", &other)).unwrap();
        assert_eq!(pushes(&other), 1);
    }

    #[test]
    fn other_events_and_bad_bodies() {
        assert_eq!(
            PushDigest::handle(delivery("d", "issues", "{}"))
                .unwrap()
                .status,
            204
        );
        assert!(
            PushDigest::handle(delivery("d", "push", "{}"))
                .unwrap_err()
                .is_reject()
        );
    }
}
