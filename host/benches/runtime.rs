//! Cost of one plugin call as the host makes it: a fresh `Store`, an instance
//! from the plugin's pre-linked `HandlerPre` through the pooling allocator,
//! one `handle` call, then everything dropped. Per example plugin, each with
//! a delivery it handles successfully (a push for the GitHub ones, a payment
//! for `stripe`, an order for `shopify`), and a real inbox behind `kv`.
//!
//! `cargo bench -p hookhost --bench runtime`. The bar (issue 9): the Rust
//! `echo` plugin instantiates and answers in ≤ 20 µs (median).
//!
//! Group `reused` times the same calls on one warm instance, which the host
//! never does: it is the figure an opt-in instance reuse would be weighed on.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use hookhost::config::Manifest;
use hookhost::inbox::{Inbox, InboxConfig};
use hookhost::runtime::{CallLimits, Delivery, Header, Runtime, RuntimeConfig};
use hookhost::telemetry::OutboundCounter;

/// A GitHub push of about 1.5 KB: what the `github` plugin parses and what
/// `echo` copies back.
const PUSH: &str = r#"{"ref":"refs/heads/main","before":"6113728f27ae82c7b1a177c8d03f9e96e0adf246","after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","created":false,"deleted":false,"forced":false,"compare":"https://github.com/octo/hello/compare/6113728f27ae...0d1a26e67d8f","commits":[{"id":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","tree_id":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","distinct":true,"message":"Update README.md with the new build instructions","timestamp":"2026-11-20T10:00:00Z","url":"https://github.com/octo/hello/commit/0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","author":{"name":"Octo Cat","email":"octo@example.com","username":"octocat"},"added":[],"removed":[],"modified":["README.md"]},{"id":"b2c1e6f0a3d4c5b6a7980f1e2d3c4b5a69788776","tree_id":"b2c1e6f0a3d4c5b6a7980f1e2d3c4b5a69788776","distinct":true,"message":"Fix typo","timestamp":"2026-11-20T10:00:00Z","url":"https://github.com/octo/hello/commit/b2c1e6f0a3d4c5b6a7980f1e2d3c4b5a69788776","author":{"name":"Octo Cat","email":"octo@example.com","username":"octocat"},"added":[],"removed":[],"modified":["README.md"]}],"repository":{"id":186853002,"name":"hello","full_name":"octo/hello","private":false,"owner":{"login":"octo","id":21031067,"type":"User"},"html_url":"https://github.com/octo/hello","default_branch":"main"},"pusher":{"name":"octocat","email":"octo@example.com"},"sender":{"login":"octocat","id":21031067,"type":"User","site_admin":false}}"#;

/// A Stripe event the Python `stripe` example handles without kv (a failed
/// payment: parsed, logged, answered).
const STRIPE_EVENT: &str = r#"{"id":"evt_bench","type":"payment_intent.payment_failed","data":{"object":{"id":"pi_1","amount":1250,"currency":"eur"}}}"#;

/// A Shopify topic the JavaScript `shopify` example answers 204 without kv.
const SHOPIFY_TOPIC: &str = "products/update";

/// The delivery `plugin` handles successfully.
fn delivery_for(plugin: &str) -> Delivery {
    let mut delivery = delivery();
    match plugin {
        "stripe" => {
            delivery.body = STRIPE_EVENT.as_bytes().to_vec();
            delivery.headers.truncate(1);
        }
        "shopify" => {
            delivery.body = b"{}".to_vec();
            delivery.headers.truncate(1);
            delivery.headers.push(Header {
                name: "x-shopify-topic".into(),
                value: SHOPIFY_TOPIC.into(),
            });
        }
        _ => {}
    }
    delivery
}

fn delivery() -> Delivery {
    Delivery {
        id: "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
        route: "/hooks/bench".into(),
        method: "POST".into(),
        path: "/hooks/bench".into(),
        query: String::new(),
        headers: vec![
            Header {
                name: "content-type".into(),
                value: "application/json".into(),
            },
            Header {
                name: "x-github-event".into(),
                value: "push".into(),
            },
        ],
        body: PUSH.as_bytes().to_vec(),
        received_at: 1_700_000_000_000,
        attempt: 1,
        verified_by: Some("github".into()),
    }
}

fn bench_instantiate_and_call(c: &mut Criterion) {
    // One worker thread, as the bench command's pinned host has.
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // push-digest keeps counts in kv: a real inbox, in a folder of its own.
    let data = tempfile::tempdir().unwrap();
    let inbox = tokio.block_on(async {
        std::sync::Arc::new(Inbox::open(data.path(), InboxConfig::default()).unwrap())
    });
    // Same pool sizing as `hookhost serve`'s default --max-concurrency.
    let runtime = Runtime::new(&RuntimeConfig {
        max_concurrency: 256,
        spare_instances: hookhost::config::DEFAULT_SPARE_INSTANCES,
        cache_dir: None,
        outbound: OutboundCounter::default(),
        kv: Some(inbox),
    })
    .unwrap();
    // 64 MiB: the interpreters' snapshots need more than 32.
    let limits = CallLimits {
        timeout: Duration::from_secs(10),
        memory: 64 << 20,
    };
    let mut group = c.benchmark_group("instantiate+call");
    let mut prepared_plugins = Vec::new();
    for (name, path) in hookhost_test_artifacts::PLUGINS {
        let bytes = std::fs::read(path).unwrap();
        let prepared = runtime.prepare(Path::new(path), &bytes).unwrap();
        let grants = Manifest::default_for(name).grants(name);
        let delivery = delivery_for(name);
        let response = tokio
            .block_on(runtime.call(&prepared, &grants, &delivery, limits))
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert!(
            (200..300).contains(&response.status),
            "{name}: {}",
            response.status
        );
        group.bench_function(*name, |b| {
            b.iter(|| {
                tokio
                    .block_on(runtime.call(&prepared, &grants, black_box(&delivery), limits))
                    .unwrap()
            });
        });
        prepared_plugins.push((*name, prepared, grants, delivery));
    }
    group.finish();

    // What a plugin with `[instance] max_deliveries` pays per call: the same
    // deliveries through the same `Runtime::call`, each taking the instance
    // the one before kept (no instantiation, no reset).
    let mut group = c.benchmark_group("reused");
    for (name, prepared, grants, delivery) in &prepared_plugins {
        let mut grants = grants.clone();
        grants.max_deliveries = hookhost::config::MAX_DELIVERIES_PER_INSTANCE;
        group.bench_function(*name, |b| {
            b.iter(|| {
                tokio
                    .block_on(runtime.call(prepared, &grants, black_box(delivery), limits))
                    .unwrap_or_else(|err| panic!("{name}: {err}"))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_instantiate_and_call);
criterion_main!(benches);
