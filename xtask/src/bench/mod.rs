//! `cargo xtask bench`: hookhost against a native baseline, in one run, on
//! one machine, with one load generator.
//!
//! Strategy:
//! 1. Build what is measured: `hookhost` and `hookhost-baseline` (in the
//!    chosen profile) and the example plugins for `wasm32-wasip2`; install the
//!    Rust target and wrk if they are missing.
//! 2. Lay out a plugin folder under `TARGET/bench/`: `echo` (sync,
//!    unverified), `github` (sync, GitHub-verified), and, for (e), an echo
//!    plugin per language: Rust's is `echo`; the Python and JS ones are
//!    written into `TARGET/bench/cache/guests/src/` and built with the tools
//!    of `make tools` (run if missing). `TARGET/bench/cache/` survives runs:
//!    the built components (rebuilt only when their inputs change) and the
//!    hosts' compile cache (`--cache-dir cache/wasmtime`), so only the first run pays the
//!    6-19 s wasmtime compile of each big guest.
//! 3. Start hookhost and the baseline, each pinned with `taskset` to CPU 0 (so
//!    each runs one tokio worker), and run wrk pinned to CPU 1. The servers
//!    take turns: one warm-up per target, then the runs interleaved (baseline,
//!    (a), (b), baseline, (a), (b), ...) so that a noisy neighbour or a
//!    thermal drift hits every target alike.
//! 4. (c) runs on a second hookhost with a queue-mode route after the others:
//!    its inbox workers keep delivering the backlog after a run, which would
//!    otherwise steal CPU 0 from the next target.
//! 5. (d) renames a new version of a plugin into the folder N times and
//!    times the first answer of each; (e) times warm calls on one connection,
//!    back to back (wrk) and then paced, 10 ms apart.
//! 6. (f) bursts at a third hookhost whose route has only `mode = "queue"`
//!    and waits until every accepted event is done: accept/s, deliver/s,
//!    end-to-end/s, p99 ack, bytes written per event, and end-to-end
//!    against (a) of the same run.
//! 7. (g), when asked for, runs (f)'s burst on one host with SQLite, one
//!    host with PostgreSQL (`--postgres`) and three hosts sharing it.
//! 8. Print one table, medians with (min–max), and the ratios.
//!
//! Nothing here asserts a timing: `--smoke` only checks that every step
//! still works (CI runs it so the command never rots).
//!
//! # Layout
//! This file holds the flags, the plan made of them and [`run`], which
//! calls the stages in the order above. Each other file owns one thing:
//! - [`binaries`]: building the host, the baseline and the example plugins.
//! - [`folders`]: `TARGET/bench/` and putting a plugin into a plugin folder.
//! - [`payload`]: the request every stage sends, and its signature.
//! - [`server`]: starting, probing and stopping hookhost and the baseline.
//! - [`http`]: a minimal HTTP/1.1 client (one POST, one answer).
//! - [`otlp`]: the OTLP sink the traced (b) row exports to (`--otlp`).
//! - [`wrk`]: the load generator, its Lua script and what it reports.
//! - [`process`]: running other programs, pinned to a CPU or for their output.
//! - The measured stages: [`sync`] (the baseline, (a) and (b)), [`queue`]
//!   (c), [`reload`] (d), [`languages`] (e), [`drain`] (f) and [`fleet`] (g).
//! - [`report`]: the table, its statistics and the machine line.

mod binaries;
mod drain;
mod fleet;
mod folders;
mod http;
mod languages;
mod otlp;
mod payload;
mod process;
mod queue;
mod reload;
mod report;
mod server;
mod sync;
mod wrk;

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use self::payload::Payload;
use self::server::Server;

/// Opt-in instance reuse, for the `reused` rows (not the default).
const REUSE: &str = "[instance]\nmax_deliveries = 10000\n";

/// How long a route may take to answer first: compiling a plugin the first
/// time can take a while (Python: ~15 s).
const PATIENCE: Duration = Duration::from_secs(180);

/// `cargo xtask bench` flags.
#[derive(clap::Args)]
pub struct Args {
    /// A seconds-long run that only checks every step works (CI): 1 s runs,
    /// one run per target, 2 reload swaps. Its figures mean nothing.
    #[arg(long)]
    smoke: bool,

    /// Cargo profile of the host and baseline binaries: `release` for
    /// figures, `dev` to reuse the binaries of `make test` (CI's smoke).
    #[arg(long, default_value = "release", value_parser = ["release", "dev"])]
    profile: String,

