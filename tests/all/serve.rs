//! The request path: routing, methods, body limits, and what reaches a plugin.

use hookhost_test_artifacts::{ECHO, GUEST_INSPECT};
use reqwest::StatusCode;

use crate::support::{TestHost, error_body, folders, install, json_header, plugin, plugin_with};

/// Deterministic pseudo-random bytes (xorshift), covering every byte value.
fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

#[tokio::test]
async fn echo_returns_a_binary_body_byte_for_byte() {
    let host = TestHost::start(&[plugin("echo", ECHO)]).await;
    let body = random_bytes(100 * 1024, 0x9e37_79b9_7f4a_7c15);
    let response = host
        .client
        .post(host.url("/hooks/echo"))
        .header("content-type", "application/octet-stream")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    assert!(response.headers().contains_key("x-hookhost-delivery"));
    let echoed = response.bytes().await.unwrap();
    assert_eq!(echoed.len(), body.len());
    assert!(echoed == body, "echoed body differs from the one sent");
    host.stop().await;
}

#[tokio::test]
async fn echo_keeps_the_content_type() {
    let host = TestHost::start(&[plugin("echo", ECHO)]).await;
    let response = host
        .client
        .post(host.url("/hooks/echo"))
        .header("content-type", "application/json")
        .body(r#"{"hello":"world"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.text().await.unwrap(), r#"{"hello":"world"}"#);
    host.stop().await;
}

#[tokio::test]
async fn unknown_route_is_404() {
    let host = TestHost::start(&[plugin("echo", ECHO)]).await;
    for path in ["/hooks/nope", "/", "/hooks/echo/extra", "/hooks"] {
        let response = host.post(path, "x").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body = error_body(response).await;
        assert_eq!(body["route"], path);
    }
    host.stop().await;
}

#[tokio::test]
async fn methods_other_than_post_are_405() {
    let host = TestHost::start(&[plugin("echo", ECHO)]).await;
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        let response = host
            .client
            .request(method.parse().unwrap(), host.url("/hooks/echo"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}"
        );
        assert_eq!(response.headers()["allow"], "POST");
        error_body(response).await;
    }
    host.stop().await;
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let host = TestHost::start(&[plugin("echo", ECHO)]).await;
    // Declared length over the limit: refused before the body is read.
    let response = host.post("/hooks/echo", vec![7u8; 2 * 1024 * 1024]).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    error_body(response).await;

    // Chunked, no declared length: refused while reading.
    assert_eq!(
        chunked_post_status(host.addr, "/hooks/echo", 32, 64 * 1024).await,
        413
    );

    // Exactly at the limit is fine.
    let response = host.post("/hooks/echo", vec![7u8; 1024 * 1024]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().len(), 1024 * 1024);
    host.stop().await;
}

/// POSTs `chunks` chunks of `size` bytes with `Transfer-Encoding: chunked`
/// (no declared length) over a raw socket and returns the answer's status.
async fn chunked_post_status(
    addr: std::net::SocketAddr,
    path: &str,
    chunks: usize,
    size: usize,
) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'a'; size];
    for _ in 0..chunks {
        let frame = format!("{size:x}\r\n");
        // The host may answer and close before we finish: stop writing then.
        if stream.write_all(frame.as_bytes()).await.is_err()
            || stream.write_all(&chunk).await.is_err()
            || stream.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"))
}

