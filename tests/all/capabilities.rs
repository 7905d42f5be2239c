//! What a manifest grants a plugin, through the real host: its key-value
//! namespace (persistence, isolation, quotas), its `[config]`, and outbound
//! HTTP to the hosts it allows, and nowhere else.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookhost_test_artifacts::{GUEST_CONFIG, GUEST_FETCH, GUEST_KV, GUEST_LEGACY};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{
    Binary, TestHost, deploy, eventually, folders, plugin, plugin_with, with_nonce,
};

/// Runs `op` on `key` through the `kv` guest at `/hooks/NAME`.
async fn kv(host: &TestHost, name: &str, op: &str, key: &str, body: &str) -> Value {
    let response = host
        .post(&format!("/hooks/{name}?op={op}&key={key}"), body.to_owned())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn kv_counts_across_deliveries_and_a_host_restart() {
    let data = tempfile::tempdir().unwrap();
    let start = |data: std::path::PathBuf| async move {
        TestHost::start_with(&[plugin("counter", GUEST_KV)], move |config| {
            config.data_dir = data;
        })
        .await
    };
    let host = start(data.path().to_owned()).await;
    for expected in 1..=3 {
        assert_eq!(
            kv(&host, "counter", "incr", "deliveries", "").await,
            json!({"value": expected})
        );
    }
    host.stop().await;

    let host = start(data.path().to_owned()).await;
    assert_eq!(
        kv(&host, "counter", "incr", "deliveries", "").await,
        json!({"value": 4}),
        "the count survived the restart"
    );
    assert_eq!(
        kv(&host, "counter", "get", "deliveries", "").await,
        json!({"value": "4"}),
        "stored as decimal text"
    );
    host.stop().await;
}

#[tokio::test]
async fn kv_survives_a_hot_reload_of_the_same_name() {
    let host = TestHost::start_with_admin(&[plugin("counter", GUEST_KV)], |_| {}).await;
    kv(&host, "counter", "set", "cursor", "page-7").await;
    let sha = |host: &TestHost| {
        let (client, url) = (host.client.clone(), host.admin_url("/plugins"));
        async move {
            let plugins: Value = client.get(url).send().await.unwrap().json().await.unwrap();
            plugins["plugins"][0]["sha256"].as_str().unwrap().to_owned()
        }
    };
    let before = sha(&host).await;
    deploy(&host.plugins, "counter", &with_nonce(GUEST_KV, 6));
    eventually(Duration::from_secs(30), "the new version goes live", || {
        let sha = sha(&host);
        let before = before.clone();
        async move { (sha.await != before).then_some(()) }
    })
    .await;
    assert_eq!(
        kv(&host, "counter", "get", "cursor", "").await,
        json!({"value": "page-7"})
    );
    host.stop().await;
}

#[tokio::test]
async fn two_plugins_never_see_each_others_keys() {
    // The same component under two names: two namespaces.
    let host = TestHost::start(&[plugin("alpha", GUEST_KV), plugin("beta", GUEST_KV)]).await;
    kv(&host, "alpha", "set", "secret", "alpha's").await;
    kv(&host, "alpha", "incr", "n", "").await;
    assert_eq!(
        kv(&host, "beta", "get", "secret", "").await,
        json!({"value": null})
    );
    assert_eq!(kv(&host, "beta", "list", "", "").await, json!({"keys": []}));
    assert_eq!(
        kv(&host, "beta", "incr", "n", "").await,
        json!({"value": 1})
    );
    assert_eq!(
        kv(&host, "alpha", "list", "", "").await,
        json!({"keys": ["n", "secret"]})
    );
    assert_eq!(
        kv(&host, "alpha", "delete", "secret", "").await,
        json!({"deleted": true})
    );
    assert_eq!(
        kv(&host, "alpha", "delete", "secret", "").await,
        json!({"deleted": false})
    );
    host.stop().await;
}

#[tokio::test]
async fn kv_quotas_fail_the_write_with_a_clear_error() {
    let host = TestHost::start(&[plugin_with(
        "small",
        GUEST_KV,
        "[kv]\nmax_key = \"8B\"\nmax_value = \"16B\"\nmax_total = \"40B\"\n",
    )])
    .await;
    let refused = |outcome: &Value, kind: &str, field: &str| {
        assert_eq!(outcome["error"], kind, "{outcome}");
        let message = outcome["message"].as_str().unwrap();
        assert!(message.contains(field), "{outcome}");
    };
    let outcome = kv(&host, "small", "set", "much-too-long", "x").await;
    refused(&outcome, "invalid-key", "kv.max_key");
    let outcome = kv(&host, "small", "set", "k", "seventeen bytes!!").await;
    refused(&outcome, "quota-exceeded", "kv.max_value");
    assert_eq!(
        kv(&host, "small", "get", "k", "").await,
        json!({"value": null}),
        "a refused write changes nothing"
    );

    // 2 + 16 bytes each: two fit in 40, a third does not.
    kv(&host, "small", "set", "k1", "sixteen bytes!!!").await;
    kv(&host, "small", "set", "k2", "sixteen bytes!!!").await;
    let outcome = kv(&host, "small", "set", "k3", "sixteen bytes!!!").await;
    refused(&outcome, "quota-exceeded", "kv.max_total");
    // Replacing a value with one of the same size does not grow the total.
    assert_eq!(
        kv(&host, "small", "set", "k2", "SIXTEEN BYTES!!!").await,
        json!({"ok": true})
    );
    kv(&host, "small", "delete", "k1", "").await;
    assert_eq!(
        kv(&host, "small", "set", "k3", "sixteen bytes!!!").await,
        json!({"ok": true}),
        "a delete frees its bytes"
    );

    let outcome = kv(&host, "small", "incr", "k3", "").await;
    refused(&outcome, "not-a-number", "not a decimal integer");
    let outcome = kv(&host, "small", "get", "", "").await;
    refused(&outcome, "invalid-key", "empty");
    host.stop().await;
}

#[tokio::test]
async fn config_values_are_visible_with_env_and_file_references() {
    let host = TestHost::start_with(
        &[plugin_with(
            "settings",
            GUEST_CONFIG,
            // `cargo test` sets CARGO_PKG_NAME for the test process, which
            // is the host's process here.
            "[config]\nchannel = \"#deploys\"\npackage = \"env:CARGO_PKG_NAME\"\ntoken = \"file:token.txt\"\n",
        )],
        |config| {
            std::fs::write(config.plugins_dir.join("token.txt"), "tok-123\n").unwrap();
        },
    )
    .await;
    let response = host.post("/hooks/settings?key=token", "").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({
            "all": {"channel": "#deploys", "package": "hookhost", "token": "tok-123"},
            "requested": "tok-123",
        })
    );
    let body: Value = host
        .post("/hooks/settings?key=missing", "")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["requested"], Value::Null);
    host.stop().await;
}

