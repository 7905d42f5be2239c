//! (f) queue drain: what (c) does not show. (c) times the 202s; the workers
//! deliver behind them, and a backlog left at the end of its runs is not in
//! its figures. (f) bursts `--duration` seconds at `--connections`
//! connections at a route with only `mode = "queue"` in its manifest (every
//! `[queue]` and `[retry]` setting at its default), then waits until the
//! queue is empty, and reports accepted, delivered and end-to-end rates,
//! the ack latency, and the bytes the host wrote to disk per event.
//!
//! How it reads the host: the queue depth and the dead-letter count from the
//! admin API's `/metrics` (the drain host is started with `--admin`), the
//! bytes written from `/proc/PID/io` (`write_bytes`: what reached the block
//! layer, so the WAL, its checkpoints into `inbox.db`, and nothing sent on a
//! socket). Its own host, like (c)'s, for the same reason: a backlog being
//! worked off must not steal CPU from another stage.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::binaries::Binaries;
use super::folders::install;
use super::http;
use super::payload::Payload;
use super::server::{self, Server};
use super::wrk::{self, Target};
use super::{PATIENCE, Plan};

/// Longest a backlog may take to drain before the run is called failed.
const DRAIN_PATIENCE: Duration = Duration::from_secs(600);

/// How often the queue depth is read while draining.
const POLL: Duration = Duration::from_millis(20);

/// One burst and its drain.
#[derive(Debug, Clone, Copy)]
pub struct Drain {
    /// Events answered 202.
    pub accepted: u64,
    /// Seconds the burst lasted (wrk's own measure).
    pub burst_s: f64,
    /// Events still pending when the burst ended.
    pub backlog_at_end: u64,
    /// Seconds from the start of the burst until nothing was pending.
    pub total_s: f64,
    /// wrk's p99 of the 202s, µs.
    pub p99_ack_us: f64,
    /// Bytes the host wrote to disk from the burst's start to the drain's end.
    pub bytes_written: u64,
    /// Non-2xx answers and socket errors during the burst.
    pub errors: u64,
}

impl Drain {
    pub fn accept_rate(&self) -> f64 {
        self.accepted as f64 / self.burst_s
    }

    /// Events delivered (done) per second while the burst ran.
    pub fn deliver_rate(&self) -> f64 {
        self.accepted.saturating_sub(self.backlog_at_end) as f64 / self.burst_s
    }

    /// Events accepted and delivered per second, start of burst to empty
    /// queue.
    pub fn end_to_end_rate(&self) -> f64 {
        self.accepted as f64 / self.total_s
    }

    pub fn bytes_per_event(&self) -> f64 {
        self.bytes_written as f64 / self.accepted.max(1) as f64
    }
}

/// Starts the drain host and runs `plan.runs` bursts, each on an empty queue.
pub fn measure(
    plan: &Plan,
    work: &Path,
    bins: &Binaries,
    compile_cache: &Path,
    payload: &Payload,
) -> anyhow::Result<Vec<Drain>> {
    let json = &payload.json_headers;
    let plugins = work.join("drain-plugins");
    std::fs::create_dir_all(&plugins)?;
    install(&plugins, "d", &bins.echo, Some("mode = \"queue\"\n"))?;
    let admin = SocketAddr::from(([127, 0, 0, 1], server::free_port()?));
    let host = Server::start(
        "hookhost-drain",
        work,
        plan.server_cpu(),
        &bins.hookhost,
        &|port| {
            let mut args =
                server::serve_args(port, &plugins, &work.join("drain-data"), compile_cache);
            args.extend(["--admin".into(), admin.to_string()]);
            args
        },
    )?;
    host.wait_status("/hooks/d", json, &payload.file, 202, PATIENCE)?;
    let target = Target::new(
        "(f) queue drain",
        "burst, then wait until every accepted event is done",
        host.url("/hooks/d"),
        wrk::script(work, "drain", &payload.file, json)?,
    );
    let mut drains = Vec::new();
    for round in 1..=plan.runs {
        wait_empty(admin, DRAIN_PATIENCE)?;
        eprintln!("run {round}/{}: {}", plan.runs, target.name);
        let written_before = write_bytes(host.pid())?;
        let started = Instant::now();
        let sample = target.wrk(plan, plan.duration, plan.connections)?;
        let backlog_at_end = queue_gauges(admin)?.0;
        wait_empty(admin, DRAIN_PATIENCE)?;
        let total_s = started.elapsed().as_secs_f64();
        let dead = queue_gauges(admin)?.1;
        if dead > 0 {
            bail!(
                "(f): {dead} events are dead: the echo plugin failed; see {}",
                host.log.display()
            );
        }
        drains.push(Drain {
            accepted: sample.requests - sample.errors,
            burst_s: sample.duration_us as f64 / 1e6,
            backlog_at_end,
            total_s,
            p99_ack_us: sample.p99_us,
            bytes_written: write_bytes(host.pid())? - written_before,
            errors: sample.errors,
        });
    }
    Ok(drains)
}

/// Waits until the host's queue depth is 0.
pub(super) fn wait_empty(admin: SocketAddr, patience: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let (pending, _) = queue_gauges(admin)?;
        if pending == 0 {
            return Ok(());
        }
        if started.elapsed() > patience {
            bail!("(f): {pending} events still pending after {patience:?}");
        }
        std::thread::sleep(POLL);
    }
}

/// `hookhost_queue_depth` and the dead letters so far, from `/metrics`.
pub(super) fn queue_gauges(admin: SocketAddr) -> anyhow::Result<(u64, u64)> {
    let (status, body) = http::get(admin, "/metrics")?;
    if status != 200 {
        bail!("GET /metrics on the admin API answered {status}");
    }
    let text = String::from_utf8_lossy(&body);
    let value = |name: &str| -> u64 {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split_once(' '))
            .filter(|(metric, _)| *metric == name || metric.starts_with(&format!("{name}{{")))
            .filter_map(|(_, value)| value.trim().parse::<f64>().ok())
            .map(|v| v as u64)
            .sum()
    };
    Ok((
        value("hookhost_queue_depth"),
        value("hookhost_dead_letters_total"),
    ))
}

/// `write_bytes` of `/proc/PID/io`.
fn write_bytes(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/io");
    let io = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    io.lines()
        .find_map(|line| line.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no write_bytes in {path}"))
}