#[tokio::test]
async fn max_body_flag_lowers_the_limit() {
    let host = TestHost::start_with(&[plugin("echo", ECHO)], |config| config.max_body = 1000).await;
    assert_eq!(
        host.post("/hooks/echo", vec![0u8; 1000]).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        host.post("/hooks/echo", vec![0u8; 1001]).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    host.stop().await;
}

/// The `inspect` guest, which answers with the delivery it received: what
/// reaches a plugin, as sent.
pub(crate) mod inspect {
    use super::*;

    #[tokio::test]
    async fn method_path_query_headers_and_body_reach_the_plugin_intact() {
        let host = TestHost::start(&[plugin("inspect", GUEST_INSPECT)]).await;
        let body = random_bytes(4096, 42);
        let response = host
            .client
            .post(host.url("/hooks/inspect?a=1&b=two%20words&a=3"))
            .header("X-Custom", "Value With Spaces")
            .header("x-multi", "one")
            .header("x-github-delivery", "delivery-123")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let seen: serde_json::Value = response.json().await.unwrap();
        assert_eq!(seen["id"], "delivery-123");
        assert_eq!(seen["route"], "/hooks/inspect");
        assert_eq!(seen["method"], "POST");
        assert_eq!(seen["path"], "/hooks/inspect");
        assert_eq!(seen["query"], "a=1&b=two%20words&a=3");
        assert_eq!(seen["attempt"], 1);
        assert_eq!(seen["verified_by"], serde_json::Value::Null);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let received_at = seen["received_at"].as_u64().unwrap();
        assert!(
            received_at <= now_ms && now_ms - received_at < 60_000,
            "{received_at} vs {now_ms}"
        );
        let header = |name: &str| json_header(&seen["headers"], name);
        assert_eq!(
            header("x-custom").as_deref(),
            Some("Value With Spaces"),
            "names are lower-case"
        );
        assert_eq!(header("x-multi").as_deref(), Some("one"));
        assert_eq!(seen["body_len"], body.len());
        assert_eq!(seen["body_hex"].as_str().unwrap(), hex(&body));
        host.stop().await;
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[tokio::test]
    async fn host_makes_a_delivery_id_when_the_sender_has_none() {
        let host = TestHost::start(&[plugin("inspect", GUEST_INSPECT)]).await;
        let first = host.post("/hooks/inspect", "a").await;
        let header_id = first.headers()["x-hookhost-delivery"]
            .to_str()
            .unwrap()
            .to_owned();
        let first: serde_json::Value = first.json().await.unwrap();
        let second: serde_json::Value =
            host.post("/hooks/inspect", "a").await.json().await.unwrap();
        assert_eq!(first["id"], header_id.as_str());
        assert!(!header_id.is_empty());
        assert_ne!(first["id"], second["id"]);
        host.stop().await;
    }
}

#[tokio::test]
async fn manifest_route_replaces_the_default_route() {
    let host = TestHost::start(&[plugin_with("echo", ECHO, "route = \"/incoming/echo\"\n")]).await;
    assert_eq!(
        host.post("/incoming/echo", "hi").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        host.post("/hooks/echo", "hi").await.status(),
        StatusCode::NOT_FOUND
    );
    host.stop().await;
}

#[tokio::test]
async fn a_bad_manifest_skips_only_that_plugin() {
    let host = TestHost::start(&[
        plugin_with("broken", ECHO, "route = \"/x\"\nunknown_key = 1\n"),
        plugin("echo", ECHO),
    ])
    .await;
    assert_eq!(host.post("/x", "hi").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        host.post("/hooks/broken", "hi").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        host.post("/hooks/echo", "hi").await.status(),
        StatusCode::OK
    );
    host.stop().await;
}

#[tokio::test]
async fn two_plugins_on_one_route_keep_the_first() {
    let host = TestHost::start(&[
        plugin_with("a-echo", ECHO, "route = \"/shared\"\n"),
        plugin_with("b-inspect", GUEST_INSPECT, "route = \"/shared\"\n"),
    ])
    .await;
    let response = host.post("/shared", "plain").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.text().await.unwrap(),
        "plain",
        "a-echo (first by name) serves"
    );
    host.stop().await;
}

#[tokio::test]
async fn non_component_files_are_refused_and_others_serve() {
    let (_dir, plugins, _data) = folders();
    // An empty core module: valid WebAssembly, but not a component.
    std::fs::write(plugins.join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(plugins.join("junk.wasm"), b"not wasm at all").unwrap();
    std::fs::write(
        plugins.join("half.wasm"),
        &std::fs::read(ECHO).unwrap()[..2000],
    )
    .unwrap();
    install(&plugins, &[plugin("echo", ECHO)]);
    let host = TestHost::start_with(&[], |config| config.plugins_dir = plugins.clone()).await;
    for path in ["/hooks/core", "/hooks/junk", "/hooks/half"] {
        assert_eq!(
            host.post(path, "x").await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert_eq!(host.post("/hooks/echo", "x").await.status(), StatusCode::OK);
    host.stop().await;
}

#[tokio::test]
async fn http2_prior_knowledge_is_served() {
    let host = TestHost::start(&[plugin("echo", ECHO)]).await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = client
        .post(host.url("/hooks/echo"))
        .body("over h2")
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.text().await.unwrap(), "over h2");
    host.stop().await;
}
