//! Measures the durable inbox: accepted events per second and ack latency,
//! with durability on (WAL, `synchronous=FULL`), on this machine.
//!
//! ```sh
//! cargo run --release -p hookhost --example inbox_load [SECONDS] [CONCURRENCY]
//! ```
//!
//! Two parts, each in one run so the ratios compare like with like:
//! 1. The store alone: CONCURRENCY tasks append 1 KiB events through the
//!    inbox, with group commit (the default) and with one commit per event
//!    (`max_batch = 1`).
//! 2. End to end over HTTP on 127.0.0.1: CONCURRENCY keep-alive clients POST
//!    1 KiB to a queue-mode route (answered 202 once durable, while the
//!    workers deliver to the plugin at the same time, 32 at once), and, as
//!    the baseline, to a sync-mode route running the same plugin.
//!
//! The load generator runs in the same process as the host, on the same
//! cores: the figures are what one machine does for both sides.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hookhost::config::HostConfig;
use hookhost::inbox::{Inbox, InboxConfig, NewEvent, StoredRequest, now_millis};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5);
    let concurrency: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(64);
    let duration = Duration::from_secs(seconds);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        println!(
            "inbox_load: {concurrency} concurrent senders, {seconds} s per run, 1 KiB bodies, \
             {} CPUs",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        println!();
        println!("| run | accepted/s | p50 ack | p99 ack | commits |");
        println!("|---|---|---|---|---|");
        let grouped = store_run(concurrency, duration, 1024).await?;
        let single = store_run(concurrency, duration, 1).await?;
        grouped.print("store, group commit");
        single.print("store, one commit per event");
        let queue = http_run(concurrency, duration, "/hooks/queue").await?;
        let sync = http_run(concurrency, duration, "/hooks/sync").await?;
        queue.print("HTTP, queue mode (202 after fsync)");
        sync.print("HTTP, sync mode (baseline, no store)");
        println!();
        println!(
            "group commit: {:.1}x the events/s of one commit per event",
            grouped.rate() / single.rate()
        );
        println!(
            "queue mode: {:.2}x the requests/s of sync mode, p99 {:.2}x",
            queue.rate() / sync.rate(),
            queue.p99().as_secs_f64() / sync.p99().as_secs_f64()
        );
        anyhow::Ok(())
    })
}

struct Run {
    latencies: Vec<Duration>,
    elapsed: Duration,
    commits: Option<u64>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
    }

    fn p99(&self) -> Duration {
        self.percentile(0.99)
    }

    fn print(&self, name: &str) {
        println!(
            "| {name} | {:.0} | {:.2} ms | {:.2} ms | {} |",
            self.rate(),
            self.percentile(0.5).as_secs_f64() * 1000.0,
            self.p99().as_secs_f64() * 1000.0,
            self.commits.map_or("-".to_owned(), |c| format!(
                "{c} ({:.1} events each)",
                self.latencies.len() as f64 / c as f64
            )),
        );
    }
}

/// Appends through the inbox (writer thread + SQLite) with no HTTP.
async fn store_run(
    concurrency: usize,
    duration: Duration,
    max_batch: usize,
) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let inbox = Arc::new(Inbox::open(
        dir.path(),
        InboxConfig {
            max_batch,
            ..InboxConfig::default()
        },
    )?);
    let body = Bytes::from(vec![b'x'; 1024]);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|task| {
            let (inbox, body) = (inbox.clone(), body.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0;
                while started.elapsed() < duration {
                    n += 1;
                    let event = NewEvent {
                        id: format!("t{task}-{n}"),
                        dedupe: true,
                        route: "/hooks/load".into(),
                        received_at: now_millis(),
                        order_key: None,
                        request: StoredRequest {
                            method: "POST".into(),
                            path: "/hooks/load".into(),
                            query: String::new(),
                            headers: vec![("content-type".into(), "application/json".into())],
                            body: body.to_vec(),
                            verified_by: None,
                        },
                    };
                    let sent = Instant::now();
                    inbox.append(event).await.expect("append failed");
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await?);
    }
    let elapsed = started.elapsed();
    let commits = inbox
        .counts()
        .commits
        .load(std::sync::atomic::Ordering::Relaxed);
    inbox.close().await;
    Ok(Run {
        latencies,
        elapsed,
        commits: Some(commits),
    })
}

/// Runs a host in-process with the echo plugin on a queue-mode and a
/// sync-mode route, and loads `path` over HTTP.
async fn http_run(concurrency: usize, duration: Duration, path: &str) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins)?;
    for (name, manifest) in [
        ("queue", "mode = \"queue\"\n[queue]\nconcurrency = 32\n"),
        ("sync", "route = \"/hooks/sync\"\n"),
    ] {
        std::fs::copy(
            hookhost_test_artifacts::ECHO,
            plugins.join(format!("{name}.wasm")),
        )?;
        std::fs::write(plugins.join(format!("{name}.toml")), manifest)?;
    }
    let mut config = HostConfig::new(&plugins, dir.path().join("data"));
    config.max_concurrency = 64;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}{path}", listener.local_addr()?);
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let pending_url = format!(
        "http://{}/events?status=pending&limit=1",
        admin.local_addr()?
    );
    let listeners = hookhost::Listeners {
        hooks: listener,
        admin: Some(admin),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let host = tokio::spawn(hookhost::run(listeners, config, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    // Wait for the plugins to load.
    let deadline = Instant::now() + Duration::from_secs(60);
    while client
        .post(&url)
        .body("warm-up")
        .send()
        .await
        .map_or(true, |r| !r.status().is_success())
    {
        anyhow::ensure!(Instant::now() < deadline, "host did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let body = Bytes::from(vec![b'x'; 1024]);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while started.elapsed() < duration {
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .body(body.clone())
                        .send()
                        .await
                        .expect("request failed");
                    assert!(response.status().is_success(), "{}", response.status());
                    response.bytes().await.expect("body failed");
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await?);
    }
    let elapsed = started.elapsed();
    if path.contains("queue") {
        // The workers deliver while events arrive; how long until they have
        // caught up says what the plugin side sustains.
        loop {
            let page: serde_json::Value = client.get(&pending_url).send().await?.json().await?;
            if page["events"]
                .as_array()
                .is_none_or(|events| events.is_empty())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let drained = started.elapsed();
        println!(
            "(queue mode, `[queue] concurrency = 32`: the workers delivered all {} events \
             {:.1} s after the load began: {:.0} deliveries/s)",
            latencies.len(),
            drained.as_secs_f64(),
            latencies.len() as f64 / drained.as_secs_f64()
        );
    }
    let _ = stop.send(());
    host.await??;
    Ok(Run {
        latencies,
        elapsed,
        commits: None,
    })
}
