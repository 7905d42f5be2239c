//! What a manifest grants a plugin, through the real host: its key-value
//! namespace (persistence, isolation, quotas), its `[config]`, and outbound
//! HTTP to the hosts it allows, and nowhere else.

use std::time::{Duration, Instant};

use hookhost_test_artifacts::{GUEST_CONFIG, GUEST_FETCH, GUEST_KV, GUEST_LEGACY};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{
    Binary, LocalServer, TestHost, deploy, eventually, folders, plugin, plugin_with, serve_command,
    with_nonce,
};

/// The `kv` guest: a plugin's own key-value namespace, kept across deliveries,
/// restarts and reloads, and within its quotas.
pub(crate) mod kv {
    use super::*;

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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_increments_are_never_lost() {
        let host = TestHost::start(&[plugin("counter", GUEST_KV)]).await;
        let calls: Vec<_> = (0..24)
            .map(|_| {
                let (client, url) = (
                    host.client.clone(),
                    host.url("/hooks/counter?op=incr&key=hits"),
                );
                tokio::spawn(async move {
                    let outcome: Value =
                        client.post(url).send().await.unwrap().json().await.unwrap();
                    outcome["value"].as_i64().unwrap()
                })
            })
            .collect();
        let mut seen = Vec::new();
        for call in calls {
            seen.push(call.await.unwrap());
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            (1..=24).collect::<Vec<i64>>(),
            "each got its own count"
        );
        host.stop().await;
    }

    #[tokio::test]
    async fn kv_survives_a_hot_reload_of_the_same_name() {
        let host = TestHost::start_with_admin(&[plugin("counter", GUEST_KV)], |_| {}).await;
        kv(&host, "counter", "set", "cursor", "page-7").await;
        let sha = || async {
            let (_, plugins) = host.admin_get("/plugins").await;
            plugins["plugins"][0]["sha256"].as_str().unwrap().to_owned()
        };
        let before = sha().await;
        deploy(&host.plugins, "counter", &with_nonce(GUEST_KV, 6));
        eventually(
            Duration::from_secs(30),
            "the new version goes live",
            || async { (sha().await != before).then_some(()) },
        )
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
}

/// The `config` guest: the manifest's `[config]`, references resolved, and
/// never in the log.
pub(crate) mod config {
    use super::*;

    #[tokio::test]
    async fn config_values_are_visible_with_env_and_file_references() {
        let host = TestHost::start(&[plugin_with(
        "settings",
        GUEST_CONFIG,
        // `cargo test` sets CARGO_PKG_NAME for the test process, which
        // is the host's process here.
        "[config]\nchannel = \"#deploys\"\npackage = \"env:CARGO_PKG_NAME\"\ntoken = \"file:token.txt\"\n",
    )
    .with_file("token.txt", "tok-123\n")])
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
                "[config]\ntoken = \"env:PLUGIN_TEST_CONFIG_TOKEN\"\ninline = \"inline-hunter2\"\n",
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
        let mut command = serve_command(&plugins, &data);
        command
            .args(["--max-concurrency", "4", "--cache-dir"])
            .arg(crate::support::shared_cache())
            .env("PLUGIN_TEST_CONFIG_TOKEN", secret);
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
}

/// The `fetch` guest: outbound HTTP to the hosts `[allow] http` grants, and
/// nowhere else.
pub(crate) mod fetch {
    use super::*;

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
            TestHost::start_with_admin(&[plugin_with("fetch", GUEST_FETCH, manifest)], |_| {})
                .await;
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
            metrics.contains(
                "hookhost_outbound_requests_total{plugin=\"fetch\",outcome=\"denied\"} 2"
            ),
            "{metrics}"
        );
        host.stop().await;
    }

