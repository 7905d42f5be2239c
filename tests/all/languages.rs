//! The Python (componentize-py) and JavaScript (componentize-js) example
//! plugins, built by `tests/artifacts` from `plugins/stripe` and
//! `plugins/shopify`, answering signed webhooks through the real host.

use std::time::Duration;

use hookhost::verify::{Scheme, Secret, Shopify, Stripe};
use hookhost_test_artifacts::{SHOPIFY, STRIPE};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{LocalServer, TestHost, plugin, plugin_with, precompile, test_runtime};

/// The manifests exactly as shipped: they verify with `file:NAME.secret`.
const STRIPE_MANIFEST: &str = include_str!("../../plugins/stripe/stripe.toml");
const SHOPIFY_MANIFEST: &str = include_str!("../../plugins/shopify/shopify.toml");
const SECRET: &str = "whsec_test-secret";

/// A host serving both examples.
async fn start() -> TestHost {
    precompile(STRIPE).await;
    precompile(SHOPIFY).await;
    TestHost::start(&[
        plugin_with("stripe", STRIPE, STRIPE_MANIFEST).with_file("stripe.secret", SECRET),
        plugin_with("shopify", SHOPIFY, SHOPIFY_MANIFEST).with_file("shopify.secret", SECRET),
    ])
    .await
}

/// POSTs `body` to `path` with the headers `signer` adds, plus `extra`.
async fn signed(
    host: &TestHost,
    path: &str,
    signer: &dyn Scheme,
    body: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    signed_request(host, path, signer, body, extra)
        .send()
        .await
        .unwrap()
}

/// The request [`signed`] sends, not sent yet.
fn signed_request(
    host: &TestHost,
    path: &str,
    signer: &dyn Scheme,
    body: &str,
    extra: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let mut request = host
        .signed_post(path, signer, body)
        .header("content-type", "application/json");
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request
}

fn stripe(secret: &str) -> Stripe {
    Stripe::new(vec![Secret::from(secret)], Duration::from_secs(300))
}

fn shopify(secret: &str) -> Shopify {
    Shopify::new(vec![Secret::from(secret)])
}

fn payment_succeeded(event: &str, amount: u64) -> String {
    json!({
        "id": event,
        "object": "event",
        "type": "payment_intent.succeeded",
        "data": {"object": {
            "id": format!("pi_{event}"),
            "object": "payment_intent",
            "amount": amount,
            "amount_received": amount,
            "currency": "eur"
        }}
    })
    .to_string()
}

#[tokio::test]
async fn python_stripe_handles_a_payment_once_across_deliveries() {
    let host = start().await;
    let first = signed(
        &host,
        "/hooks/stripe",
        &stripe(SECRET),
        &payment_succeeded("evt_1", 1250),
        &[],
    )
    .await;
    assert_eq!(first.status(), StatusCode::OK);
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["event"], "evt_1", "{body}");
    assert_eq!(body["payment_intent"], "pi_evt_1");
    assert_eq!(body["amount"], 1250);
    assert_eq!(body["total"], 1250);
    assert!(body.get("duplicate").is_none(), "{body}");

    // The same event again, under another Idempotency-Key (a relay or a
    // replay tool may mint a new one): the delivery id of a verified Stripe
    // route is the signed event id, so the host answers the duplicate
    // (`id`) once the first delivery is recorded, and the plugin's kv
    // (`event`) if it is not yet (a sync route records just after
    // answering). Either way nothing is counted twice.
    let again = signed(
        &host,
        "/hooks/stripe",
        &stripe(SECRET),
        &payment_succeeded("evt_1", 1250),
        &[("idempotency-key", "relay-2")],
    )
    .await;
    assert_eq!(again.status(), StatusCode::OK);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["duplicate"], true, "{body}");
    assert!(body["id"] == "evt_1" || body["event"] == "evt_1", "{body}");

    let other = signed(
        &host,
        "/hooks/stripe",
        &stripe(SECRET),
        &payment_succeeded("evt_2", 750),
        &[],
    )
    .await;
    let body: Value = other.json().await.unwrap();
    assert_eq!(body["total"], 2000, "kv kept the first payment: {body}");
    host.stop().await;
}

