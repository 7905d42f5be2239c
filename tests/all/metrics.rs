//! `GET /metrics`: the Prometheus text format, parsed by an independent
//! parser, with numbers that move as traffic flows.

use std::time::Duration;

use hookhost_test_artifacts::{ECHO, GUEST_RETRY, GUEST_SLEEPER};
use prometheus_parse::{LineInfo, Scrape, Value};
use reqwest::StatusCode;

use crate::support::{TestHost, eventually, plugin, plugin_with, wait_for};

/// Scrapes `/metrics`, checking that every line is a comment or a sample
/// (the parser alone skips what it cannot read) and that the exposition ends
/// with OpenMetrics' `# EOF`.
pub(crate) async fn scrape(host: &TestHost) -> Scrape {
    let response = host
        .client
        .get(host.admin_url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    assert_eq!(text.lines().last(), Some("# EOF"), "{text}");
    for line in text.lines() {
        let parsed = LineInfo::parse(line);
        assert!(
            line.starts_with("# ") || matches!(parsed, LineInfo::Sample { .. }),
            "not a sample: {line:?}"
        );
    }
    Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).unwrap()
}

/// The value of the sample `name` whose labels include `labels`.
pub(crate) fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets
                .iter()
                .find(|b| b.less_than.is_infinite())
                .map_or(f64::NAN, |b| b.count),
            Value::Summary(_) => f64::NAN,
        })
}

#[tokio::test]
async fn metrics_parse_and_move_with_traffic() {
    let github = "[verify]\nscheme = \"github\"\nsecret = \"s3cret-for-tests\"\n";
    let limited = "[ingress]\nrate = \"1/h\"\n";
    let retry = "mode = \"queue\"\n[retry]\nmax_attempts = 2\nbase = \"50ms\"\nmax = \"100ms\"\n";
    let host = TestHost::start_with_admin(
        &[
            plugin("echo", ECHO),
            plugin_with("gh", ECHO, github),
            plugin_with("limited", ECHO, limited),
            plugin_with("retry", GUEST_RETRY, retry),
            plugin_with("slow", GUEST_SLEEPER, "mode = \"queue\"\n"),
        ],
        |_| {},
    )
    .await;

    let before = scrape(&host).await;
    let echo_200 = [("route", "/hooks/echo"), ("status", "200")];
    assert_eq!(value(&before, "hookhost_requests_total", &echo_200), None);
    assert_eq!(
        value(&before, "hookhost_plugin_loads_total", &[]),
        Some(5.0)
    );
    assert_eq!(
        value(&before, "hookhost_plugin_load_failures_total", &[]),
        Some(0.0)
    );
    assert_eq!(value(&before, "hookhost_queue_depth", &[]), Some(0.0));
    assert_eq!(
        value(
            &before,
            "hookhost_deliveries_total",
            &[("plugin", "echo"), ("outcome", "ok")]
        ),
        Some(0.0)
    );

    for _ in 0..2 {
        assert_eq!(
            host.post("/hooks/echo", "{}").await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        host.post("/hooks/gh", "{}").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        host.post("/hooks/limited", "{}").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        host.post("/hooks/limited", "{}").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        host.post("/hooks/nope", "{}").await.status(),
        StatusCode::NOT_FOUND
    );
    let queued = host.post_with_id("/hooks/retry", "retry-1", "{}").await;
    assert_eq!(queued.status(), StatusCode::ACCEPTED);
    wait_for(&host, "retry-1", "dead").await;
    let slow = host
        .post_with_id("/hooks/slow?ms=1500", "slow-1", "{}")
        .await;
    assert_eq!(slow.status(), StatusCode::ACCEPTED);

    let during = scrape(&host).await;
    let s = &during;
    assert_eq!(value(s, "hookhost_requests_total", &echo_200), Some(2.0));
    // The harness's own readiness probe was a 404 too: compare with before.
    let unmatched = [("route", "unmatched"), ("status", "404")];
    let unmatched_before = value(&before, "hookhost_requests_total", &unmatched).unwrap_or(0.0);
    assert_eq!(
        value(s, "hookhost_requests_total", &unmatched),
        Some(unmatched_before + 1.0)
    );
    assert_eq!(
        value(
            s,
            "hookhost_requests_total",
            &[("route", "/hooks/limited"), ("status", "429")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            s,
            "hookhost_verification_failures_total",
            &[("route", "/hooks/gh"), ("reason", "missing signature")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            s,
            "hookhost_rate_limited_total",
            &[("route", "/hooks/limited")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            s,
            "hookhost_plugin_call_duration_seconds",
            &[("plugin", "echo")]
        ),
        Some(2.0),
        "two calls in the +Inf bucket"
    );
    assert_eq!(
        value(
            s,
            "hookhost_plugin_call_duration_seconds_count",
            &[("plugin", "retry")]
        ),
        Some(2.0)
    );
    assert_eq!(value(s, "hookhost_retries_total", &[]), Some(1.0));
    assert_eq!(value(s, "hookhost_dead_letters_total", &[]), Some(1.0));
    assert_eq!(
        value(
            s,
            "hookhost_deliveries_total",
            &[("plugin", "echo"), ("outcome", "ok")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            s,
            "hookhost_deliveries_total",
            &[("plugin", "gh"), ("outcome", "refused")]
        ),
        Some(1.0)
    );
    // The sleeper's event is pending (being attempted) for 1.5 s.
    assert_eq!(value(s, "hookhost_queue_depth", &[]), Some(1.0));
    let age = value(s, "hookhost_queue_oldest_pending_age_seconds", &[]).unwrap();
    assert!((0.0..60.0).contains(&age), "{age}");

    wait_for(&host, "slow-1", "done").await;
    let after = eventually(Duration::from_secs(10), "queue drained", || {
        let host = &host;
        async move {
            let s = scrape(host).await;
            (value(&s, "hookhost_queue_depth", &[]) == Some(0.0)).then_some(s)
        }
    })
    .await;
    assert_eq!(
        value(&after, "hookhost_queue_oldest_pending_age_seconds", &[]),
        Some(0.0)
    );
    let slow_calls = value(
        &after,
        "hookhost_plugin_call_duration_seconds_sum",
        &[("plugin", "slow")],
    )
    .unwrap();
    assert!(slow_calls >= 1.4, "{slow_calls}");
    host.stop().await;
}
