//! Every delivery gets a fresh instance, whether it is instantiated when the
//! delivery arrives or was made ahead of time as the plugin's spare: no
//! state carries over, and a spare runs under its own delivery's deadline.
//! A plugin that opts into reuse (`[instance] max_deliveries`) keeps one
//! instance for that many deliveries, and never past a trap, an error or a
//! manifest change.

use std::time::Duration;

use hookhost_test_artifacts::{GUEST_COUNTER, GUEST_SLEEPER};
use reqwest::StatusCode;

use crate::support::{TestHost, eventually, plugin, plugin_with};

/// The `counter` guest, which counts in a global what its instance handled:
/// `1` on a fresh instance, more on one kept for reuse.
pub(crate) mod counter {
    use super::*;

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

    /// The answers of `count` deliveries to `path`, one after another.
    async fn answers(host: &TestHost, path: &str, count: usize) -> Vec<(StatusCode, String)> {
        let mut answers = Vec::new();
        for _ in 0..count {
            let response = host.post(path, "{}").await;
            answers.push((response.status(), response.text().await.unwrap()));
        }
        answers
    }

    fn counts(values: &[&str]) -> Vec<(StatusCode, String)> {
        values
            .iter()
            .map(|v| (StatusCode::OK, (*v).to_owned()))
            .collect()
    }

    #[tokio::test]
    async fn a_plugin_that_opts_into_reuse_keeps_an_instance_for_max_deliveries() {
        let manifest = "[instance]\nmax_deliveries = 3\n";
        let host = TestHost::start(&[plugin_with("counter", GUEST_COUNTER, manifest)]).await;
        assert_eq!(
            answers(&host, "/hooks/counter", 7).await,
            counts(&["1", "2", "3", "1", "2", "3", "1"])
        );
        host.stop().await;
    }

    #[tokio::test]
    async fn a_reused_instance_is_replaced_after_a_trap_or_an_error() {
        let manifest = "[instance]\nmax_deliveries = 100\n";
        let host = TestHost::start(&[plugin_with("counter", GUEST_COUNTER, manifest)]).await;
        for (fail, status) in [
            ("trap", StatusCode::INTERNAL_SERVER_ERROR),
            ("retry", StatusCode::SERVICE_UNAVAILABLE),
            ("reject", StatusCode::UNPROCESSABLE_ENTITY),
        ] {
            assert_eq!(
                answers(&host, "/hooks/counter", 2).await,
                counts(&["1", "2"]),
                "before ?fail={fail}"
            );
            let response = host
                .post(&format!("/hooks/counter?fail={fail}"), "{}")
                .await;
            assert_eq!(response.status(), status, "?fail={fail}");
        }
        assert_eq!(answers(&host, "/hooks/counter", 1).await, counts(&["1"]));
        host.stop().await;
    }

    #[tokio::test]
    async fn a_manifest_change_ends_the_reused_instance() {
        let host = TestHost::start(&[plugin_with(
            "counter",
            GUEST_COUNTER,
            "[instance]\nmax_deliveries = 100\n",
        )])
        .await;
        assert_eq!(
            answers(&host, "/hooks/counter", 2).await,
            counts(&["1", "2"])
        );
        // Same component, new manifest: the compiled component is kept, the
        // instance made under the old manifest's grants is not.
        std::fs::write(
            host.plugins.join("counter.toml"),
            "route = \"/counted\"\n[instance]\nmax_deliveries = 100\n",
        )
        .unwrap();
        let first = eventually(Duration::from_secs(10), "the new route answers", || async {
            let response = host.post("/counted", "{}").await;
            (response.status() == StatusCode::OK).then_some(response)
        })
        .await;
        assert_eq!(first.text().await.unwrap(), "1");
        assert_eq!(answers(&host, "/counted", 1).await, counts(&["2"]));
        host.stop().await;
    }

    #[tokio::test]
    async fn a_reused_instance_past_half_its_memory_cap_is_retired() {
        // A fresh counter holds a little over 1 MiB (its stack and data).
        let manifest = "[limits]\nmemory = \"8MiB\"\n[instance]\nmax_deliveries = 100\n";
        let host = TestHost::start(&[plugin_with("counter", GUEST_COUNTER, manifest)]).await;
        let mut seen = Vec::new();
        for query in ["", "?leak=1", "", "?leak=3", ""] {
            let response = host.post(&format!("/hooks/counter{query}"), "{}").await;
            seen.push((response.status(), response.text().await.unwrap()));
        }
        // Under half of 8 MiB it is kept; the 3 MiB leak takes it past half,
        // so that delivery answers and the next one gets a fresh instance.
        assert_eq!(seen, counts(&["1", "2", "3", "4", "1"]));
        host.stop().await;
    }
}

/// The `sleeper` guest, on a spare instance: it sleeps as asked, within its
/// own delivery's deadline.
pub(crate) mod sleeper {
    use super::*;

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
}