#[tokio::test]
async fn python_stripe_rejects_unknown_event_types_with_422() {
    let host = start().await;
    let body =
        json!({"id": "evt_3", "type": "customer.created", "data": {"object": {}}}).to_string();
    let response = signed(&host, "/hooks/stripe", &stripe(SECRET), &body, &[]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unsupported event type 'customer.created'"),
        "{body}"
    );

    let response = signed(&host, "/hooks/stripe", &stripe(SECRET), "{not json", &[]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    host.stop().await;
}

#[tokio::test]
async fn python_and_js_examples_refuse_bad_signatures_with_401() {
    let host = start().await;
    let response = signed(
        &host,
        "/hooks/stripe",
        &stripe("not-the-secret"),
        &payment_succeeded("evt_4", 1),
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = signed(
        &host,
        "/hooks/shopify",
        &shopify("not-the-secret"),
        r#"{"id":1}"#,
        &[("x-shopify-topic", "orders/create")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let unsigned = host.post("/hooks/shopify", r#"{"id":1}"#).await;
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    host.stop().await;
}

fn order(id: u64) -> String {
    json!({
        "id": id,
        "name": format!("#{id}"),
        "total_price": "42.50",
        "currency": "EUR",
        "line_items": [{"quantity": 2}, {"quantity": 1}]
    })
    .to_string()
}

#[tokio::test]
async fn js_shopify_summarises_signed_orders_and_counts_them() {
    let host = start().await;
    let headers = [
        ("x-shopify-topic", "orders/create"),
        ("x-shopify-shop-domain", "demo.myshopify.com"),
    ];
    let response = signed(
        &host,
        "/hooks/shopify",
        &shopify(SECRET),
        &order(1001),
        &headers,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({
            "topic": "orders/create",
            "order": "#1001",
            "total": "42.50",
            "currency": "EUR",
            "items": 3,
            "shop": "demo.myshopify.com",
            "orders_seen": 1
        })
    );
    let response = signed(
        &host,
        "/hooks/shopify",
        &shopify(SECRET),
        &order(1002),
        &headers,
    )
    .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["orders_seen"], 2, "the count is kept in kv: {body}");
    host.stop().await;
}

#[tokio::test]
async fn js_shopify_ignores_other_topics_and_rejects_bad_requests() {
    let host = start().await;
    let other = [("x-shopify-topic", "products/update")];
    let response = signed(
        &host,
        "/hooks/shopify",
        &shopify(SECRET),
        r#"{"id":5}"#,
        &other,
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let response = signed(
        &host,
        "/hooks/shopify",
        &shopify(SECRET),
        r#"{"id":5}"#,
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("missing X-Shopify-Topic"),
        "{body}"
    );

    let create = [("x-shopify-topic", "orders/create")];
    let response = signed(&host, "/hooks/shopify", &shopify(SECRET), "[oops", &create).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    host.stop().await;
}

/// A Python instance is 14 core instances (CPython is linked as shared
/// libraries): a burst as wide as the pool must queue for slots, never run
/// out of core instances (which was a 503 for about half of it).
#[tokio::test]
async fn python_burst_as_wide_as_the_pool_is_served() {
    let host = start().await;
    let failed = json!({
        "id": "evt_burst", "type": "payment_intent.payment_failed",
        "data": {"object": {"id": "pi_1", "last_payment_error": {"message": "declined"}}}
    })
    .to_string();
    let signer = stripe(SECRET);
    let mut burst = tokio::task::JoinSet::new();
    for n in 0..32 {
        // Distinct delivery ids: the host runs each (no dedupe answer).
        let key = format!("burst-{n}");
        let request = signed_request(
            &host,
            "/hooks/stripe",
            &signer,
            &failed,
            &[("idempotency-key", &key)],
        );
        burst.spawn(async move { request.send().await.unwrap().status() });
    }
    let statuses = burst.join_all().await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    host.stop().await;
}

/// One row of the per-language table in docs/performance.md.
struct Figures {
    size: u64,
    compile: Duration,
    cached_load: Duration,
    first_call: Duration,
    median: Duration,
    p99: Duration,
}

/// Measures one plugin: compile without a cache, load from a warm cache,
/// then through a real host (loopback HTTP, verification off) the first call
/// and `calls` sequential warm calls. Each call is a fresh instance.
async fn measure(
    name: &str,
    wasm: &str,
    headers: &[(&str, &str)],
    body: &str,
    calls: usize,
) -> Figures {
    let bytes = std::fs::read(wasm).unwrap();
    let runtime = |cache_dir| test_runtime(16, cache_dir);
    let path = std::path::Path::new(wasm);
    let started = std::time::Instant::now();
    runtime(None).prepare(path, &bytes).unwrap();
    let compile = started.elapsed();

    let cache = tempfile::tempdir().unwrap();
    runtime(Some(cache.path().to_owned()))
        .prepare(path, &bytes)
        .unwrap();
    let warm_cache = runtime(Some(cache.path().to_owned()));
    let started = std::time::Instant::now();
    warm_cache.prepare(path, &bytes).unwrap();
    let cached_load = started.elapsed();
    drop(warm_cache);

    let running = TestHost::start_with(&[plugin(name, wasm)], |config| {
        config.cache_dir = Some(cache.path().to_owned());
    })
    .await;
    let host = &running;
    let call = |n: usize| async move {
        // A distinct delivery id per call, so the host runs every one.
        let mut request = host
            .client
            .post(host.url(&format!("/hooks/{name}")))
            .header("idempotency-key", format!("bench-{n}"))
            .body(body.to_owned());
        for (header, value) in headers {
            request = request.header(*header, *value);
        }
        let started = std::time::Instant::now();
        let response = request.send().await.unwrap();
        let status = response.status();
        response.bytes().await.unwrap();
        assert!(status.is_success(), "{name}: {status}");
        started.elapsed()
    };
    let first_call = call(0).await;
    let mut times = Vec::with_capacity(calls);
    for n in 1..=calls {
        times.push(call(n).await);
    }
    running.stop().await;
    times.sort();
    Figures {
        size: bytes.len() as u64,
        compile,
        cached_load,
        first_call,
        median: times[times.len() / 2],
        p99: times[(times.len() * 99 / 100).min(times.len() - 1)],
    }
}

/// Prints the per-language table of docs/performance.md. Run it on a quiet machine, in
/// release mode (Cranelift itself is then optimised as in a release host):
///
/// `cargo test --release -p hookhost --test all per_language_figures -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a test: prints the per-language table for docs/performance.md"]
async fn per_language_figures() {
    let calls = std::env::var("HOOKHOST_FIGURE_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500);
    let failed = json!({
        "id": "evt_bench", "type": "payment_intent.payment_failed",
        "data": {"object": {"id": "pi_1", "last_payment_error": {"message": "card declined"}}}
    })
    .to_string();
    let rows = [
        (
            "Rust (`github`, ping)",
            "github",
            hookhost_test_artifacts::GITHUB,
            vec![("x-github-event", "ping")],
            r#"{"zen":"hi","hook_id":1}"#.to_owned(),
        ),
        (
            "Python (`stripe`, payment failed)",
            "stripe",
            STRIPE,
            vec![],
            failed,
        ),
        (
            "JavaScript (`shopify`, other topic)",
            "shopify",
            SHOPIFY,
            vec![("x-shopify-topic", "products/update")],
            r#"{"id":1}"#.to_owned(),
        ),
    ];
    println!(
        "\n| plugin | component | compile (uncached) | cached load | first call | warm call p50 | p99 |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (label, name, wasm, headers, body) in rows {
        let f = measure(name, wasm, &headers, &body, calls).await;
        println!(
            "| {label} | {:.1} MB | {:.2} s | {:.0} ms | {:.1} ms | {:.2} ms | {:.2} ms |",
            f.size as f64 / 1e6,
            f.compile.as_secs_f64(),
            f.cached_load.as_secs_f64() * 1e3,
            f.first_call.as_secs_f64() * 1e3,
            f.median.as_secs_f64() * 1e3,
            f.p99.as_secs_f64() * 1e3,
        );
    }
    println!("({calls} warm calls each, sequential, over loopback HTTP)");
}

/// A host serving only the Shopify example, told by `[config]` to forward
/// each summary to `server` and allowed by `[allow] http` to reach it.
async fn start_forwarding(server: std::net::SocketAddr) -> TestHost {
    precompile(SHOPIFY).await;
    let manifest = format!(
        "{SHOPIFY_MANIFEST}\n[config]\nforward_url = \"http://{server}/orders\"\n[allow]\nhttp = [\"{server}\"]\n"
    );
    TestHost::start(&[
        plugin_with("shopify", SHOPIFY, &manifest).with_file("shopify.secret", SECRET)
    ])
    .await
}

/// Posts a signed `orders/create` for order `id` to the Shopify example.
async fn create_order(host: &TestHost, id: u64) -> reqwest::Response {
    let create = [("x-shopify-topic", "orders/create")];
    signed(
        host,
        "/hooks/shopify",
        &shopify(SECRET),
        &order(id),
        &create,
    )
    .await
}

#[tokio::test]
async fn js_shopify_forwards_the_summary_with_fetch_when_config_grants_a_url() {
    let server = LocalServer::start(200, b"ok".to_vec(), Duration::ZERO).await;
    let host = start_forwarding(server.addr).await;
    let response = create_order(&host, 2001).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["forwarded"], 200, "{body}");
    let seen = server.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].starts_with("POST /orders "), "{}", seen[0]);
    assert!(seen[0].contains(r##""order":"#2001""##), "{}", seen[0]);
    host.stop().await;
}

#[tokio::test]
async fn js_shopify_asks_for_a_retry_when_forwarding_fails() {
    let server = LocalServer::start(500, b"down".to_vec(), Duration::ZERO).await;
    let host = start_forwarding(server.addr).await;
    let response = create_order(&host, 2002).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("answered 500"),
        "{body}"
    );
    host.stop().await;
}
