//! OpenTelemetry traces: the real binary exports its spans over OTLP to a
//! receiver in the test ([`OtlpReceiver`], decoding the official protobuf
//! types): a delivery joins its sender's trace, with children for the
//! plugin call and each outbound request (which carries `traceparent`); a
//! queued event's attempt links to its acceptance; gRPC works too.

use std::time::Duration;

use hookhost_test_artifacts::{ECHO, GUEST_FETCH};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use crate::support::{
    Binary, LocalServer, OtlpReceiver, attribute, eventually, folders, install, plugin, plugin_with,
};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SENDER_SPAN: &str = "00f067aa0ba902b7";

fn traceparent() -> String {
    format!("00-{TRACE_ID}-{SENDER_SPAN}-01")
}

fn named<'a>(spans: &'a [(String, Span)], name: &str) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|(_, span)| span.name == name)
        .map(|(_, span)| span)
        .collect()
}

/// The one span called `name`, or a panic listing what arrived.
fn one<'a>(spans: &'a [(String, Span)], name: &str) -> &'a Span {
    let found = named(spans, name);
    assert_eq!(
        found.len(),
        1,
        "spans called {name}: {found:?}; all: {:?}",
        spans.iter().map(|(_, s)| &s.name).collect::<Vec<_>>()
    );
    found[0]
}

/// `hookhost serve` exporting to `receiver` (`protocol`: the value of
/// `OTEL_EXPORTER_OTLP_PROTOCOL`, or none).
fn traced_host(
    plugins: &std::path::Path,
    data: &std::path::Path,
    receiver: &OtlpReceiver,
    protocol: Option<&str>,
) -> Binary {
    let mut command = Binary::command(plugins, data, &[]);
    command
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_SERVICE_NAME", "hookhost-under-test")
        // Export every 100 ms rather than every 5 s.
        .env("OTEL_BSP_SCHEDULE_DELAY", "100");
    if let Some(protocol) = protocol {
        command.env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol);
    }
    Binary::start(command)
}