    /// Seconds per measured run [default: 10; 1 with --smoke].
    #[arg(long, value_name = "SECONDS")]
    duration: Option<u64>,

    /// Seconds of warm-up per target before the runs [default: 3; 1 with --smoke].
    #[arg(long, value_name = "SECONDS")]
    warmup: Option<u64>,

    /// Measured runs per target [default: 3; 1 with --smoke].
    #[arg(long, value_name = "N")]
    runs: Option<usize>,

    /// Concurrent keep-alive connections wrk holds open.
    #[arg(long, default_value_t = 64, value_name = "N")]
    connections: u32,

    /// Which scenarios to run, comma-separated: a (echo), b (github,
    /// verified), c (queue mode), d (hot reload), e (per-language calls),
    /// f (queue drain: burst, then until every event is done), g (f on
    /// SQLite, on PostgreSQL, and on three hosts sharing PostgreSQL; not in
    /// the default list: it needs `--postgres`'s server).
    #[arg(
        long,
        default_value = "a,b,c,d,e,f",
        value_delimiter = ',',
        value_name = "LIST"
    )]
    scenarios: Vec<char>,

    /// Measure this hookhost binary instead of the one just built, e.g. a
    /// copy of an older build, to compare two versions in one run (the
    /// plugins and the baseline are still built as usual).
    #[arg(long, value_name = "PATH")]
    hookhost: Option<std::path::PathBuf>,

    /// Hot-reload swaps timed in (d) [default: 10; 2 with --smoke].
    #[arg(long, value_name = "N")]
    swaps: Option<usize>,

    /// Also run (b) on a second hookhost that exports traces over OTLP to a
    /// local sink (`(b) github, traced`), interleaved with the untraced (b):
    /// the cost of tracing, in the same run.
    #[arg(long)]
    otlp: bool,

    /// The PostgreSQL server (g) creates its database on: a role that may
    /// create databases, reachable with `psql`.
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432/test",
        value_name = "URL"
    )]
    postgres: String,
}

/// The flags with their defaults applied: what every stage reads.
struct Plan {
    duration: u64,
    warmup: u64,
    runs: usize,
    connections: u32,
    swaps: usize,
    /// (e)'s paced calls per language.
    paced_calls: usize,
    scenarios: Vec<char>,
    /// CPU for the servers and for wrk; `None` when there is only one.
    cpus: Option<(usize, usize)>,
}

impl Plan {
    fn new(args: &Args) -> anyhow::Result<Self> {
        for s in &args.scenarios {
            if !"abcdefg".contains(*s) {
                bail!("--scenarios: unknown scenario `{s}` (known: a,b,c,d,e,f,g)");
            }
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Self {
            duration: args.duration.unwrap_or(if args.smoke { 1 } else { 10 }),
            warmup: args.warmup.unwrap_or(if args.smoke { 1 } else { 3 }),
            runs: args.runs.unwrap_or(if args.smoke { 1 } else { 3 }).max(1),
            connections: args.connections.max(1),
            swaps: args.swaps.unwrap_or(if args.smoke { 2 } else { 10 }).max(1),
            paced_calls: if args.smoke { 10 } else { 300 },
            scenarios: args.scenarios.clone(),
            cpus: (cpus >= 2).then_some((0, 1)),
        })
    }

    fn has(&self, scenario: char) -> bool {
        self.scenarios.contains(&scenario)
    }

    /// The CPU the servers are pinned to, if any.
    fn server_cpu(&self) -> Option<usize> {
        self.cpus.map(|c| c.0)
    }
}

