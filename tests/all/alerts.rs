//! Alert rules (`[[alert]]` in hookhost.toml): a firing rule posts one
//! Standard Webhooks–signed alert, then one `resolved` when it clears, and
//! `/metrics` shows its state; invalid rules are refused with the file, the
//! field and the fix.

use std::time::Duration;

use hookhost::secret::Secret;
use hookhost::verify::{Input, Scheme as _, StandardWebhooks};
use hookhost_test_artifacts::GUEST_REJECT;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{LocalServer, TestHost, eventually, folders, plugin_with, serve_command};

const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The rules in `text` (a hookhost.toml), read as `serve` reads them.
fn rules(dir: &std::path::Path, text: &str) -> Vec<hookhost::config::AlertRule> {
    let file = dir.join("hookhost.toml");
    std::fs::write(&file, text).unwrap();
    let table: toml::Table = toml::from_str(text).unwrap();
    hookhost::config::alert::parse_all(&file, table["alert"].clone())
        .unwrap()
        .iter()
        .map(|spec| spec.resolve(&file).unwrap())
        .collect()
}

/// A request as [`LocalServer`] recorded it: headers and body.
fn parse(request: &str) -> (http::HeaderMap, Vec<u8>) {
    let (head, body) = request.split_once("\r\n\r\n").unwrap();
    let mut headers = http::HeaderMap::new();
    for line in head.lines().skip(1) {
        let (name, value) = line.split_once(':').unwrap();
        headers.append(
            http::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            http::HeaderValue::from_str(value.trim()).unwrap(),
        );
    }
    (headers, body.as_bytes().to_vec())
}

/// Checks the signature with the host's own Standard Webhooks verifier
/// and returns the alert.
fn verified(request: &str) -> Value {
    let (headers, body) = parse(request);
    let verifier = StandardWebhooks::new(vec![Secret::new(KEY)], Duration::from_secs(300)).unwrap();
    let uri: http::Uri = "/alerts".parse().unwrap();
    let now = crate::support::unix_now();
    verifier
        .verify(&Input::post(&headers, &body, &uri, now))
        .unwrap_or_else(|refusal| panic!("alert signature refused: {refusal:?}\n{request}"));
    let mut tampered = body.clone();
    tampered.push(b' ');
    assert!(
        verifier
            .verify(&Input::post(&headers, &tampered, &uri, now))
            .is_err()
    );
    serde_json::from_slice(&body).unwrap()
}