#[tokio::test]
async fn config_secrets_never_reach_the_log() {
    let (_dir, plugins, data) = folders();
    let secret = "hunter2-config-secret";
    crate::support::install(
        &plugins,
        &[plugin_with(
            "settings",
            GUEST_CONFIG,
            "[config]\ntoken = \"env:HOOKHOST_TEST_CONFIG_TOKEN\"\ninline = \"inline-hunter2\"\n",
        )],
    );
    // A broken manifest's error must not quote a value either.
    crate::support::install(
        &plugins,
        &[plugin_with(
            "broken",
            GUEST_CONFIG,
            "[config]\ntoken = \"broken-hunter2\"\ntoken = \"again\"\n",
        )],
    );
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hookhost"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--max-concurrency", "4"])
        .arg("--plugins")
        .arg(&plugins)
        .arg("--data")
        .arg(&data)
        .arg("--cache-dir")
        .arg(crate::support::shared_cache())
        .env("HOOKHOST_TEST_CONFIG_TOKEN", secret);
    let mut host = Binary::start(command);
    let answer = reqwest::Client::new()
        .post(host.url("/hooks/settings"))
        .body("")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(answer.contains(secret), "the plugin sees it: {answer}");
    host.signal("TERM");
    host.wait(Duration::from_secs(10));
    let log = host.log();
    assert!(log.contains("plugin loaded"), "{log}");
    assert!(
        log.contains("broken.toml"),
        "the broken manifest is reported: {log}"
    );
    assert!(
        !log.contains("hunter2"),
        "a config value was logged:\n{log}"
    );
}