/// Stops `host` with SIGTERM: what is left is flushed at exit.
fn stop(mut host: Binary) -> String {
    host.signal("TERM");
    assert!(
        host.wait(Duration::from_secs(30)).success(),
        "{}",
        host.log()
    );
    host.log()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_with_a_traceparent_joins_the_senders_trace() {
    let receiver = OtlpReceiver::start().await;
    let server = LocalServer::start(200, b"pong".to_vec(), Duration::ZERO).await;
    let (_tmp, plugins, data) = folders();
    let manifest = format!("[allow]\nhttp = [\"{}\"]\n", server.addr);
    install(&plugins, &[plugin_with("fetch", GUEST_FETCH, &manifest)]);
    let host = tokio::task::block_in_place(|| traced_host(&plugins, &data, &receiver, None));

    let response = reqwest::Client::new()
        .post(host.url("/hooks/fetch?method=POST"))
        .header("traceparent", traceparent())
        .body(format!("http://{}/downstream", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let outcome: serde_json::Value = response.json().await.unwrap();
    assert_eq!(outcome["status"], 200, "{outcome}");
    let log = tokio::task::block_in_place(|| stop(host));

    let spans = receiver.spans();
    assert_eq!(receiver.requests().first(), Some(&"http"), "{log}");
    assert!(
        spans
            .iter()
            .all(|(service, _)| service == "hookhost-under-test"),
        "{spans:?}"
    );
    let delivery = one(&spans, "delivery");
    assert_eq!(
        hex::encode(&delivery.trace_id),
        TRACE_ID,
        "joins the sender's trace"
    );
    assert_eq!(hex::encode(&delivery.parent_span_id), SENDER_SPAN);
    assert_eq!(delivery.kind, SpanKind::Server as i32);
    for (key, value) in [
        ("route", "/hooks/fetch"),
        ("plugin", "fetch"),
        ("scheme", "none"),
        ("mode", "sync"),
        ("status", "200"),
        ("attempt", "1"),
    ] {
        assert_eq!(
            attribute(delivery, key).as_deref(),
            Some(value),
            "{key}: {delivery:?}"
        );
    }
    assert_eq!(attribute(delivery, "version").map(|v| v.len()), Some(12));
    assert!(attribute(delivery, "id").is_some_and(|id| !id.is_empty()));

    let verify = one(&spans, "verify");
    assert_eq!(verify.parent_span_id, delivery.span_id);
    let call = one(&spans, "plugin.call");
    assert_eq!(call.trace_id, delivery.trace_id);
    assert_eq!(
        call.parent_span_id, delivery.span_id,
        "a child of the delivery"
    );
    let outbound = one(&spans, "outbound");
    assert_eq!(outbound.parent_span_id, call.span_id, "a child of the call");
    assert_eq!(outbound.kind, SpanKind::Client as i32);
    assert_eq!(
        attribute(outbound, "http.response.status_code").as_deref(),
        Some("200")
    );

    // The downstream got the outbound span's context.
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let sent = format!(
        "traceparent: 00-{TRACE_ID}-{}-01",
        hex::encode(&outbound.span_id)
    );
    assert!(
        requests[0].to_lowercase().contains(&sent),
        "{sent} in {requests:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_attempt_links_to_its_acceptance() {
    let receiver = OtlpReceiver::start().await;
    let (_tmp, plugins, data) = folders();
    install(&plugins, &[plugin_with("q", ECHO, "mode = \"queue\"\n")]);
    let host = tokio::task::block_in_place(|| traced_host(&plugins, &data, &receiver, None));

    let response = reqwest::Client::new()
        .post(host.url("/hooks/q"))
        .header("traceparent", traceparent())
        .header("idempotency-key", "queued-1")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    eventually(Duration::from_secs(20), "the attempt's span", || {
        let spans = receiver.spans();
        async move { (!named(&spans, "attempt").is_empty()).then_some(()) }
    })
    .await;
    tokio::task::block_in_place(|| stop(host));

    let spans = receiver.spans();
    let accepted = one(&spans, "delivery");
    assert_eq!(hex::encode(&accepted.trace_id), TRACE_ID);
    assert_eq!(attribute(accepted, "status").as_deref(), Some("202"));
    assert_eq!(attribute(accepted, "mode").as_deref(), Some("queue"));
    let write = one(&spans, "inbox.write");
    assert_eq!(write.parent_span_id, accepted.span_id);

    let attempt = one(&spans, "attempt");
    assert_eq!(attribute(attempt, "id").as_deref(), Some("queued-1"));
    assert_eq!(attribute(attempt, "attempt").as_deref(), Some("1"));
    assert_ne!(
        attempt.trace_id, accepted.trace_id,
        "an attempt starts a trace"
    );
    assert_eq!(attempt.links.len(), 1, "{attempt:?}");
    assert_eq!(attempt.links[0].trace_id, accepted.trace_id);
    assert_eq!(
        attempt.links[0].span_id, accepted.span_id,
        "links to the acceptance"
    );
    let call = one(&spans, "plugin.call");
    assert_eq!(call.parent_span_id, attempt.span_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_export_over_grpc_too() {
    let receiver = OtlpReceiver::start().await;
    let (_tmp, plugins, data) = folders();
    install(&plugins, &[plugin("echo", ECHO)]);
    let host =
        tokio::task::block_in_place(|| traced_host(&plugins, &data, &receiver, Some("grpc")));
    let response = reqwest::Client::new()
        .post(host.url("/hooks/echo"))
        .header("traceparent", traceparent())
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let log = tokio::task::block_in_place(|| stop(host));
    assert!(
        !receiver.requests().is_empty() && receiver.requests().iter().all(|t| *t == "grpc"),
        "{:?}\n{log}",
        receiver.requests()
    );
    let spans = receiver.spans();
    let delivery = one(&spans, "delivery");
    assert_eq!(hex::encode(&delivery.trace_id), TRACE_ID);
    assert_eq!(one(&spans, "plugin.call").parent_span_id, delivery.span_id);
}

#[test]
fn without_an_endpoint_nothing_is_exported_and_a_bad_one_is_refused() {
    let (_tmp, plugins, data) = folders();
    let output = crate::support::serve_command(&plugins, &data)
        .args(["--otlp-endpoint", "127.0.0.1:4318"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("otlp_endpoint `127.0.0.1:4318` needs http:// or https://")
            && stderr.contains("(from command line)"),
        "{stderr}"
    );
    let output = crate::support::serve_command(&plugins, &data)
        .args(["--print-config"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.contains(
            "otlp_endpoint = \"http://127.0.0.1:4318\"  # environment OTEL_EXPORTER_OTLP_ENDPOINT"
        ),
        "{printed}"
    );
}
