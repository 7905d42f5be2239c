//! Every delivery gets a fresh instance, whether it is instantiated when the
//! delivery arrives or was made ahead of time as the plugin's spare: no
//! state carries over, and a spare runs under its own delivery's deadline.

use std::time::Duration;

use hookhost_test_artifacts::{GUEST_COUNTER, GUEST_SLEEPER};
use reqwest::StatusCode;

use crate::support::{TestHost, plugin, plugin_with};

#[tokio::test]
async fn no_delivery_sees_what_an_earlier_one_left_in_its_instance() {
    let host = TestHost::start(&[plugin("counter", GUEST_COUNTER)]).await;
    // One at a time with pauses, so that later deliveries find a spare made
    // after the one before...
    for _ in 0..5 {
        let response = host.post("/hooks/counter", "{}").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.text().await.unwrap(), "1");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ...and at once, so that most instantiate on arrival.
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let request = reqwest::Client::new()
            .post(host.url("/hooks/counter"))
            .body("{}");
        burst.spawn(async move {
            let response = request.send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        });
    }
    for answer in burst.join_all().await {
        assert_eq!(answer, (StatusCode::OK, "1".to_owned()));
    }
    host.stop().await;
}

#[tokio::test]
async fn a_spare_instance_runs_under_its_own_deliverys_deadline() {
    let manifest = "[limits]\ntimeout = \"1s\"\n";
    let host = TestHost::start(&[plugin_with("sleeper", GUEST_SLEEPER, manifest)]).await;
    let response = host.post("/hooks/sleeper?ms=0", "ping").await;
    assert_eq!(response.status(), StatusCode::OK);
    // The spare made after that delivery is now older than the timeout: a
    // deadline counted from its making would interrupt the next call at once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let response = host.post("/hooks/sleeper?ms=300", "ping").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "slept 300 ms");
    // And the deadline still holds for it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let response = host.post("/hooks/sleeper?ms=3000", "ping").await;
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    host.stop().await;
}