/// `cargo xtask bench`: the stages of the strategy above, in its order.
pub fn run(args: Args) -> anyhow::Result<()> {
    let plan = Plan::new(&args)?;
    let release = args.profile == "release";

    binaries::ensure_wasm_target()?;
    wrk::ensure_installed()?;
    let mut bins = binaries::build(release)?;
    if let Some(hookhost) = &args.hookhost {
        eprintln!("measuring {} (--hookhost)", hookhost.display());
        bins.hookhost = hookhost.clone();
    }

    let work = crate::target_dir().join("bench");
    // Everything but `cache/` goes: compiled plugins (wasmtime's cache) and
    // the Python/JS components of (e) persist, as a Python or JS compile
    // takes 6-19 s.
    let cache = work.join("cache");
    folders::clean_except(&work, &cache)?;
    std::fs::create_dir_all(&cache)
        .with_context(|| format!("cannot create {}", cache.display()))?;
    // wasmtime's cache deletes files it does not know in its folder: the
    // guests live beside it, not in it.
    let compile_cache = cache.join("wasmtime");
    let guests = if plan.has('e') {
        languages::build_guests(&cache.join("guests"))?
    } else {
        Vec::new()
    };
    let payload = Payload::write(&work, &bins.baseline)?;

    let mut out = report::header(&args.profile, args.smoke, &plan)?;
    eprintln!("{out}");

    // --- (a), (b) and the baseline, interleaved ---------------------------
    let plugins = work.join("plugins");
    std::fs::create_dir_all(&plugins)?;
    sync::install_plugins(&plugins, &bins)?;
    let echoes = if plan.has('e') {
        languages::install_plugins(&plugins, &guests, &bins)?
    } else {
        Vec::new()
    };

    let host_started = Instant::now();
    let host = Server::start(
        "hookhost",
        &work,
        plan.server_cpu(),
        &bins.hookhost,
        &|port| server::serve_args(port, &plugins, &work.join("data"), &compile_cache),
    )?;
    let baseline = Server::start(
        "baseline",
        &work,
        plan.server_cpu(),
        &bins.baseline,
        &server::baseline_args,
    )?;
    let (github, json) = (&payload.github_headers, &payload.json_headers);
    baseline.wait_status("/", github, &payload.file, 200, PATIENCE)?;
    host.wait_status("/hooks/echo", json, &payload.file, 200, PATIENCE)?;
    host.wait_status("/hooks/github", github, &payload.file, 200, PATIENCE)?;
    // (e)'s plugins load too before anything is timed: a Python or JS
    // compile (a cold cache) would otherwise steal CPU 0 from (a) and (b).
    for echo in &echoes {
        let path = format!("/hooks/{}", echo.plugin);
        host.wait_status(&path, json, &payload.file, 200, PATIENCE)?;
    }
    eprintln!(
        "every plugin answers, {:.1?} after the host started",
        host_started.elapsed()
    );

    let mut targets = sync::targets(&plan, &work, &host, &baseline, &payload)?;
    // The traced twin of (b): same plugins, its own data folder, exporting
    // every span to a sink that only counts.
    let sink = if args.otlp && plan.has('b') {
        Some(otlp::Sink::start()?)
    } else {
        None
    };
    let traced = match &sink {
        Some(sink) => {
            let traced = Server::start_with_env(
                "hookhost-traced",
                &work,
                plan.server_cpu(),
                &bins.hookhost,
                &|port| {
                    server::serve_args(port, &plugins, &work.join("data-traced"), &compile_cache)
                },
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", sink.endpoint())],
            )?;
            traced.wait_status("/hooks/github", github, &payload.file, 200, PATIENCE)?;
            targets.push(sync::traced_target(&work, &traced, &payload)?);
            Some(traced)
        }
        None => None,
    };
    wrk::measure(&plan, &mut targets)?;
    if let Some(sink) = &sink {
        let (requests, bytes) = sink.received();
        eprintln!("OTLP sink: {requests} export requests, {bytes} bytes of spans");
    }
    drop(traced);

    // --- (d) hot reload, on the same (now idle) host ----------------------
    let reload = if plan.has('d') {
        Some(reload::measure(&plan, &host, &plugins, &bins)?)
    } else {
        None
    };

    // --- (e) per-language warm call, one connection ------------------------
    let calls = languages::measure(&plan, &host, &work, &payload, &echoes)?;
    drop(host);
    drop(baseline);

    // --- (c) queue mode, its own host --------------------------------------
    if plan.has('c') {
        targets.push(queue::measure(
            &plan,
            &work,
            &bins,
            &compile_cache,
            &payload,
        )?);
    }

    // --- (f) queue drain, its own host ---------------------------------------
    let drains = if plan.has('f') {
        drain::measure(&plan, &work, &bins, &compile_cache, &payload)?
    } else {
        Vec::new()
    };

    // --- (g) the fleet: SQLite, PostgreSQL, three hosts ---------------------
    let fleet = if plan.has('g') {
        fleet::measure(
            &plan,
            &work,
            &bins,
            &compile_cache,
            &payload,
            &args.postgres,
        )?
    } else {
        Vec::new()
    };

    // --- the table -----------------------------------------------------------
    report::tables(&mut out, &plan, &targets, reload.as_deref(), &calls)?;
    if !drains.is_empty() {
        report::drain_table(&mut out, &targets, &drains)?;
    }
    if !fleet.is_empty() {
        report::fleet_table(&mut out, &fleet)?;
    }
    print!("{out}");
    std::fs::write(work.join("table.md"), &out)?;
    eprintln!(
        "(table also written to {})",
        work.join("table.md").display()
    );
    Ok(())
}