/// A one-connection-at-a-time HTTP/1.1 server on 127.0.0.1 that records
/// every request and answers each with `status` and `body` after `delay`.
pub(crate) struct LocalServer {
    pub(crate) addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    connections: Arc<Mutex<u32>>,
}

impl LocalServer {
    pub(crate) async fn start(status: u16, body: Vec<u8>, delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (record, count) = (seen.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                *count.lock().unwrap() += 1;
                let (record, body) = (record.clone(), body.clone());
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    // Head, then as much body as content-length says.
                    let head_end = loop {
                        let n = stream.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&buf[..n]);
                        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                            break end + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&request[..head_end]).to_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while request.len() < head_end + length {
                        let n = stream.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        request.extend_from_slice(&buf[..n]);
                    }
                    record
                        .lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&request).into_owned());
                    tokio::time::sleep(delay).await;
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(&body).await;
                });
            }
        });
        Self {
            addr,
            seen,
            connections,
        }
    }

    pub(crate) fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    fn connections(&self) -> u32 {
        *self.connections.lock().unwrap()
    }
}

/// Asks the `fetch` guest at `/hooks/NAME` to send `method` to `url`.
async fn fetch(host: &TestHost, name: &str, method: &str, url: &str) -> (StatusCode, Value) {
    let response = host
        .post(&format!("/hooks/{name}?method={method}"), url.to_owned())
        .await;
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn an_allowed_outbound_request_arrives() {
    let server = LocalServer::start(200, b"pong".to_vec(), Duration::ZERO).await;
    let manifest = format!("[allow]\nhttp = [\"{}\"]\n", server.addr);
    let host = TestHost::start(&[plugin_with("fetch", GUEST_FETCH, &manifest)]).await;
    let (status, outcome) = fetch(
        &host,
        "fetch",
        "POST",
        &format!("http://{}/chat?x=1", server.addr),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        outcome,
        json!({"status": 200, "body": "pong", "body_len": 4})
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0].starts_with("POST /chat?x=1 HTTP/1.1\r\n"),
        "{requests:?}"
    );
    assert!(
        requests[0]
            .to_lowercase()
            .contains("x-hookhost-test: fetch"),
        "{requests:?}"
    );
    assert!(
        requests[0].contains("\r\ncontent-length: 16\r\n"),
        "{requests:?}"
    );
    assert!(
        requests[0].ends_with("\r\n\r\nhello from fetch"),
        "{requests:?}"
    );
    host.stop().await;
}

#[tokio::test]
async fn an_outbound_request_to_a_host_not_granted_never_leaves() {
    let server = LocalServer::start(200, b"pong".to_vec(), Duration::ZERO).await;
    // Granted: another port on the same address, and a name.
    let manifest = "[allow]\nhttp = [\"127.0.0.1:1\", \"api.example.com\"]\n";
    let host =
        TestHost::start_with_admin(&[plugin_with("fetch", GUEST_FETCH, manifest)], |_| {}).await;
    for url in [
        format!("http://{}/secret?token=abc", server.addr),
        format!("http://localhost:{}/", server.addr.port()),
    ] {
        let (status, outcome) = fetch(&host, "fetch", "POST", &url).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(outcome["denied"], true, "{url}: {outcome}");
        assert!(
            outcome["error"].as_str().unwrap().contains("denied"),
            "{outcome}"
        );
    }
    assert_eq!(server.connections(), 0, "the local server was reached");
    let metrics = host
        .client
        .get(host.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("hookhost_outbound_requests_total{plugin=\"fetch\",outcome=\"denied\"} 2"),
        "{metrics}"
    );
    host.stop().await;
}