async fn metric(host: &TestHost, line: &str) -> bool {
    let text = host
        .client
        .get(host.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines().any(|l| l == line)
}

#[tokio::test]
async fn a_dead_letter_rule_posts_one_signed_alert_then_one_resolved() {
    let receiver = LocalServer::start(200, b"ok".to_vec(), Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("alert.key");
    std::fs::write(&key, format!("{KEY}\n")).unwrap();
    let rules = rules(
        dir.path(),
        &format!(
            "[[alert]]\nname = \"dead-letters\"\nkind = \"dead_letters\"\nroute = \"/hooks/reject\"\n\
             window = \"3s\"\nthreshold = 1\nurl = \"http://{}/alerts\"\nsecret = \"file:{}\"\n",
            receiver.addr,
            key.display()
        ),
    );
    let host = TestHost::start_with_admin(
        &[plugin_with("reject", GUEST_REJECT, "mode = \"queue\"\n")],
        |config| config.alerts = rules,
    )
    .await;
    assert!(metric(&host, "hookhost_alert_firing{rule=\"dead-letters\"} 0").await);
    let response = host.post_with_id("/hooks/reject", "doomed-1", "{}").await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);

    let firing = eventually(Duration::from_secs(20), "the firing alert", || {
        let requests = receiver.requests();
        async move { requests.first().cloned() }
    })
    .await;
    assert!(firing.starts_with("POST /alerts HTTP/1.1\r\n"), "{firing}");
    let alert = verified(&firing);
    assert_eq!(alert["type"], "alert.firing", "{alert}");
    assert_eq!(alert["data"]["rule"], "dead-letters");
    assert_eq!(alert["data"]["kind"], "dead_letters");
    assert_eq!(alert["data"]["route"], "/hooks/reject");
    assert_eq!(alert["data"]["value"], 1);
    assert_eq!(alert["data"]["threshold"], 1);
    assert_eq!(alert["data"]["window"], "3s");
    assert!(alert["data"]["since"].is_string(), "{alert}");
    assert!(metric(&host, "hookhost_alert_firing{rule=\"dead-letters\"} 1").await);

    // The event stays dead, but out of the window: the rule clears.
    let resolved = eventually(Duration::from_secs(20), "the resolved alert", || {
        let requests = receiver.requests();
        async move { requests.get(1).cloned() }
    })
    .await;
    let resolved = verified(&resolved);
    assert_eq!(resolved["type"], "alert.resolved", "{resolved}");
    assert_eq!(resolved["data"]["value"], 0);
    assert_eq!(resolved["data"]["since"], alert["data"]["since"]);
    assert!(metric(&host, "hookhost_alert_firing{rule=\"dead-letters\"} 0").await);
    assert!(
        metric(
            &host,
            "hookhost_alert_posts_total{rule=\"dead-letters\",outcome=\"ok\"} 2"
        )
        .await
    );
    // Exactly once each: nothing more while it stays clear.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.requests().len(), 2, "{:?}", receiver.requests());
    host.stop().await;
}

#[test]
fn an_invalid_rule_is_refused_naming_the_file_the_field_and_the_fix() {
    let (_tmp, plugins, data) = folders();
    let file = plugins.parent().unwrap().join("hookhost.toml");
    std::fs::write(
        &file,
        "[[alert]]\nname = \"age\"\nkind = \"queue_age\"\nurl = \"https://chat.example/x\"\nsecret = \"env:K\"\n",
    )
    .unwrap();
    let output = serve_command(&plugins, &data)
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{}: [[alert]] `age`: field `threshold`: `queue_age` needs the oldest pending age that fires, e.g. threshold = \"5m\"",
            file.display()
        )),
        "{stderr}"
    );
}

/// `docs/prometheus-alerts.yml`: `promtool check rules` passes (when
/// promtool is installed: `make test` installs it, CI requires it), and
/// every `hookhost_*` metric its expressions use is one `/metrics` exports.
#[tokio::test]
async fn the_shipped_prometheus_rules_are_valid_and_use_exported_metrics() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/prometheus-alerts.yml");
    let rules = std::fs::read_to_string(path).unwrap();
    match std::process::Command::new("promtool")
        .args(["check", "rules", path])
        .output()
    {
        Ok(output) => assert!(
            output.status.success(),
            "promtool check rules {path}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(err) => {
            assert!(
                std::env::var_os("HOOKHOST_REQUIRE_PROMTOOL").is_none(),
                "promtool is required here: {err}"
            );
            eprintln!("promtool not found ({err}): checking metric names only");
        }
    }

    // A rule that fires and posts, so every alert metric has a sample.
    let receiver = LocalServer::start(200, b"ok".to_vec(), Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("alert.key");
    std::fs::write(&key, KEY).unwrap();
    let rules_config = self::rules(
        dir.path(),
        &format!(
            "[[alert]]\nname = \"dead\"\nkind = \"dead_letters\"\nwindow = \"1m\"\n\
             url = \"http://{}/alerts\"\nsecret = \"file:{}\"\n",
            receiver.addr,
            key.display()
        ),
    );
    let host = TestHost::start_with_admin(
        &[plugin_with("reject", GUEST_REJECT, "mode = \"queue\"\n")],
        |config| config.alerts = rules_config,
    )
    .await;
    host.post("/hooks/reject", "{}").await;
    let exported = eventually(Duration::from_secs(20), "an alert post", || async {
        let text = host
            .client
            .get(host.admin_url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.contains("hookhost_alert_posts_total{").then_some(text)
    })
    .await;
    host.stop().await;
    let mut used: Vec<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("hookhost_"))
        .collect();
    used.sort_unstable();
    used.dedup();
    assert!(used.len() >= 5, "{used:?}");
    for name in used {
        let family = ["_total", "_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        assert!(
            exported.contains(&format!("# TYPE {family} ")),
            "{name} (in {path}) is not exported by /metrics:\n{exported}"
        );
    }
}
