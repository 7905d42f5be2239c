//! Cost of making a queued event durable (WAL, `synchronous=FULL`), one
//! commit per event against group commit, with 64 senders at once.
//!
//! `cargo bench -p hookhost --bench inbox`. Criterion reports time per batch
//! of 64 appends and events/s; for the ack latency under sustained load see
//! `cargo run --release -p hookhost --example inbox_load`.

use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hookhost::inbox::{Inbox, InboxConfig, NewEvent, StoredRequest, now_millis};

/// Senders appending at once, as 64 concurrent HTTP connections would.
const SENDERS: usize = 64;

fn bench_append(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("inbox append");
    group.throughput(Throughput::Elements(SENDERS as u64));
    group.sample_size(20);
    // `max_batch = 1` is one transaction (one fsync) per event.
    for (label, max_batch) in [("single", 1), ("grouped", InboxConfig::default().max_batch)] {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Arc::new(
            Inbox::open(
                dir.path(),
                InboxConfig {
                    max_batch,
                    ..InboxConfig::default()
                },
            )
            .unwrap(),
        );
        let body = Bytes::from(vec![b'x'; 1024]);
        let mut n = 0u64;
        group.bench_function(format!("{label}, {SENDERS} senders, 1 KiB"), |b| {
            b.iter(|| {
                n += 1;
                let round = n;
                tokio.block_on(async {
                    let tasks: Vec<_> = (0..SENDERS)
                        .map(|sender| {
                            let (inbox, body) = (inbox.clone(), body.clone());
                            tokio::spawn(async move {
                                inbox
                                    .append(NewEvent {
                                        id: format!("{round}-{sender}"),
                                        dedupe: true,
                                        route: "/hooks/bench".into(),
                                        received_at: now_millis(),
                                        order_key: None,
                                        request: StoredRequest {
                                            method: "POST".into(),
                                            path: "/hooks/bench".into(),
                                            query: String::new(),
                                            headers: vec![(
                                                "content-type".into(),
                                                "application/json".into(),
                                            )],
                                            body: body.to_vec(),
                                            verified_by: None,
                                        },
                                    })
                                    .await
                                    .unwrap()
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.unwrap();
                    }
                });
            });
        });
        tokio.block_on(inbox.close());
    }
    group.finish();
}

criterion_group!(benches, bench_append);
criterion_main!(benches);