    /// SSRF: a granted *name* that resolves to loopback is refused before
    /// any connection, unless the grant is the IP itself or says
    /// `private = true`.
    #[tokio::test]
    async fn a_granted_name_resolving_to_loopback_is_refused_unless_granted_private() {
        let server = LocalServer::start(200, b"pong".to_vec(), Duration::ZERO).await;
        let port = server.addr.port();
        let by_name = format!("http://localhost:{port}/admin");
        let by_ip = format!("http://127.0.0.1:{port}/ok");
        let host = TestHost::start_with_admin(
            &[
                plugin_with(
                    "named",
                    GUEST_FETCH,
                    &format!("[allow]\nhttp = [\"localhost:{port}\", \"localhost\"]\n"),
                ),
                plugin_with(
                    "private",
                    GUEST_FETCH,
                    &format!(
                        "[allow]\nhttp = [{{ host = \"localhost:{port}\", private = true }}]\n"
                    ),
                ),
                plugin_with(
                    "literal",
                    GUEST_FETCH,
                    &format!("[allow]\nhttp = [\"127.0.0.1:{port}\"]\n"),
                ),
            ],
            |_| {},
        )
        .await;

        let (status, outcome) = fetch(&host, "named", "GET", &by_name).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            outcome["error"]
                .as_str()
                .unwrap()
                .contains("DestinationIpProhibited"),
            "{outcome}"
        );
        assert_eq!(server.connections(), 0, "the loopback server was reached");

        let (status, outcome) = fetch(&host, "private", "GET", &by_name).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            outcome["status"], 200,
            "private = true reaches it: {outcome}"
        );
        let (status, outcome) = fetch(&host, "literal", "GET", &by_ip).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            outcome["status"], 200,
            "the IP literal grant reaches it: {outcome}"
        );
        let requests = server.requests();
        assert_eq!(requests.len(), 2, "{requests:?}");
        assert!(
            requests[0].starts_with("GET /admin HTTP/1.1\r\n"),
            "{requests:?}"
        );
        assert!(
            requests[0]
                .to_lowercase()
                .contains(&format!("host: localhost:{port}")),
            "{requests:?}"
        );

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
            metrics.contains(
                "hookhost_outbound_requests_total{plugin=\"named\",outcome=\"denied\"} 1"
            ),
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
        let (status, outcome) =
            fetch(&host, "fetch", "GET", &format!("http://{}/", slow.addr)).await;
        assert_eq!(status, StatusCode::OK, "{outcome}");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(
            outcome["error"].as_str().unwrap().contains("timed out"),
            "{outcome}"
        );
        assert_eq!(outcome["denied"], false);

        let (status, outcome) =
            fetch(&host, "fetch", "GET", &format!("http://{}/", big.addr)).await;
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
    async fn a_denied_request_is_logged_with_plugin_and_host_but_not_the_query() {
        let server = LocalServer::start(200, b"pong".to_vec(), Duration::ZERO).await;
        let (_dir, plugins, data) = folders();
        crate::support::install(&plugins, &[plugin("fetch", GUEST_FETCH)]);
        let mut host = Binary::spawn(&plugins, &data, &[]);
        let url = format!("http://{}/hook?token=query-hunter2", server.addr);
        let outcome: Value = reqwest::Client::new()
            .post(host.url("/hooks/fetch?method=GET"))
            .body(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(outcome["denied"], true, "{outcome}");
        host.signal("TERM");
        host.wait(Duration::from_secs(10));
        let log = host.log();
        let line = log
            .lines()
            .find(|line| line.contains("outbound request denied"))
            .unwrap_or_else(|| panic!("no denial in the log:\n{log}"));
        assert!(line.contains("plugin=fetch"), "{line}");
        assert!(line.contains("host=127.0.0.1"), "{line}");
        assert!(!log.contains("hunter2"), "the query was logged:\n{log}");
        assert_eq!(server.connections(), 0);
    }
}

/// The `legacy` guest: a plugin built against the 0.1.0 contract.
pub(crate) mod legacy {
    use super::*;

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
        let (_, plugins) = host.admin_get("/plugins").await;
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