#[tokio::test]
async fn a_slow_server_is_cut_off_by_the_delivery_deadline() {
    let server = LocalServer::start(200, b"late".to_vec(), Duration::from_secs(30)).await;
    let manifest = format!(
        "[limits]\ntimeout = \"1s\"\nhttp_timeout = \"20s\"\n[allow]\nhttp = [\"{}\"]\n",
        server.addr
    );
    let host = TestHost::start(&[plugin_with("fetch", GUEST_FETCH, &manifest)]).await;
    let started = Instant::now();
    let (status, _) = fetch(&host, "fetch", "GET", &format!("http://{}/", server.addr)).await;
    let elapsed = started.elapsed();
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert_eq!(server.requests().len(), 1, "the request did go out");
    host.stop().await;
}

#[tokio::test]
async fn http_timeout_and_response_limit_fail_inside_the_guest() {
    let slow = LocalServer::start(200, b"late".to_vec(), Duration::from_secs(30)).await;
    let big = LocalServer::start(200, vec![b'x'; 4096], Duration::ZERO).await;
    let manifest = format!(
        "[limits]\nhttp_timeout = \"300ms\"\nhttp_response = \"1KiB\"\n[allow]\nhttp = [\"{}\", \"{}\"]\n",
        slow.addr, big.addr
    );
    let host = TestHost::start(&[plugin_with("fetch", GUEST_FETCH, &manifest)]).await;
    let started = Instant::now();
    let (status, outcome) = fetch(&host, "fetch", "GET", &format!("http://{}/", slow.addr)).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        outcome["error"].as_str().unwrap().contains("timed out"),
        "{outcome}"
    );
    assert_eq!(outcome["denied"], false);

    let (status, outcome) = fetch(&host, "fetch", "GET", &format!("http://{}/", big.addr)).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert!(
        outcome["error"]
            .as_str()
            .unwrap()
            .contains("body size exceeds limit: 1024"),
        "{outcome}"
    );
    host.stop().await;
}

#[tokio::test]
async fn a_plugin_built_against_wit_0_1_0_still_loads_and_answers() {
    let host = TestHost::start(&[plugin("legacy", GUEST_LEGACY)]).await;
    let response = host.post("/hooks/legacy", "").await;
    assert_eq!(response.status(), StatusCode::OK);
    let id = response
        .headers()
        .get("x-hookhost-delivery")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        response.text().await.unwrap(),
        format!("legacy 0.1.0 plugin: {id}")
    );
    host.stop().await;
}

#[tokio::test]
async fn bad_capability_manifests_are_refused_with_the_field_named() {
    for (manifest, field) in [
        (
            "[allow]\nhttp = [\"https://api.example.com\"]\n",
            "allow.http[0]",
        ),
        (
            "[allow]\nhttp = [\"ok.example.com\", \"*.com\"]\n",
            "allow.http[1]",
        ),
        ("[kv]\nmax_value = \"lots\"\n", "kv.max_value"),
        ("[limits]\nhttp_timeout = \"soon\"\n", "limits.http_timeout"),
        (
            "[config]\ntoken = \"env:HOOKHOST_TEST_SURELY_UNSET\"\n",
            "config.token",
        ),
    ] {
        let host =
            TestHost::start_with_admin(&[plugin_with("bad", GUEST_CONFIG, manifest)], |_| {}).await;
        let plugins: Value = host
            .client
            .get(host.admin_url("/plugins"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let error = &plugins["plugins"][0]["last_error"];
        assert!(
            error["reason"].as_str().unwrap_or_default().contains(field),
            "{manifest}: {plugins}"
        );
        assert_eq!(
            host.post("/hooks/bad", "").await.status(),
            StatusCode::NOT_FOUND
        );
        host.stop().await;
    }
}
