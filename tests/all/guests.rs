//! Misbehaving plugins fail their own delivery only, with the documented
//! status, and never take the host or another route down.

use std::time::{Duration, Instant};

use hookhost_test_artifacts::{
    ECHO, GUEST_LOOPER, GUEST_MEMORY_HOG, GUEST_PANICKER, GUEST_REJECT, GUEST_RETRY,
};
use reqwest::StatusCode;

use crate::support::{TestHost, error_body, plugin, plugin_with};

#[tokio::test]
async fn retry_is_503_with_the_plugins_message() {
    let host = TestHost::start(&[plugin("retry", GUEST_RETRY)]).await;
    let response = host.post("/hooks/retry", "{}").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let body = error_body(response).await;
    assert_eq!(body["route"], "/hooks/retry");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("downstream unavailable"),
        "{body}"
    );
    host.stop().await;
}

#[tokio::test]
async fn reject_is_422_with_the_plugins_message() {
    let host = TestHost::start(&[plugin("reject", GUEST_REJECT)]).await;
    let response = host.post("/hooks/reject", "{}").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = error_body(response).await;
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unsupported event"),
        "{body}"
    );
    host.stop().await;
}

#[tokio::test]
async fn a_panicking_plugin_is_500_without_internals() {
    let host = TestHost::start(&[plugin("panicker", GUEST_PANICKER), plugin("echo", ECHO)]).await;
    let response = host.post("/hooks/panicker", "{}").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = error_body(response).await;
    assert_eq!(
        body["error"], "plugin failed",
        "no trap detail for the sender: {body}"
    );
    // The next delivery gets a fresh instance: the host and the plugin still work.
    assert_eq!(
        host.post("/hooks/panicker", "{}").await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        host.post("/hooks/echo", "ok").await.status(),
        StatusCode::OK
    );
    host.stop().await;
}

#[tokio::test]
async fn a_plugin_growing_memory_past_its_cap_is_500_and_others_answer() {
    let host = TestHost::start(&[
        plugin_with("hog", GUEST_MEMORY_HOG, "[limits]\nmemory = \"16MiB\"\n"),
        plugin("echo", ECHO),
    ])
    .await;
    let response = host.post("/hooks/hog", "{}").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = error_body(response).await;
    assert_eq!(body["error"], "plugin exceeded its memory limit");
    assert_eq!(
        host.post("/hooks/echo", "ok").await.status(),
        StatusCode::OK
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_plugin_times_out_without_slowing_another_route() {
    let timeout = Duration::from_millis(1500);
    let host = TestHost::start(&[
        plugin_with("looper", GUEST_LOOPER, "[limits]\ntimeout = \"1500ms\"\n"),
        plugin("echo", ECHO),
    ])
    .await;
    // Two loopers at once, so both worker threads have a busy guest.
    let started = Instant::now();
    let loopers: Vec<_> = (0..2)
        .map(|_| {
            let client = host.client.clone();
            let url = host.url("/hooks/looper");
            tokio::spawn(async move {
                let response = client.post(url).body("{}").send().await.unwrap();
                (response.status(), started.elapsed())
            })
        })
        .collect();

    // While they spin, echo keeps answering promptly.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut slowest = Duration::ZERO;
    while started.elapsed() < Duration::from_millis(1200) {
        let sent = Instant::now();
        let response = host.post("/hooks/echo", "still here").await;
        assert_eq!(response.status(), StatusCode::OK);
        slowest = slowest.max(sent.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        slowest < Duration::from_millis(500),
        "echo took {slowest:?} while loopers ran"
    );

    for looper in loopers {
        let (status, elapsed) = looper.await.unwrap();
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
        assert!(
            elapsed >= timeout,
            "answered before the timeout: {elapsed:?}"
        );
        assert!(
            elapsed < timeout + Duration::from_secs(1),
            "504 took {elapsed:?}"
        );
    }
    host.stop().await;
}

/// Every test guest exists to prove a behaviour: each must be used by a test.
#[test]
fn every_test_guest_has_a_test() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/all");
    let sources: String = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        // Files only: `support/` holds no tests.
        .filter(|path| path.is_file() && path.file_name().unwrap() != "main.rs")
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect();
    for (name, _) in hookhost_test_artifacts::GUESTS {
        let constant = format!("GUEST_{}", name.to_uppercase().replace('-', "_"));
        assert!(
            sources.matches(&constant).count() >= 2,
            "test guest `{name}` ({constant}) is not used by any test in tests/all"
        );
    }
}
