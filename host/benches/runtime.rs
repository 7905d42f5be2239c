//! Cost of one plugin call as the host makes it: a fresh `Store`, an instance
//! from the plugin's pre-linked `HandlerPre` through the pooling allocator,
//! one `handle` call, then everything dropped. Per example plugin.
//!
//! `cargo bench -p hookhost --bench runtime`. The bar (issue 9): the Rust
//! `echo` plugin instantiates and answers in ≤ 20 µs (median).

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use hookhost::runtime::{CallLimits, Delivery, Header, Runtime, RuntimeConfig};

/// A GitHub push of about 1.5 KB: what the `github` plugin parses and what
/// `echo` copies back.
const PUSH: &str = r#"{"ref":"refs/heads/main","before":"6113728f27ae82c7b1a177c8d03f9e96e0adf246","after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","created":false,"deleted":false,"forced":false,"compare":"https://github.com/octo/hello/compare/6113728f27ae...0d1a26e67d8f","commits":[{"id":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","tree_id":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","distinct":true,"message":"Update README.md with the new build instructions","timestamp":"2026-11-20T10:00:00Z","url":"https://github.com/octo/hello/commit/0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","author":{"name":"Octo Cat","email":"octo@example.com","username":"octocat"},"added":[],"removed":[],"modified":["README.md"]},{"id":"b2c1e6f0a3d4c5b6a7980f1e2d3c4b5a69788776","tree_id":"b2c1e6f0a3d4c5b6a7980f1e2d3c4b5a69788776","distinct":true,"message":"Fix typo","timestamp":"2026-11-20T10:00:00Z","url":"https://github.com/octo/hello/commit/b2c1e6f0a3d4c5b6a7980f1e2d3c4b5a69788776","author":{"name":"Octo Cat","email":"octo@example.com","username":"octocat"},"added":[],"removed":[],"modified":["README.md"]}],"repository":{"id":186853002,"name":"hello","full_name":"octo/hello","private":false,"owner":{"login":"octo","id":21031067,"type":"User"},"html_url":"https://github.com/octo/hello","default_branch":"main"},"pusher":{"name":"octocat","email":"octo@example.com"},"sender":{"login":"octocat","id":21031067,"type":"User","site_admin":false}}"#;

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
    // Same pool sizing as `hookhost serve`'s default --max-concurrency.
    let runtime = Runtime::new(&RuntimeConfig {
        max_concurrency: 256,
        cache_dir: None,
        outbound: hookhost::telemetry::OutboundCounter::default(),
        kv: None,
    })
    .unwrap();
    let limits = CallLimits {
        timeout: Duration::from_secs(10),
        memory: 32 << 20,
    };
    // What an unconfigured plugin is granted: nothing beyond computing.
    let grants = hookhost::config::Manifest::default_for("bench").grants("bench");
    let delivery = delivery();
    let mut group = c.benchmark_group("instantiate+call");
    for (name, path) in hookhost_test_artifacts::PLUGINS {
        let bytes = std::fs::read(path).unwrap();
        let prepared = runtime.prepare(Path::new(path), &bytes).unwrap();
        let response = tokio
            .block_on(runtime.call(&prepared, &grants, &delivery, limits))
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(response.status, 200, "{name}");
        group.bench_function(*name, |b| {
            b.iter(|| {
                tokio
                    .block_on(runtime.call(&prepared, &grants, black_box(&delivery), limits))
                    .unwrap()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_instantiate_and_call);
criterion_main!(benches);
